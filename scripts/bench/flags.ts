/** Flag checks shared by the benchmark scripts: a bad value prints one line and exits 2. */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type ParseArgsConfig, parseArgs } from 'node:util'

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

/** The testbed flags a bench's `--testbed="FLAGS"` adds to its runs, one argv entry per word. */
export function testbedFlags(text: string | undefined): string[] {
  return (text ?? '').split(/\s+/).filter((a) => a !== '')
}

/**
 * Splits FLAGS into argv words where single or double quotes keep a value with spaces together
 * (`--testbed='--links F'` is one word), for a bench that passes flags on to another bench.
 */
export function quotedWords(text: string): string[] {
  return [...text.matchAll(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g)].map((m) => m[0].replace(/['"]/g, ''))
}

/** "1-5", "1,3,8", "2,4-6", "none" or "": the seeds, in order, each once; throws RangeError on anything else. */
export function seedList(text: string): number[] {
  if (text === 'none' || text === '') return []
  const out: number[] = []
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part)
    if (m === null) throw new RangeError(`expected e.g. 1-5 or 1,3,8, got ${text}`)
    const [from, to] = [Number(m[1]), Number(m[2] ?? m[1])]
    if (to < from) throw new RangeError(`${part.trim()} runs backwards`)
    for (let s = from; s <= to; s++) if (!out.includes(s)) out.push(s)
  }
  return out
}

/**
 * `parseArgs` for a benchmark script: `--help` prints the script's leading doc comment (its usage
 * and what it measures, kept in one place) and exits 0; an unknown or malformed flag is a usage
 * error (one line, exit 2) rather than a stack trace.
 */
export function parseBenchArgs<const T extends NonNullable<ParseArgsConfig['options']>>(
  bench: string,
  scriptUrl: string,
  options: T,
): ReturnType<typeof parseArgs<{ options: T }>>['values'] {
  const config = { options: { ...options, help: { type: 'boolean' as const, short: 'h' } } }
  let values: Record<string, unknown>
  try {
    values = parseArgs(config).values
  } catch (err) {
    return benchFlags(bench).usage(`${(err as Error).message} (--help for usage)`)
  }
  if (values.help === true) {
    console.log(docComment(readFileSync(fileURLToPath(scriptUrl), 'utf8')))
    process.exit(0)
  }
  return values as never
}

/** The text of the first doc comment in `source`, without its ` * ` margin. */
export function docComment(source: string): string {
  const m = /\/\*\*([\s\S]*?)\*\//.exec(source)
  if (m === null) return ''
  return m[1]!
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim()
}
