import { format } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import * as tf from '../../../src/model/tf.ts'

/** A fresh copy of backend.ts (its choice is cached per module instance). */
async function freshBackendModule() {
  vi.resetModules()
  return import('../../../src/model/backend.ts')
}

function capture() {
  const lines: string[] = []
  return {
    lines,
    logger: { log: (msg: string, ...args: unknown[]) => lines.push(format(msg, ...args)) },
  }
}

describe('initBackend', () => {
  it('falls back from tfjs-node (dynamic import fails here) to wasm with SIMD, once', async () => {
    const { initBackend } = await freshBackendModule()
    const { lines, logger } = capture()
    const info = await initBackend({ logger })
    // tfjs-node is an optional dependency whose native binary cannot be installed offline.
    let nodeAvailable = true
    try {
      const specifier = '@tensorflow/tfjs-node'
      await import(/* @vite-ignore */ specifier)
    } catch {
      nodeAvailable = false
    }
    if (nodeAvailable) {
      expect(info.name).toBe('tensorflow')
    } else {
      expect(lines.some((l) => l.includes('tfjs backend node unavailable'))).toBe(true)
      expect(info).toEqual({ name: 'wasm', kind: 'wasm', simd: true })
    }
    expect(tf.getBackend()).toBe(info.name)
    // Idempotent: later calls return the first choice, whatever they prefer.
    expect(await initBackend({ prefer: 'cpu' })).toBe(info)
    expect(tf.getBackend()).toBe(info.name)
  })

  it('honours prefer=cpu on a fresh start and computes correctly there', async () => {
    const { initBackend } = await freshBackendModule()
    const info = await initBackend({ prefer: 'cpu' })
    expect(info).toEqual({ name: 'cpu', kind: 'cpu' })
    expect(tf.getBackend()).toBe('cpu')
    expect(Array.from(tf.tidy(() => tf.matMul([[1, 2]], [[3], [4]]).dataSync()))).toEqual([11])
  })

  it('prefer=wasm skips tfjs-node and registers our wasm kernels', async () => {
    const { initBackend } = await freshBackendModule()
    const { lines, logger } = capture()
    const info = await initBackend({ prefer: 'wasm', logger })
    expect(info.name).toBe('wasm')
    expect(lines.some((l) => l.includes('node'))).toBe(false)
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined()
    expect(Array.from(tf.tidy(() => tf.matMul([[1, 2]], [[3, 4]], false, true).dataSync()))).toEqual([11])
  })

  it('rejects an unknown preference', async () => {
    const { initBackend } = await freshBackendModule()
    await expect(initBackend({ prefer: 'gpu' as never })).rejects.toThrow(TypeError)
  })
})

describe('backendMemory', () => {
  it('counts live tensors and their bytes, and the wasm memory on wasm only', async () => {
    const { initBackend, backendMemory } = await freshBackendModule()
    await initBackend({ prefer: 'wasm' })
    const before = backendMemory()
    expect(before.wasmHeapBytes).toBeGreaterThan(0)
    const t = tf.zeros([1000])
    const held = backendMemory()
    expect(held.tensors).toBe(before.tensors + 1)
    expect(held.tensorBytes).toBe(before.tensorBytes + 4000)
    t.dispose()
    expect(backendMemory().tensors).toBe(before.tensors)
    await tf.setBackend('cpu')
    expect(backendMemory().wasmHeapBytes).toBeUndefined()
  })
})
