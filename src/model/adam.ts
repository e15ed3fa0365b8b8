/**
 * Adam as tfjs's AdamOptimizer computes it (the same moments, bias correction and epsilon), with
 * fewer kernel calls. tfjs's runs 14 kernels per tensor per step in a scope of its own, most with a
 * scalar tensor made from a number: on the default MLP 42 of its 56 went to the 1.4k parameters
 * outside the first layer. Here a tensor of at most SMALL_TENSOR values is updated in a plain loop
 * over its values, and a larger one through kernels whose constants are made once.
 * test/unit/model/adam.test.ts checks it against tf.train.adam; docs/BENCHMARKS.md ("Hand-written
 * MLP backprop") has the figures.
 */
import { InvalidArgumentError } from '../util/errors.ts'
import * as tf from './tf.ts'

/** Tensors of at most this many values are updated in JavaScript: a loop is cheaper than kernels there. */
export const SMALL_TENSOR = 4096

const BETA1 = 0.9
const BETA2 = 0.999
/** tfjs's epsilon on float32 backends (backend.epsilon()). */
const EPSILON = 1e-7

type NamedTensor = { name: string; tensor: tf.Tensor }
type Slot =
  | { kind: 'small'; m: Float32Array; v: Float32Array }
  | { kind: 'large'; m: tf.Variable; v: tf.Variable }

export class Adam extends tf.Optimizer {
  /** Not tfjs's 'Adam': this class is never serialised, and must not shadow tfjs's registration. */
  static get className(): string {
    return 'GossipLearnAdam'
  }

  private readonly slots = new Map<string, Slot>()
  /** beta^t, rounded to float32 at each step as tfjs's accBeta variables are. */
  private acc1 = Math.fround(BETA1)
  private acc2 = Math.fround(BETA2)
  private readonly constants: {
    b1: tf.Scalar
    a1: tf.Scalar
    b2: tf.Scalar
    a2: tf.Scalar
    eps: tf.Scalar
    negLr: tf.Scalar
  }

  constructor(readonly learningRate: number) {
    super()
    assertLearningRate(learningRate)
    this.constants = {
      b1: tf.scalar(BETA1),
      a1: tf.scalar(1 - BETA1),
      b2: tf.scalar(BETA2),
      a2: tf.scalar(1 - BETA2),
      eps: tf.scalar(EPSILON),
      negLr: tf.scalar(-learningRate),
    }
    for (const t of Object.values(this.constants)) tf.keep(t)
  }

  applyGradients(gradients: tf.NamedTensorMap | NamedTensor[]): void {
    const list = Array.isArray(gradients)
      ? gradients
      : Object.entries(gradients).map(([name, tensor]) => ({ name, tensor }))
    // tfjs computes 1 - beta^t in float32.
    const c1 = Math.fround(1 - this.acc1)
    const c2 = Math.fround(1 - this.acc2)
    tf.tidy(() => {
      const c1t = tf.scalar(c1)
      const c2t = tf.scalar(c2)
      for (const { name, tensor: grad } of list) {
        if (grad == null) continue
        const value = tf.engine().registeredVariables[name]
        if (value === undefined) throw new InvalidArgumentError(`no variable named ${name}`)
        const slot = this.slot(name, value)
        if (slot.kind === 'small') {
          const p = Float32Array.from(value.dataSync() as Float32Array)
          updateSmall(p, grad.dataSync() as Float32Array, slot.m, slot.v, this.learningRate, c1, c2)
          value.assign(tf.tensor(p, value.shape, 'float32'))
          continue
        }
        const k = this.constants
        const m = tf.add(tf.mul(slot.m, k.b1), tf.mul(grad, k.a1))
        const v = tf.add(tf.mul(slot.v, k.b2), tf.mul(tf.square(grad), k.a2))
        slot.m.assign(m)
        slot.v.assign(v)
        const step = tf.div(tf.div(m, c1t), tf.add(tf.sqrt(tf.div(v, c2t)), k.eps))
        value.assign(tf.add(tf.mul(step, k.negLr), value))
      }
    })
    this.acc1 = Math.fround(this.acc1 * Math.fround(BETA1))
    this.acc2 = Math.fround(this.acc2 * Math.fround(BETA2))
    this.incrementIterations()
  }

  dispose(): void {
    super.dispose()
    for (const slot of this.slots.values()) if (slot.kind === 'large') tf.dispose([slot.m, slot.v])
    this.slots.clear()
    tf.dispose(Object.values(this.constants))
  }

  /** Like tfjs's: the iteration count, then every first moment (`<variable>/m`), then every second (`/v`). */
  async getWeights(): Promise<NamedTensor[]> {
    const moments = (which: 'm' | 'v') =>
      [...this.slots].map(([name, slot]) => ({
        name: `${name}/${which}`,
        tensor: slot.kind === 'large' ? slot[which] : tf.tensor(slot[which]),
      }))
    return [await this.saveIterations(), ...moments('m'), ...moments('v')]
  }

  /** Restores what getWeights gave (moments of variables that exist now; beta^t from the count). */
  async setWeights(weights: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weights)
    this.acc1 = Math.fround(BETA1)
    this.acc2 = Math.fround(BETA2)
    for (let i = 0; i < this.iterations; i++) {
      this.acc1 = Math.fround(this.acc1 * Math.fround(BETA1))
      this.acc2 = Math.fround(this.acc2 * Math.fround(BETA2))
    }
    for (const { name, tensor } of rest) {
      const cut = name.lastIndexOf('/')
      const which = name.slice(cut + 1)
      const value = tf.engine().registeredVariables[name.slice(0, cut)]
      if ((which !== 'm' && which !== 'v') || value === undefined || value.size !== tensor.size) {
        throw new InvalidArgumentError(`no moment of a variable of this size is named ${name}`)
      }
      const slot = this.slot(name.slice(0, cut), value)
      if (slot.kind === 'large') slot[which].assign(tensor)
      else slot[which].set(tensor.dataSync() as Float32Array)
    }
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: BETA1, beta2: BETA2, epsilon: EPSILON }
  }

  private slot(name: string, value: tf.Variable): Slot {
    let slot = this.slots.get(name)
    if (slot === undefined) {
      slot =
        value.size <= SMALL_TENSOR
          ? { kind: 'small', m: new Float32Array(value.size), v: new Float32Array(value.size) }
          : {
              kind: 'large',
              m: tf.keep(tf.zerosLike(value).variable(false)),
              v: tf.keep(tf.zerosLike(value).variable(false)),
            }
      this.slots.set(name, slot)
    }
    return slot
  }
}

/** Throws InvalidArgumentError unless `learningRate` is a finite number above 0 (any optimizer's). */
export function assertLearningRate(learningRate: number): void {
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
    throw new InvalidArgumentError(`learning rate must be a positive number, got ${learningRate}`)
  }
}

/** One Adam step on `p` in place, moments `m` and `v` updated; c1, c2: 1 - beta^t. */
function updateSmall(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  learningRate: number,
  c1: number,
  c2: number,
): void {
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]
    const mi = m[i] * BETA1 + gi * (1 - BETA1)
    const vi = v[i] * BETA2 + gi * gi * (1 - BETA2)
    m[i] = mi
    v[i] = vi
    p[i] -= (learningRate * (mi / c1)) / (Math.sqrt(vi / c2) + EPSILON)
  }
}
