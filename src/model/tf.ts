/**
 * The tfjs this project uses: core (tensors, ops, the engine) and layers (the model zoo).
 * The `@tensorflow/tfjs` union also loads the webgl and cpu backends, the graph-model converter
 * and tfjs-data, none of which a node uses: 11 MiB more at import, 5.6 MiB in a running node
 * (docs/BENCHMARKS.md, Memory). The cpu backend, the last fallback, is imported when it is
 * chosen (backend.ts).
 * The gradients of core's ops come with tfjs-layers' bundle; the chained forms (`t.mean()`)
 * do not, and their types are absent too: write `tf.mean(t)`.
 */
export * from '@tensorflow/tfjs-core'
export * from '@tensorflow/tfjs-layers'
