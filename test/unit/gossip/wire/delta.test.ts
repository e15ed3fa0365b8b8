import { describe, expect, it } from 'vitest'
import {
  decodeFrame,
  decodeHeader,
  encodeFrame,
  joinFrame,
  layoutOf,
  ModelHeader,
} from '../../../../src/gossip/wire/codec.ts'
import { DeltaReceiver, DeltaSender, splitDeltaSpec } from '../../../../src/gossip/wire/delta.ts'
import type { MaskedState } from '../../../../src/merge/masks.ts'
import { initialState } from '../../../../src/model/arch.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import { createRng } from '../../../../src/util/rng.ts'
import { errorName } from '../../error-name.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 8, input: [12], classes: 3 }
const TASK = 'mnist'

function randomState(seed: number): ModelState {
  const s = initialState(MLP, seed)
  const rng = createRng(seed + 1000)
  for (const t of s.tensors) for (let k = 0; k < t.values.length; k++) t.values[k] = rng.normal() * 0.3
  return { ...s, age: 17 }
}

/** One push from `tx` to `rx`: the frame as bytes, decoded as the exchange decodes it, then applied. */
function push(tx: DeltaSender, rx: DeltaReceiver, state: ModelState, from = 'a', to = 'b') {
  const { encoded, commit } = tx.encode(to, state, { task: TASK })
  const frame = joinFrame(encoded)
  const decoded = decodeFrame(frame, { task: TASK, layout: layoutOf(state) })
  const got = rx.apply(from, decoded.meta.base!, decoded.state)
  commit()
  return { got, meta: decoded.meta, bytes: frame.byteLength }
}

/** Squared distance between `got`'s values and `state`'s, over every coordinate. */
function error(got: MaskedState, state: ModelState): number {
  let e = 0
  state.tensors.forEach((t, i) => {
    t.values.forEach((v, k) => {
      e += (got.tensors[i]!.values[k]! - v) ** 2
    })
  })
  return e
}

describe('delta codec spec', () => {
  it('splits delta+SPEC and validates the rest', () => {
    expect(splitDeltaSpec('delta+partial:0.25+int2')).toEqual({ delta: true, inner: 'partial:0.25+int2' })
    expect(splitDeltaSpec('int4')).toEqual({ delta: false, inner: 'int4' })
    expect(errorName(() => splitDeltaSpec('delta+int3'))).toBe('InvalidCodecSpecError')
    // The reference is the error feedback: ':ef' would send the residual twice.
    expect(errorName(() => splitDeltaSpec('delta+partial:0.25+int4:ef'))).toBe('InvalidCodecSpecError')
  })
})

describe('delta frames', () => {
  it('converge on the sender model frame after frame, both ends holding the same reference', () => {
    const s = randomState(1)
    const tx = new DeltaSender('int2')
    const rx = new DeltaReceiver()
    const errors: number[] = []
    for (let i = 0; i < 8; i++) {
      const { got, meta } = push(tx, rx, s)
      expect(meta.base).toBe(i)
      expect(meta.version).toBe(2)
      expect(meta.codec).toBe('delta+int2')
      expect(got.masks).toBeUndefined()
      errors.push(error(got, s))
    }
    // Plain int2 would repeat the first frame's error; against the reference it shrinks.
    expect(errors[7]!).toBeLessThan(errors[0]! / 20)
    for (let i = 1; i < errors.length; i++) expect(errors[i]!).toBeLessThan(errors[i - 1]!)
  })

  it('leave both ends with the same reference, bit for bit, whether the sender decoded its frame or not', () => {
    // Sparse encoders hand the sender what receivers will decode; dense ones do not, and the
    // sender decodes its own frame. Either way the two references must never drift apart.
    for (const inner of ['partial:0.25+int2', 'topk:0.1+int4', 'int2', 'f16']) {
      const s = randomState(4)
      const tx = new DeltaSender(inner)
      const rx = new DeltaReceiver()
      const rng = createRng(9)
      for (let i = 0; i < 6; i++) {
        for (const t of s.tensors)
          for (let k = 0; k < t.values.length; k++) t.values[k] += 0.05 * rng.normal()
        push(tx, rx, s)
        const sent = tx.referenceFor('b')!
        const held = rx.referenceFor('a')!
        for (let t = 0; t < sent.length; t++) {
          expect(Array.from(held[t]!), `${inner} push ${i}`).toEqual(Array.from(sent[t]!))
        }
      }
    }
  })

  it('with quiet inputs, keep both references equal and never move a quiet row', () => {
    const quiet = Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    const s = randomState(5)
    const tx = new DeltaSender('partial:0.25+int2', { codec: { quietInputs: quiet } })
    const rx = new DeltaReceiver()
    const rng = createRng(10)
    for (let i = 0; i < 6; i++) {
      for (const t of s.tensors) for (let k = 0; k < t.values.length; k++) t.values[k] += 0.05 * rng.normal()
      const { got } = push(tx, rx, s)
      // Rows 0, 1, 10 and 11 of the first kernel (8 units a row) are never carried.
      for (const r of [0, 1, 10, 11])
        expect(Array.from(got.masks![0]!.subarray(r * 8, r * 8 + 8))).toEqual(new Array(8).fill(0))
      const sent = tx.referenceFor('b')!
      const held = rx.referenceFor('a')!
      for (let t = 0; t < sent.length; t++)
        expect(Array.from(held[t]!), `push ${i}`).toEqual(Array.from(sent[t]!))
      for (const r of [0, 1, 10, 11])
        expect(Array.from(sent[0]!.subarray(r * 8, r * 8 + 8))).toEqual(new Array(8).fill(0))
    }
  })

  it('with a selection, refresh the units that differ most and merge only those', () => {
    const s = randomState(2)
    const tx = new DeltaSender('partial:0.25+int4')
    const rx = new DeltaReceiver()
    const first = push(tx, rx, s).got
    expect(first.masks).toBeDefined()
    // The kernel of the hidden layer carries 2 of 8 units (columns).
    const mask = first.masks![0]!
    expect(mask.reduce((a, b) => a + b, 0)).toBe(12 * 2)
    // After the units were all sent once, the next frame goes to the largest residuals, and every
    // unit's reference is close to the model.
    for (let i = 0; i < 4; i++) push(tx, rx, s)
    const later = push(tx, rx, s).got
    const kernel = s.tensors[0]!.values
    let worst = 0
    for (let k = 0; k < kernel.length; k++) {
      if (later.masks![0]![k] === 1)
        worst = Math.max(worst, Math.abs(later.tensors[0]!.values[k]! - kernel[k]!))
    }
    expect(worst).toBeLessThan(0.3 / 14)
  })

  it('refuse a base the receiver does not hold, then start over from zero', () => {
    const s = randomState(3)
    const tx = new DeltaSender('int4')
    const rx = new DeltaReceiver()
    push(tx, rx, s)
    push(tx, rx, s)
    expect(tx.baseFor('b')).toBe(2)
    // Another receiver (this one restarted) has nothing for base 2.
    const fresh = new DeltaReceiver()
    expect(() => push(tx, fresh, s)).toThrow(
      expect.objectContaining({ name: 'DeltaBaseError', verdict: 'ignore' }),
    )
    // The exchange reports each failed push: the reference survives one (a refusal before the
    // receiver read anything leaves its reference as it was), not two in a row.
    tx.failed('b')
    expect(tx.baseFor('b')).toBe(2)
    expect(() => push(tx, fresh, s)).toThrow(expect.objectContaining({ name: 'DeltaBaseError' }))
    tx.failed('b')
    expect(tx.baseFor('b')).toBe(0)
    const { meta, got } = push(tx, fresh, s)
    expect(meta.base).toBe(0)
    expect(error(got, s)).toBeLessThan(1)
    // A stale base after the receiver moved on is refused as well, and drops the reference.
    const { encoded } = tx.encode('b', s, { task: TASK })
    const frame = joinFrame(encoded)
    const d = decodeFrame(frame, { task: TASK, layout: layoutOf(s) })
    expect(errorName(() => fresh.apply('a', d.meta.base! + 1, d.state))).toBe('DeltaBaseError')
    expect(errorName(() => fresh.apply('a', d.meta.base!, d.state))).toBe('DeltaBaseError')
    expect(fresh.size).toBe(0)
  })

  it('refuse a difference that takes the reference beyond float32, and keep nothing of it', () => {
    const s = randomState(4)
    const rx = new DeltaReceiver()
    const big: ModelState = {
      ...s,
      tensors: s.tensors.map((t) => ({ ...t, values: t.values.map(() => 3e38) })),
    }
    const frame = (st: ModelState, base: number) =>
      decodeFrame(encodeFrame(st, { task: TASK, base }), { task: TASK, layout: layoutOf(st) })
    rx.apply('a', 0, frame(big, 0).state)
    expect(errorName(() => rx.apply('a', 1, frame(big, 1).state))).toBe('NonFiniteValueError')
    expect(rx.size).toBe(0)
  })

  it('keep at most maxPeers references on each side, the least recently used dropped', () => {
    const s = randomState(5)
    const rx = new DeltaReceiver({ maxPeers: 2 })
    const tx = new DeltaSender('int4', { maxPeers: 2 })
    for (const peer of ['p', 'q', 'r']) push(tx, rx, s, peer, peer)
    expect(rx.size).toBe(2)
    expect(tx.baseFor('p')).toBe(0)
    expect(tx.baseFor('r')).toBe(1)
  })
})

describe('delta frame headers', () => {
  const s = randomState(6)
  const header = (fields: Partial<ModelHeader>) =>
    ModelHeader.encode({
      version: 1,
      task: TASK,
      arch: s.arch,
      age: 1,
      codec: 1,
      selection: 0,
      tensors: s.tensors.map((t) => ({ name: t.name, shape: t.shape, slices: [] })),
      ...fields,
    })

  it('are version 2 with a base; version 1 has none', () => {
    const expect_ = { task: TASK, layout: layoutOf(s) }
    expect(decodeHeader(header({ version: 2, base: 7 }), expect_).meta).toMatchObject({
      base: 7,
      codec: 'delta+raw-f32',
    })
    expect(decodeHeader(header({}), expect_).meta.base).toBeUndefined()
    expect(errorName(() => decodeHeader(header({ version: 2 }), expect_))).toBe('MalformedFrameError')
    expect(errorName(() => decodeHeader(header({ base: 0 }), expect_))).toBe('MalformedFrameError')
    expect(errorName(() => decodeHeader(header({ version: 3, base: 1 }), expect_))).toBe(
      'ProtocolVersionError',
    )
  })
})
