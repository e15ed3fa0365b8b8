/**
 * Three real daemons on 127.0.0.1 (TCP, Noise, Yamux, gossipsub) in one process:
 * they find each other through a bootstrap multiaddr, exchange and merge models,
 * serve /status, and a restarted daemon keeps its peer id and its model's age.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Daemon, type NodeStatus, startDaemon } from '../../src/node/daemon.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const config = (dir: string, index: number, extra: string[] = []) =>
  testDaemonConfig(dir, index, { peerCount: 3, extra: extra })

describe('daemons on loopback', () => {
  let base: string
  const daemons: Daemon[] = []

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-e2e-'))
  })

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  it('join through a bootstrap multiaddr, exchange and merge models, serve /status', async () => {
    // The CLI's heap tuning ends in this hook: called once, as training starts, never per round.
    let beforeTraining = 0
    daemons.push(
      await startDaemon(config(join(base, 'a'), 0, ['--http', '0']), {
        beforeTraining: () => beforeTraining++,
      }),
    )
    expect(beforeTraining).toBe(1)
    const boot = daemons[0]!.multiaddrs.find((a) => a.includes('127.0.0.1'))!
    expect(boot).toMatch(/\/p2p\//)
    daemons.push(await startDaemon(config(join(base, 'b'), 1, ['--bootstrap', boot])))
    daemons.push(await startDaemon(config(join(base, 'c'), 2, ['--bootstrap', boot])))

    // modelsSent counts completed pushes: on a loaded machine a daemon may merge before its first push is done.
    await until('every daemon to merge models from its peers and complete a push', () =>
      daemons.every(
        (d) => d.status().modelsReceived > 0 && d.status().merges > 0 && d.status().modelsSent > 0,
      ),
    )
    expect(beforeTraining).toBe(1)
    for (const d of daemons) {
      const s = d.status()
      expect(s.modelsSent).toBeGreaterThan(0)
      expect(s.bytesReceived).toBeGreaterThan(0)
      expect(s.viewSize).toBeGreaterThanOrEqual(1)
      // Announcements came over a gossipsub mesh: a joined the others' GRAFTs.
      expect(s.announcementsReceived).toBeGreaterThan(0)
    }
    await until('a to have b and c in its announcement mesh', () => daemons[0]!.status().announceMesh === 2)
    // b and c only knew a; they must have learned of each other through membership.
    await until(
      'b and c to see each other',
      () => daemons[1]!.status().viewSize === 2 && daemons[2]!.status().viewSize === 2,
    )

    const res = await fetch(`http://127.0.0.1:${daemons[0]!.httpPort}/status`)
    expect(res.status).toBe(200)
    const s = (await res.json()) as NodeStatus
    expect(s.peerId).toBe(daemons[0]!.peerId)
    expect(s.connectedPeers.length).toBeGreaterThanOrEqual(1)
    expect(s.modelsReceived).toBeGreaterThan(0)
    // No links file: no emulation, but links are still measured and the coordinate is announced.
    expect(s.sampler).toBe('uniform')
    expect(s.region).toBeUndefined()
    expect(s.wan).toBeUndefined()
    expect(s.coordinate.vec).toHaveLength(2)
    expect(s.topology.pingsSent).toBeGreaterThanOrEqual(0)
    expect((await fetch(`http://127.0.0.1:${daemons[0]!.httpPort}/nope`)).status).toBe(404)
  }, 120_000) // Its waits (60 s each) must be able to fail first and name what never happened.

  it('rejects announcements that are not valid descriptors, keeps serving and merging', async () => {
    const [a, b] = daemons as [Daemon, Daemon]
    const topic = `/gossip-learn/${a.status().task}/announce`
    const before = a.status().modelsReceived
    // b's libp2p node publishes garbage and an announcement claiming to be a: both are signed by b.
    for (const data of [
      new TextEncoder().encode('not a descriptor'),
      new TextEncoder().encode(JSON.stringify({ v: 1, peerId: a.peerId, addrs: [], age: 1 })),
    ]) {
      await b.node.services.pubsub.publish(topic, data)
    }
    await until('a to reject both', () => (a.status().rejected.InvalidDescriptorError ?? 0) >= 2)
    await until('a to keep receiving models', () => a.status().modelsReceived > before)
    expect(a.status().viewSize).toBeGreaterThanOrEqual(1)
  })

  it('a restarted daemon keeps its peer id and resumes from its checkpoint', async () => {
    const c = daemons.pop()!
    const { peerId, dataDir } = c
    await until('some training', () => c.status().age > 0)
    await c.stop()
    const ageAtStop = c.model.getAge()
    expect(ageAtStop).toBeGreaterThan(0)

    const again = await startDaemon(config(dataDir, 2))
    daemons.push(again)
    expect(again.peerId).toBe(peerId)
    expect(again.status().resumedFromCheckpoint).toBe(true)
    expect(again.status().age).toBeGreaterThanOrEqual(ageAtStop)
  })

  it('refuses a data dir that another live daemon holds', async () => {
    await expect(startDaemon(config(daemons[0]!.dataDir, 0))).rejects.toMatchObject({ name: 'DataDirError' })
  })
})
