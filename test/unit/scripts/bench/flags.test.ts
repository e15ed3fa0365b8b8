import { describe, expect, it } from 'vitest'
import { quotedWords, seedList, testbedFlags } from '../../../../scripts/bench/flags.ts'

describe('bench flags', () => {
  it('lists seeds from ranges and single values, in order, each once', () => {
    expect(seedList('1-3')).toEqual([1, 2, 3])
    expect(seedList('2, 4-6,5,1')).toEqual([2, 4, 5, 6, 1])
    expect(seedList('none')).toEqual([])
    expect(seedList('')).toEqual([])
  })

  it('refuses seeds that are not numbers or run backwards', () => {
    expect(() => seedList('x')).toThrow(RangeError)
    expect(() => seedList('1,a-3')).toThrow(/expected/)
    expect(() => seedList('3-1')).toThrow(/runs backwards/)
    expect(() => seedList('-1')).toThrow(RangeError)
  })

  it('keeps a quoted value with spaces in one word, where testbedFlags splits it', () => {
    const text = `--duration 300 --testbed='--links docs/x.json' --merge "robust"`
    expect(quotedWords(text)).toEqual([
      '--duration',
      '300',
      '--testbed=--links docs/x.json',
      '--merge',
      'robust',
    ])
    expect(testbedFlags(text)).toHaveLength(6)
    expect(quotedWords('  ')).toEqual([])
  })
})
