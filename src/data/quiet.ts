/**
 * Quiet features: inputs a data share (almost) never activates. A first-layer weight from an
 * input that is 0 gets no gradient from that sample, so where a feature is 0 in (nearly) every
 * sample of a share, what the node holds for its weights is its initialisation plus what merges
 * brought in, nothing learned there: partial frames leave those weights out
 * (gossip/wire/codecs/partial.ts). MNIST: 67 of the 784 pixels are 0 in every training image, 190
 * in all but 0.1 % of them (the borders).
 */
import { InvalidArgumentError } from '../util/errors.ts'
import type { SampleStore } from './samples.ts'

/**
 * Largest share of a node's samples in which a quiet feature may be non-zero. 0.1 %: a pixel lit
 * in 4 of 3,750 images (MNIST over 16 peers) moves its weights in a few steps of a thousand. With
 * it (209 of 784 pixels quiet per peer) bench:compression's delta frames reached raw-f32's accuracy
 * with 23-30x fewer bytes on eight seeds and ended 0.92 points above the same codec sending every
 * row (docs/BENCHMARKS.md, "Quiet inputs").
 */
export const DEFAULT_QUIET_SHARE = 0.001

/** Per feature of `store`, 1 when it is non-zero in at most `share` of the samples (a share in [0, 1)). */
export function quietFeatures(store: SampleStore, share: number = DEFAULT_QUIET_SHARE): Uint8Array {
  if (!(share >= 0 && share < 1)) throw new InvalidArgumentError(`quiet share ${share}: a number in [0, 1)`)
  const size = store.size
  const active = new Uint32Array(size)
  const row = new Float32Array(size)
  for (let i = 0; i < store.count; i++) {
    store.write(i, row, 0)
    for (let j = 0; j < size; j++) if (row[j] !== 0) active[j]!++
  }
  const limit = share * store.count
  const quiet = new Uint8Array(size)
  for (let j = 0; j < size; j++) if (active[j]! <= limit) quiet[j] = 1
  return quiet
}
