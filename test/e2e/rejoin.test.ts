/**
 * Discovery that survives losing the bootstrap peer (issue 12) and re-dialling (issue 11), with
 * real daemons on 127.0.0.1. One network goes through three stages, each building on the last:
 * (a) a restarted node keeps its port and rejoins through the peers it remembered, without --bootstrap;
 * (b) with the bootstrap node dead for good, restarted nodes find each other through peers.json;
 * (c) a node whose only peer stops re-dials until that peer is back on its kept port.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../../src/node/daemon.ts'
import { PEER_BOOK_FILE } from '../../src/node/peer-book.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

// A small model, a capped training rate: three daemons in one process leave the CPU to the sockets.
const config = (dir: string, index: number, extra: string[] = []) =>
  testDaemonConfig(dir, index, {
    peerCount: 3,
    stepsPerRound: 5,
    extra: ['--hidden', '16', '--train-rate', '100', ...extra],
  })

const tcpPort = (d: Daemon) => Number(/\/tcp\/(\d+)/.exec(d.multiaddrs[0] ?? '')?.[1])
const received = (d: Daemon, from: Daemon) => d.status().modelsReceivedFrom[from.peerId] ?? 0
/** Whether `d` holds a connection it dialled itself (not one a peer dialled into it). */
const dialledOut = (d: Daemon, to?: Daemon) =>
  d.node
    .getConnections()
    .some((c) => c.direction === 'outbound' && (to === undefined || c.remotePeer.toString() === to.peerId))

describe('rejoining without the bootstrap peer', () => {
  let base: string
  const dir = (name: string) => join(base, name)
  const live = new Set<Daemon>()
  const start = async (name: string, index: number, extra: string[] = []) => {
    const d = await startDaemon(config(dir(name), index, extra))
    live.add(d)
    return d
  }
  const stop = async (d: Daemon) => {
    live.delete(d)
    await d.stop()
  }
  let a: Daemon
  let b: Daemon
  let c: Daemon
  let bootA: string

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-rejoin-'))
  })

  afterAll(async () => {
    await Promise.all([...live].map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  it('(a) a restarted node keeps its port and reconnects to the peers it remembered, without --bootstrap', async () => {
    a = await start('a', 0)
    bootA = a.multiaddrs.find((m) => m.includes('127.0.0.1'))!
    b = await start('b', 1, ['--bootstrap', bootA])
    c = await start('c', 2, ['--bootstrap', bootA])
    await until(
      'b to exchange models with a and c, and remember them',
      () => b.status().rememberedPeers === 2,
    )
    const portB = tcpPort(b)
    await stop(b)

    // Until a and c have dropped b from their views, one of their pushes could dial b back in.
    await until('a and c to drop b', () => a.status().viewSize === 1 && c.status().viewSize === 1)
    b = await start('b', 1)
    expect(tcpPort(b)).toBe(portB)
    expect(b.status().rememberedPeers).toBe(2)
    await until(
      'the restarted b to dial out and receive models',
      () => dialledOut(b) && b.status().modelsReceived > 0,
    )
    await until(
      'a and c to receive models from the restarted b',
      () => received(a, b) > 0 || received(c, b) > 0,
    )
  }, 120_000)

  it('(b) with the bootstrap node gone, restarted nodes find each other through the peers they remembered', async () => {
    await until('b and c to exchange models directly', () => received(b, c) > 0 && received(c, b) > 0)
    await until(
      'b and c to remember each other',
      () => b.status().rememberedPeers === 2 && c.status().rememberedPeers === 2,
    )
    await Promise.all([stop(a), stop(b), stop(c)])

    // a stays dead; its address is still every node's only --bootstrap.
    b = await start('b', 1, ['--bootstrap', bootA])
    c = await start('c', 2, ['--bootstrap', bootA])
    await until('b and c to exchange models again', () => received(b, c) > 0 && received(c, b) > 0)
    expect(b.status().connectedPeers).toEqual([c.peerId])
    expect(c.status().connectedPeers).toEqual([b.peerId])
  }, 120_000)

  it('(c) a node that loses its only peer re-dials until the peer is back on its kept port', async () => {
    const portC = tcpPort(c)
    await stop(c)
    // Forgetful c: when it comes back it cannot dial b, so only b's re-dial can bring them together.
    await rm(join(dir('c'), PEER_BOOK_FILE))
    await until(
      'b to be alone and re-dial',
      () => b.status().connectedPeers.length === 0 && b.status().rejoins > 0,
    )
    const fromOldC = received(b, c)

    c = await start('c', 2, ['--bootstrap', bootA])
    expect(tcpPort(c)).toBe(portC)
    expect(c.status().rememberedPeers).toBe(0)
    await until('b to dial the returned c and exchange with it', () => dialledOut(b, c) && received(c, b) > 0)
    await until('b to receive models from the returned c', () => received(b, c) > fromOldC)
  }, 120_000)
})
