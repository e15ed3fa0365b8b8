/** Per-tensor norms and distances of states (float64 sums), for the robust merge steps. */

import type { ModelState } from '../../model/types.ts'

/** Squared Euclidean norm of each tensor of `state`. */
export function squaredNorms(state: ModelState): number[] {
  return state.tensors.map((t) => sumOfSquares(t.values))
}

/** Squared Euclidean distance between each pair of same-position tensors (layouts assumed equal). */
export function squaredDistances(a: ModelState, b: ModelState): number[] {
  return a.tensors.map((t, i) => squaredDistance(t.values, b.tensors[i]!.values))
}

// The loops over a model's values live in module-level functions, not in the closures above: V8
// drops the optimised code of a closure made per call at each major collection (every few seconds
// in a daemon), so the next merge ran that loop in the interpreter and compiled it again
// (docs/BENCHMARKS.md, "Hot loops out of closures made per call").

/** Sum of the squares of `v`, in float64. */
function sumOfSquares(v: Float32Array): number {
  let sum = 0
  for (let k = 0; k < v.length; k++) sum += v[k]! * v[k]!
  return sum
}

/** Squared Euclidean distance between `x` and `y` (as long as `x`), in float64. */
function squaredDistance(x: Float32Array, y: Float32Array): number {
  let sum = 0
  for (let k = 0; k < x.length; k++) {
    const d = y[k]! - x[k]!
    sum += d * d
  }
  return sum
}

/** True when every value (and the age) of `state` is finite. */
export function isFiniteState(state: ModelState): boolean {
  if (!Number.isFinite(state.age)) return false
  for (const t of state.tensors) {
    const v = t.values
    for (let k = 0; k < v.length; k++) if (!Number.isFinite(v[k]!)) return false
  }
  return true
}

/** Median of a non-empty list (mean of the two middle values when even). */
export function median(values: readonly number[]): number {
  // A typed array sorts numerically, with no comparator closure to compile again after each major
  // collection (above).
  const s = Float64Array.from(values).sort()
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** A bounded list of the most recent values. */
export class Window {
  private readonly values: number[] = []
  constructor(private readonly size: number) {}
  get length(): number {
    return this.values.length
  }
  push(v: number): void {
    this.values.push(v)
    if (this.values.length > this.size) this.values.shift()
  }
  median(): number {
    return median(this.values)
  }
}
