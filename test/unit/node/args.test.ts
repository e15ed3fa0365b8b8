import { describe, expect, it } from 'vitest'
import { parseStartArgs, parseTestbedArgs } from '../../../src/node/args.ts'

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
      '--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/5000',
      '--bootstrap', BOOT, '--model', 'cnn', '--partition', 'shards:2',
      '--peer-index', '3', '--peer-count', '4', '--seed', '7', '--http', '7001', '--no-gossip', '--merge', 'align',
    ])
    expect(c.listen).toHaveLength(2)
    expect(c.bootstrap).toEqual([BOOT])
    expect(c.model).toBe('cnn')
    expect(c.partition).toBe('shards:2')
    expect([c.peerIndex, c.peerCount, c.seed, c.http]).toEqual([3, 4, 7, 7001])
    expect(c.gossip).toBe(false)
    expect(c.merge).toBe('align')
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
    [['--frobnicate'], /--frobnicate/],
    [['--lr', '0'], /--lr/],
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
    expect([c.peers, c.dataset, c.model, c.partition, c.gossip]).toEqual([8, 'mnist', 'mlp', 'dirichlet:0.5', true])
  })

  it('reads its flags', () => {
    const c = parseTestbedArgs(['--peers', '4', '--duration', '60', '--target-accuracy', '0.9', '--json', 'o.json', '--no-gossip'])
    expect([c.peers, c.durationS, c.targetAccuracy, c.json, c.gossip]).toEqual([4, 60, 0.9, 'o.json', false])
  })

  it.each([
    [['--peers', '0'], /--peers/],
    [['--duration', '-3'], /--duration/],
    [['--target-accuracy', '1.5'], /--target-accuracy/],
  ])('refuses %j', (argv, re) => {
    expect(() => parseTestbedArgs(argv)).toThrow(re)
  })
})
