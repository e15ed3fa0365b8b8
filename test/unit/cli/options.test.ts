import { describe, expect, it } from 'vitest'
import { parseStartArgs, parseTestbedArgs, START_USAGE, TESTBED_USAGE } from '../../../src/cli/args.ts'
import { formatHelp, START_FLAGS, TESTBED_FLAGS } from '../../../src/cli/options.ts'
import { LEARN_DEFAULTS, NODE_DEFAULTS } from '../../../src/node/config.ts'

describe('flag tables', () => {
  it.each([
    ['start', START_FLAGS, START_USAGE],
    ['testbed', TESTBED_FLAGS, TESTBED_USAGE],
  ] as const)('%s --help lists every flag the parser accepts, once', (_cmd, flags, usage) => {
    const names = flags.map((f) => f.name)
    expect(new Set(names).size).toBe(names.length)
    for (const n of names) expect(usage).toMatch(new RegExp(`^  --${n}\\b`, 'm'))
  })

  it('the parser refuses a flag that is not in the table', () => {
    expect(() => parseStartArgs(['--peers', '3'])).toThrow(expect.objectContaining({ name: 'UsageError' }))
    expect(() => parseTestbedArgs(['--listen', '/ip4/127.0.0.1/tcp/0'])).toThrow(
      expect.objectContaining({ name: 'UsageError' }),
    )
  })

  it('shows the defaults the parser applies (taken from the same constants)', () => {
    const c = parseStartArgs([])
    const line = (name: string) => START_USAGE.split('\n').find((l) => l.startsWith(`  --${name} `))!
    expect(line('merge')).toContain(`(default: ${c.merge})`)
    expect(line('codec')).toContain(`(default: ${c.codec})`)
    expect(line('steps-per-round')).toContain(`(default: ${LEARN_DEFAULTS.stepsPerRound})`)
    expect(line('peer-count')).toContain(`(default: ${NODE_DEFAULTS.peerCount})`)
    expect(line('lr')).toContain(`(default: ${c.learningRate})`)
    expect(line('dataset')).toContain(`(default: ${c.dataset})`)
  })

  it('wraps a long flag onto its own line', () => {
    const text = formatHelp('x', 'summary', [
      { name: 'a-very-long-flag-name-indeed', type: 'string', value: 'SOMETHING_LONG', help: 'h' },
      { name: 'b', type: 'boolean', help: 'short' },
    ])
    expect(text).toContain('  --a-very-long-flag-name-indeed SOMETHING_LONG\n')
    expect(text).toMatch(/^ {2}--b +short$/m)
  })
})
