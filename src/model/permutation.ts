/**
 * Permutation symmetries of the zoo's networks: which tensor axes carry which
 * group of interchangeable hidden units, and how to permute a ModelState by them.
 */

import { InvalidArgumentError } from '../util/errors.ts'
import {
  archInput,
  CNN_CONV,
  cnnPooledSide,
  DEFAULT_INPUT_SHAPE,
  IMAGE_SIZE,
  INPUT_DIM,
  NUM_CLASSES,
  validateArch,
} from './arch.ts'
import { ArchMismatchError } from './errors.ts'
import type { ArchSpec, ModelState, NamedTensor } from './types.ts'

/** A set of interchangeable units (hidden neurons of a layer, output channels of a conv). */
export interface PermutationGroup {
  name: string
  size: number
}

/**
 * One tensor axis permuted by a group. The axis has length `repeat * size * stride`
 * and index `(block * size + unit) * stride + k`: `repeat` covers a flatten of spatial
 * positions x channels in channels-last order (stride 1), `stride` a channels-first one.
 */
export interface AxisPermutation {
  tensor: string
  axis: number
  group: string
  /** Consecutive blocks of the group's units along the axis (default 1). */
  repeat?: number
  /** Contiguous elements per unit within a block (default 1). */
  stride?: number
}

/** Which axes of which tensors each permutation group acts on. */
export interface PermutationSpec {
  groups: PermutationGroup[]
  axes: AxisPermutation[]
}

/**
 * A permutation per group: `perm[i] = j` means unit i of the result is unit j of
 * the input (a gather), so `applyPermutation(b, spec, align(a, b).perms)` lines b up with a.
 */
export type Permutations = Record<string, Int32Array>

/** The permutation spec of a zoo architecture (tensor names as in ArchSpec's docs). */
export function permutationSpecFor(spec: ArchSpec): PermutationSpec {
  const h = spec.hidden
  if (!Number.isInteger(h) || h < 1)
    throw new InvalidArgumentError(`hidden must be a positive integer, got ${h}`)
  if (spec.kind === 'mlp') {
    return {
      groups: [{ name: 'dense_0', size: h }],
      axes: [
        { tensor: 'dense_0/kernel', axis: 1, group: 'dense_0' },
        { tensor: 'dense_0/bias', axis: 0, group: 'dense_0' },
        { tensor: 'dense_1/kernel', axis: 0, group: 'dense_0' },
      ],
    }
  }
  if (spec.kind === 'cnn') {
    const pooled = cnnPooledSide(archInput(spec)[0]!)
    return {
      groups: [
        { name: 'conv_0', size: CNN_CONV[0].filters },
        { name: 'conv_1', size: CNN_CONV[1].filters },
        { name: 'dense_0', size: h },
      ],
      axes: [
        { tensor: 'conv_0/kernel', axis: 3, group: 'conv_0' },
        { tensor: 'conv_0/bias', axis: 0, group: 'conv_0' },
        { tensor: 'conv_1/kernel', axis: 2, group: 'conv_0' },
        { tensor: 'conv_1/kernel', axis: 3, group: 'conv_1' },
        { tensor: 'conv_1/bias', axis: 0, group: 'conv_1' },
        // Flatten of p x p x 16 channels-last (p = 5 for MNIST): channel c feeds rows (h*p + w)*16 + c.
        { tensor: 'dense_0/kernel', axis: 0, group: 'conv_1', repeat: pooled * pooled },
        { tensor: 'dense_0/kernel', axis: 1, group: 'dense_0' },
        { tensor: 'dense_0/bias', axis: 0, group: 'dense_0' },
        { tensor: 'dense_1/kernel', axis: 0, group: 'dense_0' },
      ],
    }
  }
  throw new InvalidArgumentError(`unknown architecture kind ${String((spec as ArchSpec).kind)}`)
}

/**
 * Guesses the zoo architecture of a state from its tensor names and shapes, so a merger can find
 * the permutation spec of what it receives. The result has the state's tensors (MNIST's defaults
 * are left out, as in defaultArch); the dataset tag and, for an MLP, the input's original shape
 * are not recoverable and are left out too. Throws ArchMismatchError when the tensors fit no zoo
 * architecture.
 */
export function archSpecOf(state: ModelState): ArchSpec {
  const shape = (name: string, rank: number): number[] => {
    const t = state.tensors.find((x) => x.name === name)
    if (t === undefined || t.shape.length !== rank) {
      throw new ArchMismatchError(`state has no ${rank}-D ${name}: not a zoo architecture`)
    }
    return t.shape
  }
  const [hidden] = shape('dense_0/bias', 1)
  const [classes] = shape('dense_1/bias', 1)
  const [denseIn] = shape('dense_0/kernel', 2)
  let input: number[]
  let kind: ArchSpec['kind'] = 'mlp'
  if (state.tensors.some((t) => t.name === 'conv_0/kernel')) {
    kind = 'cnn'
    // dense_0 reads p x p x 16; the smallest side that pools down to p (28 when MNIST's 5 fits).
    const pooled = Math.round(Math.sqrt(denseIn! / CNN_CONV[1].filters))
    const side = cnnPooledSide(IMAGE_SIZE) === pooled ? IMAGE_SIZE : 4 * pooled + 6
    input = [side, side, shape('conv_0/kernel', 4)[2]!]
  } else {
    input = [denseIn!]
  }
  const isDefault = input.join('x') === (kind === 'mlp' ? `${INPUT_DIM}` : DEFAULT_INPUT_SHAPE.join('x'))
  const arch: ArchSpec = {
    kind,
    hidden: hidden!,
    ...(isDefault ? {} : { input }),
    ...(classes === NUM_CLASSES ? {} : { classes }),
  }
  try {
    validateArch(arch)
  } catch (err) {
    throw new ArchMismatchError(`state fits no zoo architecture: ${(err as Error).message}`)
  }
  checkPermutationSpec(state, permutationSpecFor(arch))
  return arch
}

/** Throws ArchMismatchError unless every axis of `spec` exists in `state` with a matching length. */
export function checkPermutationSpec(state: ModelState, spec: PermutationSpec): void {
  const sizes = groupSizes(spec)
  for (const ax of spec.axes) {
    const t = state.tensors.find((x) => x.name === ax.tensor)
    if (t === undefined) throw new ArchMismatchError(`tensor ${ax.tensor} missing`)
    const size = sizes.get(ax.group)
    if (size === undefined)
      throw new InvalidArgumentError(`axis of ${ax.tensor} names unknown group ${ax.group}`)
    const want = (ax.repeat ?? 1) * size * (ax.stride ?? 1)
    if (t.shape[ax.axis] !== want) {
      throw new ArchMismatchError(
        `${ax.tensor} axis ${ax.axis} has length ${t.shape[ax.axis]}, group ${ax.group} needs ${want}`,
      )
    }
    if (t.values.length !== t.shape.reduce((a, b) => a * b, 1)) {
      throw new ArchMismatchError(`${ax.tensor} has ${t.values.length} values for shape [${t.shape}]`)
    }
  }
}

/** Identity permutation of every group. */
export function identityPermutations(spec: PermutationSpec): Permutations {
  const out: Permutations = {}
  for (const g of spec.groups) out[g.name] = identity(g.size)
  return out
}

/** Identity permutation of size n. */
export function identity(n: number): Int32Array {
  const p = new Int32Array(n)
  for (let i = 0; i < n; i++) p[i] = i
  return p
}

/** The inverse permutation: `inverse(p)[p[i]] = i`. */
export function invertPermutation(p: Int32Array): Int32Array {
  const q = new Int32Array(p.length)
  for (let i = 0; i < p.length; i++) q[p[i]!] = i
  return q
}

/** True when `p` is the identity. */
export function isIdentity(p: Int32Array): boolean {
  for (let i = 0; i < p.length; i++) if (p[i] !== i) return false
  return true
}

/**
 * Permutes the units of every group of `spec` in `state` (pure: returns a new state
 * with fresh arrays; tensors no group touches are copied). Throws InvalidArgumentError
 * when a permutation is missing, has the wrong size, or is not a permutation.
 */
export function applyPermutation(state: ModelState, spec: PermutationSpec, perms: Permutations): ModelState {
  checkPermutationSpec(state, spec)
  for (const g of spec.groups) checkPermutation(perms[g.name], g)
  const sizes = groupSizes(spec)
  const tensors = state.tensors.map((t) => {
    let values = t.values
    for (const ax of spec.axes) {
      if (ax.tensor !== t.name) continue
      const perm = perms[ax.group]!
      if (isIdentity(perm)) continue
      values = permuteAxis(values, t.shape, ax, sizes.get(ax.group)!, perm)
    }
    return { name: t.name, shape: [...t.shape], values: values === t.values ? values.slice() : values }
  })
  return { arch: state.arch, age: state.age, tensors }
}

/**
 * Permutes one axis of a row-major tensor: result index l along the axis reads
 * source index `axisGather(...)[l]`. Returns a new array.
 */
export function permuteAxis(
  values: Float32Array,
  shape: readonly number[],
  ax: Pick<AxisPermutation, 'axis' | 'repeat' | 'stride'>,
  size: number,
  perm: Int32Array,
): Float32Array {
  const { outer, len, inner } = axisView(shape, ax.axis)
  const map = axisGather(perm, size, ax.repeat ?? 1, ax.stride ?? 1)
  if (map.length !== len)
    throw new InvalidArgumentError(`axis ${ax.axis} of [${shape}] is not ${map.length} long`)
  const out = new Float32Array(values.length)
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * len
      for (let l = 0; l < len; l++) out[base + l] = values[base + map[l]!]!
    }
  } else {
    for (let o = 0; o < outer; o++) {
      const base = o * len
      for (let l = 0; l < len; l++) {
        const src = (base + map[l]!) * inner
        out.set(values.subarray(src, src + inner), (base + l) * inner)
      }
    }
  }
  return out
}

/** For an axis of `repeat * size * stride` entries, the source index of each result index. */
export function axisGather(perm: Int32Array, size: number, repeat: number, stride: number): Int32Array {
  const map = new Int32Array(repeat * size * stride)
  for (let b = 0; b < repeat; b++) {
    for (let u = 0; u < size; u++) {
      const dst = (b * size + u) * stride
      const src = (b * size + perm[u]!) * stride
      for (let k = 0; k < stride; k++) map[dst + k] = src + k
    }
  }
  return map
}

/** A row-major tensor seen as [outer, len, inner] around `axis`. */
export function axisView(
  shape: readonly number[],
  axis: number,
): { outer: number; len: number; inner: number } {
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new InvalidArgumentError(`axis ${axis} out of range for shape [${shape}]`)
  }
  let outer = 1
  for (let i = 0; i < axis; i++) outer *= shape[i]!
  let inner = 1
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!
  return { outer, len: shape[axis]!, inner }
}

/** Map from group name to its size. */
export function groupSizes(spec: PermutationSpec): Map<string, number> {
  return new Map(spec.groups.map((g) => [g.name, g.size]))
}

/** Looks up a tensor by name (undefined when absent). */
export function findTensor(state: ModelState, name: string): NamedTensor | undefined {
  return state.tensors.find((t) => t.name === name)
}

function checkPermutation(p: Int32Array | undefined, g: PermutationGroup): void {
  if (p === undefined) throw new InvalidArgumentError(`no permutation for group ${g.name}`)
  if (p.length !== g.size) {
    throw new InvalidArgumentError(`permutation of ${g.name} has ${p.length} entries, group has ${g.size}`)
  }
  const seen = new Uint8Array(g.size)
  for (let i = 0; i < p.length; i++) {
    const j = p[i]!
    if (j < 0 || j >= g.size || seen[j] === 1) throw new InvalidArgumentError(`${g.name}: not a permutation`)
    seen[j] = 1
  }
}
