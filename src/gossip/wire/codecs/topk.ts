/**
 * topk:<fraction>: of each tensor, the round(fraction * size) coordinates (at
 * least one) whose values moved most since they were last sent, as flat indices
 * plus values. The header gives each tensor's count; the payload's index section
 * holds the indices, strictly increasing, each in indexWidth(size) bytes
 * little-endian; the values follow in the value codec as one rank-1 block per
 * tensor. Error feedback and the reference: ./selection.ts.
 */
import type { NamedTensor } from '../../../model/types.ts'
import { InvalidCodecSpecError, MalformedFrameError, SparseCountError } from '../../errors.ts'
import type { SelectedTensor, SelectionCodec, Selector } from './selection.ts'
import { indexWidth, scatter } from './selection.ts'
import { valueCount } from './util.ts'

/** The topk selection (header selection id 1). */
export const TOPK: SelectionCodec = {
  name: 'topk',
  id: 1,
  carried(layout, info) {
    if (info.slices.length > 0 || info.within != null)
      throw new MalformedFrameError(`topk tensor '${layout.name}' lists unit slices or a kept axis`)
    const size = valueCount(layout.shape)
    if (info.count == null) throw new SparseCountError(`topk tensor '${layout.name}' declares no count`)
    if (info.count > size) {
      throw new SparseCountError(`topk tensor '${layout.name}' declares ${info.count} of its ${size} values`)
    }
    return {
      count: info.count,
      blockShape: [info.count],
      indexBytes: info.count * indexWidth(size),
    }
  },
  createSelector: (arg) => new TopkSelector(parseFraction('topk', arg)),
}

/** A fraction in (0, 1] from a spec argument; throws InvalidCodecSpecError. */
export function parseFraction(name: string, arg: string | undefined): number {
  const f = arg === undefined || arg.trim() === '' ? Number.NaN : Number(arg)
  if (!(f > 0 && f <= 1)) {
    throw new InvalidCodecSpecError(
      `codec ${name} needs a fraction in (0, 1], e.g. ${name}:0.1, got '${arg ?? ''}'`,
    )
  }
  return f
}

/** round(fraction * n), at least 1 and at most n. */
export function selectedCount(fraction: number, n: number): number {
  return Math.min(n, Math.max(1, Math.round(fraction * n)))
}

/**
 * The flat indices of the `k` largest scores, increasing (ties broken towards lower indices).
 * O(n log n) through a sorted copy.
 */
export function largest(scores: Float32Array | Float64Array, k: number): Int32Array {
  const n = scores.length
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i)
  const sorted = Float64Array.from(scores).sort()
  const threshold = sorted[n - k]!
  let above = 0
  for (let i = 0; i < n; i++) if (scores[i]! > threshold) above++
  let ties = k - above
  const out = new Int32Array(k)
  let j = 0
  for (let i = 0; i < n && j < k; i++) {
    const s = scores[i]!
    if (s > threshold || (s === threshold && ties-- > 0)) out[j++] = i
  }
  return out
}

/** Sender state of topk: the reference values (what each coordinate was last sent as). */
class TopkSelector implements Selector {
  readonly spec: string
  private readonly fraction: number
  private reference: Float32Array[] = []

  constructor(fraction: number) {
    this.fraction = fraction
    this.spec = `topk:${fraction}`
  }

  select(tensors: readonly NamedTensor[]): SelectedTensor[] {
    this.fitReference(tensors)
    return tensors.map((t, i) => {
      const change = changeScores(t.values, this.reference[i]!)
      const k = selectedCount(this.fraction, t.values.length)
      return { info: { count: k }, positions: largest(change, k), blockShape: [k] }
    })
  }

  commit(selected: readonly SelectedTensor[], decoded: readonly Float32Array[]): void {
    selected.forEach((s, i) => {
      scatter(this.reference[i]!, s.positions!, decoded[i]!)
    })
  }

  /** A zero reference per tensor, renewed when the layout changes. */
  private fitReference(tensors: readonly NamedTensor[]): void {
    const same =
      this.reference.length === tensors.length &&
      tensors.every((t, i) => this.reference[i]!.length === t.values.length)
    if (!same) this.reference = tensors.map((t) => new Float32Array(t.values.length))
  }
}

// Module-level loops, not in the closures above (merge/steps/vector.ts says why).

/** Per coordinate, |v - ref|; +Infinity where that is NaN. */
function changeScores(v: Float32Array, ref: Float32Array): Float32Array {
  const change = new Float32Array(v.length)
  for (let k = 0; k < v.length; k++) {
    const c = Math.abs(v[k]! - ref[k]!)
    // A NaN goes out first (receivers refuse it), rather than breaking the ordering.
    change[k] = Number.isNaN(c) ? Number.POSITIVE_INFINITY : c
  }
  return change
}
