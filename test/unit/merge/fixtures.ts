/**
 * Test fixtures for the merge maths: random states with the zoo's tensor layout
 * and a plain-JS forward pass, so the pure tests need no tfjs.
 */

import type { VarianceCorrectionOptions } from '../../../src/merge/varcorr.ts'
import {
  applyPermutation,
  identity,
  type PermutationSpec,
  type Permutations,
  permutationSpecFor,
} from '../../../src/model/permutation.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import { createRng, type Rng } from '../../../src/util/rng.ts'

/** The zoo's tensor layout (ArchSpec docs in src/model/types.ts). */
export function layoutOf(arch: ArchSpec): Array<{ name: string; shape: number[] }> {
  const out: Array<{ name: string; shape: number[] }> = []
  let denseIn = 784
  if (arch.kind === 'cnn') {
    out.push({ name: 'conv_0/kernel', shape: [3, 3, 1, 8] }, { name: 'conv_0/bias', shape: [8] })
    out.push({ name: 'conv_1/kernel', shape: [3, 3, 8, 16] }, { name: 'conv_1/bias', shape: [16] })
    denseIn = 400
  }
  out.push(
    { name: 'dense_0/kernel', shape: [denseIn, arch.hidden] },
    { name: 'dense_0/bias', shape: [arch.hidden] },
  )
  out.push({ name: 'dense_1/kernel', shape: [arch.hidden, 10] }, { name: 'dense_1/bias', shape: [10] })
  return out
}

/** Arch fingerprint used by the fixtures (only equality matters to the merge code). */
export function fingerprintOf(arch: ArchSpec): string {
  return `${arch.kind}-${arch.hidden}`
}

/** Glorot-uniform-like kernels and small non-zero biases (zero biases would hide bias bugs). */
export function randomState(arch: ArchSpec, seed: number, age = 0): ModelState {
  const rng = createRng(seed)
  return {
    arch: fingerprintOf(arch),
    age,
    tensors: layoutOf(arch).map(({ name, shape }) => {
      const size = shape.reduce((a, b) => a * b, 1)
      const receptive = shape.length === 4 ? shape[0]! * shape[1]! : 1
      const limit =
        shape.length === 1
          ? 0.1
          : Math.sqrt(6 / ((shape[shape.length - 2]! + shape[shape.length - 1]!) * receptive))
      const values = new Float32Array(size)
      for (let k = 0; k < size; k++) values[k] = (2 * rng.next() - 1) * limit
      return { name, shape, values }
    }),
  }
}

/** A uniformly random permutation per group. */
export function randomPermutations(spec: PermutationSpec, rng: Rng): Permutations {
  const out: Permutations = {}
  for (const g of spec.groups) out[g.name] = Int32Array.from(rng.shuffle(Array.from(identity(g.size))))
  return out
}

/** Adds N(0, sigma^2) noise to every value (a new state). */
export function addNoise(state: ModelState, sigma: number, seed: number): ModelState {
  const rng = createRng(seed)
  return {
    ...state,
    tensors: state.tensors.map((t) => ({
      ...t,
      shape: [...t.shape],
      values: t.values.map((v) => v + sigma * rng.normal()),
    })),
  }
}

/** Deep snapshot of a state's numbers, to check that a function left its inputs alone. */
export function snapshot(state: ModelState): { arch: string; age: number; values: number[][] } {
  return { arch: state.arch, age: state.age, values: state.tensors.map((t) => Array.from(t.values)) }
}

function tensor(state: ModelState, name: string): Float32Array {
  const t = state.tensors.find((x) => x.name === name)
  if (t === undefined) throw new Error(`no ${name}`)
  return t.values
}

/** y[o] = act(sum_i x[i] w[i, o] + b[o]) for a [in, out] kernel. */
function dense(x: Float64Array, w: Float32Array, b: Float32Array, out: number, relu: boolean): Float64Array {
  const n = x.length
  const y = new Float64Array(out)
  for (let o = 0; o < out; o++) y[o] = b[o]!
  for (let i = 0; i < n; i++) {
    const xi = x[i]!
    if (xi === 0) continue
    for (let o = 0; o < out; o++) y[o] += xi * w[i * out + o]!
  }
  if (relu) for (let o = 0; o < out; o++) y[o] = Math.max(0, y[o]!)
  return y
}

/** 3x3 'valid' conv + relu on an [h, w, c] image with an [3, 3, c, f] kernel; output [h-2, w-2, f]. */
function conv3(
  x: Float64Array,
  h: number,
  w: number,
  c: number,
  k: Float32Array,
  b: Float32Array,
  f: number,
) {
  const oh = h - 2
  const ow = w - 2
  const y = new Float64Array(oh * ow * f)
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      for (let o = 0; o < f; o++) {
        let s = b[o]!
        for (let di = 0; di < 3; di++) {
          for (let dj = 0; dj < 3; dj++) {
            for (let ci = 0; ci < c; ci++)
              s += x[((i + di) * w + j + dj) * c + ci]! * k[((di * 3 + dj) * c + ci) * f + o]!
          }
        }
        y[(i * ow + j) * f + o] = Math.max(0, s)
      }
    }
  }
  return y
}

/** 2x2 max pool, stride 2, floor; channels-last. */
function pool2(x: Float64Array, h: number, w: number, c: number): Float64Array {
  const oh = Math.floor(h / 2)
  const ow = Math.floor(w / 2)
  const y = new Float64Array(oh * ow * c)
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      for (let ch = 0; ch < c; ch++) {
        let m = -Infinity
        for (let di = 0; di < 2; di++) {
          for (let dj = 0; dj < 2; dj++) m = Math.max(m, x[((2 * i + di) * w + 2 * j + dj) * c + ch]!)
        }
        y[(i * ow + j) * c + ch] = m
      }
    }
  }
  return y
}

/** Logits of one 784-pixel image, computed in float64 exactly as the zoo's layers are defined. */
export function forward(state: ModelState, arch: ArchSpec, image: Float32Array): Float64Array {
  let x: Float64Array = Float64Array.from(image)
  if (arch.kind === 'cnn') {
    x = pool2(conv3(x, 28, 28, 1, tensor(state, 'conv_0/kernel'), tensor(state, 'conv_0/bias'), 8), 26, 26, 8)
    x = pool2(
      conv3(x, 13, 13, 8, tensor(state, 'conv_1/kernel'), tensor(state, 'conv_1/bias'), 16),
      11,
      11,
      16,
    )
  }
  const h = dense(x, tensor(state, 'dense_0/kernel'), tensor(state, 'dense_0/bias'), arch.hidden, true)
  return dense(h, tensor(state, 'dense_1/kernel'), tensor(state, 'dense_1/bias'), 10, false)
}

/** One fixed merge problem: a local model, the models it receives, and merger options besides the mode. */
export interface MergeCase {
  label: string
  local: ModelState
  received: ModelState[]
  init: { seed?: number; varcorr?: VarianceCorrectionOptions; align?: { maxPasses?: number } }
}

/**
 * Seeded merge problems covering both architectures, one and several received models, zero
 * ages, a permuted copy (so alignment has work to do) and the merger's options.
 */
export function mergeCases(): MergeCase[] {
  const inits: MergeCase['init'][] = [
    {},
    { seed: 7, varcorr: { epsilon: 0, biases: true } },
    { seed: 3, varcorr: { target: 'local' } },
    { seed: 9, varcorr: { target: { blend: 0.3 } }, align: { maxPasses: 2 } },
  ]
  const out: MergeCase[] = []
  for (const arch of [
    { kind: 'mlp', hidden: 32 },
    { kind: 'cnn', hidden: 16 },
  ] satisfies ArchSpec[]) {
    const spec = permutationSpecFor(arch)
    const local = randomState(arch, 100, 40)
    const permuted = applyPermutation(
      addNoise(local, 0.01, 105),
      spec,
      randomPermutations(spec, createRng(106)),
    )
    const sets: Array<[string, ModelState, ModelState[]]> = [
      ['one', local, [randomState(arch, 101, 40)]],
      ['three', local, [randomState(arch, 102, 0), randomState(arch, 103, 90), { ...permuted, age: 25 }]],
      ['zero-ages', { ...local, age: 0 }, [randomState(arch, 104, 0)]],
    ]
    for (const [name, l, received] of sets) {
      inits.forEach((init, i) => {
        out.push({ label: `${arch.kind}/${name}/init${i}`, local: l, received, init })
      })
    }
  }
  return out
}
