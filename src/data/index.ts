/** Public API of the data layer: datasets behind one interface, `--dataset` specs, partitions. No tfjs. */

export { DEFAULT_DATASET, DEFAULT_EVAL_SIZE, DEFAULT_LABEL_COLUMN, MAX_CLASSES } from './constants.ts'
export { type CsvDatasetInit, loadCsvDataset, parseCsv } from './csv.ts'
export {
  DatasetError,
  DatasetNotInstalledError,
  DatasetReadError,
  InvalidDatasetSpecError,
  LabelCountMismatchError,
  LabelOutOfRangeError,
  MalformedCsvError,
  MalformedIdxError,
  SplitMismatchError,
  TooFewClassesError,
} from './errors.ts'
export { FASHION_MNIST_DIR, fashionMnistDataset } from './fashion-mnist.ts'
export { type IdxDatasetInit, type IdxFiles, loadIdxDataset, parseIdx, readDataFile } from './idx.ts'
export { mnistDataset } from './mnist.ts'
export {
  formatPartitionSpec,
  type PartitionOptions,
  type PartitionSpec,
  parsePartitionSpec,
  partition,
} from './partition.ts'
export { DEFAULT_QUIET_SHARE, quietFeatures } from './quiet.ts'
export {
  DATASET_KINDS,
  DATASET_USAGE,
  type DatasetKind,
  type DatasetOption,
  type DatasetSpec,
  formatDatasetSpec,
  loadDataset,
  parseDatasetSpec,
} from './registry.ts'
export { type SampleStore, samplesStore, selectSamples } from './samples.ts'
export { type Dataset, featureSize, type Samples, type Split } from './types.ts'
