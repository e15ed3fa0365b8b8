/**
 * The arithmetic of bench:soak: read one sample from a daemon's /metrics text, and summarise a
 * peer's samples as the growth after a warm-up, with a least-squares slope so that one late
 * reading does not decide the trend.
 */

/** What one scrape of a daemon tells about its memory and its work. */
export interface MemorySample {
  /** Seconds since the bench started the daemons. */
  t: number
  rss: number
  heapUsed: number
  external: number
  /** NaN on a backend without wasm. */
  wasm: number
  tensors: number
  steps: number
  received: number
}

/** The metric behind each field of a sample (prom-client's process metrics and ours). */
export const SAMPLE_METRICS = {
  rss: 'process_resident_memory_bytes',
  heapUsed: 'nodejs_heap_size_used_bytes',
  external: 'nodejs_external_memory_bytes',
  wasm: 'gossip_learn_backend_wasm_memory_bytes',
  tensors: 'gossip_learn_backend_tensors',
  steps: 'gossip_learn_training_steps_total',
  received: 'gossip_learn_models_received_total',
} as const satisfies Record<Exclude<keyof MemorySample, 't'>, string>

/** The value of the unlabelled sample `name` in Prometheus text, or NaN when it is absent. */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)`, 'm').exec(text)
  return m === null ? Number.NaN : Number(m[1])
}

/** One sample from a scrape taken `t` seconds into the run. */
export function parseSample(text: string, t: number): MemorySample {
  const out = { t } as MemorySample
  for (const [field, name] of Object.entries(SAMPLE_METRICS))
    out[field as keyof typeof SAMPLE_METRICS] = metricValue(text, name)
  return out
}

/** Least-squares slope of y over x (units of y per unit of x); NaN with fewer than two distinct x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length
  if (n < 2 || ys.length !== n) return Number.NaN
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let sxy = 0
  let sxx = 0
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my)
    sxx += (xs[i]! - mx) ** 2
  }
  return sxx === 0 ? Number.NaN : sxy / sxx
}

/** A peer's memory growth from the first sample at or after `warmS` to the last, in MiB. */
export interface Growth {
  warmS: number
  endS: number
  rssWarm: number
  rssEnd: number
  /** RSS at the end over RSS after the warm-up. */
  ratio: number
  /** MiB an hour, least squares over the samples from the warm-up on, for each part. */
  perHour: { rss: number; heapUsed: number; external: number; wasm: number }
  tensorsWarm: number
  tensorsEnd: number
}

const MIB = 2 ** 20

/** The growth of `samples` (in time order) after `warmS` seconds; undefined with fewer than two samples after it. */
export function growth(samples: readonly MemorySample[], warmS: number): Growth | undefined {
  const after = samples.filter((s) => s.t >= warmS && Number.isFinite(s.rss))
  if (after.length < 2) return undefined
  const first = after[0]!
  const last = after.at(-1)!
  const hours = after.map((s) => s.t / 3600)
  const perHour = (field: 'rss' | 'heapUsed' | 'external' | 'wasm') =>
    slope(
      hours,
      after.map((s) => s[field] / MIB),
    )
  return {
    warmS: first.t,
    endS: last.t,
    rssWarm: first.rss / MIB,
    rssEnd: last.rss / MIB,
    ratio: last.rss / first.rss,
    perHour: {
      rss: perHour('rss'),
      heapUsed: perHour('heapUsed'),
      external: perHour('external'),
      wasm: perHour('wasm'),
    },
    tensorsWarm: first.tensors,
    tensorsEnd: last.tensors,
  }
}
