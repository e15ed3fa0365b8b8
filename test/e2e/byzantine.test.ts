/**
 * Byzantine robustness over real libp2p on 127.0.0.1 (issue 9): two honest daemons learn
 * together; an attacker peer from the testbed's attack facility joins through the bootstrap,
 * announces itself like any peer and pushes each of them sign-flipped models (a received model
 * times -4). Each honest daemon must refuse it within a bounded number of pushes, keep exchanging
 * with the other, and keep its accuracy up.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../../src/node/daemon.ts'
import { type Attacker, startAttacker } from '../../src/testbed/attack/attacker.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const HIDDEN = 32

const config = (dir: string, index: number, extra: string[] = []) =>
  testDaemonConfig(dir, index, {
    peerCount: 2,
    stepsPerRound: 5,
    extra: ['--hidden', String(HIDDEN), ...extra],
  })

/**
 * Accuracy both honest daemons reach before the attack and must still have after it. A 784-32-10
 * MLP on half of MNIST passes it within seconds; a merge with a sign-flipped model takes a peer
 * far below it (one such merge is enough without defences).
 */
const ACCURACY_FLOOR = 0.75

/**
 * Pushes the attacker may complete to one honest daemon before that daemon refuses it. The policy
 * bans a fresh peer on its third reject (test/e2e/peer-policy.test.ts); the learner judges only
 * the newest pending model per sender at each merge and a sender's fair share of merges is capped,
 * so several pushes may collapse into one verdict. 20 pushes at an honest rate is a few seconds.
 */
const MAX_PUSHES_BEFORE_REFUSAL = 20

/** The attacker pushes about as often as an honest daemon of this test does (5 steps per round). */
const ATTACK_INTERVAL_MS = 250

describe('Byzantine attacker (real libp2p daemons)', () => {
  let base: string
  const daemons: Daemon[] = []
  let attacker: Attacker | undefined

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-byzantine-'))
  })

  afterAll(async () => {
    await attacker?.stop()
    await Promise.all(daemons.map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  it('refuses a sign-flip attacker within a bounded number of pushes; the honest daemons keep learning', async () => {
    daemons.push(await startDaemon(config(join(base, 'a'), 0)))
    const boot = daemons[0]!.multiaddrs.find((a) => a.includes('127.0.0.1'))!
    daemons.push(await startDaemon(config(join(base, 'b'), 1, ['--bootstrap', boot])))
    const [a, b] = daemons as [Daemon, Daemon]
    await until(
      `both honest daemons to exchange models and reach accuracy ${ACCURACY_FLOOR}`,
      () =>
        daemons.every(
          (d) => d.status().modelsReceived > 0 && (d.status().lastAccuracy ?? 0) >= ACCURACY_FLOOR,
        ),
      120_000,
    )

    attacker = await startAttacker({
      mode: 'sign-flip',
      bootstrap: [boot],
      dataset: 'mnist',
      model: 'mlp',
      hidden: HIDDEN,
      partition: 'iid',
      peerIndex: 0,
      peerCount: 2,
      seed: 1,
      attackSeed: 1,
      intervalMs: ATTACK_INTERVAL_MS,
      fanout: 2,
      stepsPerRound: 5,
      batchSize: 32,
      learningRate: 0.002,
      evalSize: 200,
      targets: [a.peerId, b.peerId],
    })
    const evil = attacker.peerId
    await until('the attacker to receive a model and push to both daemons', () => {
      const s = attacker!.stats()
      return s.modelsReceived > 0 && (s.pushedTo[a.peerId] ?? 0) > 0 && (s.pushedTo[b.peerId] ?? 0) > 0
    })

    // Watch each daemon until it refuses the attacker; note how many pushes it had taken by then.
    const pushesAtRefusal = new Map<string, number>()
    const refusedAt = new Map<string, number>()
    await until(
      'both honest daemons to refuse the attacker',
      () => {
        for (const d of daemons) {
          if (!refusedAt.has(d.peerId) && d.policy.isRefused(evil)) {
            refusedAt.set(d.peerId, Date.now())
            pushesAtRefusal.set(d.peerId, attacker!.stats().pushedTo[d.peerId] ?? 0)
          }
        }
        return refusedAt.size === daemons.length
      },
      90_000,
      50,
    )
    for (const d of daemons) {
      expect(pushesAtRefusal.get(d.peerId)).toBeGreaterThan(0)
      expect(pushesAtRefusal.get(d.peerId)).toBeLessThanOrEqual(MAX_PUSHES_BEFORE_REFUSAL)
      expect(d.status().refusedPeers.map((r) => r.peerId)).toContain(evil)
      expect(d.policy.isRefused(daemons.find((x) => x !== d)!.peerId)).toBe(false)
    }

    // Refused means refused: the attacker's later pushes fail and none is accepted.
    const accepted = daemons.map((d) => d.status().modelsReceivedFrom[evil] ?? 0)
    const failedBefore = attacker.stats().pushFailures
    await until(
      'the attacker to be turned away again',
      () => attacker!.stats().pushFailures >= failedBefore + 4,
    )
    daemons.forEach((d, i) => {
      expect(d.status().modelsReceivedFrom[evil] ?? 0).toBe(accepted[i])
    })

    // The honest daemons keep exchanging, and their accuracy, evaluated after the refusal, stays up.
    const received = daemons.map((d) => d.status().modelsReceived)
    const evaluatedAfter = Math.max(...refusedAt.values())
    await until('both honest daemons to receive more models and evaluate again after the refusal', () =>
      daemons.every(
        (d, i) => d.status().modelsReceived > received[i]! && (d.status().lastEvalAt ?? 0) > evaluatedAfter,
      ),
    )
    for (const d of daemons) expect(d.status().lastAccuracy).toBeGreaterThanOrEqual(ACCURACY_FLOOR)
  })
})
