import { getEventListeners } from 'node:events'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { ComponentLogger, Connection, Logger, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { MODEL_PROTOCOL } from '../../../src/gossip/constants.ts'
import type { Verdict } from '../../../src/gossip/errors.ts'
import {
  ModelExchange,
  type ModelExchangeComponents,
  type ModelExchangeInit,
  type ModelMeta,
} from '../../../src/gossip/exchange.ts'
import { encodeFrame, layoutOf } from '../../../src/gossip/wire/codec.ts'
import { parseCodecSpec } from '../../../src/gossip/wire/codecs/index.ts'
import type { MaskedState } from '../../../src/merge/masks.ts'
import type { ModelState } from '../../../src/model/types.ts'

function fakeState(n = 6, fill = 0.25): ModelState {
  return {
    arch: 'mlp-test',
    age: 10,
    tensors: [
      { name: 'dense_0/kernel', shape: [n / 2, 2], values: new Float32Array(n).map((_, i) => i * fill) },
      { name: 'dense_0/bias', shape: [2], values: Float32Array.from([1, -1]) },
    ],
  }
}

/**
 * An in-memory network: dialProtocol picks the first of the offered protocols the dialled node
 * handles (as multistream-select does) and hands its handler one end of a stream pair.
 */
class FakeNetwork {
  private readonly handlers = new Map<string, Map<string, StreamHandler>>()

  node(self: PeerId): ModelExchangeComponents['node'] {
    const id = self.toString()
    return {
      handle: async (protocol, handler) => {
        const mine = this.handlers.get(id) ?? new Map<string, StreamHandler>()
        mine.set(protocol as string, handler as StreamHandler)
        this.handlers.set(id, mine)
      },
      unhandle: async (protocol) => {
        this.handlers.get(id)?.delete(protocol as string)
      },
      dialProtocol: async (target, protocols) => {
        const theirs = this.handlers.get(target.toString())
        const offered = typeof protocols === 'string' ? [protocols] : protocols
        const protocol = offered.find((p) => theirs?.has(p))
        if (protocol === undefined)
          throw new Error(`no ${offered.join(' or ')} handler at ${target.toString()}`)
        const [outbound, inbound] = await streamPair({ delay: 0 })
        outbound.protocol = protocol
        inbound.protocol = protocol
        void theirs!.get(protocol)!(inbound, { remotePeer: self } as Connection)
        return outbound
      },
    }
  }
}

async function newPeerId(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A ComponentLogger that records every formatted line (libp2p's %s/%d/%p placeholders filled in order). */
function recordingLogger(lines: string[]): ComponentLogger {
  const make = (): Logger => {
    const log = ((fmt: string, ...args: unknown[]) => {
      let i = 0
      lines.push(String(fmt).replace(/%[sdpa]/g, () => String(args[i++])))
    }) as Logger
    log.error = log
    log.trace = log
    log.enabled = true
    log.newScope = () => make()
    return log
  }
  return { forComponent: () => make() }
}

interface Received {
  state: ModelState
  meta: ModelMeta
  from: string
}

describe('ModelExchange', () => {
  const started: ModelExchange[] = []
  let net: FakeNetwork

  afterEach(async () => {
    await Promise.all(started.splice(0).map((x) => x.stop()))
  })

  async function pair(rxInit: Partial<ModelExchangeInit> = {}) {
    net = new FakeNetwork()
    const [txId, rxId] = [await newPeerId(), await newPeerId()]
    const received: Received[] = []
    const refused: Array<{ from: string; name: string; verdict: Verdict }> = []
    const rx = new ModelExchange(
      { node: net.node(rxId), logger: defaultLogger() },
      {
        task: 'mnist',
        arch: 'mlp-test',
        expectedLayout: layoutOf(fakeState()),
        onModel: (state, meta, from) => {
          received.push({ state, meta, from })
        },
        onRejected: (from, err, verdict) => refused.push({ from, name: err.name, verdict }),
        ...rxInit,
      },
    )
    const tx = new ModelExchange(
      { node: net.node(txId), logger: defaultLogger() },
      { task: 'mnist', chunkBytes: 8 },
    )
    await rx.start()
    await tx.start()
    started.push(rx, tx)
    /** Open a raw stream to the receiver, as a misbehaving peer would. */
    const rawStream = (): Promise<Stream> => net.node(txId).dialProtocol(rxId, MODEL_PROTOCOL)
    return { tx, rx, txId, rxId, received, refused, rawStream }
  }

  it('delivers a pushed model with its metadata and counts it on both sides', async () => {
    const { tx, rx, txId, rxId, received } = await pair()
    const sent = await tx.push(rxId, fakeState(), {
      accuracy: 0.75,
      coordinate: { vec: [1, 2], height: 0.5, error: 1 },
    })
    await until(() => received.length === 1, 'the model')
    const got = received[0]!
    expect(got.from).toBe(txId.toString())
    expect(Array.from(got.state.tensors[0]!.values)).toEqual(Array.from(fakeState().tensors[0]!.values))
    expect(got.state.age).toBe(10)
    expect(got.meta.accuracy).toBe(0.75)
    expect(got.meta.coordinate).toEqual({ vec: [1, 2], height: 0.5, error: 1 })
    expect(sent).toBe(
      encodeFrame(fakeState(), { task: 'mnist', accuracy: 0.75, coordinate: got.meta.coordinate }).byteLength,
    )
    expect(tx.counters).toMatchObject({ modelsSent: 1, bytesSent: sent, pushFailures: 0 })
    await until(() => rx.counters.bytesReceived === sent, 'byte count')
    expect(rx.counters).toMatchObject({ modelsReceived: 1, rejected: {} })
    expect(got.meta.codec).toBe('raw-f32')
    expect(rx.counters.receivedByCodec).toEqual({ 'raw-f32': { models: 1, bytes: sent } })
  })

  it("holds nothing on the caller's signal once a push is over, done or failed", async () => {
    const { tx, rxId } = await pair()
    const caller = new AbortController()
    for (let i = 0; i < 3; i++) await tx.push(rxId, fakeState(), { signal: caller.signal })
    const dead = await newPeerId()
    await expect(tx.push(dead, fakeState(), { signal: caller.signal })).rejects.toThrow()
    // Before, each push's listener stayed on the caller's (long-lived) signal until its deadline.
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0)
  })

  it('pushes in the configured codec; the receiver decodes whatever codec arrives', async () => {
    const { rx, rxId, received } = await pair()
    const tx = new ModelExchange(
      { node: net.node(await newPeerId()), logger: defaultLogger() },
      { task: 'mnist', codec: 'f16', chunkBytes: 5 },
    )
    await tx.start()
    started.push(tx)
    const sent = await tx.push(rxId, fakeState(), { accuracy: 0.5 })
    await until(() => received.length === 1, 'the model')
    expect(sent).toBe(
      encodeFrame(fakeState(), { task: 'mnist', accuracy: 0.5, codec: parseCodecSpec('f16') }).byteLength,
    )
    expect(sent).toBeLessThan(encodeFrame(fakeState(), { task: 'mnist', accuracy: 0.5 }).byteLength)
    expect(received[0]!.meta.codec).toBe('f16')
    // 0, 0.25, ..., 1.25 and +-1 are exact in f16.
    expect(Array.from(received[0]!.state.tensors[0]!.values)).toEqual(
      Array.from(fakeState().tensors[0]!.values),
    )
    expect(tx.counters.bytesSent).toBe(sent)
    expect(rx.counters.receivedByCodec).toEqual({ f16: { models: 1, bytes: sent } })
  })

  it('with delta frames, sends differences the receiver adds to its reference; a lost reference starts over', async () => {
    const { rx, rxId, received, refused } = await pair()
    const tx = new ModelExchange(
      { node: net.node(await newPeerId()), logger: defaultLogger() },
      { task: 'mnist', codec: 'delta+int2' },
    )
    await tx.start()
    started.push(tx)
    expect(tx.codec).toBe('delta+int2')
    const s = fakeState()
    s.tensors[0]!.values.set([0.11, -0.73, 0.32, 0.05, -0.21, 0.94])
    const errors: number[] = []
    for (let i = 0; i < 4; i++) {
      // Overlapping pushes to one peer are chained: each names the reference the previous left.
      await Promise.all([tx.push(rxId, s), tx.push(rxId, s)])
      await until(() => received.length === 2 * (i + 1), 'the models')
      const got = received[received.length - 1]!
      expect(got.meta).toMatchObject({ codec: 'delta+int2', base: 2 * i + 1 })
      errors.push(
        got.state.tensors[0]!.values.reduce((e, v, k) => e + (v - s.tensors[0]!.values[k]!) ** 2, 0),
      )
    }
    expect(refused).toEqual([])
    expect(errors[0]!).toBeGreaterThan(0)
    expect(errors[3]!).toBeLessThan(errors[0]! / 10)
    expect(rx.counters.receivedByCodec['delta+int2']?.models).toBe(8)
    expect(tx.counters.sentByCodec['delta+int2']?.models).toBe(8)

    // The receiver restarts: the next deltas name a reference it lacks and are refused (not the
    // sender's fault), and then the sender starts from zero.
    await rx.stop()
    const again: ModelState[] = []
    const rx2 = new ModelExchange(
      { node: net.node(rxId), logger: defaultLogger() },
      {
        task: 'mnist',
        expectedLayout: layoutOf(s),
        onModel: (state) => {
          again.push(state)
        },
        onRejected: (from, err, verdict) => refused.push({ from, name: err.name, verdict }),
      },
    )
    await rx2.start()
    started.push(rx2)
    // One failure keeps the reference (most leave the receiver's as it was); two in a row drop it.
    for (let i = 1; i <= 2; i++) {
      await expect(tx.push(rxId, s)).rejects.toThrow(/acknowledgement/)
      await until(() => refused.length === i, 'the refusal')
      expect(refused[i - 1]).toMatchObject({ name: 'DeltaBaseError', verdict: 'ignore' })
    }
    await tx.push(rxId, s)
    await until(() => again.length === 1, 'the model after the restart')
    expect(tx.counters.pushFailures).toBe(2)
    // The frame went out whole; the receiver refused it, so the push failed waiting for the ack.
    expect(Object.keys(tx.counters.pushFailuresByReason)).toEqual([expect.stringMatching(/^ack:/)])
  })

  it('with delta frames, pushes plain frames of the inner codec to a node that does not speak the delta protocol', async () => {
    const { rxId: newId, received: newReceived } = await pair()
    // A node from before delta frames handles MODEL_PROTOCOL only (and refuses version 2 frames).
    const oldReceived: ModelMeta[] = []
    const oldId = await newPeerId()
    const old = new ModelExchange(
      { node: net.node(oldId), logger: defaultLogger() },
      {
        task: 'mnist',
        deltaProtocol: false,
        onModel: (_state, meta) => {
          oldReceived.push(meta)
        },
      },
    )
    await old.start()
    started.push(old)
    const tx = new ModelExchange(
      { node: net.node(await newPeerId()), logger: defaultLogger() },
      { task: 'mnist', codec: 'delta+int4' },
    )
    await tx.start()
    started.push(tx)
    const s = fakeState()
    for (let i = 0; i < 2; i++) {
      await tx.push(oldId, s)
      await tx.push(newId, s)
    }
    await until(() => oldReceived.length === 2 && newReceived.length === 2, 'the models')
    // Version 1 without a base, which the old node understands; the new node gets delta frames.
    expect(oldReceived.map((m) => [m.codec, m.base])).toEqual([
      ['int4', undefined],
      ['int4', undefined],
    ])
    expect(newReceived.map((r) => [r.meta.codec, r.meta.base])).toEqual([
      ['delta+int4', 0],
      ['delta+int4', 1],
    ])
    expect(tx.counters.sentByCodec.int4?.models).toBe(2)
    expect(tx.counters.sentByCodec['delta+int4']?.models).toBe(2)
    expect(tx.counters.pushFailures).toBe(0)
  })

  it('leaves quiet inputs out only for nodes that speak the quiet protocol, every row for older ones', async () => {
    net = new FakeNetwork()
    // An MLP of 4 inputs, 2 hidden units, 2 classes; inputs 1 and 3 are quiet.
    const state = (): ModelState => ({
      arch: 'mlp-quiet',
      age: 10,
      tensors: [
        { name: 'dense_0/kernel', shape: [4, 2], values: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) },
        { name: 'dense_0/bias', shape: [2], values: Float32Array.from([1, -1]) },
        { name: 'dense_1/kernel', shape: [2, 2], values: Float32Array.from([1, 2, 3, 4]) },
        { name: 'dense_1/bias', shape: [2], values: Float32Array.from([0.5, -0.5]) },
      ],
    })
    const receiver = async (init: Partial<ModelExchangeInit>) => {
      const id = await newPeerId()
      const got: MaskedState[] = []
      const rx = new ModelExchange(
        { node: net.node(id), logger: defaultLogger() },
        { task: 'mnist', onModel: (s) => void got.push(s as MaskedState), ...init },
      )
      await rx.start()
      started.push(rx)
      return { id, got }
    }
    const current = await receiver({})
    const beforeQuiet = await receiver({ quietProtocol: false })
    const beforeDelta = await receiver({ deltaProtocol: false })
    const kernelRows = (m: MaskedState) =>
      [0, 1, 2, 3].map((r) => m.masks![0]![r * 2]! + m.masks![0]![r * 2 + 1]!)
    for (const codec of ['delta+partial:0.5+int8', 'partial:0.5+int8']) {
      const tx = new ModelExchange(
        { node: net.node(await newPeerId()), logger: defaultLogger() },
        { task: 'mnist', codec, codecOptions: { quietInputs: Uint8Array.from([0, 1, 0, 1]) } },
      )
      await tx.start()
      started.push(tx)
      for (const r of [current, beforeQuiet, beforeDelta]) {
        r.got.length = 0
        await tx.push(r.id, state())
        await until(() => r.got.length === 1, `the ${codec} model`)
      }
      // One unit of two a frame: rows 1 and 3 left out for the current node only.
      expect(kernelRows(current.got[0]!), codec).toEqual([1, 0, 1, 0])
      expect(kernelRows(beforeQuiet.got[0]!), codec).toEqual([1, 1, 1, 1])
      expect(kernelRows(beforeDelta.got[0]!), codec).toEqual([1, 1, 1, 1])
      expect(tx.counters.pushFailures).toBe(0)
    }
  })

  it('refuses an unknown codec spec at construction', () => {
    const make = () =>
      new ModelExchange(
        { node: new FakeNetwork().node({} as PeerId), logger: defaultLogger() },
        { task: 'mnist', codec: 'int3' },
      )
    expect(make).toThrowError(expect.objectContaining({ name: 'InvalidCodecSpecError' }))
  })

  it('takes sender metadata from describe() when push() is not given any', async () => {
    const { rxId, received } = await pair()
    let asking = true
    const tx = new ModelExchange(
      { node: net.node(await newPeerId()), logger: defaultLogger() },
      { task: 'mnist', describe: () => ({ accuracy: 0.5, wantsModel: asking }) },
    )
    await tx.start()
    started.push(tx)
    await tx.push(rxId.toString(), fakeState())
    await until(() => received.length === 1, 'the model')
    expect(received[0]!.meta.accuracy).toBe(0.5)
    expect(received[0]!.meta.wantsModel).toBe(true)
    asking = false
    await tx.push(rxId.toString(), fakeState())
    await until(() => received.length === 2, 'the second model')
    expect(received[1]!.meta.wantsModel).toBeUndefined()
  })

  it('ignores a model of another task without calling onModel', async () => {
    const { rx, rxId, received, refused } = await pair({ task: 'fashion' })
    const tx = new ModelExchange(
      { node: net.node(await newPeerId()), logger: defaultLogger() },
      { task: 'mnist' },
    )
    await tx.start()
    started.push(tx)
    await tx.push(rxId, fakeState()).catch(() => {})
    await until(() => rx.counters.rejected.TaskMismatchError === 1, 'the rejection')
    expect(received).toHaveLength(0)
    expect(refused[0]).toMatchObject({ name: 'TaskMismatchError', verdict: 'ignore' })
  })

  it('rejects NaN values and keeps serving', async () => {
    const { tx, rx, rxId, received, refused } = await pair()
    const bad = fakeState()
    bad.tensors[1]!.values[0] = Number.NaN
    await tx.push(rxId, bad).catch(() => {})
    await until(() => rx.counters.rejected.NonFiniteValueError === 1, 'the rejection')
    expect(refused[0]).toMatchObject({ name: 'NonFiniteValueError', verdict: 'reject' })
    await tx.push(rxId, fakeState())
    await until(() => received.length === 1, 'a good model after the bad one')
    expect(Number.isNaN(received[0]!.state.tensors[1]!.values[0])).toBe(false)
  })

  it('rejects bytes after the payload', async () => {
    const { rx, received, rawStream } = await pair()
    const s = await rawStream()
    const frame = encodeFrame(fakeState(), { task: 'mnist' })
    s.send(frame)
    s.send(Uint8Array.from([1, 2, 3]))
    await s.close().catch(() => {})
    await until(() => rx.counters.rejected.PayloadLengthError === 1, 'the rejection')
    expect(received).toHaveLength(0)
  })

  it('waits for the sender to close before accepting, and times out a stalled stream', async () => {
    const { rx, received, rawStream } = await pair({ idleTimeoutMs: 100 })
    const s = await rawStream()
    s.send(encodeFrame(fakeState(), { task: 'mnist' }))
    // Whole frame, but the write end stays open: a trailing byte could still come.
    await until(() => rx.counters.rejected.StreamTimeoutError === 1, 'the idle timeout')
    expect(received).toHaveLength(0)
  })

  it('enforces the total deadline even while bytes keep trickling in', async () => {
    const { rx, rawStream } = await pair({ idleTimeoutMs: 1_000, totalTimeoutMs: 150 })
    const s = await rawStream()
    const frame = encodeFrame(fakeState(), { task: 'mnist' })
    for (let i = 0; i < frame.byteLength - 1 && rx.counters.rejected.StreamTimeoutError == null; i++) {
      if (s.status !== 'open') break
      s.send(frame.subarray(i, i + 1))
      await new Promise((r) => setTimeout(r, 20))
    }
    await until(() => rx.counters.rejected.StreamTimeoutError === 1, 'the deadline')
  })

  it('refuses transfers beyond the concurrency limit', async () => {
    const { tx, rx, rxId, received, rawStream } = await pair({ maxConcurrentInbound: 1, idleTimeoutMs: 300 })
    const stalled = await rawStream()
    stalled.send(Uint8Array.from([5]))
    const second = await net.node(await newPeerId()).dialProtocol(rxId, MODEL_PROTOCOL)
    second.send(Uint8Array.from([5]))
    await until(() => rx.counters.rejected.TransferLimitError === 1, 'the refusal')
    await until(() => rx.counters.rejected.StreamTimeoutError === 1, 'the stalled transfer to time out')
    await tx.push(rxId, fakeState())
    await until(() => received.length === 1, 'a model once the slot is free')
  })

  it('limits transfers per remote peer: one peer cannot take every slot', async () => {
    const { rx, rxId, received, refused, rawStream } = await pair({
      maxInboundPerPeer: 1,
      idleTimeoutMs: 300,
    })
    const first = await rawStream()
    first.send(Uint8Array.from([5]))
    const second = await rawStream()
    second.send(Uint8Array.from([5]))
    await until(() => rx.counters.rejected.PeerTransferLimitError === 1, 'the per-peer refusal')
    expect(refused[0]).toMatchObject({ name: 'PeerTransferLimitError', verdict: 'ignore' })
    // Another peer still gets through while the first one holds its slot.
    const other = new ModelExchange(
      { node: net.node(await newPeerId()), logger: defaultLogger() },
      { task: 'mnist' },
    )
    await other.start()
    started.push(other)
    await other.push(rxId, fakeState())
    await until(() => received.length === 1, "the other peer's model")
    expect(rx.counters.rejected.TransferLimitError).toBeUndefined()
  })

  it('allows two transfers per peer by default (a push may overlap the end of the previous one)', async () => {
    const { rx, rawStream } = await pair({ idleTimeoutMs: 200 })
    for (let i = 0; i < 3; i++) (await rawStream()).send(Uint8Array.from([5]))
    await until(() => rx.counters.rejected.PeerTransferLimitError === 1, 'the third stream to be refused')
    await until(() => rx.counters.rejected.StreamTimeoutError === 2, 'the two admitted streams to time out')
  })

  it('keeps the last slots for known-good peers when slots are scarce', async () => {
    const good = await newPeerId()
    const { rx, rxId, received, refused } = await pair({
      maxConcurrentInbound: 3,
      reservedInbound: 1,
      priority: (id) => id === good.toString(),
      idleTimeoutMs: 2_000,
    })
    // Two strangers hold the two open slots; a third is refused although one slot is free.
    const strangers = [await newPeerId(), await newPeerId(), await newPeerId()]
    for (const id of strangers) {
      const stream = await net.node(id).dialProtocol(rxId, MODEL_PROTOCOL)
      stream.send(Uint8Array.from([5]))
    }
    await until(() => rx.counters.rejected.TransferLimitError === 1, 'the stranger to be refused')
    expect(refused.map((r) => r.from)).toEqual([strangers[2]!.toString()])
    // The known-good peer takes the reserved slot.
    const tx = new ModelExchange({ node: net.node(good), logger: defaultLogger() }, { task: 'mnist' })
    await tx.start()
    started.push(tx)
    await tx.push(rxId, fakeState())
    await until(() => received.length === 1, 'the known-good model')
    expect(received[0]!.from).toBe(good.toString())
  })

  it('asks admit() before reading: a refused sender costs no decoding and is not reported twice', async () => {
    const asked: string[] = []
    let allow = 1
    const { tx, rx, txId, rxId, received, refused } = await pair({
      admit: (from) => {
        asked.push(from)
        return allow-- > 0
      },
    })
    await tx.push(rxId, fakeState())
    await until(() => received.length === 1, 'the admitted model')
    const before = rx.counters.bytesReceived
    // The receiver aborts the stream unread: the push fails or completes into a reset stream.
    await tx.push(rxId, fakeState()).catch(() => {})
    await until(() => rx.counters.rejected.FairShareError === 1, 'the refusal')
    expect(asked).toEqual([txId.toString(), txId.toString()])
    expect(received).toHaveLength(1)
    expect(rx.counters.modelsReceived).toBe(1)
    expect(rx.counters.bytesReceived).toBe(before)
    // The admit callback's owner reports the refusal; the exchange does not report it again.
    expect(refused).toEqual([])
  })

  it('has no reserve without a priority callback', async () => {
    const { rx, rxId } = await pair({ maxConcurrentInbound: 2, reservedInbound: 1, idleTimeoutMs: 200 })
    for (let i = 0; i < 2; i++) {
      const stranger = await net.node(await newPeerId()).dialProtocol(rxId, MODEL_PROTOCOL)
      stranger.send(Uint8Array.from([5]))
    }
    await until(() => rx.counters.rejected.StreamTimeoutError === 2, 'both strangers to be admitted')
    expect(rx.counters.rejected.TransferLimitError).toBeUndefined()
  })

  it('logs peer-supplied strings escaped and truncated', async () => {
    const lines: string[] = []
    // The pair's receiver steps aside for one that logs into `lines`.
    const { rxId, rx } = await pair()
    await rx.stop()
    const logged = new ModelExchange(
      { node: net.node(rxId), logger: recordingLogger(lines) },
      { task: 'mnist', arch: 'mlp-test', expectedLayout: layoutOf(fakeState()) },
    )
    await logged.start()
    started.push(logged)
    const hostileTask = `evil\u0000\n[fake] accepted\u001b[2J${'\u202e'.repeat(5000)}`
    const s = await net.node(await newPeerId()).dialProtocol(rxId, MODEL_PROTOCOL)
    s.send(encodeFrame(fakeState(), { task: hostileTask }))
    await s.close().catch(() => {})
    await until(() => logged.counters.rejected.TaskMismatchError === 1, 'the rejection')
    const line = lines.find((l) => l.includes('TaskMismatchError'))
    expect(line).toBeDefined()
    expect(line).toContain('evil\\x00\\n[fake] accepted\\x1b[2J\\u202e')
    expect([...line!].some((c) => c.charCodeAt(0) < 0x20 || c === '\u202e')).toBe(false)
    expect(line!.length).toBeLessThan(1000)
  })

  it('sends a model larger than one chunk intact', async () => {
    const big = fakeState(20_000, 1e-3)
    const { tx, rxId, received } = await pair({ expectedLayout: layoutOf(big) })
    await tx.push(rxId, big)
    await until(() => received.length === 1, 'the big model')
    expect(received[0]!.state.tensors[0]!.values).toEqual(big.tensors[0]!.values)
  })

  it('survives an onModel callback that throws', async () => {
    let calls = 0
    const { tx, rx, rxId } = await pair({
      onModel: () => {
        calls++
        throw new Error('merge failed')
      },
    })
    await tx.push(rxId, fakeState())
    await tx.push(rxId, fakeState())
    await until(() => calls === 2, 'both callbacks')
    expect(rx.counters.modelsReceived).toBe(2)
  })

  it('fails a push whose signal is aborted and counts it', async () => {
    const { tx, rxId } = await pair()
    await expect(tx.push(rxId, fakeState(), { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    })
    expect(tx.counters.pushFailures).toBe(1)
    // The in-memory dial ignores the signal; the first write checks it.
    expect(tx.counters.pushFailuresByReason).toEqual({ 'send:AbortError': 1 })
    expect(tx.counters.modelsSent).toBe(0)
  })

  it('gives up a push at the total deadline with StreamTimeoutError', async () => {
    const hanging: ModelExchangeComponents['node'] = {
      handle: async () => {},
      unhandle: async () => {},
      // A dial that never completes until aborted, like an unreachable peer.
      dialProtocol: (_peer, _protocol, options) =>
        new Promise((_resolve, reject) => {
          options?.signal?.addEventListener('abort', () => reject(options.signal?.reason))
        }),
    }
    const tx = new ModelExchange(
      { node: hanging, logger: defaultLogger() },
      { task: 'mnist', totalTimeoutMs: 50 },
    )
    await tx.start()
    started.push(tx)
    await expect(tx.push(await newPeerId(), fakeState())).rejects.toMatchObject({
      name: 'StreamTimeoutError',
    })
    expect(tx.counters.pushFailures).toBe(1)
    expect(tx.counters.pushFailuresByReason).toEqual({ 'dial:StreamTimeoutError': 1 })
    expect(tx.counters.pushFailureMessages).toEqual({ 'dial:StreamTimeoutError': 'push exceeded 50 ms' })
  })

  it('starts and stops idempotently and refuses pushes when stopped', async () => {
    const { tx, rx, rxId, received, rawStream } = await pair()
    await rx.start()
    const s = await rawStream()
    s.send(Uint8Array.from([5]))
    await rx.stop()
    await rx.stop()
    expect(rx.isStarted()).toBe(false)
    await until(() => s.status !== 'open', 'the in-flight stream to be reset')
    // Our own shutdown is not the sender's fault: not counted as a rejection.
    expect(rx.counters.rejected).toEqual({})
    await expect(tx.push(rxId, fakeState())).rejects.toThrow()
    await tx.stop()
    await expect(tx.push(rxId, fakeState())).rejects.toMatchObject({ name: 'NotStartedError' })
    expect(received).toHaveLength(0)
  })
})
