/**
 * Architecture geometry without tfjs: which tensors a zoo network has for a dataset's input shape
 * and class count, its fingerprint and its seeded initial weights. MNIST's shape ([28, 28, 1],
 * 10 classes) is the default, so an ArchSpec without `input`/`classes` is the MNIST network and
 * fingerprints predating datasets are unchanged.
 */
import { MAX_CLASSES } from '../data/constants.ts'
import type { Dataset } from '../data/types.ts'
import { featureSize } from '../data/types.ts'
import { InvalidArgumentError } from '../util/errors.ts'
import { createRng } from '../util/rng.ts'
import { UnsupportedInputError } from './errors.ts'
import type { ArchKind, ArchSpec, ModelState, NamedTensor } from './types.ts'

/** Image side and class count of the MNIST family (the default input). */
export const IMAGE_SIZE = 28
export const NUM_CLASSES = 10
export const INPUT_DIM = IMAGE_SIZE * IMAGE_SIZE
/** Shape of one MNIST sample, the input of an ArchSpec that names none. */
export const DEFAULT_INPUT_SHAPE: readonly number[] = [IMAGE_SIZE, IMAGE_SIZE, 1]

/** The dataset whose networks carry no dataset tag in their fingerprint (checkpoints predate the tag). */
export const UNTAGGED_DATASET = 'mnist'

/** Largest hidden width accepted: far above anything useful on MNIST, low enough to bound memory. */
export const MAX_HIDDEN = 4096

/** Most input features: a 256x256 image, whose MLP first layer at 128 hidden units is 32 MiB. */
export const MAX_FEATURES = 256 * 256

/** Most parameters of a network: 16 Mi float32 = 64 MiB, the exchange's hard cap on a frame. */
export const MAX_PARAMS = 16 * 1024 * 1024

/** Smallest CNN input side: two 3x3 'valid' convs and two 2x2 pools leave 1x1 at 10. */
export const MIN_CNN_SIDE = 10

/** Dataset tags in fingerprints and task ids: short, lower case, no separators of the fingerprint. */
const DATASET_TAG = /^[a-z0-9][a-z0-9-]{0,31}$/

/** Every architecture the zoo builds. */
export const ARCH_KINDS: readonly ArchKind[] = ['mlp', 'cnn']

/** The default architecture: the MLP trains ~5x faster than the CNN per step on the wasm backend. */
export const DEFAULT_ARCH_KIND: ArchKind = 'mlp'

/** A tensor's name and shape, without values. */
export interface TensorSpec {
  name: string
  shape: number[]
}

/** What the zoo needs of a dataset to shape a network. */
export type DatasetShape = Pick<Dataset, 'name' | 'featureShape' | 'numClasses'>

/** The default spec of each kind for MNIST (mlp 128 hidden, cnn 64). */
export function defaultArch(kind: ArchKind): ArchSpec {
  switch (kind) {
    case 'mlp':
      return { kind, hidden: 128 }
    case 'cnn':
      return { kind, hidden: 64 }
    default:
      throw new InvalidArgumentError(`unknown architecture kind: ${String(kind)}`)
  }
}

/**
 * The network of `kind` for a dataset: input shape and classes from the dataset, hidden width
 * `hidden` (default: the kind's). For MNIST this is exactly defaultArch (same fingerprint); for
 * any other dataset the spec carries its shape, classes and name. Throws like validateArch
 * (UnsupportedInputError: a CNN for anything but square single-channel images).
 */
export function datasetArch(kind: ArchKind, dataset: DatasetShape, hidden?: number): ArchSpec {
  const base: ArchSpec = { ...defaultArch(kind), ...(hidden === undefined ? {} : { hidden }) }
  const isMnist =
    dataset.name === UNTAGGED_DATASET &&
    dataset.numClasses === NUM_CLASSES &&
    sameShape(dataset.featureShape, DEFAULT_INPUT_SHAPE)
  const spec: ArchSpec = isMnist
    ? base
    : { ...base, input: [...dataset.featureShape], classes: dataset.numClasses, dataset: dataset.name }
  validateArch(spec)
  return spec
}

/** The sample shape a spec takes (default [28, 28, 1]). */
export function archInput(spec: ArchSpec): readonly number[] {
  return spec.input ?? DEFAULT_INPUT_SHAPE
}

/** The classes a spec predicts (default 10). */
export function archClasses(spec: ArchSpec): number {
  return spec.classes ?? NUM_CLASSES
}

/**
 * Throws InvalidArgumentError unless `spec` is a buildable architecture, UnsupportedInputError
 * when its kind cannot take its input (a CNN needs square single-channel images of side >= 10).
 */
export function validateArch(spec: ArchSpec): void {
  if (spec === null || typeof spec !== 'object')
    throw new InvalidArgumentError('architecture spec must be an object')
  if (spec.kind !== 'mlp' && spec.kind !== 'cnn') {
    throw new InvalidArgumentError(`unknown architecture kind: ${String(spec.kind)} (expected mlp or cnn)`)
  }
  if (!Number.isInteger(spec.hidden) || spec.hidden < 1 || spec.hidden > MAX_HIDDEN) {
    throw new InvalidArgumentError(
      `hidden units must be an integer in [1, ${MAX_HIDDEN}], got ${spec.hidden}`,
    )
  }
  const input = archInput(spec)
  if (
    !Array.isArray(input) ||
    input.length < 1 ||
    input.length > 3 ||
    !input.every((d) => Number.isInteger(d) && d >= 1)
  ) {
    throw new InvalidArgumentError(`input shape must be 1 to 3 positive integers, got [${String(input)}]`)
  }
  if (featureSize(input) > MAX_FEATURES) {
    throw new InvalidArgumentError(`input shape [${input}] has more than ${MAX_FEATURES} features`)
  }
  const classes = archClasses(spec)
  if (!Number.isInteger(classes) || classes < 2 || classes > MAX_CLASSES) {
    throw new InvalidArgumentError(`classes must be an integer in [2, ${MAX_CLASSES}], got ${classes}`)
  }
  if (spec.dataset !== undefined && (typeof spec.dataset !== 'string' || !DATASET_TAG.test(spec.dataset))) {
    throw new InvalidArgumentError(`dataset tag must match ${DATASET_TAG}, got '${String(spec.dataset)}'`)
  }
  if (spec.kind === 'cnn') {
    const [rows, cols, channels] = input
    if (input.length !== 3 || rows !== cols || channels !== 1 || rows < MIN_CNN_SIDE) {
      throw new UnsupportedInputError(
        `the cnn takes square single-channel images of side >= ${MIN_CNN_SIDE} ([s, s, 1]), not samples of shape [${input}]: use --model mlp`,
      )
    }
  }
  const params = tensorsOf(spec).reduce((n, t) => n + featureSize(t.shape), 0)
  if (params > MAX_PARAMS) {
    throw new InvalidArgumentError(
      `${params} parameters exceed the limit of ${MAX_PARAMS}: fewer hidden units`,
    )
  }
}

/** Parses 'mlp', 'cnn', 'mlp:256' or 'cnn:32' (kind[:hidden]) for the CLI and config files (MNIST shape). */
export function parseArch(text: string): ArchSpec {
  const m = /^(mlp|cnn)(?::(\d+))?$/.exec(text.trim())
  if (m === null)
    throw new InvalidArgumentError(
      `bad architecture "${text}": expected mlp, cnn, mlp:<hidden> or cnn:<hidden>`,
    )
  const spec =
    m[2] === undefined ? defaultArch(m[1] as ArchKind) : { kind: m[1] as ArchKind, hidden: Number(m[2]) }
  validateArch(spec)
  return spec
}

/** Shape of one model input: [features] for the MLP (784 for MNIST), [s, s, 1] for the CNN. */
export function inputShape(spec: ArchSpec): number[] {
  const input = archInput(spec)
  return spec.kind === 'mlp' ? [featureSize(input)] : [...input]
}

/** Output channels and kernel size of the CNN's two conv layers (fixed by the ArchSpec contract). */
export const CNN_CONV = [
  { filters: 8, kernel: 3 },
  { filters: 16, kernel: 3 },
] as const

/** Side of the CNN's last pooled feature map for an input side: 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5. */
export function cnnPooledSide(side: number): number {
  let s = side
  for (const { kernel } of CNN_CONV) s = Math.floor((s - kernel + 1) / 2)
  return s
}

/** The tensors of an architecture in canonical order (the order of getState and of the wire). */
export function archTensors(spec: ArchSpec): TensorSpec[] {
  validateArch(spec)
  return tensorsOf(spec)
}

function tensorsOf(spec: ArchSpec): TensorSpec[] {
  const out: TensorSpec[] = []
  const input = archInput(spec)
  const classes = archClasses(spec)
  let denseIn = featureSize(input)
  if (spec.kind === 'cnn') {
    let inC = input[2]!
    CNN_CONV.forEach(({ filters, kernel }, i) => {
      out.push({ name: `conv_${i}/kernel`, shape: [kernel, kernel, inC, filters] })
      out.push({ name: `conv_${i}/bias`, shape: [filters] })
      inC = filters
    })
    denseIn = cnnPooledSide(input[0]!) ** 2 * inC
  }
  out.push({ name: 'dense_0/kernel', shape: [denseIn, spec.hidden] })
  out.push({ name: 'dense_0/bias', shape: [spec.hidden] })
  out.push({ name: 'dense_1/kernel', shape: [spec.hidden, classes] })
  out.push({ name: 'dense_1/bias', shape: [classes] })
  return out
}

/**
 * Stable fingerprint of dataset tag + architecture + tensor names/shapes, e.g.
 * 'mlp-784-128-10|dense_0/kernel:784x128,dense_0/bias:128,...' for MNIST and
 * 'csv:mlp-4-128-3|...' for a CSV task. Equal strings mean mergeable states.
 */
export function archFingerprint(spec: ArchSpec): string {
  const tensors = archTensors(spec)
  const input = archInput(spec)
  const classes = archClasses(spec)
  const head =
    spec.kind === 'mlp'
      ? `mlp-${featureSize(input)}-${spec.hidden}-${classes}`
      : `cnn-${input.join('x')}-c${CNN_CONV.map((c) => `${c.kernel}x${c.kernel}x${c.filters}`).join('-c')}-${spec.hidden}-${classes}`
  const tag = spec.dataset === undefined || spec.dataset === UNTAGGED_DATASET ? '' : `${spec.dataset}:`
  return `${tag}${head}|${tensors.map((t) => `${t.name}:${t.shape.join('x')}`).join(',')}`
}

/**
 * Seeded initial weights without tfjs: glorot-uniform kernels (limit sqrt(6 / (fanIn + fanOut)),
 * receptive field included for convs) and zero biases, drawn tensor by tensor in canonical order.
 */
export function initialState(spec: ArchSpec, seed: number): ModelState {
  const rng = createRng(seed)
  const tensors: NamedTensor[] = archTensors(spec).map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1)
    const values = new Float32Array(size)
    if (name.endsWith('/kernel')) {
      const receptive = shape.length === 4 ? shape[0] * shape[1] : 1
      const fanIn = shape[shape.length - 2] * receptive
      const fanOut = shape[shape.length - 1] * receptive
      const limit = Math.sqrt(6 / (fanIn + fanOut))
      for (let i = 0; i < size; i++) values[i] = (2 * rng.next() - 1) * limit
    }
    return { name, shape: [...shape], values }
  })
  return { arch: archFingerprint(spec), age: 0, tensors }
}

/** A copy of a spec (arrays included), without undefined fields. */
export function copyArch(spec: ArchSpec): ArchSpec {
  return {
    kind: spec.kind,
    hidden: spec.hidden,
    ...(spec.input === undefined ? {} : { input: [...spec.input] }),
    ...(spec.classes === undefined ? {} : { classes: spec.classes }),
    ...(spec.dataset === undefined ? {} : { dataset: spec.dataset }),
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}
