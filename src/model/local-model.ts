/**
 * One peer's model as the learner sees it: a tfjs model, its data share, its
 * trainer and the fixed evaluation subset, behind the LocalModel interface.
 */
import { partition } from '../data/partition.ts'
import { quietFeatures } from '../data/quiet.ts'
import type { Dataset } from '../data/types.ts'
import { archFingerprint, datasetArch } from './arch.ts'
import { ArchMismatchError } from './errors.ts'
import { evaluate } from './evaluate.ts'
import { createStateProbe, type StateProbe } from './probe.ts'
import { getState, setState } from './state.ts'
import type * as tf from './tf.ts'
import { LocalTrainer } from './train.ts'
import type { ArchSpec, ModelState } from './types.ts'
import { buildModel, createOptimizer } from './zoo.ts'

export interface LocalModelInit {
  /** The network; its input shape and classes must be the dataset's (see datasetArch). */
  arch: ArchSpec
  /** The task's data (loadDataset); this peer decodes only its share of the training split. */
  dataset: Dataset
  /** Partition spec shared by every peer of the network ('iid', 'dirichlet:A', 'shards:K'). */
  partition: string
  peerIndex: number
  peerCount: number
  /** Partition seed: every peer must use the same one so the shares are disjoint. */
  seed: number
  /** Weight initialisation seed (per peer by default; shared for the shared-init baseline). */
  initSeed: number
  /** Batch order seed. */
  trainSeed: number
  batchSize: number
  learningRate: number
  /** Size of the evaluation subset: the first N samples of the test split (all of it when smaller). */
  evalSize: number
  /** Training between yields to the event loop (ms); default the trainer's 10 (TrainStepsOptions.yieldEveryMs). */
  trainSliceMs?: number
}

export interface LocalTfModel {
  readonly model: tf.LayersModel
  readonly arch: string
  readonly trainSamples: number
  train(steps: number, options?: { signal?: AbortSignal }): Promise<{ samples: number; loss: number }>
  getState(): ModelState
  setState(state: ModelState): void
  /** A fresh optimizer (Adam moments reset): after a rollback, moments of an exploded model must go too. */
  resetOptimizer(): void
  getAge(): number
  evaluate(): Promise<number>
  /** Accuracy of any state of this architecture on a fixed batch of this peer's share (synchronous). */
  probeAccuracy(state: ModelState): number
  /** Per input feature, 1 where this peer's share is non-zero in at most `share` of its samples (data/quiet.ts). */
  quietInputs(share: number): Uint8Array
  dispose(): void
}

/**
 * Load this peer's share of the data and build its model. ArchMismatchError when the
 * architecture does not fit the dataset's samples or classes.
 */
export async function createLocalModel(init: LocalModelInit): Promise<LocalTfModel> {
  const { dataset } = init
  const arch = archFingerprint(init.arch)
  const expected = archFingerprint(datasetArch(init.arch.kind, dataset, init.arch.hidden))
  if (arch !== expected) {
    throw new ArchMismatchError(`architecture ${arch} does not fit dataset ${dataset.name} (${expected})`)
  }
  // Partition on the labels alone, then copy only this peer's rows, still as bytes for images
  // (MNIST, 8 peers: 5.9 MB, not 23.5 MB of floats); the trainer decodes a batch at a time.
  const shares = partition(dataset.trainLabels(), {
    spec: init.partition,
    peers: init.peerCount,
    seed: init.seed,
  })
  const mine = dataset.trainShare(shares[init.peerIndex]!)
  const evalData = dataset.testShare(init.evalSize)
  const trainer = new LocalTrainer({ data: mine, seed: init.trainSeed })
  // Built on first use: only the robust merge asks, and a scratch model costs memory per hosted peer.
  let probe: StateProbe | undefined
  const model = buildModel(init.arch, { seed: init.initSeed, learningRate: init.learningRate })
  // The closures below capture these, not `init`: `init.dataset` (the whole training split) must
  // not stay reachable from a running model, or the dataset is never freed.
  const { batchSize, learningRate, arch: spec, trainSliceMs } = init
  let age = 0
  return {
    model,
    arch,
    trainSamples: mine.count,
    async train(steps, options) {
      const r = await trainer.trainSteps(model, {
        steps,
        batchSize,
        signal: options?.signal,
        yieldEveryMs: trainSliceMs,
      })
      age += r.samples
      return { samples: r.samples, loss: r.loss }
    },
    getState: () => getState(model, { arch, age }),
    setState(state) {
      setState(model, state)
      age = state.age
    },
    resetOptimizer() {
      const old = model.optimizer
      model.optimizer = createOptimizer('adam', learningRate)
      old?.dispose()
    },
    getAge: () => age,
    async evaluate() {
      return (await evaluate(model, evalData)).accuracy
    },
    probeAccuracy(state) {
      probe ??= createStateProbe(spec, mine)
      return probe.accuracy(state)
    },
    quietInputs: (share) => quietFeatures(mine, share),
    dispose: () => {
      probe?.dispose()
      model.dispose()
    },
  }
}
