/**
 * Several daemons in one process (the testbed's --peers-per-process) stay independent: separate
 * identities, data dirs, HTTP ports, data shares and models; whatever one learns from the other
 * arrives over the wire, counted by its exchange.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { parseTestbedArgs } from '../../src/cli/args.ts'
import { partition } from '../../src/data/partition.ts'
import { loadDataset } from '../../src/data/registry.ts'
import { LocalTrainer } from '../../src/model/train.ts'
import type { NodeStatus } from '../../src/node/daemon.ts'
import { HOSTED_TRAIN_SLICE_MS, type Host, startHost } from '../../src/testbed/host.ts'
import type { TestbedResult } from '../../src/testbed/result.ts'
import { runTestbed } from '../../src/testbed/testbed.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const PARTITION = 'dirichlet:0.5'
const SEED = 11

/** A digest of a model's weights: equal digests, equal models. */
function fingerprint(state: { tensors: Array<{ values: Float32Array }> }): string {
  const h = createHash('sha256')
  for (const t of state.tensors)
    h.update(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength))
  return h.digest('hex')
}

describe('host: two daemons in one process', () => {
  let base = ''
  let host: Host | undefined
  afterAll(async () => {
    await host?.stop()
    if (base !== '') await rm(base, { recursive: true, force: true })
  })

  it('keep their own identity, share, model and counters; models cross only over the wire', {
    timeout: 120_000,
  }, async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-host-'))
    const config = (i: number) =>
      testDaemonConfig(join(base, `peer-${i}`), i, {
        peerCount: 2,
        stepsPerRound: 5,
        extra: [
          '--partition',
          PARTITION,
          '--seed',
          String(SEED),
          '--hidden',
          '16',
          '--http',
          '0',
          '--train-rate',
          '100',
        ],
      })
    const ready: number[] = []
    const training = vi.spyOn(LocalTrainer.prototype, 'trainSteps')
    host = await startHost(
      [
        { index: 0, config: config(0) },
        { index: 1, config: config(1) },
      ],
      // What the CLI passes from the launcher (src/cli/allocator.ts): one process, one allocator.
      { onReady: (i) => ready.push(i), malloc: 'environment' },
    )
    expect(ready).toEqual([0, 1])
    const a = host.daemons.get(0)!
    const b = host.daemons.get(1)!
    expect([a.status().malloc, b.status().malloc]).toEqual(['environment', 'environment'])
    await until(
      'each daemon received a model',
      () => a.status().modelsReceived > 0 && b.status().modelsReceived > 0,
    )

    // Both train in the hosted slices between yields, longer than a lone daemon's.
    expect(training.mock.calls.length).toBeGreaterThan(1)
    expect(new Set(training.mock.calls.map((c) => c[1].yieldEveryMs))).toEqual(
      new Set([HOSTED_TRAIN_SLICE_MS]),
    )
    training.mockRestore()

    // Identities, data dirs and status ports of their own.
    expect(a.peerId).not.toBe(b.peerId)
    expect(a.dataDir).not.toBe(b.dataDir)
    expect(a.httpPort).not.toBe(b.httpPort)
    const viaHttp = async (port: number | undefined) =>
      (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as NodeStatus
    expect((await viaHttp(a.httpPort)).peerId).toBe(a.peerId)
    expect((await viaHttp(b.httpPort)).peerId).toBe(b.peerId)

    // Their own shares of the same partition: the sizes the partition gives each index.
    const shares = partition(loadDataset('mnist').trainLabels(), { spec: PARTITION, peers: 2, seed: SEED })
    expect(a.status().partition.index).toBe(0)
    expect(b.status().partition.index).toBe(1)
    expect(a.model.trainSamples).toBe(shares[0]!.length)
    expect(b.model.trainSamples).toBe(shares[1]!.length)
    expect(shares[0]!.length).not.toBe(shares[1]!.length)

    // Separate models (no shared tfjs variables) with different weights.
    expect(a.model.model).not.toBe(b.model.model)
    const idsA = new Set(a.model.model.trainableWeights.map((w) => w.read().id))
    expect(b.model.model.trainableWeights.some((w) => idsA.has(w.read().id))).toBe(false)
    expect(fingerprint(a.model.getState())).not.toBe(fingerprint(b.model.getState()))

    // Every model either received came from the other, over the wire, and was counted in bytes.
    for (const [me, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const s = me.status()
      expect(Object.keys(s.modelsReceivedFrom)).toEqual([other.peerId])
      expect(s.bytesReceived).toBeGreaterThan(0)
      const byCodec = Object.values(s.receivedByCodec).reduce((n, c) => n + c.models, 0)
      expect(byCodec).toBe(s.modelsReceived)
      expect(s.connectedPeers).toContain(other.peerId)
    }
  })
})

describe('host: the daemons after the first join through it', () => {
  let base = ''
  let host: Host | undefined
  afterAll(async () => {
    await host?.stop()
    if (base !== '') await rm(base, { recursive: true, force: true })
  })

  it('even when given another bootstrap (one busy peer for a whole network)', {
    timeout: 120_000,
  }, async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-host-join-'))
    // A bootstrap that never answers: a closed port, an identity nobody holds.
    const nobody = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const deadBootstrap = `/ip4/127.0.0.1/tcp/1/p2p/${nobody}`
    const config = (i: number) =>
      testDaemonConfig(join(base, `peer-${i}`), i, {
        peerCount: 3,
        extra: ['--hidden', '16', '--train-rate', '20', ...(i > 0 ? ['--bootstrap', deadBootstrap] : [])],
      })
    host = await startHost([0, 1, 2].map((index) => ({ index, config: config(index) })))
    const first = host.daemons.get(0)!
    for (const i of [1, 2]) {
      const d = host.daemons.get(i)!
      await until(`daemon ${i} connected to the host's first daemon`, () =>
        d.status().connectedPeers.includes(first.peerId),
      )
    }
  })
})

describe('testbed --peers 4 --peers-per-process 3', () => {
  let base = ''
  afterAll(async () => {
    if (base !== '') await rm(base, { recursive: true, force: true })
  })

  it('runs the bootstrap alone, the rest in one process; writes the JSON', { timeout: 90_000 }, async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-host-tb-'))
    const json = join(base, 'run.json')
    const cfg = parseTestbedArgs([
      '--peers',
      '4',
      '--peers-per-process',
      '3',
      '--duration',
      '10',
      '--hidden',
      '16',
      '--eval-size',
      '100',
      '--steps-per-round',
      '5',
      '--train-rate',
      '100',
      '--poll',
      '500',
      '--json',
      json,
      '--keep-dir',
      join(base, 'tb'),
      '--no-http',
    ])
    const lines: string[] = []
    const result = await runTestbed(cfg, { print: (l) => lines.push(l) })
    const written = JSON.parse(await readFile(json, 'utf8')) as TestbedResult
    expect(written.peers.map((p) => p.index)).toEqual([0, 1, 2, 3])
    // The bootstrap (peer 0) in a process of its own (hosts of more than two), then the others.
    expect(written.peers.map((p) => p.host)).toEqual([0, 1, 1, 1])
    expect(new Set(written.peers.map((p) => p.peerId)).size).toBe(4)
    for (const p of written.peers) {
      expect(p.alive).toBe(true)
      expect(p.steps).toBeGreaterThan(0)
      expect(p.modelsReceived).toBeGreaterThan(0)
      // Every failed push the learner counted has its stage and error in the exchange's tally.
      const byReason = Object.values(p.pushFailuresByReason ?? { missing: -1 })
      expect(byReason.reduce((a, b) => a + b, 0)).toBe(p.pushesFailed)
      expect(Array.isArray(p.suspectPeers)).toBe(true)
      expect(p.keepAlive?.failures).toBeLessThanOrEqual(p.keepAlive?.pings ?? -1)
      expect(p.series.length).toBeGreaterThan(0)
      // Ready before the run's clock started, and in another peer's view by its end.
      expect(p.readyAtS).toBeLessThanOrEqual(0)
      expect(p.inViewAtS).toBeLessThanOrEqual(written.durationS)
    }
    // A peer announces itself hungry until its first merge, so the first pushes went to hungry peers.
    expect(written.peers.reduce((n, p) => n + (p.pushesToHungry ?? 0), 0)).toBeGreaterThan(0)
    // Peers of one host learn from the other host's peers too: the network is one network.
    const crossHost = written.peers.some((p) =>
      Object.keys(p.modelsReceivedFrom ?? {}).some(
        (id) => written.peers.find((q) => q.peerId === id)?.host !== p.host,
      ),
    )
    expect(crossHost).toBe(true)
    expect(written.meanFinalAccuracy).not.toBeNull()
    expect(written.startupS).toBeGreaterThan(0)
    // Two processes, each measured once with the peers it hosts (Linux /proc).
    expect(result.memory?.processes.map((p) => p.peers)).toEqual([[0], [1, 2, 3]])
    expect(result.memory!.perPeerRssMiB).toBeCloseTo(result.memory!.totalRssMiB / 4, 0)
    expect(lines.some((l) => l.includes('2 processes of up to 3 peers'))).toBe(true)
  })
})
