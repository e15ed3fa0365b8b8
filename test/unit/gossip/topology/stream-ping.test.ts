/**
 * StreamPinger between real libp2p nodes on loopback: many pings on one kept stream, a new
 * stream when the listener ends the old one, and the stream dropped on a bad echo or an abort.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { NotStartedError } from '../../../../src/gossip/errors.ts'
import {
  PING_PROTOCOL,
  PingMismatchError,
  PingNotConnectedError,
  PingStreamClosedError,
  StreamPinger,
} from '../../../../src/gossip/topology/stream-ping.ts'
import { createNode, type GossipLearnNode } from '../../../../src/node/create-node.ts'

describe('StreamPinger', () => {
  const nodes: GossipLearnNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
  })

  async function pair(): Promise<[GossipLearnNode, GossipLearnNode]> {
    const [a, b] = await Promise.all([0, 1].map(() => createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })))
    nodes.push(a!, b!)
    await a!.dial(b!.getMultiaddrs()[0]!)
    return [a!, b!]
  }

  /** b's side of a's ping streams. */
  const inboundPingStreams = (b: GossipLearnNode): Stream[] =>
    b.getConnections().flatMap((c) => c.streams.filter((s) => s.protocol === PING_PROTOCOL))

  it('sends many pings on one stream', async () => {
    const [a, b] = await pair()
    const pinger = new StreamPinger(a)
    const rtts: number[] = []
    for (let i = 0; i < 5; i++) rtts.push(await pinger.ping(b.peerId))
    expect(pinger.opened).toBe(1)
    expect(pinger.size).toBe(1)
    expect(inboundPingStreams(b)).toHaveLength(1)
    for (const rtt of rtts) expect(rtt).toBeGreaterThanOrEqual(0)
    pinger.stop()
    expect(pinger.size).toBe(0)
    await expect(pinger.ping(b.peerId)).rejects.toThrow(NotStartedError)
  })

  it('opens a new stream once the listener ended the kept one', async () => {
    const [a, b] = await pair()
    const pinger = new StreamPinger(a)
    await pinger.ping(b.peerId)
    const [kept] = inboundPingStreams(b)
    kept!.abort(new Error('listener timeout'))
    // Either the reset reached a before the next ping (a fresh stream) or the ping found it dead
    // and was sent again on a fresh one: both answer.
    expect(await pinger.ping(b.peerId)).toBeGreaterThanOrEqual(0)
    expect(pinger.opened).toBe(2)
    pinger.stop()
  })

  it('never dials: a ping in flight when we hang up is not retried into a new connection', async () => {
    const [a, b] = await pair()
    // b echoes the first ping of each stream, then holds the stream without answering.
    await b.unhandle(PING_PROTOCOL)
    await b.handle(PING_PROTOCOL, (stream) => {
      let answered = false
      stream.addEventListener('message', (evt) => {
        if (!answered) stream.send(evt.data.subarray())
        answered = true
      })
    })
    const pinger = new StreamPinger(a)
    await pinger.ping(b.peerId)
    const pending = pinger.ping(b.peerId, { signal: AbortSignal.timeout(10_000) })
    await new Promise((r) => setTimeout(r, 100))
    await a.hangUp(b.peerId)
    // The kept stream closed with the connection. Its one retry used to dial b straight back (and
    // b's first echo answered it); now it finds no connection.
    await expect(pending).rejects.toThrow(PingNotConnectedError)
    expect(a.getConnections(b.peerId)).toHaveLength(0)
    expect(pinger.opened).toBe(1)
    pinger.stop()
  })

  it('drops the stream when the echo does not match', async () => {
    const [a, b] = await pair()
    await b.unhandle(PING_PROTOCOL)
    await b.handle(PING_PROTOCOL, (stream) => {
      stream.addEventListener('message', (evt) => stream.send(new Uint8Array(evt.data.byteLength)))
    })
    const pinger = new StreamPinger(a)
    await expect(pinger.ping(b.peerId)).rejects.toThrow(PingMismatchError)
    expect(pinger.size).toBe(0)
    pinger.stop()
  })

  it('gives up on abort and drops the stream, so a late echo cannot answer the next ping', async () => {
    const [a, b] = await pair()
    await b.unhandle(PING_PROTOCOL)
    const held: Stream[] = []
    await b.handle(PING_PROTOCOL, (stream) => {
      held.push(stream)
    })
    const pinger = new StreamPinger(a)
    await expect(pinger.ping(b.peerId, { signal: AbortSignal.timeout(300) })).rejects.toThrow()
    expect(pinger.size).toBe(0)
    expect(held).toHaveLength(1)
    pinger.stop()
  })

  it('fails a ping whose stream refuses the write, and its later close raises nothing', async () => {
    const listeners = new Map<string, (evt: unknown) => void>()
    const stream = {
      status: 'closing',
      send: () => {
        throw new Error('stream is closing')
      },
      addEventListener: (type: string, fn: (evt: unknown) => void) => listeners.set(type, fn),
      abort: () => {},
    }
    const [a] = await pair()
    const connection = { status: 'open', newStream: async () => stream as unknown as Stream }
    const pinger = new StreamPinger({ getConnections: () => [connection as unknown as Connection] })
    await expect(pinger.ping(a.peerId)).rejects.toThrow(PingStreamClosedError)
    expect(pinger.size).toBe(0)
    // The close that follows finds nothing pending: no unhandled rejection fails this test file.
    listeners.get('close')?.({})
    await new Promise((r) => setTimeout(r, 50))
    pinger.stop()
  })
})
