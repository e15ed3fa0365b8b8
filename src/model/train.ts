/**
 * Local training: minibatch steps over the peer's own samples, with one
 * preallocated batch buffer, the model's own optimizer and periodic yields so
 * the node keeps serving the network while it trains.
 */
import { type SampleStore, samplesStore } from '../data/samples.ts'
import type { Samples } from '../data/types.ts'
import { InvalidArgumentError } from '../util/errors.ts'
import { createRng, type Rng, randomSeed } from '../util/rng.ts'
import { mlpStep, mlpVariables } from './mlp-step.ts'
import * as tf from './tf.ts'
import { SOFTMAX_LAYER } from './zoo.ts'

export interface TrainStepsOptions {
  /** Minibatch steps to run (K). */
  steps: number
  /** Default 32. */
  batchSize?: number
  /** Checked between batches; on abort the steps done so far are reported. */
  signal?: AbortSignal
  /** Batch-order randomness for this call; default the trainer's own seeded stream. */
  rng?: Rng
  /** Yield to the event loop after this much synchronous work (ms); default 10. Does not change results. */
  yieldEveryMs?: number
  /**
   * Step through tfjs's autodiff even where a hand-written backward pass exists (zoo MLPs,
   * mlp-step.ts): the same gradients, slower. For comparing the two (scripts/bench/model-step.ts).
   */
  autodiff?: boolean
}

export interface TrainResult {
  /** Steps completed. */
  steps: number
  /** Samples consumed (steps * batchSize): what the model's age grows by. */
  samples: number
  /** Mean training loss over the completed steps (NaN when none ran). */
  loss: number
  /** True when the signal stopped training before `steps`. */
  aborted: boolean
}

export interface LocalTrainerInit {
  /**
   * The peer's own samples (features flattened; as many per sample as the model takes): decoded
   * Samples, or a compact store (Dataset.trainShare) whose rows are decoded batch by batch.
   */
  data: Samples | SampleStore
  /** Seed of the batch order; random when absent. */
  seed?: number
}

export const DEFAULT_BATCH_SIZE = 32
const DEFAULT_YIELD_MS = 10

/** Resolves on the next turn of the event loop (after pending I/O callbacks). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * Holds one peer's data and its position in the current epoch. Batches are drawn
 * without replacement from a shuffled order that is reshuffled at each epoch end.
 */
export class LocalTrainer {
  private readonly rows: SampleStore
  private readonly rng: Rng
  private readonly order: Int32Array
  private cursor: number
  private readonly maxLabel: number
  private inputSize = 0
  private classes = 0
  private xBuf = new Float32Array(0)
  private yBuf = new Float32Array(0)

  constructor(init: LocalTrainerInit) {
    const { data } = init
    if (data.count < 1) throw new InvalidArgumentError('a trainer needs at least one sample')
    if ('features' in data) {
      if (data.labels.length !== data.count || data.features.length % data.count !== 0) {
        throw new InvalidArgumentError('sample arrays do not match their count')
      }
    } else if (data.labels.length !== data.count) {
      throw new InvalidArgumentError('sample arrays do not match their count')
    }
    this.rows = 'features' in data ? samplesStore(data) : data
    this.maxLabel = data.labels.reduce((m, l) => Math.max(m, l), 0)
    this.rng = createRng(init.seed ?? randomSeed())
    this.order = new Int32Array(data.count)
    for (let i = 0; i < data.count; i++) this.order[i] = i
    this.cursor = data.count // forces a shuffle before the first batch
  }

  /** Number of local samples. */
  get size(): number {
    return this.rows.count
  }

  /**
   * Runs up to `steps` minibatch steps of the model's compiled optimizer on softmax
   * cross-entropy. Mutates the model's weights (and optimizer slots) in place.
   */
  async trainSteps(model: tf.LayersModel, options: TrainStepsOptions): Promise<TrainResult> {
    const { steps, signal } = options
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    if (!Number.isInteger(steps) || steps < 0)
      throw new InvalidArgumentError(`steps must be a non-negative integer, got ${steps}`)
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new InvalidArgumentError(`batch size must be a positive integer, got ${batchSize}`)
    }
    const optimizer = model.optimizer
    if (optimizer == null)
      throw new InvalidArgumentError('model has no optimizer: compile it (buildModel does)')
    const rng = options.rng ?? this.rng
    const yieldMs = options.yieldEveryMs ?? DEFAULT_YIELD_MS
    const sampleShape = model.inputs[0].shape.slice(1) as number[]
    const batchShape = [batchSize, ...sampleShape]
    const inputSize = sampleShape.reduce((a, b) => a * b, 1)
    const classes = model.outputs[0].shape[model.outputs[0].shape.length - 1] as number
    if (this.rows.size !== inputSize) {
      throw new InvalidArgumentError(
        `samples hold ${this.rows.size} features each, the model takes ${inputSize}`,
      )
    }
    if (this.maxLabel >= classes) {
      throw new InvalidArgumentError(`label ${this.maxLabel} is beyond the model's ${classes} classes`)
    }
    this.ensureBuffers(batchSize, inputSize, classes)
    const step = stepFunction(model, optimizer, batchShape, batchSize, classes, options.autodiff === true)

    let done = 0
    let lossSum = 0
    let sliceStart = performance.now()
    while (done < steps) {
      if (signal?.aborted) break
      this.fillBatch(batchSize, rng)
      lossSum += step(this.xBuf, this.yBuf)
      done++
      if (performance.now() - sliceStart >= yieldMs) {
        await yieldToEventLoop()
        sliceStart = performance.now()
      }
    }
    return {
      steps: done,
      samples: done * batchSize,
      loss: done > 0 ? lossSum / done : Number.NaN,
      aborted: done < steps,
    }
  }

  private ensureBuffers(batchSize: number, inputSize: number, classes: number): void {
    if (this.xBuf.length !== batchSize * inputSize || this.yBuf.length !== batchSize * classes) {
      this.xBuf = new Float32Array(batchSize * inputSize)
      this.yBuf = new Float32Array(batchSize * classes)
    }
    this.inputSize = inputSize
    this.classes = classes
  }

  /** Copies the next batch into the buffers (one-hot labels), reshuffling at epoch ends. */
  private fillBatch(batchSize: number, rng: Rng): void {
    const { labels } = this.rows
    const size = this.inputSize
    this.yBuf.fill(0)
    for (let k = 0; k < batchSize; k++) {
      if (this.cursor >= this.order.length) {
        shuffleInt32(this.order, rng)
        this.cursor = 0
      }
      const i = this.order[this.cursor++]
      this.rows.write(i, this.xBuf, k * size)
      this.yBuf[k * this.classes + labels[i]] = 1
    }
  }
}

function shuffleInt32(a: Int32Array, rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1))
    const t = a[i]
    a[i] = a[j]
    a[j] = t
  }
}

/** One optimizer step on a batch (features, one-hot labels); returns the batch's loss. */
type Step = (xs: Float32Array, ys: Float32Array) => number

/**
 * A zoo MLP steps through its hand-written backward pass (mlp-step.ts); any other model through
 * tfjs's autodiff of the loss below.
 */
function stepFunction(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  batchShape: number[],
  batchSize: number,
  classes: number,
  autodiff: boolean,
): Step {
  const mlp = autodiff ? undefined : mlpVariables(model)
  if (mlp !== undefined) return (xs, ys) => mlpStep(optimizer, mlp, xs, ys, batchSize)
  const layers = trainingLayers(model)
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable)
  return (xBuf, yBuf) => {
    const cost = tf.tidy(() => {
      const xs = tf.tensor(xBuf, batchShape, 'float32')
      const ys = tf.tensor2d(yBuf, [batchSize, classes], 'float32')
      // returnCost = true: never null.
      return optimizer.minimize(() => layers.loss(xs, ys), true, vars)!
    })
    const loss = (cost.dataSync() as Float32Array)[0]
    cost.dispose()
    return loss
  }
}

/**
 * The loss the trainer minimises. For zoo models (last layer 'softmax') it runs the
 * layers up to the logits and uses the fused, numerically stable softmax cross-entropy;
 * otherwise it falls back to cross-entropy on the model's probabilities.
 */
function trainingLayers(model: tf.LayersModel): { loss(xs: tf.Tensor, ys: tf.Tensor): tf.Scalar } {
  const all = model.layers
  const last = all[all.length - 1]
  if (last?.name === SOFTMAX_LAYER) {
    const body = all.slice(0, -1)
    return {
      loss(xs, ys) {
        let h = xs
        for (const layer of body) h = layer.apply(h, { training: true }) as tf.Tensor
        return tf.losses.softmaxCrossEntropy(ys, h) as tf.Scalar
      },
    }
  }
  return {
    loss(xs, ys) {
      const probs = model.apply(xs, { training: true }) as tf.Tensor
      return tf.mean(tf.metrics.categoricalCrossentropy(ys, probs)) as tf.Scalar
    },
  }
}
