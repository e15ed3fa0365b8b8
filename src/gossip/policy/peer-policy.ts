/**
 * The peer policy: every verdict about a peer (a model accepted or rejected, an announcement
 * rejected, a push that failed, later a merge that clipped its model) lands here. Each peer has
 * a score that decays towards 0 with a half-life; soft verdicts cannot take it below a floor, so
 * only repeated rejects reach the ban threshold. A banned peer is refused for a cooling-off period
 * (doubling on repeat bans) and its host is told once, through `onBan`, to drop and disconnect it.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import { InvalidArgumentError } from '../../util/errors.ts'
import {
  DEFAULT_BAN_THRESHOLD,
  DEFAULT_COOLING_OFF_MS,
  DEFAULT_HALF_LIFE_MS,
  DEFAULT_MAX_PEERS,
  DEFAULT_MAX_SCORE,
  DEFAULT_SOFT_FLOOR,
  DEFAULT_SUSPECT_SCORE,
  DEFAULT_WEIGHTS,
  HARD_VERDICTS,
  MAX_COOLING_OFF_MS,
  POLICY_VERDICTS,
  type PolicyVerdict,
  PRUNE_EPSILON,
  PRUNE_INTERVAL_MS,
} from './constants.ts'

/** One verdict about a peer; `reason` names the cause (an error name such as 'NonFiniteValueError'). */
export interface PolicyReport {
  verdict: PolicyVerdict
  reason: string
}

/** A peer the policy refuses now, why, and until when (ms on the policy's clock). */
export interface RefusedPeer {
  peerId: string
  reason: string
  until: number
}

/** Told once per ban: drop the peer from the view and close its connections. */
export type OnBan = (peerId: string, refusal: RefusedPeer) => void

export interface PeerPolicyComponents {
  logger: ComponentLogger
  /** Clock in ms (default Date.now); tests pass a fake one. */
  now?: () => number
}

export interface PeerPolicyInit {
  /** Points per verdict, merged over DEFAULT_WEIGHTS. */
  weights?: Partial<Record<PolicyVerdict, number>>
  /** Time for a score to halve (ms). */
  halfLifeMs?: number
  /** Highest score (credit cap). */
  maxScore?: number
  /** A score at or below this bans the peer (negative). */
  banThreshold?: number
  /** Soft verdicts (all but reject) stop here (between banThreshold and 0). */
  softFloor?: number
  /** A score at or below this makes the peer a suspect (between banThreshold and 0). */
  suspectScore?: number
  /** First ban's refusal (ms); doubled per repeat ban, up to maxCoolingOffMs. */
  coolingOffMs?: number
  maxCoolingOffMs?: number
  /** Peers tracked at once. */
  maxPeers?: number
  onBan?: OnBan
}

/** Running totals since construction. */
export interface PolicyCounters {
  /** Reports received, by verdict (reports about a peer already refused included). */
  reports: Record<PolicyVerdict, number>
  bans: number
}

interface Entry {
  /** Score at `updatedAt` (decay is applied lazily). */
  score: number
  updatedAt: number
  /** Rejects reported since the entry was created (for the ban reason). */
  rejects: number
  /** Bans while this entry lived: each one doubles the next cooling-off. */
  bans: number
  refusedUntil?: number
  reason?: string
}

/** Scores peers from verdicts and refuses the ones that keep sending bad input. See the module comment. */
export class PeerPolicy {
  private readonly log: Logger
  private readonly now: () => number
  private readonly weights: Record<PolicyVerdict, number>
  private readonly decayPerMs: number
  private readonly maxScore: number
  private readonly banThreshold: number
  private readonly softFloor: number
  private readonly suspectScore: number
  private readonly coolingOffMs: number
  private readonly maxCoolingOffMs: number
  private readonly maxPeers: number
  private readonly onBan?: OnBan
  /** Insertion order is recency: an entry is moved to the end whenever it changes. */
  private readonly entries = new Map<string, Entry>()
  private lastSweep: number
  private readonly stats: PolicyCounters = {
    reports: Object.fromEntries(POLICY_VERDICTS.map((v) => [v, 0])) as Record<PolicyVerdict, number>,
    bans: 0,
  }

  constructor(components: PeerPolicyComponents, init: PeerPolicyInit = {}) {
    this.log = components.logger.forComponent('gossip-learn:policy')
    this.now = components.now ?? Date.now
    this.weights = { ...DEFAULT_WEIGHTS, ...init.weights }
    const halfLifeMs = init.halfLifeMs ?? DEFAULT_HALF_LIFE_MS
    this.maxScore = init.maxScore ?? DEFAULT_MAX_SCORE
    this.banThreshold = init.banThreshold ?? DEFAULT_BAN_THRESHOLD
    this.softFloor = init.softFloor ?? DEFAULT_SOFT_FLOOR
    this.suspectScore = init.suspectScore ?? DEFAULT_SUSPECT_SCORE
    this.coolingOffMs = init.coolingOffMs ?? DEFAULT_COOLING_OFF_MS
    this.maxCoolingOffMs = Math.max(init.maxCoolingOffMs ?? MAX_COOLING_OFF_MS, this.coolingOffMs)
    this.maxPeers = init.maxPeers ?? DEFAULT_MAX_PEERS
    if (!(halfLifeMs > 0)) throw new InvalidArgumentError(`halfLifeMs must be > 0, got ${halfLifeMs}`)
    if (!(this.banThreshold < this.softFloor && this.softFloor <= 0 && this.maxScore >= 0)) {
      throw new InvalidArgumentError('need banThreshold < softFloor <= 0 <= maxScore')
    }
    if (!(this.banThreshold < this.suspectScore && this.suspectScore < 0)) {
      throw new InvalidArgumentError('need banThreshold < suspectScore < 0')
    }
    if (!(this.coolingOffMs > 0)) throw new InvalidArgumentError('coolingOffMs must be > 0')
    if (!(Number.isInteger(this.maxPeers) && this.maxPeers > 0)) {
      throw new InvalidArgumentError('maxPeers must be a positive integer')
    }
    this.decayPerMs = Math.LN2 / halfLifeMs
    this.onBan = init.onBan
    this.lastSweep = this.now()
  }

  /** A snapshot of the counters. */
  get counters(): PolicyCounters {
    return { reports: { ...this.stats.reports }, bans: this.stats.bans }
  }

  /** Peers tracked now (scored or refused). */
  get size(): number {
    return this.entries.size
  }

  /**
   * Record one verdict about `peerId`. Returns true when the peer is refused (already, or banned
   * by this report, in which case `onBan` has been called). Reports about a refused peer change nothing.
   */
  report(peerId: string, report: PolicyReport): boolean {
    const now = this.now()
    this.stats.reports[report.verdict]++
    if (now - this.lastSweep >= PRUNE_INTERVAL_MS) this.sweep(now)
    let entry = this.entries.get(peerId)
    if (entry !== undefined && this.refusedNow(entry, now)) return true
    if (entry === undefined) {
      if (this.entries.size >= this.maxPeers) this.makeRoom(now)
      entry = { score: 0, updatedAt: now, rejects: 0, bans: 0 }
    }
    const decayed = this.decayed(entry, now)
    const w = this.weights[report.verdict]
    let score = decayed + w
    if (w < 0 && !HARD_VERDICTS.has(report.verdict))
      score = Math.max(score, Math.min(decayed, this.softFloor))
    entry.score = Math.min(score, this.maxScore)
    entry.updatedAt = now
    if (report.verdict === 'reject') entry.rejects++
    this.entries.delete(peerId)
    this.entries.set(peerId, entry)
    if (entry.score > this.banThreshold) return false
    this.ban(peerId, entry, report, now)
    return true
  }

  /** Whether `peerId` is refused now (the connection gater and the view ask this). */
  isRefused(peerId: string): boolean {
    const entry = this.entries.get(peerId)
    return entry !== undefined && this.refusedNow(entry, this.now())
  }

  /** The peers refused now, soonest expiry first. */
  refused(): RefusedPeer[] {
    const now = this.now()
    const out: RefusedPeer[] = []
    for (const [peerId, e] of this.entries) {
      if (this.refusedNow(e, now)) out.push({ peerId, reason: e.reason!, until: e.refusedUntil! })
    }
    return out.sort((a, b) => a.until - b.until)
  }

  /** Whether `peerId`'s score is at or below the suspect score (see DEFAULT_SUSPECT_SCORE): pushed nothing. */
  isSuspect(peerId: string): boolean {
    return this.score(peerId) <= this.suspectScore
  }

  /** The peers that are suspects now (refused ones excluded), in no particular order. */
  suspects(): string[] {
    const now = this.now()
    const out: string[] = []
    for (const [peerId, e] of this.entries) {
      if (!this.refusedNow(e, now) && this.decayed(e, now) <= this.suspectScore) out.push(peerId)
    }
    return out
  }

  /** The peer's decayed score now (0 when untracked); for status and, later, down-weighting merges. */
  score(peerId: string): number {
    const entry = this.entries.get(peerId)
    if (entry === undefined) return 0
    const now = this.now()
    return this.refusedNow(entry, now) ? entry.score : this.decayed(entry, now)
  }

  private ban(peerId: string, entry: Entry, report: PolicyReport, now: number): void {
    entry.bans++
    const ms = Math.min(this.coolingOffMs * 2 ** (entry.bans - 1), this.maxCoolingOffMs)
    entry.refusedUntil = now + ms
    entry.reason = `${entry.rejects} rejects (last: ${report.reason})`
    this.stats.bans++
    this.log('refusing %s for %d s: %s', peerId, Math.round(ms / 1000), entry.reason)
    const refusal: RefusedPeer = { peerId, reason: entry.reason, until: entry.refusedUntil }
    try {
      this.onBan?.(peerId, refusal)
    } catch (err) {
      this.log.error('onBan failed for %s: %s', peerId, (err as Error)?.message)
    }
  }

  /** Refused at `now`? An expired refusal ends here: the peer is back on probation at the soft floor. */
  private refusedNow(entry: Entry, now: number): boolean {
    if (entry.refusedUntil === undefined) return false
    if (now < entry.refusedUntil) return true
    entry.refusedUntil = undefined
    entry.reason = undefined
    entry.rejects = 0
    entry.score = this.softFloor
    entry.updatedAt = now
    return false
  }

  private decayed(entry: Entry, now: number): number {
    const dt = Math.max(0, now - entry.updatedAt)
    return entry.score * Math.exp(-this.decayPerMs * dt)
  }

  /** Drop entries that decayed to nothing and end expired refusals. */
  private sweep(now: number): void {
    this.lastSweep = now
    for (const [id, e] of this.entries) {
      if (this.refusedNow(e, now)) continue
      if (Math.abs(this.decayed(e, now)) < PRUNE_EPSILON) this.entries.delete(id)
    }
  }

  /** At the cap: sweep, then forget the least recently changed unrefused peer, else the oldest ban. */
  private makeRoom(now: number): void {
    this.sweep(now)
    if (this.entries.size < this.maxPeers) return
    let victim: string | undefined
    for (const [id, e] of this.entries) {
      if (e.refusedUntil === undefined) {
        victim = id
        break
      }
      victim ??= id
    }
    if (victim !== undefined) this.entries.delete(victim)
  }
}
