import { describe, expect, it } from 'vitest'
import { parseStartArgs } from '../../../src/cli/args.ts'
import { learnerDefences, pushCodecOptions, pushPartners } from '../../../src/node/config.ts'

describe('learnerDefences', () => {
  it('defaults: every defence on, suspects skipped', () => {
    expect(learnerDefences(parseStartArgs([]))).toEqual({ options: {}, skipSuspects: true })
  })

  it('--defences off: the undefended baseline', () => {
    expect(learnerDefences(parseStartArgs(['--defences', 'off']))).toEqual({
      options: false,
      skipSuspects: false,
    })
  })

  it('--no-defence takes out exactly the one named', () => {
    expect(learnerDefences(parseStartArgs(['--no-defence', 'share']))).toEqual({
      options: { share: false },
      skipSuspects: true,
    })
    expect(learnerDefences(parseStartArgs(['--no-defence', 'suspects']))).toEqual({
      options: {},
      skipSuspects: false,
    })
    expect(learnerDefences(parseStartArgs(['--no-defence', 'share,suspects']))).toEqual({
      options: { share: false },
      skipSuspects: false,
    })
  })
})

describe('pushPartners', () => {
  it('keeps 4 partners with a delta codec, any peer otherwise, and what --partners says', () => {
    expect(pushPartners(parseStartArgs([]))).toBeUndefined()
    expect(pushPartners(parseStartArgs(['--codec', 'delta+partial:0.25+int2']))).toBe(4)
    expect(pushPartners(parseStartArgs(['--codec', 'int4', '--partners', '2']))).toBe(2)
    expect(() => parseStartArgs(['--partners', '0'])).toThrow(/--partners/)
  })

  it('reads --hungry-boost, 1 or more', () => {
    expect(parseStartArgs([]).hungryBoost).toBeUndefined()
    expect(parseStartArgs(['--hungry-boost', '1']).hungryBoost).toBe(1)
    expect(parseStartArgs(['--hungry-boost', '2.5']).hungryBoost).toBe(2.5)
    expect(() => parseStartArgs(['--hungry-boost', '0.5'])).toThrow(/--hungry-boost/)
    expect(() => parseStartArgs(['--codec', 'delta+int4:ef'])).toThrow(/--codec/)
  })
})

describe('pushCodecOptions', () => {
  // A stand-in share: quiet wherever the index is below share * 1000.
  const share = { quietInputs: (q: number) => Uint8Array.from([0, 1, 2, 3], (j) => (j < q * 1000 ? 1 : 0)) }

  it('gives partial codecs the quiet inputs at --quiet-inputs (0.001 by default), and nothing else any', () => {
    const opts = (argv: string[]) => pushCodecOptions(parseStartArgs(argv), share)?.quietInputs
    expect(Array.from(opts(['--codec', 'delta+partial:0.25+int2'])!)).toEqual([1, 0, 0, 0])
    expect(Array.from(opts(['--codec', 'partial:0.1+int8', '--quiet-inputs', '0.003'])!)).toEqual([
      1, 1, 1, 0,
    ])
    expect(opts(['--codec', 'partial:0.1', '--quiet-inputs', 'off'])).toBeUndefined()
    for (const codec of ['raw-f32', 'int4', 'topk:0.1+int8', 'delta+int2'])
      expect(opts(['--codec', codec])).toBeUndefined()
  })

  it('--quiet-inputs takes a share in [0, 1) or off', () => {
    expect(parseStartArgs([]).quietInputs).toBeUndefined()
    expect(parseStartArgs(['--quiet-inputs', '0']).quietInputs).toBe(0)
    expect(parseStartArgs(['--quiet-inputs', 'off']).quietInputs).toBe(false)
    for (const bad of ['1', '-0.1', 'some', ''])
      expect(() => parseStartArgs(['--quiet-inputs', bad])).toThrow(/--quiet-inputs/)
  })
})
