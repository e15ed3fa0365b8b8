import { PassThrough } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { abortWhenClosed, anyWithTimeout, anyWithTimeoutAfterReads } from '../../../src/util/abort.ts'

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
