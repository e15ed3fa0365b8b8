/**
 * `--max-inbound N` reaches a real daemon's exchange: a stranger holding two open model streams
 * is refused the second for want of a global slot at N = 2 (the last slot is kept for known-good
 * peers), and holds both at the default; `/status` `inbound` counts them.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_MAX_CONCURRENT_INBOUND, MODEL_PROTOCOL } from '../../src/gossip/constants.ts'
import { createNode, type GossipLearnNode } from '../../src/node/create-node.ts'
import { type Daemon, startDaemon } from '../../src/node/daemon.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

describe('--max-inbound (real libp2p daemon)', () => {
  let base: string
  let daemon: Daemon | undefined
  let stranger: GossipLearnNode | undefined

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-max-inbound-'))
    return () => rm(base, { recursive: true, force: true })
  })

  afterEach(async () => {
    await stranger?.stop()
    await daemon?.stop()
  })

  /** Starts a daemon with `extra` flags; a stranger opens 2 model streams to it that send one byte and stall. */
  async function twoStalledStreams(name: string, extra: string[]): Promise<Daemon> {
    daemon = await startDaemon(
      testDaemonConfig(join(base, name), 0, { peerCount: 1, extra: ['--hidden', '32', ...extra] }),
    )
    const d = daemon
    stranger = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    await stranger.dial(multiaddr(d.multiaddrs.find((a) => a.includes('127.0.0.1'))!))
    for (let i = 0; i < 2; i++) {
      const stream = await stranger.dialProtocol(d.node.peerId, MODEL_PROTOCOL, {
        signal: AbortSignal.timeout(5000),
      })
      try {
        // A frame's first byte: the transfer has begun and holds its slot until the idle timeout.
        stream.send(Uint8Array.of(10))
      } catch {
        // Refused already: the daemon reset the stream as soon as it opened.
      }
    }
    return d
  }

  it('at 2, refuses a stranger its second transfer: the other slot is kept for known-good peers', async () => {
    const d = await twoStalledStreams('two', ['--max-inbound', '2'])
    await until('the second stream to be refused', () => d.status().rejected.TransferLimitError === 1)
    expect(d.status().inbound).toEqual({ transfers: 1, max: 2 })
  })

  it('by default, lets a stranger hold two transfers (the per-peer limit)', async () => {
    const d = await twoStalledStreams('default', [])
    await until('both transfers to be in progress', () => d.status().inbound.transfers === 2)
    expect(d.status().inbound.max).toBe(DEFAULT_MAX_CONCURRENT_INBOUND)
    expect(d.status().rejected.TransferLimitError).toBeUndefined()
  })
})
