/** The testbed's terminal progress: a table redrawn in place on a TTY, plain throttled lines elsewhere. */
import { describe, expect, it } from 'vitest'
import { accuracyBar, createProgressView, tableLines } from '../../../src/testbed/live-table.ts'
import type { TestbedResult } from '../../../src/testbed/result.ts'

function run(t: number, accs: Array<number | null>): TestbedResult {
  return {
    config: {} as TestbedResult['config'],
    durationS: t,
    reachedTarget: false,
    meanFinalAccuracy: null,
    minFinalAccuracy: null,
    peers: accs.map((a, index) => ({
      index,
      peerId: `peer${index}`,
      region: index % 2 === 0 ? 'us-east' : 'eu-west',
      finalAccuracy: a,
      modelsSent: 3,
      modelsReceived: 4,
      bytesSent: 2 ** 21,
      bytesReceived: 2 ** 21,
      merges: 2,
      steps: 100,
      trainSamples: 1000,
      series: [],
    })),
  }
}

function sink(isTTY: boolean, columns = 200) {
  const chunks: string[] = []
  return { out: { isTTY, columns, write: (s: string) => chunks.push(s) }, chunks }
}

describe('accuracyBar', () => {
  it('fills in proportion to accuracy and keeps its width', () => {
    expect(accuracyBar(1, 10)).toBe('██████████')
    expect(accuracyBar(0.5, 10)).toBe('█████·····')
    expect(accuracyBar(null, 4)).toBe('····')
    for (const a of [0, 0.013, 0.37, 0.999]) expect([...accuracyBar(a, 20)]).toHaveLength(20)
  })
})

describe('createProgressView', () => {
  it('on a TTY redraws the table in place: back up over the previous frame, clear, redraw', () => {
    const { out, chunks } = sink(true)
    const view = createProgressView(out)
    view.update('gossip', run(1, [0.5, null]))
    expect(chunks.join('')).not.toContain('\x1b[3F')
    chunks.length = 0
    view.update('gossip', run(2, [0.6, 0.7]))
    const frame = chunks.join('')
    // 1 header + 2 peers drawn before: move up 3 lines and clear below.
    expect(frame.startsWith('\x1b[3F\x1b[0J')).toBe(true)
    expect(frame).toContain('peer  1 eu-west')
    expect(frame.split('\n').filter((l) => l !== '')).toHaveLength(3)

    // A log line goes above the table, which is drawn again below it.
    chunks.length = 0
    view.log('hello')
    const after = chunks.join('')
    expect(after.startsWith('\x1b[3F\x1b[0Jhello\n')).toBe(true)
    expect(after.indexOf('peer  0')).toBeGreaterThan(after.indexOf('hello'))
  })

  it('on a TTY keeps every line within the terminal width', () => {
    const { out, chunks } = sink(true, 40)
    createProgressView(out).update('gossip', run(1, [0.5, 0.9]))
    for (const line of chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')) {
      expect(line.replaceAll('\x1b[2K', '').length).toBeLessThanOrEqual(39)
    }
  })

  it('elsewhere prints a plain line at most every interval, and at every phase change', () => {
    let now = 0
    const { out, chunks } = sink(false)
    const view = createProgressView(out, { intervalMs: 5000, now: () => now })
    for (let t = 0; t <= 12; t++) {
      now = t * 1000
      view.update('gossip', run(t, [0.5, 0.6]))
    }
    expect(chunks).toHaveLength(3)
    expect(chunks.join('')).not.toContain('\x1b[')
    view.update('baseline', run(0, [0.4, 0.4]))
    expect(chunks.at(-1)).toMatch(/^\[baseline\] t=/)
    expect(tableLines('gossip', run(5, [0.5, 0.6]))[0]).toContain('accuracy mean 0.550')
  })
})
