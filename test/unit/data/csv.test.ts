import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { loadCsvDataset, parseCsv } from '../../../src/data/csv.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'gl-csv-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
function file(text: string, gz = false): string {
  const p = path.join(dir, `f${n++}.csv`)
  writeFileSync(p, gz ? gzipSync(text) : text)
  return p
}

function expectError(fn: () => unknown, name: string, ...parts: string[]): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  expect(caught, `expected ${name}`).toBeInstanceOf(Error)
  const err = caught as Error
  expect(err.name, err.message).toBe(name)
  for (const part of parts) expect(err.message).toContain(part)
}

const TRAIN = 'a,label,b\n0,0,10\n2,1,20\n\n4,2,30\r\n'
const TEST = 'a,label,b\n1,2,40\n'

describe('parseCsv', () => {
  it('reads the header, the label column and numeric cells (blank lines and CRLF skipped)', () => {
    const t = parseCsv(TRAIN, 'train.csv')
    expect(t.columns).toEqual(['a', 'b'])
    expect(Array.from(t.values)).toEqual([0, 10, 2, 20, 4, 30])
    expect(Array.from(t.labels)).toEqual([0, 1, 2])
    expect(Array.from(t.lines)).toEqual([2, 3, 5])
    expect(t.maxLabel).toBe(2)
    const quoted = parseCsv('\uFEFF"x", "y" ,"label"\n-1.5e2, .5,1\n', 'q.csv')
    expect([quoted.columns, Array.from(quoted.values)]).toEqual([
      ['x', 'y'],
      [-150, 0.5],
    ])
    expect(Array.from(parseCsv('species,x\n1,3\n', 's.csv', { label: 'species' }).labels)).toEqual([1])
  })

  it('rejects malformed files naming the file and the line', () => {
    expectError(
      () => parseCsv('a,label\n1,0\n2\n', 'r.csv'),
      'MalformedCsvError',
      'r.csv',
      'line 3',
      '1 cells',
    )
    expectError(() => parseCsv('a,label\n1,0\n1,2,3\n', 'r.csv'), 'MalformedCsvError', 'line 3', '3 cells')
    expectError(
      () => parseCsv('a,label\n1,0\nx,1\n', 'n.csv'),
      'MalformedCsvError',
      'n.csv',
      'line 3',
      "'a'",
      "'x'",
    )
    expectError(() => parseCsv('a,label\n,0\n', 'n.csv'), 'MalformedCsvError', 'line 2', "''")
    for (const cell of ['NaN', 'Infinity', '0x10', '1e39', '1,5']) {
      expect(() => parseCsv(`a,label\n${cell},0\n`, 'n.csv'), cell).toThrow(
        expect.objectContaining({ name: 'MalformedCsvError' }),
      )
    }
    expectError(() => parseCsv('1,2\n3,4\n', 'h.csv'), 'MalformedCsvError', 'h.csv', 'line 1', "'label'")
    expectError(() => parseCsv('\n\n', 'e.csv'), 'MalformedCsvError', 'e.csv', 'header')
    expectError(() => parseCsv('a,label\n', 'e.csv'), 'MalformedCsvError', 'e.csv', 'no data rows')
    expectError(() => parseCsv('label\n1\n', 'e.csv'), 'MalformedCsvError', 'no feature columns')
    expectError(() => parseCsv('a,a,label\n1,2,0\n', 'd.csv'), 'MalformedCsvError', "'a' appears twice")
  })

  it('rejects labels that are not integers in range, naming the line', () => {
    for (const label of ['-1', '1.5', '256']) {
      expectError(
        () => parseCsv(`a,label\n1,0\n2,${label}\n`, 'l.csv'),
        'LabelOutOfRangeError',
        'l.csv',
        'line 3',
      )
    }
    expectError(
      () => parseCsv('a,label\n1,3\n', 'l.csv', { classes: 3 }),
      'LabelOutOfRangeError',
      'line 2',
      '[0, 3)',
    )
    expectError(() => parseCsv('a,label\n1,one\n', 'l.csv'), 'MalformedCsvError', 'line 2')
  })
})

describe('loadCsvDataset', () => {
  it('min-max scales each column with the training file (gzipped or not), classes = max label + 1', () => {
    const ds = loadCsvDataset({ name: 'csv', train: file(TRAIN, true), test: file(TEST) })
    expect([ds.name, ds.featureShape, ds.numClasses, ds.trainCount, ds.testCount]).toEqual([
      'csv',
      [2],
      3,
      3,
      1,
    ])
    expect(Array.from(ds.trainSamples([0, 1, 2]).features)).toEqual([0, 0, 0.5, 0.5, 1, 1])
    // Test values use the training range: b = 40 lies beyond it.
    const test = ds.testSamples(100)
    expect([test.count, Array.from(test.labels), Array.from(test.features)]).toEqual([1, [2], [0.25, 1.5]])
  })

  it('a constant column is shifted, not divided by zero; classes= overrides the count', () => {
    const ds = loadCsvDataset({
      name: 'csv',
      train: file('c,label\n5,0\n5,1\n'),
      test: file('c,label\n7,1\n'),
      classes: 4,
    })
    expect(ds.numClasses).toBe(4)
    expect(Array.from(ds.trainSamples([0, 1]).features)).toEqual([0, 0])
    expect(Array.from(ds.testSamples(1).features)).toEqual([2])
  })

  it('rejects a test file with other columns, one class, and values that overflow when scaled', () => {
    const train = file(TRAIN)
    const other = file('a,label,c\n1,0,2\n')
    expectError(() => loadCsvDataset({ name: 'csv', train, test: other }), 'SplitMismatchError', other, train)
    const one = file('a,label\n1,0\n2,0\n')
    expectError(() => loadCsvDataset({ name: 'csv', train: one, test: one }), 'TooFewClassesError', one)
    const tiny = file('a,label\n0,0\n1e-30,1\n')
    const huge = file('a,label\n1e30,0\n')
    expectError(
      () => loadCsvDataset({ name: 'csv', train: tiny, test: huge }),
      'MalformedCsvError',
      huge,
      'line 2',
    )
    const missing = path.join(dir, 'missing.csv')
    expectError(
      () => loadCsvDataset({ name: 'csv', train: missing, test: train }),
      'DatasetReadError',
      missing,
    )
  })
})
