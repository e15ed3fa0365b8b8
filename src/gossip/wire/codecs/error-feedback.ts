/**
 * Error feedback on a quantised value codec (`int4:ef`, `int8:ef`, `partial:0.25+int4:ef`).
 *
 * Round to nearest makes the same error every time a value is sent: a weight smaller than
 * half a quantisation step (most of a row, with int4's seven steps up to the row's largest
 * weight) goes out as 0 in every frame, and a receiver that averages frames into its model
 * shrinks it towards 0 at each merge. With error feedback the sender keeps, per coordinate,
 * what rounding took (the residual e), sends Q(x + e) and keeps e <- x + e - Q(x + e), so
 * the errors of successive frames cancel instead of adding up (1-bit SGD, Seide et al. 2014;
 * EF-SGD, Karimireddy et al. 2019; here on absolute values, as frames carry): the values a
 * node sends average to its model's values. |e| stays below half a step of its row.
 *
 * One residual per coordinate, shared by every destination like a selection's reference
 * (./selection.ts); a sparse frame uses and updates it only at the coordinates it carries.
 * A push that fails still counts as sent. Receivers see an ordinary frame of the value codec.
 */
import type { NamedTensor } from '../../../model/types.ts'
import type { ValueEncoder } from './index.ts'
import { roundTrip } from './sparse.ts'

/** The argument that turns on error feedback (`int4:ef`). */
export const ERROR_FEEDBACK = 'ef'

/** The sender's residuals; see the module comment. */
export class ErrorFeedback {
  private residuals: Float32Array[] = []

  /**
   * Per tensor, the values to send: the carried values (`positions[i]`, all when undefined) plus
   * their residual, in fresh arrays. A new layout starts from zero residuals.
   */
  targets(tensors: readonly NamedTensor[], positions: readonly (Int32Array | undefined)[]): Float32Array[] {
    this.fit(tensors)
    return tensors.map((t, i) => plusResidual(t.values, this.residuals[i]!, positions[i]))
  }

  /**
   * Records what was sent: at each carried coordinate the residual becomes target - decoded
   * (0 where either is not finite: a frame receivers refuse must not poison later ones).
   */
  commit(
    targets: readonly Float32Array[],
    decoded: readonly Float32Array[],
    positions: readonly (Int32Array | undefined)[],
  ): void {
    targets.forEach((target, i) => {
      storeResidual(this.residuals[i]!, target, decoded[i]!, positions[i])
    })
  }

  /** The residual of tensor `i` (a copy; tests and diagnostics). */
  residual(i: number): Float32Array {
    return this.residuals[i]?.slice() ?? new Float32Array(0)
  }

  /** Zero residuals for a new layout (other tensor count or sizes). */
  private fit(tensors: readonly NamedTensor[]): void {
    const same =
      this.residuals.length === tensors.length &&
      tensors.every((t, i) => this.residuals[i]!.length === t.values.length)
    if (!same) this.residuals = tensors.map((t) => new Float32Array(t.values.length))
  }
}

// Module-level loops, not in the closures above (merge/steps/vector.ts says why).

/** `v + e` at `at` (everywhere when undefined), in a fresh array of the carried values. */
function plusResidual(v: Float32Array, e: Float32Array, at: Int32Array | undefined): Float32Array {
  if (at === undefined) {
    const out = new Float32Array(v.length)
    for (let k = 0; k < v.length; k++) out[k] = v[k]! + e[k]!
    return out
  }
  const out = new Float32Array(at.length)
  for (let j = 0; j < at.length; j++) out[j] = v[at[j]!]! + e[at[j]!]!
  return out
}

/** `e` at each carried coordinate (`at[j]`, or j when undefined) = target[j] - got[j], 0 when not finite. */
function storeResidual(
  e: Float32Array,
  target: Float32Array,
  got: Float32Array,
  at: Int32Array | undefined,
): void {
  for (let j = 0; j < target.length; j++) {
    const r = target[j]! - got[j]!
    e[at === undefined ? j : at[j]!] = Number.isFinite(r) ? r : 0
  }
}

/** A dense payload with error feedback: the values plus their residuals, encoded; the residuals updated. */
export function encodeWithFeedback(
  values: ValueEncoder,
  feedback: ErrorFeedback,
  tensors: readonly NamedTensor[],
): Uint8Array[] {
  const all = tensors.map(() => undefined)
  const targets = feedback.targets(tensors, all)
  const blocks = tensors.map((t, i) => ({ name: t.name, shape: t.shape, values: targets[i]! }))
  const chunks = values.encode(blocks)
  feedback.commit(targets, roundTrip(values.codec, blocks, chunks), all)
  return chunks
}
