import { describe, expect, it } from 'vitest'
import { archFingerprint, archTensors, datasetArch } from '../../../../src/model/arch.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import {
  ALIE_Z,
  INFLATED_AGE,
  SCALE_FACTOR,
  SIGN_FLIP_FACTOR,
} from '../../../../src/testbed/attack/constants.ts'
import {
  ATTACK_MODE_NAMES,
  type AttackMode,
  alieState,
  attackMode,
  expandAttackers,
  flipLabels,
  formatByzantineSpecs,
  MAX_ATTACKERS,
  parseByzantineSpecs,
} from '../../../../src/testbed/attack/modes.ts'
import { createRng } from '../../../../src/util/rng.ts'

const ARCH: ArchSpec = datasetArch('mlp', { name: 'mnist', featureShape: [2, 2, 1], numClasses: 3 }, 2)

/** A model of ARCH whose values are `base + i` (so every coordinate differs). */
function model(base: number, age = 100): ModelState {
  return {
    arch: archFingerprint(ARCH),
    age,
    tensors: archTensors(ARCH).map((t, ti) => {
      const size = t.shape.reduce((a, b) => a * b, 1)
      return {
        name: t.name,
        shape: [...t.shape],
        values: Float32Array.from({ length: size }, (_, i) => base + i + 10 * ti),
      }
    }),
  }
}

const craft = (mode: AttackMode, received: ModelState[]) =>
  attackMode(mode).craft?.({ received, arch: ARCH, rng: createRng(7) })

const values = (m: ModelState | undefined) => m!.tensors.flatMap((t) => Array.from(t.values))

describe('attack modes', () => {
  const a = model(1, 50)
  const b = model(3, 80)

  it('sign-flip pushes the newest received model times -4, with its age', () => {
    const out = craft('sign-flip', [a, b])!
    expect(values(out)).toEqual(values(b).map((v) => v * SIGN_FLIP_FACTOR))
    expect(SIGN_FLIP_FACTOR).toBe(-4)
    expect(out.age).toBe(80)
    // The received model is not mutated (the exchange may still hold it).
    expect(values(b)).toEqual(values(model(3)))
  })

  it('scale pushes the newest received model times 50', () => {
    expect(values(craft('scale', [a, b]))).toEqual(values(b).map((v) => Math.fround(v * SCALE_FACTOR)))
    expect(SCALE_FACTOR).toBe(50)
  })

  it('age pushes an honest copy claiming age 1e12; free-rider sends back what it received', () => {
    const aged = craft('age', [a, b])!
    expect(values(aged)).toEqual(values(b))
    expect(aged.age).toBe(INFLATED_AGE)
    expect(INFLATED_AGE).toBe(1e12)
    const ridden = craft('free-rider', [a, b])!
    expect(values(ridden)).toEqual(values(b))
    expect(ridden.age).toBe(80)
  })

  it('modes built on a received model have nothing to send before one arrives', () => {
    for (const mode of ['sign-flip', 'scale', 'age', 'alie', 'free-rider'] as const) {
      expect(craft(mode, [])).toBeUndefined()
    }
  })

  it('noise draws fresh weights of the right shapes; noise-age claims age 1e12', () => {
    const rng = createRng(3)
    const n1 = attackMode('noise').craft!({ received: [a, b], arch: ARCH, rng })!
    const n2 = attackMode('noise').craft!({ received: [a, b], arch: ARCH, rng })!
    expect(n1.arch).toBe(a.arch)
    expect(n1.tensors.map((t) => [t.name, t.shape])).toEqual(a.tensors.map((t) => [t.name, t.shape]))
    expect(n1.age).toBe(80)
    expect(values(n1)).not.toEqual(values(n2))
    expect(values(n1).every(Number.isFinite)).toBe(true)
    const aged = craft('noise-age', [])!
    expect(aged.age).toBe(INFLATED_AGE)
    expect(aged.tensors.map((t) => t.shape)).toEqual(a.tensors.map((t) => t.shape))
  })

  it('alie is the per-coordinate mean minus z standard deviations, with the largest age', () => {
    // Coordinates of a and b differ by 2 everywhere: mean = a + 1, std = 1.
    const out = craft('alie', [a, b])!
    expect(values(out)).toEqual(values(a).map((v) => v + 1 - ALIE_Z))
    expect(out.age).toBe(80)
    // Inside the spread: every coordinate lies between the honest extremes for z <= 1.
    const wide = alieState([a, b], 1)
    values(wide).forEach((v, i) => {
      expect(v).toBeGreaterThanOrEqual(values(a)[i]!)
      expect(v).toBeLessThanOrEqual(values(b)[i]!)
    })
    // One model: no spread, the model itself.
    expect(values(alieState([b], 1))).toEqual(values(b))
  })

  it('label-flip trains instead of crafting', () => {
    expect(attackMode('label-flip').trains).toEqual({ flipLabels: true })
    expect(attackMode('label-flip').craft).toBeUndefined()
    for (const mode of ATTACK_MODE_NAMES.filter((m) => m !== 'label-flip')) {
      expect(attackMode(mode).craft).toBeTypeOf('function')
    }
  })

  it('flipLabels maps y to K-1-y', () => {
    expect(Array.from(flipLabels(Uint8Array.from([0, 1, 2, 9]), 10))).toEqual([9, 8, 7, 0])
    expect(Array.from(flipLabels(Uint8Array.from([0, 1, 2]), 3))).toEqual([2, 1, 0])
  })
})

describe('parseByzantineSpecs', () => {
  it('reads K:MODE, comma lists and repeated flags, summing groups of one mode', () => {
    expect(parseByzantineSpecs(['4:sign-flip'])).toEqual([{ count: 4, mode: 'sign-flip' }])
    const groups = parseByzantineSpecs(['1:scale, 2:alie', '3:scale'])
    expect(groups).toEqual([
      { count: 4, mode: 'scale' },
      { count: 2, mode: 'alie' },
    ])
    expect(formatByzantineSpecs(groups)).toBe('4:scale,2:alie')
    expect(expandAttackers(groups)).toEqual(['scale', 'scale', 'scale', 'scale', 'alie', 'alie'])
  })

  it('knows every mode the issue lists', () => {
    expect(ATTACK_MODE_NAMES).toEqual([
      'sign-flip',
      'scale',
      'noise',
      'noise-age',
      'age',
      'alie',
      'label-flip',
      'free-rider',
    ])
    expect(parseByzantineSpecs(ATTACK_MODE_NAMES.map((m) => `1:${m}`))).toHaveLength(8)
  })

  it.each([
    ['sign-flip'],
    ['4'],
    ['0:scale'],
    ['-1:scale'],
    ['2:bogus'],
    ['2:scale,'],
    [`${MAX_ATTACKERS + 1}:noise`],
  ])('refuses %s with InvalidByzantineSpecError', (spec) => {
    expect(() => parseByzantineSpecs([spec])).toThrowError(
      expect.objectContaining({ name: 'InvalidByzantineSpecError' }),
    )
  })
})
