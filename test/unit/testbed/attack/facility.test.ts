import { describe, expect, it } from 'vitest'
import {
  type AttackerProcessConfig,
  attackerArgv,
  hostedAttackersArgv,
  parseAttackerArgs,
  splitAttackerArgv,
} from '../../../../src/testbed/attack/args.ts'
import type { AttackerStats } from '../../../../src/testbed/attack/attacker.ts'
import {
  attackerResult,
  formatAttackers,
  type HonestView,
  observeRefusals,
  type TrackedAttacker,
} from '../../../../src/testbed/attack/facility.ts'
import { runAttackerProcess } from '../../../../src/testbed/attack/process.ts'

const CONFIG: AttackerProcessConfig = {
  mode: 'alie',
  bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzhJ7xi1P8oTtGS6GT3dA8gGM7Rbxh3ppJ7g5Cm9h5uJ'],
  listen: ['/ip4/127.0.0.1/tcp/0'],
  dataDir: '/tmp/attacker-0',
  dataset: 'mnist',
  model: 'mlp',
  hidden: 32,
  partition: 'dirichlet:0.5',
  peerIndex: 3,
  peerCount: 12,
  seed: 1,
  attackSeed: 123456,
  intervalMs: 250,
  fanout: 2,
  stepsPerRound: 20,
  roundMs: 0,
  trainRate: 12.5,
  batchSize: 32,
  learningRate: 0.002,
  evalSize: 500,
  codec: 'f16',
  targets: ['a', 'b'],
  spare: ['c'],
  statusIntervalMs: 1000,
}

describe('attacker command line', () => {
  it('round-trips a config through attackerArgv and parseAttackerArgs', () => {
    expect(parseAttackerArgs(attackerArgv(CONFIG))).toEqual(CONFIG)
    const minimal = parseAttackerArgs(['--mode', 'scale'])
    expect(minimal).toMatchObject({ mode: 'scale', bootstrap: [], peerIndex: 0, peerCount: 1 })
    expect(minimal.targets).toBeUndefined()
    expect(minimal.spare).toBeUndefined()
    expect(minimal.trainRate).toBeUndefined()
    // Without --round-ms the label-flip learner keeps the learner's default.
    expect(minimal.roundMs).toBeUndefined()
  })

  it('one process hosts several attackers: each config round-trips through its own group', () => {
    const second: AttackerProcessConfig = {
      ...CONFIG,
      mode: 'sign-flip',
      dataDir: '/tmp/attacker-1',
      peerIndex: 4,
    }
    const groups = splitAttackerArgv(hostedAttackersArgv([CONFIG, second]))
    expect(groups.map((g) => parseAttackerArgs(g))).toEqual([CONFIG, second])
    // The flags of one attacker alone are one group.
    expect(splitAttackerArgv(attackerArgv(CONFIG))).toEqual([attackerArgv(CONFIG)])
  })

  it('refuses the whole process when one hosted attacker has bad flags', async () => {
    const lines: string[] = []
    const argv = [...hostedAttackersArgv([CONFIG]), '--attacker', '--mode', 'nope']
    expect(await runAttackerProcess(argv, (l) => lines.push(l))).toBe(2)
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'error', name: 'UsageError' })
  })

  it('an attacker process answers bad flags with one JSON error line and exit code 2', async () => {
    const lines: string[] = []
    expect(await runAttackerProcess(['--mode', 'nope'], (l) => lines.push(l))).toBe(2)
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'error', name: 'UsageError' })
  })

  it.each([
    [['--mode', 'nope']],
    [[]],
    [['--mode', 'scale', '--interval', '0']],
    [['--mode', 'scale', '--peer-index', '3', '--peer-count', '3']],
    [['--mode', 'scale', '--model', 'rnn']],
    [['--mode', 'scale', '--bogus']],
    [['--mode', 'label-flip', '--train-rate', '0']],
    [['--mode', 'label-flip', '--train-rate', 'fast']],
  ])('refuses %j with UsageError', (argv) => {
    expect(() => parseAttackerArgs(argv)).toThrowError(expect.objectContaining({ name: 'UsageError' }))
  })
})

const stats = (peerId: string, pushedTo: Record<string, number>): AttackerStats => ({
  peerId,
  mode: 'sign-flip',
  modelsPushed: Object.values(pushedTo).reduce((a, b) => a + b, 0),
  pushesStarted: 12,
  pushFailures: 2,
  modelsReceived: 5,
  pushedTo,
  failedTo: {},
  viewSize: 2,
  connectedPeers: 2,
  lastPushedAge: 640,
})

describe('refusal tracking', () => {
  it('records when each honest peer first lists an attacker as refused, and the pushes it took', () => {
    const attacker: TrackedAttacker = {
      index: 0,
      mode: 'sign-flip',
      peerId: 'evil',
      stats: stats('evil', { h0: 3, h1: 4, elsewhere: 1 }),
      refusedBy: new Map(),
    }
    const bystander: TrackedAttacker = { index: 1, mode: 'noise', peerId: 'quiet', refusedBy: new Map() }
    const honest: HonestView[] = [
      { index: 0, peerId: 'h0', status: { refusedPeers: [] } },
      { index: 1, peerId: 'h1' },
    ]
    observeRefusals([attacker, bystander], honest, 1)
    expect(attacker.refusedBy.size).toBe(0)

    honest[0]!.status = { refusedPeers: [{ peerId: 'evil' }] }
    observeRefusals([attacker, bystander], honest, 2.5)
    attacker.stats = stats('evil', { h0: 5, h1: 6 })
    // Seen again later: the first sighting stands.
    observeRefusals([attacker, bystander], honest, 4)
    let r = attackerResult(attacker, honest)
    expect(r.refusedBy).toEqual([{ peer: 0, peerId: 'h0', atS: 2.5, pushesBefore: 3 }])
    expect(r.firstRefusedAtS).toBe(2.5)
    expect(r.allRefusedAtS).toBeNull()

    honest[1]!.status = { refusedPeers: [{ peerId: 'evil' }] }
    observeRefusals([attacker, bystander], honest, 6)
    r = attackerResult(attacker, honest)
    expect(r.refusedBy.map((x) => [x.peer, x.atS, x.pushesBefore])).toEqual([
      [0, 2.5, 3],
      [1, 6, 6],
    ])
    expect(r.allRefusedAtS).toBe(6)
    expect(r.pushedTo).toEqual({ '0': 5, '1': 6 })
    expect(r).toMatchObject({
      index: 0,
      peerId: 'evil',
      mode: 'sign-flip',
      modelsPushed: 11,
      pushFailures: 2,
    })
    expect(attackerResult(bystander, honest)).toMatchObject({
      refusedBy: [],
      firstRefusedAtS: null,
      allRefusedAtS: null,
      modelsPushed: 0,
    })
  })

  it('keys pushes to peers that are not honest testbed peers as ?', () => {
    const a: TrackedAttacker = {
      index: 2,
      mode: 'scale',
      peerId: 'x',
      stats: stats('x', { h0: 1, other: 2, another: 3 }),
      refusedBy: new Map(),
    }
    expect(attackerResult(a, [{ index: 0, peerId: 'h0' }]).pushedTo).toEqual({ '0': 1, '?': 5 })
  })

  it('formats one summary line per attacker', () => {
    const a: TrackedAttacker = {
      index: 0,
      mode: 'sign-flip',
      peerId: '12D3KooWevil',
      stats: stats('12D3KooWevil', { h0: 3 }),
      refusedBy: new Map([[0, { peer: 0, peerId: 'h0', atS: 7.2, pushesBefore: 3 }]]),
    }
    const text = formatAttackers([attackerResult(a, [{ index: 0, peerId: 'h0' }, { index: 1 }])], 2)
    const lines = text.split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[1]).toMatch(/12D3KooWevil\s+sign-flip\s+3\s+2\s+5\s+1\/2\s+7 s\s+-$/)
  })
})
