/**
 * An attacker joins like a daemon over real libp2p on 127.0.0.1 (issue 9): when its one bootstrap
 * dial fails (the bootstrap peer is not up yet, or too busy to answer in time), it dials the
 * bootstrap again while alone instead of staying alone for the whole run.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, describe, expect, it } from 'vitest'
import { createNode, type GossipLearnNode } from '../../src/node/create-node.ts'
import { type Attacker, startAttacker } from '../../src/testbed/attack/attacker.ts'
import { until } from './until.ts'

describe('attacker joining (real libp2p on loopback)', () => {
  let bootstrap: GossipLearnNode | undefined
  let attacker: Attacker | undefined

  afterAll(async () => {
    await attacker?.stop()
    await bootstrap?.stop()
  })

  it('dials the bootstrap again when its first dial failed', async () => {
    // The bootstrap's address and identity, then the bootstrap gone: the attacker's first dial is refused.
    const privateKey = await generateKeyPair('Ed25519')
    const first = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], privateKey })
    const addr = first.getMultiaddrs()[0]!.toString()
    const port = /\/tcp\/(\d+)\//.exec(addr)![1]
    await first.stop()

    attacker = await startAttacker({
      mode: 'sign-flip',
      bootstrap: [addr],
      dataset: 'mnist',
      model: 'mlp',
      hidden: 32,
      partition: 'iid',
      peerIndex: 0,
      peerCount: 1,
      seed: 1,
      attackSeed: 1,
      intervalMs: 250,
      fanout: 1,
      stepsPerRound: 5,
      batchSize: 32,
      learningRate: 0.002,
      evalSize: 200,
    })
    // @libp2p/bootstrap dials 200 ms after start; a closed loopback port refuses it at once.
    await sleep(1000)
    expect(attacker.stats().connectedPeers).toBe(0)

    bootstrap = await createNode({ listen: [`/ip4/127.0.0.1/tcp/${port}`], privateKey })
    await until('the attacker to reach the bootstrap', () => attacker!.stats().connectedPeers > 0, 30_000)
    // The attacker's side of the connection can open before the bootstrap's: wait for both.
    await until(
      'the bootstrap to list the connection',
      () => bootstrap!.getConnections().some((c) => c.remotePeer.toString() === attacker!.peerId),
      10_000,
    )
  })
})
