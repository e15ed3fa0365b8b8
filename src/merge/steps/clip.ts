/**
 * Per-input step `clip`: a distance test and self-centred clipping, in the local model's space
 * (after `align` when the pipeline aligns). After ClippedGossip (He, Karimireddy, Jaggi, ICLR
 * 2023): each tensor of the update `received - local` is clipped to a radius, so no input moves
 * the local model farther than a typical honest one; after BALANCE (arXiv 2406.10416): an input
 * too far from the local model is rejected outright. Gossip merges one or two models at a time,
 * so the radius comes from the distances of recently accepted inputs (a median: a minority of
 * outliers cannot move it), anchored on the local model's own norm, which also gives the bounds
 * of the warm-up before any history exists. Defaults and their reasons: ../constants.ts.
 */

import type { ModelState, NamedTensor } from '../../model/types.ts'
import { InvalidArgumentError } from '../../util/errors.ts'
import {
  DEFAULT_CLIP_FACTOR,
  DEFAULT_CLIP_MIN_HISTORY,
  DEFAULT_CLIP_WINDOW,
  DEFAULT_GROSS_FACTOR,
  DEFAULT_NORM_CLIP_RATIO,
  DEFAULT_NORM_REJECT_RATIO,
  DEFAULT_REJECT_FACTOR,
  DEFAULT_REWARM_AFTER_REJECTS,
  MERGE_REASONS,
} from '../constants.ts'
import type { InputStep, InputStepDefinition, MergeInput } from '../pipeline.ts'
import { squaredDistances, squaredNorms, Window } from './vector.ts'

/** Options of `clip` (defaults and reasons in ../constants.ts). */
export interface ClipOptions {
  /** Accepted distances kept (per tensor and overall). */
  window?: number
  /** Distances needed before the history sets the bounds (the warm-up lasts until then). */
  minHistory?: number
  /** A tensor's update is clipped to this multiple of its median recent distance. */
  clipFactor?: number
  /** An input farther than this multiple of the median recent distance is rejected. */
  rejectFactor?: number
  /** A tensor's update is never larger than this multiple of the local tensor's norm (warm-up bound). */
  normClipRatio?: number
  /** An input farther than this multiple of the local model's norm is always rejected (warm-up bound). */
  normRejectRatio?: number
  /** After this many rejections in a row the history is dropped (back to the warm-up bounds). */
  rewarmAfterRejects?: number
}

type ClipSettings = Required<ClipOptions>

function settings(options: ClipOptions = {}): ClipSettings {
  const s: ClipSettings = {
    window: options.window ?? DEFAULT_CLIP_WINDOW,
    minHistory: options.minHistory ?? DEFAULT_CLIP_MIN_HISTORY,
    clipFactor: options.clipFactor ?? DEFAULT_CLIP_FACTOR,
    rejectFactor: options.rejectFactor ?? DEFAULT_REJECT_FACTOR,
    normClipRatio: options.normClipRatio ?? DEFAULT_NORM_CLIP_RATIO,
    normRejectRatio: options.normRejectRatio ?? DEFAULT_NORM_REJECT_RATIO,
    rewarmAfterRejects: options.rewarmAfterRejects ?? DEFAULT_REWARM_AFTER_REJECTS,
  }
  for (const key of ['window', 'minHistory', 'rewarmAfterRejects'] as const) {
    if (!(Number.isInteger(s[key]) && s[key] >= 1)) throw new InvalidArgumentError(`clip ${key} ${s[key]}`)
  }
  if (s.minHistory > s.window) throw new InvalidArgumentError('clip minHistory must not exceed window')
  for (const key of ['clipFactor', 'rejectFactor', 'normClipRatio', 'normRejectRatio'] as const) {
    if (!(s[key] > 0 && Number.isFinite(s[key]))) throw new InvalidArgumentError(`clip ${key} ${s[key]}`)
  }
  return s
}

/** Bounds used for one input: the rejection radius for the whole model and a clip radius per tensor. */
export interface ClipBounds {
  reject: number
  clip: number[]
}

/**
 * The state `clip` keeps across one merger's merges: recent accepted distances overall and per
 * tensor, and the count of rejections in a row. One per merger; reset when the arch changes.
 */
export class DistanceHistory {
  private readonly s: ClipSettings
  private arch?: string
  private overall: Window
  private perTensor: Window[] = []
  private rejectsInARow = 0

  constructor(options: ClipOptions = {}) {
    this.s = settings(options)
    this.overall = new Window(this.s.window)
  }

  /** True until enough distances are recorded for the history to set the bounds. */
  get warmingUp(): boolean {
    return this.overall.length < this.s.minHistory
  }

  /** Forgets every distance: the next inputs are judged by the warm-up bounds. */
  reset(): void {
    this.overall = new Window(this.s.window)
    this.perTensor = []
    this.rejectsInARow = 0
  }

  /**
   * Judges one input against the local model, records it, and returns the verdict: rejected
   * when its distance exceeds the rejection radius, else accepted with each tensor's update
   * clipped to that tensor's radius.
   */
  judge(local: ModelState, input: MergeInput): ReturnType<InputStep> {
    if (local.arch !== this.arch) {
      this.reset()
      this.arch = local.arch
    }
    while (this.perTensor.length < local.tensors.length) this.perTensor.push(new Window(this.s.window))
    const d2 = squaredDistances(local, input.state)
    const n2 = squaredNorms(local)
    const distance = Math.sqrt(d2.reduce((a, b) => a + b, 0))
    if (!Number.isFinite(distance)) return this.rejected(MERGE_REASONS.nonFiniteDistance)
    const bounds = this.bounds(local, n2)
    if (distance > bounds.reject) {
      const gross = distance > DEFAULT_GROSS_FACTOR * bounds.reject
      return this.rejected(gross ? MERGE_REASONS.distanceGross : MERGE_REASONS.distanceOutlier)
    }
    this.rejectsInARow = 0
    let clipped = false
    const scales = d2.map((sq, i) => {
      const d = Math.sqrt(sq)
      const radius = bounds.clip[i]!
      // Identical tensors carry no information about the spread: a history of zeros would clip everything.
      if (d > 0) this.perTensor[i]!.push(Math.min(d, radius))
      if (d <= radius) return 1
      clipped = true
      return radius / d
    })
    if (distance > 0) this.overall.push(distance)
    if (!clipped) return { action: 'accept', input }
    return {
      action: 'clip',
      reason: MERGE_REASONS.distanceClipped,
      input: { ...input, state: { ...input.state, tensors: clipTensors(local, input.state, scales) } },
    }
  }

  /** The bounds the next input would be judged by (warm-up: multiples of the local norms). */
  bounds(local: ModelState, squaredLocalNorms: readonly number[] = squaredNorms(local)): ClipBounds {
    const total = local.tensors.reduce((n, t) => n + t.values.length, 0)
    const norm = Math.sqrt(squaredLocalNorms.reduce((a, b) => a + b, 0))
    let reject = this.s.normRejectRatio * norm
    if (!this.warmingUp) reject = Math.min(reject, this.s.rejectFactor * this.overall.median())
    const clip = local.tensors.map((t, i) => {
      // A tensor's own norm, or its share of the model's (biases start at zero).
      const anchor = Math.max(Math.sqrt(squaredLocalNorms[i]!), norm * Math.sqrt(t.values.length / total))
      let radius = this.s.normClipRatio * anchor
      const h = this.perTensor[i]
      if (h !== undefined && h.length >= this.s.minHistory)
        radius = Math.min(radius, this.s.clipFactor * h.median())
      return radius
    })
    return { reject, clip }
  }

  private rejected(reason: string): ReturnType<InputStep> {
    if (++this.rejectsInARow >= this.s.rewarmAfterRejects) this.reset()
    return { action: 'reject', reason }
  }
}

/** `local + scale * (received - local)` for each tensor whose scale is below 1; other tensors as received. */
function clipTensors(local: ModelState, received: ModelState, scales: readonly number[]): NamedTensor[] {
  return received.tensors.map((t, i) => {
    const s = scales[i]!
    if (s >= 1) return t
    return { name: t.name, shape: [...t.shape], values: towards(local.tensors[i]!.values, t.values, s) }
  })
}

/** `l + s * (r - l)`, elementwise; module level, not in the closure above (./vector.ts says why). */
function towards(l: Float32Array, r: Float32Array, s: number): Float32Array {
  const values = new Float32Array(r.length)
  for (let k = 0; k < r.length; k++) values[k] = l[k]! + s * (r[k]! - l[k]!)
  return values
}

/**
 * Rejects an input farther from the local model than the rejection radius and clips each
 * tensor of the others' update to its radius (see the module comment); keeps its history
 * across the merger's merges.
 */
export const clipStep: InputStepDefinition = {
  kind: 'input',
  create(init) {
    const history = new DistanceHistory(init.clip)
    return (local, input) => history.judge(local, input)
  },
}
