import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  DATASET_KINDS,
  DATASET_USAGE,
  formatDatasetSpec,
  loadDataset,
  parseDatasetSpec,
} from '../../../src/data/registry.ts'

const isInvalidSpec = expect.objectContaining({ name: 'InvalidDatasetSpecError' })

describe('parseDatasetSpec', () => {
  it('parses every kind, with options, and formats back', () => {
    expect(DATASET_KINDS).toEqual(['mnist', 'fashion-mnist', 'idx', 'csv'])
    expect(parseDatasetSpec('mnist')).toEqual({ kind: 'mnist', files: [] })
    expect(parseDatasetSpec(' fashion-mnist ')).toEqual({ kind: 'fashion-mnist', files: [] })
    expect(parseDatasetSpec('idx:a,b.gz,c,d')).toEqual({ kind: 'idx', files: ['a', 'b.gz', 'c', 'd'] })
    expect(parseDatasetSpec('idx:a,b,c,d,classes=12')).toEqual({
      kind: 'idx',
      files: ['a', 'b', 'c', 'd'],
      classes: 12,
    })
    const csv = parseDatasetSpec('csv:dir/train.csv,test.csv,label=species,classes=3')
    expect(csv).toEqual({ kind: 'csv', files: ['dir/train.csv', 'test.csv'], label: 'species', classes: 3 })
    for (const text of ['mnist', 'idx:a,b,c,d,classes=12', 'csv:t.csv,s.csv,label=y,classes=3']) {
      expect(formatDatasetSpec(parseDatasetSpec(text))).toBe(text)
    }
    expect(DATASET_USAGE).toContain('csv:TRAIN.csv,TEST.csv[,label=NAME][,classes=K]')
  })

  it('rejects unknown kinds, wrong file counts and bad options', () => {
    for (const bad of [
      '',
      'cifar',
      'MNIST',
      'mnist:x',
      'idx:a,b,c',
      'idx:a,b,c,d,e',
      'idx:a,,c,d',
      'csv:a',
      'csv:a,b,label=',
      'idx:a,b,c,d,label=x',
      'csv:a,b,classes=1',
      'csv:a,b,classes=257',
      'csv:a,b,classes=2.5',
      'csv:a,b,classes=3,classes=3',
    ]) {
      expect(() => parseDatasetSpec(bad), bad).toThrow(isInvalidSpec)
    }
  })
})

describe('loadDataset', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gl-registry-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('loads a spec once per process and resolves relative paths', () => {
    const train = path.join(dir, 'train.csv')
    writeFileSync(train, 'x,y\n1,0\n2,1\n')
    const spec = `csv:${path.relative(process.cwd(), train)},${train},label=y`
    const ds = loadDataset(spec)
    expect([ds.name, ds.featureShape, ds.numClasses]).toEqual(['csv', [1], 2])
    expect(loadDataset(`csv:${train},${train},label=y`)).toBe(ds)
    expect(loadDataset('mnist')).toBe(loadDataset({ kind: 'mnist', files: [] }))
    expect(() => loadDataset('csv:only-one')).toThrow(isInvalidSpec)
  })
})
