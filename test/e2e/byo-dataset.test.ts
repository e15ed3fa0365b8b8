/**
 * Bring your own data, end to end as a person would: files written here (a CSV table and
 * gzipped IDX images), then the real `gossip-learn testbed` command with 3 peer processes.
 * Each must learn well above chance (1/3 for three classes).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRng } from '../../src/util/rng.ts'
import { runCli } from './run-cli.ts'

const CLASSES = 3

const run = runCli

/** Three overlapping Gaussian blobs in 4-D, on raw (unnormalised) scales. */
function blobsCsv(rows: number, seed: number): string {
  const rng = createRng(seed)
  const centres = [
    [0, 10, 100, -5],
    [3, 12, 130, -2],
    [6, 8, 110, 1],
  ]
  const scales = [1.2, 1.5, 12, 1.5]
  const lines = ['f0,f1,label,f2,f3']
  for (let i = 0; i < rows; i++) {
    const y = i % CLASSES
    const x = centres[y]!.map((c, j) => c + scales[j]! * rng.normal())
    lines.push(`${x[0]!.toFixed(3)},${x[1]!.toFixed(3)},${y},${x[2]!.toFixed(3)},${x[3]!.toFixed(3)}`)
  }
  return `${lines.join('\n')}\n`
}

/** IDX image file (magic 0x00000803) of 12x12 noisy images: class c has a bright bar at rows 2+4c. */
function idxImages(count: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const rng = createRng(seed)
  const side = 12
  const images = new Uint8Array(16 + count * side * side)
  const view = new DataView(images.buffer)
  view.setUint32(0, 0x00000803)
  view.setUint32(4, count)
  view.setUint32(8, side)
  view.setUint32(12, side)
  const labels = new Uint8Array(8 + count)
  new DataView(labels.buffer).setUint32(0, 0x00000801)
  new DataView(labels.buffer).setUint32(4, count)
  for (let n = 0; n < count; n++) {
    const y = n % CLASSES
    labels[8 + n] = y
    for (let r = 0; r < side; r++) {
      for (let c = 0; c < side; c++) {
        const bar = r >= 2 + 4 * y && r < 4 + 4 * y ? 140 : 0
        images[16 + n * side * side + r * side + c] = Math.min(255, Math.floor(bar + 110 * rng.next()))
      }
    }
  }
  return { images, labels }
}

interface Result {
  meanFinalAccuracy: number
  minFinalAccuracy: number
  peers: { modelsReceived: number }[]
}

describe('bring-your-own datasets in a 3-peer testbed', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-byo-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const testbed = async (dataset: string, name: string): Promise<Result> => {
    const json = join(dir, `${name}.json`)
    const r = await run([
      'testbed',
      '--peers',
      '3',
      '--duration',
      '12',
      '--dataset',
      dataset,
      '--hidden',
      '16',
      '--partition',
      'iid',
      '--json',
      json,
      '--report',
      join(dir, `${name}.html`),
      '--no-http',
    ])
    expect(r.code, r.stderr).toBe(0)
    return JSON.parse(await readFile(json, 'utf8')) as Result
  }

  it('trains on a CSV written by the test (4 features, 3 classes: an MLP 4-16-3)', async () => {
    const train = join(dir, 'train.csv')
    const test = join(dir, 'test.csv')
    await writeFile(train, blobsCsv(900, 1))
    await writeFile(test, blobsCsv(300, 2))
    const result = await testbed(`csv:${train},${test}`, 'csv')
    expect(result.meanFinalAccuracy).toBeGreaterThan(0.7)
    for (const p of result.peers) expect(p.modelsReceived).toBeGreaterThan(0)
  })

  it('trains on gzipped and plain IDX files written by the test (12x12 images, 3 classes)', async () => {
    const train = idxImages(900, 3)
    const test = idxImages(300, 4)
    const files = ['train-images.gz', 'train-labels', 'test-images', 'test-labels.gz'].map((f) =>
      join(dir, f),
    )
    await writeFile(files[0]!, gzipSync(train.images))
    await writeFile(files[1]!, train.labels)
    await writeFile(files[2]!, test.images)
    await writeFile(files[3]!, gzipSync(test.labels))
    const result = await testbed(`idx:${files.join(',')}`, 'idx')
    expect(result.meanFinalAccuracy).toBeGreaterThan(0.7)
    for (const p of result.peers) expect(p.modelsReceived).toBeGreaterThan(0)
  })
})
