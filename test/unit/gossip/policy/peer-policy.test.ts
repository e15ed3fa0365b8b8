import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import {
  NonFiniteValueError,
  StreamTimeoutError,
  TransferLimitError,
  TruncatedFrameError,
} from '../../../../src/gossip/errors.ts'
import {
  createPeerPolicy,
  DEFAULT_BAN_THRESHOLD,
  DEFAULT_COOLING_OFF_MS,
  DEFAULT_HALF_LIFE_MS,
  DEFAULT_MAX_SCORE,
  DEFAULT_SOFT_FLOOR,
  DEFAULT_SUSPECT_SCORE,
  type PeerPolicyInit,
  policyGater,
  type RefusedPeer,
  reportForRejection,
} from '../../../../src/gossip/policy/index.ts'

const MIN = 60_000
const reject = { verdict: 'reject', reason: 'NonFiniteValueError' } as const
const accept = { verdict: 'accept', reason: 'model' } as const

function setup(init: PeerPolicyInit = {}) {
  const clock = { t: 1_000_000 }
  const bans: Array<[string, RefusedPeer]> = []
  const policy = createPeerPolicy(
    { logger: defaultLogger(), now: () => clock.t },
    { onBan: (id, r) => bans.push([id, r]), ...init },
  )
  return { policy, clock, bans }
}

describe('PeerPolicy', () => {
  it('bans a fresh peer on its third quick reject, not before, and tells the host once', () => {
    const { policy, bans } = setup()
    expect(policy.report('p', reject)).toBe(false)
    expect(policy.report('p', reject)).toBe(false)
    expect(policy.isRefused('p')).toBe(false)
    expect(policy.report('p', reject)).toBe(true)
    expect(policy.isRefused('p')).toBe(true)
    expect(bans).toHaveLength(1)
    expect(bans[0]![0]).toBe('p')
    expect(bans[0]![1].reason).toContain('NonFiniteValueError')
    // Further reports about a refused peer change nothing and do not ban it again.
    expect(policy.report('p', reject)).toBe(true)
    expect(bans).toHaveLength(1)
    expect(policy.counters.bans).toBe(1)
    expect(policy.counters.reports.reject).toBe(4)
    expect(policy.isRefused('q')).toBe(false)
  })

  it('decays a score by half per half-life', () => {
    const { policy, clock } = setup()
    policy.report('p', reject)
    expect(policy.score('p')).toBeCloseTo(-10, 9)
    clock.t += DEFAULT_HALF_LIFE_MS
    expect(policy.score('p')).toBeCloseTo(-5, 9)
    clock.t += 2 * DEFAULT_HALF_LIFE_MS
    expect(policy.score('p')).toBeCloseTo(-1.25, 9)
  })

  it('forgives rejects spread far apart: three in an hour do not ban', () => {
    const { policy, clock } = setup()
    for (let i = 0; i < 3; i++) {
      expect(policy.report('p', reject)).toBe(false)
      clock.t += 20 * MIN
    }
    expect(policy.isRefused('p')).toBe(false)
  })

  it('caps credit: a long-honest peer that turns hostile is banned by its fourth reject', () => {
    const { policy } = setup()
    for (let i = 0; i < 100; i++) policy.report('p', accept)
    expect(policy.score('p')).toBe(DEFAULT_MAX_SCORE)
    const rejectsToBan = Math.ceil((DEFAULT_MAX_SCORE - DEFAULT_BAN_THRESHOLD) / 10)
    expect(rejectsToBan).toBe(4)
    for (let i = 1; i < rejectsToBan; i++) expect(policy.report('p', reject)).toBe(false)
    expect(policy.report('p', reject)).toBe(true)
  })

  it('tolerates a noisy but honest peer: soft verdicts alone never ban', () => {
    const { policy, clock, bans } = setup()
    // A bad link: every push to it fails, its transfers stall, the merge clips its model, for hours.
    for (let i = 0; i < 5000; i++) {
      policy.report('p', { verdict: 'push-failed', reason: 'StreamTimeoutError' })
      policy.report('p', { verdict: 'ignore', reason: 'TransferLimitError' })
      policy.report('p', { verdict: 'clip', reason: 'clipped' })
      policy.report('p', { verdict: 'downweight', reason: 'age-capped' })
      // Runs of refusals just beyond the distance radius: an honest peer as a network converges.
      for (let k = 0; k < 8; k++) policy.report('p', { verdict: 'far', reason: 'distance-outlier' })
      clock.t += 2000
    }
    expect(policy.isRefused('p')).toBe(false)
    expect(bans).toHaveLength(0)
    expect(policy.score('p')).toBeGreaterThanOrEqual(DEFAULT_SOFT_FLOOR)
    expect(policy.score('p')).toBeLessThan(0)
    // Noise makes it suspect: two rejects (repeated, not one) then ban it, where a fresh peer needs three.
    expect(policy.report('p', reject)).toBe(false)
    expect(policy.report('p', reject)).toBe(true)
  })

  it('ends the refusal after the cooling-off, puts the peer on probation and doubles a repeat ban', () => {
    const { policy, clock, bans } = setup()
    for (let i = 0; i < 3; i++) policy.report('p', reject)
    const first = policy.refused()
    expect(first).toEqual([
      { peerId: 'p', reason: bans[0]![1].reason, until: clock.t + DEFAULT_COOLING_OFF_MS },
    ])
    clock.t += DEFAULT_COOLING_OFF_MS - 1
    expect(policy.isRefused('p')).toBe(true)
    clock.t += 1
    expect(policy.isRefused('p')).toBe(false)
    expect(policy.refused()).toEqual([])
    expect(policy.score('p')).toBe(DEFAULT_SOFT_FLOOR)
    // On probation: two rejects ban it again, for twice as long.
    policy.report('p', reject)
    expect(policy.report('p', reject)).toBe(true)
    expect(bans).toHaveLength(2)
    expect(policy.refused()[0]!.until).toBe(clock.t + 2 * DEFAULT_COOLING_OFF_MS)
  })

  it('lists refused peers soonest expiry first', () => {
    const { policy, clock } = setup()
    for (const id of ['a', 'b']) {
      for (let i = 0; i < 3; i++) policy.report(id, reject)
      clock.t += MIN
    }
    expect(policy.refused().map((r) => r.peerId)).toEqual(['a', 'b'])
  })

  it('bounds memory: caps tracked peers and prunes scores that decayed to nothing', () => {
    const { policy, clock } = setup({ maxPeers: 50 })
    for (let i = 0; i < 3; i++) policy.report('banned', reject)
    for (let i = 0; i < 500; i++) policy.report(`peer-${i}`, accept)
    expect(policy.size).toBe(50)
    // The ban outlives the flood of identities: unrefused peers are forgotten first.
    expect(policy.isRefused('banned')).toBe(true)
    expect(policy.score('peer-499')).toBe(1)
    expect(policy.score('peer-0')).toBe(0)
    // After ~2 half-lives +1 decays below the prune epsilon: the next report sweeps them out.
    clock.t += 2 * DEFAULT_HALF_LIFE_MS
    policy.report('late', accept)
    expect(policy.size).toBe(2)
    expect(policy.isRefused('banned')).toBe(false)
  })

  it('forgets the oldest ban when every tracked peer is refused', () => {
    const { policy, clock } = setup({ maxPeers: 3 })
    for (const id of ['a', 'b', 'c', 'd']) {
      for (let i = 0; i < 3; i++) policy.report(id, reject)
      clock.t += 1000
    }
    expect(policy.size).toBe(3)
    expect(policy.refused().map((r) => r.peerId)).toEqual(['b', 'c', 'd'])
  })

  it('holds a peer suspect after one outlier or a run of soft verdicts, until accepted models or time restore it', () => {
    const { policy, clock } = setup()
    expect(policy.isSuspect('fresh')).toBe(false)
    policy.report('o', { verdict: 'outlier', reason: 'distance-gross' })
    expect(policy.score('o')).toBe(DEFAULT_SUSPECT_SCORE)
    expect(policy.isSuspect('o')).toBe(true)
    policy.report('o', accept)
    expect(policy.isSuspect('o')).toBe(false)
    // A peer flooding us: each model over its fair share is an `ignore`, floored at the soft floor.
    for (let i = 0; i < 20; i++) policy.report('f', { verdict: 'ignore', reason: 'FairShareError' })
    expect(policy.score('f')).toBe(DEFAULT_SOFT_FLOOR)
    expect(policy.isSuspect('f')).toBe(true)
    clock.t += DEFAULT_HALF_LIFE_MS
    expect(policy.isSuspect('f')).toBe(false)
    // A peer with credit absorbs an occasional outlier.
    for (let i = 0; i < 5; i++) policy.report('c', accept)
    policy.report('c', { verdict: 'outlier', reason: 'probe-accuracy' })
    expect(policy.isSuspect('c')).toBe(false)
  })

  it('lists the suspects now: not refused peers, not peers whose score decayed back', () => {
    const { policy, clock } = setup()
    for (let i = 0; i < 4; i++)
      policy.report('slow', { verdict: 'push-failed', reason: 'StreamTimeoutError' })
    policy.report('fine', { verdict: 'push-failed', reason: 'StreamTimeoutError' })
    for (let i = 0; i < 3; i++) policy.report('bad', reject)
    expect(policy.isRefused('bad')).toBe(true)
    expect(policy.suspects()).toEqual(['slow'])
    clock.t += DEFAULT_HALF_LIFE_MS / 2
    expect(policy.suspects()).toEqual([])
  })

  it('applies custom weights and refuses invalid settings with InvalidArgumentError', () => {
    const { policy } = setup({ weights: { reject: -30 } })
    expect(policy.report('p', reject)).toBe(true)
    for (const init of [
      { halfLifeMs: 0 },
      { banThreshold: -1, softFloor: -5 },
      { softFloor: 1 },
      { suspectScore: 0 },
      { suspectScore: DEFAULT_BAN_THRESHOLD },
      { coolingOffMs: 0 },
      { maxPeers: 0 },
    ]) {
      expect(() => createPeerPolicy({ logger: defaultLogger() }, init)).toThrow(
        expect.objectContaining({ name: 'InvalidArgumentError' }),
      )
    }
  })
})

describe('reportForRejection', () => {
  it('keeps the exchange verdict, except for a frame cut short (an honest aborted push looks the same)', () => {
    expect(reportForRejection(new NonFiniteValueError('nan'), 'reject')).toEqual({
      verdict: 'reject',
      reason: 'NonFiniteValueError',
    })
    expect(reportForRejection(new TruncatedFrameError('reset'), 'reject')).toEqual({
      verdict: 'ignore',
      reason: 'TruncatedFrameError',
    })
    expect(reportForRejection(new StreamTimeoutError('idle'), 'ignore').verdict).toBe('ignore')
    expect(reportForRejection(new TransferLimitError('busy'), 'ignore').verdict).toBe('ignore')
  })
})

describe('policyGater', () => {
  it('denies dials and connections of refused peers only', async () => {
    const bad = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const good = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const { policy } = setup()
    for (let i = 0; i < 3; i++) policy.report(bad.toString(), reject)
    const gater = policyGater(policy)
    const maConn = {} as never
    expect(await gater.denyDialPeer!(bad)).toBe(true)
    expect(await gater.denyInboundEncryptedConnection!(bad, maConn)).toBe(true)
    expect(await gater.denyOutboundEncryptedConnection!(bad, maConn)).toBe(true)
    expect(await gater.denyDialPeer!(good)).toBe(false)
    expect(await gater.denyInboundEncryptedConnection!(good, maConn)).toBe(false)
  })
})
