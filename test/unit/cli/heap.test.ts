import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { favourSmallHeap, HEAP_FLAGS } from '../../../src/cli/heap.ts'

describe('favourSmallHeap', () => {
  it('sets the heap flags unless node was given a heap flag of its own', () => {
    const set: string[] = []
    const record = (f: string) => set.push(f)
    expect(favourSmallHeap(['--no-optimize-for-size'], record)).toBe(false)
    expect(favourSmallHeap(['--optimize_for_size'], record)).toBe(false)
    expect(favourSmallHeap(['--max-semi-space-size=8'], record)).toBe(false)
    expect(favourSmallHeap(['--heap-growing-percent=50'], record)).toBe(false)
    expect(set).toEqual([])
    expect(favourSmallHeap(['--max-old-space-size=512'], record)).toBe(true)
    expect(set).toEqual([...HEAP_FLAGS])
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
