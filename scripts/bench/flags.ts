/** Flag checks shared by the benchmark scripts: a bad value prints one line and exits 2. */

export interface BenchFlags {
  usage(msg: string): never
  int(name: string, text: string | undefined, fallback: number, min?: number): number
  num(name: string, text: string, min: number, max?: number): number
  list(text: string): string[]
}

/** Flag helpers for the benchmark called `bench` (e.g. `bench:merge`), which prefixes its messages. */
export function benchFlags(bench: string): BenchFlags {
  const usage = (msg: string): never => {
    console.error(`${bench}: ${msg}`)
    process.exit(2)
  }
  return {
    usage,
    int(name, text, fallback, min = 1) {
      if (text === undefined) return fallback
      const n = Number(text)
      if (!Number.isInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}, got ${text}`)
      return n
    },
    num(name, text, min, max = Number.POSITIVE_INFINITY) {
      const n = Number(text)
      if (!Number.isFinite(n) || n < min || n > max)
        usage(`--${name} must be a number in [${min}, ${max}], got ${text}`)
      return n
    },
    list: (text) => (text === 'none' || text === '' ? [] : text.split(',').map((s) => s.trim())),
  }
}
