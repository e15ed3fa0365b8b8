import { describe, expect, it } from 'vitest'
import {
  DEFAULT_CLIP_FACTOR,
  DEFAULT_GROSS_FACTOR,
  DEFAULT_NORM_CLIP_RATIO,
  DEFAULT_NORM_REJECT_RATIO,
  DEFAULT_REJECT_FACTOR,
  DEFAULT_REWARM_AFTER_REJECTS,
  MERGE_REASONS,
} from '../../../../src/merge/constants.ts'
import type { InputVerdict } from '../../../../src/merge/pipeline.ts'
import { clipStep, DistanceHistory } from '../../../../src/merge/steps/clip.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import { randomState, snapshot } from '../fixtures.ts'
import { distance, norm, scaled, shifted, tensorDistances, tensorNorms } from './helpers.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 8 }
const local = randomState(MLP, 1, 100)
/** Honest neighbours in these tests are 0.3 of each local tensor's norm away. */
const unit = tensorNorms(local).map((n) => 0.3 * n)
const honest = (seed: number, scale = 1) => shifted(local, scale, seed, 100, unit)

function judge(history: DistanceHistory, state: ModelState, index = 0): InputVerdict {
  return history.judge(local, { index, state })
}

/** A history that has seen `n` honest neighbours. */
function warmed(n = 8): DistanceHistory {
  const h = new DistanceHistory()
  for (let i = 0; i < n; i++) expect(judge(h, honest(100 + i)).action).toBe('accept')
  return h
}

describe('clip step', () => {
  it('lets an honest neighbour pass unchanged', () => {
    const h = warmed()
    const input = honest(7)
    const before = snapshot(input)
    const verdict = judge(h, input)
    expect(verdict.action).toBe('accept')
    if (verdict.action !== 'accept') return
    expect(verdict.input.state).toBe(input)
    expect(snapshot(input)).toEqual(before)
  })

  it('takes its radius from the history of accepted distances', () => {
    const h = warmed()
    const bounds = h.bounds(local)
    unit.forEach((u, i) => {
      expect(bounds.clip[i]).toBeCloseTo(DEFAULT_CLIP_FACTOR * u, 5)
    })
    expect(bounds.reject).toBeCloseTo(DEFAULT_REJECT_FACTOR * Math.hypot(...unit), 5)
    // Three times the usual distance: clipped back to the radius, tensor by tensor, in the same direction.
    const far = honest(8, 3)
    const verdict = judge(h, far)
    expect(verdict).toMatchObject({ action: 'clip', reason: MERGE_REASONS.distanceClipped })
    if (verdict.action !== 'clip') return
    const got = tensorDistances(local, verdict.input.state)
    unit.forEach((u, i) => {
      expect(got[i]).toBeCloseTo(DEFAULT_CLIP_FACTOR * u, 4)
    })
    const t = verdict.input.state.tensors[0]!.values
    const l = local.tensors[0]!.values
    const r = far.tensors[0]!.values
    const ratio = (t[3]! - l[3]!) / (r[3]! - l[3]!)
    expect(ratio).toBeCloseTo(DEFAULT_CLIP_FACTOR / 3, 4)
    // The same input against a history of neighbours three times as far: it passes.
    const wide = new DistanceHistory()
    for (let i = 0; i < 8; i++) judge(wide, honest(200 + i, 3))
    expect(judge(wide, far).action).toBe('accept')
  })

  it('clips a scaled copy and rejects a grossly scaled one', () => {
    const h = warmed()
    const neighbour = honest(9)
    const twice = scaled(neighbour, 2)
    const verdict = judge(h, twice)
    expect(verdict.action).toBe('clip')
    if (verdict.action === 'clip') {
      const got = tensorDistances(local, verdict.input.state)
      unit.forEach((u, i) => {
        expect(got[i]).toBeLessThanOrEqual(DEFAULT_CLIP_FACTOR * u * (1 + 1e-6))
      })
    }
    // Far beyond the rejection radius: gross outliers, which the peer policy counts towards a ban.
    expect(judge(h, scaled(neighbour, 50))).toEqual({
      action: 'reject',
      reason: MERGE_REASONS.distanceGross,
    })
    expect(judge(h, scaled(neighbour, -4))).toEqual({
      action: 'reject',
      reason: MERGE_REASONS.distanceGross,
    })
  })

  it('tells an input just beyond the radius (an ordinary outlier) from a gross one', () => {
    const h = warmed()
    const radius = h.bounds(local).reject
    // A neighbour five times as far as the typical one: beyond the radius (4x), within twice it.
    const beyond = honest(400, 5)
    const d = distance(local, beyond)
    expect(d).toBeGreaterThan(radius)
    expect(d).toBeLessThan(DEFAULT_GROSS_FACTOR * radius)
    expect(judge(h, beyond)).toEqual({ action: 'reject', reason: MERGE_REASONS.distanceOutlier })
    const gross = honest(401, 5 * DEFAULT_GROSS_FACTOR)
    expect(distance(local, gross)).toBeGreaterThan(DEFAULT_GROSS_FACTOR * radius)
    expect(judge(h, gross)).toEqual({ action: 'reject', reason: MERGE_REASONS.distanceGross })
  })

  it('in warm-up, clips to and rejects beyond multiples of the local norm', () => {
    const h = new DistanceHistory()
    expect(h.warmingUp).toBe(true)
    const bounds = h.bounds(local)
    expect(bounds.reject).toBeCloseTo(DEFAULT_NORM_REJECT_RATIO * norm(local), 4)
    tensorNorms(local).forEach((n, i) => {
      expect(bounds.clip[i]).toBeGreaterThanOrEqual(DEFAULT_NORM_CLIP_RATIO * n * (1 - 1e-9))
    })
    // A sign-flipped (x -4) or scaled (x 50) copy is rejected before any history exists.
    expect(judge(h, scaled(local, -4)).action).toBe('reject')
    expect(judge(h, scaled(local, 50)).action).toBe('reject')
    expect(h.warmingUp).toBe(true)
  })

  it('does not stall early training: an independently initialised peer is merged', () => {
    const h = new DistanceHistory()
    const other = randomState(MLP, 2, 100)
    // Two independent inits are ~1.4 norms apart: within the warm-up bounds, merged as is.
    expect(distance(local, other) / norm(local)).toBeGreaterThan(1.2)
    expect(judge(h, other)).toEqual({ action: 'accept', input: { index: 0, state: other } })
    // A trained peer whose weights grew twofold is clipped, not rejected: it still pulls.
    const bigger = scaled(randomState(MLP, 3, 100), 2)
    const verdict = judge(h, bigger)
    expect(verdict.action).toBe('clip')
    if (verdict.action === 'clip') expect(distance(local, verdict.input.state)).toBeGreaterThan(norm(local))
  })

  it('falls back to the warm-up bounds after a run of rejections', () => {
    const h = warmed()
    const far = (i: number) => honest(300 + i, 5)
    for (let i = 0; i < DEFAULT_REWARM_AFTER_REJECTS; i++) expect(judge(h, far(i)).action).toBe('reject')
    expect(h.warmingUp).toBe(true)
    expect(judge(h, far(99)).action).toBe('accept')
  })

  it('an attacker interleaved with honest peers cannot inflate the radius', () => {
    const h = warmed()
    const honestBounds = h.bounds(local)
    // One input in three sits just inside the rejection radius, as far as it can get.
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 2) {
        const b = h.bounds(local)
        const at = (0.99 * b.reject) / Math.hypot(...unit)
        expect(judge(h, honest(1000 + i, at)).action).not.toBe('reject')
      } else judge(h, honest(1000 + i))
    }
    const after = h.bounds(local)
    expect(after.reject / honestBounds.reject).toBeCloseTo(1, 5)
    after.clip.forEach((c, i) => {
      expect(c / honestBounds.clip[i]!).toBeCloseTo(1, 5)
    })
  })

  it('never lets the radius grow past the norm anchors, whoever sends', () => {
    const h = warmed()
    for (let i = 0; i < 200; i++) {
      const b = h.bounds(local)
      judge(h, honest(2000 + i, (0.99 * b.reject) / Math.hypot(...unit)))
    }
    const b = h.bounds(local)
    expect(b.reject).toBeLessThanOrEqual(DEFAULT_NORM_REJECT_RATIO * norm(local) * (1 + 1e-9))
    const n = tensorNorms(local)
    const total = local.tensors.reduce((s, t) => s + t.values.length, 0)
    b.clip.forEach((c, i) => {
      const anchor = Math.max(n[i]!, norm(local) * Math.sqrt(local.tensors[i]!.values.length / total))
      expect(c).toBeLessThanOrEqual(DEFAULT_NORM_CLIP_RATIO * anchor * (1 + 1e-9))
    })
  })

  it('keeps its history per merger: a new step starts in warm-up', () => {
    const first = clipStep.create({ seed: 0 })
    for (let i = 0; i < 8; i++) first(local, { index: 0, state: honest(400 + i) })
    expect(first(local, { index: 0, state: honest(500, 3) }).action).toBe('clip')
    const second = clipStep.create({ seed: 0 })
    expect(second(local, { index: 0, state: honest(500, 3) }).action).toBe('accept')
  })

  it('refuses bad options with InvalidArgumentError', () => {
    for (const clip of [
      { window: 0 },
      { minHistory: 40, window: 8 },
      { clipFactor: 0 },
      { rejectFactor: Number.NaN },
    ]) {
      expect(() => clipStep.create({ seed: 0, clip })).toThrow(
        expect.objectContaining({ name: 'InvalidArgumentError' }),
      )
    }
  })
})
