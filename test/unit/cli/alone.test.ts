import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ALONE_WARNING_MS,
  type AloneStatus,
  UNMERGED_WARNING_MS,
  warnWhenAlone,
} from '../../../src/cli/alone.ts'

/** A node's status the test edits between timer advances. */
function node(over: Partial<AloneStatus> = {}): AloneStatus {
  return { connectedPeers: [], viewSize: 0, task: 'mnist-mlp', merges: 0, rejected: {}, ...over }
}

describe('warnWhenAlone', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('warns once per period while no peer is connected, and not while one is', () => {
    vi.useFakeTimers()
    const lines: string[] = []
    const s = node()
    const timer = warnWhenAlone(
      () => s,
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
    Object.assign(s, { connectedPeers: ['a'], viewSize: 1, merges: 1 })
    vi.advanceTimersByTime(3 * ALONE_WARNING_MS)
    expect(lines).toHaveLength(2)
    Object.assign(s, { connectedPeers: [], viewSize: 0 })
    vi.advanceTimersByTime(ALONE_WARNING_MS)
    expect(lines).toHaveLength(3)
    clearInterval(timer)
  })

  it('prints a JSON event with --json-status', () => {
    vi.useFakeTimers()
    const lines: string[] = []
    const timer = warnWhenAlone(
      () => node(),
      (l) => lines.push(l),
      true,
    )
    vi.advanceTimersByTime(ALONE_WARNING_MS)
    clearInterval(timer)
    expect(JSON.parse(lines[0]!)).toEqual({
      event: 'alone',
      reason: 'no-connection',
      forS: 30,
      connected: 0,
      refused: {},
    })
  })

  it('warns while connected peers announce no peer of our task, naming the task', () => {
    vi.useFakeTimers()
    const lines: string[] = []
    const s = node({ connectedPeers: ['a', 'b'], task: 'fashion-mnist-mlp' })
    const timer = warnWhenAlone(
      () => s,
      (l) => lines.push(l),
      false,
    )
    vi.advanceTimersByTime(ALONE_WARNING_MS)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^WARNING: 2 connected peer\(s\), but none announced task fashion-mnist-mlp for 30 s: training alone \(do --dataset, --model and --hidden/,
    )
    Object.assign(s, { viewSize: 1, merges: 1 })
    vi.advanceTimersByTime(3 * ALONE_WARNING_MS)
    expect(lines).toHaveLength(1)
    clearInterval(timer)
  })

  it('warns when peers of our task are in view but no model merged, naming what was refused', () => {
    vi.useFakeTimers()
    const lines: string[] = []
    // Refusals before the warning started are not the ones it reports.
    const s = node({ connectedPeers: ['a'], viewSize: 1, rejected: { FairShareError: 2 } })
    const timer = warnWhenAlone(
      () => s,
      (l) => lines.push(l),
      false,
    )
    vi.advanceTimersByTime(UNMERGED_WARNING_MS - 5_000)
    s.rejected = { FairShareError: 2, ArchMismatchError: 23 }
    expect(lines).toEqual([])
    vi.advanceTimersByTime(5_000)
    expect(lines).toEqual([
      'WARNING: no received model merged for 120 s, refused meanwhile: ArchMismatchError 23: training alone ' +
        '(do --dataset, --model and --hidden match the network?)',
    ])
    // Merging again: quiet, and the count starts over from the check that saw the merge.
    s.merges = 1
    vi.advanceTimersByTime(UNMERGED_WARNING_MS)
    expect(lines).toHaveLength(1)
    vi.advanceTimersByTime(5_000)
    expect(lines).toHaveLength(2)
    expect(lines[1]).toBe('WARNING: no received model merged for 120 s: training alone')
    clearInterval(timer)
  })
})
