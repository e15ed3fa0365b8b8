/**
 * int4: values as signed 4-bit integers (two a byte, low nibble first) with a float32 scale per
 * output unit: half the bytes of int8 for values that come back within max|row| / 14 (or within
 * max|row| / 7 with `int4:stochastic`, unbiased). Layout and validation: ./quantized.ts.
 */
import { quantizedCodec } from './quantized.ts'

/** The int4 codec (header id 4). */
export const INT4 = quantizedCodec('int4', 4, 4)
