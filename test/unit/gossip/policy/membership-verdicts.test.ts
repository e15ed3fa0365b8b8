/**
 * Membership feeds the peer policy: a rejected announcement is reported against its author (the
 * signer, else the relaying peer), and a refused peer's announcements stay out of the view.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { verdictOf } from '../../../../src/gossip/errors.ts'
import {
  type AnnounceMessage,
  encodeDescriptor,
  Membership,
  type PubsubLike,
  type TopicVerdict,
} from '../../../../src/gossip/membership.ts'
import { createPeerPolicy } from '../../../../src/gossip/policy/index.ts'

class FakePubsub implements PubsubLike {
  readonly topicValidators = new Map<string, (peer: PeerId, msg: AnnounceMessage) => TopicVerdict>()
  private readonly listeners = new Set<(evt: CustomEvent<AnnounceMessage>) => void>()
  subscribe(): void {}
  unsubscribe(): void {}
  async publish(): Promise<unknown> {
    return {}
  }
  addEventListener(_t: 'message', l: (evt: CustomEvent<AnnounceMessage>) => void): void {
    this.listeners.add(l)
  }
  removeEventListener(_t: 'message', l: (evt: CustomEvent<AnnounceMessage>) => void): void {
    this.listeners.delete(l)
  }
  /** What gossipsub does: validate, then deliver what was accepted. */
  receive(relay: PeerId, msg: AnnounceMessage): TopicVerdict {
    const verdict = this.topicValidators.get(msg.topic)?.(relay, msg) ?? 'accept'
    if (verdict === 'accept') for (const l of this.listeners) l(new CustomEvent('message', { detail: msg }))
    return verdict
  }
}

const newPeer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

describe('membership verdicts to the peer policy', () => {
  it('reports rejected announcements against their signer and keeps refused peers out of the view', async () => {
    const [self, author, relay] = [await newPeer(), await newPeer(), await newPeer()]
    const pubsub = new FakePubsub()
    const policy = createPeerPolicy({ logger: defaultLogger() })
    const membership = new Membership(
      {
        pubsub,
        peerId: self,
        logger: defaultLogger(),
        onRejected: (id, err) => policy.report(id, { verdict: verdictOf(err), reason: err.name }),
        isRefused: (id) => policy.isRefused(id),
      },
      { task: 't', describe: () => ({ addrs: [], age: 0 }) },
    )
    membership.start()
    try {
      const topic = membership.topic
      const valid = encodeDescriptor({ v: 1, peerId: author.toString(), addrs: [], age: 1 })
      const signed = (data: Uint8Array): AnnounceMessage => ({ type: 'signed', topic, data, from: author })

      expect(pubsub.receive(relay, signed(valid))).toBe('accept')
      expect(membership.peers().map((p) => p.peerId)).toEqual([author.toString()])

      // Garbage signed by `author`, relayed by `relay`: the author answers for it, not the relay.
      for (let i = 0; i < 3; i++) {
        expect(pubsub.receive(relay, signed(new TextEncoder().encode('garbage')))).toBe('reject')
      }
      expect(policy.score(relay.toString())).toBe(0)
      expect(policy.isRefused(author.toString())).toBe(true)
      expect(policy.refused()[0]!.reason).toContain('InvalidDescriptorError')

      // Once refused, its valid announcements do not bring it back into the view.
      membership.evict(author.toString())
      expect(pubsub.receive(relay, signed(valid))).toBe('accept')
      expect(membership.peers()).toEqual([])

      // Unsigned: only the relay is known, so the relay answers for it.
      expect(pubsub.receive(relay, { type: 'unsigned', topic, data: valid })).toBe('reject')
      // Scores decay with real time: a few ms after the report, -10 reads -9.99999.
      expect(policy.score(relay.toString())).toBeCloseTo(-10, 3)
    } finally {
      membership.stop()
    }
  })
})
