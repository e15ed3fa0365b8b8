import { describe, expect, it } from 'vitest'
import { parseStartArgs, parseTestbedArgs } from '../../../src/cli/args.ts'
import { LEARN_DEFAULTS } from '../../../src/node/config.ts'
import { daemonArgs } from '../../../src/testbed/spawn.ts'

/** What `start` makes of the command line the testbed gives peer `index` (BIN and `start` dropped). */
function startConfigOf(testbedArgv: string[], index = 0) {
  const argv = daemonArgs(parseTestbedArgs(testbedArgv), index, '/tmp/peer-0', { peerCount: 4 })
  expect(argv[1]).toBe('start')
  return parseStartArgs(argv.slice(2))
}

describe('daemonArgs', () => {
  it("passes the testbed's learning flags to every peer as start reads them", () => {
    const c = startConfigOf([
      '--peers',
      '4',
      '--merge',
      'align,average,varcorr',
      '--codec',
      'int8',
      '--fanout',
      '3',
      '--seed',
      '7',
    ])
    expect(c).toMatchObject({
      merge: 'align,average,varcorr',
      codec: 'int8',
      fanout: 3,
      seed: 7,
      peerCount: 4,
      peerIndex: 0,
      defences: true,
      // Its peers stop when the testbed dies, SIGKILL included (test/e2e/testbed-orphans.test.ts).
      stopOnStdinClose: true,
    })
    expect(c.defencesOff).toBeUndefined()
  })

  it('passes --max-inbound, and without it leaves the default to the daemon', () => {
    expect(startConfigOf(['--max-inbound', '12']).maxInbound).toBe(12)
    expect(startConfigOf([]).maxInbound).toBeUndefined()
  })

  it('passes --hungry-boost, and without it leaves the default to the daemon', () => {
    expect(startConfigOf(['--hungry-boost', '1']).hungryBoost).toBe(1)
    expect(startConfigOf([]).hungryBoost).toBeUndefined()
  })

  it("passes --round-ms, the default included, so every peer pushes on the testbed's period", () => {
    expect(startConfigOf(['--round-ms', '0']).roundMs).toBe(0)
    expect(startConfigOf(['--round-ms', '2500']).roundMs).toBe(2500)
    expect(startConfigOf([]).roundMs).toBe(LEARN_DEFAULTS.roundMs)
  })

  it('passes --eval-share, the default included', () => {
    expect(startConfigOf(['--eval-share', '2']).evalShare).toBe(2)
    expect(startConfigOf([]).evalShare).toBe(LEARN_DEFAULTS.evalShare)
  })

  it('passes a delta codec and --partners', () => {
    expect(startConfigOf(['--codec', 'delta+partial:0.25+int2', '--partners', '3'])).toMatchObject({
      codec: 'delta+partial:0.25+int2',
      partners: 3,
    })
    expect(startConfigOf([]).partners).toBeUndefined()
  })

  it('passes --defences and --no-defence, so an ablation reaches the peers', () => {
    expect(startConfigOf(['--defences', 'off'])).toMatchObject({ defences: false, merge: 'varcorr' })
    expect(startConfigOf(['--no-defence', 'share', '--no-defence', 'suspects']).defencesOff).toEqual([
      'share',
      'suspects',
    ])
  })
})
