/**
 * int2: values as -1, 0 or +1 times a float32 scale per output unit (four a byte, lowest bits
 * first): a value comes back within max|row| / 2. Too coarse for a model's absolute values; made
 * for differences against a reference both ends hold (../delta.ts), where what rounding takes
 * goes out in a later frame. Layout and validation: ./quantized.ts.
 */
import { quantizedCodec } from './quantized.ts'

/** The int2 codec (header id 5). */
export const INT2 = quantizedCodec('int2', 5, 2)
