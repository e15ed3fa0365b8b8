import { defaultLogger } from '@libp2p/logger'
import { afterEach, describe, expect, it } from 'vitest'
import { RelayedOnlyError } from '../../../src/gossip/errors.ts'
import { Learner, type LocalModel, type ModelPusher } from '../../../src/gossip/learner.ts'
import { type PeerEntry, type PeerSampler, UniformSampler } from '../../../src/gossip/sampling/sampler.ts'
import type { MaskedState } from '../../../src/merge/masks.ts'
import type { MergeResult, Merger } from '../../../src/merge/pipeline.ts'
import type { ModelState } from '../../../src/model/types.ts'

/** A one-number "model": training adds 1 per step, so merges are visible in the value. */
class FakeModel implements LocalModel {
  value = 0
  age = 0
  async train(steps: number): Promise<{ samples: number; loss: number }> {
    await new Promise((r) => setImmediate(r))
    this.value += steps
    this.age += steps
    return { samples: steps, loss: 1 }
  }
  getState(): ModelState {
    return {
      arch: 'fake',
      age: this.age,
      tensors: [{ name: 'w', shape: [1], values: Float32Array.of(this.value) }],
    }
  }
  setState(s: ModelState): void {
    this.value = s.tensors[0]!.values[0]!
    this.age = s.age
  }
  async evaluate(): Promise<number> {
    return 0.5
  }
}

const meanMerger: Merger = (local, received) => {
  const all = [local, ...received]
  const v = all.reduce((s, m) => s + m.tensors[0]!.values[0]!, 0) / all.length
  return {
    arch: local.arch,
    age: Math.max(...all.map((m) => m.age)),
    tensors: [{ name: 'w', shape: [1], values: Float32Array.of(v) }],
  }
}

/** A pusher that records the first weight of every model it pushes. */
const recordingPusher = (pushed: number[]) => ({
  push: async (_to: string, s: ModelState) => {
    pushed.push(s.tensors[0]!.values[0]!)
    return 1
  },
})

/** A pusher that records whom each push went to, and the first weight of its model. */
const addressedPusher = (pushed: Array<{ to: string; value: number }>) => ({
  push: async (to: string, s: ModelState) => {
    pushed.push({ to, value: s.tensors[0]!.values[0]! })
    return 1
  },
})

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(cond()).toBe(true)
}

describe('Learner', () => {
  let learner: Learner | undefined
  afterEach(async () => learner?.stop())

  it('trains, pushes to sampled peers and merges what it receives', async () => {
    const model = new FakeModel()
    const pushed: Array<{ to: string; value: number }> = []
    learner = new Learner(
      {
        model,
        pusher: addressedPusher(pushed),
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
      },
      { minRoundMs: 0, stepsPerRound: 10, evalIntervalMs: 0 },
    )
    learner.start()
    await until(() => pushed.length >= 3)
    expect(pushed.every((p) => p.to === 'a')).toBe(true)
    learner.receive(
      { arch: 'fake', age: 1, tensors: [{ name: 'w', shape: [1], values: Float32Array.of(-1e6) }] },
      'a',
    )
    await until(() => learner!.stats.merges === 1)
    expect(model.value).toBeLessThan(0)
    expect(learner.stats.lastAccuracy).toBe(0.5)
    await learner.stop()
    expect(learner.running).toBe(false)
  })

  it("lets go of each push's signal once the push is over: stop() aborts none of the finished ones", async () => {
    const finished: AbortSignal[] = []
    learner = new Learner(
      {
        model: new FakeModel(),
        pusher: {
          push: async (_to: string, _s: ModelState, options?: { signal?: AbortSignal }) => {
            await new Promise((r) => setImmediate(r))
            finished.push(options!.signal!)
            return 1
          },
        },
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
      },
      { minRoundMs: 0, stepsPerRound: 10, evalIntervalMs: 0 },
    )
    learner.start()
    await until(() => finished.length >= 5)
    const done = finished.slice(0, 5)
    // Each stayed on the learner's stop signal until its push deadline (20 s), before.
    await new Promise((r) => setTimeout(r, 10))
    await learner.stop()
    expect(done.filter((s) => s.aborted)).toEqual([])
  })

  it('after start, holds its pushes while catching up with a peer ahead of it, then pushes what it merged', async () => {
    const model = new FakeModel()
    const pushed: number[] = []
    learner = new Learner(
      {
        model,
        pusher: recordingPusher(pushed),
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
      },
      {
        minRoundMs: 0,
        stepsPerRound: 10,
        evalIntervalMs: 0,
        defences: false,
        catchUp: { merges: 2, silenceMs: 60_000 },
      },
    )
    // A model that claims far more training than ours arrives before the first round.
    const ahead = (value: number) => ({
      arch: 'fake',
      age: 1e6,
      tensors: [{ name: 'w', shape: [1], values: Float32Array.of(value) }],
    })
    learner.receive(ahead(-1e6), 'a')
    learner.start()
    await until(() => learner!.stats.merges === 1 && learner!.stats.pushesHeld > 0)
    expect(pushed).toEqual([])
    learner.receive(ahead(-1e6), 'a')
    await until(() => pushed.length > 0)
    // What it finally pushes has taken in both received models.
    expect(learner.stats.modelsMerged).toBe(2)
    expect(pushed[0]!).toBeLessThan(-1e5)
  })

  it('copies the weights once per round and pushes the merged model of that round', async () => {
    const model = new FakeModel()
    let copies = 0
    const getState = model.getState.bind(model)
    model.getState = () => {
      copies++
      return getState()
    }
    const pushed: number[] = []
    let merged: number | undefined
    learner = new Learner(
      {
        model,
        pusher: recordingPusher(pushed),
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: (local, received) => {
          const out = meanMerger(local, received)
          merged = out.tensors[0]!.values[0]!
          return out
        },
        logger: defaultLogger(),
      },
      { minRoundMs: 0, stepsPerRound: 10, evalIntervalMs: 0, defences: false },
    )
    learner.start()
    await until(() => pushed.length >= 2)
    learner.receive(
      { arch: 'fake', age: 1, tensors: [{ name: 'w', shape: [1], values: Float32Array.of(-1e6) }] },
      'a',
    )
    await until(() => learner!.stats.merges === 1 && pushed.some((v) => v < 0))
    await learner.stop()
    // The push after the merge carries the merged weights, not the ones before it.
    expect(pushed.find((v) => v < 0)).toBe(merged)
    // One copy at construction (the last good state), then one per round: none for the push.
    expect(copies).toBeLessThanOrEqual(learner.stats.rounds + 1)
  })

  it('with gossip off never pushes and ignores received models', async () => {
    const model = new FakeModel()
    let pushes = 0
    learner = new Learner(
      {
        model,
        pusher: { push: async () => ++pushes },
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
      },
      { minRoundMs: 0, stepsPerRound: 5, gossip: false },
    )
    learner.receive(model.getState(), 'a')
    learner.start()
    await until(() => learner!.stats.rounds >= 5)
    expect(pushes).toBe(0)
    expect(learner.stats.merges).toBe(0)
  })

  it('keeps its model when the merger refuses, and reports failed pushes', async () => {
    const model = new FakeModel()
    const failed: string[] = []
    learner = new Learner(
      {
        model,
        pusher: { push: async () => Promise.reject(new Error('unreachable')) },
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'dead', lastSeen: Date.now() }],
        merger: () => {
          throw new Error('arch mismatch')
        },
        logger: defaultLogger(),
        onPushFailed: (id) => failed.push(id),
      },
      { minRoundMs: 0, stepsPerRound: 5 },
    )
    learner.start()
    await until(() => failed.length > 0)
    const before = model.value
    learner.receive({ arch: 'other', age: 1, tensors: [] }, 'x')
    learner.mergePending()
    expect(model.value).toBe(before)
    expect(learner.stats.pushesFailed).toBeGreaterThan(0)
  })

  it('counts a push refused for a relayed-only peer apart from failures, and tells no one', async () => {
    const model = new FakeModel()
    const failed: string[] = []
    learner = new Learner(
      {
        model,
        pusher: { push: async () => Promise.reject(new RelayedOnlyError('only through a relay')) },
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'natted', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
        onPushFailed: (id) => failed.push(id),
      },
      { minRoundMs: 0, stepsPerRound: 5 },
    )
    learner.start()
    await until(() => learner!.stats.pushesRelayedOnly > 0)
    expect(learner.stats.pushesFailed).toBe(0)
    expect(failed).toEqual([])
  })

  it('pushes nothing to suspects while others are on offer, and to suspects when they are all that is left', async () => {
    const pushedTo: string[] = []
    const suspects = new Set(['bad1', 'bad2'])
    let view = ['good', 'bad1', 'bad2']
    learner = new Learner(
      {
        model: new FakeModel(),
        pusher: {
          push: async (to) => {
            pushedTo.push(to)
            return 1
          },
        },
        sampler: new UniformSampler(),
        view: () => view.map((peerId) => ({ peerId, lastSeen: Date.now() })),
        merger: meanMerger,
        logger: defaultLogger(),
        isSuspect: (id) => suspects.has(id),
      },
      { minRoundMs: 0, stepsPerRound: 5, fanout: 3, evalIntervalMs: 0 },
    )
    learner.start()
    await until(() => pushedTo.length >= 10)
    // Fanout 3 would reach all three every round; only the unsuspected one was pushed to.
    expect(new Set(pushedTo)).toEqual(new Set(['good']))
    expect(learner.stats.defences.suspectsSkipped).toBeGreaterThanOrEqual(2 * 10)
    view = ['bad1', 'bad2']
    const before = pushedTo.length
    await until(() => pushedTo.length >= before + 4)
    expect(new Set(pushedTo.slice(before))).toEqual(new Set(['bad1', 'bad2']))
  })

  it('lets timers and I/O run between rounds even when training never yields', async () => {
    // Training that completes in microtasks only, like a few fast tfjs steps. After CAP rounds it
    // throws, which ends the loop: without a yield per round the timer could only fire after that.
    const CAP = 5000
    const model = new FakeModel()
    let calls = 0
    model.train = async (steps: number) => {
      if (++calls > CAP) throw new Error('starved the event loop')
      model.value += steps
      model.age += steps
      return { samples: steps, loss: 1 }
    }
    learner = new Learner(
      {
        model,
        pusher: { push: async () => 1 },
        sampler: new UniformSampler(),
        view: () => [],
        merger: meanMerger,
        logger: defaultLogger(),
      },
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9 },
    )
    learner.start()
    const roundsWhenTimerFired = await new Promise<number>((resolve) => setTimeout(() => resolve(calls), 1))
    expect(roundsWhenTimerFired).toBeGreaterThan(0)
    expect(roundsWhenTimerFired).toBeLessThan(CAP)
  })
})

/** A one-number model of a given value and age (what a sender pushes). */
const model1 = (value: number, age = 1): ModelState => ({
  arch: 'fake',
  age,
  tensors: [{ name: 'w', shape: [1], values: Float32Array.of(value) }],
})

/** A merger that records what it was given and averages like meanMerger. */
function recordingMerger() {
  const calls: number[][] = []
  const merger: Merger = (local, received) => {
    calls.push(received.map((r) => r.tensors[0]!.values[0]!))
    return meanMerger(local, received)
  }
  return { merger, calls }
}

type Verdicts = Array<{ from: string; verdict: string; reason: string }>

/** A FakeModel whose every training call moves the returned clock (ms) by `msPerCall`. */
function clockedModel(msPerCall: number): { model: FakeModel; clock: { t: number } } {
  const clock = { t: 0 }
  const model = new FakeModel()
  const train = model.train.bind(model)
  model.train = async (steps: number) => {
    clock.t += msPerCall
    return train(steps)
  }
  return { model, clock }
}

function idleLearner(
  init: ConstructorParameters<typeof Learner>[1],
  extra: Partial<ConstructorParameters<typeof Learner>[0]> = {},
) {
  const model = (extra.model as FakeModel | undefined) ?? new FakeModel()
  const verdicts: Verdicts = []
  const { merger, calls } = recordingMerger()
  const l = new Learner(
    {
      model,
      pusher: { push: async () => 1 },
      sampler: new UniformSampler(),
      view: () => [],
      merger,
      logger: defaultLogger(),
      onVerdict: (from, r) => verdicts.push({ from, ...r }),
      ...extra,
    },
    // Rounds of steps alone: these tests count rounds, not time.
    { minRoundMs: 0, ...init },
  )
  return { learner: l, model, verdicts, calls }
}

describe('Learner evaluation', () => {
  let learner: Learner | undefined
  afterEach(async () => learner?.stop())

  it('evaluates only while evaluating takes at most its share of the training time', async () => {
    // A clock the fake model moves: a round of training takes 10 ms, an evaluation 30 ms.
    const { model, clock } = clockedModel(10)
    let evaluations = 0
    model.evaluate = async () => {
      clock.t += 30
      evaluations++
      return 0.5
    }
    const t = idleLearner(
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 0, evalShare: 0.25 },
      { model, now: () => clock.t },
    )
    learner = t.learner
    learner.start()
    await until(() => learner!.stats.rounds >= 60)
    await learner.stop()
    const rounds = learner.stats.rounds
    // 30 ms of evaluation per 120 ms of training: one evaluation every 12 rounds, the first at once.
    expect(evaluations).toBeGreaterThanOrEqual(Math.floor(rounds / 12))
    expect(evaluations).toBeLessThanOrEqual(Math.floor(rounds / 12) + 1)
    expect(evaluations).toBeLessThan(rounds / 4)
  })

  it('refuses a share that is not positive', () => {
    expect(() => idleLearner({ evalShare: 0 })).toThrow(/evalShare/)
  })
})

describe('Learner defences', () => {
  let learner: Learner | undefined
  afterEach(async () => learner?.stop())

  it('fair share: drops one sender over its share, not the others', () => {
    let now = 0
    const t = idleLearner({ defences: { fairShare: { ratePerS: 1, burst: 2 } } }, { now: () => now })
    for (let v = 1; v <= 5; v++) t.learner.receive(model1(v), 'flood')
    t.learner.receive(model1(10), 'a')
    t.learner.receive(model1(20), 'b')
    t.learner.receive(model1(21), 'b')
    expect(t.learner.stats.defences.rateLimited).toBe(3)
    expect(t.verdicts).toEqual(
      [3, 4, 5].map(() => ({ from: 'flood', verdict: 'ignore', reason: 'rate-limited' })),
    )
    t.learner.mergePending()
    // flood's newest accepted model is its second; a and b got everything they sent.
    expect(t.calls).toEqual([[2, 10, 21]])
    // A second later the bucket holds one more token.
    now = 1000
    expect(t.learner.receive(model1(6), 'flood')).toBe(true)
    expect(t.learner.receive(model1(7), 'flood')).toBe(false)
    expect(t.learner.stats.defences.rateLimited).toBe(4)
    expect(t.learner.stats.defences.byReason).toEqual({ 'rate-limited': 4 })
  })

  it('fair share taken before a model is read: admit() takes the token, receive({ admitted }) not again', () => {
    const t = idleLearner({ defences: { fairShare: { ratePerS: 1, burst: 2 } } }, { now: () => 0 })
    expect(t.learner.admit('flood')).toBe(true)
    expect(t.learner.receive(model1(1), 'flood', { admitted: true })).toBe(true)
    expect(t.learner.admit('flood')).toBe(true)
    expect(t.learner.receive(model1(2), 'flood', { admitted: true })).toBe(true)
    expect(t.learner.admit('flood')).toBe(false)
    expect(t.learner.admit('other')).toBe(true)
    expect(t.learner.stats.defences.rateLimited).toBe(1)
    expect(t.verdicts).toEqual([{ from: 'flood', verdict: 'ignore', reason: 'rate-limited' }])
    // Without `admitted`, receive takes a token itself: the bucket is empty.
    expect(t.learner.receive(model1(3), 'flood')).toBe(false)
  })

  it('fair share: a sender our sampler sends more picks may send us that much more', async () => {
    // A round of training takes 100 ms of the fake clock: 10 rounds a second, fanout 1.
    const { model, clock } = clockedModel(100)
    const view: PeerEntry[] = Array.from({ length: 10 }, (_, i) => ({ peerId: `p${i}`, lastSeen: 0 }))
    // Our sampler gives p0 half its picks (a near peer), p1 1 % (under the uniform 10 %), pushes nowhere.
    const sampler: PeerSampler = {
      sample: () => [],
      shares: () =>
        new Map([
          ['p0', 0.5],
          ['p1', 0.01],
        ]),
    }
    const t = idleLearner(
      { stepsPerRound: 1, defences: { fairShare: { burst: 1 } } },
      { model, now: () => clock.t, view: () => view, sampler },
    )
    learner = t.learner
    learner.start()
    await until(() => learner!.stats.rounds >= 20)
    await learner.stop()
    // Every sender offers a model each 50 ms for 2 s: p5 has the uniform share (2 x 10/s x 0.1),
    // p0 five times that; p1 is held to no less than the uniform share.
    const admitted = new Map<string, number>()
    for (let k = 0; k < 40; k++) {
      clock.t += 50
      for (const id of ['p0', 'p1', 'p5'])
        if (t.learner.admit(id)) admitted.set(id, (admitted.get(id) ?? 0) + 1)
    }
    expect(admitted.get('p5')).toBeGreaterThanOrEqual(2)
    expect(admitted.get('p0')!).toBeGreaterThanOrEqual(3 * admitted.get('p5')!)
    expect(admitted.get('p0')!).toBeLessThan(40)
    expect(admitted.get('p1')).toBe(admitted.get('p5'))
  })

  it('admits everything with defences off', () => {
    const t = idleLearner({ defences: false }, { now: () => 0 })
    for (let i = 0; i < 10; i++) expect(t.learner.admit('flood')).toBe(true)
  })

  /** A learner whose merges record each input's weight by its first value; senders 'flood', 'a' and 'b'. */
  function weighedLearner(sampler?: PeerSampler) {
    let now = 0
    const weights: Array<Record<string, number | undefined>> = []
    const view: PeerEntry[] = ['flood', 'a', 'b'].map((peerId) => ({ peerId, lastSeen: 0 }))
    const t = idleLearner(
      { defences: { fairShare: { ratePerS: 100, burst: 100 } } },
      {
        now: () => now,
        view: () => view,
        ...(sampler !== undefined ? { sampler } : {}),
        merger: {
          merge: (local: ModelState, received: readonly MaskedState[]) => {
            weights.push(Object.fromEntries(received.map((r) => [r.tensors[0]!.values[0]!, r.weight])))
            return {
              state: local,
              outcomes: received.map((_: unknown, index: number) => ({ index, action: 'merged' as const })),
            }
          },
        } as never,
      },
    )
    // 'flood' enters the queue 4 times, 'a' and 'b' once each: median count 1, tolerated up to 1.25.
    for (let v = 1; v <= 4; v++) {
      now = v * 1000
      t.learner.receive(model1(v), 'flood')
    }
    t.learner.receive(model1(10), 'a')
    t.learner.receive(model1(20), 'b')
    t.learner.mergePending()
    return { ...t, weights }
  }

  it('share weighting: a sender that fills the merge queue more than the median weighs less', () => {
    const t = weighedLearner()
    expect(t.weights).toEqual([{ 4: 1.25 / 4, 10: undefined, 20: undefined }])
    expect(t.learner.stats.defences.byReason).toEqual({ 'over-share': 1 })
    // Counted, not reported: an honest burst is not misbehaviour.
    expect(t.verdicts).toEqual([])
  })

  it('share weighting: a sender our sampler gives 4 times the picks of another may send 4 times as much', () => {
    const sampler: PeerSampler = {
      sample: () => [],
      shares: () =>
        new Map([
          ['flood', 0.5],
          ['a', 0.125],
          ['b', 0.125],
        ]),
    }
    const t = weighedLearner(sampler)
    expect(t.weights).toEqual([{ 4: undefined, 10: undefined, 20: undefined }])
    expect(t.learner.stats.defences.byReason).toEqual({})
  })

  it('share weighting off (`share: false`) passes every input at full weight', () => {
    const weights: Array<number | undefined> = []
    const t = idleLearner(
      { defences: { share: false, fairShare: { ratePerS: 100, burst: 100 } } },
      {
        merger: {
          merge: (local: ModelState, received: readonly MaskedState[]) => {
            weights.push(...received.map((r) => r.weight))
            return {
              state: local,
              outcomes: received.map((_: unknown, index: number) => ({ index, action: 'merged' as const })),
            }
          },
        } as never,
      },
    )
    for (let v = 1; v <= 4; v++) t.learner.receive(model1(v), 'flood')
    t.learner.receive(model1(10), 'a')
    t.learner.mergePending()
    expect(weights).toEqual([undefined, undefined])
  })

  it('refuses an implausible age, accepts plausible growth', () => {
    let now = 0
    const t = idleLearner(
      { defences: { age: { minRatePerS: 1000, rateFactor: 1, burstS: 0 }, fairShare: { ratePerS: 100 } } },
      { now: () => now },
    )
    t.learner.receive(model1(1, 100), 'x')
    now = 1000
    t.learner.receive(model1(1, 1100), 'x') // 1000 samples in 1 s: the most allowed
    now = 2000
    t.learner.receive(model1(1, 1e9), 'x')
    t.learner.receive(model1(1, 1e308), 'y') // no history, but no count of samples is that large
    t.learner.receive(model1(1, 50), 'x') // lower again (a restart): fine
    expect(t.verdicts).toEqual([
      { from: 'x', verdict: 'reject', reason: 'age-implausible' },
      { from: 'y', verdict: 'reject', reason: 'age-implausible' },
    ])
    expect(t.learner.stats.defences.rejected).toBe(2)
    t.learner.mergePending()
    expect(t.calls).toEqual([[1]])
  })

  it('reports every clip and rejection of the merge pipeline per sender', () => {
    const t = idleLearner(
      {},
      {
        merger: {
          merge: (local: ModelState, received: ModelState[]): MergeResult => ({
            state: meanMerger(local, [received[0]!]),
            outcomes: [
              { index: 0, action: 'clipped', step: 'clip', reason: 'distance-clipped' },
              { index: 1, action: 'rejected', step: 'clip', reason: 'distance-gross' },
              { index: 3, action: 'rejected', step: 'clip', reason: 'distance-outlier' },
              { index: 2, action: 'clipped', step: 'age-cap', reason: 'age-capped' },
            ],
          }),
        },
      },
    )
    t.learner.receive(model1(1), 'noisy')
    t.learner.receive(model1(2), 'outlier')
    t.learner.receive(model1(3), 'old')
    t.learner.receive(model1(4), 'far')
    t.learner.mergePending()
    expect(t.verdicts).toEqual([
      { from: 'noisy', verdict: 'clip', reason: 'distance-clipped' },
      { from: 'outlier', verdict: 'outlier', reason: 'distance-gross' },
      { from: 'far', verdict: 'far', reason: 'distance-outlier' },
      { from: 'old', verdict: 'downweight', reason: 'age-capped' },
    ])
    const d = t.learner.stats.defences
    expect([d.clipped, d.rejected, d.downweighted]).toEqual([1, 2, 1])
    expect(t.learner.stats.modelsMerged).toBe(2)
  })

  it('does not apply a merge that comes out non-finite, and refuses its inputs', () => {
    const t = idleLearner({}, { merger: () => model1(Number.NaN, 5) })
    t.model.value = 42
    t.learner.receive(model1(1), 'a')
    expect(t.learner.mergePending()).toBeUndefined()
    expect(t.model.value).toBe(42)
    expect(t.verdicts).toEqual([{ from: 'a', verdict: 'reject', reason: 'non-finite-merge' }])
    expect(t.learner.stats.merges).toBe(0)
  })

  it('rolls back an exploding merge to the last good model and refuses its senders', async () => {
    const model = new FakeModel()
    let resets = 0
    // The loss explodes once the value leaves the range local training keeps it in.
    model.train = async (steps: number) => {
      await new Promise((r) => setImmediate(r))
      model.value += steps
      model.age += steps
      return { samples: steps, loss: Math.abs(model.value) > 1e5 ? 1e3 : 1 }
    }
    const t = idleLearner(
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9 },
      { model: Object.assign(model, { resetOptimizer: () => resets++ }) },
    )
    learner = t.learner
    learner.start()
    await until(() => learner!.stats.rounds >= 6)
    learner.receive(model1(1e7, 1), 'evil')
    await until(() => learner!.stats.defences.rollbacks === 1)
    await until(() => learner!.stats.rounds >= 12)
    await learner.stop()
    expect(model.value).toBeLessThan(1e5)
    expect(resets).toBe(1)
    expect(t.verdicts).toEqual([{ from: 'evil', verdict: 'reject', reason: 'loss-exploded' }])
    expect(learner.stats.defences.byReason).toEqual({ 'loss-exploded': 1 })
  })

  it('rolls back a model that training made non-finite, blaming nobody', async () => {
    const t = idleLearner({ minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9 })
    const { model } = t
    let calls = 0
    model.train = async (steps: number) => {
      await new Promise((r) => setImmediate(r))
      model.value = ++calls === 3 ? Number.NaN : model.value + steps
      model.age += steps
      return { samples: steps, loss: 1 }
    }
    learner = t.learner
    learner.start()
    await until(() => learner!.stats.rounds >= 6)
    await learner.stop()
    expect(Number.isFinite(model.value)).toBe(true)
    expect(learner.stats.defences.rollbacks).toBe(1)
    expect(t.verdicts).toEqual([])
    // What a checkpoint would save is never the non-finite model.
    model.value = Number.NaN
    expect(Number.isFinite(learner.checkpointState().tensors[0]!.values[0]!)).toBe(true)
  })

  it('with defences off, drops nothing and applies what the merger returns', () => {
    const t = idleLearner({ defences: false }, { merger: () => model1(Number.NaN, 5) })
    for (let v = 0; v < 10; v++) t.learner.receive(model1(v, 10 ** (v * 30)), 'flood')
    t.learner.mergePending()
    expect(Number.isNaN(t.model.value)).toBe(true)
    expect(t.verdicts).toEqual([])
    expect(t.learner.stats.defences.rateLimited).toBe(0)
  })
})

describe('Learner train-rate cap', () => {
  const components = (model: LocalModel) => ({
    model,
    pusher: { push: async () => 1 },
    sampler: new UniformSampler(),
    view: () => [],
    merger: meanMerger,
    logger: defaultLogger(),
  })

  /** Steps the learner trained in half a second of real time, and the seconds that took. */
  async function halfSecond(learner: Learner): Promise<{ steps: number; elapsedS: number }> {
    learner.start()
    const t0 = Date.now()
    await new Promise((r) => setTimeout(r, 500))
    const steps = learner.stats.steps
    const elapsedS = (Date.now() - t0) / 1000
    await learner.stop()
    return { steps, elapsedS }
  }

  it('keeps steps per second at or below the cap over a window', async () => {
    const { steps, elapsedS } = await halfSecond(
      new Learner(components(new FakeModel()), {
        minRoundMs: 0,
        stepsPerRound: 5,
        trainRate: 100,
        gossip: false,
      }),
    )
    // Uncapped, the fake model runs thousands of steps in this window; capped, at most the rate
    // times the window plus the one round that starts at t0.
    expect(steps).toBeGreaterThan(0)
    expect(steps).toBeLessThanOrEqual(100 * elapsedS + 5)
  })

  it('keeps the cap between the batches of one round (minRoundMs)', async () => {
    const learner = new Learner(components(new FakeModel()), {
      stepsPerRound: 5,
      trainRate: 100,
      minRoundMs: 60_000,
      gossip: false,
    })
    const { steps, elapsedS } = await halfSecond(learner)
    // The first round is one batch; inside the second, a minute long, it trained at the cap.
    expect(learner.stats.rounds).toBe(2)
    expect(steps).toBeGreaterThan(5)
    expect(steps).toBeLessThanOrEqual(100 * elapsedS + 5)
  })

  it('trains much more without a cap (the cap is what limits the count above)', async () => {
    const learner = new Learner(components(new FakeModel()), {
      minRoundMs: 0,
      stepsPerRound: 5,
      gossip: false,
    })
    expect((await halfSecond(learner)).steps).toBeGreaterThan(200)
  })

  it('stops promptly while sleeping for the cap', async () => {
    const learner = new Learner(components(new FakeModel()), {
      minRoundMs: 0,
      stepsPerRound: 10,
      trainRate: 0.5,
      gossip: false,
    })
    learner.start()
    await new Promise((r) => setTimeout(r, 50))
    const t0 = Date.now()
    await learner.stop()
    expect(Date.now() - t0).toBeLessThan(1000) // the next round would be 20 s away
    expect(learner.stats.steps).toBe(10)
  })

  it('refuses a cap that is not positive', () => {
    let name = ''
    try {
      new Learner(components(new FakeModel()), { trainRate: 0 })
    } catch (err) {
      name = (err as Error).name
    }
    expect(name).toBe('InvalidArgumentError')
  })
})

describe('Learner round floor (minRoundMs)', () => {
  /** A FakeModel whose every call to train takes `msPerCall` of the fake clock. */
  class SlowModel extends FakeModel {
    constructor(
      private readonly clock: { t: number },
      private readonly msPerCall: number,
    ) {
      super()
    }
    override async train(steps: number): Promise<{ samples: number; loss: number }> {
      this.clock.t += this.msPerCall
      return super.train(steps)
    }
  }

  /** Fake time and steps trained at each push, over the first `rounds` rounds. */
  async function pushesOf(minRoundMs: number, rounds = 5, msPerBatch = 100) {
    const clock = { t: 0 }
    const pushes: Array<{ t: number; steps: number }> = []
    const learner: Learner = new Learner(
      {
        model: new SlowModel(clock, msPerBatch),
        pusher: {
          push: async () => {
            pushes.push({ t: clock.t, steps: learner.stats.steps })
            return 1
          },
        },
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
        now: () => clock.t,
      },
      { stepsPerRound: 5, minRoundMs, evalIntervalMs: 1e9, defences: false, catchUp: false },
    )
    learner.start()
    await until(() => pushes.length >= rounds)
    await learner.stop()
    return { pushes: pushes.slice(0, rounds), learner }
  }

  it('trains more steps a round, not more rounds, when a round of steps is shorter than the floor', async () => {
    const { pushes } = await pushesOf(1000)
    // The first round is one batch of steps: a starting node pushes soon.
    expect(pushes[0]).toEqual({ t: 100, steps: 5 })
    for (let i = 1; i < pushes.length; i++) {
      // 100 ms per 5 steps: ten batches, 1000 ms and 50 steps from one push to the next.
      expect(pushes[i]!.t - pushes[i - 1]!.t).toBe(1000)
      expect(pushes[i]!.steps - pushes[i - 1]!.steps).toBe(50)
    }
  })

  it('lasts the whole number of batches nearest the floor, not the first past it', async () => {
    // A batch of 950 ms against 1000: one batch a round (50 ms short), not two (900 ms over),
    // which would halve the pushes of a device whose round is just under the floor.
    for (const [msPerBatch, interval] of [
      [950, 950],
      [600, 1200],
      [450, 900],
    ] as const) {
      const { pushes } = await pushesOf(1000, 4, msPerBatch)
      for (let i = 1; i < pushes.length; i++) expect(pushes[i]!.t - pushes[i - 1]!.t).toBe(interval)
    }
  })

  it('with 0, a round is its steps alone', async () => {
    const { pushes } = await pushesOf(0)
    for (let i = 1; i < pushes.length; i++) {
      expect(pushes[i]!.t - pushes[i - 1]!.t).toBe(100)
      expect(pushes[i]!.steps - pushes[i - 1]!.steps).toBe(5)
    }
  })

  it('refuses a negative or non-finite floor', () => {
    for (const minRoundMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => idleLearner({ minRoundMs })).toThrow(/minRoundMs/)
    }
  })
})

describe('Learner asking for models', () => {
  let learner: Learner | undefined
  afterEach(async () => learner?.stop())

  it('asks from its first round until its first merge, then once it merged nothing for starveRounds rounds', async () => {
    const model = new FakeModel()
    // Rounds run only as the test allows them.
    let allowed = 0
    const train = model.train.bind(model)
    model.train = async (steps) => {
      while (allowed <= 0) await new Promise((r) => setTimeout(r, 1))
      allowed--
      return train(steps)
    }
    learner = new Learner(
      {
        model,
        pusher: { push: async () => 1 },
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
      },
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9, starveRounds: 3, defences: false },
    )
    const rounds = async (n: number) => {
      const target = learner!.stats.rounds + n
      allowed += n
      await until(() => learner!.stats.rounds === target)
    }
    learner.start()
    try {
      // Before its first round a node has nothing to push, so nothing to ask with; hungry it is.
      expect(learner.wantsModels()).toBe(false)
      expect(learner.hungry()).toBe(true)
      await rounds(1)
      expect(learner.stats.roundsWithoutModel).toBe(1)
      expect(learner.wantsModels()).toBe(true)
      learner.receive(model1(5), 'a')
      await rounds(1)
      expect(learner.stats.merges).toBe(1)
      expect(learner.stats.roundsWithoutModel).toBe(0)
      expect(learner.wantsModels()).toBe(false)
      expect(learner.hungry()).toBe(false)
      await rounds(2)
      expect(learner.wantsModels()).toBe(false)
      await rounds(1)
      expect(learner.wantsModels()).toBe(true)
      // Quiet rounds make it ask again on its pushes, but it does not announce hunger again.
      expect(learner.hungry()).toBe(false)
    } finally {
      allowed = Number.POSITIVE_INFINITY // lets stop() end the loop even after a failure
    }
  })

  it('is stranded while hungry once a push has failed', async () => {
    const { learner: l } = idleLearner(
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9, defences: false },
      {
        pusher: {
          push: async () => {
            throw new Error('handshake failed')
          },
        },
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
      },
    )
    learner = l
    expect(l.stranded()).toBe(false)
    l.start()
    await until(() => l.stats.pushesFailed >= 1)
    expect(l.stranded()).toBe(true)
    l.receive(model1(5), 'a')
    await until(() => l.stats.modelsMerged >= 1)
    expect(l.hungry()).toBe(false)
    expect(l.stranded()).toBe(false)
  })

  it('counts the pushes to peers the view marks hungry', async () => {
    const pushed: string[] = []
    const { learner: l } = idleLearner(
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9, fanout: 2, defences: false },
      {
        pusher: {
          push: async (to: string) => {
            pushed.push(to)
            return 1
          },
        },
        view: () => [
          { peerId: 'fed', lastSeen: Date.now() },
          { peerId: 'hungry', lastSeen: Date.now(), hungry: true },
        ],
      },
    )
    learner = l
    l.start()
    await until(() => l.stats.pushesStarted >= 6)
    await l.stop()
    const toHungry = pushed.filter((p) => p === 'hungry').length
    expect(toHungry).toBeGreaterThan(0)
    expect(l.stats.pushesToHungry).toBe(toHungry)
  })

  it('never asks with starveRounds 0 or gossip off', async () => {
    for (const init of [{ starveRounds: 0 }, { gossip: false }]) {
      const { learner: l } = idleLearner({ minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9, ...init })
      learner = l
      l.start()
      await until(() => l.stats.rounds >= 6)
      expect(l.wantsModels()).toBe(false)
      if (init.gossip === false) expect(l.hungry()).toBe(false)
      await l.stop()
    }
  })

  it('replies with the model its last round ended with, once per replyEveryMs per peer, never to a suspect', async () => {
    let now = 1_000_000
    const pushed: Array<{ to: string; value: number }> = []
    const model = new FakeModel()
    learner = new Learner(
      {
        model,
        pusher: addressedPusher(pushed),
        sampler: new UniformSampler(),
        view: () => [],
        merger: meanMerger,
        logger: defaultLogger(),
        isSuspect: (id) => id === 'bad',
        now: () => now,
      },
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9, replyEveryMs: 30_000 },
    )
    // Not started: no round has ended, so nothing to reply with, and no loop to push from.
    expect(learner.reply('a')).toBe(false)
    learner.start()
    await until(() => learner!.stats.rounds >= 2)
    expect(learner.reply('a')).toBe(true)
    await until(() => pushed.length === 1)
    expect(pushed[0]!.to).toBe('a')
    // The state a round ended with: the fake adds 1 a step, so a whole number.
    expect(Number.isInteger(pushed[0]!.value) && pushed[0]!.value >= 1).toBe(true)
    expect(learner.reply('a')).toBe(false)
    expect(learner.reply('b')).toBe(true)
    expect(learner.reply('bad')).toBe(false)
    now += 30_000
    // Let the pushes settle: a push in flight to a peer is never doubled.
    await new Promise((r) => setImmediate(r))
    expect(pushed.length).toBe(2)
    expect(learner.reply('a')).toBe(true)
    await until(() => pushed.length === 3)
    expect(pushed.map((p) => p.to)).toEqual(['a', 'b', 'a'])
    expect(learner.stats.replies).toBe(3)
    expect(learner.stats.modelsWanted).toBe(6)
  })

  it('does not reply before its first round has ended (its initial weights are not worth a push)', async () => {
    const model = new FakeModel()
    let release = false
    const train = model.train.bind(model)
    model.train = async (steps) => {
      while (!release) await new Promise((r) => setTimeout(r, 1))
      return train(steps)
    }
    const pushed: Array<{ to: string; value: number }> = []
    const { learner: l } = idleLearner(
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9 },
      { model, pusher: addressedPusher(pushed) },
    )
    learner = l
    l.start()
    try {
      expect(l.reply('a')).toBe(false)
    } finally {
      release = true // else a failure here would leave stop() waiting on the held round
    }
    await until(() => l.stats.rounds >= 1)
    expect(l.reply('a')).toBe(true)
    await until(() => pushed.length === 1)
  })

  it('refuses starveRounds and replyEveryMs that make no sense', () => {
    expect(() => idleLearner({ starveRounds: -1 })).toThrow(/starveRounds/)
    expect(() => idleLearner({ starveRounds: 1.5 })).toThrow(/starveRounds/)
    expect(() => idleLearner({ replyEveryMs: Number.NaN })).toThrow(/replyEveryMs/)
  })
})

describe('Learner push deadline', () => {
  let learner: Learner | undefined
  afterEach(async () => learner?.stop())

  /** A pusher whose pushes take `ms` unless their signal aborts first. */
  const slowPusher = (ms: number, outcomes: string[]) => ({
    push: (_to: string, _s: ModelState, options?: { signal?: AbortSignal }) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          outcomes.push('done')
          resolve(1)
        }, ms)
        options?.signal?.addEventListener('abort', () => {
          clearTimeout(timer)
          outcomes.push('aborted')
          reject(options.signal!.reason)
        })
      }),
  })

  it('counts the rounds that pushed nothing because every push slot was busy', async () => {
    // Pushes that last until the learner stops: two slots fill in two rounds, then every round is busy.
    let started = 0
    const pusher: ModelPusher = {
      push: (_peer, _state, options) =>
        new Promise((_resolve, reject) => {
          started++
          options?.signal?.addEventListener('abort', () => reject(new Error('aborted')))
        }),
    }
    learner = new Learner(
      {
        model: new FakeModel(),
        pusher,
        sampler: new UniformSampler(),
        view: () => ['a', 'b', 'c', 'd'].map((peerId) => ({ peerId, lastSeen: Date.now() })),
        merger: meanMerger,
        logger: defaultLogger(),
      },
      { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9, maxInflightPushes: 2 },
    )
    learner.start()
    await until(() => learner!.stats.rounds >= 10)
    await learner.stop()
    expect(started).toBe(2)
    // Every round but the two that started a push (a round may end between the check and stop).
    expect(learner.stats.pushesBusy).toBeGreaterThanOrEqual(learner.stats.rounds - 2 - 1)
    expect(learner.stats.pushesBusy).toBeLessThanOrEqual(learner.stats.rounds - 2)
  })

  it('aborts a push that outlasts pushTimeoutMs, and lets one within it finish', async () => {
    for (const [pushTimeoutMs, expected] of [
      [30, 'aborted'],
      [2000, 'done'],
    ] as const) {
      const outcomes: string[] = []
      const failed: string[] = []
      learner = new Learner(
        {
          model: new FakeModel(),
          pusher: slowPusher(200, outcomes),
          sampler: new UniformSampler(),
          view: () => [{ peerId: 'a', lastSeen: Date.now() }],
          merger: meanMerger,
          logger: defaultLogger(),
          onPushFailed: (id) => failed.push(id),
        },
        { minRoundMs: 0, stepsPerRound: 1, evalIntervalMs: 1e9, pushTimeoutMs, maxInflightPushes: 1 },
      )
      learner.start()
      await until(() => outcomes.length >= 1)
      expect(outcomes[0]).toBe(expected)
      if (expected === 'aborted') await until(() => failed.length > 0)
      else expect(failed).toEqual([])
      await learner.stop()
    }
  })
})
