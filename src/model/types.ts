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
 * permutation specs rely on it); F = product of the input shape, K = classes:
 * - mlp: `dense_0/kernel` [F, hidden], `dense_0/bias` [hidden],
 *        `dense_1/kernel` [hidden, K], `dense_1/bias` [K]; relu hidden, softmax out.
 *        Any input shape: samples are flattened row-major.
 * - cnn: input s x s x 1 -> `conv_0` 3x3 x8 'valid' relu -> maxpool 2 ->
 *        `conv_1` 3x3 x16 'valid' relu -> maxpool 2 (p x p x 16; p = 5 for s = 28) -> flatten
 *        (p*p*16, channels-last, index (h*p + w)*16 + c) -> `dense_0` [p*p*16, hidden] relu ->
 *        `dense_1` [hidden, K] softmax. conv kernels are [kh, kw, in, out]; biases [out].
 * Without `input` and `classes` the spec is MNIST's (28 x 28 x 1, 10 classes).
 */
export interface ArchSpec {
  kind: ArchKind
  /** Hidden units of the dense hidden layer (mlp default 128, cnn default 64). */
  hidden: number
  /** Shape of one sample as the dataset gives it (default [28, 28, 1]). */
  input?: readonly number[]
  /** Number of classes (default 10). */
  classes?: number
  /**
   * Name of the dataset, part of the fingerprint so networks of different tasks never merge;
   * absent (or 'mnist') for MNIST, whose fingerprints predate the tag.
   */
  dataset?: string
}
