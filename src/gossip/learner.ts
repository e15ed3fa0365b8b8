/**
 * The learner loop: train K local steps, merge whatever models arrived
 * meanwhile, push the model to f sampled peers, repeat. Asynchronous: no
 * rounds, nobody waits for anybody; pushes run in the background while the
 * next steps train.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Merger } from '../merge/pipeline.ts'
import type { ModelState } from '../model/types.ts'
import type { PeerEntry, PeerSampler } from './sampling/sampler.ts'

/** What the learner needs from the local model (implemented over tfjs in src/model/local-model.ts). */
export interface LocalModel {
  /** Train `steps` minibatches, yielding to the event loop between a few of them. */
  train(steps: number, options?: { signal?: AbortSignal }): Promise<{ samples: number; loss: number }>
  /** A copy of the current weights with the current age. */
  getState(): ModelState
  /** Replace the weights (and age); the optimizer state is kept. */
  setState(state: ModelState): void
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
  merger: Merger
  logger: ComponentLogger
  /** Told when a push to a peer fails, so membership can drop it. */
  onPushFailed?: (peerId: string, err: Error) => void
}

export interface LearnerInit {
  /** Local steps between two pushes. */
  stepsPerRound?: number
  /** Peers pushed to after each round. */
  fanout?: number
  /** Evaluate at most this often (ms). */
  evalIntervalMs?: number
  /** false: local training only (the --no-gossip baseline): no pushes, received models ignored. */
  gossip?: boolean
  /** Pushes in flight at once; a round finding them all busy skips its push rather than queueing. */
  maxInflightPushes?: number
  /** Received models kept for the next merge (the newest per sender). */
  maxPending?: number
  /** Per-push deadline. */
  pushTimeoutMs?: number
}

export interface LearnerStats {
  steps: number
  rounds: number
  merges: number
  modelsMerged: number
  pushesStarted: number
  pushesFailed: number
  lastAccuracy?: number
  lastLoss?: number
  lastEvalAt?: number
  age: number
}

export const LEARNER_DEFAULTS = {
  stepsPerRound: 20,
  fanout: 1,
  evalIntervalMs: 2000,
  maxInflightPushes: 2,
  maxPending: 8,
  pushTimeoutMs: 20_000,
} as const

/** One peer's learning process. start() returns at once; stop() waits for the loop to end. */
export class Learner {
  private readonly c: LearnerComponents
  private readonly log: Logger
  private readonly stepsPerRound: number
  private readonly fanout: number
  private readonly evalIntervalMs: number
  private readonly gossip: boolean
  private readonly maxInflight: number
  private readonly maxPending: number
  private readonly pushTimeoutMs: number
  private readonly pending = new Map<string, ModelState>()
  private readonly inflight = new Set<string>()
  private controller?: AbortController
  private loop?: Promise<void>
  readonly stats: LearnerStats

  constructor(components: LearnerComponents, init: LearnerInit = {}) {
    this.c = components
    this.log = components.logger.forComponent('gossip-learn:learner')
    this.stepsPerRound = init.stepsPerRound ?? LEARNER_DEFAULTS.stepsPerRound
    this.fanout = init.fanout ?? LEARNER_DEFAULTS.fanout
    this.evalIntervalMs = init.evalIntervalMs ?? LEARNER_DEFAULTS.evalIntervalMs
    this.gossip = init.gossip ?? true
    this.maxInflight = init.maxInflightPushes ?? LEARNER_DEFAULTS.maxInflightPushes
    this.maxPending = init.maxPending ?? LEARNER_DEFAULTS.maxPending
    this.pushTimeoutMs = init.pushTimeoutMs ?? LEARNER_DEFAULTS.pushTimeoutMs
    this.stats = {
      steps: 0,
      rounds: 0,
      merges: 0,
      modelsMerged: 0,
      pushesStarted: 0,
      pushesFailed: 0,
      age: components.model.getState().age,
    }
  }

  get running(): boolean {
    return this.loop !== undefined
  }

  /** Queue a validated model from `from` for the next merge; a newer one from the same sender replaces it. */
  receive(state: ModelState, from: string): void {
    if (!this.gossip) return
    this.pending.delete(from)
    this.pending.set(from, state)
    while (this.pending.size > this.maxPending) {
      const oldest = this.pending.keys().next().value as string
      this.pending.delete(oldest)
    }
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

  private async run(signal: AbortSignal): Promise<void> {
    let lastEval = 0
    while (!signal.aborted) {
      const r = await this.c.model.train(this.stepsPerRound, { signal })
      this.stats.steps += this.stepsPerRound
      this.stats.rounds++
      this.stats.lastLoss = r.loss
      if (signal.aborted) break
      this.mergePending()
      this.stats.age = this.c.model.getState().age
      if (Date.now() - lastEval >= this.evalIntervalMs) {
        this.stats.lastAccuracy = await this.c.model.evaluate()
        lastEval = this.stats.lastEvalAt = Date.now()
      }
      if (this.gossip) this.pushToSample(signal)
      // A short round can run entirely in microtasks (tfjs kernels are synchronous): without a
      // macrotask turn here, sockets, timers and pings would starve while the node trains.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /** Merge every pending model into the local one (a failure leaves the local model as it was). */
  mergePending(): void {
    if (this.pending.size === 0) return
    const received = [...this.pending.values()]
    this.pending.clear()
    try {
      const merged = this.c.merger(this.c.model.getState(), received)
      this.c.model.setState(merged)
      this.stats.merges++
      this.stats.modelsMerged += received.length
    } catch (err) {
      this.log.error('merge refused: %s', (err as Error)?.message)
    }
  }

  private pushToSample(signal: AbortSignal): void {
    const free = this.maxInflight - this.inflight.size
    if (free <= 0) return
    const candidates = this.c.view().filter((p) => !this.inflight.has(p.peerId))
    const targets = this.c.sampler.sample(candidates, Math.min(this.fanout, free))
    if (targets.length === 0) return
    const state = this.c.model.getState()
    for (const t of targets) {
      this.inflight.add(t.peerId)
      this.stats.pushesStarted++
      const pushSignal = AbortSignal.any([signal, AbortSignal.timeout(this.pushTimeoutMs)])
      this.c.pusher
        .push(t.peerId, state, { signal: pushSignal })
        .catch((err: Error) => {
          if (signal.aborted) return
          this.stats.pushesFailed++
          this.log('push to %s failed: %s', t.peerId, err?.message)
          this.c.onPushFailed?.(t.peerId, err)
        })
        .finally(() => this.inflight.delete(t.peerId))
    }
  }
}
