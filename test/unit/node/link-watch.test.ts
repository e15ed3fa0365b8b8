import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { AbortOptions, Connection, IdentifyResult, PeerId, Startable } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createNode, type GossipLearnNode } from '../../../src/node/create-node.ts'
import { LinkWatch, type LinkWatchNode, SilentLinkError } from '../../../src/node/link-watch.ts'
import { InvalidArgumentError } from '../../../src/util/errors.ts'

const MESHSUB = '/meshsub/1.1.0'

interface FakeConnection {
  id: string
  remotePeer: PeerId
  status: 'open' | 'closed'
  limits?: object
  timeline: { open: number }
  streams: Array<{ direction: 'inbound' | 'outbound'; protocol?: string }>
  aborted?: Error
  abort(err: Error): void
}

let nextId = 0
function connection(peer: PeerId, openedAt: number, extra: Partial<FakeConnection> = {}): FakeConnection {
  const c: FakeConnection = {
    id: `c${nextId++}`,
    remotePeer: peer,
    status: 'open',
    timeline: { open: openedAt },
    streams: [],
    abort(err) {
      c.aborted = err
      c.status = 'closed'
    },
    ...extra,
  }
  return c
}

/** A node whose events the test fires. */
class FakeNode extends EventTarget {
  conns: FakeConnection[] = []
  getConnections(): Connection[] {
    return this.conns as unknown as Connection[]
  }
  identified(peer: PeerId, protocols = [MESHSUB], connection?: FakeConnection): void {
    this.dispatchEvent(
      new CustomEvent('peer:identify', { detail: { peerId: peer, protocols, connection } as IdentifyResult }),
    )
  }
  disconnected(peer: PeerId): void {
    this.dispatchEvent(new CustomEvent('peer:disconnect', { detail: peer }))
  }
}

describe('LinkWatch', () => {
  let peers: PeerId[]
  let watch: LinkWatch | undefined
  let now = 0
  beforeAll(async () => {
    peers = await Promise.all(
      [1, 2, 3, 4].map(async (i) =>
        peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i))),
      ),
    )
  })
  afterEach(() => watch?.stop())

  const make = (
    node: FakeNode,
    identify: (c: Connection, o: AbortOptions) => Promise<unknown> = async () => {},
  ) => {
    watch = new LinkWatch(node as unknown as LinkWatchNode, {
      protocols: [MESHSUB],
      checkEveryMs: 60_000,
      graceMs: 1000,
      timeoutMs: 200,
      maxAttempts: 2,
      identify,
      now: () => now,
    })
    watch.start()
    return watch
  }

  it('retries identify on connections past their grace, without our gossipsub stream, to peers never identified', async () => {
    const [served, stuck, young, relayed] = peers as [PeerId, PeerId, PeerId, PeerId]
    const node = new FakeNode()
    now = 10_000
    node.conns = [
      // Never identified as far as the watch heard, but our stream is there: nothing to mend.
      connection(served, 0, {
        streams: [
          { direction: 'inbound', protocol: MESHSUB },
          { direction: 'outbound', protocol: MESHSUB },
        ],
      }),
      connection(stuck, 0, { streams: [{ direction: 'inbound', protocol: MESHSUB }] }),
      connection(young, 9500),
      connection(relayed, 0, { limits: { bytes: 1n } }),
    ]
    const tried: string[] = []
    const w = make(node, async (c) => {
      tried.push(c.remotePeer.toString())
      // libp2p's identify announces its result as an event.
      node.identified(c.remotePeer)
    })
    await w.round()
    expect(tried).toEqual([stuck.toString()])
    expect(w.counters).toMatchObject({
      identifyRetries: 1,
      identifyRecovered: 1,
      identifyFailures: 0,
      aborted: 0,
    })

    // The young connection is past its grace a second later.
    now = 10_600
    await w.round()
    expect(tried).toEqual([stuck.toString(), young.toString()])
  })

  it('aborts a connection to an identified gossipsub peer that still has no stream one grace later', async () => {
    const [lost, mended, other] = peers as [PeerId, PeerId, PeerId]
    const node = new FakeNode()
    now = 5000
    const c = connection(lost, 0)
    const d = connection(mended, 0)
    const e = connection(other, 0)
    node.conns = [c, d, e]
    const w = make(node)
    node.identified(lost)
    node.identified(mended)
    // A peer without gossipsub (a relay, say) is not ours to mend.
    node.identified(other, ['/libp2p/circuit/relay/0.2.0/hop'])
    await w.round()
    expect(w.counters).toMatchObject({ streamless: 2, aborted: 0, identifyRetries: 0 })
    d.streams.push({ direction: 'outbound', protocol: MESHSUB })
    now = 5500
    await w.round()
    expect(c.status).toBe('open')
    now = 6000
    await w.round()
    expect(c.aborted).toBeInstanceOf(SilentLinkError)
    expect(c.aborted?.message).toMatch(/no gossipsub stream/)
    expect([d.status, e.status]).toEqual(['open', 'open'])
    expect(w.counters).toMatchObject({ streamless: 2, aborted: 1 })
  })

  it('forgets a peer that disconnects: its next connection is checked again', async () => {
    const [peer] = peers as [PeerId]
    const node = new FakeNode()
    now = 5000
    node.conns = [connection(peer, 0)]
    let calls = 0
    const w = make(node, async () => {
      calls++
    })
    node.identified(peer)
    await w.round()
    expect(calls).toBe(0)
    node.disconnected(peer)
    await w.round()
    expect(calls).toBe(1)
  })

  it('ignores an identify result for a connection closed meanwhile (it would outlive the disconnect)', async () => {
    const [peer] = peers as [PeerId]
    const node = new FakeNode()
    now = 5000
    const old = connection(peer, 0, { status: 'closed' })
    node.conns = [connection(peer, 0)]
    let calls = 0
    const w = make(node, async () => {
      calls++
    })
    // libp2p's identify dispatches after an await: the disconnect came first.
    node.disconnected(peer)
    node.identified(peer, [MESHSUB], old)
    await w.round()
    // Not taken as identified: the new connection gets identify again.
    expect(calls).toBe(1)
  })

  it('aborts a connection identify keeps failing on, after maxAttempts', async () => {
    const [peer] = peers as [PeerId]
    const node = new FakeNode()
    now = 5000
    const c = connection(peer, 0)
    node.conns = [c]
    const w = make(node, async () => {
      throw new Error('timed out')
    })
    await w.round()
    expect(c.status).toBe('open')
    await w.round()
    expect(c.aborted).toBeInstanceOf(SilentLinkError)
    expect(c.aborted?.message).toMatch(/failed 2 times: timed out/)
    expect(w.counters).toMatchObject({
      identifyRetries: 2,
      identifyRecovered: 0,
      identifyFailures: 2,
      aborted: 1,
    })
    // A closed connection is not retried.
    await w.round()
    expect(w.counters.identifyRetries).toBe(2)
  })

  it('bounds a retry by timeoutMs; stop() ends one in flight without counting it as a failure', async () => {
    const [slow, hung] = peers as [PeerId, PeerId]
    const node = new FakeNode()
    now = 5000
    node.conns = [connection(slow, 0)]
    const untilAborted = (o: AbortOptions) =>
      new Promise((_, reject) => o.signal?.addEventListener('abort', () => reject(o.signal?.reason)))
    const w = make(node, (_c, o) => untilAborted(o))
    await w.round()
    expect(w.counters.identifyFailures).toBe(1)

    node.conns = [connection(hung, 0)]
    const round = w.round()
    // One retry per connection at a time: a second round does not start another.
    const again = w.round()
    w.stop()
    await Promise.all([round, again])
    expect(w.counters).toMatchObject({ identifyRetries: 2, identifyFailures: 1 })
  })

  it('rejects periods that are not positive', () => {
    const node = new FakeNode()
    const bad = {
      protocols: [],
      checkEveryMs: 0,
      graceMs: 0,
      timeoutMs: 1,
      maxAttempts: 1,
      identify: async () => {},
    }
    expect(() => new LinkWatch(node as unknown as LinkWatchNode, bad)).toThrow(InvalidArgumentError)
    expect(
      () => new LinkWatch(node as unknown as LinkWatchNode, { ...bad, checkEveryMs: 1, maxAttempts: 0 }),
    ).toThrow(InvalidArgumentError)
  })
})

describe('LinkWatch on real libp2p nodes', () => {
  const nodes: GossipLearnNode[] = []
  let watch: LinkWatch | undefined
  afterEach(async () => {
    watch?.stop()
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
  })
  const topic = 'link-watch-test'
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

  /** a and b subscribed to the topic; what b hears; a watch on a (started before any dial). */
  async function pair(graceMs: number) {
    const [a, b] = (await Promise.all(
      [0, 1].map(() => createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false })),
    )) as [GossipLearnNode, GossipLearnNode]
    nodes.push(a, b)
    const heard: string[] = []
    b.services.pubsub.addEventListener('message', (evt) =>
      heard.push(new TextDecoder().decode(evt.detail.data)),
    )
    a.services.pubsub.subscribe(topic)
    b.services.pubsub.subscribe(topic)
    watch = new LinkWatch(a, {
      protocols: a.services.pubsub.protocols,
      checkEveryMs: 200,
      graceMs,
      timeoutMs: 5000,
      maxAttempts: 3,
      identify: (c, o) => a.services.identify.identify(c, o),
    })
    const publish = (text: string) => a.services.pubsub.publish(topic, new TextEncoder().encode(text))
    return { a, b, heard, publish, watch }
  }

  it('a connection identify failed on at both ends carries no gossipsub until the watch identifies again', {
    timeout: 30_000,
  }, async () => {
    const { a, b, heard, publish, watch } = await pair(0)
    // Neither answers identify: each side's one run on the new connection fails, and is not run again.
    const identifies = [a, b].map((n) => n.services.identify as unknown as Startable)
    await Promise.all(identifies.map((i) => i.stop()))
    await a.dial(b.getMultiaddrs()[0]!)
    await sleep(1500)
    await publish('before')
    await sleep(1500)
    expect(heard).toEqual([])
    expect(a.getConnections(b.peerId)).toHaveLength(1)

    await Promise.all(identifies.map((i) => i.start()))
    watch.start()
    // Until b hears a (gossipsub's mesh forms on its next heartbeat), or the test's timeout.
    for (let i = 0; heard.length === 0; i++) {
      await publish(`after-${i}`)
      await sleep(300)
    }
    expect(watch.counters).toMatchObject({ identifyRecovered: 1, aborted: 0 })
    expect(heard[0]).toMatch(/^after-/)
  })

  it('aborts a connection whose gossipsub stream closed: gossipsub does not reopen it', {
    timeout: 30_000,
  }, async () => {
    const { a, b, heard, publish, watch } = await pair(1000)
    watch.start()
    await a.dial(b.getMultiaddrs()[0]!)
    for (let i = 0; heard.length === 0; i++) {
      await publish(`first-${i}`)
      await sleep(300)
    }
    const conn = a.getConnections(b.peerId)[0]!
    const ours = conn.streams.find(
      (s) => s.direction === 'outbound' && a.services.pubsub.protocols.includes(s.protocol ?? ''),
    )
    expect(ours).toBeDefined()
    ours!.abort(new Error('reset by the test'))
    const before = heard.length
    await sleep(1000)
    await publish('lost')
    await sleep(500)
    expect(heard.length).toBe(before)
    for (let i = 0; conn.status === 'open' && i < 50; i++) await sleep(200)
    expect(conn.status).not.toBe('open')
    expect(watch.counters).toMatchObject({ streamless: 1, aborted: 1 })
  })
})
