import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FASHION_MNIST_DIR, fashionMnistDataset, fashionMnistFiles } from '../../../src/data/fashion-mnist.ts'
import { mnistDataset } from '../../../src/data/mnist.ts'

const installed = existsSync(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'))
// Without the package the loader test is reported as skipped, and its title says why.
const loads = 'loads the Debian package: 60000 + 10000 images of 10 balanced classes'
const title = installed
  ? loads
  : `${loads} (skipped: ${FASHION_MNIST_DIR} missing, apt-get install dataset-fashion-mnist)`

describe('fashion-mnist', () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'gl-fashion-'))
  afterAll(() => rmSync(empty, { recursive: true, force: true }))

  it.skipIf(!installed)(title, () => {
    const ds = fashionMnistDataset()
    expect([ds.name, ds.featureShape, ds.numClasses, ds.trainCount, ds.testCount]).toEqual([
      'fashion-mnist',
      [28, 28, 1],
      10,
      60_000,
      10_000,
    ])
    const counts = new Array(10).fill(0)
    for (const label of ds.trainLabels()) counts[label]++
    expect(counts).toEqual(new Array(10).fill(6000))
    const test = ds.testSamples(500)
    let min = 1
    let max = 0
    for (const v of test.features) {
      min = Math.min(min, v)
      max = Math.max(max, v)
    }
    expect([min, max]).toEqual([0, 1])
    // Not MNIST under another name.
    expect(test.features).not.toEqual(mnistDataset().testSamples(500).features)
  })

  it('names the package to install when its files are missing', () => {
    let caught: Error | undefined
    try {
      fashionMnistFiles(empty)
    } catch (err) {
      caught = err as Error
    }
    expect(caught?.name).toBe('DatasetNotInstalledError')
    expect(caught?.message).toContain('apt-get install dataset-fashion-mnist')
    expect(caught?.message).toContain(empty)
  })
})
