/**
 * The bootstrap keeper, with real daemons on 127.0.0.1: a joined through the seed s, b through a.
 * When a loses its connection to s it is not alone (b is there), so the re-dialler does nothing;
 * without the keeper a and b would stay an island. No daemon pushes models (--no-gossip), so no
 * push can dial the lost link back in: only the keeper can.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../../src/node/daemon.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const config = (dir: string, index: number, extra: string[] = []) =>
  testDaemonConfig(dir, index, {
    peerCount: 3,
    stepsPerRound: 5,
    extra: ['--hidden', '16', '--train-rate', '20', '--no-gossip', ...extra],
  })

const connected = (d: Daemon, to: Daemon) => d.status().connectedPeers.includes(to.peerId)

describe('bootstrap keeper', () => {
  let base: string
  const live: Daemon[] = []

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-keeper-'))
  })

  afterAll(async () => {
    await Promise.all(live.map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  it('re-dials the bootstrap list when connected only to peers that joined through us', async () => {
    const s = await startDaemon(config(join(base, 's'), 0))
    live.push(s)
    const addr = (d: Daemon) => d.multiaddrs.find((m) => m.includes('127.0.0.1'))!
    const a = await startDaemon(config(join(base, 'a'), 1, ['--bootstrap', addr(s)]))
    live.push(a)
    const b = await startDaemon(config(join(base, 'b'), 2, ['--bootstrap', addr(a)]))
    live.push(b)
    await until('a to reach s and b to reach a', () => connected(a, s) && connected(b, a))
    // b may have met s through the membership topic; only a's link to s matters here.
    await a.node.hangUp(peerIdFromString(s.peerId))
    await s.node.hangUp(peerIdFromString(a.peerId))
    expect(connected(a, s)).toBe(false)
    expect(a.status().connectedPeers.length).toBeGreaterThan(0)
    // The keeper checks every 10 s, then dials.
    await until('a to dial s again', () => connected(a, s), 40_000)
    expect(a.status().bootstrapRedials).toBeGreaterThanOrEqual(1)
    // Never alone, so the re-dialler did nothing.
    expect(a.status().rejoins).toBe(0)
    // The keep-alive (every 10 s, on the kept ping streams) finds live peers alive.
    await until('a keep-alive round', () => a.status().keepAlive.pings > 0, 20_000)
    expect(a.status().keepAlive).toMatchObject({ failures: 0, aborted: 0 })
    expect(connected(b, a)).toBe(true)
  }, 90_000)
})
