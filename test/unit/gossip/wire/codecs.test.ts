import { describe, expect, it } from 'vitest'
import {
  decodeFrame,
  decodeHeader,
  encodeFrame,
  encodeModel,
  layoutOf,
  ModelHeader,
} from '../../../../src/gossip/wire/codec.ts'
import { F16, F16_MAX, f16BitsToF32, f32BitsToF16Bits } from '../../../../src/gossip/wire/codecs/f16.ts'
import {
  CODEC_NAMES,
  codecById,
  DEFAULT_CODEC,
  parseCodecSpec,
  SELECTION_CODECS,
  selectionById,
  VALUE_CODECS,
} from '../../../../src/gossip/wire/codecs/index.ts'
import { INT2 } from '../../../../src/gossip/wire/codecs/int2.ts'
import { INT4 } from '../../../../src/gossip/wire/codecs/int4.ts'
import { INT8 } from '../../../../src/gossip/wire/codecs/int8.ts'
import { PARTIAL } from '../../../../src/gossip/wire/codecs/partial.ts'
import { RAW_F32 } from '../../../../src/gossip/wire/codecs/raw-f32.ts'
import { TOPK } from '../../../../src/gossip/wire/codecs/topk.ts'
import { FrameDecoder } from '../../../../src/gossip/wire/frame-decoder.ts'
import type { ModelState } from '../../../../src/model/types.ts'
import { createRng } from '../../../../src/util/rng.ts'
import { errorName } from '../../error-name.ts'

const f32Bits = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0]!
const bitsF32 = (b: number): number => new Float32Array(Uint32Array.of(b).buffer)[0]!
/** A float32 through f16 and back. */
const viaF16 = (x: number): number => f16BitsToF32(f32BitsToF16Bits(f32Bits(x)))

function state(values: number[]): ModelState {
  return {
    arch: 'mlp-test',
    age: 7,
    tensors: [
      { name: 'w', shape: [2, values.length / 2 - 1], values: Float32Array.from(values.slice(0, -2)) },
      { name: 'b', shape: [2], values: Float32Array.from(values.slice(-2)) },
    ],
  }
}
const EXPECT = (s: ModelState) => ({ task: 'mnist', arch: s.arch, layout: layoutOf(s) })
const F16_SPEC = parseCodecSpec('f16')

describe('codec registry', () => {
  it('gives every codec a distinct non-zero id and name', () => {
    expect(VALUE_CODECS.map((c) => c.id)).toEqual([1, 2, 3, 4, 5])
    expect(CODEC_NAMES).toEqual(['raw-f32', 'f16', 'int8', 'int4', 'int2'])
    expect(SELECTION_CODECS.map((c) => [c.id, c.name])).toEqual([
      [1, 'topk'],
      [2, 'partial'],
    ])
    expect(DEFAULT_CODEC).toBe('raw-f32')
    expect(codecById(1)).toBe(RAW_F32)
    expect(codecById(2)).toBe(F16)
    expect(codecById(3)).toBe(INT8)
    expect(codecById(0)).toBeUndefined()
    expect(codecById(4)).toBe(INT4)
    expect(codecById(5)).toBe(INT2)
    expect(codecById(6)).toBeUndefined()
    expect(selectionById(1)).toBe(TOPK)
    expect(selectionById(2)).toBe(PARTIAL)
    expect(selectionById(3)).toBeUndefined()
  })

  it('parses specs into encoders', () => {
    expect(parseCodecSpec('raw-f32').codec).toBe(RAW_F32)
    expect(F16_SPEC.codec).toBe(F16)
    expect(F16_SPEC.spec).toBe('f16')
    expect(F16_SPEC.selection).toBeUndefined()
    const composed = parseCodecSpec('partial:0.1+int8')
    expect([composed.spec, composed.codec, composed.selection]).toEqual(['partial:0.1+int8', INT8, PARTIAL])
    const topk = parseCodecSpec('topk:0.25')
    expect([topk.spec, topk.codec, topk.selection]).toEqual(['topk:0.25', RAW_F32, TOPK])
    expect(parseCodecSpec('topk:0.5+raw-f32').spec).toBe('topk:0.5')
    expect(parseCodecSpec('int8:stochastic').spec).toBe('int8:stochastic')
    expect(parseCodecSpec('topk:1+f16').spec).toBe('topk:1+f16')
  })

  it.each([
    '',
    'f32',
    'F16',
    'f16:2',
    'raw-f32:',
    'int8:2',
    'topk',
    'topk:0',
    'topk:1.5',
    'topk:x',
    'partial:-0.1',
    'partial:0.1+topk:0.1',
    'int8+topk:0.1',
    'f16+int8',
    'topk:0.1+int8+f16',
    'partial:0.1+',
  ])("refuses the spec '%s'", (spec) => {
    expect(errorName(() => parseCodecSpec(spec))).toBe('InvalidCodecSpecError')
  })

  it('declares payload sizes from the layout alone', () => {
    const layout = [
      { name: 'a', shape: [784, 128] },
      { name: 'b', shape: [128] },
    ]
    expect(RAW_F32.payloadBytes(layout)).toBe((784 * 128 + 128) * 4)
    expect(F16.payloadBytes(layout)).toBe((784 * 128 + 128) * 2)
  })

  it('refuses a frame in a codec this node does not know, before its payload', () => {
    const header = encodeModel(state([1, 2, 3, 4]), { task: 'mnist' }).header
    // Field 5 (codec) appended: the last value wins.
    const unknown = Uint8Array.from([...header, 0x28, 0x09])
    expect(errorName(() => decodeHeader(unknown, { task: 'mnist' }))).toBe('UnsupportedCodecError')
    const d = new FrameDecoder({ task: 'mnist' })
    expect(errorName(() => d.push(Uint8Array.from([unknown.byteLength, ...unknown])))).toBe(
      'UnsupportedCodecError',
    )
  })
})

describe('f16 conversion', () => {
  it('keeps every finite half exactly, signed zeros included', () => {
    const changed: number[] = []
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) !== 0x7c00 && f32BitsToF16Bits(f32Bits(f16BitsToF32(h))) !== h) changed.push(h)
    }
    expect(changed).toEqual([])
    expect(Object.is(viaF16(-0), -0)).toBe(true)
  })

  it('stays within a relative error of 2^-11 in the normal range, 2^-25 absolute below it', () => {
    const rng = createRng(11)
    let worstRelative = 0
    let worstAbsolute = 0
    const signFlips: number[] = []
    for (let i = 0; i < 200_000; i++) {
      // Log-uniform magnitudes over the whole half range, both signs.
      const x = Math.fround((rng.next() < 0.5 ? -1 : 1) * 2 ** (-30 + rng.next() * 45.999))
      const y = viaF16(x)
      if (Math.abs(x) >= 2 ** -14) worstRelative = Math.max(worstRelative, Math.abs(y - x) / Math.abs(x))
      else worstAbsolute = Math.max(worstAbsolute, Math.abs(y - x))
      if (y !== 0 && Math.sign(y) !== Math.sign(x)) signFlips.push(x)
    }
    expect(worstRelative).toBeLessThanOrEqual(2 ** -11)
    expect(worstRelative).toBeGreaterThan(2 ** -12) // the bound is tight: rounding does happen
    expect(worstAbsolute).toBeLessThanOrEqual(2 ** -25)
    expect(signFlips).toEqual([])
  })

  it('rounds to the nearest half, ties to even', () => {
    const nearest = (bits: number): void => {
      const x = bitsF32(bits)
      const h = f32BitsToF16Bits(bits)
      const err = Math.abs(f16BitsToF32(h) - x)
      const mag = h & 0x7fff
      for (const n of [mag - 1, mag + 1]) {
        if (n < 0 || n > 0x7bff) continue
        const other = Math.abs(f16BitsToF32((h & 0x8000) | n) - x)
        if (other < err || (other === err && (h & 1) === 1)) {
          throw new Error(
            `0x${bits.toString(16)} -> 0x${h.toString(16)}, 0x${n.toString(16)} is nearer or even`,
          )
        }
      }
    }
    // Every midpoint between two adjacent finite halves (a tie), and one float32 step either side.
    for (let h = 0; h < 0x7bff; h++) {
      const mid = f32Bits((f16BitsToF32(h) + f16BitsToF32(h + 1)) / 2)
      for (const b of [mid - 1, mid, mid + 1]) {
        nearest(b)
        nearest(b | 0x80000000)
      }
    }
    // A spread of float32 patterns from 0 to 65504.
    for (let b = 0; b <= 0x477fe000; b += 8191) nearest(b)
  })

  it('clamps finite values beyond +-65504 and keeps NaN and +-Inf non-finite', () => {
    expect(viaF16(65519)).toBe(F16_MAX)
    expect(viaF16(65520)).toBe(F16_MAX)
    expect(viaF16(1e30)).toBe(F16_MAX)
    expect(viaF16(-3.4e38)).toBe(-F16_MAX)
    expect(f32BitsToF16Bits(f32Bits(Number.POSITIVE_INFINITY))).toBe(0x7c00)
    expect(f32BitsToF16Bits(f32Bits(Number.NEGATIVE_INFINITY))).toBe(0xfc00)
    expect(Number.isNaN(viaF16(Number.NaN))).toBe(true)
    expect(viaF16(2 ** -25)).toBe(0)
    expect(viaF16(2 ** -25 * 1.0001)).toBe(2 ** -24)
  })
})

describe('f16 frames', () => {
  const values = [1, -2, 0.1, Math.PI, -65504, 1e-5, 7e4, 0.5, -0.25, 2 ** -20]
  const s = state(values)

  it('take half the payload bytes of raw-f32 and decode within f16 precision', () => {
    const raw = encodeModel(s, { task: 'mnist' })
    const half = encodeModel(s, { task: 'mnist', codec: F16_SPEC })
    expect(half.payloadBytes).toBe(raw.payloadBytes / 2)
    expect(half.frameBytes).toBe(half.prefix.byteLength + half.header.byteLength + half.payloadBytes)
    const { state: got, meta } = decodeFrame(encodeFrame(s, { task: 'mnist', codec: F16_SPEC }), EXPECT(s))
    expect(meta.codec).toBe('f16')
    const flat = [...got.tensors[0]!.values, ...got.tensors[1]!.values]
    const clamped = values.map((v) => Math.max(-F16_MAX, Math.min(F16_MAX, v)))
    flat.forEach((y, i) => {
      const x = Math.fround(clamped[i]!)
      const bound = Math.abs(x) >= 2 ** -14 ? Math.abs(x) * 2 ** -11 : 2 ** -25
      expect(Math.abs(y - x)).toBeLessThanOrEqual(bound)
    })
    expect(got.tensors.map((t) => t.shape)).toEqual([[2, 4], [2]])
  })

  it('decode the same whatever the chunking, odd splits included', () => {
    const frame = encodeFrame(s, { task: 'mnist', codec: F16_SPEC })
    const whole = decodeFrame(frame, EXPECT(s)).state
    for (const size of [1, 2, 3, 5, frame.byteLength]) {
      const d = new FrameDecoder(EXPECT(s))
      for (let off = 0; off < frame.byteLength; off += size) d.push(frame.subarray(off, off + size))
      d.end()
      const got = d.result().state
      expect(got.tensors.map((t) => Array.from(t.values))).toEqual(
        whole.tensors.map((t) => Array.from(t.values)),
      )
    }
  })

  it.each([1, 3, 64])('refuse a NaN or Inf half as soon as its bytes arrive (chunks of %i bytes)', (size) => {
    const bad = state(values)
    bad.tensors[0]!.values[3] = Number.POSITIVE_INFINITY
    const frame = encodeFrame(bad, { task: 'mnist', codec: F16_SPEC })
    const payloadStart = frame.byteLength - 2 * values.length
    const infEnd = payloadStart + 4 * 2
    const d = new FrameDecoder(EXPECT(bad))
    let failedAt = -1
    for (let off = 0; off < frame.byteLength && failedAt < 0; off += size) {
      try {
        d.push(frame.subarray(off, off + size))
      } catch (err) {
        expect((err as Error).name).toBe('NonFiniteValueError')
        failedAt = Math.min(off + size, frame.byteLength)
      }
    }
    expect(failedAt).toBeGreaterThanOrEqual(infEnd)
    expect(failedAt).toBeLessThan(infEnd + size)
    // A NaN half written by hand is refused the same way.
    const nan = frame.slice()
    nan.set([0x00, 0x7e], payloadStart)
    nan.set([0x00, 0x3c], infEnd - 2)
    expect(errorName(() => decodeFrame(nan, EXPECT(bad)))).toBe('NonFiniteValueError')
  })

  it('are truncated or over-long like raw-f32 frames', () => {
    const frame = encodeFrame(s, { task: 'mnist', codec: F16_SPEC })
    expect(errorName(() => decodeFrame(frame.subarray(0, frame.byteLength - 1), EXPECT(s)))).toBe(
      'TruncatedFrameError',
    )
    const d = new FrameDecoder(EXPECT(s))
    d.push(frame.subarray(0, frame.byteLength - 1))
    expect(errorName(() => d.end())).toBe('TruncatedFrameError')
    const e = new FrameDecoder(EXPECT(s))
    e.push(frame)
    expect(errorName(() => e.push(Uint8Array.of(0)))).toBe('PayloadLengthError')
  })

  it('are bounded by the frame limit in decoded float32 bytes as well as on the wire', () => {
    const header = ModelHeader.encode({
      version: 1,
      task: 'mnist',
      arch: 'x',
      age: 1,
      codec: F16.id,
      tensors: [{ name: 'x', shape: [1025], slices: [] }],
    })
    // 2050 wire bytes would fit in 4096, the 4100 bytes they decode to do not.
    expect(errorName(() => decodeHeader(header, { task: 'mnist', maxFrameBytes: 4096 }))).toBe(
      'FrameTooLargeError',
    )
    expect(decodeHeader(header, { task: 'mnist', maxFrameBytes: 8192 }).payloadBytes).toBe(2050)
  })
})
