import { describe, expect, it } from 'vitest'
import { type AlignOptions, alignTo } from '../../../src/merge/align.ts'
import { ageWeights, mergedAge, weightedAverage } from '../../../src/merge/average.ts'
import { createMergePipeline, createMerger } from '../../../src/merge/merger.ts'
import type { MergeStepDefinition } from '../../../src/merge/pipeline.ts'
import {
  DEFAULT_MERGE_MODE,
  isMergeMode,
  MERGE_MODES,
  MERGE_PIPELINES,
  MERGE_REGISTRY,
  MERGE_STEPS,
  type MergeMode,
  type MergeRegistry,
  parseMergeMode,
  resolveMergeSteps,
} from '../../../src/merge/registry.ts'
import { correctVariance, type VarianceCorrectionOptions } from '../../../src/merge/varcorr.ts'
import { assertSameLayout, cloneState } from '../../../src/model/layout.ts'
import {
  archSpecOf,
  checkPermutationSpec,
  type PermutationSpec,
  permutationSpecFor,
} from '../../../src/model/permutation.ts'
import type { ModelState } from '../../../src/model/types.ts'
import { hashSeed } from '../../../src/util/rng.ts'
import { mergeCases, randomState } from './fixtures.ts'

/**
 * The body of createMerger before merging became a pipeline (commit 8f15bb8), kept as the
 * reference every named pipeline must reproduce bit for bit.
 */
function legacyMerger(init: {
  mode: string
  seed?: number
  varcorr?: VarianceCorrectionOptions
  align?: Omit<AlignOptions, 'seed'>
  spec?: PermutationSpec
}) {
  const align = init.mode === 'align' || init.mode === 'align+varcorr'
  const varcorr = init.mode === 'varcorr' || init.mode === 'align+varcorr'
  const seed = init.seed ?? 0
  const specs = new Map<string, PermutationSpec>()
  const specFor = (local: ModelState): PermutationSpec => {
    let spec = specs.get(local.arch)
    if (spec === undefined) {
      spec = init.spec ?? permutationSpecFor(archSpecOf(local))
      specs.set(local.arch, spec)
    }
    checkPermutationSpec(local, spec)
    return spec
  }
  return (local: ModelState, received: ModelState[]): ModelState => {
    for (const r of received) assertSameLayout(local, r)
    if (received.length === 0) return cloneState(local)
    let inputs = received
    if (align) {
      const spec = specFor(local)
      inputs = received.map(
        (r, k) => alignTo(local, r, spec, { ...init.align, seed: hashSeed(seed, k) }).state,
      )
    }
    const states = [local, ...inputs]
    const weights = ageWeights(states)
    const averaged = weightedAverage(states, weights, mergedAge(states))
    return varcorr ? correctVariance(averaged, states, weights, init.varcorr) : averaged
  }
}

/** Every bit of a state: arch, age, names, shapes and the float32 values as integers. */
function bits(s: ModelState) {
  return {
    arch: s.arch,
    age: s.age,
    tensors: s.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      bits: new Uint32Array(t.values.buffer, t.values.byteOffset, t.values.length),
    })),
  }
}

/** Where two states differ in any bit, one line per difference (empty when bit-identical). */
function bitDiff(actual: ModelState, expected: ModelState): string[] {
  const a = bits(actual)
  const e = bits(expected)
  const out: string[] = []
  if (a.arch !== e.arch || a.age !== e.age) out.push(`arch/age ${a.arch}/${a.age} vs ${e.arch}/${e.age}`)
  if (a.tensors.length !== e.tensors.length)
    return [...out, `${a.tensors.length} vs ${e.tensors.length} tensors`]
  a.tensors.forEach((t, i) => {
    const x = e.tensors[i]!
    if (t.name !== x.name || t.shape.join() !== x.shape.join())
      out.push(`tensor ${i}: ${t.name} [${t.shape}]`)
    else {
      let differ = 0
      let first = -1
      for (let k = 0; k < t.bits.length; k++) {
        if (t.bits[k] !== x.bits[k]) {
          differ++
          if (first < 0) first = k
        }
      }
      if (differ > 0) out.push(`${t.name}: ${differ} values differ, first at ${first}`)
    }
  })
  return out
}

/** The modes that predate the pipeline (the robust ones are tested in ./steps/). */
const LEGACY_MODES = ['plain', 'align', 'varcorr', 'align+varcorr'] as const

describe('named pipelines', () => {
  it.each(LEGACY_MODES)('%s gives bit-identical results to the pre-pipeline merger', (mode) => {
    const cases = mergeCases()
    expect(cases.length).toBe(24)
    for (const c of cases) {
      const expected = legacyMerger({ mode, ...c.init })(c.local, c.received)
      const merger = createMerger({ mode, ...c.init })
      expect(bitDiff(merger(c.local, c.received), expected), `${mode} ${c.label}`).toEqual([])
      // Twice through the same merger: per-merger state (the spec cache) changes nothing.
      expect(bitDiff(merger(c.local, c.received), expected), `${mode} ${c.label} again`).toEqual([])
    }
  })

  it('the legacy reference is not blind: modes differ from each other on these inputs', () => {
    const c = mergeCases().find((x) => x.label === 'mlp/three/init0')!
    const outputs = MERGE_MODES.map((mode) => createMerger({ mode })(c.local, c.received))
    for (let i = 0; i < outputs.length; i++) {
      for (let j = i + 1; j < outputs.length; j++) expect(bitDiff(outputs[i]!, outputs[j]!)).not.toEqual([])
    }
  })

  it('a step list equals the named pipeline with the same steps', () => {
    const c = mergeCases().find((x) => x.label === 'cnn/three/init1')!
    for (const [name, steps] of Object.entries(MERGE_PIPELINES)) {
      if (steps.length === 1) continue // a single step has no list form
      const named = createMerger({ mode: name as MergeMode, ...c.init })(c.local, c.received)
      const listed = createMerger({ mode: steps.join(',') as MergeMode, ...c.init })(c.local, c.received)
      expect(bitDiff(listed, named)).toEqual([])
    }
    const spaced = createMerger({ mode: ' align , average,varcorr', ...c.init })(c.local, c.received)
    const named = createMerger({ mode: 'align+varcorr', ...c.init })(c.local, c.received)
    expect(bitDiff(spaced, named)).toEqual([])
  })

  it('lists the modes --merge has always taken, resolving to their steps', () => {
    expect(MERGE_MODES).toEqual([...LEGACY_MODES, 'robust', 'align+robust'])
    expect(isMergeMode(DEFAULT_MERGE_MODE)).toBe(true)
    expect(resolveMergeSteps('align+varcorr').map((s) => s.name)).toEqual(['align', 'average', 'varcorr'])
    expect(resolveMergeSteps('plain').map((s) => s.name)).toEqual(['average'])
    expect(createMergePipeline({ mode: 'varcorr' }).steps).toEqual(['average', 'varcorr'])
    for (const steps of Object.values(MERGE_PIPELINES)) {
      for (const s of steps) expect(Object.hasOwn(MERGE_STEPS, s)).toBe(true)
    }
  })
})

describe('mode validation', () => {
  it.each([
    ['median', 'UnknownMergePipelineError'],
    ['average', 'UnknownMergePipelineError'],
    ['', 'UnknownMergePipelineError'],
    ['toString', 'UnknownMergePipelineError'],
    ['align,median,average', 'UnknownMergeStepError'],
    ['align,constructor,average', 'UnknownMergeStepError'],
    ['align,,average', 'InvalidMergePipelineError'],
    ['align,varcorr', 'InvalidMergePipelineError'],
    ['average,average', 'InvalidMergePipelineError'],
    ['average,align', 'InvalidMergePipelineError'],
    ['varcorr,average', 'InvalidMergePipelineError'],
  ])('refuses %j with %s', (mode, name) => {
    expect(() => resolveMergeSteps(mode)).toThrow(expect.objectContaining({ name }))
    expect(() => createMerger({ mode: mode as MergeMode })).toThrow(expect.objectContaining({ name }))
    expect(() => parseMergeMode(mode)).toThrow(expect.objectContaining({ name }))
    expect(isMergeMode(mode)).toBe(false)
  })

  it('accepts named pipelines and ordered step lists', () => {
    for (const mode of [...MERGE_MODES, 'average,varcorr', 'align,align,average', 'align,average,varcorr']) {
      expect(parseMergeMode(mode)).toBe(mode)
      expect(isMergeMode(mode)).toBe(true)
    }
  })
})

describe('registering a step', () => {
  // Test-only input step: halves the received model's values (a stand-in for a clipping rule).
  const halve: MergeStepDefinition = {
    kind: 'input',
    create: () => (_local, input) => ({
      action: 'clip',
      reason: 'halved',
      input: {
        ...input,
        state: {
          ...input.state,
          tensors: input.state.tensors.map((t) => ({ ...t, values: t.values.map((v) => v / 2) })),
        },
      },
    }),
  }
  const registry: MergeRegistry = {
    steps: { ...MERGE_REGISTRY.steps, halve },
    pipelines: { ...MERGE_REGISTRY.pipelines, halved: ['halve', 'average'] },
  }

  it('runs as part of a list or a named pipeline of the registry it was added to', () => {
    const local = randomState({ kind: 'mlp', hidden: 8 }, 1, 10)
    const other = randomState({ kind: 'mlp', hidden: 8 }, 2, 30)
    const halved = {
      ...cloneState(other),
      tensors: other.tensors.map((t) => ({ ...t, values: t.values.map((v) => v / 2) })),
    }
    const expected = createMerger({ mode: 'plain' })(local, [halved])
    expect(bitDiff(createMerger({ mode: 'plain' })(local, [other]), expected)).not.toEqual([])
    for (const mode of ['halve,average', 'halved'] as MergeMode[]) {
      const result = createMergePipeline({ mode, registry }).merge(local, [other])
      expect(bitDiff(result.state, expected)).toEqual([])
      expect(result.outcomes).toEqual([{ index: 0, action: 'clipped', step: 'halve', reason: 'halved' }])
    }
  })

  it('is unknown to the built-in registry', () => {
    expect(() => createMerger({ mode: 'halve,average' as MergeMode })).toThrow(
      expect.objectContaining({ name: 'UnknownMergeStepError' }),
    )
    expect(() => createMerger({ mode: 'halved' as MergeMode })).toThrow(
      expect.objectContaining({ name: 'UnknownMergePipelineError' }),
    )
  })
})
