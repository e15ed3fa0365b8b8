import { afterEach, describe, expect, it, vi } from 'vitest'
import { ALONE_WARNING_MS, warnWhenAlone } from '../../../src/cli/start.ts'

describe('warnWhenAlone', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('warns once per period while no peer is connected, and not while one is', () => {
    vi.useFakeTimers()
    const lines: string[] = []
    let peers: string[] = []
    const timer = warnWhenAlone(
      () => ({ connectedPeers: peers, viewSize: peers.length, task: 'mnist-mlp' }),
      (l) => lines.push(l),
      false,
    )
    vi.advanceTimersByTime(ALONE_WARNING_MS - 5_000)
    expect(lines).toEqual([])
    vi.advanceTimersByTime(5_000)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^WARNING: no connected peer for 30 s/)
    vi.advanceTimersByTime(ALONE_WARNING_MS)
    expect(lines).toHaveLength(2)
    peers = ['a']
    vi.advanceTimersByTime(3 * ALONE_WARNING_MS)
    expect(lines).toHaveLength(2)
    peers = []
    vi.advanceTimersByTime(ALONE_WARNING_MS)
    expect(lines).toHaveLength(3)
    clearInterval(timer)
  })

  it('prints a JSON event with --json-status', () => {
    vi.useFakeTimers()
    const lines: string[] = []
    const timer = warnWhenAlone(
      () => ({ connectedPeers: [], viewSize: 0, task: 'mnist-mlp' }),
      (l) => lines.push(l),
      true,
    )
    vi.advanceTimersByTime(ALONE_WARNING_MS)
    clearInterval(timer)
    expect(JSON.parse(lines[0]!)).toEqual({ event: 'alone', forS: 30, connected: 0 })
  })

  it('warns while connected peers announce no peer of our task, naming the task', () => {
    vi.useFakeTimers()
    const lines: string[] = []
    let viewSize = 0
    const timer = warnWhenAlone(
      () => ({ connectedPeers: ['a', 'b'], viewSize, task: 'fashion-mnist-mlp' }),
      (l) => lines.push(l),
      false,
    )
    vi.advanceTimersByTime(ALONE_WARNING_MS)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^WARNING: 2 connected peer\(s\), but none announced task fashion-mnist-mlp for 30 s/,
    )
    viewSize = 1
    vi.advanceTimersByTime(3 * ALONE_WARNING_MS)
    expect(lines).toHaveLength(1)
    clearInterval(timer)
  })
})
