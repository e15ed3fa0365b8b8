import { createRng } from '../../../src/util/rng.ts'

/** Seeded batches of features in [-1, 1) and one-hot labels, for comparing two ways of stepping. */
export function toyBatches(
  n: number,
  seed: number,
  shape: { batch: number; inputs: number; classes: number },
): Array<{ xs: Float32Array; ys: Float32Array }> {
  const { batch, inputs, classes } = shape
  const rng = createRng(seed)
  return Array.from({ length: n }, () => {
    const xs = Float32Array.from({ length: batch * inputs }, () => rng.next() * 2 - 1)
    const ys = new Float32Array(batch * classes)
    for (let k = 0; k < batch; k++) ys[k * classes + Math.floor(rng.next() * classes)] = 1
    return { xs, ys }
  })
}

/** The largest absolute difference between two arrays of one length. */
export function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]))
  return d
}
