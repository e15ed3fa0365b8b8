/**
 * The rule for relayed (limited) connections: no model goes to a peer we reach only through a
 * relay; the push fails at once with RelayedOnlyError, without a dial, and is counted apart from
 * failures; with a direct connection beside the relayed one the push goes; the handler does not
 * opt in to limited connections, so libp2p refuses inbound model streams there.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PeerId, StreamHandler } from '@libp2p/interface'
import { LimitedConnectionError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ConnectionView } from '../../../src/gossip/connectivity.ts'
import { DELTA_PROTOCOL, MODEL_PROTOCOL, QUIET_PROTOCOL } from '../../../src/gossip/constants.ts'
import { ModelExchange, type ModelExchangeComponents } from '../../../src/gossip/exchange.ts'
import { layoutOf } from '../../../src/gossip/wire/codec.ts'
import type { ModelState } from '../../../src/model/types.ts'

const state: ModelState = {
  arch: 'mlp-test',
  age: 10,
  tensors: [{ name: 'dense_0/kernel', shape: [2, 2], values: Float32Array.from([1, 2, 3, 4]) }],
}

const newPeerId = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

const conn = (remotePeer: PeerId, limited: boolean, status: Connection['status'] = 'open'): ConnectionView =>
  ({ remotePeer, status, limits: limited ? { bytes: 131072n, seconds: 120 } : undefined }) as ConnectionView

/** A host whose connections the test sets; dialProtocol hands the receiver one end of a stream pair. */
function host(self: PeerId, handlers: Map<string, StreamHandler>) {
  const connections: ConnectionView[] = []
  const dials: string[] = []
  const handleOptions: unknown[] = []
  let dialError: Error | undefined
  const node: ModelExchangeComponents['node'] = {
    handle: async (_protocol, handler, options) => {
      handleOptions.push(options)
      handlers.set(self.toString(), handler as StreamHandler)
    },
    unhandle: async () => {
      handlers.delete(self.toString())
    },
    dialProtocol: async (target) => {
      dials.push(target.toString())
      if (dialError !== undefined) throw dialError
      const handler = handlers.get(target.toString())!
      const [outbound, inbound] = await streamPair({ delay: 0 })
      void handler(inbound, { remotePeer: self } as Connection)
      return outbound
    },
    getConnections: ((peer?: PeerId) =>
      connections.filter((c) => peer === undefined || c.remotePeer.equals(peer))) as never,
  }
  return {
    node,
    connections,
    dials,
    handleOptions,
    failDialsWith: (e: Error) => {
      dialError = e
    },
  }
}

describe('ModelExchange over relayed connections', () => {
  const started: ModelExchange[] = []
  afterEach(async () => {
    await Promise.all(started.splice(0).map((x) => x.stop()))
  })

  async function setup() {
    const handlers = new Map<string, StreamHandler>()
    const [txId, rxId] = [await newPeerId(), await newPeerId()]
    const txHost = host(txId, handlers)
    const rxHost = host(rxId, handlers)
    const received: string[] = []
    const rx = new ModelExchange(
      { node: rxHost.node, logger: defaultLogger() },
      {
        task: 'mnist',
        arch: 'mlp-test',
        expectedLayout: layoutOf(state),
        onModel: (_s, _m, from) => void received.push(from),
      },
    )
    const tx = new ModelExchange({ node: txHost.node, logger: defaultLogger() }, { task: 'mnist' })
    await rx.start()
    await tx.start()
    started.push(rx, tx)
    return { tx, rx, txId, rxId, txHost, rxHost, received }
  }

  it('does not push to a peer reached only through a relay, and does not dial it', async () => {
    const { tx, rxId, txHost, received } = await setup()
    txHost.connections.push(conn(rxId, true))
    await expect(tx.push(rxId, state)).rejects.toMatchObject({ name: 'RelayedOnlyError' })
    expect(txHost.dials).toEqual([])
    expect(received).toEqual([])
    const c = tx.counters
    expect([c.pushesRelayedOnly, c.pushFailures, c.bytesSent, c.modelsSent]).toEqual([1, 0, 0, 0])
  })

  it('pushes over a direct connection even while a relayed one is open too', async () => {
    const { tx, txId, rxId, txHost, received } = await setup()
    txHost.connections.push(conn(rxId, true), conn(rxId, false))
    expect(await tx.push(rxId, state)).toBeGreaterThan(0)
    // The receiver decodes once the sender's close arrives, a few ticks after push() resolves.
    await vi.waitFor(() => expect(received).toEqual([txId.toString()]))
    expect(tx.counters.pushesRelayedOnly).toBe(0)
  })

  it('a closed direct connection does not count: only the relayed one is open', async () => {
    const { tx, rxId, txHost } = await setup()
    txHost.connections.push(conn(rxId, true), conn(rxId, false, 'closed'))
    await expect(tx.push(rxId, state)).rejects.toMatchObject({ name: 'RelayedOnlyError' })
  })

  it('a dial that ends on a relayed connection (libp2p refuses the stream) is RelayedOnlyError, not a failure', async () => {
    const { tx, rxId, txHost } = await setup()
    txHost.failDialsWith(new LimitedConnectionError('Cannot open protocol stream on limited connection'))
    await expect(tx.push(rxId, state)).rejects.toMatchObject({ name: 'RelayedOnlyError' })
    expect(txHost.dials).toEqual([rxId.toString()])
    expect([tx.counters.pushesRelayedOnly, tx.counters.pushFailures]).toEqual([1, 0])
  })

  it('any other dial error is a failure', async () => {
    const { tx, rxId, txHost } = await setup()
    const refused = new Error('connection refused')
    txHost.failDialsWith(refused)
    await expect(tx.push(rxId, state)).rejects.toBe(refused)
    expect([tx.counters.pushesRelayedOnly, tx.counters.pushFailures]).toEqual([0, 1])
  })

  it('registers every model protocol without opting in to limited connections', async () => {
    const { rxHost } = await setup()
    const notLimited = expect.objectContaining({ runOnLimitedConnection: false })
    expect(rxHost.handleOptions).toEqual([notLimited, notLimited, notLimited])
    expect(MODEL_PROTOCOL).toBe('/gossip-learn/model/1.0.0')
    expect(DELTA_PROTOCOL).toBe('/gossip-learn/model/2.0.0')
    expect(QUIET_PROTOCOL).toBe('/gossip-learn/model/2.1.0')
  })
})
