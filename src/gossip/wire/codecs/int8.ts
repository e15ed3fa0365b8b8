/**
 * int8: values as signed bytes with a float32 scale per output unit; a value comes back within
 * max|row| / 254, or within max|row| / 127 with `int8:stochastic` (unbiased). Layout and
 * validation: ./quantized.ts.
 */
import { quantBlockBytes, quantizedCodec, quantMax, quantRows, SCALE_BYTES, STOCHASTIC } from './quantized.ts'

/** The int8 codec (header id 3). */
export const INT8 = quantizedCodec('int8', 3, 8)

/** Largest quantised magnitude. */
export const INT8_MAX = quantMax(8)

/** Bytes of one row scale (float32). */
export const INT8_SCALE_BYTES = SCALE_BYTES

/** The argument that turns on stochastic rounding (`int8:stochastic`). */
export const INT8_STOCHASTIC = STOCHASTIC

/** Rows (scales) of a block: the length of its last axis for rank >= 2, else 1. */
export const int8Rows = quantRows

/** Payload bytes of one block. */
export const int8BlockBytes = (shape: readonly number[]): number => quantBlockBytes(shape, 8)
