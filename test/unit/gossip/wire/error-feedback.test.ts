import { describe, expect, it } from 'vitest'
import { decodeFrame, encodeFrame, layoutOf } from '../../../../src/gossip/wire/codec.ts'
import { ErrorFeedback } from '../../../../src/gossip/wire/codecs/error-feedback.ts'
import { parseCodecSpec } from '../../../../src/gossip/wire/codecs/index.ts'
import { INT4 } from '../../../../src/gossip/wire/codecs/int4.ts'
import { int8Rows } from '../../../../src/gossip/wire/codecs/int8.ts'
import type { MaskedState } from '../../../../src/merge/masks.ts'
import { initialState } from '../../../../src/model/arch.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import { createRng } from '../../../../src/util/rng.ts'
import { errorName } from '../../error-name.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 8, input: [6], classes: 3 }

/** A zoo state with random values everywhere (biases included). */
function randomState(seed: number): ModelState {
  const s = initialState(MLP, seed)
  const rng = createRng(seed + 1000)
  for (const t of s.tensors) for (let k = 0; k < t.values.length; k++) t.values[k] = rng.normal() * 0.3
  return { ...s, age: 17 }
}

const expectFor = (s: ModelState) => ({ task: 'mnist', arch: s.arch, layout: layoutOf(s) })

/** Encodes `s` with `codec` and decodes it as a receiver does. */
function send(s: ModelState, codec: ReturnType<typeof parseCodecSpec>): MaskedState {
  return decodeFrame(encodeFrame(s, { task: 'mnist', codec }), expectFor(s)).state
}

/** Largest |value| of each row of a tensor (rows as the quantised codecs count them). */
function rowMax(t: { shape: number[]; values: Float32Array }): number[] {
  const rows = int8Rows(t.shape)
  const max = new Array<number>(rows).fill(0)
  t.values.forEach((v, k) => {
    max[k % rows] = Math.max(max[k % rows]!, Math.abs(v))
  })
  return max
}

describe('error feedback on quantised values', () => {
  it('parses int4:ef and int8:ef, composed with a selection too, and refuses it elsewhere', () => {
    expect(parseCodecSpec('int4:ef').spec).toBe('int4:ef')
    expect(parseCodecSpec('int4:ef').codec).toBe(INT4)
    expect(parseCodecSpec('int8:ef').spec).toBe('int8:ef')
    expect(parseCodecSpec('partial:0.25+int4:ef').spec).toBe('partial:0.25+int4:ef')
    expect(parseCodecSpec('int4').codec.createEncoder(undefined).errorFeedback).toBe(false)
    for (const bad of ['int4:efx', 'raw-f32:ef', 'f16:ef']) {
      expect(errorName(() => parseCodecSpec(bad))).toBe('InvalidCodecSpecError')
    }
  })

  it('sends an ordinary int4 frame: the first equals plain int4, later ones carry the residual', () => {
    const s = randomState(1)
    const ef = parseCodecSpec('int4:ef')
    const first = send(s, ef)
    const plain = send(s, parseCodecSpec('int4'))
    expect(first.tensors.map((t) => Array.from(t.values))).toEqual(
      plain.tensors.map((t) => Array.from(t.values)),
    )
    const second = send(s, ef)
    const differs = second.tensors.some((t, i) => t.values.some((v, k) => v !== first.tensors[i]!.values[k]))
    expect(differs).toBe(true)
  })

  it('keeps the residual at target - decoded, below half a step of its row', () => {
    const s = randomState(2)
    const feedback = new ErrorFeedback()
    const values = INT4.createEncoder(undefined)
    const all = s.tensors.map(() => undefined)
    for (let r = 0; r < 5; r++) {
      const targets = feedback.targets(s.tensors, all)
      const before = s.tensors.map((_, i) => feedback.residual(i))
      // The target is the model's value plus the residual left by the frames before.
      s.tensors.forEach((t, i) => {
        t.values.forEach((v, k) => {
          expect(targets[i]![k]).toBe(Math.fround(v + before[i]![k]!))
        })
      })
      const blocks = s.tensors.map((t, i) => ({ name: t.name, shape: t.shape, values: targets[i]! }))
      const decoder = INT4.createDecoder(blocks)
      for (const c of values.encode(blocks)) decoder.push(c)
      const decoded = decoder.finish().values
      feedback.commit(targets, decoded, all)
      blocks.forEach((b, i) => {
        const max = rowMax(b)
        const e = feedback.residual(i)
        const rows = int8Rows(b.shape)
        e.forEach((x, k) => {
          expect(x).toBe(Math.fround(targets[i]![k]! - decoded[i]![k]!))
          expect(Math.abs(x)).toBeLessThanOrEqual((max[k % rows]! / 14) * 1.0001)
        })
      })
    }
  })

  it('averages to the model over frames, where plain int4 keeps its rounding error', () => {
    const s = randomState(3)
    // A weight far below half a step of its row: plain int4 sends 0 for it every time.
    const kernel = s.tensors[0]!
    const rows = int8Rows(kernel.shape)
    kernel.values[rows] = 0.3
    kernel.values[0] = 0.01
    const reps = 200
    const mean = (codec: ReturnType<typeof parseCodecSpec>): Float64Array[] => {
      const sums = s.tensors.map((t) => new Float64Array(t.values.length))
      for (let r = 0; r < reps; r++) {
        send(s, codec).tensors.forEach((t, i) => {
          t.values.forEach((v, k) => {
            sums[i]![k] += v / reps
          })
        })
      }
      return sums
    }
    const plain = mean(parseCodecSpec('int4'))
    const ef = mean(parseCodecSpec('int4:ef'))
    expect(plain[0]![0]).toBe(0)
    // The sum of the frames is N x - e_N, so the mean is within half a step / N of the model.
    s.tensors.forEach((t, i) => {
      const max = rowMax(t)
      const r = int8Rows(t.shape)
      t.values.forEach((v, k) => {
        expect(Math.abs(ef[i]![k]! - v)).toBeLessThanOrEqual((max[k % r]! / 14 / reps) * 1.01 + 1e-6)
      })
    })
    expect(Math.abs(ef[0]![0]! - 0.01)).toBeLessThan(0.001)
    const plainWorst = Math.max(
      ...s.tensors.flatMap((t, i) => Array.from(t.values, (v, k) => Math.abs(plain[i]![k]! - v))),
    )
    const efWorst = Math.max(
      ...s.tensors.flatMap((t, i) => Array.from(t.values, (v, k) => Math.abs(ef[i]![k]! - v))),
    )
    expect(efWorst * 20).toBeLessThan(plainWorst)
  })

  it('on a partial frame uses and updates the residual only where the frame carries', () => {
    const s = randomState(4)
    const codec = parseCodecSpec('partial:0.25+int4:ef')
    const got = send(s, codec)
    const masks = got.masks!
    expect(masks.some((m) => m?.includes(0))).toBe(true)
    // A second encoder's residuals, driven the same way, through the public class: carried
    // coordinates get target - decoded, the others stay at zero.
    const feedback = new ErrorFeedback()
    const positions = masks.map((m) => {
      if (m === undefined) return undefined
      const at: number[] = []
      m.forEach((x, k) => {
        if (x === 1) at.push(k)
      })
      return Int32Array.from(at)
    })
    const targets = feedback.targets(s.tensors, positions)
    const decoded = targets.map((t) => t.map((v) => v + 0.5))
    feedback.commit(targets, decoded, positions)
    s.tensors.forEach((_t, i) => {
      const e = feedback.residual(i)
      const m = masks[i]
      e.forEach((x, k) => {
        if (m === undefined || m[k] === 1) expect(x).toBeCloseTo(-0.5, 6)
        else expect(x).toBe(0)
      })
    })
  })

  it('through a selection that carries every unit, averages to the model like dense int4:ef', () => {
    const s = randomState(6)
    const codec = parseCodecSpec('partial:1+int4:ef')
    const reps = 100
    const sums = s.tensors.map((t) => new Float64Array(t.values.length))
    for (let r = 0; r < reps; r++) {
      send(s, codec).tensors.forEach((t, i) => {
        t.values.forEach((v, k) => {
          sums[i]![k] += v / reps
        })
      })
    }
    s.tensors.forEach((t, i) => {
      const max = rowMax(t)
      const rows = int8Rows(t.shape)
      t.values.forEach((v, k) => {
        expect(Math.abs(sums[i]![k]! - v)).toBeLessThanOrEqual((max[k % rows]! / 14 / reps) * 1.01 + 1e-6)
      })
    })
  })

  it('drops a residual that is not finite, so a refused frame does not poison the next ones', () => {
    const s = randomState(5)
    const codec = parseCodecSpec('int4:ef')
    send(s, codec)
    const saved = s.tensors[0]!.values[3]!
    s.tensors[0]!.values[3] = Number.NaN
    expect(errorName(() => send(s, codec))).toBe('InvalidScaleError')
    s.tensors[0]!.values[3] = saved
    const after = send(s, codec)
    expect(after.tensors.every((t) => t.values.every(Number.isFinite))).toBe(true)
  })
})
