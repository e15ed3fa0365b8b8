import { describe, expect, it } from 'vitest'
import { hostGroups } from '../../../src/testbed/spawn.ts'

describe('hostGroups', () => {
  it('puts the bootstrap alone in hosts of more than two, then consecutive groups of at most `per`', () => {
    expect(hostGroups(7, 3)).toEqual([[0], [1, 2, 3], [4, 5, 6]])
    const big = hostGroups(128, 16)
    expect(big[0]).toEqual([0])
    expect(big.slice(1).map((g) => g.length)).toEqual([16, 16, 16, 16, 16, 16, 16, 15])
    expect(big.flat()).toEqual(Array.from({ length: 128 }, (_, i) => i))
  })

  it('groups from the bootstrap on in hosts of two: one process a core for 4 peers on 2 cores', () => {
    expect(hostGroups(4, 2)).toEqual([
      [0, 1],
      [2, 3],
    ])
    expect(hostGroups(5, 2)).toEqual([[0, 1], [2, 3], [4]])
  })

  it('keeps one process when every peer fits in it', () => {
    expect(hostGroups(16, 16)).toEqual([Array.from({ length: 16 }, (_, i) => i)])
    expect(hostGroups(3, 8)).toEqual([[0, 1, 2]])
  })
})
