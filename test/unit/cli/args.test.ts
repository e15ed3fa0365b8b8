import { describe, expect, it } from 'vitest'
import { parseStartArgs, parseTestbedArgs } from '../../../src/cli/args.ts'
import { LEARN_DEFAULTS } from '../../../src/node/config.ts'

const BOOT = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'

describe('parseStartArgs', () => {
  it('gives a useful node with no flags', () => {
    const c = parseStartArgs([])
    expect(c.listen).toEqual(['/ip4/0.0.0.0/tcp/0'])
    expect(c.bootstrap).toEqual([])
    expect(c.model).toBe('mlp')
    expect(c.dataset).toBe('mnist')
    expect(c.partition).toBe('dirichlet:0.5')
    expect(c.gossip).toBe(true)
    expect(c.http).toBeUndefined()
  })

  it('serves as a relay and maps a port by UPnP only when asked', () => {
    const off = parseStartArgs([])
    expect([off.relay, off.upnp]).toEqual([false, false])
    const on = parseStartArgs(['--relay', '--upnp'])
    expect([on.relay, on.upnp]).toEqual([true, true])
    expect(parseStartArgs(['--upnp']).relay).toBe(false)
    // Switches take no value; the testbed's peers are all on 127.0.0.1 and have no use for either.
    expect(() => parseStartArgs(['--relay=yes'])).toThrow(expect.objectContaining({ name: 'UsageError' }))
    expect(() => parseTestbedArgs(['--relay'])).toThrow(expect.objectContaining({ name: 'UsageError' }))
  })

  it('reads repeatable and valued flags', () => {
    const c = parseStartArgs([
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--listen',
      '/ip4/127.0.0.1/tcp/5000',
      '--bootstrap',
      BOOT,
      '--model',
      'cnn',
      '--partition',
      'shards:2',
      '--peer-index',
      '3',
      '--peer-count',
      '4',
      '--seed',
      '7',
      '--http',
      '7001',
      '--no-gossip',
      '--merge',
      'align',
    ])
    expect(c.listen).toHaveLength(2)
    expect(c.bootstrap).toEqual([BOOT])
    expect(c.model).toBe('cnn')
    expect(c.partition).toBe('shards:2')
    expect([c.peerIndex, c.peerCount, c.seed, c.http]).toEqual([3, 4, 7, 7001])
    expect(c.gossip).toBe(false)
    expect(c.merge).toBe('align')
  })

  it('takes a dataset spec checked by the data layer', () => {
    expect(parseStartArgs(['--dataset', 'fashion-mnist']).dataset).toBe('fashion-mnist')
    expect(parseStartArgs(['--dataset', 'csv:a.csv,b.csv,label=y']).dataset).toBe('csv:a.csv,b.csv,label=y')
    expect(parseTestbedArgs(['--dataset', 'idx:a,b,c,d']).dataset).toBe('idx:a,b,c,d')
    for (const bad of ['cifar', 'csv:a.csv', 'idx:a,b,c,d,label=x']) {
      expect(() => parseStartArgs(['--dataset', bad]), bad).toThrow(
        expect.objectContaining({ name: 'UsageError', message: expect.stringContaining('--dataset') }),
      )
    }
  })

  it('reads the sampler flags and the testbed-only --wan-links', () => {
    expect(parseStartArgs([]).sampler).toBe('uniform')
    expect(parseStartArgs([]).wanLinks).toBeUndefined()
    const c = parseStartArgs(['--sampler', 'topology', '--random-share', '0.3', '--wan-links', 'links.json'])
    expect([c.sampler, c.randomShare, c.wanLinks]).toEqual(['topology', 0.3, 'links.json'])
  })

  it('takes a codec spec, raw-f32 by default', () => {
    expect(parseStartArgs([]).codec).toBe('raw-f32')
    expect(parseStartArgs(['--codec', 'f16']).codec).toBe('f16')
    expect(parseStartArgs(['--codec', 'partial:0.1+int8']).codec).toBe('partial:0.1+int8')
  })

  it('--round-ms MS: the least time between pushes, 0 turns it off, a negative or fractional value is refused', () => {
    expect(parseStartArgs([]).roundMs).toBe(LEARN_DEFAULTS.roundMs)
    expect(parseStartArgs(['--round-ms', '0']).roundMs).toBe(0)
    expect(parseStartArgs(['--round-ms', '250']).roundMs).toBe(250)
    expect(() => parseStartArgs(['--round-ms', '-1'])).toThrow(/--round-ms/)
    expect(() => parseStartArgs(['--round-ms', '1.5'])).toThrow(/--round-ms/)
  })

  it('--eval-share S: evaluation time per training time, positive, at most 100', () => {
    expect(parseStartArgs([]).evalShare).toBe(LEARN_DEFAULTS.evalShare)
    expect(parseStartArgs(['--eval-share', '2']).evalShare).toBe(2)
    expect(parseStartArgs(['--eval-share=0.05']).evalShare).toBe(0.05)
    for (const bad of ['0', '-1', '101', 'often']) {
      expect(() => parseStartArgs([`--eval-share=${bad}`])).toThrow(/--eval-share/)
    }
  })

  it('--max-upload RATE: bytes per second, unlimited by default', () => {
    expect(parseStartArgs([]).maxUploadBytesPerS).toBeUndefined()
    expect(parseStartArgs(['--max-upload', '1mbit']).maxUploadBytesPerS).toBe(125_000)
    expect(parseTestbedArgs(['--max-upload', '200kbit']).maxUploadBytesPerS).toBe(25_000)
  })

  it('--max-inbound N: inbound transfers at once, the exchange default when absent', () => {
    expect(parseStartArgs([]).maxInbound).toBeUndefined()
    expect(parseStartArgs(['--max-inbound', '16']).maxInbound).toBe(16)
    expect(parseTestbedArgs(['--max-inbound', '3']).maxInbound).toBe(3)
  })

  it('takes a merge pipeline name or a list of merge steps', () => {
    expect(parseStartArgs([]).merge).toBe('robust')
    expect(parseStartArgs(['--merge', 'align+varcorr']).merge).toBe('align+varcorr')
    expect(parseStartArgs(['--merge', 'align,average,varcorr']).merge).toBe('align,average,varcorr')
  })

  it('--defences on|off: off turns the learner defences off and, without --merge, the robust steps', () => {
    expect(parseStartArgs([]).defences).toBe(true)
    expect(parseStartArgs(['--defences', 'on'])).toMatchObject({ defences: true, merge: 'robust' })
    expect(parseStartArgs(['--defences', 'off'])).toMatchObject({ defences: false, merge: 'varcorr' })
    expect(parseStartArgs(['--defences', 'off', '--merge', 'robust'])).toMatchObject({
      defences: false,
      merge: 'robust',
    })
    expect(() => parseStartArgs(['--defences', 'maybe'])).toThrowError(
      expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/--defences/) }),
    )
  })

  it('--no-defence switches one defence off (repeatable or a list), only with the defences on', () => {
    expect(parseStartArgs([]).defencesOff).toBeUndefined()
    expect(parseStartArgs(['--no-defence', 'share']).defencesOff).toEqual(['share'])
    expect(parseStartArgs(['--no-defence', 'share', '--no-defence', 'suspects,share']).defencesOff).toEqual([
      'share',
      'suspects',
    ])
    expect(() => parseStartArgs(['--no-defence', 'probe'])).toThrowError(
      expect.objectContaining({
        name: 'UsageError',
        message: expect.stringMatching(/--no-defence.*share \| suspects/),
      }),
    )
    expect(() => parseStartArgs(['--defences', 'off', '--no-defence', 'share'])).toThrowError(
      expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/--defences off/) }),
    )
    expect(parseTestbedArgs(['--no-defence', 'suspects']).defencesOff).toEqual(['suspects'])
  })

  it.each([
    [['--model', 'rnn'], /--model/],
    [['--partition', 'dirichlet:-1'], /--partition/],
    [['--partition', 'zipf'], /--partition/],
    [['--peer-index', '4', '--peer-count', '4'], /--peer-index/],
    [['--http', '70000'], /--http/],
    [['--http', 'abc'], /--http/],
    [['--seed', '1.5'], /--seed/],
    [['--bootstrap', 'not-an-addr'], /--bootstrap/],
    [['--bootstrap', '/ip4/127.0.0.1/tcp/4001'], /--bootstrap/],
    [['--listen', 'garbage'], /--listen/],
    [['--merge', 'median'], /--merge/],
    [['--merge', 'align,trim,average'], /--merge/],
    [['--merge', 'average,align'], /--merge/],
    [['--frobnicate'], /--frobnicate/],
    [['--lr', '0'], /--lr/],
    [['--sampler', 'nearest'], /--sampler/],
    [['--random-share', '1.5'], /--random-share/],
    [['--codec', 'int9'], /--codec/],
    [['--codec', 'f16:2'], /--codec/],
    [['--codec', 'topk:2'], /--codec/],
    [['--max-upload', 'fast'], /--max-upload/],
    [['--max-upload', '1mb'], /--max-upload/],
    [['--max-inbound', '1'], /--max-inbound/],
    [['--max-inbound', '2.5'], /--max-inbound/],
    [['--max-inbound', 'many'], /--max-inbound/],
  ])('refuses %j with a UsageError naming the flag', (argv, re) => {
    let err: Error | undefined
    try {
      parseStartArgs(argv)
    } catch (e) {
      err = e as Error
    }
    expect(err?.name).toBe('UsageError')
    expect(err?.message).toMatch(re)
    expect(err?.message).not.toContain('\n')
  })
})

describe('parseTestbedArgs', () => {
  it('defaults to 8 peers, MNIST, MLP, dirichlet:0.5', () => {
    const c = parseTestbedArgs([])
    expect([c.peers, c.dataset, c.model, c.partition, c.gossip]).toEqual([
      8,
      'mnist',
      'mlp',
      'dirichlet:0.5',
      true,
    ])
  })

  it('reads its flags', () => {
    const c = parseTestbedArgs([
      '--peers',
      '4',
      '--duration',
      '60',
      '--target-accuracy',
      '0.9',
      '--json',
      'o.json',
      '--no-gossip',
    ])
    expect([c.peers, c.durationS, c.targetAccuracy, c.json, c.gossip]).toEqual([4, 60, 0.9, 'o.json', false])
    expect(c.codec).toBe('raw-f32')
    expect(parseTestbedArgs(['--codec', 'f16']).codec).toBe('f16')
  })

  it('--regions sets the peer count; region names are checked against the built-in topology unless --links is given', () => {
    const c = parseTestbedArgs(['--regions', 'us-east:4,eu-west:4,ap-southeast:4', '--sampler', 'topology'])
    expect([c.peers, c.regions, c.links, c.sampler]).toEqual([
      12,
      'us-east:4,eu-west:4,ap-southeast:4',
      undefined,
      'topology',
    ])
    expect(parseTestbedArgs(['--regions', 'us-east:2,eu-west:1', '--peers', '3']).peers).toBe(3)
    const l = parseTestbedArgs(['--regions', 'mars:2,venus:3', '--links', 'planets.json'])
    expect([l.peers, l.links]).toEqual([5, 'planets.json'])
  })

  it.each([
    [['--regions', 'mars:2'], /--regions/],
    [['--regions', 'us-east'], /--regions/],
    [['--regions', 'us-east:2,us-east:2'], /--regions/],
    [['--regions', 'us-east:0'], /--regions/],
    [['--regions', 'us-east:40,eu-west:40'], /--regions/],
    [['--regions', 'us-east:2', '--peers', '3'], /--peers/],
    [['--random-share', '-0.1'], /--random-share/],
    [['--http', '7000', '--no-http'], /--no-http/],
    [['--http', '70000'], /--http/],
    [['--baseline', '--no-gossip'], /--baseline/],
  ])('refuses %j with a one-line UsageError naming the flag', (argv, re) => {
    let err: Error | undefined
    try {
      parseTestbedArgs(argv)
    } catch (e) {
      err = e as Error
    }
    expect(err?.name).toBe('UsageError')
    expect(err?.message).toMatch(re)
    expect(err?.message).not.toContain('\n')
  })

  it('serves the live page on a free port by default; --http PORT, --no-http, --report, --baseline', () => {
    const d = parseTestbedArgs([])
    expect(d.http).toBe(0)
    expect(d.baseline).toBe(false)
    expect(d.report).toBeUndefined()
    expect(parseTestbedArgs(['--http', '7070']).http).toBe(7070)
    expect(parseTestbedArgs(['--no-http']).http).toBeUndefined()
    const c = parseTestbedArgs(['--report', 'run.html', '--baseline'])
    expect(c.report).toBe('run.html')
    expect(c.baseline).toBe(true)
  })

  it.each([
    [['--peers', '0'], /--peers/],
    [['--duration', '-3'], /--duration/],
    [['--target-accuracy', '1.5'], /--target-accuracy/],
  ])('refuses %j', (argv, re) => {
    expect(() => parseTestbedArgs(argv)).toThrow(re)
  })

  it('--byzantine K:MODE starts attackers (repeatable or a comma list); none by default', () => {
    expect(parseTestbedArgs([]).byzantine).toBeUndefined()
    const c = parseTestbedArgs([
      '--byzantine',
      '4:sign-flip',
      '--byzantine',
      '1:scale,1:alie',
      '--attack-interval',
      '200',
    ])
    expect(c.byzantine).toEqual([
      { count: 4, mode: 'sign-flip' },
      { count: 1, mode: 'scale' },
      { count: 1, mode: 'alie' },
    ])
    expect(c.attackIntervalMs).toBe(200)
    expect(c.peers).toBe(8)
  })

  it.each([
    [['--byzantine', '4:bogus'], /--byzantine: unknown attack mode 'bogus'/],
    [['--byzantine', 'sign-flip'], /--byzantine/],
    [['--byzantine', '1:scale', '--no-gossip'], /--byzantine needs gossip/],
    [['--attack-interval', '100'], /--attack-interval needs --byzantine/],
    [['--byzantine', '1:scale', '--attack-interval', '1'], /--attack-interval/],
  ])('refuses %j with a UsageError naming the flag', (argv, re) => {
    expect(() => parseTestbedArgs(argv)).toThrowError(expect.objectContaining({ name: 'UsageError' }))
    expect(() => parseTestbedArgs(argv)).toThrow(re)
  })

  it('--defences off reaches every peer and, without --merge, drops the robust steps as start does', () => {
    expect(parseTestbedArgs([]).defences).toBeUndefined()
    const off = parseTestbedArgs(['--defences', 'off'])
    expect(off.defences).toBe(false)
    expect(off.merge).toBe(parseStartArgs(['--defences', 'off']).merge)
    expect(parseTestbedArgs(['--defences', 'off', '--merge', 'plain']).merge).toBe('plain')
    expect(parseTestbedArgs(['--defences', 'on']).defences).toBe(true)
    expect(() => parseTestbedArgs(['--defences', 'maybe'])).toThrow(/--defences/)
  })

  it('start has no attack mode', () => {
    expect(() => parseStartArgs(['--byzantine', '1:scale'])).toThrowError(
      expect.objectContaining({ name: 'UsageError' }),
    )
  })

  it('--train-rate and --churn: a cap on start, specs on the testbed, UsageError naming the flag', () => {
    expect(parseStartArgs([]).trainRate).toBeUndefined()
    expect(parseStartArgs(['--train-rate', '12.5']).trainRate).toBe(12.5)
    expect(() => parseStartArgs(['--train-rate', '0'])).toThrowError(
      expect.objectContaining({ name: 'UsageError' }),
    )
    const tb = parseTestbedArgs(['--train-rate', '20,straggler:0.25@5', '--churn', 'kill:0.5@10s,join:1@5'])
    expect(tb.trainRate).toEqual({ rate: 20, straggler: { fraction: 0.25, rate: 5 } })
    expect(tb.churn?.map((e) => e.action)).toEqual(['join', 'kill'])
    for (const argv of [
      ['--churn', 'kill:2@1'],
      ['--train-rate', 'fast'],
    ]) {
      expect(() => parseTestbedArgs(argv)).toThrowError(expect.objectContaining({ name: 'UsageError' }))
      expect(() => parseTestbedArgs(argv)).toThrow(new RegExp(`^${argv[0]}`))
    }
  })
})
