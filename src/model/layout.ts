/** Layout checks shared by the merge steps: states merge only when their layouts agree. */

import { ArchMismatchError } from './errors.ts'
import type { ModelState } from './types.ts'

/**
 * Throws ArchMismatchError unless `other` has the same arch fingerprint and the
 * same tensors (names, shapes, value counts, in the same order) as `reference`.
 */
export function assertSameLayout(reference: ModelState, other: ModelState): void {
  if (reference.arch !== other.arch) {
    throw new ArchMismatchError(`arch ${other.arch} differs from ${reference.arch}`)
  }
  if (reference.tensors.length !== other.tensors.length) {
    throw new ArchMismatchError(`${other.tensors.length} tensors, expected ${reference.tensors.length}`)
  }
  for (let i = 0; i < reference.tensors.length; i++) {
    const a = reference.tensors[i]!
    const b = other.tensors[i]!
    if (a.name !== b.name) throw new ArchMismatchError(`tensor ${i} is ${b.name}, expected ${a.name}`)
    if (a.shape.length !== b.shape.length || a.shape.some((d, k) => d !== b.shape[k])) {
      throw new ArchMismatchError(`${a.name} has shape [${b.shape}], expected [${a.shape}]`)
    }
    if (a.values.length !== b.values.length) {
      throw new ArchMismatchError(`${a.name} has ${b.values.length} values, expected ${a.values.length}`)
    }
  }
}

/** True when both states hold exactly the same numbers (layouts assumed equal). */
export function sameValues(a: ModelState, b: ModelState): boolean {
  for (let i = 0; i < a.tensors.length; i++) {
    const x = a.tensors[i]!.values
    const y = b.tensors[i]!.values
    if (x === y) continue
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false
  }
  return true
}

/** Deep copy with fresh arrays. */
export function cloneState(s: ModelState): ModelState {
  return {
    arch: s.arch,
    age: s.age,
    tensors: s.tensors.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.slice() })),
  }
}

/** Euclidean distance between two states over all their values; ArchMismatchError on different layouts. */
export function stateDistance(a: ModelState, b: ModelState): number {
  assertSameLayout(a, b)
  let sum = 0
  for (let i = 0; i < a.tensors.length; i++) {
    const x = a.tensors[i]!.values
    const y = b.tensors[i]!.values
    for (let k = 0; k < x.length; k++) {
      const d = x[k]! - y[k]!
      sum += d * d
    }
  }
  return Math.sqrt(sum)
}
