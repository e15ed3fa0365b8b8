import { defaultLogger } from '@libp2p/logger'
import { afterEach, describe, expect, it } from 'vitest'
import { Learner, type LocalModel } from '../../../src/gossip/learner.ts'
import { UniformSampler } from '../../../src/gossip/sampling/sampler.ts'
import { parseRate, UploadBudget } from '../../../src/gossip/upload-budget.ts'
import type { ModelState } from '../../../src/model/types.ts'
import { errorName } from '../error-name.ts'

describe('parseRate', () => {
  it.each([
    ['1mbit', 125_000],
    ['200kbit', 25_000],
    ['1.5Mbit', 187_500],
    ['8bit', 1],
    ['64kB', 64_000],
    ['2MB/s', 2_000_000],
    ['1KiB', 1024],
    ['1gbit', 125_000_000],
  ])('reads %s as %d bytes/s', (text, bytes) => {
    expect(parseRate(text)).toBe(bytes)
  })

  it.each(['', '1', 'mbit', '0kbit', '-1mbit', '1kb', '1mb', '1 furlong', 'fastmbit', '1e3kbit'])(
    "refuses '%s'",
    (text) => {
      expect(errorName(() => parseRate(text))).toBe('InvalidArgumentError')
    },
  )
})

describe('UploadBudget', () => {
  it('lets pushes start while not in debt and charges their bytes, whatever their size', () => {
    let t = 0
    const b = new UploadBudget({ bytesPerSecond: 1000, now: () => t })
    expect(b.burstBytes).toBe(1000)
    expect(b.canSend()).toBe(true)
    b.charge(5000) // one push larger than the bucket still goes...
    expect(b.canSend()).toBe(false) // ...and the next waits for the debt to be repaid
    expect(b.waitMs()).toBe(4000)
    t = 3999
    expect(b.canSend()).toBe(false)
    t = 4000
    expect(b.canSend()).toBe(true)
    t = 100_000
    expect(b.available()).toBe(1000) // never more than the burst
  })

  it('keeps the bytes of any window within burst + rate * window + one push (bytes counted, not time)', () => {
    let t = 0
    const rate = 20_000
    const b = new UploadBudget({ bytesPerSecond: rate, now: () => t })
    const starts: Array<{ t: number; bytes: number }> = []
    // Pushes of varying size offered every 7 ms for 60 s; each starts only when allowed.
    const sizes = [1200, 40_000, 300, 9000, 15_000]
    for (let i = 0; t < 60_000; i++, t += 7) {
      if (!b.canSend()) continue
      const bytes = sizes[i % sizes.length]!
      b.charge(bytes)
      starts.push({ t, bytes })
    }
    const biggest = Math.max(...sizes)
    let worst = 0
    for (let i = 0; i < starts.length; i++) {
      let sum = 0
      for (let j = i; j < starts.length; j++) {
        sum += starts[j]!.bytes
        const bound = b.burstBytes + (rate * (starts[j]!.t - starts[i]!.t)) / 1000 + biggest
        worst = Math.max(worst, sum / bound)
      }
    }
    expect(worst).toBeLessThanOrEqual(1)
    // And the link is used: over the whole minute, at least the rate's worth went out.
    const total = starts.reduce((s, p) => s + p.bytes, 0)
    expect(total).toBeGreaterThanOrEqual((rate * 60_000) / 1000)
    expect(b.charged).toBe(total)
  })
})

/** A model whose rounds take 100 ms of a fake clock. */
class ClockModel implements LocalModel {
  age = 0
  constructor(private readonly clock: { t: number }) {}
  async train(steps: number): Promise<{ samples: number; loss: number }> {
    await new Promise((r) => setImmediate(r))
    this.clock.t += 100
    this.age += steps
    return { samples: steps, loss: 1 }
  }
  getState(): ModelState {
    return { arch: 'fake', age: this.age, tensors: [{ name: 'w', shape: [1], values: Float32Array.of(1) }] }
  }
  setState(): void {}
  async evaluate(): Promise<number> {
    return 0.5
  }
}

describe('Learner with an upload budget', () => {
  let learner: Learner | undefined
  afterEach(async () => learner?.stop())

  /** Runs 300 rounds (30 s of fake time) pushing frames of `frameBytes`; returns the pushes' start times and sizes. */
  async function run(
    frameBytes: number,
    maxUploadBytesPerS?: number,
  ): Promise<Array<{ t: number; bytes: number }>> {
    const clock = { t: 0 }
    const pushes: Array<{ t: number; bytes: number }> = []
    learner = new Learner(
      {
        model: new ClockModel(clock),
        pusher: {
          push: async () => {
            pushes.push({ t: clock.t, bytes: frameBytes })
            return frameBytes
          },
        },
        sampler: new UniformSampler(),
        view: () => Array.from({ length: 12 }, (_, i) => ({ peerId: `p${i}`, lastSeen: Date.now() })),
        merger: (local) => local,
        logger: defaultLogger(),
        now: () => clock.t,
      },
      { stepsPerRound: 10, minRoundMs: 0, evalIntervalMs: 1e9, maxUploadBytesPerS, defences: false },
    )
    learner.start()
    for (let i = 0; i < 2000 && learner.stats.rounds < 300; i++) await new Promise((r) => setTimeout(r, 1))
    await learner.stop()
    expect(learner.stats.rounds).toBeGreaterThanOrEqual(300)
    return pushes.filter((p) => p.t <= 30_000)
  }

  it('pushes within the budget over every window, and smaller frames more often', async () => {
    const rate = 10_000 // 1000 bytes per 100 ms round
    const small = await run(1000, rate)
    const large = await run(8000, rate)
    for (const [pushes, frame] of [
      [small, 1000],
      [large, 8000],
    ] as const) {
      for (let i = 0; i < pushes.length; i++) {
        let sum = 0
        for (let j = i; j < pushes.length; j++) {
          sum += pushes[j]!.bytes
          expect(sum).toBeLessThanOrEqual(rate + (rate * (pushes[j]!.t - pushes[i]!.t)) / 1000 + frame)
        }
      }
      // The budget is used rather than left idle: 30 s at 10 kB/s.
      expect(pushes.reduce((s, p) => s + p.bytes, 0)).toBeGreaterThanOrEqual(0.9 * rate * 30)
    }
    // Same bytes, eight times the pushes.
    expect(small.length).toBeGreaterThanOrEqual(7 * large.length)
  })

  it('pushes up to several peers a round when the budget allows, and only fanout ones without a budget', async () => {
    const generous = await run(100, 1_000_000)
    const perRound = new Map<number, number>()
    for (const p of generous) perRound.set(p.t, (perRound.get(p.t) ?? 0) + 1)
    expect(Math.max(...perRound.values())).toBe(8)
    const unlimited = await run(100)
    const perRoundUnlimited = new Map<number, number>()
    for (const p of unlimited) perRoundUnlimited.set(p.t, (perRoundUnlimited.get(p.t) ?? 0) + 1)
    expect(Math.max(...perRoundUnlimited.values())).toBe(1)
  })
})
