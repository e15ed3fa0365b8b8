/**
 * Gossip learning simulated in one process: the same zoo models, trainer,
 * evaluation and Merger as the daemon, with the network replaced by arrays.
 * Every run is a pure function of its config (seeded init, partition, batch
 * order, peer sampling and alignment).
 */
import type { Samples } from '../../../src/data/types.ts'
import { weightedAverage } from '../../../src/merge/average.ts'
import { createMergePipeline } from '../../../src/merge/merger.ts'
import type { MergeMode } from '../../../src/merge/registry.ts'
import type { VarianceCorrectionOptions } from '../../../src/merge/varcorr.ts'
import { evaluate } from '../../../src/model/evaluate.ts'
import { getState, setState } from '../../../src/model/state.ts'
import * as tf from '../../../src/model/tf.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import { archFingerprint, buildModel } from '../../../src/model/zoo.ts'
import { createRng, hashSeed } from '../../../src/util/rng.ts'

export type RowMode = MergeMode | 'local-only' | 'fedavg' | 'centralized-same-time' | 'centralized-same-total'
export type InitKind = 'independent' | 'shared' | 'n/a'
export type OptimizerChoice = 'adam' | 'sgd' | 'momentum'
/** How a peer combines several models received in one cycle. */
export type Combine = 'joint' | 'sequential'

export interface CurvePoint {
  /** Local steps per peer so far (centralized-same-total: its steps / peers, i.e. equal total compute). */
  step: number
  /** Mean accuracy over peers on the eval subset. */
  accuracy: number
  min: number
  max: number
}

/** One row of the result file (issue 3's format, plus bookkeeping fields). */
export interface Row {
  mode: RowMode
  init: InitKind
  finalAccuracy: number
  /** Mean accuracy over the last 5 eval points: less noisy than the final one for comparing rows. */
  tailAccuracy: number
  minAccuracy: number
  maxAccuracy: number
  curve: CurvePoint[]
  /** Label of the knob setting the row ran with (empty for the defaults). */
  variant: string
  /** Local steps per peer in the whole run. */
  stepsPerPeer: number
  /** Models sent per peer in the whole run. */
  modelsSentPerPeer: number
  /** Mean wall time of one merge call (ms; 0 when none). */
  mergeMs: number
  /** What the merges did with the received models (gossip rows; robust pipelines clip or reject some). */
  inputs?: { merged: number; clipped: number; rejected: number }
  wallSeconds: number
}

export interface SimConfig {
  arch: ArchSpec
  peers: number
  cycles: number
  /** Local steps between pushes (K). */
  steps: number
  fanout: number
  batchSize: number
  learningRate: number
  optimizer: OptimizerChoice
  /** Per cycle, lr *= decay (1 = constant). */
  lrDecay: number
  /** Fresh optimizer state after every merge (Adam moments belong to the pre-merge weights). */
  resetOptimizer: boolean
  combine: Combine
  varcorr: VarianceCorrectionOptions
  /** Evaluate every this many cycles (and after the last). */
  evalEvery: number
  seed: number
  variant: string
}

export interface SimData {
  /** One dataset per peer (disjoint shares of the training set). */
  shares: Samples[]
  /** The union of the shares, for centralized training. */
  union: Samples
  evalSet: Samples
}

export type SimLogger = (msg: string) => void

/** Eval points averaged into Row.tailAccuracy. */
export const TAIL_POINTS = 5

/** A zoo model plus the optimizer it trains with (owned here, so it can be swapped and disposed). */
export class Peer {
  readonly model: tf.LayersModel
  readonly trainer: LocalTrainer
  age = 0
  private optimizer: tf.Optimizer
  private lr: number

  constructor(
    private readonly cfg: SimConfig,
    data: Samples,
    initSeed: number,
    trainSeed: number,
  ) {
    this.model = buildModel(cfg.arch, { seed: initSeed, learningRate: cfg.learningRate })
    this.trainer = new LocalTrainer({ data, seed: trainSeed })
    this.lr = cfg.learningRate
    // buildModel's compiled Adam never trained: replace it with ours so every row uses the same code.
    const owned = this.model.optimizer
    this.optimizer = this.newOptimizer()
    this.model.optimizer = this.optimizer
    owned.dispose()
  }

  private newOptimizer(): tf.Optimizer {
    switch (this.cfg.optimizer) {
      case 'adam':
        return tf.train.adam(this.lr)
      case 'sgd':
        return tf.train.sgd(this.lr)
      case 'momentum':
        return tf.train.momentum(this.lr, 0.9)
    }
  }

  resetOptimizer(): void {
    const old = this.optimizer
    this.optimizer = this.newOptimizer()
    this.model.optimizer = this.optimizer
    old.dispose()
  }

  /** Multiplies the learning rate (tfjs optimizers keep it in a plain field). */
  decay(factor: number): void {
    if (factor === 1) return
    this.lr *= factor
    ;(this.optimizer as unknown as { learningRate: number }).learningRate = this.lr
  }

  async train(steps: number): Promise<void> {
    const r = await this.trainer.trainSteps(this.model, { steps, batchSize: this.cfg.batchSize })
    this.age += r.samples
  }

  state(): ModelState {
    return getState(this.model, { arch: archFingerprint(this.cfg.arch), age: this.age })
  }

  load(state: ModelState): void {
    setState(this.model, state)
    this.age = state.age
  }

  dispose(): void {
    this.model.dispose()
    this.optimizer.dispose()
  }
}

export async function evalPeers(
  models: tf.LayersModel[],
  evalSet: Samples,
): Promise<{ mean: number; min: number; max: number }> {
  let sum = 0
  let min = 1
  let max = 0
  for (const m of models) {
    const { accuracy } = await evaluate(m, evalSet)
    sum += accuracy
    min = Math.min(min, accuracy)
    max = Math.max(max, accuracy)
  }
  return { mean: sum / models.length, min, max }
}

function finish(
  cfg: SimConfig,
  mode: RowMode,
  init: InitKind,
  curve: CurvePoint[],
  extra: { modelsSent: number; mergeMs: number; t0: number; inputs?: Row['inputs'] },
): Row {
  const last = curve[curve.length - 1]!
  const tail = curve.slice(-TAIL_POINTS)
  return {
    mode,
    init,
    finalAccuracy: last.accuracy,
    tailAccuracy: tail.reduce((s, p) => s + p.accuracy, 0) / tail.length,
    minAccuracy: last.min,
    maxAccuracy: last.max,
    curve,
    variant: cfg.variant,
    stepsPerPeer: cfg.cycles * cfg.steps,
    modelsSentPerPeer: extra.modelsSent,
    mergeMs: extra.mergeMs,
    ...(extra.inputs !== undefined ? { inputs: extra.inputs } : {}),
    wallSeconds: (performance.now() - extra.t0) / 1000,
  }
}

/** Picks `f` distinct peers other than `self`, uniformly. */
export function samplePeers(
  rng: ReturnType<typeof createRng>,
  peers: number,
  self: number,
  f: number,
): number[] {
  const others: number[] = []
  for (let p = 0; p < peers; p++) if (p !== self) others.push(p)
  rng.shuffle(others)
  return others.slice(0, Math.min(f, others.length))
}

/**
 * Decentralized rows (a merge mode, or local-only): each cycle every peer trains K
 * steps, pushes its model to `fanout` sampled peers, and every peer merges what it
 * received before the next cycle.
 */
export async function runGossip(
  cfg: SimConfig,
  data: SimData,
  mode: MergeMode | 'local-only',
  init: 'independent' | 'shared',
  log: SimLogger,
): Promise<Row> {
  const t0 = performance.now()
  const peers = data.shares.map(
    (share, p) =>
      new Peer(
        cfg,
        share,
        init === 'shared' ? hashSeed(cfg.seed, 'init') : hashSeed(cfg.seed, 'init', p),
        hashSeed(cfg.seed, 'train', p),
      ),
  )
  const mergers =
    mode === 'local-only'
      ? []
      : peers.map((_, p) =>
          createMergePipeline({ mode, seed: hashSeed(cfg.seed, 'merge', p), varcorr: cfg.varcorr }),
        )
  const inputs = { merged: 0, clipped: 0, rejected: 0 }
  const merge = (p: number, local: ModelState, received: ModelState[]): ModelState => {
    const r = mergers[p]!.merge(local, received)
    for (const o of r.outcomes) inputs[o.action]++
    return r.state
  }
  const rng = createRng(hashSeed(cfg.seed, 'sample'))
  const curve: CurvePoint[] = []
  let mergeMs = 0
  let merges = 0
  let sent = 0
  try {
    for (let c = 1; c <= cfg.cycles; c++) {
      for (const peer of peers) await peer.train(cfg.steps)
      if (mode !== 'local-only') {
        const snapshots = peers.map((peer) => peer.state())
        const inbox: ModelState[][] = peers.map(() => [])
        peers.forEach((_, p) => {
          for (const q of samplePeers(rng, peers.length, p, cfg.fanout)) inbox[q]!.push(snapshots[p]!)
          sent += Math.min(cfg.fanout, peers.length - 1)
        })
        peers.forEach((peer, p) => {
          const received = inbox[p]!
          if (received.length === 0) return
          const t1 = performance.now()
          let merged = snapshots[p]!
          if (cfg.combine === 'joint') merged = merge(p, merged, received)
          else for (const r of received) merged = merge(p, merged, [r])
          mergeMs += performance.now() - t1
          merges++
          peer.load(merged)
          if (cfg.resetOptimizer) peer.resetOptimizer()
        })
      }
      for (const peer of peers) peer.decay(cfg.lrDecay)
      if (c % cfg.evalEvery === 0 || c === cfg.cycles) {
        const acc = await evalPeers(
          peers.map((p) => p.model),
          data.evalSet,
        )
        curve.push({ step: c * cfg.steps, accuracy: acc.mean, min: acc.min, max: acc.max })
        log(
          `  ${mode}/${init} step ${c * cfg.steps}: mean ${acc.mean.toFixed(4)} [${acc.min.toFixed(3)}, ${acc.max.toFixed(3)}]`,
        )
      }
    }
  } finally {
    for (const peer of peers) peer.dispose()
  }
  return finish(cfg, mode, init, curve, {
    modelsSent: sent / peers.length,
    mergeMs: merges ? mergeMs / merges : 0,
    t0,
    inputs: mode === 'local-only' ? undefined : inputs,
  })
}

/**
 * FedAvg (McMahan et al. 2017): every cycle each peer trains K steps from the global
 * model and sends it to a server (one model per peer per cycle, like gossip with
 * fanout 1), which averages them weighted by local data size and sends the result back.
 */
export async function runFedAvg(cfg: SimConfig, data: SimData, log: SimLogger): Promise<Row> {
  const t0 = performance.now()
  const peers = data.shares.map(
    (share, p) => new Peer(cfg, share, hashSeed(cfg.seed, 'init'), hashSeed(cfg.seed, 'train', p)),
  )
  const total = data.shares.reduce((n, s) => n + s.count, 0)
  const weights = data.shares.map((s) => s.count / total)
  const curve: CurvePoint[] = []
  let mergeMs = 0
  try {
    for (let c = 1; c <= cfg.cycles; c++) {
      for (const peer of peers) await peer.train(cfg.steps)
      const t1 = performance.now()
      const states = peers.map((peer) => peer.state())
      const global = weightedAverage(states, weights, Math.max(...states.map((s) => s.age)))
      for (const peer of peers) {
        peer.load(global)
        if (cfg.resetOptimizer) peer.resetOptimizer()
        peer.decay(cfg.lrDecay)
      }
      mergeMs += performance.now() - t1
      if (c % cfg.evalEvery === 0 || c === cfg.cycles) {
        // Every peer holds the global model: one evaluation is all of them.
        const { accuracy } = await evaluate(peers[0]!.model, data.evalSet)
        curve.push({ step: c * cfg.steps, accuracy, min: accuracy, max: accuracy })
        log(`  fedavg step ${c * cfg.steps}: ${accuracy.toFixed(4)}`)
      }
    }
  } finally {
    for (const peer of peers) peer.dispose()
  }
  return finish(cfg, 'fedavg', 'shared', curve, { modelsSent: cfg.cycles, mergeMs: mergeMs / cfg.cycles, t0 })
}

/**
 * One model on the union of every peer's data: 'same-time' trains as many steps as one
 * peer does; 'same-total' as many as all peers together (its curve's step is steps / peers).
 */
export async function runCentralized(
  cfg: SimConfig,
  data: SimData,
  which: 'same-time' | 'same-total',
  log: SimLogger,
): Promise<Row> {
  const t0 = performance.now()
  const scale = which === 'same-time' ? 1 : data.shares.length
  const peer = new Peer(cfg, data.union, hashSeed(cfg.seed, 'init'), hashSeed(cfg.seed, 'train', 'central'))
  const mode: RowMode = which === 'same-time' ? 'centralized-same-time' : 'centralized-same-total'
  const curve: CurvePoint[] = []
  try {
    for (let c = 1; c <= cfg.cycles; c++) {
      await peer.train(cfg.steps * scale)
      // Same lr schedule per unit of the x axis as the gossip rows.
      peer.decay(cfg.lrDecay)
      if (c % cfg.evalEvery === 0 || c === cfg.cycles) {
        const { accuracy } = await evaluate(peer.model, data.evalSet)
        curve.push({ step: c * cfg.steps, accuracy, min: accuracy, max: accuracy })
        log(`  ${mode} step ${c * cfg.steps * scale}: ${accuracy.toFixed(4)}`)
      }
    }
  } finally {
    peer.dispose()
  }
  return finish(cfg, mode, 'n/a', curve, { modelsSent: 0, mergeMs: 0, t0 })
}
