import { getEventListeners } from 'node:events'
import { PassThrough } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import {
  abortWhenClosed,
  anySignal,
  anyWithTimeout,
  anyWithTimeoutAfterReads,
  release,
} from '../../../src/util/abort.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** How many of 20 signals of a 100 ms timeout fired within 350 ms, with collections running first. */
async function firedDespiteCollections(make: (ms: number) => AbortSignal): Promise<number> {
  let fired = 0
  for (let i = 0; i < 20; i++) make(100).addEventListener('abort', () => fired++)
  for (let i = 0; i < 5; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 10))
  }
  await new Promise((r) => setTimeout(r, 300))
  return fired
}

describe('anyWithTimeout', () => {
  it('fires after its timeout even when collections run before it (Node 20 lost bare ones)', async () => {
    expect(await firedDespiteCollections((ms) => anyWithTimeout([], ms))).toBe(20)
  })

  it('aborts with any of its signals, ignoring the ones not given', () => {
    const stop = new AbortController()
    const signal = anyWithTimeout([undefined, stop.signal], 60_000)
    expect(signal.aborted).toBe(false)
    stop.abort(new Error('stopped'))
    expect(signal.aborted).toBe(true)
    expect((signal.reason as Error).message).toBe('stopped')
  })
})

/**
 * Blocks this process's loop for `ms`, then answers in the loop's next turn, after its due timers
 * have run (a stall inside a timer callback would not show it: Node checks the other timers'
 * expiry against the time the timers phase began).
 */
function stallThenAnswer(ms: number, answer: () => void): void {
  setImmediate(() => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      /* a stalled event loop */
    }
    setImmediate(answer)
  })
}

describe('anyWithTimeoutAfterReads', () => {
  it('fires after its timeout on a loop that runs on time, collections or not', async () => {
    expect(await firedDespiteCollections((ms) => anyWithTimeoutAfterReads([], ms))).toBe(20)
    const early = anyWithTimeoutAfterReads([], 100)
    await new Promise((r) => setTimeout(r, 50))
    expect(early.aborted).toBe(false)
  })

  it('lets an answer that came during a stall of its own loop be read before it fires', async () => {
    // The plain timeout fires first: the pathology this guards against.
    const plain = anyWithTimeout([], 100)
    const tolerant = anyWithTimeoutAfterReads([], 100)
    let answered = false
    stallThenAnswer(400, () => {
      answered = true
    })
    const at = (s: AbortSignal) =>
      new Promise<boolean>((r) => s.addEventListener('abort', () => r(answered), { once: true }))
    const [plainSaw, tolerantSaw] = await Promise.all([at(plain), at(tolerant)])
    expect(plainSaw).toBe(false)
    expect(tolerantSaw).toBe(true)
    expect((tolerant.reason as Error).name).toBe('TimeoutError')
  })

  it('fires under a loop that stays late: it waits one turn, not for the loop to catch up', async () => {
    const signal = anyWithTimeoutAfterReads([], 20)
    let turns = 0
    while (!signal.aborted && turns < 40) {
      await new Promise((r) => setImmediate(r))
      const until = Date.now() + 50
      while (Date.now() < until) {
        /* every turn of the loop is late */
      }
      turns++
    }
    expect(signal.aborted).toBe(true)
    expect(turns).toBeLessThan(5)
  })

  it('aborts with any of its signals, ignoring the ones not given', () => {
    const stop = new AbortController()
    const signal = anyWithTimeoutAfterReads([undefined, stop.signal], 60_000)
    stop.abort(new Error('stopped'))
    expect((signal.reason as Error).message).toBe('stopped')
  })
})

/**
 * What replaced AbortSignal.any, which on Node 20 keeps an entry per call in a long-lived source
 * (nodejs/node#55351): a daemon's stop signal gained one per push, ping and dial.
 */
describe('signals combined with a long-lived one leave nothing on it', () => {
  const listeners = (s: AbortSignal) => getEventListeners(s, 'abort').length

  it('anyWithTimeout and anyWithTimeoutAfterReads take their listeners off once they time out', async () => {
    const stop = new AbortController()
    const made = []
    for (let i = 0; i < 100; i++)
      made.push(anyWithTimeout([stop.signal], 5), anyWithTimeoutAfterReads([stop.signal], 5))
    expect(listeners(stop.signal)).toBe(200)
    await new Promise((r) => setTimeout(r, 60))
    expect(made.every((s) => s.aborted && (s.reason as Error).name === 'TimeoutError')).toBe(true)
    expect(listeners(stop.signal)).toBe(0)
    expect(stop.signal.aborted).toBe(false)
  })

  it('leaves no dependant entry in the source, where AbortSignal.any leaves one per call', () => {
    // Node's internal set behind the leak (lib/internal/abort_controller.js).
    const dependants = (s: AbortSignal) => {
      const key = Object.getOwnPropertySymbols(s).find((k) => k.description === 'kDependantSignals')
      return key === undefined ? 0 : (s as unknown as Record<symbol, Set<unknown>>)[key]!.size
    }
    const ours = new AbortController()
    const theirs = new AbortController()
    for (let i = 0; i < 10; i++) {
      anyWithTimeout([ours.signal], 60_000)
      anySignal([ours.signal, AbortSignal.timeout(60_000)])
      AbortSignal.any([theirs.signal, AbortSignal.timeout(60_000)])
    }
    expect(dependants(theirs.signal)).toBe(10)
    expect(dependants(ours.signal)).toBe(0)
  })

  it("anySignal takes its listeners off the others when one aborts, with that one's reason", () => {
    const stop = new AbortController()
    const deadline = new AbortController()
    const signal = anySignal([stop.signal, undefined, deadline.signal])
    expect(listeners(stop.signal)).toBe(1)
    deadline.abort(new Error('deadline'))
    expect((signal.reason as Error).message).toBe('deadline')
    expect(listeners(stop.signal)).toBe(0)
  })

  it('release takes the listeners off at once and cancels the deadline, so the signal never aborts', async () => {
    const stop = new AbortController()
    const made = [
      anyWithTimeout([stop.signal], 20),
      anyWithTimeoutAfterReads([stop.signal], 20),
      anySignal([stop.signal, AbortSignal.timeout(20)]),
    ]
    expect(listeners(stop.signal)).toBe(3)
    for (const s of made) release(s)
    expect(listeners(stop.signal)).toBe(0)
    // Twice, and on a signal not made here: nothing happens.
    release(made[0]!)
    release(stop.signal)
    await new Promise((r) => setTimeout(r, 80))
    stop.abort(new Error('stopped'))
    expect(made.some((s) => s.aborted)).toBe(false)
    expect(stop.signal.aborted).toBe(true)
  })

  it('release after the signal aborted keeps its reason', () => {
    const stop = new AbortController()
    const signal = anyWithTimeout([stop.signal], 60_000)
    stop.abort(new Error('stopped'))
    release(signal)
    expect((signal.reason as Error).message).toBe('stopped')
  })

  it('a signal already aborted among the sources aborts it at once, adding no listener', () => {
    const stop = new AbortController()
    const done = new AbortController()
    done.abort(new Error('done'))
    const signal = anyWithTimeout([stop.signal, done.signal], 60_000)
    expect((signal.reason as Error).message).toBe('done')
    expect(listeners(stop.signal)).toBe(0)
  })
})

const tick = () => new Promise((r) => setImmediate(r))

describe('abortWhenClosed', () => {
  it('aborts when the stream ends, not while input arrives', async () => {
    const stream = new PassThrough()
    const controller = new AbortController()
    let calls = 0
    abortWhenClosed(stream, controller, () => calls++)
    stream.write('anything')
    await tick()
    expect(controller.signal.aborted).toBe(false)
    stream.end()
    await tick()
    expect(controller.signal.aborted).toBe(true)
    expect(calls).toBe(1)
  })

  it('aborts when the stream fails', async () => {
    const stream = new PassThrough()
    const controller = new AbortController()
    abortWhenClosed(stream, controller)
    stream.destroy(new Error('EPIPE'))
    await tick()
    expect(controller.signal.aborted).toBe(true)
  })

  it('destroys the stream when aborted otherwise (a signal), without calling onClosed', async () => {
    const stream = new PassThrough()
    const controller = new AbortController()
    let calls = 0
    abortWhenClosed(stream, controller, () => calls++)
    controller.abort()
    await tick()
    expect(stream.destroyed).toBe(true)
    expect(calls).toBe(0)
  })
})
