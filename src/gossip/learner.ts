/**
 * The learner loop: train K local steps, merge whatever models arrived
 * meanwhile, push the model to f sampled peers, repeat. Asynchronous: no
 * rounds, nobody waits for anybody; pushes run in the background while the
 * next steps train.
 *
 * Defences (issue 9, on by default): a sender gets at most its fair share of merges, its
 * claimed age must grow plausibly, and a round that ends non-finite or with an exploded loss
 * rolls the model back to the last good state and refuses the inputs of the merge before it.
 * Every clip, rejection and drop (the merge pipeline's too) is reported through `onVerdict`.
 */

import type { ComponentLogger, Logger } from '@libp2p/interface'
import { MERGE_REASONS } from '../merge/constants.ts'
import type { MaskedState } from '../merge/masks.ts'
import type { InputOutcome, MergeResult, Merger } from '../merge/pipeline.ts'
import { isFiniteState } from '../merge/steps/vector.ts'
import type { ModelState } from '../model/types.ts'
import { anyWithTimeout, release } from '../util/abort.ts'
import { InvalidArgumentError } from '../util/errors.ts'
import { CatchUp, type CatchUpInit } from './catch-up.ts'
import {
  AgeClaims,
  DEFAULT_AGE_MIN_RATE,
  DEFAULT_AGE_RATE_FACTOR,
  DEFAULT_FAIR_SHARE_MIN_RATE,
  DEFAULT_FAIR_SHARE_SLACK,
  DEFENCE_REASONS,
  type DefenceCounters,
  type DefenceOptions,
  emptyDefenceCounters,
  FairShare,
  LossWatch,
  MAX_TRACKED_SENDERS,
  ShareWeights,
} from './defences/index.ts'
import { RelayedOnlyError } from './errors.ts'
import type { PolicyReport } from './policy/index.ts'
import type { PeerEntry, PeerSampler } from './sampling/sampler.ts'
import { UploadBudget } from './upload-budget.ts'

/** What the learner needs from the local model (implemented over tfjs in src/model/local-model.ts). */
export interface LocalModel {
  /** Train `steps` minibatches, yielding to the event loop between a few of them. */
  train(steps: number, options?: { signal?: AbortSignal }): Promise<{ samples: number; loss: number }>
  /** A copy of the current weights with the current age. */
  getState(): ModelState
  /** Replace the weights (and age); the optimizer state is kept. */
  setState(state: ModelState): void
  /** Fresh optimizer state (after a rollback: moments of an exploded model would poison the next steps). */
  resetOptimizer?(): void
  /** Accuracy on the fixed evaluation subset. */
  evaluate(): Promise<number>
}

/** The slice of ModelExchange the learner uses. */
export interface ModelPusher {
  push(peerId: string, state: ModelState, options?: { signal?: AbortSignal }): Promise<number>
}

export interface LearnerComponents {
  model: LocalModel
  pusher: ModelPusher
  sampler: PeerSampler
  /** Live peers, as membership sees them now. */
  view: () => PeerEntry[]
  /** A Merger, or a pipeline whose `merge` also says what became of each input (the robust steps clip and reject). */
  merger: Merger | { merge(local: ModelState, received: ModelState[]): MergeResult }
  logger: ComponentLogger
  /** Told when a push to a peer fails, so membership can drop it. */
  onPushFailed?: (peerId: string, err: Error) => void
  /** Told of every clip, down-weighting, rejection and drop of a sender's model (the peer policy). */
  onVerdict?: (peerId: string, report: PolicyReport) => void
  /**
   * Peers we push nothing while others are on offer (the peer policy's suspects, with defences
   * on): a push to a peer whose models we refuse is one an honest peer does not get.
   */
  isSuspect?: (peerId: string) => boolean
  /** Clock in ms (default Date.now); tests pass a fake one. */
  now?: () => number
}

export interface LearnerInit {
  /** Local steps between two pushes. */
  stepsPerRound?: number
  /**
   * Least time in ms from one round's end to the next (`--round-ms`; 0: a round is its
   * `stepsPerRound` steps alone). A device that trains `stepsPerRound` steps faster than this
   * trains more, `stepsPerRound` at a time, before it merges and pushes: pushes, merges and their
   * CPU are then bounded by time rather than by how fast the device trains.
   */
  minRoundMs?: number
  /** Peers pushed to after each round. */
  fanout?: number
  /** Evaluate at most this often (ms). */
  evalIntervalMs?: number
  /**
   * Evaluate only while evaluating has taken at most this share of the time spent training
   * (default 0.25). Under a train-rate cap a round is short and rounds are seconds apart, so the
   * interval alone evaluated after every round: 2000 samples forward, as much work as the round's
   * training (20 steps of 32, forward and backward).
   */
  evalShare?: number
  /** false: local training only (the --no-gossip baseline): no pushes, received models ignored. */
  gossip?: boolean
  /** Pushes in flight at once; a round finding them all busy skips its push rather than queueing. */
  maxInflightPushes?: number
  /** Received models kept for the next merge (the newest per sender). */
  maxPending?: number
  /** Per-push deadline. */
  pushTimeoutMs?: number
  /** The defences' knobs (defaults in ./defences/constants.ts), or false: none (the `--defences off` baseline). */
  defences?: DefenceOptions | false
  /**
   * Upload budget in bytes/s (`--max-upload`; default none). With one, a round pushes to as many
   * sampled peers as the budget pays for (estimated by the last push's size), up to
   * `maxPushesPerRound`, and none while it is in debt: `fanout` no longer applies.
   */
  maxUploadBytesPerS?: number
  /** With an upload budget: most pushes one round may start (and have in flight). */
  maxPushesPerRound?: number
  /**
   * Cap on training steps per second (`--train-rate`, a slow device; default none): the loop
   * sleeps after a round until its steps since start fit the cap.
   */
  trainRate?: number
  /** Holding pushes after start while behind the network (defaults in ./catch-up.ts), or false: never. */
  catchUp?: CatchUpInit | false
  /**
   * Rounds without a merged model after which our pushes ask their receivers for a model back
   * (`wantsModels()`; default 4). A node that has merged no model since it started asks from its
   * first round on. 0 turns asking off.
   */
  starveRounds?: number
  /** Least time in ms between two replies to one peer that asked for a model (default 30 000). */
  replyEveryMs?: number
}

export interface LearnerStats {
  steps: number
  rounds: number
  merges: number
  modelsMerged: number
  pushesStarted: number
  pushesFailed: number
  /** Pushes to peers whose announcement said they were hungry (sampling/hungry.ts). */
  pushesToHungry: number
  lastAccuracy?: number
  lastLoss?: number
  lastEvalAt?: number
  age: number
  /** Rounds whose push the upload budget deferred (0 without a budget). */
  pushesDeferred: number
  /**
   * Rounds that pushed nothing because every push slot held a push still in flight: links too
   * slow for the round rate (a uniform peer's pushes across regions, bench:topology).
   */
  pushesBusy: number
  /** Rounds that did not push because the node was catching up after start (./catch-up.ts). */
  pushesHeld: number
  /** Pushes not made because the peer was reachable only through a relay (RelayedOnlyError): not failures. */
  pushesRelayedOnly: number
  /** What the defences did (counted whether or not they are on: the merge pipeline's verdicts too). */
  defences: DefenceCounters
  /** Rounds in a row that merged no received model (reset by a merge). */
  roundsWithoutModel: number
  /** Received models whose sender asked for one back (`wantsModel` in its header). */
  modelsWanted: number
  /** Pushes made in reply to such a request. */
  replies: number
}

export const LEARNER_DEFAULTS = {
  stepsPerRound: 20,
  /**
   * Uncapped on a 2-core machine a peer trained 20 steps in 0.2 s and pushed 5 models a second
   * (16 Mbit/s at fanout 1), and half its CPU went to exchanging and merging them (docs/BENCHMARKS.md,
   * CPU overhead). An edge device at 2-10 steps/s takes 2-10 s per 20 steps: this never binds there.
   */
  minRoundMs: 1000,
  fanout: 1,
  evalIntervalMs: 2000,
  evalShare: 0.25,
  maxInflightPushes: 2,
  maxPending: 8,
  pushTimeoutMs: 20_000,
  /**
   * With an upload budget, a round pushes to at most this many peers: beyond that, one round's
   * model is already spread wide, and budget left over carries into the next round (up to the burst).
   */
  maxPushesPerRound: 8,
  /**
   * With fanout f a peer is pushed to about f times a round on average, so 4 rounds without one
   * happen to e^-4 (2 %) of rounds by chance: more means nobody samples it (a late joiner not yet
   * in views; 1 of 128 peers received nothing in 300 s at 128 peers, docs/BENCHMARKS.md Scale).
   */
  starveRounds: 4,
  /** One reply per asking peer per 30 s: a peer cannot turn its pushes into a stream of ours. */
  replyEveryMs: 30_000,
} as const

/**
 * A macrotask turn. A short round can run entirely in microtasks (tfjs kernels are synchronous):
 * without one between rounds, sockets, timers and pings would starve while the node trains.
 */
const yieldToSockets = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Merge rejections an honest peer earns too (just beyond the distance radius as the network converges): soft to the policy. */
const SOFT_REJECTIONS: ReadonlySet<string> = new Set([MERGE_REASONS.distanceOutlier])

/** One peer's learning process. start() returns at once; stop() waits for the loop to end. */
export class Learner {
  private readonly c: LearnerComponents
  private readonly log: Logger
  private readonly stepsPerRound: number
  private readonly minRoundMs: number
  private readonly fanout: number
  private readonly evalIntervalMs: number
  private readonly evalShare: number
  private readonly gossip: boolean
  private readonly maxInflight: number
  private readonly maxPending: number
  private readonly pushTimeoutMs: number
  private readonly budget?: UploadBudget
  private readonly maxPushesPerRound: number
  private readonly trainRate?: number
  /** Holds pushes after start while the node is behind its peers; absent when off. */
  private readonly catchUp?: CatchUp
  /** Bytes of the last completed push: what the budget charges the next one up front. */
  private lastPushBytes?: number
  private readonly pending = new Map<string, ModelState>()
  private readonly inflight = new Set<string>()
  private readonly now: () => number
  private readonly defences: DefenceOptions | false
  private readonly fairShare: FairShare
  /** Absent with defences off or `share: false`. */
  private readonly shares?: ShareWeights
  private readonly ages: AgeClaims
  private readonly losses: LossWatch
  /** The state after the last healthy round (finite, loss not exploded): what a rollback restores. */
  private lastGood: ModelState
  /** Senders whose models went into the last merge: refused if the next round explodes. */
  private lastMerged: string[] = []
  private trainedSamples = 0
  private trainingMs = 0
  private evaluatingMs = 0
  private firstRoundAt?: number
  private controller?: AbortController
  private loop?: Promise<void>
  private readonly starveRounds: number
  private readonly replyEveryMs: number
  /** When we last replied to each peer that asked (bounded like the defences' trackers). */
  private readonly repliedAt = new Map<string, number>()
  /** The state the last round ended with (what its push carried): what a reply sends; none before the first round. */
  private roundState?: ModelState
  readonly stats: LearnerStats

  constructor(components: LearnerComponents, init: LearnerInit = {}) {
    this.c = components
    this.log = components.logger.forComponent('gossip-learn:learner')
    this.stepsPerRound = init.stepsPerRound ?? LEARNER_DEFAULTS.stepsPerRound
    this.minRoundMs = init.minRoundMs ?? LEARNER_DEFAULTS.minRoundMs
    if (!(this.minRoundMs >= 0 && Number.isFinite(this.minRoundMs)))
      throw new InvalidArgumentError(`minRoundMs must be finite and not negative, got ${this.minRoundMs}`)
    this.fanout = init.fanout ?? LEARNER_DEFAULTS.fanout
    this.evalIntervalMs = init.evalIntervalMs ?? LEARNER_DEFAULTS.evalIntervalMs
    this.evalShare = init.evalShare ?? LEARNER_DEFAULTS.evalShare
    if (!(this.evalShare > 0))
      throw new InvalidArgumentError(`evalShare must be positive, got ${this.evalShare}`)
    this.gossip = init.gossip ?? true
    this.maxInflight = init.maxInflightPushes ?? LEARNER_DEFAULTS.maxInflightPushes
    this.maxPending = init.maxPending ?? LEARNER_DEFAULTS.maxPending
    this.pushTimeoutMs = init.pushTimeoutMs ?? LEARNER_DEFAULTS.pushTimeoutMs
    this.now = components.now ?? Date.now
    if (init.maxUploadBytesPerS !== undefined) {
      this.budget = new UploadBudget({ bytesPerSecond: init.maxUploadBytesPerS, now: this.now })
    }
    this.maxPushesPerRound = init.maxPushesPerRound ?? LEARNER_DEFAULTS.maxPushesPerRound
    if (init.trainRate !== undefined && !(init.trainRate > 0)) {
      throw new InvalidArgumentError(`trainRate must be positive, got ${init.trainRate}`)
    }
    this.trainRate = init.trainRate
    if (this.gossip && init.catchUp !== false) this.catchUp = new CatchUp(this.now(), init.catchUp)
    this.defences = init.defences === false ? false : (init.defences ?? {})
    const d = this.defences === false ? {} : this.defences
    this.fairShare = new FairShare(d.fairShare)
    if (this.defences !== false && d.share !== false) this.shares = new ShareWeights(d.share)
    this.ages = new AgeClaims(d.age)
    this.losses = new LossWatch(d.rollback)
    this.starveRounds = init.starveRounds ?? LEARNER_DEFAULTS.starveRounds
    if (!(Number.isInteger(this.starveRounds) && this.starveRounds >= 0)) {
      throw new InvalidArgumentError(`starveRounds must be an integer >= 0, got ${this.starveRounds}`)
    }
    this.replyEveryMs = init.replyEveryMs ?? LEARNER_DEFAULTS.replyEveryMs
    if (!(this.replyEveryMs >= 0)) {
      throw new InvalidArgumentError(`replyEveryMs must be >= 0, got ${this.replyEveryMs}`)
    }
    this.lastGood = components.model.getState()
    this.stats = {
      steps: 0,
      rounds: 0,
      merges: 0,
      modelsMerged: 0,
      pushesStarted: 0,
      pushesFailed: 0,
      pushesToHungry: 0,
      pushesDeferred: 0,
      pushesBusy: 0,
      pushesHeld: 0,
      pushesRelayedOnly: 0,
      age: this.lastGood.age,
      defences: emptyDefenceCounters(),
      roundsWithoutModel: 0,
      modelsWanted: 0,
      replies: 0,
    }
  }

  get running(): boolean {
    return this.loop !== undefined
  }

  /**
   * Whether one more model from `from` is within its fair share (defences on; it takes the
   * share's token). False is reported through `onVerdict` as rate-limited. The daemon asks before
   * reading a model off the wire, so a flood costs it no decoding, and then receives with
   * `{ admitted: true }`.
   */
  admit(from: string): boolean {
    if (!this.gossip || this.defences === false) return true
    if (this.fairShare.take(from, this.now(), this.fairShareRate(this.shareOf(true)(from)))) return true
    this.verdict(from, 'ignore', DEFENCE_REASONS.rateLimited)
    return false
  }

  /**
   * Queue a validated model from `from` for the next merge; a newer one from the same sender
   * replaces it. With defences on, a model over its sender's fair share is dropped (unless
   * `admitted` says `admit` already took its share) and one whose claimed age is implausible
   * refused: both reported through `onVerdict`, and false returned.
   */
  receive(state: ModelState, from: string, options: { admitted?: boolean } = {}): boolean {
    if (!this.gossip) return true
    if (this.defences !== false) {
      if (options.admitted !== true && !this.admit(from)) return false
      const now = this.now()
      if (!this.ages.check(from, state.age, now, this.ageRate())) {
        this.verdict(from, 'reject', DEFENCE_REASONS.ageImplausible)
        return false
      }
    }
    this.pending.delete(from)
    this.pending.set(from, state)
    this.shares?.record(from, this.now())
    this.catchUp?.heard(state.age, this.stats.age, this.now())
    while (this.pending.size > this.maxPending) {
      const oldest = this.pending.keys().next().value as string
      this.pending.delete(oldest)
    }
    return true
  }

  start(): void {
    if (this.loop !== undefined) return
    this.controller = new AbortController()
    const signal = this.controller.signal
    this.loop = this.run(signal).catch((err) => {
      if (!signal.aborted) this.log.error('learner loop failed: %s', (err as Error)?.stack ?? err)
    })
  }

  async stop(): Promise<void> {
    if (this.loop === undefined) return
    this.controller?.abort()
    await this.loop
    this.loop = undefined
  }

  /**
   * Whether our pushes should ask their receivers for a model back: we merged no received model
   * for `starveRounds` rounds in a row (nobody samples us, or what arrives is refused), or none at
   * all since start. A node that joined late, or whose host started it last, may train only a few
   * rounds before others' views hold it; asking with its first push gets it the network's model
   * then, not `starveRounds` rounds later (the peers that received nothing in the 128-peer runs
   * trained 3-5 rounds in all; docs/BENCHMARKS.md Scale). The exchange puts it in each push's header.
   */
  wantsModels(): boolean {
    if (!this.gossip || this.starveRounds === 0) return false
    const neverMerged = this.stats.modelsMerged === 0 && this.stats.rounds > 0
    return neverMerged || this.stats.roundsWithoutModel >= this.starveRounds
  }

  /**
   * Whether our announcements should say we are hungry: we gossip and have merged no received
   * model since start. Unlike `wantsModels` it needs no push of ours to reach anyone, so it helps
   * the node whose every push fails (sampling/hungry.ts); and it is not set again by a few quiet
   * rounds, since every node that hears it favours us for a while.
   */
  hungry(): boolean {
    return this.gossip && this.stats.modelsMerged === 0
  }

  /**
   * Hungry, and a push of ours has failed: our pushes should go over connections we already hold
   * (sampling/hungry.ts). Not every hungry node: at a network's start all are hungry, and all of
   * them pushing to their few held connections (the bootstrap first) would herd onto those.
   */
  stranded(): boolean {
    return this.hungry() && this.stats.pushesFailed > 0
  }

  /**
   * A model `from` sent (and we took) asked for one back: push it the model our last round ended
   * with, unless we replied to it within `replyEveryMs`, it is a suspect, a push to it is in
   * flight, our pushes are all busy or the upload budget is spent. Returns whether a push started.
   */
  reply(from: string): boolean {
    this.stats.modelsWanted++
    const signal = this.controller?.signal
    // Before its first round a node has only its initial weights: nothing worth a push.
    const state = this.roundState
    if (!this.gossip || signal === undefined || signal.aborted || state === undefined) return false
    const now = this.now()
    const last = this.repliedAt.get(from)
    if (last !== undefined && now - last < this.replyEveryMs) return false
    if (this.c.isSuspect?.(from) === true || this.inflight.has(from)) return false
    if (this.inflight.size >= this.maxInflight) return false
    if (this.budget !== undefined && !this.budget.canSend()) return false
    this.repliedAt.delete(from)
    this.repliedAt.set(from, now)
    // Oldest first: a flood of identities cannot grow the map past the defences' tracker bound.
    while (this.repliedAt.size > MAX_TRACKED_SENDERS)
      this.repliedAt.delete(this.repliedAt.keys().next().value!)
    this.stats.replies++
    this.startPush(signal, from, state, this.lastPushBytes ?? 0)
    return true
  }

  /**
   * The model to checkpoint: the current one when finite, else the last good one (a non-finite
   * model must never overwrite a good checkpoint).
   */
  checkpointState(): ModelState {
    const state = this.c.model.getState()
    return isFiniteState(state) ? state : this.lastGood
  }

  private async run(signal: AbortSignal): Promise<void> {
    let lastEval = 0
    let roundEndedAt: number | undefined
    while (!signal.aborted) {
      const r = await this.trainRound(signal, roundEndedAt)
      this.stats.rounds++
      this.stats.lastLoss = r.loss
      if (signal.aborted) break
      const trained = this.afterTraining(r.loss)
      // The model's weights now: a copy taken once per round, pushed as it is (nothing mutates a state).
      const merged = this.mergePending(trained)
      const state = merged ?? trained
      this.roundState = state
      this.stats.roundsWithoutModel = merged === undefined ? this.stats.roundsWithoutModel + 1 : 0
      this.stats.age = state.age
      if (
        Date.now() - lastEval >= this.evalIntervalMs &&
        this.evaluatingMs <= this.evalShare * this.trainingMs
      ) {
        const e0 = this.now()
        this.stats.lastAccuracy = await this.c.model.evaluate()
        this.evaluatingMs += this.now() - e0
        lastEval = this.stats.lastEvalAt = Date.now()
      }
      if (this.gossip) {
        if (this.catchUp?.holding(this.now())) this.stats.pushesHeld++
        else this.pushToSample(signal, state)
      }
      roundEndedAt = this.now()
      await yieldToSockets()
      await this.throttle(signal)
    }
  }

  /**
   * Trains `stepsPerRound` steps, and again (after the sockets and the train-rate cap have had
   * their turn) while one more batch brings the time since `since`, the previous round's end,
   * nearer to `minRoundMs` than stopping does: the round lasts the whole number of batches
   * closest to it. Not "until it has passed": a device whose batch takes just under the floor
   * (2 steps at 2 steps/s against 1 s) would then train two batches a round, every other round,
   * and push half as often as its round says. The first round trains once, so a starting node
   * pushes soon. Returns the last batch of steps' result.
   */
  private async trainRound(
    signal: AbortSignal,
    since: number | undefined,
  ): Promise<{ samples: number; loss: number }> {
    let batchFrom = since
    for (;;) {
      const t0 = this.now()
      this.firstRoundAt ??= t0
      const r = await this.c.model.train(this.stepsPerRound, { signal })
      const t1 = this.now()
      this.trainingMs += t1 - t0
      this.trainedSamples += r.samples
      this.stats.steps += this.stepsPerRound
      if (signal.aborted || since === undefined || batchFrom === undefined) return r
      // A batch's period: its training plus what came before it (the cap's wait, a merge).
      const periodMs = t1 - batchFrom
      if (t1 - since + periodMs / 2 >= this.minRoundMs) return r
      batchFrom = t1
      await yieldToSockets()
      await this.throttle(signal)
    }
  }

  /**
   * With a train-rate cap: sleeps until the steps trained since the first round fit the cap
   * (`steps / rate` seconds after it), waking early on abort. Measured from the first round,
   * so a slow round is not made up for by bursting later beyond the long-run rate.
   */
  private async throttle(signal: AbortSignal): Promise<void> {
    if (this.trainRate === undefined || this.firstRoundAt === undefined || signal.aborted) return
    const due = this.firstRoundAt + (this.stats.steps * 1000) / this.trainRate
    const waitMs = due - this.now()
    if (waitMs <= 0) return
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /**
   * Checks the round just trained (defences on): a non-finite model, or a loss above the recent
   * median's bound, rolls back to the last good state, resets the optimizer and refuses the
   * senders of the merge before it. Returns the model's state after the check.
   */
  private afterTraining(loss: number): ModelState {
    const state = this.c.model.getState()
    const finite = isFiniteState(state)
    if (this.defences === false || (finite && !this.losses.exploded(loss))) {
      if (finite) {
        this.losses.record(loss)
        this.lastGood = state
      }
      this.lastMerged = []
      return state
    }
    const reason = finite ? DEFENCE_REASONS.lossExploded : DEFENCE_REASONS.nonFiniteModel
    this.stats.defences.rollbacks++
    this.log(
      'rolling back to the last good model (%s, loss %s); refusing %d inputs',
      reason,
      loss,
      this.lastMerged.length,
    )
    for (const from of this.lastMerged) this.verdict(from, 'reject', reason)
    this.lastMerged = []
    this.c.model.setState(this.lastGood)
    this.c.model.resetOptimizer?.()
    return this.lastGood
  }

  /**
   * Merge every pending model into `local` (default: the model's current state) and set the
   * result; returns it, or undefined when nothing was merged. A merger error, or (defences on)
   * a non-finite result, leaves the local model as it was.
   */
  mergePending(local: ModelState = this.c.model.getState()): ModelState | undefined {
    if (this.pending.size === 0) return undefined
    const senders = [...this.pending.keys()]
    const received = this.weighByShare(senders, [...this.pending.values()])
    this.pending.clear()
    let result: MergeResult
    try {
      result =
        typeof this.c.merger === 'function'
          ? {
              state: this.c.merger(local, received),
              outcomes: received.map((_, index) => ({ index, action: 'merged' })),
            }
          : this.c.merger.merge(local, received)
    } catch (err) {
      this.log.error('merge refused: %s', (err as Error)?.message)
      return undefined
    }
    const merged: string[] = []
    for (const outcome of result.outcomes) {
      const from = senders[outcome.index]!
      this.report(from, outcome)
      if (outcome.action !== 'rejected') merged.push(from)
    }
    if (merged.length === 0) return undefined
    if (this.defences !== false && !isFiniteState(result.state)) {
      this.log('merge produced non-finite values: not applied')
      for (const from of merged) this.verdict(from, 'reject', DEFENCE_REASONS.nonFiniteMerge)
      return undefined
    }
    this.c.model.setState(result.state)
    this.stats.merges++
    this.stats.modelsMerged += merged.length
    this.catchUp?.mergedInputs(merged.length)
    this.lastMerged = merged
    return result.state
  }

  /**
   * The pending models with their senders' share weights (defences on): a sender over the median
   * sender's share of the merge queue weighs median / its count (counted, not told to the policy:
   * an honest burst is not misbehaviour).
   */
  private weighByShare(senders: readonly string[], received: MaskedState[]): MaskedState[] {
    const shares = this.shares
    if (shares === undefined) return received
    const now = this.now()
    const shareOf = this.shareOf()
    return received.map((state, i) => {
      const factor = shares.factor(senders[i]!, now, shareOf)
      if (factor >= 1) return state
      const d = this.stats.defences
      d.downweighted++
      d.byReason[DEFENCE_REASONS.overShare] = (d.byReason[DEFENCE_REASONS.overShare] ?? 0) + 1
      return { ...state, weight: factor }
    })
  }

  /** Reports a merge outcome: clips (an age capped far below its claim is a down-weighting) and rejections. */
  private report(from: string, outcome: InputOutcome): void {
    const reason = outcome.reason ?? outcome.step ?? 'merge'
    // A distance rejection is not proof of misbehaviour: just beyond the radius it is soft ('far'), see the policy's weights.
    if (outcome.action === 'rejected')
      this.verdict(from, SOFT_REJECTIONS.has(reason) ? 'far' : 'outlier', reason)
    else if (outcome.action === 'clipped')
      this.verdict(from, reason === MERGE_REASONS.ageCapped ? 'downweight' : 'clip', reason)
  }

  /** Counts a verdict about a sender's model by reason and tells the peer policy. */
  private verdict(
    from: string,
    verdict: 'clip' | 'downweight' | 'reject' | 'outlier' | 'far' | 'ignore',
    reason: string,
  ): void {
    const d = this.stats.defences
    if (verdict === 'clip') d.clipped++
    else if (verdict === 'downweight') d.downweighted++
    else if (verdict === 'reject' || verdict === 'outlier' || verdict === 'far') d.rejected++
    else d.rateLimited++
    d.byReason[reason] = (d.byReason[reason] ?? 0) + 1
    this.c.onVerdict?.(from, { verdict, reason })
  }

  /**
   * Each peer's expected share of the models sent to us: what our sampler gives it of our picks
   * (a peer running the same sampler picks us about as often: RTTs are symmetric), or 1 / view
   * size, the uniform sampler's share, when the sampler says nothing of it. With `floor`, at
   * least that uniform share: a sender's fair share is never smaller than a uniform network's.
   */
  private shareOf(floor = false): (peerId: string) => number {
    const view = this.c.view()
    const uniform = 1 / Math.max(1, view.length)
    const shares = this.c.sampler.shares?.(view)
    return (peerId) => {
      const share = shares?.get(peerId) ?? uniform
      // A peer our sampler all but never picks still counts as sending a little (counts are divided by it).
      return Math.max(floor ? uniform : uniform / 100, share)
    }
  }

  /**
   * Fair share of a sender whose expected share of our models is `share` (models/s): `slack`
   * times what an honest peer of our speed sends us, `fanout` pushes per round of which `share`
   * land on us.
   */
  private fairShareRate(share: number): number {
    const o = this.defences === false ? {} : (this.defences.fairShare ?? {})
    if (o.ratePerS !== undefined) return o.ratePerS
    const slack = o.slack ?? DEFAULT_FAIR_SHARE_SLACK
    const min = o.minRatePerS ?? DEFAULT_FAIR_SHARE_MIN_RATE
    if (this.firstRoundAt === undefined || this.stats.rounds === 0) return min
    const elapsedS = (this.now() - this.firstRoundAt) / 1000
    if (!(elapsedS > 0)) return min
    const roundsPerS = this.stats.rounds / elapsedS
    return Math.max(min, slack * this.pushesPerRound() * roundsPerS * share)
  }

  /** Plausible growth of a sender's age (samples/s): `rateFactor` times our own training speed, at least `minRatePerS`. */
  private ageRate(): number {
    const o = this.defences === false ? {} : (this.defences.age ?? {})
    const factor = o.rateFactor ?? DEFAULT_AGE_RATE_FACTOR
    const min = o.minRatePerS ?? DEFAULT_AGE_MIN_RATE
    const own = this.trainingMs > 0 ? (this.trainedSamples * 1000) / this.trainingMs : 0
    return Math.max(min, factor * own)
  }

  /** Most pushes a round starts: the fanout, or with an upload budget its cap (peers like us send as many). */
  private pushesPerRound(): number {
    return this.budget === undefined ? this.fanout : this.maxPushesPerRound
  }

  /**
   * Peers a round may push to: the view less pushes in flight, less suspects unless only suspects
   * are left (a node whose every peer looks bad keeps gossiping rather than go silent).
   */
  private pushCandidates(): PeerEntry[] {
    const free = this.c.view().filter((p) => !this.inflight.has(p.peerId))
    const isSuspect = this.c.isSuspect
    if (isSuspect === undefined) return free
    const trusted = free.filter((p) => !isSuspect(p.peerId))
    if (trusted.length === 0) return free
    this.stats.defences.suspectsSkipped += free.length - trusted.length
    return trusted
  }

  /** Pushes `state` (the model as the round left it) to sampled peers. */
  private pushToSample(signal: AbortSignal, state: ModelState): void {
    const budget = this.budget
    const cap = this.pushesPerRound()
    const free =
      (budget === undefined ? this.maxInflight : Math.max(this.maxInflight, cap)) - this.inflight.size
    if (free <= 0) {
      this.stats.pushesBusy++
      return
    }
    if (budget !== undefined && !budget.canSend()) {
      this.stats.pushesDeferred++
      return
    }
    const candidates = this.pushCandidates()
    const targets = this.c.sampler.sample(candidates, Math.min(cap, free))
    if (targets.length === 0) return
    for (const [i, t] of targets.entries()) {
      // Charged up front at the last push's size, corrected once the real count is known; until a
      // push has completed the size is unknown, so the first round pushes once.
      const estimate = this.lastPushBytes ?? 0
      if (budget !== undefined && i > 0 && (this.lastPushBytes === undefined || !budget.canSend())) break
      if (t.hungry === true) this.stats.pushesToHungry++
      this.startPush(signal, t.peerId, state, estimate)
    }
  }

  /** Pushes `state` to one peer in the background, charging the budget `estimate` up front. */
  private startPush(signal: AbortSignal, peerId: string, state: ModelState, estimate: number): void {
    const budget = this.budget
    budget?.charge(estimate)
    this.inflight.add(peerId)
    this.stats.pushesStarted++
    const pushSignal = anyWithTimeout([signal], this.pushTimeoutMs)
    this.c.pusher
      .push(peerId, state, { signal: pushSignal })
      .then((bytes) => {
        budget?.charge(bytes - estimate)
        this.lastPushBytes = bytes
      })
      .catch((err: Error) => {
        if (signal.aborted) return
        if (err?.name === RelayedOnlyError.name) {
          // Nothing went on the wire (the exchange refuses before dialling): not a failure, no bytes.
          this.stats.pushesRelayedOnly++
          budget?.charge(-estimate)
          return
        }
        this.stats.pushesFailed++
        this.log('push to %s failed: %s', peerId, err?.message)
        this.c.onPushFailed?.(peerId, err)
      })
      .finally(() => {
        release(pushSignal)
        this.inflight.delete(peerId)
      })
  }
}
