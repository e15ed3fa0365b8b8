/**
 * bench:merge's simulation (16 peers in one process, the daemon's training and merge code) with
 * the wire in the loop: every push is encoded by the daemon's codec (one encoder per peer, so
 * top-k and partial keep their reference and error feedback as in the exchange), decoded as a
 * receiver does (masks included) and merged by the daemon's pipeline. Bytes are the frames'
 * real sizes. With a budget, each peer has an UploadBudget on a clock where one local step is
 * one second: a cycle pushes while the budget is not in debt, up to the learner's per-round cap.
 */
import { quietFeatures } from '../../../src/data/quiet.ts'
import { samplesStore } from '../../../src/data/samples.ts'
import { LEARNER_DEFAULTS } from '../../../src/gossip/learner.ts'
import { UploadBudget } from '../../../src/gossip/upload-budget.ts'
import { decodeFrame, encodeFrame, joinFrame, layoutOf } from '../../../src/gossip/wire/codec.ts'
import { parseCodecSpec } from '../../../src/gossip/wire/codecs/index.ts'
import { DeltaReceiver, DeltaSender, splitDeltaSpec } from '../../../src/gossip/wire/delta.ts'
import type { MaskedState } from '../../../src/merge/masks.ts'
import { createMergePipeline } from '../../../src/merge/merger.ts'
import type { MergeMode } from '../../../src/merge/registry.ts'
import { pushCodecOptions } from '../../../src/node/config.ts'
import { createRng, hashSeed } from '../../../src/util/rng.ts'
import {
  evalPeers,
  Peer,
  type SimConfig,
  type SimData,
  type SimLogger,
  samplePeers,
  TAIL_POINTS,
} from '../merge/sim.ts'

/** One evaluation of all peers. */
export interface BytesPoint {
  step: number
  /** Mean over peers of the bytes each sent so far. */
  bytes: number
  accuracy: number
  min: number
  max: number
}

/** What one run is. */
export interface CodecRun {
  /** Codec spec (`raw-f32`, `partial:0.1+int8`, ...). */
  codec: string
  mode: MergeMode
  init: 'independent' | 'shared'
  /** Upload budget in bytes per local step and peer; undefined: fanout pushes per cycle. */
  budgetPerStep?: number
  /** Free-form tag for the tables (the question the run answers). */
  group: string
  /** Each peer pushes only to this many fixed partners (a random regular graph); undefined: anyone. */
  partners?: number
  /** Partial codecs: the quiet-input share (data/quiet.ts), false for none; undefined: the daemon's default. */
  quiet?: number | false
}

export interface CodecRow extends CodecRun {
  curve: BytesPoint[]
  finalAccuracy: number
  tailAccuracy: number
  minAccuracy: number
  /** Mean bytes per peer over the run. */
  bytesPerPeer: number
  pushesPerPeer: number
  /** Mean frame size. */
  frameBytes: number
  /** Share of the model's coordinates a frame carries (1 for dense codecs). */
  carried: number
  wallSeconds: number
}

const TASK = 'bench'

/** Runs one codec row; see the module comment. */
export async function runCodec(
  cfg: SimConfig,
  data: SimData,
  run: CodecRun,
  log: SimLogger,
): Promise<CodecRow> {
  const t0 = performance.now()
  const peers = data.shares.map(
    (share, p) =>
      new Peer(
        cfg,
        share,
        run.init === 'shared' ? hashSeed(cfg.seed, 'init') : hashSeed(cfg.seed, 'init', p),
        hashSeed(cfg.seed, 'train', p),
      ),
  )
  const spec = codecSpecOf(run.codec)
  // As the daemon does (node/config.ts pushCodecOptions): each peer's quiet inputs from its share.
  const quiet = data.shares.map(
    (share) =>
      pushCodecOptions(
        { codec: spec, quietInputs: run.quiet },
        { quietInputs: (q) => quietFeatures(samplesStore(share), q) },
      )?.quietInputs,
  )
  const encoders = peers.map((_, p) =>
    parseCodecSpec(splitDeltaSpec(spec).inner, {
      seed: hashSeed(cfg.seed, 'codec', p),
      quietInputs: quiet[p],
    }),
  )
  const mergers = peers.map((_, p) =>
    createMergePipeline({ mode: run.mode, seed: hashSeed(cfg.seed, 'merge', p), varcorr: cfg.varcorr }),
  )
  let step = 0
  const budgets =
    run.budgetPerStep === undefined
      ? undefined
      : peers.map(
          () =>
            new UploadBudget({
              bytesPerSecond: run.budgetPerStep!,
              // A cycle's worth, as the daemon's second's worth covers a round or more.
              burstBytes: run.budgetPerStep! * cfg.steps,
              now: () => step * 1000,
            }),
        )
  const rng = createRng(hashSeed(cfg.seed, 'sample'))
  const graph = run.partners === undefined ? undefined : partnerGraph(peers.length, run.partners, rng)
  const { delta, inner } = splitDeltaSpec(spec)
  const deltaSenders = delta
    ? peers.map((_, p) => new DeltaSender(inner, { codec: { quietInputs: quiet[p] } }))
    : undefined
  const deltaReceivers = delta ? peers.map(() => new DeltaReceiver()) : undefined
  const sent = new Float64Array(peers.length)
  let pushes = 0
  let carriedSum = 0
  const curve: BytesPoint[] = []
  try {
    const layout = layoutOf(peers[0]!.state())
    const expect = { task: TASK, layout }
    for (let c = 1; c <= cfg.cycles; c++) {
      for (const peer of peers) await peer.train(cfg.steps)
      step = c * cfg.steps
      const snapshots = peers.map((peer) => peer.state())
      const inbox: MaskedState[][] = peers.map(() => [])
      peers.forEach((_, p) => {
        const budget = budgets?.[p]
        const cap = budget === undefined ? cfg.fanout : LEARNER_DEFAULTS.maxPushesPerRound
        if (budget !== undefined && !budget.canSend()) return
        const targets =
          graph === undefined
            ? samplePeers(rng, peers.length, p, cap)
            : rng.shuffle([...graph[p]!]).slice(0, Math.min(cap, graph[p]!.length))
        for (const q of targets) {
          if (budget !== undefined && !budget.canSend()) break
          const x = snapshots[p]!
          let frameBytes: number
          let got: MaskedState
          const delta = deltaSenders?.[p]
          if (delta === undefined) {
            const frame = encodeFrame(x, { task: TASK, codec: encoders[p]! })
            frameBytes = frame.byteLength
            got = decodeFrame(frame, expect).state
          } else {
            // The daemon's delta frames: the sender's reference for q, q's reference for p.
            const { encoded, commit } = delta.encode(String(q), x, { task: TASK })
            frameBytes = encoded.frameBytes
            const d = decodeFrame(joinFrame(encoded), expect)
            got = deltaReceivers![q]!.apply(String(p), d.meta.base!, d.state)
            commit()
          }
          budget?.charge(frameBytes)
          sent[p] += frameBytes
          pushes++
          carriedSum += carried(got)
          inbox[q]!.push(got)
        }
      })
      peers.forEach((peer, p) => {
        if (inbox[p]!.length === 0) return
        peer.load(mergers[p]!.merge(snapshots[p]!, inbox[p]!).state)
      })
      if (c % cfg.evalEvery === 0 || c === cfg.cycles) {
        const acc = await evalPeers(
          peers.map((p) => p.model),
          data.evalSet,
        )
        const bytes = sent.reduce((a, b) => a + b, 0) / peers.length
        curve.push({ step, bytes, accuracy: acc.mean, min: acc.min, max: acc.max })
        log(
          `  ${run.codec}${run.budgetPerStep === undefined ? '' : ` @${run.budgetPerStep.toFixed(0)} B/step`} ${run.mode}/${run.init} step ${step}: ${(bytes / 1e6).toFixed(2)} MB/peer, mean ${acc.mean.toFixed(4)} [${acc.min.toFixed(3)}, ${acc.max.toFixed(3)}]`,
        )
      }
    }
  } finally {
    for (const peer of peers) peer.dispose()
  }
  const last = curve[curve.length - 1]!
  const tail = curve.slice(-TAIL_POINTS)
  const total = sent.reduce((a, b) => a + b, 0)
  return {
    ...run,
    curve,
    finalAccuracy: last.accuracy,
    tailAccuracy: tail.reduce((s, p) => s + p.accuracy, 0) / tail.length,
    minAccuracy: last.min,
    bytesPerPeer: total / peers.length,
    pushesPerPeer: pushes / peers.length,
    frameBytes: pushes > 0 ? total / pushes : 0,
    carried: pushes > 0 ? carriedSum / pushes : 0,
    wallSeconds: (performance.now() - t0) / 1000,
  }
}

/** The codec spec of a row label (`delta+partial:0.25+int2@partners=4` -> `delta+partial:0.25+int2`). */
export function codecSpecOf(label: string): string {
  return label.split('@')[0]!
}

/** A row label's exchange options after `@`, joined by `;`: `partners=N`, `quiet=SHARE|off`. Throws Error on anything else. */
export function rowOptions(label: string): Pick<CodecRun, 'partners' | 'quiet'> {
  const out: Pick<CodecRun, 'partners' | 'quiet'> = {}
  const tail = label.split('@')[1]
  if (tail === undefined) return out
  for (const part of tail.split(';')) {
    const [k, v] = part.split('=')
    if (k === 'partners' && Number.isInteger(Number(v)) && Number(v) >= 2) out.partners = Number(v)
    else if (k === 'quiet' && v === 'off') out.quiet = false
    else if (k === 'quiet' && v !== '' && Number(v) >= 0 && Number(v) < 1) out.quiet = Number(v)
    else
      throw new Error(`'${part}' in '${label}': use partners=N (N >= 2) or quiet=SHARE|off (SHARE in [0, 1))`)
  }
  return out
}

/** Each peer's partners: the union of degree / 2 random cycles through all peers (an expander, whp). */
function partnerGraph(n: number, degree: number, rng: ReturnType<typeof createRng>): number[][] {
  const sets = Array.from({ length: n }, () => new Set<number>())
  for (let c = 0; c < Math.max(1, Math.floor(degree / 2)); c++) {
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i))
    for (let k = 0; k < n; k++) {
      const a = order[k]!
      const b = order[(k + 1) % n]!
      sets[a]!.add(b)
      sets[b]!.add(a)
    }
  }
  return sets.map((s) => [...s])
}

/** Share of the coordinates a decoded frame carries. */
function carried(state: MaskedState): number {
  let total = 0
  let got = 0
  state.tensors.forEach((t, i) => {
    total += t.values.length
    const m = state.masks?.[i]
    if (m === undefined) got += t.values.length
    else for (let k = 0; k < m.length; k++) got += m[k]!
  })
  return got / total
}

/**
 * The curve with each accuracy replaced by the mean of the last `window` evaluations up to it: the
 * mean accuracy over peers moves by a point between evaluations, so a first crossing of the raw
 * curve says as much about one lucky evaluation as about the codec.
 */
export function trailingMean<P extends BytesPoint>(curve: readonly P[], window: number): P[] {
  return curve.map((p, i) => {
    const w = curve.slice(Math.max(0, i - window + 1), i + 1)
    return { ...p, accuracy: w.reduce((a, q) => a + q.accuracy, 0) / w.length }
  })
}

/** Bytes per peer at which the row first reaches `target` mean accuracy (interpolated between evaluations). */
export function bytesToReach(row: { curve: readonly BytesPoint[] }, target: number): number | undefined {
  let prev = { bytes: 0, accuracy: 0 }
  for (const p of row.curve) {
    if (p.accuracy >= target) {
      if (p.accuracy === prev.accuracy) return p.bytes
      return prev.bytes + ((target - prev.accuracy) / (p.accuracy - prev.accuracy)) * (p.bytes - prev.bytes)
    }
    prev = p
  }
  return undefined
}
