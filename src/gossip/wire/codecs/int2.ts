/**
 * int2: values as -1, 0 or +1 times a float32 scale per output unit, five a byte in base 3
 * (1.6 bits a value), the threshold and scale fitted to each row. Too coarse for a model's absolute values; made
 * for differences against a reference both ends hold (../delta.ts), where what rounding takes
 * goes out in a later frame. Layout and validation: ./quantized.ts.
 */
import { quantizedCodec } from './quantized.ts'

/** The int2 codec (header id 5). */
export const INT2 = quantizedCodec('int2', 5, 2)
