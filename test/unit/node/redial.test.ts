import { describe, expect, it } from 'vitest'
import { Redialer, type RedialTarget } from '../../../src/node/redial.ts'

/** A scripted world: the sleeps it was asked for, the dials it saw, and whether the node is connected. */
function world(opts: { connected: () => boolean; targets?: RedialTarget[]; stopAfterSleeps?: number }) {
  const sleeps: number[] = []
  const dials: string[] = []
  let redialer: Redialer | undefined
  let finished!: () => void
  const done = new Promise<void>((res) => (finished = res))
  const r = new Redialer(
    {
      connected: opts.connected,
      targets: () => opts.targets ?? [{ peerId: 'a', addrs: ['/ip4/10.0.0.1/tcp/1'] }],
      dial: async (t) => {
        dials.push(t.peerId)
        throw new Error('unreachable')
      },
      // Every wait returns at once; after the scripted number of waits the test stops the loop.
      sleep: async (ms) => {
        sleeps.push(ms)
        if (sleeps.length >= (opts.stopAfterSleeps ?? 20)) {
          void redialer!.stop()
          finished()
        }
        await Promise.resolve()
      },
      random: () => 0.5, // no jitter
    },
    { checkIntervalMs: 1000, minDelayMs: 1000, maxDelayMs: 8000, factor: 2 },
  )
  redialer = r
  return { r, sleeps, dials, done }
}

describe('Redialer', () => {
  it('does not dial while connected', async () => {
    const { r, sleeps, dials, done } = world({ connected: () => true, stopAfterSleeps: 5 })
    r.start()
    await done
    await r.stop()
    expect(sleeps.length).toBeGreaterThanOrEqual(5)
    expect(sleeps.every((ms) => ms === 1000)).toBe(true)
    expect(dials).toEqual([])
    expect(r.counters.rounds).toBe(0)
  })

  it('alone, dials every target each round with capped exponential backoff', async () => {
    const targets = [
      { peerId: 'boot', addrs: ['/ip4/10.0.0.1/tcp/1'] },
      { peerId: 'remembered', addrs: ['/ip4/10.0.0.2/tcp/1'] },
    ]
    const { r, sleeps, dials, done } = world({ connected: () => false, targets, stopAfterSleeps: 12 })
    r.start()
    await done
    await r.stop()
    // check, backoff, check, backoff, ...: the backoffs double up to the cap.
    expect(sleeps.slice(0, 12)).toEqual([
      1000, 1000, 1000, 2000, 1000, 4000, 1000, 8000, 1000, 8000, 1000, 8000,
    ])
    expect(r.counters.rounds).toBe(6)
    expect(dials.slice(0, 4)).toEqual(['boot', 'remembered', 'boot', 'remembered'])
    expect(r.counters.dialsFailed).toBe(r.counters.dials)
  })

  it('a connection resets the backoff; losing it again starts from the shortest wait', async () => {
    // Alone for three rounds, connected for two checks, alone again.
    const script = [false, false, false, false, false, false, true, true, false, false]
    let i = 0
    const { r, sleeps, done } = world({
      connected: () => script[Math.min(i++, script.length - 1)]!,
      stopAfterSleeps: 12,
    })
    r.start()
    await done
    await r.stop()
    expect(sleeps.slice(0, 11)).toEqual([1000, 1000, 1000, 2000, 1000, 4000, 1000, 1000, 1000, 1000, 1000])
  })

  it('jitter spreads the wait by at most the configured share', async () => {
    const sleeps: number[] = []
    let finished!: () => void
    const done = new Promise<void>((res) => (finished = res))
    const r: Redialer = new Redialer(
      {
        connected: () => false,
        targets: () => [{ peerId: 'a', addrs: [] }],
        dial: async () => {},
        sleep: async (ms) => {
          sleeps.push(ms)
          if (sleeps.length >= 2) {
            void r.stop()
            finished()
          }
        },
        random: () => 0,
      },
      { checkIntervalMs: 1000, minDelayMs: 1000, jitter: 0.2 },
    )
    r.start()
    await done
    await r.stop()
    expect(sleeps).toEqual([1000, 800])
  })

  it('stop() ends the loop, aborts the dials in flight, and is safe twice', async () => {
    let dialSignal: AbortSignal | undefined
    let dialStarted!: () => void
    const started = new Promise<void>((res) => (dialStarted = res))
    const r = new Redialer(
      {
        connected: () => false,
        targets: () => [{ peerId: 'a', addrs: [] }],
        // A dial that only ends when its signal aborts.
        dial: (_t, signal) =>
          new Promise((_, reject) => {
            dialSignal = signal
            dialStarted()
            signal.addEventListener('abort', () => reject(signal.reason), { once: true })
          }),
        sleep: async () => {},
      },
      { dialTimeoutMs: 3_600_000 },
    )
    r.start()
    r.start()
    await started
    expect(dialSignal?.aborted).toBe(false)
    await r.stop()
    expect(dialSignal?.aborted).toBe(true)
    expect(r.counters.dialsFailed).toBe(1)
    await r.stop()
  })
})
