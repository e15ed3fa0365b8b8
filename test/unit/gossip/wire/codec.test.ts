import { readFileSync } from 'node:fs'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import {
  DELTA_WIRE_VERSION,
  HARD_MAX_FRAME_BYTES,
  MAX_HEADER_BYTES,
  WIRE_VERSION,
} from '../../../../src/gossip/constants.ts'
import { FrameTooLargeError, toError, verdictOf } from '../../../../src/gossip/errors.ts'
import {
  type DecodeExpectations,
  decodeFrame,
  decodeHeader,
  decodeModel,
  deriveMaxFrameBytes,
  encodeFrame,
  encodeModel,
  encodeVarint,
  HOST_IS_LITTLE_ENDIAN,
  layoutBytes,
  layoutOf,
  ModelHeader,
  readVarint,
} from '../../../../src/gossip/wire/codec.ts'
import { parseCodecSpec } from '../../../../src/gossip/wire/codecs/index.ts'
import { RAW_F32 } from '../../../../src/gossip/wire/codecs/raw-f32.ts'
import { FrameDecoder } from '../../../../src/gossip/wire/frame-decoder.ts'
import type { ModelState } from '../../../../src/model/types.ts'
import { errorName } from '../../error-name.ts'

function fakeState(overrides: Partial<ModelState> = {}): ModelState {
  return {
    arch: 'mlp-test',
    age: 42.5,
    tensors: [
      { name: 'dense_0/kernel', shape: [3, 2], values: Float32Array.from([1, -2, 3.5, 4, 5, -6.25]) },
      { name: 'dense_0/bias', shape: [2], values: Float32Array.from([0.5, -0.5]) },
    ],
    ...overrides,
  }
}

const LAYOUT = layoutOf(fakeState())
const EXPECT: DecodeExpectations = { task: 'mnist', arch: 'mlp-test', layout: LAYOUT }

/** Header bytes for arbitrary (possibly invalid) field values. */
function rawHeader(fields: Partial<ModelHeader>): Uint8Array {
  return ModelHeader.encode({
    version: WIRE_VERSION,
    task: 'mnist',
    arch: 'mlp-test',
    age: 1,
    codec: RAW_F32.id,
    tensors: LAYOUT.map((t) => ({ name: t.name, shape: [...t.shape], slices: [] })),
    ...fields,
  })
}

function payloadOf(state: ModelState): Uint8Array {
  const enc = encodeModel(state, { task: 'mnist' })
  const out = new Uint8Array(enc.payloadBytes)
  let off = 0
  for (const c of enc.chunks) {
    out.set(c, off)
    off += c.byteLength
  }
  return out
}

/** The state test/unit/gossip/wire/fixtures/golden-raw-f32.bin was written from (by the encoder before value codecs existed). */
function goldenState(): ModelState {
  return {
    arch: 'mlp-golden',
    age: 1234.5,
    tensors: [
      {
        name: 'dense_0/kernel',
        shape: [3, 4],
        values: Float32Array.from([
          1,
          -2,
          0.1,
          -0,
          1e-40,
          3.4e38,
          -3.4e38,
          0.333,
          65504,
          1e-5,
          -7.25,
          2 ** -24,
        ]),
      },
      { name: 'dense_0/bias', shape: [4], values: Float32Array.from([0.5, -0.5, 0, 123.456]) },
    ],
  }
}
const GOLDEN_META = {
  task: 'mnist',
  coordinate: { vec: [12.5, -3.25], height: 0.5, error: 0.2 },
  accuracy: 0.875,
}
const GOLDEN = new Uint8Array(readFileSync(new URL('./fixtures/golden-raw-f32.bin', import.meta.url)))

describe('raw-f32 golden frame', () => {
  it('is reproduced byte for byte, by default and when raw-f32 is asked for', () => {
    expect(GOLDEN.byteLength).toBe(184)
    expect(encodeFrame(goldenState(), GOLDEN_META)).toEqual(GOLDEN)
    expect(encodeFrame(goldenState(), { ...GOLDEN_META, codec: parseCodecSpec('raw-f32') })).toEqual(GOLDEN)
  })

  it('decodes to the values, bit for bit, and the metadata it was written from', () => {
    const want = goldenState()
    const { state, meta } = decodeFrame(GOLDEN, { task: 'mnist', arch: 'mlp-golden', layout: layoutOf(want) })
    expect(state.age).toBe(1234.5)
    for (let i = 0; i < want.tensors.length; i++) {
      const got = new Uint32Array(Float32Array.from(state.tensors[i]!.values).buffer)
      expect(Array.from(got)).toEqual(Array.from(new Uint32Array(want.tensors[i]!.values.buffer)))
    }
    expect(meta).toEqual({ version: 1, arch: 'mlp-golden', age: 1234.5, codec: 'raw-f32', ...GOLDEN_META })
  })

  it('decodes the same through FrameDecoder, one byte at a time', () => {
    const d = new FrameDecoder({ task: 'mnist' })
    for (let i = 0; i < GOLDEN.byteLength; i++) d.push(GOLDEN.subarray(i, i + 1))
    d.end()
    expect(Array.from(d.result().state.tensors[1]!.values)).toEqual(
      Array.from(goldenState().tensors[1]!.values),
    )
  })
})

/** Protobuf varint bytes of any non-negative integer, padded to `minBytes` when asked. */
function varint(value: bigint, minBytes = 1): number[] {
  const out: number[] = []
  let v = value
  do {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  } while (v > 0n || out.length < minBytes)
  out[out.length - 1]! &= 0x7f
  return out
}

/** A valid header with extra raw protobuf bytes appended (a repeated scalar field's last value wins). */
function headerWith(extra: number[], fields: Partial<ModelHeader> = {}): Uint8Array {
  return Uint8Array.from([...rawHeader(fields), ...extra])
}

/** One TensorInfo entry (field 6) named `name` whose single dimension is the varint `dim`. */
function tensorEntry(name: string, dim: number[]): number[] {
  const nameBytes = [...new TextEncoder().encode(name)]
  const body = [0x0a, nameBytes.length, ...nameBytes, 0x10, ...dim]
  return [0x32, body.length, ...body]
}

describe('varints too wide for their field', () => {
  const cases: Array<[string, () => Uint8Array, DecodeExpectations, string]> = [
    [
      'a codec of 2^32+1 (not 1)',
      () => headerWith([0x28, ...varint(2n ** 32n + 1n)]),
      EXPECT,
      'MalformedFrameError',
    ],
    [
      'a dimension of 2^32+784 (not 784)',
      () => headerWith(tensorEntry('x', varint(2n ** 32n + 784n)), { tensors: [] }),
      { task: 'mnist' },
      'MalformedFrameError',
    ],
    [
      'a version of 2^32+1 (not 1)',
      () => headerWith([0x08, ...varint(2n ** 32n + 1n)]),
      EXPECT,
      'MalformedFrameError',
    ],
    [
      'a codec of 2^64-1 (-1 as an int32 enum)',
      () => headerWith([0x28, ...varint(2n ** 64n - 1n)]),
      EXPECT,
      'MalformedFrameError',
    ],
    [
      'a tag of 2^32+40 (not field 5)',
      () => headerWith([...varint(2n ** 32n + 40n), 0x01]),
      EXPECT,
      'MalformedFrameError',
    ],
    ['a varint of 11 bytes', () => headerWith([0x28, ...varint(1n, 11)]), EXPECT, 'MalformedFrameError'],
    ['a varint cut by the end of the header', () => headerWith([0x28, 0x81]), EXPECT, 'MalformedFrameError'],
    [
      'a dimension of 2^32-1, which fits (then too large)',
      () => headerWith(tensorEntry('x', varint(2n ** 32n - 1n)), { tensors: [] }),
      { task: 'mnist' },
      'FrameTooLargeError',
    ],
  ]

  it.each(cases)('refuses %s', (_label, header, expect_, name) => {
    expect(errorName(() => decodeHeader(header(), expect_))).toBe(name)
  })

  it('reads zero-padded varints that fit as their value', () => {
    const padded = headerWith([0x28, ...varint(1n, 10), 0x08, ...varint(1n, 6)], { codec: 7, version: 9 })
    expect(decodeHeader(padded, EXPECT).meta).toMatchObject({ version: WIRE_VERSION, codec: 'raw-f32' })
    const dims = decodeHeader(headerWith(tensorEntry('x', varint(784n, 5)), { tensors: [] }), {
      task: 'mnist',
    })
    expect(dims.tensors).toEqual([{ name: 'x', shape: [784] }])
  })
})

describe('model codec', () => {
  it('round-trips a model with its metadata', () => {
    const state = fakeState()
    const coordinate = { vec: [1.5, -2], height: 0.25, error: 0.75 }
    const frame = encodeFrame(state, { task: 'mnist', coordinate, accuracy: 0.9 })
    const { state: got, meta } = decodeFrame(frame, EXPECT)
    expect(got.arch).toBe('mlp-test')
    expect(got.age).toBe(42.5)
    expect(got.tensors.map((t) => t.name)).toEqual(['dense_0/kernel', 'dense_0/bias'])
    expect(got.tensors.map((t) => t.shape)).toEqual([[3, 2], [2]])
    expect(Array.from(got.tensors[0]!.values)).toEqual([1, -2, 3.5, 4, 5, -6.25])
    expect(Array.from(got.tensors[1]!.values)).toEqual([0.5, -0.5])
    expect(meta).toEqual({
      version: WIRE_VERSION,
      task: 'mnist',
      arch: 'mlp-test',
      age: 42.5,
      codec: 'raw-f32',
      coordinate,
      accuracy: 0.9,
    })
  })

  it('carries wantsModel only when set, so a frame without it is the same bytes as before the field', () => {
    const asked = encodeFrame(fakeState(), { task: 'mnist', wantsModel: true })
    expect(decodeFrame(asked, EXPECT).meta.wantsModel).toBe(true)
    const plain = encodeFrame(fakeState(), { task: 'mnist' })
    expect(encodeFrame(fakeState(), { task: 'mnist', wantsModel: false })).toEqual(plain)
    expect(decodeFrame(plain, EXPECT).meta.wantsModel).toBeUndefined()
    // One field more: tag 88 and a 1.
    expect(asked.byteLength).toBe(plain.byteLength + 2)
  })

  it('omits absent coordinate and accuracy', () => {
    const { meta } = decodeFrame(encodeFrame(fakeState(), { task: 'mnist' }), EXPECT)
    expect(meta.coordinate).toBeUndefined()
    expect(meta.accuracy).toBeUndefined()
  })

  it('sends tensor values without copying them on little-endian hosts', () => {
    const state = fakeState()
    const enc = encodeModel(state, { task: 'mnist' })
    expect(enc.payloadBytes).toBe(8 * 4)
    expect(enc.frameBytes).toBe(enc.prefix.byteLength + enc.header.byteLength + 32)
    if (HOST_IS_LITTLE_ENDIAN) expect(enc.chunks[0]!.buffer).toBe(state.tensors[0]!.values.buffer)
  })

  it('refuses to encode a state whose values do not fill its shapes', () => {
    const state = fakeState()
    state.tensors[1]!.values = new Float32Array(3)
    expect(errorName(() => encodeModel(state, { task: 'mnist' }))).toBe('InvalidStateError')
  })

  it('accepts any well-formed layout when none is expected', () => {
    const { state } = decodeFrame(encodeFrame(fakeState(), { task: 'mnist' }), { task: 'mnist' })
    expect(state.tensors).toHaveLength(2)
  })
})

describe('header validation', () => {
  const cases: Array<[string, () => Uint8Array, DecodeExpectations, string]> = [
    [
      'a wrong wire version',
      () => rawHeader({ version: DELTA_WIRE_VERSION + 1 }),
      EXPECT,
      'ProtocolVersionError',
    ],
    [
      'a delta version without a base',
      () => rawHeader({ version: DELTA_WIRE_VERSION }),
      EXPECT,
      'MalformedFrameError',
    ],
    ['a base in a version 1 frame', () => rawHeader({ base: 3 }), EXPECT, 'MalformedFrameError'],
    ['a missing version', () => rawHeader({ version: 0 }), EXPECT, 'ProtocolVersionError'],
    ['another task', () => rawHeader({ task: 'cifar' }), EXPECT, 'TaskMismatchError'],
    ['another arch', () => rawHeader({ arch: 'cnn-test' }), EXPECT, 'ArchMismatchError'],
    ['an unset codec', () => rawHeader({ codec: 0 }), EXPECT, 'UnsupportedCodecError'],
    ['an unknown codec', () => rawHeader({ codec: 7 }), EXPECT, 'UnsupportedCodecError'],
    ['the largest unknown codec', () => rawHeader({ codec: 2 ** 32 - 1 }), EXPECT, 'UnsupportedCodecError'],
    [
      'one tensor too few',
      () => rawHeader({ tensors: [{ name: 'dense_0/kernel', shape: [3, 2], slices: [] }] }),
      EXPECT,
      'ShapeMismatchError',
    ],
    [
      'a renamed tensor',
      () =>
        rawHeader({
          tensors: [
            { name: 'dense_0/kernel', shape: [3, 2], slices: [] },
            { name: 'other', shape: [2], slices: [] },
          ],
        }),
      EXPECT,
      'ShapeMismatchError',
    ],
    [
      'a transposed shape',
      () =>
        rawHeader({
          tensors: [
            { name: 'dense_0/kernel', shape: [2, 3], slices: [] },
            { name: 'dense_0/bias', shape: [2], slices: [] },
          ],
        }),
      EXPECT,
      'ShapeMismatchError',
    ],
    [
      'a huge declared size',
      () => rawHeader({ tensors: [{ name: 'x', shape: [1_000_000, 1_000_000], slices: [] }] }),
      { task: 'mnist' },
      'FrameTooLargeError',
    ],
    [
      'a size just over the configured limit',
      () => rawHeader({ tensors: [{ name: 'x', shape: [1025], slices: [] }] }),
      { task: 'mnist', maxFrameBytes: 4096 },
      'FrameTooLargeError',
    ],
    ['no tensors', () => rawHeader({ tensors: [] }), { task: 'mnist' }, 'MalformedFrameError'],
    [
      'a zero dimension',
      () => rawHeader({ tensors: [{ name: 'x', shape: [0, 3], slices: [] }] }),
      { task: 'mnist' },
      'MalformedFrameError',
    ],
    [
      'a duplicate name',
      () =>
        rawHeader({
          tensors: [
            { name: 'x', shape: [1], slices: [] },
            { name: 'x', shape: [1], slices: [] },
          ],
        }),
      { task: 'mnist' },
      'MalformedFrameError',
    ],
    [
      'an empty name',
      () => rawHeader({ tensors: [{ name: '', shape: [1], slices: [] }] }),
      { task: 'mnist' },
      'MalformedFrameError',
    ],
    ['a negative age', () => rawHeader({ age: -1 }), EXPECT, 'MalformedFrameError'],
    ['a NaN age', () => rawHeader({ age: Number.NaN }), EXPECT, 'MalformedFrameError'],
    ['an infinite age', () => rawHeader({ age: Number.POSITIVE_INFINITY }), EXPECT, 'MalformedFrameError'],
    ['an accuracy above 1', () => rawHeader({ accuracy: 1.5 }), EXPECT, 'MalformedFrameError'],
    [
      'a non-finite coordinate',
      () => rawHeader({ coordinate: { vec: [Number.NaN, 0], height: 0, error: 1 } }),
      EXPECT,
      'MalformedFrameError',
    ],
    [
      'garbage bytes',
      () => Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x07]),
      EXPECT,
      'MalformedFrameError',
    ],
    [
      'a header over the header limit',
      () => new Uint8Array(MAX_HEADER_BYTES + 1),
      EXPECT,
      'FrameTooLargeError',
    ],
  ]

  it.each(cases)('rejects %s', (_label, header, expect_, name) => {
    expect(errorName(() => decodeHeader(header(), expect_))).toBe(name)
  })

  it('accepts the same header when it is valid', () => {
    const h = decodeHeader(rawHeader({}), EXPECT)
    expect(h.payloadBytes).toBe(32)
    expect(h.tensors).toEqual(LAYOUT)
  })

  it('maps errors to Lodestar-style verdicts', () => {
    const verdict = (header: Uint8Array, e: DecodeExpectations = EXPECT): string => {
      try {
        decodeHeader(header, e)
      } catch (err) {
        return verdictOf(err)
      }
      return 'accept'
    }
    expect(verdict(rawHeader({ task: 'cifar' }))).toBe('ignore')
    expect(verdict(rawHeader({ arch: 'cnn-test' }))).toBe('ignore')
    expect(verdict(rawHeader({ version: 9 }))).toBe('ignore')
    expect(verdict(rawHeader({ age: -1 }))).toBe('reject')
    expect(
      verdict(
        rawHeader({
          tensors: [
            { name: 'dense_0/kernel', shape: [2, 3], slices: [] },
            { name: 'dense_0/bias', shape: [2], slices: [] },
          ],
        }),
      ),
    ).toBe('reject')
    expect(verdict(rawHeader({}))).toBe('accept')
    expect(verdictOf(new FrameTooLargeError('x'))).toBe('reject')
    expect(verdictOf(new Error('stream reset'))).toBe('ignore')
  })
})

describe('payload validation', () => {
  const header = (): Uint8Array => encodeModel(fakeState(), { task: 'mnist' }).header

  it.each([
    ['NaN', Number.NaN],
    ['+Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('rejects a %s value', (_label, bad) => {
    const state = fakeState()
    state.tensors[1]!.values[1] = bad
    expect(errorName(() => decodeModel(header(), payloadOf(state), EXPECT))).toBe('NonFiniteValueError')
  })

  it('accepts extreme finite values and negative zero', () => {
    const state = fakeState()
    state.tensors[0]!.values.set([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0])
    const { state: got } = decodeModel(header(), payloadOf(state), EXPECT)
    expect(got.tensors[0]!.values[0]).toBe(3.4028234663852886e38)
    expect(Object.is(got.tensors[0]!.values[3], -0)).toBe(true)
  })

  it('rejects a payload shorter or longer than the header implies', () => {
    const payload = payloadOf(fakeState())
    expect(errorName(() => decodeModel(header(), payload.subarray(0, 28), EXPECT))).toBe('PayloadLengthError')
    const longer = new Uint8Array(36)
    longer.set(payload)
    expect(errorName(() => decodeModel(header(), longer, EXPECT))).toBe('PayloadLengthError')
  })

  it('decodes a payload at an unaligned offset', () => {
    const payload = payloadOf(fakeState())
    const shifted = new Uint8Array(payload.byteLength + 1)
    shifted.set(payload, 1)
    const { state } = decodeModel(header(), shifted.subarray(1), EXPECT)
    expect(Array.from(state.tensors[1]!.values)).toEqual([0.5, -0.5])
  })
})

describe('framing', () => {
  it('calls a frame cut anywhere truncated', () => {
    const frame = encodeFrame(fakeState(), { task: 'mnist' })
    const headerEnd = frame.byteLength - 32
    for (const cut of [0, 1, 5, headerEnd - 1, headerEnd, headerEnd + 3, frame.byteLength - 1]) {
      expect([cut, errorName(() => decodeFrame(frame.subarray(0, cut), EXPECT))]).toEqual([
        cut,
        'TruncatedFrameError',
      ])
    }
  })

  it('reads padded (non-canonical) length varints and bounds their length', () => {
    expect(readVarint(Uint8Array.from([0x85, 0x80, 0x00]), 0, MAX_HEADER_BYTES)).toEqual({
      value: 5,
      bytesRead: 3,
    })
    expect(readVarint(encodeVarint(300), 0, MAX_HEADER_BYTES)).toEqual({ value: 300, bytesRead: 2 })
    expect(errorName(() => readVarint(Uint8Array.from([0x85, 0x80, 0x80, 0x00]), 0, MAX_HEADER_BYTES))).toBe(
      'MalformedFrameError',
    )
    expect(errorName(() => readVarint(encodeVarint(MAX_HEADER_BYTES + 1), 0, MAX_HEADER_BYTES))).toBe(
      'FrameTooLargeError',
    )
    expect(errorName(() => readVarint(Uint8Array.from([0x85, 0x80]), 0, MAX_HEADER_BYTES))).toBe(
      'TruncatedFrameError',
    )
  })

  it('decodes a frame whose length prefix is padded', () => {
    const enc = encodeModel(fakeState(), { task: 'mnist' })
    expect(enc.header.byteLength).toBeLessThan(128)
    const padded = new Uint8Array([
      enc.header.byteLength | 0x80,
      0x80,
      0x00,
      ...enc.header,
      ...payloadOf(fakeState()),
    ])
    expect(decodeFrame(padded, EXPECT).state.tensors).toHaveLength(2)
  })

  it('derives the frame limit from the layout, capped', () => {
    expect(layoutBytes(LAYOUT)).toBe(32)
    expect(deriveMaxFrameBytes(LAYOUT)).toBeGreaterThan(32)
    expect(deriveMaxFrameBytes(LAYOUT)).toBeLessThan(MAX_HEADER_BYTES * 2)
    expect(deriveMaxFrameBytes()).toBe(HARD_MAX_FRAME_BYTES)
    expect(deriveMaxFrameBytes(LAYOUT, 10 * HARD_MAX_FRAME_BYTES)).toBe(HARD_MAX_FRAME_BYTES)
  })
})

describe('FrameDecoder', () => {
  const frame = encodeFrame(fakeState(), { task: 'mnist', accuracy: 0.5 })

  it('decodes the same model whatever the chunking', () => {
    for (const size of [1, 2, 3, 7, 16, frame.byteLength]) {
      const d = new FrameDecoder(EXPECT)
      for (let off = 0; off < frame.byteLength; off += size) d.push(frame.subarray(off, off + size))
      expect(d.done).toBe(true)
      d.end()
      const { state, meta } = d.result()
      expect(Array.from(state.tensors[0]!.values)).toEqual([1, -2, 3.5, 4, 5, -6.25])
      expect(meta.accuracy).toBe(0.5)
      expect(d.bytesReceived).toBe(frame.byteLength)
    }
  })

  it('takes Uint8ArrayList chunks', () => {
    const d = new FrameDecoder(EXPECT)
    d.push(new Uint8ArrayList(frame.subarray(0, 10), frame.subarray(10)))
    expect(d.result().state.tensors).toHaveLength(2)
  })

  it('validates the header before the payload arrives', () => {
    const bad = encodeFrame(fakeState(), { task: 'cifar' })
    const d = new FrameDecoder(EXPECT)
    const headerEnd = bad.byteLength - 32
    expect(errorName(() => d.push(bad.subarray(0, headerEnd)))).toBe('TaskMismatchError')
  })

  it('rejects a declared size over the limit before allocating it', () => {
    const header = rawHeader({ tensors: [{ name: 'x', shape: [4_000_000_000, 4], slices: [] }] })
    const d = new FrameDecoder({ task: 'mnist' })
    expect(errorName(() => d.push(new Uint8Array([...encodeVarint(header.byteLength), ...header])))).toBe(
      'FrameTooLargeError',
    )
    expect(d.header).toBeUndefined()
  })

  it('rejects bytes after the payload', () => {
    const d = new FrameDecoder(EXPECT)
    d.push(frame)
    expect(errorName(() => d.push(Uint8Array.from([0])))).toBe('PayloadLengthError')
  })

  it('rejects an empty header and an over-long length prefix', () => {
    expect(errorName(() => new FrameDecoder(EXPECT).push(Uint8Array.from([0x00])))).toBe(
      'MalformedFrameError',
    )
    expect(
      errorName(() => new FrameDecoder(EXPECT).push(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff]))),
    ).toBe('MalformedFrameError')
  })

  it('reports truncation at end of input', () => {
    const d = new FrameDecoder(EXPECT)
    d.push(frame.subarray(0, frame.byteLength - 4))
    expect(d.done).toBe(false)
    expect(errorName(() => d.end())).toBe('TruncatedFrameError')
    expect(errorName(() => d.result())).toBe('TruncatedFrameError')
  })

  it.each([1, 3, 64])('rejects a non-finite value as soon as it arrives (chunks of %i bytes)', (size) => {
    const state = fakeState()
    state.tensors[0]!.values[2] = Number.NaN
    const bad = encodeFrame(state, { task: 'mnist' })
    const nanEnd = bad.byteLength - 32 + 3 * 4
    const d = new FrameDecoder(EXPECT)
    let failedAt = -1
    for (let off = 0; off < bad.byteLength && failedAt < 0; off += size) {
      try {
        d.push(bad.subarray(off, off + size))
      } catch (err) {
        expect((err as Error).name).toBe('NonFiniteValueError')
        failedAt = Math.min(off + size, bad.byteLength)
      }
    }
    // Caught with the chunk that completed the NaN, not at the end of the frame.
    expect(failedAt).toBeGreaterThanOrEqual(nanEnd)
    expect(failedAt).toBeLessThan(nanEnd + size)
  })
})

describe('toError', () => {
  it('unwraps a close Event carrying an error and wraps other values', () => {
    const evt = Object.assign(new Event('close'), { error: new Error('reset') })
    expect(toError(evt).message).toBe('reset')
    expect(toError(new Event('close')).message).toBe('stream close event')
    expect(toError('boom')).toBeInstanceOf(Error)
  })
})
