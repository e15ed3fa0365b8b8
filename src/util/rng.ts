/**
 * Seeded pseudo-random numbers: xoshiro128** seeded through splitmix32, so
 * every seeded computation (init, partitions, batch order) is reproducible.
 */

/** A seeded random source. All methods advance the same stream. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number
  /** Uniform 32-bit unsigned integer. */
  uint32(): number
  /** Standard normal N(0, 1) (Box-Muller). */
  normal(): number
  /** Gamma(shape, 1) (Marsaglia-Tsang; boosted for shape < 1). */
  gamma(shape: number): number
  /** Uniform integer in [0, n). */
  int(n: number): number
  /** In-place Fisher-Yates shuffle; returns `arr`. */
  shuffle<T>(arr: T[]): T[]
  /** The seed this stream started from. */
  readonly seed: number
}

/** Mixes any number (or string) into a 32-bit seed; equal inputs give equal seeds. */
export function hashSeed(...parts: Array<number | string>): number {
  let h = 0x811c9dc5
  const mixByte = (b: number): void => {
    h ^= b & 0xff
    h = Math.imul(h, 0x01000193)
  }
  for (const part of parts) {
    const text = typeof part === 'number' ? `n${part}` : `s${part}`
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      mixByte(c)
      mixByte(c >>> 8)
    }
    mixByte(0x1f)
  }
  return splitmix32Step(h >>> 0)[1]
}

/** A fresh random 32-bit seed (for callers that did not pass one). */
export function randomSeed(): number {
  return (Math.random() * 0x100000000) >>> 0
}

function splitmix32Step(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  z = (z ^ (z >>> 16)) >>> 0
  return [next, z]
}

/** Creates a seeded generator. Integer seeds in [0, 2^32) are used as is; others are hashed. */
export function createRng(seed: number): Rng {
  const s = Number.isInteger(seed) && seed >= 0 && seed < 0x100000000 ? seed : hashSeed(seed)
  let sm = s
  const st = new Uint32Array(4)
  for (let i = 0; i < 4; i++) {
    const [n, z] = splitmix32Step(sm)
    sm = n
    st[i] = z
  }
  // xoshiro128** must not start from the all-zero state.
  if ((st[0] | st[1] | st[2] | st[3]) === 0) st[0] = 1

  const uint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(st[1], 5), 7), 9) >>> 0
    const t = st[1] << 9
    st[2] ^= st[0]
    st[3] ^= st[1]
    st[1] ^= st[2]
    st[0] ^= st[3]
    st[2] ^= t
    st[3] = rotl(st[3], 11)
    return result
  }

  // 2^-32: maps a uint32 onto [0, 1) without ever reaching 1.
  const next = (): number => uint32() * 2.3283064365386963e-10

  let spare: number | undefined
  const normal = (): number => {
    if (spare !== undefined) {
      const v = spare
      spare = undefined
      return v
    }
    let u = 0
    while (u === 0) u = next()
    const v = next()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }

  const gamma = (shape: number): number => {
    if (!(shape > 0) || !Number.isFinite(shape)) throw new RangeError(`gamma shape must be > 0, got ${shape}`)
    if (shape < 1) {
      // Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia-Tsang, section 6).
      let u = 0
      while (u === 0) u = next()
      return gamma(shape + 1) * u ** (1 / shape)
    }
    const d = shape - 1 / 3
    const c = 1 / Math.sqrt(9 * d)
    for (;;) {
      let x: number
      let v: number
      do {
        x = normal()
        v = 1 + c * x
      } while (v <= 0)
      v = v * v * v
      const u = next()
      if (u < 1 - 0.0331 * x * x * x * x) return d * v
      if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v
    }
  }

  const int = (n: number): number => {
    if (!(n > 0) || !Number.isInteger(n))
      throw new RangeError(`int bound must be a positive integer, got ${n}`)
    return Math.floor(next() * n)
  }

  const shuffle = <T>(arr: T[]): T[] => {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1))
      const tmp = arr[i]
      arr[i] = arr[j]
      arr[j] = tmp
    }
    return arr
  }

  return { next, uint32, normal, gamma, int, shuffle, seed: s }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}
