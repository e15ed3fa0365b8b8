/**
 * Chooses the tfjs backend once per process: tfjs-node when its native binary
 * loads, else wasm (SIMD, single thread in Node), else the pure-JS cpu backend.
 * Everything imports tfjs through ./tf.ts, so all backends share one tfjs-core.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import { registerWasmKernels } from './conv-grad.ts'
import * as tf from './tf.ts'

/** Minimal logger the model layer accepts (libp2p loggers and console both fit with a wrapper). */
export interface ModelLogger {
  log(msg: string, ...args: unknown[]): void
  error?(msg: string, ...args: unknown[]): void
}

/** Backend families, fastest first. */
export type BackendPreference = 'node' | 'wasm' | 'cpu'

export interface BackendInit {
  /** Start the search here; slower families after it are still tried. Default 'node'. */
  prefer?: BackendPreference
  logger?: ModelLogger
}

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' (tfjs-node), 'wasm' or 'cpu'. */
  name: string
  /** Family that was chosen. */
  kind: BackendPreference
  /** wasm only: whether the SIMD binary is in use. */
  simd?: boolean
}

const ORDER: BackendPreference[] = ['node', 'wasm', 'cpu']

let chosen: Promise<BackendInfo> | undefined

/**
 * Initialises the fastest available backend, starting from `prefer`. Idempotent:
 * later calls return the first call's result whatever they prefer.
 */
export function initBackend(init: BackendInit = {}): Promise<BackendInfo> {
  if (chosen === undefined) {
    chosen = choose(init)
    // A failed attempt must not poison later calls.
    chosen.catch(() => {
      chosen = undefined
    })
  } else if (init.prefer !== undefined) {
    void chosen.then((info) => {
      if (info.kind !== init.prefer)
        init.logger?.log('backend already chosen: %s (ignoring prefer=%s)', info.name, init.prefer)
    })
  }
  return chosen
}

async function choose(init: BackendInit): Promise<BackendInfo> {
  const start = ORDER.indexOf(init.prefer ?? 'node')
  if (start < 0) throw new TypeError(`unknown backend preference: ${String(init.prefer)}`)
  // Skips tfjs debug checks and the cpu backend's "install tfjs-node" console banner.
  tf.env().set('PROD', true)
  for (const kind of ORDER.slice(start)) {
    try {
      const info = await TRY[kind]()
      init.logger?.log('tfjs backend: %s%s', info.name, info.simd === undefined ? '' : ` (simd=${info.simd})`)
      return info
    } catch (err) {
      init.logger?.log(
        'tfjs backend %s unavailable: %s',
        kind,
        err instanceof Error ? err.message : String(err),
      )
    }
  }
  throw new Error('no tfjs backend could be initialised')
}

const TRY: Record<BackendPreference, () => Promise<BackendInfo>> = {
  async node() {
    // A variable specifier keeps bundlers and tsc from resolving an optional dependency
    // that is usually absent (its install downloads a native binary).
    const specifier = '@tensorflow/tfjs-node'
    await import(/* @vite-ignore */ specifier)
    // tfjs-node registers into the tfjs-core it resolves; if that is another copy, ours never sees it.
    if (tf.engine().registryFactory.tensorflow === undefined) {
      throw new Error('tfjs-node loaded but registered into a different @tensorflow/tfjs-core')
    }
    if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend(tensorflow) failed')
    return { name: 'tensorflow', kind: 'node' }
  },

  async wasm() {
    const wasm = await import('@tensorflow/tfjs-backend-wasm')
    // In Node, Emscripten reads the binary with fs from a plain directory prefix.
    const require = createRequire(import.meta.url)
    const dist = path.join(
      path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
      'dist',
    )
    wasm.setWasmPaths(`${dist}${path.sep}`)
    registerWasmKernels()
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend(wasm) failed')
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))
    return { name: 'wasm', kind: 'wasm', simd }
  },

  async cpu() {
    // Imported only when chosen: it registers itself, and most nodes never need it.
    await import('@tensorflow/tfjs-backend-cpu')
    if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend(cpu) failed')
    return { name: 'cpu', kind: 'cpu' }
  },
}

/** What the tfjs backend holds outside the JS heap, for /metrics and memory benches. */
export interface BackendMemory {
  /** Live tensors (a count that climbs without end is a leak). */
  tensors: number
  /** Bytes of live tensor data as tfjs counts them. */
  tensorBytes: number
  /** wasm only: the wasm instance's linear memory, which grows and never shrinks. */
  wasmHeapBytes?: number
}

/** Reads the process's tfjs backend (call after initBackend): cheap, no sync with the device. */
export function backendMemory(): BackendMemory {
  const m = tf.memory()
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } } | undefined)?.wasm?.HEAPU8
  return {
    tensors: m.numTensors,
    tensorBytes: m.numBytes,
    ...(heap !== undefined ? { wasmHeapBytes: heap.buffer.byteLength } : {}),
  }
}
