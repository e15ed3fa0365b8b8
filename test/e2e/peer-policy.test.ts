/**
 * The peer policy over real libp2p on 127.0.0.1: two honest daemons exchange models while a
 * hostile raw libp2p node pushes malformed frames to one of them. The hostile peer is dropped and
 * refused after a bounded number of frames (its later dials fail, the daemon will not dial it),
 * /status lists it, and the honest daemons keep exchanging.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MODEL_PROTOCOL } from '../../src/gossip/constants.ts'
import { DEFAULT_BAN_THRESHOLD, DEFAULT_WEIGHTS } from '../../src/gossip/policy/index.ts'
import { encodeVarint } from '../../src/gossip/wire/codec.ts'
import { createNode, type GossipLearnNode } from '../../src/node/create-node.ts'
import { type Daemon, type NodeStatus, startDaemon } from '../../src/node/daemon.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const config = (dir: string, index: number, extra: string[] = []) =>
  testDaemonConfig(dir, index, { peerCount: 2, stepsPerRound: 5, extra: ['--hidden', '32', ...extra] })

/** Rejects that ban a fresh peer: the bound on the malformed frames it gets through. */
const FRAMES_TO_BAN = Math.ceil(-DEFAULT_BAN_THRESHOLD / -DEFAULT_WEIGHTS.reject)

/** Malformed frames (each a 'reject'): garbage after a length prefix, and a header length over the limit. */
const BAD_FRAMES = [Uint8Array.from([10, ...new Array(10).fill(0xff)]), encodeVarint(1 << 20)]
const BAD_NAMES = ['MalformedFrameError', 'FrameTooLargeError']

describe('peer policy (real libp2p daemons)', () => {
  let base: string
  const daemons: Daemon[] = []
  let hostile: GossipLearnNode | undefined

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-policy-'))
  })

  afterAll(async () => {
    await hostile?.stop()
    await Promise.all(daemons.map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  it('drops and refuses a peer sending malformed models within a bounded number of frames', async () => {
    expect(FRAMES_TO_BAN).toBe(3)
    daemons.push(await startDaemon(config(join(base, 'a'), 0, ['--http', '0'])))
    const boot = daemons[0]!.multiaddrs.find((a) => a.includes('127.0.0.1'))!
    daemons.push(await startDaemon(config(join(base, 'b'), 1, ['--bootstrap', boot])))
    const [a, b] = daemons as [Daemon, Daemon]
    await until('both honest daemons to receive models', () =>
      daemons.every((d) => d.status().modelsReceived > 0),
    )

    hostile = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    const hostileId = hostile.peerId.toString()
    await hostile.dial(multiaddr(boot))
    const judged = () => BAD_NAMES.reduce((n, name) => n + (a.status().rejected[name] ?? 0), 0)

    /** One malformed frame on a fresh stream; false when the stream cannot be opened (refused). */
    const pushBad = async (i: number): Promise<boolean> => {
      let stream: Awaited<ReturnType<GossipLearnNode['dialProtocol']>>
      try {
        stream = await hostile!.dialProtocol(a.node.peerId, MODEL_PROTOCOL, {
          signal: AbortSignal.timeout(5000),
        })
      } catch {
        return false
      }
      stream.send(BAD_FRAMES[i % BAD_FRAMES.length]!)
      await stream.close({ signal: AbortSignal.timeout(5000) }).catch(() => {})
      return true
    }

    // Each frame is sent once the previous one was judged, until the hostile peer is refused.
    let sent = 0
    while (sent < 10 && (await pushBad(sent))) {
      sent++
      await until(
        `frame ${sent} to be judged`,
        () => judged() >= sent || hostile!.getConnections(a.node.peerId).length === 0,
        15_000,
        20,
      )
    }

    // Banned on the FRAMES_TO_BAN-th frame; the next could not even open a stream.
    expect(sent).toBe(FRAMES_TO_BAN)
    expect(judged()).toBe(FRAMES_TO_BAN)
    expect(a.policy.isRefused(hostileId)).toBe(true)
    expect(a.policy.isRefused(b.peerId)).toBe(false)
    await until(
      'the hostile connection to be closed',
      () => a.node.getConnections(hostile!.peerId).length === 0,
    )
    expect(a.view().map((p) => p.peerId)).not.toContain(hostileId)

    // Its later dials are refused once its identity is known (the dialer may see the connection
    // open for a moment before it is closed): no stream, no frame reaches the exchange.
    for (let i = 0; i < 3; i++) {
      await hostile.dial(multiaddr(boot), { signal: AbortSignal.timeout(10_000) }).catch(() => {})
      await until(
        'the refused connection to be closed',
        () => hostile!.getConnections(a.node.peerId).length === 0,
      )
      expect(await pushBad(i)).toBe(false)
    }
    expect(judged()).toBe(FRAMES_TO_BAN)
    // And the daemon will not dial it.
    await expect(a.node.dial(hostile.peerId)).rejects.toMatchObject({ name: 'DialDeniedError' })
    expect(a.node.getConnections(hostile.peerId)).toHaveLength(0)

    // /status lists it, with the reason and when the refusal ends.
    const res = await fetch(`http://127.0.0.1:${a.httpPort}/status`)
    const status = (await res.json()) as NodeStatus
    expect(status.refusedPeers).toHaveLength(1)
    expect(status.refusedPeers[0]!.peerId).toBe(hostileId)
    expect(status.refusedPeers[0]!.reason).toMatch(/3 rejects/)
    expect(status.refusedPeers[0]!.untilS).toBeGreaterThan(Date.now() / 1000)

    // The honest daemons keep exchanging after the ban.
    const before = daemons.map((d) => d.status().modelsReceived)
    await until('both honest daemons to receive more models after the ban', () =>
      daemons.every((d, i) => d.status().modelsReceived > before[i]!),
    )
    expect(b.status().refusedPeers).toEqual([])
  })
})
