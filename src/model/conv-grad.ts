/**
 * Kernels @tensorflow/tfjs-backend-wasm 4.x lacks or runs slowly:
 * - Conv2DBackpropFilter (conv weight gradient) is missing, so no conv net can
 *   train on wasm. Ours is plain JS over views of the wasm heap, NHWC, dilation 1.
 * - BatchMatMul is fast (XNNPACK) only without transposes; with transposeA or
 *   transposeB, as every dense-layer gradient asks, it takes a ~10x slower path.
 *   We transpose explicitly (a cheap kernel) and call the fast path.
 */
import * as tf from './tf.ts'

/** The slice of the wasm backend this kernel uses (typed here to avoid importing the package eagerly). */
interface WasmBackendLike {
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo
  disposeData(dataId: tf.DataId, force?: boolean): boolean
}

interface BackpropFilterAttrs {
  strides: [number, number] | number
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding
  dataFormat: 'NHWC' | 'NCHW'
  dimRoundingMode?: 'floor' | 'round' | 'ceil'
  filterShape: [number, number, number, number]
}

/** Geometry shared by the conv gradient helpers. */
export interface ConvGeometry {
  batchSize: number
  inHeight: number
  inWidth: number
  inChannels: number
  outHeight: number
  outWidth: number
  outChannels: number
  filterHeight: number
  filterWidth: number
  strideHeight: number
  strideWidth: number
  padTop: number
  padLeft: number
}

/**
 * dW[r, c, i, o] = sum over batch and output positions of x[b, y*sh + r - top, x*sw + c - left, i] * dy[b, y, x, o].
 * Pure function over flat NHWC arrays so it can be tested and reused on any backend.
 */
export function conv2dBackpropFilterNHWC(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  info: ConvGeometry,
): Float64Array {
  const {
    batchSize,
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    filterHeight,
    filterWidth,
    strideHeight,
    strideWidth,
    padTop,
    padLeft,
  } = info
  // Float64 accumulation: a gradient sums batch*outH*outW products per weight.
  const dW = new Float64Array(filterHeight * filterWidth * inChannels * outChannels)
  const filterRowStride = filterWidth * inChannels * outChannels
  const filterColStride = inChannels * outChannels
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      const xR0 = yR * strideHeight - padTop
      const wRMin = Math.max(0, -xR0)
      const wRMax = Math.min(filterHeight, inHeight - xR0)
      for (let yC = 0; yC < outWidth; yC++) {
        const xC0 = yC * strideWidth - padLeft
        const wCMin = Math.max(0, -xC0)
        const wCMax = Math.min(filterWidth, inWidth - xC0)
        const dyOff = ((b * outHeight + yR) * outWidth + yC) * outChannels
        for (let wR = wRMin; wR < wRMax; wR++) {
          const xRowOff = (b * inHeight + xR0 + wR) * inWidth
          for (let wC = wCMin; wC < wCMax; wC++) {
            const xOff = (xRowOff + xC0 + wC) * inChannels
            const wOff = wR * filterRowStride + wC * filterColStride
            for (let d1 = 0; d1 < inChannels; d1++) {
              const xv = x[xOff + d1]
              // After relu many inputs are exactly zero: skipping them is free speed.
              if (xv === 0) continue
              const base = wOff + d1 * outChannels
              for (let d2 = 0; d2 < outChannels; d2++) dW[base + d2] += xv * dy[dyOff + d2]
            }
          }
        }
      }
    }
  }
  return dW
}

/**
 * Transposed im2col: cols[k * M + m] = x at filter tap k = (r * fw + c) * inC + i and output
 * position m = (b * outH + y) * outW + x, zero where the tap falls into padding.
 * Then dW (as [K, outC]) = cols [K, M] @ dy [M, outC].
 */
export function im2colTransposed(x: ArrayLike<number>, cols: Float32Array, g: ConvGeometry): void {
  const M = g.batchSize * g.outHeight * g.outWidth
  let k = 0
  for (let wR = 0; wR < g.filterHeight; wR++) {
    for (let wC = 0; wC < g.filterWidth; wC++) {
      for (let d1 = 0; d1 < g.inChannels; d1++, k++) {
        let m = k * M
        for (let b = 0; b < g.batchSize; b++) {
          for (let yR = 0; yR < g.outHeight; yR++) {
            const xR = yR * g.strideHeight + wR - g.padTop
            if (xR < 0 || xR >= g.inHeight) {
              cols.fill(0, m, m + g.outWidth)
              m += g.outWidth
              continue
            }
            const rowOff = (b * g.inHeight + xR) * g.inWidth
            for (let yC = 0; yC < g.outWidth; yC++, m++) {
              const xC = yC * g.strideWidth + wC - g.padLeft
              cols[m] = xC < 0 || xC >= g.inWidth ? 0 : x[(rowOff + xC) * g.inChannels + d1]
            }
          }
        }
      }
    }
  }
}

/** Above this many im2col floats (256 MiB) the kernel takes the direct loop instead. */
const IM2COL_MAX_FLOATS = 1 << 26

function conv2dBackpropFilterWasm(args: {
  inputs: tf.NamedTensorInfoMap
  backend: unknown
  attrs?: tf.NamedAttrMap
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike
  const x = args.inputs.x as tf.TensorInfo
  const dy = args.inputs.dy as tf.TensorInfo
  const attrs = args.attrs as unknown as BackpropFilterAttrs
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('Conv2DBackpropFilter (wasm): only NHWC is implemented')
  }
  const convInfo = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  )
  const g: ConvGeometry = {
    batchSize: convInfo.batchSize,
    inHeight: convInfo.inHeight,
    inWidth: convInfo.inWidth,
    inChannels: convInfo.inChannels,
    outHeight: convInfo.outHeight,
    outWidth: convInfo.outWidth,
    outChannels: convInfo.outChannels,
    filterHeight: convInfo.filterHeight,
    filterWidth: convInfo.filterWidth,
    strideHeight: convInfo.strideHeight,
    strideWidth: convInfo.strideWidth,
    padTop: convInfo.padInfo.top,
    padLeft: convInfo.padInfo.left,
  }
  const M = g.batchSize * g.outHeight * g.outWidth
  const K = g.filterHeight * g.filterWidth * g.inChannels
  const matMul = tf.getKernel('BatchMatMul', 'wasm')
  if (matMul !== undefined && K * M <= IM2COL_MAX_FLOATS) {
    // Allocate before taking views: growing the wasm heap detaches earlier views.
    const cols = backend.makeOutput([K, M], 'float32')
    im2colTransposed(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(cols) as Float32Array, g)
    const dy2d: tf.TensorInfo = { dataId: dy.dataId, shape: [M, g.outChannels], dtype: 'float32' }
    try {
      // Untransposed BatchMatMul: the XNNPACK fast path.
      const out = matMul.kernelFunc({
        inputs: { a: cols, b: dy2d },
        backend: args.backend as Parameters<tf.KernelFunc>[0]['backend'],
        attrs: { transposeA: false, transposeB: false },
      }) as tf.TensorInfo
      // [K, outC] is [fh, fw, inC, outC] in row-major order: only the shape changes.
      ;(out as { shape: number[] }).shape = [...convInfo.filterShape]
      return out
    } finally {
      backend.disposeData(cols.dataId)
    }
  }
  // Read both inputs before allocating the output: growing the wasm heap detaches old views.
  const dW = conv2dBackpropFilterNHWC(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(dy), g)
  const out = backend.makeOutput(convInfo.filterShape, 'float32')
  ;(backend.typedArrayFromHeap(out) as Float32Array).set(dW)
  return out
}

/** Scatter-adds cols [M, K] (layout of im2colTransposed, untransposed) back into dx (NHWC). */
export function col2imAdd(cols: ArrayLike<number>, dx: Float32Array, g: ConvGeometry): void {
  const K = g.filterHeight * g.filterWidth * g.inChannels
  const inC = g.inChannels
  let m = 0
  for (let b = 0; b < g.batchSize; b++) {
    for (let yR = 0; yR < g.outHeight; yR++) {
      for (let yC = 0; yC < g.outWidth; yC++, m++) {
        const colOff = m * K
        for (let wR = 0; wR < g.filterHeight; wR++) {
          const xR = yR * g.strideHeight + wR - g.padTop
          if (xR < 0 || xR >= g.inHeight) continue
          for (let wC = 0; wC < g.filterWidth; wC++) {
            const xC = yC * g.strideWidth + wC - g.padLeft
            if (xC < 0 || xC >= g.inWidth) continue
            const dxOff = ((b * g.inHeight + xR) * g.inWidth + xC) * inC
            const cOff = colOff + (wR * g.filterWidth + wC) * inC
            for (let d1 = 0; d1 < inC; d1++) dx[dxOff + d1] += cols[cOff + d1]
          }
        }
      }
    }
  }
}

function geometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batchSize: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  }
}

interface BackpropInputAttrs {
  strides: [number, number] | number
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding
  dataFormat: 'NHWC' | 'NCHW'
  dimRoundingMode?: 'floor' | 'round' | 'ceil'
  inputShape: [number, number, number, number]
}

/**
 * dx = col2im(dy [M, outC] @ W^T [outC, K]): the GEMM runs on XNNPACK, the scatter in JS.
 * Replaces the wasm backend's direct loop, ~4x slower on the zoo CNN.
 */
function conv2dBackpropInputWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackendLike
  const dy = args.inputs.dy as tf.TensorInfo
  const filter = args.inputs.filter as tf.TensorInfo
  const attrs = args.attrs as unknown as BackpropInputAttrs
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropInput (wasm): only NHWC is implemented')
  const convInfo = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  )
  const g = geometry(convInfo)
  const M = g.batchSize * g.outHeight * g.outWidth
  const K = g.filterHeight * g.filterWidth * g.inChannels
  const cols = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc({
    inputs: {
      a: { dataId: dy.dataId, shape: [M, g.outChannels], dtype: 'float32' },
      b: { dataId: filter.dataId, shape: [K, g.outChannels], dtype: 'float32' },
    },
    backend: args.backend,
    attrs: { transposeA: false, transposeB: true },
  }) as tf.TensorInfo
  try {
    const dx = backend.makeOutput([...convInfo.inShape], 'float32')
    const dxVals = backend.typedArrayFromHeap(dx) as Float32Array
    dxVals.fill(0)
    col2imAdd(backend.typedArrayFromHeap(cols), dxVals, g)
    return dx
  } finally {
    backend.disposeData(cols.dataId)
  }
}

interface MaxPoolGradAttrs {
  filterSize: [number, number] | number
  strides: [number, number] | number
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding
  dimRoundingMode?: 'floor' | 'round' | 'ceil'
}

/**
 * Routes each dy to the first maximum of its window (strict >, row-major: the cpu
 * backend's rule). Plain JS; the wasm backend's own kernel is ~5x slower here.
 */
function maxPoolGradWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackendLike
  const dy = args.inputs.dy as tf.TensorInfo
  const input = args.inputs.input as tf.TensorInfo
  const attrs = args.attrs as unknown as MaxPoolGradAttrs
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  )
  const dx = backend.makeOutput([...input.shape], 'float32')
  const dxVals = backend.typedArrayFromHeap(dx) as Float32Array
  const x = backend.typedArrayFromHeap(input)
  const dyVals = backend.typedArrayFromHeap(dy)
  dxVals.fill(0)
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth } = info
  const fh = info.effectiveFilterHeight
  const fw = info.effectiveFilterWidth
  let o = 0
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      const r0 = yR * strideHeight - info.padInfo.top
      const rMin = Math.max(0, r0)
      const rMax = Math.min(inHeight, r0 + fh)
      for (let yC = 0; yC < outWidth; yC++) {
        const c0 = yC * strideWidth - info.padInfo.left
        const cMin = Math.max(0, c0)
        const cMax = Math.min(inWidth, c0 + fw)
        for (let d = 0; d < C; d++, o++) {
          let best = Number.NEGATIVE_INFINITY
          let at = -1
          for (let xR = rMin; xR < rMax; xR++) {
            for (let xC = cMin; xC < cMax; xC++) {
              const i = ((b * inHeight + xR) * inWidth + xC) * C + d
              if (x[i] > best) {
                best = x[i]
                at = i
              }
            }
          }
          if (at >= 0) dxVals[at] += dyVals[o]
        }
      }
    }
  }
  return dx
}

type KernelArgs = Parameters<tf.KernelFunc>[0]

/** Wraps the wasm BatchMatMul so transposed operands are materialised first (see file comment). */
function fastBatchMatMul(original: tf.KernelConfig, transposeKernel: tf.KernelConfig): tf.KernelConfig {
  const matMul = original.kernelFunc
  const transpose = transposeKernel.kernelFunc
  const swapLast = (info: tf.TensorInfo, backend: KernelArgs['backend']): tf.TensorInfo => {
    const r = info.shape.length
    const perm = [...Array(r - 2).keys(), r - 1, r - 2]
    return transpose({ inputs: { x: info }, backend, attrs: { perm } }) as tf.TensorInfo
  }
  const kernelFunc = (args: KernelArgs) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean }
    if (!attrs.transposeA && !attrs.transposeB) return matMul(args)
    const backend = args.backend as KernelArgs['backend'] & { disposeData(id: tf.DataId): boolean }
    const temps: tf.TensorInfo[] = []
    let a = args.inputs.a as tf.TensorInfo
    let b = args.inputs.b as tf.TensorInfo
    if (attrs.transposeA) {
      a = swapLast(a, backend)
      temps.push(a)
    }
    if (attrs.transposeB) {
      b = swapLast(b, backend)
      temps.push(b)
    }
    try {
      return matMul({
        inputs: { a, b },
        backend,
        attrs: { ...args.attrs, transposeA: false, transposeB: false },
      })
    } finally {
      for (const t of temps) backend.disposeData(t.dataId)
    }
  }
  return { ...original, kernelFunc: kernelFunc as tf.KernelFunc }
}

const ours = Symbol('gossip-learn wasm kernel')
type MarkedKernel = tf.KernelConfig & { [ours]?: true }

/** Replaces (or adds) a wasm kernel, keeping the original setupFunc; false if already ours. */
function override(
  kernelName: string,
  make: (original: tf.KernelConfig | undefined) => tf.KernelFunc,
): boolean {
  const original = tf.getKernel(kernelName, 'wasm') as MarkedKernel | undefined
  if (original?.[ours]) return false
  if (original !== undefined) tf.unregisterKernel(kernelName, 'wasm')
  const config: MarkedKernel = {
    kernelName,
    backendName: 'wasm',
    setupFunc: original?.setupFunc,
    kernelFunc: make(original),
    [ours]: true,
  }
  tf.registerKernel(config)
  return true
}

/**
 * Registers our wasm kernels (see the file comment): Conv2DBackpropFilter unless the
 * backend ships its own, faster Conv2DBackpropInput and MaxPoolGrad, and the
 * transpose-free BatchMatMul wrapper. Call after importing @tensorflow/tfjs-backend-wasm
 * and before tf.setBackend('wasm'); idempotent. Returns the kernels it (re)registered.
 */
export function registerWasmKernels(): string[] {
  const done: string[] = []
  const matMul = tf.getKernel('BatchMatMul', 'wasm')
  const transpose = tf.getKernel('Transpose', 'wasm')
  if (matMul === undefined || transpose === undefined) return done
  if (override('BatchMatMul', (original) => fastBatchMatMul(original!, transpose).kernelFunc))
    done.push('BatchMatMul')
  const native = tf.getKernel('Conv2DBackpropFilter', 'wasm') as MarkedKernel | undefined
  if (native === undefined || native[ours]) {
    if (override('Conv2DBackpropFilter', () => conv2dBackpropFilterWasm as unknown as tf.KernelFunc)) {
      done.push('Conv2DBackpropFilter')
    }
  }
  if (override('Conv2DBackpropInput', () => conv2dBackpropInputWasm as tf.KernelFunc))
    done.push('Conv2DBackpropInput')
  if (override('MaxPoolGrad', () => maxPoolGradWasm as tf.KernelFunc)) done.push('MaxPoolGrad')
  return done
}
