/**
 * ModelState <-> tfjs model, plus plain-number helpers and the checkpoint
 * encoding. A ModelState never aliases tfjs memory: values are always copies.
 */
import { ArchMismatchError, InvalidStateError } from './errors.ts'
import * as tf from './tf.ts'
import type { ArchSpec, ModelState, NamedTensor } from './types.ts'
import { archFingerprint, modelArch, namedWeights } from './zoo.ts'

export interface GetStateOptions {
  /** Fingerprint (or spec) to stamp; defaults to the zoo spec the model was built from. */
  arch?: ArchSpec | string
  /** Training samples behind this model; default 0. */
  age?: number
}

function fingerprintOf(model: tf.LayersModel, arch: ArchSpec | string | undefined): string {
  if (typeof arch === 'string') return arch
  if (arch !== undefined) return archFingerprint(arch)
  const spec = modelArch(model)
  if (spec === undefined) throw new InvalidStateError('model was not built by the zoo: pass options.arch')
  return archFingerprint(spec)
}

/** Copies the model's weights out as a ModelState (canonical tensor order). */
export function getState(model: tf.LayersModel, options: GetStateOptions = {}): ModelState {
  const arch = fingerprintOf(model, options.arch)
  const tensors = namedWeights(model).map(({ name, variable }) => {
    const value = variable.read()
    // dataSync may hand back backend memory (cpu): copy so the state owns its numbers.
    return { name, shape: [...value.shape], values: new Float32Array(value.dataSync() as Float32Array) }
  })
  return { arch, age: options.age ?? 0, tensors }
}

/**
 * Writes a state into the model. Throws ArchMismatchError when the fingerprint differs
 * from the model's, InvalidStateError when names, shapes or values do not fit; the model is
 * untouched in both cases. Optimizer slots (Adam moments) are kept.
 */
export function setState(model: tf.LayersModel, state: ModelState): void {
  const spec = modelArch(model)
  if (spec !== undefined && state.arch !== archFingerprint(spec)) {
    throw new ArchMismatchError(`state arch ${state.arch} does not match model arch ${archFingerprint(spec)}`)
  }
  validateState(state)
  const weights = namedWeights(model)
  if (weights.length !== state.tensors.length) {
    throw new InvalidStateError(`state has ${state.tensors.length} tensors, model has ${weights.length}`)
  }
  const byName = new Map(state.tensors.map((t) => [t.name, t]))
  const plan = weights.map(({ name, variable }) => {
    const t = byName.get(name)
    if (t === undefined) throw new InvalidStateError(`state lacks tensor ${name}`)
    if (!sameShape(t.shape, variable.shape)) {
      throw new InvalidStateError(`tensor ${name}: shape [${t.shape}] != model [${variable.shape}]`)
    }
    return { variable, t }
  })
  tf.tidy(() => {
    for (const { variable, t } of plan) variable.write(tf.tensor(t.values, t.shape, 'float32'))
  })
}

function sameShape(a: readonly number[], b: readonly (number | null)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

/** Size implied by a shape; throws InvalidStateError on anything but non-negative integers. */
function shapeSize(name: string, shape: unknown): number {
  if (!Array.isArray(shape) || shape.length > 8) throw new InvalidStateError(`tensor ${name}: bad shape`)
  let size = 1
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new InvalidStateError(`tensor ${name}: bad dimension ${String(d)}`)
    size *= d
  }
  if (size > 2 ** 31) throw new InvalidStateError(`tensor ${name}: too large`)
  return size
}

/**
 * Checks a state's internal consistency: unique names, values matching shapes, finite
 * values, finite non-negative age. Throws InvalidStateError.
 */
export function validateState(state: ModelState): void {
  if (state === null || typeof state !== 'object') throw new InvalidStateError('state must be an object')
  if (typeof state.arch !== 'string' || state.arch.length === 0)
    throw new InvalidStateError('state.arch missing')
  if (typeof state.age !== 'number' || !Number.isFinite(state.age) || state.age < 0) {
    throw new InvalidStateError(`state.age must be finite and >= 0, got ${String(state.age)}`)
  }
  if (!Array.isArray(state.tensors)) throw new InvalidStateError('state.tensors must be an array')
  const seen = new Set<string>()
  for (const t of state.tensors) {
    if (typeof t?.name !== 'string' || t.name.length === 0)
      throw new InvalidStateError('tensor without a name')
    if (seen.has(t.name)) throw new InvalidStateError(`duplicate tensor ${t.name}`)
    seen.add(t.name)
    const size = shapeSize(t.name, t.shape)
    if (!(t.values instanceof Float32Array))
      throw new InvalidStateError(`tensor ${t.name}: values must be a Float32Array`)
    if (t.values.length !== size) {
      throw new InvalidStateError(`tensor ${t.name}: ${t.values.length} values for shape [${t.shape}]`)
    }
    const v = t.values
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i])) throw new InvalidStateError(`tensor ${t.name}: non-finite value at ${i}`)
    }
  }
}

// One tfjs-free implementation of these lives with the merge maths; re-exported here for callers of state.ts.
export { assertSameLayout, cloneState, stateDistance } from './layout.ts'

/** Number of parameters in a state. */
export function stateParamCount(state: ModelState): number {
  return state.tensors.reduce((n, t) => n + t.values.length, 0)
}

/**
 * Bytes of the state's float32 values: its checkpoint value section, and its payload on the wire in
 * the default raw-f32 codec (other codecs declare their own size: gossip/wire/codecs).
 */
export function stateByteSize(state: ModelState): number {
  return state.tensors.reduce((n, t) => n + t.values.byteLength, 0)
}

// ---- checkpoint encoding ----------------------------------------------------
//
// Layout: 'GLS1' | u32 LE header length | JSON header (UTF-8) | zero padding to a
// multiple of 4 | float32 LE values of every tensor in header order.
// JSON header: { arch, age, tensors: [{ name, shape }] }.

const MAGIC = [0x47, 0x4c, 0x53, 0x31] // 'GLS1'
/** Generous bound on the header: tensor names and shapes of any zoo model fit in a few KiB. */
const MAX_HEADER_BYTES = 1 << 20

/** Serialises a state for checkpoints (self-describing, little-endian). */
export function encodeState(state: ModelState): Uint8Array {
  validateState(state)
  const header = new TextEncoder().encode(
    JSON.stringify({
      arch: state.arch,
      age: state.age,
      tensors: state.tensors.map((t) => ({ name: t.name, shape: t.shape })),
    }),
  )
  const valuesOffset = align4(8 + header.length)
  const out = new Uint8Array(valuesOffset + stateByteSize(state))
  out.set(MAGIC, 0)
  const view = new DataView(out.buffer)
  view.setUint32(4, header.length, true)
  out.set(header, 8)
  let off = valuesOffset
  for (const t of state.tensors) {
    const v = t.values
    for (let i = 0; i < v.length; i++, off += 4) view.setFloat32(off, v[i], true)
  }
  return out
}

/** Parses encodeState output; InvalidStateError on anything malformed (never a partial state). */
export function decodeState(bytes: Uint8Array): ModelState {
  if (!(bytes instanceof Uint8Array) || bytes.length < 8)
    throw new InvalidStateError('state encoding too short')
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== MAGIC[i]) throw new InvalidStateError('not a gossip-learn state (bad magic)')
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = view.getUint32(4, true)
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) {
    throw new InvalidStateError(`bad header length ${headerLength}`)
  }
  let header: unknown
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)))
  } catch (err) {
    throw new InvalidStateError(`unreadable state header: ${(err as Error).message}`)
  }
  const h = header as { arch?: unknown; age?: unknown; tensors?: unknown }
  if (h === null || typeof h !== 'object' || typeof h.arch !== 'string' || typeof h.age !== 'number') {
    throw new InvalidStateError('state header lacks arch/age')
  }
  if (!Array.isArray(h.tensors)) throw new InvalidStateError('state header lacks tensors')
  const layout = (h.tensors as Array<{ name?: unknown; shape?: unknown }>).map((t) => {
    if (t === null || typeof t !== 'object' || typeof t.name !== 'string')
      throw new InvalidStateError('bad tensor entry')
    return { name: t.name, shape: t.shape as number[], size: shapeSize(t.name, t.shape) }
  })
  let off = align4(8 + headerLength)
  const total = layout.reduce((n, t) => n + t.size * 4, 0)
  if (off + total !== bytes.length) {
    throw new InvalidStateError(`state holds ${bytes.length - off} value bytes, header says ${total}`)
  }
  const tensors: NamedTensor[] = layout.map(({ name, shape, size }) => {
    const values = new Float32Array(size)
    for (let i = 0; i < size; i++, off += 4) values[i] = view.getFloat32(off, true)
    return { name, shape: [...shape], values }
  })
  const state: ModelState = { arch: h.arch, age: h.age, tensors }
  validateState(state)
  return state
}

function align4(n: number): number {
  return (n + 3) & ~3
}
