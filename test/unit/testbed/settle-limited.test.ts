import { describe, expect, it } from 'vitest'
import { settleLimited } from '../../../src/testbed/settle-limited.ts'

describe('settleLimited', () => {
  it('runs at most `limit` at once, starts in order, and settles every item like allSettled', async () => {
    let inFlight = 0
    let most = 0
    const started: number[] = []
    const results = await settleLimited([1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
      started.push(i)
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise((r) => setTimeout(r, 5 * (8 - i)))
      inFlight--
      if (i === 4) throw new Error('four')
      return i * 10
    })
    expect(most).toBe(3)
    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'rejected'))).toEqual([
      10,
      20,
      30,
      'rejected',
      50,
      60,
      70,
    ])
  })

  it('settles an empty list at once', async () => {
    expect(await settleLimited([], 4, async () => 1)).toEqual([])
  })
})
