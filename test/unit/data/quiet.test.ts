import { describe, expect, it } from 'vitest'
import { quietFeatures } from '../../../src/data/quiet.ts'
import { byteStore } from '../../../src/data/samples.ts'
import { errorName } from '../error-name.ts'

describe('quietFeatures', () => {
  // 1000 samples of 4 features: feature 0 never lit, 1 lit once, 2 lit twice, 3 always.
  const bytes = new Uint8Array(4000)
  for (let i = 0; i < 1000; i++) bytes[i * 4 + 3] = 200
  bytes[5 * 4 + 1] = 1
  bytes[7 * 4 + 2] = 9
  bytes[8 * 4 + 2] = 9
  const store = byteStore(bytes, new Uint8Array(1000), 4)

  it('marks the features non-zero in at most the given share of the samples', () => {
    expect(Array.from(quietFeatures(store, 0))).toEqual([1, 0, 0, 0])
    expect(Array.from(quietFeatures(store, 0.001))).toEqual([1, 1, 0, 0])
    expect(Array.from(quietFeatures(store))).toEqual([1, 1, 0, 0])
    expect(Array.from(quietFeatures(store, 0.002))).toEqual([1, 1, 1, 0])
  })

  it('refuses a share outside [0, 1)', () => {
    for (const bad of [-0.1, 1, Number.NaN])
      expect(errorName(() => quietFeatures(store, bad))).toBe('InvalidArgumentError')
  })
})
