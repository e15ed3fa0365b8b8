import { describe, expect, it } from 'vitest'
import { parseStartArgs } from '../../../src/cli/args.ts'
import { learnerDefences, pushPartners } from '../../../src/node/config.ts'

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
    expect(() => parseStartArgs(['--codec', 'delta+int4:ef'])).toThrow(/--codec/)
  })
})
