/**
 * A receiver on real libp2p nodes (TCP + Noise + Yamux on 127.0.0.1) refuses
 * every kind of bad model stream with the right typed error, never hands it to
 * onModel, and keeps accepting good models afterwards.
 */
import type { Stream } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DELTA_ACK, DELTA_WIRE_VERSION, MODEL_PROTOCOL, WIRE_VERSION } from '../../src/gossip/constants.ts'
import { ModelExchange } from '../../src/gossip/exchange.ts'
import { encodeFrame, encodeModel, encodeVarint, layoutOf, ModelHeader } from '../../src/gossip/wire/codec.ts'
import { parseCodecSpec } from '../../src/gossip/wire/codecs/index.ts'
import type { MaskedState } from '../../src/merge/masks.ts'
import type { ModelState } from '../../src/model/types.ts'
import { createNode, type GossipLearnNode } from '../../src/node/create-node.ts'

const TASK = 'mnist'
const ARCH = 'mlp-test'

function goodState(): ModelState {
  return {
    arch: ARCH,
    age: 3,
    tensors: [
      { name: 'dense_0/kernel', shape: [4, 3], values: new Float32Array(12).map((_, i) => i / 10) },
      { name: 'dense_0/bias', shape: [3], values: Float32Array.from([0.1, 0.2, 0.3]) },
    ],
  }
}

function frameOf(state: ModelState, meta: { task?: string; version?: number } = {}): Uint8Array {
  return encodeFrame(state, { task: meta.task ?? TASK, version: meta.version })
}

function withValue(value: number): ModelState {
  const s = goodState()
  s.tensors[0]!.values[5] = value
  return s
}

/**
 * A frame whose header is written by hand (for sizes and fields a valid state cannot produce);
 * `extra` is raw protobuf appended to the header (a later scalar field overrides an earlier one).
 */
function frameWithHeader(
  fields: Partial<ModelHeader>,
  payload: Uint8Array = new Uint8Array(0),
  extra: number[] = [],
): Uint8Array {
  const header = [
    ...ModelHeader.encode({
      version: WIRE_VERSION,
      task: TASK,
      arch: ARCH,
      age: 1,
      codec: 1,
      tensors: layoutOf(goodState()).map((t) => ({ name: t.name, shape: [...t.shape], slices: [] })),
      ...fields,
    }),
    ...extra,
  ]
  return Uint8Array.from([...encodeVarint(header.length), ...header, ...payload])
}

/** A topk frame (raw-f32 values) carrying `indices` of dense_0/kernel (12 values: 1-byte indices) and none of the bias. */
function topkFrame(indices: number[], count = indices.length): Uint8Array {
  const values = new Float32Array(indices.length).map((_, i) => i + 0.5)
  return frameWithHeader(
    {
      selection: 1,
      tensors: [
        { name: 'dense_0/kernel', shape: [4, 3], count, slices: [] },
        { name: 'dense_0/bias', shape: [3], count: 0, slices: [] },
      ],
    },
    Uint8Array.from([...indices, ...new Uint8Array(values.buffer)]),
  )
}

/** A partial frame carrying hidden units `units` (kernel columns and biases, of 3 units). */
function partialFrame(
  units: number[],
  count?: number,
  within?: { axis: number; bits: number[]; rows: number },
): Uint8Array {
  const n = units.length
  return frameWithHeader(
    {
      selection: 2,
      tensors: [
        {
          name: 'dense_0/kernel',
          shape: [4, 3],
          count,
          slices: [{ axis: 1, repeat: 0, stride: 0, index: units }],
          within:
            within === undefined ? undefined : { axis: within.axis, bits: Uint8Array.from(within.bits) },
        },
        { name: 'dense_0/bias', shape: [3], slices: [{ axis: 0, repeat: 0, stride: 0, index: units }] },
      ],
    },
    new Uint8Array(new Float32Array((within?.rows ?? 4) * n + n).fill(0.25).buffer),
  )
}

/** A dense int8 frame of the good state whose second kernel scale is `scale`. */
function int8Frame(scale: number): Uint8Array {
  const frame = encodeFrame(goodState(), { task: TASK, codec: parseCodecSpec('int8') })
  // Payload: kernel [4,3] (3 scales + 12 bytes), bias [3] (1 scale + 3 bytes).
  const payloadStart = frame.byteLength - (3 * 4 + 12 + 4 + 3)
  new DataView(frame.buffer, frame.byteOffset).setFloat32(payloadStart + 4, scale, true)
  return frame
}

/** An int2 frame of the good state whose first value byte is `byte` (243 and above hold no five ternary values). */
function int2Frame(byte: number): Uint8Array {
  const frame = encodeFrame(goodState(), { task: TASK, codec: parseCodecSpec('int2') })
  // Payload: kernel [4,3] (3 scales + 12 values in 3 bytes), bias [3] (1 scale + 1 byte).
  frame[frame.byteLength - (3 * 4 + 3 + 4 + 1) + 3 * 4] = byte
  return frame
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('model exchange under bad input (real libp2p nodes)', () => {
  let sender: GossipLearnNode
  let receiver: GossipLearnNode
  let tx: ModelExchange
  let rx: ModelExchange
  let accepted: ModelState[]

  beforeEach(async () => {
    sender = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    receiver = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    accepted = []
    rx = new ModelExchange(
      { node: receiver, logger: defaultLogger() },
      {
        task: TASK,
        arch: ARCH,
        expectedLayout: layoutOf(goodState()),
        idleTimeoutMs: 400,
        totalTimeoutMs: 5_000,
        onModel: (state) => {
          accepted.push(state)
        },
      },
    )
    tx = new ModelExchange({ node: sender, logger: defaultLogger() }, { task: TASK })
    await rx.start()
    await tx.start()
    await sender.dial(receiver.getMultiaddrs()[0]!)
  })

  afterEach(async () => {
    await tx.stop()
    await rx.stop()
    await Promise.all([sender.stop(), receiver.stop()])
  })

  /** Send raw bytes on a fresh model stream, optionally close our end. */
  async function sendRaw(bytes: Uint8Array, close = true): Promise<Stream> {
    const stream = await sender.dialProtocol(receiver.peerId, MODEL_PROTOCOL)
    if (bytes.byteLength > 0 && !stream.send(bytes)) await stream.onDrain().catch(() => {})
    if (close) await stream.close().catch(() => {})
    return stream
  }

  async function expectStillServing(): Promise<void> {
    const before = accepted.length
    await tx.push(receiver.peerId, goodState())
    await until(() => accepted.length === before + 1, 'a good model after the bad input')
    expect(Array.from(accepted.at(-1)!.tensors[1]!.values)).toEqual(
      Array.from(goodState().tensors[1]!.values),
    )
  }

  it('accepts a good model', async () => {
    await tx.push(receiver.peerId, goodState())
    await until(() => accepted.length === 1, 'the model')
    expect(accepted[0]!.arch).toBe(ARCH)
    expect(rx.counters.modelsReceived).toBe(1)
    expect(rx.counters.rejected).toEqual({})
  })

  const full = frameOf(goodState())
  const payloadOf = (frame: Uint8Array): Uint8Array => frame.subarray(frame.byteLength - 15 * 4)
  const cases: Array<[string, () => Uint8Array, string]> = [
    ['a truncated payload', () => full.subarray(0, full.byteLength - 5), 'TruncatedFrameError'],
    ['a frame cut inside its header', () => full.subarray(0, 6), 'TruncatedFrameError'],
    [
      'an oversized declared size',
      () => frameWithHeader({ tensors: [{ name: 'dense_0/kernel', shape: [65_536, 65_536], slices: [] }] }),
      'FrameTooLargeError',
    ],
    ['a header length over the limit', () => encodeVarint(1 << 20), 'FrameTooLargeError'],
    [
      'a wrong protocol version',
      () => frameOf(goodState(), { version: DELTA_WIRE_VERSION + 1 }),
      'ProtocolVersionError',
    ],
    ['a wrong task', () => frameOf(goodState(), { task: 'cifar10' }), 'TaskMismatchError'],
    ['a wrong arch', () => frameOf({ ...goodState(), arch: 'cnn-test' }), 'ArchMismatchError'],
    [
      'a wrong tensor count',
      () => frameOf({ ...goodState(), tensors: goodState().tensors.slice(0, 1) }),
      'ShapeMismatchError',
    ],
    [
      'wrong shapes',
      () => {
        const s = goodState()
        s.tensors[0]!.shape = [3, 4]
        return frameOf(s)
      },
      'ShapeMismatchError',
    ],
    ['a NaN value', () => frameOf(withValue(Number.NaN)), 'NonFiniteValueError'],
    [
      'a NaN value in an f16 payload',
      () => encodeFrame(withValue(Number.NaN), { task: TASK, codec: parseCodecSpec('f16') }),
      'NonFiniteValueError',
    ],
    [
      'a codec this node does not know',
      () => frameWithHeader({ codec: 9 }, payloadOf(full)),
      'UnsupportedCodecError',
    ],
    [
      'a codec of 2^32+1 (read as 1 by a 32-bit decoder)',
      () => frameWithHeader({}, payloadOf(full), [0x28, 0x81, 0x80, 0x80, 0x80, 0x10]),
      'MalformedFrameError',
    ],
    ['an infinite value', () => frameOf(withValue(Number.POSITIVE_INFINITY)), 'NonFiniteValueError'],
    ['garbage bytes', () => Uint8Array.from([10, ...new Array(10).fill(0xff)]), 'MalformedFrameError'],
    [
      'a length varint padded past its limit',
      () => Uint8Array.from([0x85, 0x80, 0x80, 0x80, 0x00]),
      'MalformedFrameError',
    ],
    [
      'a length varint that never ends',
      () => Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      'MalformedFrameError',
    ],
    ['an empty stream', () => new Uint8Array(0), 'TruncatedFrameError'],
    ['trailing bytes after the payload', () => Uint8Array.from([...full, 0, 0, 0, 0]), 'PayloadLengthError'],
    // Sparse frames (topk: indices then values; partial: units in the header; int8: scales then bytes).
    ['a sparse index out of range', () => topkFrame([1, 5, 12]), 'SparseIndexRangeError'],
    ['unsorted sparse indices', () => topkFrame([1, 7, 5]), 'UnsortedIndexError'],
    ['a duplicated sparse index', () => topkFrame([1, 5, 5]), 'DuplicateIndexError'],
    ['a sparse count larger than its tensor', () => topkFrame([1, 5, 7], 13), 'SparseCountError'],
    [
      'a sparse frame whose payload is shorter than its counts',
      () => topkFrame([1, 5]).subarray(0, -1),
      'TruncatedFrameError',
    ],
    ['a unit index that does not exist', () => partialFrame([0, 3]), 'UnknownUnitError'],
    ['unsorted unit indices', () => partialFrame([2, 0]), 'UnsortedIndexError'],
    ['a count in a partial frame', () => partialFrame([0, 2], 4), 'SparseCountError'],
    // Quiet inputs: the kernel's rows kept, one bit each, 4 rows in the low bits of one byte.
    [
      'a kept row past the end of the axis',
      () => partialFrame([0, 2], undefined, { axis: 0, bits: [0b10011], rows: 3 }),
      'MalformedFrameError',
    ],
    [
      'a kept axis that keeps nothing',
      () => partialFrame([0, 2], undefined, { axis: 0, bits: [0], rows: 0 }),
      'MalformedFrameError',
    ],
    [
      'a kept axis on the sliced axis',
      () => partialFrame([0, 2], undefined, { axis: 1, bits: [0b101], rows: 4 }),
      'MalformedFrameError',
    ],
    ['a non-finite int8 scale', () => int8Frame(Number.NaN), 'InvalidScaleError'],
    ['an int2 byte above 242', () => int2Frame(243), 'ValueRangeError'],
    // Delta frames (version 2 with a base): against a reference this receiver does not hold, or
    // a version and a base that do not go together.
    [
      'a delta frame against a reference the receiver does not hold',
      () => frameWithHeader({ version: DELTA_WIRE_VERSION, base: 5 }, payloadOf(full)),
      'DeltaBaseError',
    ],
    [
      'a delta version without a base',
      () => frameWithHeader({ version: DELTA_WIRE_VERSION }, payloadOf(full)),
      'MalformedFrameError',
    ],
    [
      'a base in a version 1 frame',
      () => frameWithHeader({ base: 0 }, payloadOf(full)),
      'MalformedFrameError',
    ],
    ['a negative int8 scale', () => int8Frame(-1), 'InvalidScaleError'],
  ]

  it.each(cases)('refuses %s and keeps serving', async (_label, bytes, errorName) => {
    await sendRaw(bytes())
    await until(() => rx.counters.rejected[errorName] === 1, errorName)
    expect(accepted).toHaveLength(0)
    expect(Object.values(rx.counters.rejected).reduce((a, b) => a + b, 0)).toBe(1)
    await expectStillServing()
  })

  it('applies delta frames to the reference it holds for the sender, and acknowledges each', async () => {
    const delta = (base: number) => frameWithHeader({ version: DELTA_WIRE_VERSION, base }, payloadOf(full))
    const acks: number[] = []
    for (const base of [0, 1]) {
      const stream = await sendRaw(delta(base), false)
      stream.addEventListener('message', (evt) => acks.push(...evt.data.subarray()))
      await stream.close()
      await until(() => accepted.length === base + 1, `delta frame ${base}`)
    }
    await until(() => acks.length === 2, 'two acknowledgements')
    expect(acks).toEqual([DELTA_ACK, DELTA_ACK])
    // The second difference went onto the first: twice the good state.
    expect(Array.from(accepted[1]!.tensors[1]!.values)).toEqual(
      Array.from(goodState().tensors[1]!.values, (v) => Math.fround(v) * 2),
    )
    // A replay of base 1 (the receiver now holds 2) is refused, and so is the next base 2: the
    // reference went with the refusal.
    await sendRaw(delta(1))
    await until(() => rx.counters.rejected.DeltaBaseError === 1, 'the stale base refused')
    await sendRaw(delta(2))
    await until(() => rx.counters.rejected.DeltaBaseError === 2, 'the dropped reference')
    expect(accepted).toHaveLength(2)
    expect(rx.counters.receivedByCodec['delta+raw-f32']?.models).toBe(2)
    await expectStillServing()
  })

  it('accepts an f16 model from a peer that sends f16, and counts it by codec', async () => {
    const f16 = new ModelExchange({ node: sender, logger: defaultLogger() }, { task: TASK, codec: 'f16' })
    expect(f16.codec).toBe('f16')
    await tx.stop()
    await f16.start()
    const sent = await f16.push(receiver.peerId, goodState())
    await until(() => accepted.length === 1, 'the f16 model')
    await f16.stop()
    await tx.start()
    expect(sent).toBe(full.byteLength - 15 * 2)
    expect(rx.counters.receivedByCodec).toEqual({ f16: { models: 1, bytes: sent } })
    const got = Array.from(accepted[0]!.tensors[0]!.values)
    goodState().tensors[0]!.values.forEach((x, i) => {
      expect(Math.abs(got[i]! - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11)
    })
    await expectStillServing()
    expect(rx.counters.receivedByCodec['raw-f32']).toEqual({ models: 1, bytes: full.byteLength })
  })

  it('accepts top-k and partial frames as masked models, and counts them by codec', async () => {
    const sparse = new ModelExchange(
      { node: sender, logger: defaultLogger() },
      { task: TASK, codec: 'topk:0.5+int8' },
    )
    await tx.stop()
    await sparse.start()
    const sent = await sparse.push(receiver.peerId, goodState())
    await until(() => accepted.length === 1, 'the top-k model')
    await sparse.stop()
    await tx.start()
    expect(sparse.counters.sentByCodec).toEqual({ 'topk:0.5+int8': { models: 1, bytes: sent } })
    expect(rx.counters.receivedByCodec).toEqual({ 'topk+int8': { models: 1, bytes: sent } })
    const got = accepted[0] as MaskedState
    // round(0.5 * 12) = 6 kernel values and 2 of the 3 biases, the largest first.
    expect(got.masks!.map((m) => m!.reduce((a, b) => a + b, 0))).toEqual([6, 2])
    expect(Array.from(got.masks![1]!)).toEqual([0, 1, 1])
    // A hand-written partial frame with valid units.
    await sendRaw(partialFrame([0, 2]))
    await until(() => accepted.length === 2, 'the partial model')
    const part = accepted[1] as MaskedState
    expect(Array.from(part.masks![1]!)).toEqual([1, 0, 1])
    expect(Array.from(part.tensors[0]!.values)).toEqual([
      0.25, 0, 0.25, 0.25, 0, 0.25, 0.25, 0, 0.25, 0.25, 0, 0.25,
    ])
    // The same units without kernel rows 1 and 2 (quiet inputs): only rows 0 and 3 arrive.
    await sendRaw(partialFrame([0, 2], undefined, { axis: 0, bits: [0b1001], rows: 2 }))
    await until(() => accepted.length === 3, 'the partial model with kept rows')
    const kept = accepted[2] as MaskedState
    expect(Array.from(kept.masks![0]!)).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1])
    expect(Array.from(kept.tensors[0]!.values)).toEqual([0.25, 0, 0.25, 0, 0, 0, 0, 0, 0, 0.25, 0, 0.25])
    expect(rx.counters.rejected).toEqual({})
    await expectStillServing()
  })

  it('times out a peer that opens a stream and stalls', async () => {
    const stream = await sendRaw(full.subarray(0, 20), false)
    await until(() => rx.counters.rejected.StreamTimeoutError === 1, 'the idle timeout')
    await until(() => stream.status !== 'open', 'the stalled stream to be reset')
    expect(accepted).toHaveLength(0)
    await expectStillServing()
  })

  it('does not time out a sender whose bytes came while our own loop was stalled', async () => {
    const stream = await sendRaw(full.subarray(0, 20), false)
    await new Promise((r) => setTimeout(r, 50))
    if (!stream.send(full.subarray(20))) await stream.onDrain()
    const closed = stream.close()
    // Block this process (both nodes) for well past the 400 ms idle bound: the rest of the frame
    // is sent, but the receiver reads its socket only after its timers have run.
    const until1s = Date.now() + 1_000
    while (Date.now() < until1s) {
      /* a stalled event loop */
    }
    await closed
    await until(() => accepted.length === 1, 'the model sent during the stall')
    expect(rx.counters.rejected).toEqual({})
  })

  it('reads a padded (non-canonical) but bounded length varint correctly', async () => {
    const enc = encodeModel(goodState(), { task: TASK })
    expect(enc.header.byteLength).toBeLessThan(128)
    const padded = Uint8Array.from([
      enc.header.byteLength | 0x80,
      0x00,
      ...enc.header,
      ...full.subarray(full.byteLength - enc.payloadBytes),
    ])
    await sendRaw(padded)
    await until(() => accepted.length === 1, 'the model with a padded prefix')
    expect(rx.counters.rejected).toEqual({})
  })
})
