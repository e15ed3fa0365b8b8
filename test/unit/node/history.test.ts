/** The dashboard's history: bounded, and it keeps the whole run by thinning the past. */
import { describe, expect, it } from 'vitest'
import { History, type HistoryPoint } from '../../../src/node/dashboard/history.ts'

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
