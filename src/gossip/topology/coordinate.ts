/** The one network-coordinate type of the project, and its one validator (headers, announcements, samplers). */
import { MAX_COORDINATE_DIMS } from '../constants.ts'

/** A network coordinate: predicted RTT between two is |a.vec - b.vec| + a.height + b.height (ms). */
export interface Coordinate {
  /** Euclidean part, ms. */
  vec: number[]
  /** Non-Euclidean offset for the access link, ms, >= the minimum height. */
  height: number
  /** Relative error estimate (dimensionless), 0 = certain, errorMax = knows nothing. */
  error: number
}

/** A coordinate that is malformed: wrong dimension, non-finite or out-of-range component. */
export class InvalidCoordinateError extends Error {
  static readonly name = 'InvalidCoordinateError'
  override readonly name = 'InvalidCoordinateError'
}

/** No component of a sane coordinate is anywhere near 1000 s; bounding them rejects hostile values early. */
export const MAX_COORDINATE_MS = 1_000_000

function isFiniteInRange(x: unknown, min: number): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= min && x <= MAX_COORDINATE_MS
}

/** Why `value` is not a valid coordinate (of `dimensions`, when given), or undefined when it is. */
function coordinateProblem(value: unknown, dimensions?: number): string | undefined {
  if (typeof value !== 'object' || value === null) return 'coordinate is not an object'
  const { vec, height, error } = value as Partial<Record<keyof Coordinate, unknown>>
  if (!Array.isArray(vec) || vec.length === 0) return 'coordinate vec is not a non-empty array'
  if (vec.length > MAX_COORDINATE_DIMS)
    return `coordinate has ${vec.length} dimensions, more than ${MAX_COORDINATE_DIMS}`
  if (dimensions !== undefined && vec.length !== dimensions) {
    return `coordinate has ${vec.length} dimensions, expected ${dimensions}`
  }
  if (!vec.every((x) => isFiniteInRange(x, -MAX_COORDINATE_MS))) {
    return 'coordinate vec has a non-finite or out-of-range component'
  }
  if (!isFiniteInRange(height, 0)) return `invalid coordinate height ${height}`
  if (!isFiniteInRange(error, 0)) return `invalid coordinate error ${error}`
  return undefined
}

/** Checks a (possibly untrusted) coordinate and returns a clean copy; throws InvalidCoordinateError. */
export function validateCoordinate(value: unknown, dimensions?: number): Coordinate {
  const problem = coordinateProblem(value, dimensions)
  if (problem !== undefined) throw new InvalidCoordinateError(problem)
  const { vec, height, error } = value as Coordinate
  return { vec: [...vec], height, error }
}

/** True when `value` is a valid coordinate (of `dimensions`, when given); never throws. */
export function isValidCoordinate(value: unknown, dimensions?: number): value is Coordinate {
  return coordinateProblem(value, dimensions) === undefined
}
