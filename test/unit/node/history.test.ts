/** The dashboard's history: bounded, and it keeps the whole run by thinning the past. */
import { describe, expect, it } from 'vitest'
import { History, type HistoryPoint } from '../../../src/node/dashboard/history.ts'
import { type HistorySource, recordHistory } from '../../../src/node/dashboard/index.ts'
import { until } from '../../e2e/until.ts'

const point = (t: number): HistoryPoint => ({
  t,
  accuracy: null,
  loss: null,
  age: 0,
  steps: t,
  modelsSent: 0,
  modelsReceived: 0,
  bytesSent: 0,
  bytesReceived: 0,
  merges: 0,
  rejected: 0,
  viewSize: 0,
})

describe('History', () => {
  it('never holds more than its bound and still spans the whole run', () => {
    const h = new History({ maxPoints: 16 })
    for (let t = 0; t <= 1000; t += 2) h.push(point(t))
    const all = h.since()
    expect(all.length).toBeLessThan(16)
    expect(all[0]!.t).toBe(0)
    expect(all.at(-1)!.t).toBeGreaterThan(900)
    for (let i = 1; i < all.length; i++) expect(all[i]!.t).toBeGreaterThan(all[i - 1]!.t)
  })

  it('answers only the points newer than `since`', () => {
    const h = new History()
    for (let t = 0; t < 10; t++) h.push(point(t))
    expect(h.since(6.5).map((p) => p.t)).toEqual([7, 8, 9])
    expect(h.since(9)).toEqual([])
    expect(h.since(Number.NaN)).toHaveLength(10)
  })
})

describe('recordHistory', () => {
  it('records points from a source that holds only the fields a point keeps', async () => {
    let steps = 0
    const source = (): HistorySource => ({
      lastAccuracy: 0.5,
      lastLoss: 1.2,
      age: 10,
      steps: ++steps,
      modelsSent: 1,
      modelsReceived: 2,
      bytesSent: 300,
      bytesReceived: 400,
      merges: 3,
      rejected: { TaskMismatchError: 2, InvalidDescriptorError: 1 },
      viewSize: 7,
    })
    const rec = recordHistory(source, { intervalMs: 5, startedAt: Date.now() })
    try {
      await until('two history points', () => rec.history.since().length >= 2, 5000, 5)
    } finally {
      rec.stop()
    }
    const [first, second] = rec.history.since()
    expect(first).toMatchObject({
      accuracy: 0.5,
      loss: 1.2,
      age: 10,
      steps: 1,
      merges: 3,
      rejected: 3,
      viewSize: 7,
    })
    expect(second!.steps).toBe(2)
  })
})
