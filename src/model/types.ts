/** Plain-number view of a network, independent of tfjs and of libp2p. */

/** One named weight tensor, row-major (tfjs order), float32. */
export interface NamedTensor {
  name: string
  shape: number[]
  values: Float32Array
}

/**
 * A model as numbers. `arch` fingerprints architecture + tensor names/shapes:
 * two states merge only when their fingerprints are equal. `age` counts the
 * training samples that went into this model (sum over its history, weighted
 * by merges), so a = t_r / (t + t_r) weighs a received model by its experience.
 */
export interface ModelState {
  arch: string
  age: number
  tensors: NamedTensor[]
}

/** Architecture kinds in the model zoo. */
export type ArchKind = 'mlp' | 'cnn'

/**
 * How to build a network. Tensor naming is fixed (the wire, checkpoints and
 * permutation specs rely on it):
 * - mlp: `dense_0/kernel` [784, hidden], `dense_0/bias` [hidden],
 *        `dense_1/kernel` [hidden, 10], `dense_1/bias` [10]; relu hidden, softmax out.
 * - cnn: input 28x28x1 -> `conv_0` 3x3 x8 'valid' relu -> maxpool 2 ->
 *        `conv_1` 3x3 x16 'valid' relu -> maxpool 2 (5x5x16) -> flatten (400, channels-last,
 *        index (h*5 + w)*16 + c) -> `dense_0` [400, hidden] relu -> `dense_1` [hidden, 10] softmax.
 *        conv kernels are [kh, kw, in, out]; biases [out].
 */
export interface ArchSpec {
  kind: ArchKind
  /** Hidden units of the dense hidden layer (mlp default 128, cnn default 64). */
  hidden: number
}

/** Merge pipelines selectable from configuration (issue 3 adds align/varcorr). */
export type MergeMode = 'plain' | 'align' | 'varcorr' | 'align+varcorr'

/**
 * Combines the local model with received ones into a new local model. Pure:
 * never mutates its inputs. Throws ArchMismatchError when fingerprints differ.
 */
export type Merger = (local: ModelState, received: ModelState[]) => ModelState
