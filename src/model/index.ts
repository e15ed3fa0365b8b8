/** Public API of the model layer (no libp2p in here). */

export {
  type Dataset,
  DEFAULT_EVAL_SIZE,
  defaultMnistDir,
  IMAGE_PIXELS,
  type LoadMnistOptions,
  loadMnist,
  loadMnistLabels,
  type MnistSplit,
  parseIdx,
  selectSamples,
  testSubset,
} from '../data/mnist.ts'
export {
  formatPartitionSpec,
  type PartitionOptions,
  type PartitionSpec,
  parsePartitionSpec,
  partition,
} from '../data/partition.ts'
export { createRng, hashSeed, type Rng, randomSeed } from '../util/rng.ts'
export {
  type BackendInfo,
  type BackendInit,
  type BackendPreference,
  initBackend,
  type ModelLogger,
} from './backend.ts'
export { conv2dBackpropFilterNHWC, registerWasmKernels } from './conv-grad.ts'
export { ArchMismatchError, InvalidStateError } from './errors.ts'
export { type EvalResult, type EvaluateOptions, evaluate } from './evaluate.ts'
export {
  assertSameLayout,
  cloneState,
  decodeState,
  encodeState,
  type GetStateOptions,
  getState,
  setState,
  stateByteSize,
  stateDistance,
  stateParamCount,
  validateState,
} from './state.ts'
export {
  DEFAULT_BATCH_SIZE,
  LocalTrainer,
  type LocalTrainerInit,
  type TrainResult,
  type TrainStepsOptions,
} from './train.ts'
export type { ArchKind, ArchSpec, MergeMode, Merger, ModelState, NamedTensor } from './types.ts'
export {
  archFingerprint,
  archTensors,
  type BuildModelOptions,
  buildModel,
  createOptimizer,
  DEFAULT_LEARNING_RATE,
  defaultArch,
  INPUT_DIM,
  initialState,
  inputShape,
  MAX_HIDDEN,
  modelArch,
  NUM_CLASSES,
  namedWeights,
  type OptimizerKind,
  parseArch,
  type TensorSpec,
  validateArch,
} from './zoo.ts'
