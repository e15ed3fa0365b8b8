/**
 * Delta frames (`--codec delta+partial:0.25+int2`): a push carries codec(x - R), where R is a
 * reference both ends hold for the pair, and both ends then add the decoded difference to R.
 * What rounding or the selection left out stays in x - R and goes out in a later frame, so a
 * coarse codec (int2) converges on the sender's values instead of repeating its error: the
 * compressed gossip of CHOCO-SGD (Koloskova, Stich and Jaggi, ICML 2019), with one reference per
 * sender and destination since gossip partners change and a peer has no global broadcast.
 *
 * The receiver merges its reference of the sender at the coordinates the frame refreshed (the
 * rest keep its own values, as with any sparse frame). References are numbered: a frame names
 * the one it applies to (`base` in the header, version 2), and the receiver refuses a frame
 * whose base it does not hold (DeltaBaseError: it restarted, or evicted the sender) and drops
 * its reference of the sender; it acknowledges every frame it applied. A sender whose push
 * fails cannot tell why (a refusal resets the stream with no reason), so it keeps its
 * reference once: most failures (a fair-share refusal, a busy or unreachable receiver) leave
 * the receiver's reference where it was, and the next frame names the same base. A second
 * failure in a row drops it (the receiver lost it, or applied a frame whose acknowledgement
 * was lost and then refused the repeat), and the next frame has base 0, the zero reference,
 * which any receiver can apply. Pushes to one destination must not overlap (the exchange
 * chains them), or two frames would claim the same base.
 *
 * Delta frames travel over DELTA_PROTOCOL; a receiver that speaks only MODEL_PROTOCOL (a node
 * from before them) gets plain frames of the inner codec instead (../exchange.ts).
 *
 * Memory: one model of float32 per remembered peer on each side, the least recently used
 * dropped beyond `maxPeers`.
 */
import { type MaskedState, maskPositions } from '../../merge/masks.ts'
import type { ModelState, NamedTensor } from '../../model/types.ts'
import { DELTA } from '../constants.ts'
import { DeltaBaseError, InvalidCodecSpecError, NonFiniteValueError } from '../errors.ts'
import { decodeFrame, type EncodedModel, type EncodeMeta, encodeModel, joinFrame, layoutOf } from './codec.ts'
import { ERROR_FEEDBACK } from './codecs/error-feedback.ts'
import { type CodecOptions, parseCodecSpec, type SentValues } from './codecs/index.ts'
import { gather } from './codecs/selection.ts'

export { DELTA }

/**
 * Peers whose reference one node keeps on each side. 32 covers the partners of a node (the
 * learner pushes to a few, DEFAULT_PARTNERS) with room for churn; 13 MB for the default MLP.
 */
export const DEFAULT_MAX_DELTA_PEERS = 32

/** Largest base: numbering wraps to 1 (0 is the zero reference). */
const MAX_BASE = 0xffffffff

/** `delta+X` -> { delta: true, inner: X }; anything else -> { delta: false, inner: spec }. */
export function splitDeltaSpec(spec: string): { delta: boolean; inner: string } {
  const prefix = `${DELTA}+`
  if (!spec.startsWith(prefix)) return { delta: false, inner: spec }
  const inner = spec.slice(prefix.length)
  // Validates the rest; the reference already carries what rounding took, so `:ef` would count it twice.
  parseCodecSpec(inner)
  if (inner.split('+').some((p) => p.split(':')[1] === ERROR_FEEDBACK)) {
    throw new InvalidCodecSpecError(`'${spec}': delta frames carry their own error feedback, drop ':ef'`)
  }
  return { delta: true, inner }
}

/**
 * The canonical form of a push codec spec, the name pushes are counted under (`delta+` before the
 * inner encoder's spec). Throws InvalidCodecSpecError.
 */
export function pushCodecSpec(spec: string): string {
  const { delta, inner } = splitDeltaSpec(spec)
  const canonical = parseCodecSpec(inner).spec
  return delta ? `${DELTA}+${canonical}` : canonical
}

interface Reference {
  base: number
  values: Float32Array[]
  /** Failed pushes against it in a row (sender side). */
  failures?: number
}

/** Failed pushes in a row after which a sender drops its reference (see the module comment). */
export const DELTA_FAILURES_TO_RESET = 2

const next = (base: number): number => (base >= MAX_BASE ? 1 : base + 1)

/** A map that forgets the least recently used key beyond `max` entries. */
class Recent<V> {
  private readonly map = new Map<string, V>()
  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) {
      this.map.delete(key)
      this.map.set(key, v)
    }
    return v
  }

  set(key: string, v: V): void {
    this.map.delete(key)
    this.map.set(key, v)
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value!)
  }

  delete(key: string): void {
    this.map.delete(key)
  }

  get size(): number {
    return this.map.size
  }
}

/** Whether `ref` fits tensors of these sizes. */
function fits(ref: readonly Float32Array[], tensors: readonly NamedTensor[]): boolean {
  return ref.length === tensors.length && tensors.every((t, i) => ref[i]!.length === t.values.length)
}

/** Largest finite float32. */
const F32_MAX = 3.4028234663852886e38

/**
 * Adds the sent values to `ref` in place (a model-sized copy per push, on each side, is what an
 * edge device cannot afford: V8 collects external memory with full pauses). Returns false, and
 * changes nothing, when a sum would not be a finite float32.
 */
function addInPlace(ref: Float32Array[], sent: SentValues): boolean {
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i]!
    const d = sent.values[i]!
    const at = sent.positions[i]
    for (let j = 0; j < d.length; j++) {
      const v = r[at === undefined ? j : at[j]!]! + d[j]!
      if (!(v <= F32_MAX && v >= -F32_MAX)) return false
    }
  }
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i]!
    const d = sent.values[i]!
    const at = sent.positions[i]
    if (at === undefined) for (let k = 0; k < d.length; k++) r[k]! += d[k]!
    else for (let j = 0; j < d.length; j++) r[at[j]!]! += d[j]!
  }
  return true
}

/** A decoded frame's carried values (its masks' coordinates) as SentValues. */
function sentOf(decoded: MaskedState): SentValues {
  const positions = decoded.tensors.map((_, i) => {
    const m = decoded.masks?.[i]
    return m === undefined ? undefined : maskPositions(m)
  })
  return { positions, values: decoded.tensors.map((t, i) => gather(t.values, positions[i])) }
}

// Module-level loops, not in the closures below (merge/steps/vector.ts says why).

/** `v - r`, elementwise, in a fresh array. */
function difference(v: Float32Array, r: Float32Array): Float32Array {
  const out = new Float32Array(v.length)
  for (let k = 0; k < v.length; k++) out[k] = v[k]! - r[k]!
  return out
}

/** `target[at[j]] = source[at[j]]` for each j. */
function copyAt(target: Float32Array, source: Float32Array, at: Int32Array): void {
  for (let j = 0; j < at.length; j++) target[at[j]!] = source[at[j]!]!
}

/** Zero arrays shaped like `tensors`. */
const zeros = (tensors: readonly NamedTensor[]): Float32Array[] =>
  tensors.map((t) => new Float32Array(t.values.length))

/** The sender's references, one per destination; see the module comment. */
export class DeltaSender {
  private readonly refs: Recent<Reference>
  private readonly codecOptions: CodecOptions

  /** `inner`: the codec of the differences (`partial:0.25+int2`); `codec`: its options (quiet inputs). */
  constructor(
    readonly inner: string,
    options: { maxPeers?: number; codec?: CodecOptions } = {},
  ) {
    this.refs = new Recent(options.maxPeers ?? DEFAULT_MAX_DELTA_PEERS)
    this.codecOptions = options.codec ?? {}
    parseCodecSpec(inner, this.codecOptions)
  }

  /**
   * The frame for `to`: `state` minus the reference, in the inner codec (a fresh encoder each
   * time, so a selection picks what differs most from what `to` holds). `commit()` once the push
   * succeeded; `failed(to)` when it did not.
   */
  encode(
    to: string,
    state: ModelState,
    meta: Omit<EncodeMeta, 'codec' | 'base'>,
  ): { encoded: EncodedModel; commit: () => void } {
    let ref = this.refs.get(to)
    if (ref !== undefined && !fits(ref.values, state.tensors)) ref = undefined
    const base = ref?.base ?? 0
    const diff: ModelState = {
      arch: state.arch,
      age: state.age,
      tensors: state.tensors.map((t, i) => {
        const r = ref?.values[i]
        return { name: t.name, shape: t.shape, values: r === undefined ? t.values : difference(t.values, r) }
      }),
    }
    const encoded = encodeModel(diff, { ...meta, codec: parseCodecSpec(this.inner, this.codecOptions), base })
    // What the receiver will add, bit for bit: what a sparse encoder decoded for itself, or else
    // our own frame decoded.
    const sent =
      encoded.sent ??
      sentOf(decodeFrame(joinFrame(encoded), { task: meta.task, layout: layoutOf(state) }).state)
    return {
      encoded,
      commit: () => {
        // Pushes to one destination are chained, so nothing read this reference since encode().
        const values = ref?.values ?? zeros(state.tensors)
        if (addInPlace(values, sent)) this.refs.set(to, { base: next(base), values })
        else this.refs.delete(to)
      },
    }
  }

  /** A push to `to` failed: keep the reference once, drop it on the second failure in a row. */
  failed(to: string): void {
    const ref = this.refs.get(to)
    if (ref === undefined) return
    ref.failures = (ref.failures ?? 0) + 1
    if (ref.failures >= DELTA_FAILURES_TO_RESET) this.forget(to)
  }

  /** Drops the reference for `to`: the next frame starts from zero. */
  forget(to: string): void {
    this.refs.delete(to)
  }

  /** The base the next frame to `to` would name (0 when none is held). */
  baseFor(to: string): number {
    return this.refs.get(to)?.base ?? 0
  }

  /** The reference held for `to` (read-only: for checks that both ends agree). */
  referenceFor(to: string): readonly Float32Array[] | undefined {
    return this.refs.get(to)?.values
  }
}

/** The receiver's references, one per sender; see the module comment. */
export class DeltaReceiver {
  private readonly refs: Recent<Reference>

  constructor(options: { maxPeers?: number } = {}) {
    this.refs = new Recent(options.maxPeers ?? DEFAULT_MAX_DELTA_PEERS)
  }

  /**
   * Applies a decoded delta frame from `from` against reference `base`, and returns what to merge:
   * the updated reference at the coordinates the frame carried. Throws DeltaBaseError when `base`
   * is not the reference held (0 always is), NonFiniteValueError when the sum is not finite;
   * either way the sender's reference is dropped, and nothing else changes.
   */
  apply(from: string, base: number, decoded: MaskedState): MaskedState {
    let ref: Reference | undefined
    if (base !== 0) {
      ref = this.refs.get(from)
      if (ref === undefined || ref.base !== base || !fits(ref.values, decoded.tensors)) {
        this.refs.delete(from)
        throw new DeltaBaseError(
          ref === undefined
            ? `delta against reference ${base}, none held for this sender`
            : `delta against reference ${base}, holding ${ref.base}`,
        )
      }
    }
    const values = ref?.values ?? zeros(decoded.tensors)
    const sent = sentOf(decoded)
    if (!addInPlace(values, sent)) {
      this.refs.delete(from)
      throw new NonFiniteValueError('a delta frame takes its reference out of float32 range')
    }
    this.refs.set(from, { base: next(base), values })
    // The decoded arrays become what to merge (the reference at the carried coordinates): the
    // reference itself must not reach the merge, which may keep what it is given.
    decoded.tensors.forEach((t, i) => {
      const at = sent.positions[i]
      if (at === undefined) t.values.set(values[i]!)
      else copyAt(t.values, values[i]!, at)
    })
    return decoded
  }

  /** The reference held for `from` (read-only: for checks that both ends agree). */
  referenceFor(from: string): readonly Float32Array[] | undefined {
    return this.refs.get(from)?.values
  }

  /** Senders whose reference is held. */
  get size(): number {
    return this.refs.size
  }
}
