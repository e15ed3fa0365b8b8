import { describe, expect, it } from 'vitest'
import { WIRE_VERSION } from '../../../../src/gossip/constants.ts'
import {
  decodeFrame,
  decodeHeader,
  encodeFrame,
  encodeModel,
  encodeVarint,
  joinFrame,
  layoutOf,
  ModelHeader,
} from '../../../../src/gossip/wire/codec.ts'
import { parseCodecSpec } from '../../../../src/gossip/wire/codecs/index.ts'
import { int8Rows } from '../../../../src/gossip/wire/codecs/int8.ts'
import {
  indexWidth,
  sliceCount,
  slicedPositions,
  sliceMask,
} from '../../../../src/gossip/wire/codecs/selection.ts'
import { largest } from '../../../../src/gossip/wire/codecs/topk.ts'
import { FrameDecoder } from '../../../../src/gossip/wire/frame-decoder.ts'
import type { MaskedState } from '../../../../src/merge/masks.ts'
import { maskPositions } from '../../../../src/merge/masks.ts'
import { initialState } from '../../../../src/model/arch.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import { createRng } from '../../../../src/util/rng.ts'
import { errorName } from '../../error-name.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 4, input: [6], classes: 3 }
const CNN: ArchSpec = { kind: 'cnn', hidden: 5 }

/** A zoo state with random values everywhere (biases included). */
function randomState(arch: ArchSpec, seed: number): ModelState {
  const s = initialState(arch, seed)
  const rng = createRng(seed + 1000)
  for (const t of s.tensors) for (let k = 0; k < t.values.length; k++) t.values[k] = rng.normal() * 0.3
  return { ...s, age: 17 }
}

const expectFor = (s: ModelState) => ({ task: 'mnist', arch: s.arch, layout: layoutOf(s) })

function roundTrip(state: ModelState, spec: string): MaskedState {
  return decodeFrame(
    encodeFrame(state, { task: 'mnist', codec: parseCodecSpec(spec, { seed: 5 }) }),
    expectFor(state),
  ).state
}

/** `frame` fed to a FrameDecoder `size` bytes at a time. */
function decodeInChunks(frame: Uint8Array, size: number, s: ModelState): MaskedState {
  const d = new FrameDecoder(expectFor(s))
  for (let off = 0; off < frame.byteLength; off += size) d.push(frame.subarray(off, off + size))
  d.end()
  return d.result().state
}

describe('int8', () => {
  it('keeps each value within max|row| / 254 and sends one scale per output unit', () => {
    const s = randomState(MLP, 1)
    const enc = encodeModel(s, { task: 'mnist', codec: parseCodecSpec('int8') })
    // dense_0/kernel [6,4]: 4 scales + 24 bytes; bias [4]: 1 + 4; dense_1/kernel [4,3]: 3 + 12; bias [3]: 1 + 3.
    expect(enc.payloadBytes).toBe(4 * 4 + 24 + 4 + 4 + 3 * 4 + 12 + 4 + 3)
    const got = roundTrip(s, 'int8')
    expect(got.masks).toBeUndefined()
    s.tensors.forEach((t, i) => {
      const rows = int8Rows(t.shape)
      const max = new Array(rows).fill(0)
      t.values.forEach((v, k) => {
        max[k % rows] = Math.max(max[k % rows], Math.abs(v))
      })
      t.values.forEach((v, k) => {
        expect(Math.abs(got.tensors[i]!.values[k]! - v)).toBeLessThanOrEqual((max[k % rows] / 254) * 1.0001)
      })
      // The largest value of each row comes back exactly (+-127 * scale).
      const worst = Math.max(
        ...t.values.map((v, k) => Math.abs(got.tensors[i]!.values[k]! - v) / max[k % rows]),
      )
      expect(worst).toBeGreaterThan(0)
    })
  })

  it('int4 halves the value bytes and keeps each value within max|row| / 14, odd blocks included', () => {
    const s = randomState(MLP, 11)
    const enc = encodeModel(s, { task: 'mnist', codec: parseCodecSpec('int4') })
    // Same scales as int8; values two a byte, each block rounded up to whole bytes (bias [3]: 2 bytes).
    expect(enc.payloadBytes).toBe(4 * 4 + 12 + 4 + 2 + 3 * 4 + 6 + 4 + 2)
    const frame = encodeFrame(s, { task: 'mnist', codec: parseCodecSpec('int4') })
    for (const size of [1, 2, 5, frame.byteLength]) {
      const got = decodeInChunks(frame, size, s)
      s.tensors.forEach((t, i) => {
        const rows = int8Rows(t.shape)
        const max = new Array(rows).fill(0)
        t.values.forEach((v, k) => {
          max[k % rows] = Math.max(max[k % rows], Math.abs(v))
        })
        t.values.forEach((v, k) => {
          expect(Math.abs(got.tensors[i]!.values[k]! - v)).toBeLessThanOrEqual((max[k % rows] / 14) * 1.0001)
        })
      })
    }
  })

  it('int2 packs five values a byte in base 3 as -1, 0 or +1 times a scale fitted to each row', () => {
    const s = randomState(MLP, 12)
    const enc = encodeModel(s, { task: 'mnist', codec: parseCodecSpec('int2') })
    // Same scales as int8; values five a byte (kernel [6,4]: 24 values, 5 bytes; bias [4]: 1; [4,3]: 3; bias [3]: 1).
    expect(enc.payloadBytes).toBe(4 * 4 + 5 + 4 + 1 + 3 * 4 + 3 + 4 + 1)
    const frame = encodeFrame(s, { task: 'mnist', codec: parseCodecSpec('int2') })
    for (const size of [1, 3, frame.byteLength]) {
      const got = decodeInChunks(frame, size, s)
      s.tensors.forEach((t, i) => {
        const rows = int8Rows(t.shape)
        const per = t.values.length / rows
        for (let r = 0; r < rows; r++) {
          const row = t.values.filter((_, k) => k % rows === r)
          const back = got.tensors[i]!.values.filter((_, k) => k % rows === r)
          // Beyond 0.7 x mean |v| a value goes out as its sign times the mean |v| of such values.
          const threshold = (0.7 * row.reduce((a, v) => a + Math.abs(v), 0)) / per
          const big = row.filter((v) => Math.abs(v) > threshold)
          const scale = big.reduce((a, v) => a + Math.abs(v), 0) / big.length
          row.forEach((v, k) => {
            expect(back[k]).toBeCloseTo(Math.abs(v) > threshold ? Math.sign(v) * scale : 0, 6)
          })
        }
      })
    }
  })

  it('int2 refuses a byte above 242 (five ternary values end at 3^5 - 1) as soon as it arrives', () => {
    const s = randomState(MLP, 13)
    const frame = encodeFrame(s, { task: 'mnist', codec: parseCodecSpec('int2') })
    // The first kernel's bytes follow its 4 scales: the payload's 17th byte.
    const at = frame.byteLength - (4 * 4 + 5 + 4 + 1 + 3 * 4 + 3 + 4 + 1) + 4 * 4
    for (const byte of [242, 243, 255]) {
      const bad = frame.slice()
      bad[at] = byte
      const d = new FrameDecoder(expectFor(s))
      const name = errorName(() => d.push(bad.subarray(0, at + 1)))
      expect(name).toBe(byte === 242 ? 'no error' : 'ValueRangeError')
    }
  })

  it('int2 on rows of a model layer has a third of the squared error of -1/0/+1 x max|row|', () => {
    // Two units of 784 inputs, normal values (a layer's change between two pushes).
    const rng = createRng(3)
    const w = { name: 'w', shape: [784, 2], values: Float32Array.from({ length: 1568 }, () => rng.normal()) }
    const s: ModelState = { arch: 'x', age: 1, tensors: [w] }
    const back = roundTrip(s, 'int2').tensors[0]!.values
    let fitted = 0
    let maxScaled = 0
    for (let r = 0; r < 2; r++) {
      const max = Math.max(...w.values.filter((_, k) => k % 2 === r).map(Math.abs))
      w.values.forEach((v, k) => {
        if (k % 2 !== r) return
        fitted += (back[k]! - v) ** 2
        maxScaled += ((Math.abs(v) >= max / 2 ? Math.sign(v) * max : 0) - v) ** 2
      })
    }
    expect(fitted).toBeLessThan(maxScaled / 3)
  })

  it('decodes a zero row as zeros and the same whatever the chunking', () => {
    const s = randomState(MLP, 2)
    for (let r = 0; r < 6; r++) s.tensors[0]!.values[r * 4 + 1] = 0
    const frame = encodeFrame(s, { task: 'mnist', codec: parseCodecSpec('int8') })
    const whole = decodeFrame(frame, expectFor(s)).state
    expect(Array.from({ length: 6 }, (_, r) => whole.tensors[0]!.values[r * 4 + 1])).toEqual([
      0, 0, 0, 0, 0, 0,
    ])
    for (const size of [1, 3, 7]) {
      const d = new FrameDecoder(expectFor(s))
      for (let off = 0; off < frame.byteLength; off += size) d.push(frame.subarray(off, off + size))
      d.end()
      expect(d.result().state.tensors.map((t) => Array.from(t.values))).toEqual(
        whole.tensors.map((t) => Array.from(t.values)),
      )
    }
  })

  it('with stochastic rounding stays within one scale and is unbiased', () => {
    const s = randomState(MLP, 3)
    const encoder = parseCodecSpec('int8:stochastic', { seed: 9 })
    const sums = s.tensors.map((t) => new Float64Array(t.values.length))
    const reps = 400
    for (let r = 0; r < reps; r++) {
      const got = decodeFrame(encodeFrame(s, { task: 'mnist', codec: encoder }), expectFor(s)).state
      got.tensors.forEach((t, i) => {
        const rows = int8Rows(t.shape)
        const src = s.tensors[i]!.values
        const max = new Array(rows).fill(0)
        src.forEach((v, k) => {
          max[k % rows] = Math.max(max[k % rows], Math.abs(v))
        })
        t.values.forEach((v, k) => {
          expect(Math.abs(v - src[k]!)).toBeLessThan((max[k % rows] / 127) * 1.0001)
          sums[i]![k] += v
        })
      })
    }
    // The mean of 400 draws is within 4 standard errors (scale / (2 sqrt(400)) at most) of the value.
    s.tensors.forEach((t, i) => {
      const rows = int8Rows(t.shape)
      const max = new Array(rows).fill(0)
      t.values.forEach((v, k) => {
        max[k % rows] = Math.max(max[k % rows], Math.abs(v))
      })
      t.values.forEach((v, k) => {
        const scale = max[k % rows] / 127
        expect(Math.abs(sums[i]![k]! / reps - v)).toBeLessThanOrEqual(
          (4 * scale) / (2 * Math.sqrt(reps)) + 1e-7,
        )
      })
    })
  })

  it('refuses a NaN, infinite or negative scale as soon as its bytes arrive', () => {
    const s = randomState(MLP, 4)
    const enc = encodeModel(s, { task: 'mnist', codec: parseCodecSpec('int8') })
    const head = [...enc.prefix, ...enc.header]
    const payload = new Uint8Array(enc.payloadBytes)
    let off = 0
    for (const c of enc.chunks) {
      payload.set(c, off)
      off += c.byteLength
    }
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
      const p = payload.slice()
      new DataView(p.buffer).setFloat32(8, bad, true) // scale 2 of the first block
      const d = new FrameDecoder(expectFor(s))
      d.push(Uint8Array.from(head))
      d.push(p.subarray(0, 11))
      expect(errorName(() => d.push(p.subarray(11, 12)))).toBe('InvalidScaleError')
    }
    // A NaN weight makes its row's scale NaN: the frame is refused like a NaN in raw-f32.
    s.tensors[2]!.values[4] = Number.NaN
    expect(errorName(() => roundTrip(s, 'int8'))).toBe('InvalidScaleError')
  })
})

describe('topk', () => {
  it('carries exactly round(f * size) coordinates per tensor, the largest first, with their indices', () => {
    const s = randomState(MLP, 5)
    const got = roundTrip(s, 'topk:0.25')
    const counts = [6, 1, 3, 1] // round(0.25 * [24, 4, 12, 3]), at least 1
    s.tensors.forEach((t, i) => {
      const mask = got.masks![i]!
      expect(mask.reduce((a, b) => a + b, 0)).toBe(counts[i])
      // First push: the reference is zero, so the largest magnitudes go out.
      const want = largest(Float32Array.from(t.values, Math.abs), counts[i]!)
      expect(Array.from(mask.keys()).filter((k) => mask[k] === 1)).toEqual(Array.from(want))
      mask.forEach((m, k) => {
        expect(got.tensors[i]!.values[k]).toBe(m === 1 ? t.values[k] : 0)
      })
    })
    const enc = encodeModel(s, { task: 'mnist', codec: parseCodecSpec('topk:0.25') })
    expect(enc.payloadBytes).toBe(counts.reduce((a, c) => a + c * (1 + 4), 0)) // 1-byte indices (sizes <= 256)
  })

  it('composes with f16 and int8 values (within their errors)', () => {
    const s = randomState(MLP, 6)
    for (const [spec, bound] of [
      ['topk:0.5+f16', (x: number) => Math.abs(x) * 2 ** -11],
      ['topk:0.5+int8', (_x: number, max: number) => max / 254 + 1e-9],
    ] as const) {
      const got = roundTrip(s, spec)
      s.tensors.forEach((t, i) => {
        const mask = got.masks![i]!
        const carried = t.values.filter((_, k) => mask[k] === 1)
        const max = Math.max(...carried.map(Math.abs))
        t.values.forEach((v, k) => {
          if (mask[k] === 1)
            expect(Math.abs(got.tensors[i]!.values[k]! - v)).toBeLessThanOrEqual(bound(v, max))
        })
      })
    }
  })

  it('feeds back what it did not send until it is sent', () => {
    // One tensor of 8; topk:0.125 sends one coordinate per push.
    const state: ModelState = {
      arch: 'x',
      age: 1,
      tensors: [{ name: 'w', shape: [8], values: Float32Array.from([8, 7, 6, 5, 4, 3, 2, 1]) }],
    }
    const encoder = parseCodecSpec('topk:0.125')
    const expect1 = { task: 'mnist', arch: 'x', layout: layoutOf(state) }
    const sentOrder: number[] = []
    for (let push = 0; push < 8; push++) {
      const got = decodeFrame(encodeFrame(state, { task: 'mnist', codec: encoder }), expect1).state
      sentOrder.push(got.masks![0]!.indexOf(1))
    }
    // Unchanged values: each goes out once, largest change (from the zero reference) first.
    expect(sentOrder).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    // Now coordinate 7 drifts by 0.12 each push while one other coordinate jumps by 0.5 each
    // time: the drift accumulates against the reference until it outgrows the jumps and goes out.
    const v = state.tensors[0]!.values
    const sent: number[] = []
    for (let push = 0; push < 12; push++) {
      v[7] = v[7]! + 0.12
      v[push % 7] = v[push % 7]! + 0.5
      const got = decodeFrame(encodeFrame(state, { task: 'mnist', codec: encoder }), expect1).state
      const at = got.masks![0]!.indexOf(1)
      sent.push(at)
      expect(got.tensors[0]!.values[at]).toBe(v[at])
    }
    const first = sent.indexOf(7)
    // Sent once its accumulated drift exceeded the 0.5 of a single jump: at the fifth push (0.6), not before.
    expect(first).toBe(4)
    expect(sent.slice(0, first).every((k) => k !== 7)).toBe(true)
  })

  it('refuses malformed index sections before decoding values', () => {
    const s: ModelState = {
      arch: 'x',
      age: 1,
      tensors: [{ name: 'w', shape: [300], values: new Float32Array(300).map((_, i) => i / 300) }],
    }
    expect(indexWidth(300)).toBe(2)
    const header = ModelHeader.encode({
      version: WIRE_VERSION,
      task: 'mnist',
      arch: 'x',
      age: 1,
      codec: 1,
      selection: 1,
      tensors: [{ name: 'w', shape: [300], count: 3, slices: [] }],
    })
    const frame = (indices: number[], values = [1, 2, 3]): Uint8Array =>
      Uint8Array.from([
        ...encodeVarint(header.length),
        ...header,
        ...indices.flatMap((i) => [i & 0xff, i >>> 8]),
        ...new Uint8Array(Float32Array.from(values).buffer),
      ])
    const exp = { task: 'mnist', arch: 'x', layout: layoutOf(s) }
    const ok = decodeFrame(frame([2, 40, 299]), exp).state
    expect(Array.from(ok.masks![0]!.keys()).filter((k) => ok.masks![0]![k] === 1)).toEqual([2, 40, 299])
    expect(ok.tensors[0]!.values[40]).toBe(2)
    expect(errorName(() => decodeFrame(frame([2, 40, 300]), exp))).toBe('SparseIndexRangeError')
    expect(errorName(() => decodeFrame(frame([2, 41, 40]), exp))).toBe('UnsortedIndexError')
    expect(errorName(() => decodeFrame(frame([2, 40, 40]), exp))).toBe('DuplicateIndexError')
    expect(errorName(() => decodeFrame(frame([2, 40, 299], [1, Number.NaN, 3]), exp))).toBe(
      'NonFiniteValueError',
    )
    expect(errorName(() => decodeFrame(frame([2, 40, 299]).subarray(0, header.length + 4), exp))).toBe(
      'TruncatedFrameError',
    )
    // The bad index is refused as soon as its two bytes are in, before any value byte.
    const d = new FrameDecoder(exp)
    const bad = frame([2, 41, 40])
    d.push(bad.subarray(0, 1 + header.length + 4))
    expect(errorName(() => d.push(bad.subarray(1 + header.length + 4, 1 + header.length + 6)))).toBe(
      'UnsortedIndexError',
    )
  })
})

describe('partial', () => {
  it('carries whole units: incoming column, bias and outgoing row together, the most changed first', () => {
    const s = randomState(MLP, 7)
    // Unit 2 has the largest weights (the change from the zero reference).
    for (let r = 0; r < 6; r++) s.tensors[0]!.values[r * 4 + 2] *= 10
    const got = roundTrip(s, 'partial:0.25')
    const hdr = decodeHeader(
      encodeModel(s, { task: 'mnist', codec: parseCodecSpec('partial:0.25') }).header,
      expectFor(s),
    )
    expect(hdr.meta.codec).toBe('partial+raw-f32')
    expect(hdr.carried!.map((c) => c.slices!.map((sl) => [sl.axis, sl.index]))).toEqual([
      [[1, [2]]],
      [[0, [2]]],
      [[0, [2]]],
      [],
    ])
    expect(hdr.carried!.map((c) => c.blockShape)).toEqual([[6, 1], [1], [1, 3], [3]])
    const [k0, b0, k1, b1] = got.tensors.map((t) => t.values)
    for (let r = 0; r < 6; r++) {
      for (let u = 0; u < 4; u++) {
        expect(got.masks![0]![r * 4 + u]).toBe(u === 2 ? 1 : 0)
        expect(k0![r * 4 + u]).toBe(u === 2 ? s.tensors[0]!.values[r * 4 + u] : 0)
      }
    }
    expect(Array.from(got.masks![1]!)).toEqual([0, 0, 1, 0])
    expect(b0![2]).toBe(s.tensors[1]!.values[2])
    expect(Array.from(k1!.subarray(6, 9))).toEqual(Array.from(s.tensors[2]!.values.subarray(6, 9)))
    expect(Array.from(got.masks![2]!)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    // The output bias belongs to no group: it travels whole, without a mask.
    expect(got.masks![3]).toBeUndefined()
    expect(Array.from(b1!)).toEqual(Array.from(s.tensors[3]!.values))
  })

  it('cycles through every unit as pushes go by (error feedback on units)', () => {
    const s = randomState(MLP, 8)
    const encoder = parseCodecSpec('partial:0.25+int8')
    const units: number[] = []
    for (let push = 0; push < 4; push++) {
      const got = decodeFrame(encodeFrame(s, { task: 'mnist', codec: encoder }), expectFor(s)).state
      units.push(got.masks![1]!.indexOf(1))
    }
    expect([...units].sort()).toEqual([0, 1, 2, 3])
    // Once all were sent, a unit that moves is the next one out.
    for (let r = 0; r < 6; r++) s.tensors[0]!.values[r * 4 + 1] += 0.2
    const next = decodeFrame(encodeFrame(s, { task: 'mnist', codec: encoder }), expectFor(s)).state
    expect(next.masks![1]!.indexOf(1)).toBe(1)
  })

  it('handles conv layers: two groups on one kernel, and the flatten into the dense layer', () => {
    const s = randomState(CNN, 9)
    for (const spec of ['partial:0.3', 'partial:0.3+int8', 'partial:0.3+f16']) {
      const enc = encodeModel(s, { task: 'mnist', codec: parseCodecSpec(spec) })
      const hdr = decodeHeader(enc.header, expectFor(s))
      hdr.carried!.forEach((c, i) => {
        if (c.slices!.length === 0) return
        expect(sliceMask(s.tensors[i]!.shape, c.slices!).reduce((a, b) => a + b, 0)).toBe(c.count)
        expect(sliceCount(s.tensors[i]!.shape, c.slices!)).toBe(c.count)
        // The one-slice shortcut lists what the mask marks, each slice alone and all together.
        const shape = s.tensors[i]!.shape
        for (const slices of [...c.slices!.map((sl) => [sl]), c.slices!]) {
          expect(Array.from(slicedPositions(shape, slices))).toEqual(
            Array.from(maskPositions(sliceMask(shape, slices))),
          )
        }
      })
      // conv_1/kernel [3,3,8,16] is sliced on its input (conv_0) and output (conv_1) channels.
      expect(hdr.carried![2]!.slices!.map((sl) => sl.axis)).toEqual([2, 3])
      const got = roundTrip(s, spec)
      got.tensors.forEach((t, i) => {
        const m = got.masks![i]
        t.values.forEach((v, k) => {
          if (m !== undefined && m[k] === 0) expect(v).toBe(0)
          else if (spec === 'partial:0.3') expect(v).toBe(s.tensors[i]!.values[k])
        })
      })
    }
  })

  it('refuses unit lists that are out of range, unsorted or repeated, and counts where none belong', () => {
    const s = randomState(MLP, 10)
    const enc = encodeModel(s, { task: 'mnist', codec: parseCodecSpec('partial:0.5') })
    const h = ModelHeader.decode(enc.header)
    const withUnits = (index: number[]): Uint8Array =>
      ModelHeader.encode({
        ...h,
        tensors: h.tensors.map((t, i) => (i === 1 ? { ...t, slices: [{ ...t.slices[0]!, index }] } : t)),
      })
    const exp = expectFor(s)
    expect(decodeHeader(withUnits([0, 3]), exp).payloadBytes).toBe(enc.payloadBytes)
    expect(errorName(() => decodeHeader(withUnits([0, 4]), exp))).toBe('UnknownUnitError')
    expect(errorName(() => decodeHeader(withUnits([3, 1]), exp))).toBe('UnsortedIndexError')
    expect(errorName(() => decodeHeader(withUnits([1, 1]), exp))).toBe('DuplicateIndexError')
    const counted = ModelHeader.encode({ ...h, tensors: h.tensors.map((t) => ({ ...t, count: 2 })) })
    expect(errorName(() => decodeHeader(counted, exp))).toBe('SparseCountError')
    const dense = ModelHeader.encode({
      ...h,
      selection: 0,
      tensors: h.tensors.map((t) => ({ ...t, count: 2 })),
    })
    expect(errorName(() => decodeHeader(dense, exp))).toBe('SparseCountError')
    const unknown = ModelHeader.encode({ ...h, selection: 7 })
    expect(errorName(() => decodeHeader(unknown, exp))).toBe('UnsupportedCodecError')
    const tooMany = ModelHeader.encode({
      ...h,
      selection: 1,
      tensors: h.tensors.map((t, i) => ({ ...t, slices: [], count: i === 0 ? 25 : 1 })),
    })
    expect(errorName(() => decodeHeader(tooMany, exp))).toBe('SparseCountError')
  })

  describe('quiet inputs', () => {
    // Inputs 1 and 4 of the 6 are quiet: the first kernel's rows 1 and 4 stay out of every frame.
    const QUIET = Uint8Array.from([0, 1, 0, 0, 1, 0])
    const encodeQuiet = (s: ModelState, spec: string) =>
      encodeModel(s, { task: 'mnist', codec: parseCodecSpec(spec, { quietInputs: QUIET }) })

    it("leave the first kernel's quiet rows out of the carried units, and nothing else", () => {
      const s = randomState(MLP, 11)
      for (const spec of ['partial:0.5', 'partial:0.5+int8', 'partial:0.5+int2']) {
        const enc = encodeQuiet(s, spec)
        const hdr = decodeHeader(enc.header, expectFor(s))
        expect(hdr.carried![0]!.within!.axis).toBe(0)
        expect(Array.from(hdr.carried![0]!.within!.bits)).toEqual([0b101101])
        // Two units of 4 on 4 kept rows of 6; the other tensors as without.
        expect(hdr.carried!.slice(0, 3).map((c) => c.count)).toEqual([8, 2, 6])
        expect(hdr.carried![0]!.blockShape).toEqual([4, 2])
        expect(hdr.carried!.slice(1).every((c) => c.within === undefined)).toBe(true)
        const plain = encodeModel(s, { task: 'mnist', codec: parseCodecSpec(spec) })
        expect(enc.payloadBytes).toBeLessThan(plain.payloadBytes)
        const got = decodeFrame(joinFrame(enc), expectFor(s)).state
        const units = Array.from(got.masks![1]!).flatMap((m, u) => (m === 1 ? [u] : []))
        expect(units).toHaveLength(2)
        for (let r = 0; r < 6; r++) {
          for (let u = 0; u < 4; u++) {
            const want = QUIET[r] === 0 && units.includes(u) ? 1 : 0
            expect(got.masks![0]![r * 4 + u]).toBe(want)
            if (want === 1 && spec === 'partial:0.5')
              expect(got.tensors[0]!.values[r * 4 + u]).toBe(s.tensors[0]!.values[r * 4 + u])
          }
        }
        // What the sender says it sent is what arrived.
        const sent = enc.sent!
        expect(Array.from(sent.positions[0]!)).toEqual(Array.from(maskPositions(got.masks![0]!)))
      }
    })

    it('pick units by the change on the rows they carry: a quiet row cannot pull a unit out', () => {
      const s = randomState(MLP, 12)
      for (let u = 0; u < 4; u++) for (let r = 0; r < 6; r++) s.tensors[0]!.values[r * 4 + u] = 0.1
      for (const t of s.tensors.slice(1)) t.values.fill(0)
      // Unit 3 moved most, but on quiet row 4 only; unit 1 moved on a row that is sent.
      s.tensors[0]!.values[4 * 4 + 3] = 50
      s.tensors[0]!.values[2 * 4 + 1] = 5
      const hdr = decodeHeader(encodeQuiet(s, 'partial:0.25').header, expectFor(s))
      expect(hdr.carried![0]!.slices![0]!.index).toEqual([1])
      expect(
        decodeHeader(
          encodeModel(s, { task: 'mnist', codec: parseCodecSpec('partial:0.25') }).header,
          expectFor(s),
        ).carried![0]!.slices![0]!.index,
      ).toEqual([3])
    })

    it('change nothing when no input or every input is quiet, and leave conv layers alone', () => {
      const s = randomState(MLP, 13)
      const plain = encodeModel(s, { task: 'mnist', codec: parseCodecSpec('partial:0.5') })
      for (const quiet of [new Uint8Array(6), new Uint8Array(6).fill(1)]) {
        const enc = encodeModel(s, {
          task: 'mnist',
          codec: parseCodecSpec('partial:0.5', { quietInputs: quiet }),
        })
        expect(enc.header).toEqual(plain.header)
      }
      const c = randomState(CNN, 14)
      const quiet = new Uint8Array(784).fill(0)
      quiet[0] = 1
      const cnn = encodeModel(c, {
        task: 'mnist',
        codec: parseCodecSpec('partial:0.3', { quietInputs: quiet }),
      })
      expect(decodeHeader(cnn.header, expectFor(c)).carried!.every((t) => t.within === undefined)).toBe(true)
    })

    it('refuse a kept axis that is malformed, on a tensor that cannot have one, or in a frame that is not partial', () => {
      const s = randomState(MLP, 15)
      const enc = encodeQuiet(s, 'partial:0.5')
      const h = ModelHeader.decode(enc.header)
      const exp = expectFor(s)
      const withKept = (
        i: number,
        within: ModelHeader.AxisMask | undefined,
        rest: Partial<ModelHeader> = {},
      ) =>
        ModelHeader.encode({
          ...h,
          ...rest,
          tensors: h.tensors.map((t, j) => (j === i ? { ...t, within } : t)),
        })
      expect(
        decodeHeader(withKept(0, { axis: 0, bits: Uint8Array.from([0b111111]) }), exp).payloadBytes,
      ).toBeGreaterThan(enc.payloadBytes)
      const malformed = [
        withKept(0, { axis: 0, bits: Uint8Array.from([0b1101101]) }), // bit 6 of a 6-long axis
        withKept(0, { axis: 0, bits: Uint8Array.from([0b101101, 0]) }), // a byte too many
        withKept(0, { axis: 0, bits: new Uint8Array(0) }), // too few
        withKept(0, { axis: 0, bits: Uint8Array.from([0]) }), // keeps nothing
        withKept(0, { axis: 1, bits: Uint8Array.from([0b1111]) }), // the sliced axis
        withKept(0, { axis: 2, bits: Uint8Array.from([1]) }), // past the rank
        withKept(3, { axis: 0, bits: Uint8Array.from([0b111]) }), // the output bias has no slice
        // A dense frame.
        ModelHeader.encode({
          ...h,
          selection: 0,
          tensors: h.tensors.map((t, i) => ({ ...t, slices: [], within: i === 0 ? t.within : undefined })),
        }),
      ]
      for (const bytes of malformed)
        expect(errorName(() => decodeHeader(bytes, exp))).toBe('MalformedFrameError')
      const topk = ModelHeader.encode({
        ...h,
        selection: 1,
        tensors: h.tensors.map((t, i) => ({
          ...t,
          slices: [],
          count: 1,
          within: i === 0 ? t.within : undefined,
        })),
      })
      expect(errorName(() => decodeHeader(topk, exp))).toBe('MalformedFrameError')
    })
  })
})
