import { defaultLogger } from '@libp2p/logger'
import { afterEach, describe, expect, it } from 'vitest'
import { Learner, type LocalModel } from '../../../src/gossip/learner.ts'
import { UniformSampler } from '../../../src/gossip/sampling/sampler.ts'
import type { Merger } from '../../../src/merge/pipeline.ts'
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
        pusher: {
          push: async (to, s) => {
            pushed.push({ to, value: s.tensors[0]!.values[0]! })
            return 1
          },
        },
        sampler: new UniformSampler(),
        view: () => [{ peerId: 'a', lastSeen: Date.now() }],
        merger: meanMerger,
        logger: defaultLogger(),
      },
      { stepsPerRound: 10, evalIntervalMs: 0 },
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
      { stepsPerRound: 5, gossip: false },
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
      { stepsPerRound: 5 },
    )
    learner.start()
    await until(() => failed.length > 0)
    const before = model.value
    learner.receive({ arch: 'other', age: 1, tensors: [] }, 'x')
    learner.mergePending()
    expect(model.value).toBe(before)
    expect(learner.stats.pushesFailed).toBeGreaterThan(0)
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
      { stepsPerRound: 1, evalIntervalMs: 1e9 },
    )
    learner.start()
    const roundsWhenTimerFired = await new Promise<number>((resolve) => setTimeout(() => resolve(calls), 1))
    expect(roundsWhenTimerFired).toBeGreaterThan(0)
    expect(roundsWhenTimerFired).toBeLessThan(CAP)
  })
})
