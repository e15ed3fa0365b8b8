/**
 * Membership through a busy bootstrap peer over real libp2p on 127.0.0.1 (issue 9): a node that
 * joins through a bootstrap which already has more than gossipsub's IP colocation threshold (10)
 * of peers, all on loopback like a testbed's, learns every peer's announcement and is learnt by
 * every peer, though its only connection is to the bootstrap. With the colocation penalty on
 * loopback the bootstrap scored all its peers below zero, relayed nothing, and the joiner's view
 * held the bootstrap alone.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, describe, expect, it } from 'vitest'
import { Membership } from '../../src/gossip/membership.ts'
import { createNode, type GossipLearnNode } from '../../src/node/create-node.ts'
import { until } from './until.ts'

/** Peers joined through the bootstrap before the late one: past the colocation threshold of 10. */
const EARLY = 12

/** Announce often, so a view fills within a few gossipsub heartbeats (1 s each). */
const ANNOUNCE_MS = 500

describe('membership through a busy bootstrap (real libp2p on loopback)', () => {
  const nodes: GossipLearnNode[] = []
  const views: Membership[] = []

  afterAll(async () => {
    for (const m of views) m.stop()
    await Promise.all(nodes.map((n) => n.stop()))
  })

  const join = async (bootstrap?: string): Promise<{ node: GossipLearnNode; membership: Membership }> => {
    const node = await createNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: bootstrap === undefined ? undefined : [bootstrap],
    })
    nodes.push(node)
    const membership = new Membership(
      {
        pubsub: node.services.pubsub as never,
        peerId: node.peerId,
        logger: node.logger,
        addAddresses: async (id, list) => {
          await node.peerStore.merge(id, { multiaddrs: list.map((a) => multiaddr(a)) })
        },
      },
      {
        task: 'busy-bootstrap',
        intervalMs: ANNOUNCE_MS,
        describe: () => ({
          addrs: node.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/[^/]+$/, '')),
          age: 0,
        }),
      },
    )
    membership.start()
    views.push(membership)
    return { node, membership }
  }

  it('a late joiner connected only to the bootstrap learns the whole view, and the view learns it', async () => {
    const { node: boot } = await join()
    const bootAddr = boot.getMultiaddrs()[0]!.toString()
    for (let i = 0; i < EARLY; i++) await join(bootAddr)
    await until(`the bootstrap to hold ${EARLY} connections`, () => boot.getConnections().length >= EARLY)

    const late = await join(bootAddr)
    const lateId = late.node.peerId.toString()
    const total = EARLY + 2
    // Apart from the view's convergence: a dial lost under load is another failure than a view that stalls.
    await until(
      'the late joiner to connect to the bootstrap',
      () => late.node.getConnections().length > 0,
      30_000,
    )
    // getScore and getMeshPeers are on gossipsub's class, not on the GossipSub interface libp2p's services are typed with.
    const bootPubsub = boot.services.pubsub as unknown as {
      getScore(peerId: string): number
      getMeshPeers(topic: string): string[]
    }
    const latePubsub = late.node.services.pubsub as unknown as { getScore(peerId: string): number }
    await until(
      `the late joiner to learn all ${total - 1} other peers and every peer to learn it`,
      () =>
        late.membership.peers().length === total - 1 &&
        views.every((m) => m === late.membership || m.get(lateId) !== undefined),
      {
        ms: 30_000,
        detail: () => {
          const mesh = bootPubsub.getMeshPeers(late.membership.topic)
          const unaware = views.filter((m) => m !== late.membership && m.get(lateId) === undefined).length
          return [
            `late view ${late.membership.peers().length}/${total - 1}`,
            `views without it ${unaware}`,
            `late connections ${late.node.getConnections().length}`,
            `bootstrap mesh ${mesh.length} (late in it: ${mesh.includes(lateId)})`,
            `late mesh ${late.membership.meshSize()}`,
            `bootstrap's score of late ${bootPubsub.getScore(lateId)}`,
            // Under load, IWANT answers that come late are broken promises: a score below the
            // gossip threshold makes the joiner ignore the bootstrap's IHAVEs, its only source.
            `late's score of the bootstrap ${latePubsub.getScore(boot.peerId.toString())}`,
          ].join(', ')
        },
      },
    )
    // Learnt through the bootstrap's relaying, not by connecting to everyone.
    expect(new Set(late.node.getConnections().map((c) => c.remotePeer.toString()))).toEqual(
      new Set([boot.peerId.toString()]),
    )
    // Colocated on loopback, yet not penalised: the bootstrap's score of the joiner is not negative.
    expect(bootPubsub.getScore(lateId)).toBeGreaterThanOrEqual(0)
  })
})
