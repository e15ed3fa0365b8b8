import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { anyWithStallTolerantTimeout, anyWithTimeout, loopStallGraceMs } from '../../../src/util/abort.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

describe('anyWithTimeout', () => {
  it('fires after its timeout even when collections run before it (Node 20 lost bare ones)', async () => {
    let fired = 0
    for (let i = 0; i < 20; i++) anyWithTimeout([], 100).addEventListener('abort', () => fired++)
    for (let i = 0; i < 5; i++) {
      gc()
      await new Promise((r) => setTimeout(r, 10))
    }
    await new Promise((r) => setTimeout(r, 300))
    expect(fired).toBe(20)
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

describe('anyWithStallTolerantTimeout', () => {
  it('fires after its timeout on a loop that runs on time, collections or not', async () => {
    let fired = 0
    const start = Date.now()
    for (let i = 0; i < 20; i++) anyWithStallTolerantTimeout([], 100).addEventListener('abort', () => fired++)
    for (let i = 0; i < 5; i++) {
      gc()
      await new Promise((r) => setTimeout(r, 10))
    }
    await new Promise((r) => setTimeout(r, 300))
    expect(fired).toBe(20)
    expect(Date.now() - start).toBeGreaterThanOrEqual(100)
  })

  it('lets an answer that came during a stall of its own loop be read before it fires', async () => {
    // The plain timeout fires first: the pathology this guards against.
    const plain = anyWithTimeout([], 100)
    const tolerant = anyWithStallTolerantTimeout([], 100)
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

  it('aborts with any of its signals, and sizes its grace to a tenth of the bound, at most 1 s', () => {
    const stop = new AbortController()
    const signal = anyWithStallTolerantTimeout([undefined, stop.signal], 60_000)
    stop.abort(new Error('stopped'))
    expect((signal.reason as Error).message).toBe('stopped')
    expect(loopStallGraceMs(400)).toBe(40)
    expect(loopStallGraceMs(30_000)).toBe(1_000)
  })
})
