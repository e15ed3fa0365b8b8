import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { anyWithTimeout } from '../../../src/util/abort.ts'

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
