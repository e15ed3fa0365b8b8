import { describe, expect, it } from 'vitest'
import { createMergePipeline, createMerger } from '../../../src/merge/merger.ts'
import {
  checkStepOrder,
  composePipeline,
  type InputVerdict,
  type MergeInput,
  type MergeStepDefinition,
  type MergeStepInit,
  type MergeStepKind,
  type NamedMergeStep,
} from '../../../src/merge/pipeline.ts'
import { MERGE_STEPS } from '../../../src/merge/registry.ts'
import { cloneState } from '../../../src/model/layout.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import { randomState, snapshot } from './fixtures.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 8 }
const INIT: MergeStepInit = { seed: 0 }
const average: NamedMergeStep = { name: 'average', definition: MERGE_STEPS.average }
const varcorr: NamedMergeStep = { name: 'varcorr', definition: MERGE_STEPS.varcorr }

/** A test input step that decides by a function of the input. */
function inputStep(name: string, decide: (input: MergeInput) => InputVerdict): NamedMergeStep {
  return { name, definition: { kind: 'input', create: () => (_local, input) => decide(input) } }
}

const local = randomState(MLP, 1, 10)
const received = [randomState(MLP, 2, 20), randomState(MLP, 3, 90), randomState(MLP, 4, 30)]

describe('composePipeline', () => {
  it('drops a rejected input, reports it, and merges the rest exactly as if it never came', () => {
    const tooOld = inputStep('too-old', (input) =>
      input.state.age > 50 ? { action: 'reject', reason: 'age above 50' } : { action: 'accept', input },
    )
    const result = composePipeline([tooOld, average, varcorr], INIT).merge(local, received)
    expect(result.outcomes).toEqual([
      { index: 0, action: 'merged' },
      { index: 1, action: 'rejected', step: 'too-old', reason: 'age above 50' },
      { index: 2, action: 'merged' },
    ])
    const without = createMerger({ mode: 'varcorr' })(local, [received[0]!, received[2]!])
    expect(snapshot(result.state)).toEqual(snapshot(without))
    expect(result.state.age).toBe(30)
  })

  it('runs input steps in order on each input, each on the previous output, until one rejects', () => {
    const seen: string[] = []
    const tag = (name: string, verdict: (input: MergeInput) => InputVerdict) =>
      inputStep(name, (input) => {
        seen.push(`${name}:${input.index}:${input.state.age}`)
        return verdict(input)
      })
    const older = tag('older', (input) => ({
      action: 'clip',
      reason: 'aged',
      input: { ...input, state: { ...input.state, age: input.state.age + 1 } },
    }))
    const clipAgain = tag('clip-again', (input) => ({ action: 'clip', reason: 'again', input }))
    const rejectSecond = tag('reject-second', (input) =>
      input.index === 1 ? { action: 'reject', reason: 'second' } : { action: 'accept', input },
    )
    const never = tag('never', (input) => ({ action: 'accept', input }))
    const pipeline = composePipeline([older, clipAgain, rejectSecond, never, average], INIT)
    const result = pipeline.merge(local, received.slice(0, 2))
    expect(seen).toEqual([
      'older:0:20',
      'clip-again:0:21',
      'reject-second:0:21',
      'never:0:21',
      'older:1:90',
      'clip-again:1:91',
      'reject-second:1:91',
    ])
    expect(result.outcomes).toEqual([
      { index: 0, action: 'clipped', step: 'older', reason: 'aged' },
      { index: 1, action: 'rejected', step: 'reject-second', reason: 'second' },
    ])
    // The transformed input, not the received one, is what gets combined.
    expect(result.state.age).toBe(21)
    expect(pipeline.steps).toEqual(['older', 'clip-again', 'reject-second', 'never', 'average'])
  })

  it('returns a fresh copy of the local model when nothing is left to merge', () => {
    let combined = 0
    const countingAverage: NamedMergeStep = {
      name: 'average',
      definition: {
        kind: 'combine',
        create: (init) => {
          const run = MERGE_STEPS.average.create(init)
          return (l, inputs) => {
            combined++
            return run(l, inputs)
          }
        },
      },
    }
    const rejectAll = inputStep('reject-all', () => ({ action: 'reject', reason: 'no' }))
    const pipeline = composePipeline([rejectAll, countingAverage, varcorr], INIT)
    for (const r of [received, []]) {
      const result = pipeline.merge(local, r)
      expect(snapshot(result.state)).toEqual(snapshot(local))
      expect(result.state.tensors[0]!.values).not.toBe(local.tensors[0]!.values)
      expect(result.outcomes.map((o) => o.action)).toEqual(r.map(() => 'rejected'))
    }
    expect(combined).toBe(0)
  })

  it('refuses a mismatched input with ArchMismatchError before any step runs', () => {
    let calls = 0
    const spy = inputStep('spy', (input) => {
      calls++
      return { action: 'accept', input }
    })
    const wider = randomState({ kind: 'mlp', hidden: 9 }, 5, 10)
    expect(() => composePipeline([spy, average], INIT).merge(local, [received[0]!, wider])).toThrow(
      expect.objectContaining({ name: 'ArchMismatchError' }),
    )
    expect(calls).toBe(0)
  })

  it('creates each step once per pipeline, so a step keeps state across merges of one merger only', () => {
    let created = 0
    // Rejects every second input its merger sees: state that outlives one merge.
    const everySecond: MergeStepDefinition = {
      kind: 'input',
      create: () => {
        created++
        let seen = 0
        return (_local, input) =>
          ++seen % 2 === 0 ? { action: 'reject', reason: `input ${seen}` } : { action: 'accept', input }
      },
    }
    const steps = [{ name: 'every-second', definition: everySecond }, average]
    const a = composePipeline(steps, INIT)
    const b = composePipeline(steps, INIT)
    expect(created).toBe(2)
    const actions = (p: typeof a, r: ModelState[]) => p.merge(local, r).outcomes.map((o) => o.action)
    expect(actions(a, [received[0]!])).toEqual(['merged'])
    expect(actions(a, [received[1]!, received[2]!])).toEqual(['rejected', 'merged'])
    expect(actions(b, [received[1]!])).toEqual(['merged'])
    expect(actions(a, [received[0]!])).toEqual(['rejected'])
    expect(created).toBe(2)
  })

  it('passes post steps the combination (local first, its weights) and chains them in order', () => {
    const seenWeights: number[][] = []
    const first = (values: ModelState) => values.tensors[0]!.values[0]!
    const post = (name: string, add: number): NamedMergeStep => ({
      name,
      definition: {
        kind: 'post',
        create: () => (c) => {
          expect(c.states[0]).toBe(local)
          seenWeights.push([...c.weights])
          const out = cloneState(c.state)
          out.tensors[0]!.values[0] = first(c.state) * 10 + add
          return out
        },
      },
    })
    const result = composePipeline([average, post('p1', 1), post('p2', 2)], INIT).merge(local, [received[0]!])
    const plain = createMerger({ mode: 'plain' })(local, [received[0]!])
    expect(first(result.state)).toBeCloseTo((first(plain) * 10 + 1) * 10 + 2, 3)
    expect(seenWeights).toEqual([
      [1 / 3, 2 / 3],
      [1 / 3, 2 / 3],
    ])
  })

  it('hands every step factory the seed and options of its merger', () => {
    const inits: MergeStepInit[] = []
    const capture: MergeStepDefinition = {
      kind: 'input',
      create: (init) => {
        inits.push(init)
        return (_local, input) => ({ action: 'accept', input })
      },
    }
    createMergePipeline({
      mode: 'capture,average',
      seed: 7,
      varcorr: { epsilon: 0 },
      registry: { steps: { capture, average: MERGE_STEPS.average }, pipelines: {} },
    })
    expect(inits).toEqual([{ seed: 7, varcorr: { epsilon: 0 } }])
  })

  it('createMerger returns the pipeline result state', () => {
    const init = { mode: 'align+varcorr' as const, seed: 3 }
    expect(snapshot(createMerger(init)(local, received))).toEqual(
      snapshot(createMergePipeline(init).merge(local, received).state),
    )
    expect(
      createMergePipeline(init)
        .merge(local, received)
        .outcomes.map((o) => o.action),
    ).toEqual(['merged', 'merged', 'merged'])
  })
})

describe('checkStepOrder', () => {
  const bad: Array<[string, Array<{ name: string; kind: MergeStepKind }>]> = [
    ['no combine', []],
    [
      'two combines',
      [
        { name: 'a', kind: 'combine' },
        { name: 'b', kind: 'combine' },
      ],
    ],
    [
      'input after combine',
      [
        { name: 'c', kind: 'combine' },
        { name: 'i', kind: 'input' },
      ],
    ],
    [
      'post before combine',
      [
        { name: 'p', kind: 'post' },
        { name: 'c', kind: 'combine' },
      ],
    ],
  ]
  it.each(bad)('refuses %s with InvalidMergePipelineError', (_label, steps) => {
    expect(() => checkStepOrder(steps)).toThrow(
      expect.objectContaining({ name: 'InvalidMergePipelineError' }),
    )
  })

  it('is applied when composing', () => {
    expect(() => composePipeline([], INIT)).toThrow(
      expect.objectContaining({ name: 'InvalidMergePipelineError' }),
    )
    expect(() => composePipeline([varcorr, average], INIT)).toThrow(
      expect.objectContaining({ name: 'InvalidMergePipelineError' }),
    )
  })

  it('accepts input steps, one combine, post steps', () => {
    expect(() =>
      checkStepOrder([
        { name: 'i1', kind: 'input' },
        { name: 'i2', kind: 'input' },
        { name: 'c', kind: 'combine' },
        { name: 'p1', kind: 'post' },
        { name: 'p2', kind: 'post' },
      ]),
    ).not.toThrow()
  })
})
