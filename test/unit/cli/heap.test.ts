import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { HEAP_FLAGS, STARTUP_FLAG, tuneHeap } from '../../../src/cli/heap.ts'

describe('tuneHeap', () => {
  it('bounds the heap, favours a small one until running(), and leaves a user-tuned node alone', () => {
    const set: string[] = []
    const record = (f: string) => set.push(f)
    for (const argv of [
      ['--no-optimize-for-size'],
      ['--optimize_for_size'],
      ['--max-semi-space-size=8'],
      ['--heap-growing-percent=50'],
    ]) {
      const h = tuneHeap(argv, record)
      expect(h.tuned).toBe(false)
      h.running()
    }
    expect(set).toEqual([])
    const heap = tuneHeap(['--max-old-space-size=512'], record)
    expect(heap.tuned).toBe(true)
    expect(set).toEqual([...HEAP_FLAGS, STARTUP_FLAG])
    heap.running()
    heap.running()
    expect(set).toEqual([...HEAP_FLAGS, STARTUP_FLAG, '--no-optimize-for-size'])
  })

  it('V8 honours the flags at run time: the young generation stays at its initial size', () => {
    // Many short-lived objects: by default V8 grows the young generation to 2 x 16 MiB.
    const script = `
      const v8 = require('node:v8')
      for (const f of JSON.parse(process.argv[1])) v8.setFlagsFromString(f)
      let keep = []
      for (let i = 0; i < 3e6; i++) { keep.push({ i, a: [i] }); if (keep.length > 1000) keep = [] }
      console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size)`
    const newSpace = (flags: readonly string[]) =>
      Number(execFileSync(process.execPath, ['-e', script, JSON.stringify(flags)], { encoding: 'utf8' }))
    expect(newSpace([])).toBeGreaterThanOrEqual(8 * 2 ** 20)
    expect(newSpace(HEAP_FLAGS)).toBeLessThanOrEqual(2 * 2 ** 20)
  })
})
