import { describe, expect, it } from 'vitest'
import { parseStartArgs, parseTestbedArgs } from '../../../src/cli/args.ts'

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

  it('takes a value codec, raw-f32 by default', () => {
    expect(parseStartArgs([]).codec).toBe('raw-f32')
    expect(parseStartArgs(['--codec', 'f16']).codec).toBe('f16')
  })

  it('takes a merge pipeline name or a list of merge steps', () => {
    expect(parseStartArgs([]).merge).toBe('varcorr')
    expect(parseStartArgs(['--merge', 'align+varcorr']).merge).toBe('align+varcorr')
    expect(parseStartArgs(['--merge', 'align,average,varcorr']).merge).toBe('align,average,varcorr')
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
    [['--merge', 'align,clip,average'], /--merge/],
    [['--merge', 'average,align'], /--merge/],
    [['--frobnicate'], /--frobnicate/],
    [['--lr', '0'], /--lr/],
    [['--sampler', 'nearest'], /--sampler/],
    [['--random-share', '1.5'], /--random-share/],
    [['--codec', 'int8'], /--codec/],
    [['--codec', 'f16:2'], /--codec/],
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

  it.each([
    [['--peers', '0'], /--peers/],
    [['--duration', '-3'], /--duration/],
    [['--target-accuracy', '1.5'], /--target-accuracy/],
  ])('refuses %j', (argv, re) => {
    expect(() => parseTestbedArgs(argv)).toThrow(re)
  })
})
