/** Public API of the model layer (no libp2p in here). */

export { createRng, hashSeed, type Rng, randomSeed } from '../util/rng.ts'
export {
  type BackendInfo,
  type BackendInit,
  type BackendMemory,
  type BackendPreference,
  backendMemory,
  initBackend,
  type ModelLogger,
} from './backend.ts'
export { conv2dBackpropFilterNHWC, registerWasmKernels } from './conv-grad.ts'
export { ArchMismatchError, InvalidStateError, UnsupportedInputError } from './errors.ts'
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
export type { ArchKind, ArchSpec, ModelState, NamedTensor } from './types.ts'
export {
  ARCH_KINDS,
  archClasses,
  archFingerprint,
  archInput,
  archTensors,
  type BuildModelOptions,
  buildModel,
  createOptimizer,
  type DatasetShape,
  DEFAULT_ARCH_KIND,
  DEFAULT_LEARNING_RATE,
  datasetArch,
  defaultArch,
  INPUT_DIM,
  initialState,
  inputShape,
  MAX_FEATURES,
  MAX_HIDDEN,
  modelArch,
  NUM_CLASSES,
  namedWeights,
  type OptimizerKind,
  parseArch,
  type TensorSpec,
  validateArch,
} from './zoo.ts'
