import { describe, expect, it } from 'vitest'
import { enteredViews } from '../../../src/testbed/testbed.ts'

describe('enteredViews', () => {
  it("takes for each peer the earliest time another peer's view says it entered, never its own entry", () => {
    const first = enteredViews([
      { peerId: 'a', status: { viewSince: { b: 300, c: 500, a: 1 } } },
      { peerId: 'b', status: { viewSince: { a: 200, c: 400 } } },
      // A peer never read has nothing to say; one read with an empty view neither.
      { peerId: 'c' },
      { peerId: 'd', status: { viewSince: {} } },
    ])
    expect(Object.fromEntries(first)).toEqual({ a: 200, b: 300, c: 400 })
    expect(first.has('d')).toBe(false)
  })
})
