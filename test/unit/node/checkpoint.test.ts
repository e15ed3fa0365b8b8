import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { ModelState } from '../../../src/model/types.ts'
import { loadCheckpoint, saveCheckpoint } from '../../../src/node/checkpoint.ts'

const state = (v: number, age = 10): ModelState => ({
  arch: 'mlp-test',
  age,
  tensors: [{ name: 'w', shape: [2], values: Float32Array.of(1, v) }],
})

describe('checkpoint', () => {
  let dir: string | undefined
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('never lets a non-finite state overwrite a good checkpoint', async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-checkpoint-'))
    await saveCheckpoint(dir, state(2))
    for (const bad of [
      state(Number.NaN),
      state(Number.POSITIVE_INFINITY),
      state(3, Number.POSITIVE_INFINITY),
    ]) {
      await expect(saveCheckpoint(dir, bad)).rejects.toMatchObject({ name: 'InvalidStateError' })
    }
    const saved = await loadCheckpoint(dir)
    expect(saved).toMatchObject({ age: 10, tensors: [{ name: 'w', values: Float32Array.of(1, 2) }] })
  })
})
