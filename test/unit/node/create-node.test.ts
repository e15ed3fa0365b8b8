/**
 * The connection bounds createNode passes to libp2p, seen from real sockets: a dial to a server
 * that accepts and never answers gives up after `dialMs`, and an inbound connection that never
 * starts its handshake is closed after `upgradeMs`. libp2p's own bounds are 10 s for both.
 * And gossipsub's fast message id: copies of a message share it, distinct messages do not.
 * A handshake held 7 s by a proxy completes when `addressDialMs` allows it (libp2p cuts each address at 6 s).
 */
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { createNode, fastMessageId, type GossipLearnNode } from '../../../src/node/create-node.ts'
import { until } from '../../e2e/until.ts'

describe('createNode connection bounds', () => {
  const nodes: GossipLearnNode[] = []
  const servers: Server[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
  })

  it('gives up a dial to a silent peer after dialMs', async () => {
    // Accepts TCP and says nothing: the Noise handshake never gets an answer.
    const silent = createServer((s) => sockets.push(s))
    servers.push(silent)
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    const port = (silent.address() as { port: number }).port
    const node = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], timeouts: { dialMs: 500 } })
    nodes.push(node)
    const t0 = Date.now()
    await expect(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}`))).rejects.toThrow()
    // Well under what libp2p's own bounds take here (6 s for this dial): the bound we passed was used.
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  it("lets a handshake take longer than libp2p's 6 s per address when addressDialMs says so", async () => {
    const b = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(b)
    const port = Number(b.getMultiaddrs()[0]!.toString().split('/tcp/')[1]!.split('/')[0])
    // A proxy that holds b's first handshake message for 7 s: a responder whose loop runs late.
    const proxy = createServer((c) => {
      const up = connect(port, '127.0.0.1')
      sockets.push(c, up)
      c.on('error', () => {})
      up.on('error', () => {})
      c.pipe(up)
      const held: Buffer[] = []
      let open = false
      up.on('data', (d: Buffer) => (open ? c.write(d) : held.push(d)))
      setTimeout(() => {
        open = true
        for (const d of held) c.write(d)
      }, 7000)
    })
    servers.push(proxy)
    proxy.listen(0, '127.0.0.1')
    await once(proxy, 'listening')
    const via = multiaddr(`/ip4/127.0.0.1/tcp/${(proxy.address() as { port: number }).port}/p2p/${b.peerId}`)
    const patient = await createNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      timeouts: { dialMs: 20_000, addressDialMs: 15_000 },
    })
    nodes.push(patient)
    const conn = await patient.dial(via)
    expect(conn.remotePeer.equals(b.peerId)).toBe(true)
  }, 30_000)

  it('closes an inbound connection that never starts its handshake after upgradeMs', async () => {
    const node = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], timeouts: { upgradeMs: 500 } })
    nodes.push(node)
    const port = Number(node.getMultiaddrs()[0]!.toString().split('/tcp/')[1]!.split('/')[0])
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    // The node resets the socket: an 'error' (ECONNRESET) then 'close'.
    socket.on('error', () => {})
    const t0 = Date.now()
    await new Promise((r) => socket.once('close', r))
    expect(Date.now() - t0).toBeLessThan(3000)
  })
})

describe('gossipsub fast message id', () => {
  const base = {
    from: Uint8Array.of(1, 2, 3),
    seqno: Uint8Array.of(0, 0, 0, 7),
    signature: new Uint8Array(64).fill(9),
    data: Uint8Array.of(5, 6),
    topic: 't',
  }

  it('is the same for copies of a message and differs when any field differs', () => {
    expect(fastMessageId({ ...base, data: Uint8Array.of(5, 6) })).toBe(fastMessageId(base))
    const variants = [
      { ...base, from: Uint8Array.of(1, 2, 4) },
      { ...base, seqno: Uint8Array.of(0, 0, 0, 8) },
      { ...base, signature: new Uint8Array(64).fill(8) },
      { ...base, data: Uint8Array.of(5, 7) },
      { ...base, topic: 'u' },
      { ...base, signature: undefined },
      // The same bytes split differently between two fields.
      { ...base, from: Uint8Array.of(1, 2), seqno: Uint8Array.of(3, 0, 0, 0, 7) },
    ]
    const ids = new Set([fastMessageId(base), ...variants.map(fastMessageId)])
    expect(ids.size).toBe(variants.length + 1)
  })

  describe('on real nodes', () => {
    const nodes: GossipLearnNode[] = []
    afterEach(async () => {
      await Promise.all(nodes.splice(0).map((n) => n.stop()))
    })

    it('delivers a message published twice with the same bytes twice, and each copy once', async () => {
      // A triangle: b hears each of a's messages from a and again from c.
      const [a, b, c] = await Promise.all(
        [0, 1, 2].map(() => createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })),
      )
      nodes.push(a!, b!, c!)
      const topic = 'fast-id-test'
      for (const n of nodes) n.services.pubsub.subscribe(topic)
      await Promise.all([
        a!.dial(b!.getMultiaddrs()[0]!),
        a!.dial(c!.getMultiaddrs()[0]!),
        b!.dial(c!.getMultiaddrs()[0]!),
      ])
      // The mesh forms at gossipsub's heartbeats; the class has getMeshPeers, its interface does not.
      const meshPeers = (n: GossipLearnNode): number =>
        (n.services.pubsub as unknown as { getMeshPeers(t: string): string[] }).getMeshPeers(topic).length
      // Bounded: an unbounded poll outlives a timed-out test and keeps the worker's loop busy.
      await until('a full mesh of three', () => nodes.every((n) => meshPeers(n) === 2), 30_000, 100)
      const got: string[] = []
      b!.services.pubsub.addEventListener('message', (evt) => {
        if (evt.detail.topic === topic) got.push(new TextDecoder().decode(evt.detail.data))
      })
      const same = new TextEncoder().encode('same bytes')
      await a!.services.pubsub.publish(topic, same)
      await a!.services.pubsub.publish(topic, same)
      // Both copies of each (from a, and relayed by c) have had time to arrive.
      await new Promise((r) => setTimeout(r, 1500))
      expect(got).toEqual(['same bytes', 'same bytes'])
    })
  })
})
