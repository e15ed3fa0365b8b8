import { describe, expect, it } from 'vitest'
import { earliest, enteredViews } from '../../../src/testbed/poll.ts'

describe('earliest', () => {
  it('keeps the earliest time seen for each peer over successive answers', () => {
    let seen = earliest(undefined, { a: 500, b: 300 })
    // A later answer: b expired and came back (a later time), c is new.
    seen = earliest(seen, { b: 900, c: 700 })
    seen = earliest(seen, { a: 400 })
    expect(Object.fromEntries(seen)).toEqual({ a: 400, b: 300, c: 700 })
    expect(Object.fromEntries(earliest(seen, undefined))).toEqual({ a: 400, b: 300, c: 700 })
  })
})

describe('enteredViews', () => {
  it("takes for each peer the earliest time another peer's view held it, never its own entry", () => {
    const first = enteredViews([
      {
        peerId: 'a',
        viewSince: new Map([
          ['b', 300],
          ['c', 500],
          ['a', 1],
        ]),
      },
      {
        peerId: 'b',
        viewSince: new Map([
          ['a', 200],
          ['c', 400],
        ]),
      },
      // A peer never read has nothing to say; one read with an empty view neither.
      { peerId: 'c' },
      { peerId: 'd', viewSince: new Map() },
    ])
    expect(Object.fromEntries(first)).toEqual({ a: 200, b: 300, c: 400 })
    expect(first.has('d')).toBe(false)
  })
})
