/**
 * bench:topology over several seeds, and what they say together. Runs `bench:topology --seed S
 * --json DIR/seed-S.json` for each seed whose JSON is not in DIR yet (so an interrupted series
 * resumes where it stopped), then reads every `*.json` bench:topology wrote in DIR and prints:
 *   - per seed: the speed-up at the highest level both samplers reach, and at each of --levels;
 *     final accuracy, MiB across regions per peer, Vivaldi error;
 *   - over the seeds: the median and geometric mean of those speed-ups, and the speed-up of
 *     the seeds' averaged curves (each sampler's mean-accuracy curves averaged point by point)
 *     at their highest common level. One crossing of one level in one seed moves by tens of
 *     seconds with when peers happened to evaluate; the averaged curve does not. The averaged
 *     curves are read at --levels too: near the plateau the highest common level can sit at
 *     the end of one sampler's run, where one poll decides the ratio. And the whole-curve
 *     speed-up: the factor that slows topology's (fitted) averaged curve onto uniform's, every
 *     poll from 30, 60, 100 or 150 s on counting (curve-model.ts timeScale).
 *
 *   npm run bench:topology-seeds -- --dir DIR [--seeds 1-5 | 1,3,8 | none] [--topology="FLAGS"]
 *       [--levels 0.80,0.84] [--bootstrap N] [--until S] [--simulate 1.3,1.5] [--simulate-reps N] [--json FILE]
 *     --dir        where each seed's JSON goes (created if missing) and is read from
 *     --seeds      seeds to run (default none: only read DIR)
 *     --topology   flags for every bench:topology run, e.g. "--duration 300 --steps-per-round 2
 *                  --testbed='--links docs/links-3region-loss1.json'"
 *     --bootstrap  resample the runs N times and print how far the averaged reading moves
 *     --until      read each run's curves only up to S seconds, as if it had stopped then (the
 *                  same runs at two lengths: how much the highest common level owes to where a
 *                  run stops); final accuracy stays the whole run's
 *     --simulate   simulate series of as many runs in which topology is faster by each of these
 *                  factors at every level (topology's averaged curve, fitted, and uniform as it
 *                  slowed; the runs' own noise) and read them as the runs are read: how far each
 *                  reading sits from a known truth (curve-model.ts). --simulate-reps series each
 *                  (default 400)
 *     --topology-from  read each run's topology side from DIR2's JSON of the same name instead (a
 *                  `bench:topology --only topology` run with other flags, e.g. another --random-share,
 *                  against the uniform runs already in DIR: a pilot that costs half a series)
 *     --json       write the aggregate as JSON
 */
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from '../../src/gossip/topology/rtt.ts'
import { interRegionShareWindows, SHARE_WINDOWS_S, shareWindowNames } from '../../src/testbed/result.ts'
import { createRng, hashSeed } from '../../src/util/rng.ts'
import {
  fitLogCubic,
  meanSpread,
  quantile,
  residualNoise,
  simulateReadings,
  timeScale,
} from './curve-model.ts'
import {
  averageCurves,
  averagedSpeedUps,
  bootstrapSpeedUps,
  type Curve,
  firstReach,
  highestCommonLevel,
  meanCounterAt,
  type PeerSeries,
  speedUp,
  TARGET_ACCURACY,
  truncate,
} from './curves.ts'
import { benchFlags, parseBenchArgs, quotedWords, seedList } from './flags.ts'

const args = parseBenchArgs('bench:topology-seeds', import.meta.url, {
  dir: { type: 'string' },
  seeds: { type: 'string', default: 'none' },
  topology: { type: 'string', default: '' },
  levels: { type: 'string', default: '0.80,0.84' },
  bootstrap: { type: 'string', default: '0' },
  until: { type: 'string' },
  simulate: { type: 'string', default: 'none' },
  'simulate-reps': { type: 'string', default: '400' },
  json: { type: 'string' },
  'topology-from': { type: 'string' },
})
const flags = benchFlags('bench:topology-seeds')
const LOWER_LEVELS = flags.list(args.levels).map((l) => flags.num('levels', l, 0, 1))
const BOOTSTRAP = flags.int('bootstrap', args.bootstrap, 0, 0)
const SIMULATE = flags.list(args.simulate).map((k) => flags.num('simulate', k, 1, 10))
const SIMULATE_REPS = flags.int('simulate-reps', args['simulate-reps'], 400, 1)
const UNTIL = args.until === undefined ? Number.POSITIVE_INFINITY : flags.num('until', args.until, 1)

/** --simulate: the model curve is fitted after the first seconds (polls before then are few and steep). */
const SIMULATE_FIT_FROM_S = 10
/**
 * The whole-curve speed-up fits uniform's averaged curve from each of these times: the first
 * seconds are steep and few, and topology's lead in time grows as the curves flatten, so one
 * start would hide how much the reading owes to it. The simulation uses the first.
 */
const SCALE_FROM_S = [30, 60, 100, 150]
/** --simulate: noise is read where the readings are taken, on the flattening part of the curves. */
const SIMULATE_NOISE_FROM_S = 100
/**
 * Models merged and steps trained per peer are read at these times and at the end: topology's
 * lead in time is small early and grows, and these say whether it merges more from the start.
 */
const COUNTS_AT_S = [10, 30, 100]

/** The part of a bench:topology JSON read here. */
interface TopologyJson {
  summaries: Array<{
    sampler: string
    meanCurve: Array<{ t: number; acc: number }>
    finalAccuracy: number | null
    mibAcrossRegionsPerPeer?: number
    interRegionShare?: number | null
    interRegionShareSteady?: number | null
    coordinateError: { median: number }
    durationS: number
  }>
  results?: Record<string, { peers?: Array<{ series?: PeerSeries }> }>
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

async function runSeed(seed: number, json: string): Promise<void> {
  const script = fileURLToPath(new URL('./topology.ts', import.meta.url))
  const argv = [
    '--import',
    'tsx',
    script,
    ...quotedWords(args.topology),
    '--seed',
    String(seed),
    '--json',
    json,
  ]
  console.log(`\n### seed ${seed}: bench:topology ${argv.slice(3).join(' ')}`)
  const child = spawn(process.execPath, argv, { stdio: 'inherit' })
  const code = await new Promise<number | null>((r) => child.once('exit', r))
  if (code !== 0) throw new Error(`bench:topology --seed ${seed} exited with ${code}`)
}

interface SeedRow {
  name: string
  uniform: Curve
  topology: Curve
  level: number
  speedUp: number | null
  lower: Array<number | null>
  final: [number | null, number | null]
  mib: [number | undefined, number | undefined]
  /** Per sampler [uniform, topology]: share of bytes across regions over the run and from 30 s on (bench:topology). */
  share: [Array<number | null | undefined>, Array<number | null | undefined>]
  /** Per sampler [uniform, topology]: the share in each of SHARE_WINDOWS_S (null without the series' counters). */
  windows: [Array<number | null>, Array<number | null>]
  vivaldi: number
  durationS: number
  /** Per sampler [uniform, topology]: mean merges and steps per peer at COUNTS_AT_S and the end (null without series). */
  merges: [Array<number | null>, Array<number | null>]
  steps: [Array<number | null>, Array<number | null>]
  /** This run's own whole-curve speed-up from each of SCALE_FROM_S (undefined where too short to fit). */
  whole: Array<number | undefined>
}

// Other JSON in the directory (this script's own --json, a one-sampler run) is skipped, not read.
function seedRow(name: string, run: Partial<TopologyJson>): SeedRow | string {
  if (!Array.isArray(run.summaries)) return 'not a bench:topology run'
  const u = run.summaries.find((s) => s.sampler === 'uniform')
  const t = run.summaries.find((s) => s.sampler === 'topology')
  if (u === undefined || t === undefined) return 'not a run of both samplers'
  const [uc, tc] = [truncate(u.meanCurve, UNTIL), truncate(t.meanCurve, UNTIL)]
  const level = highestCommonLevel([uc, tc], TARGET_ACCURACY)
  const durationS = Math.min(u.durationS, t.durationS, UNTIL)
  const windows = (sampler: string) =>
    interRegionShareWindows(
      (run.results?.[sampler]?.peers ?? []).map((p) => ({ series: p.series ?? [] })),
      SHARE_WINDOWS_S,
    ).map((w) => w.share)
  const counts = (sampler: string, key: 'merges' | 'steps') => {
    const peers = (run.results?.[sampler]?.peers ?? []).map((p) => p.series ?? [])
    return [...COUNTS_AT_S, durationS].map((at) => meanCounterAt(peers, key, at))
  }
  return {
    name,
    uniform: uc,
    topology: tc,
    level,
    speedUp: speedUp(uc, tc, level),
    lower: LOWER_LEVELS.map((l) => (l < level ? speedUp(uc, tc, l) : null)),
    final: [u.finalAccuracy, t.finalAccuracy],
    mib: [u.mibAcrossRegionsPerPeer, t.mibAcrossRegionsPerPeer],
    share: [
      [u.interRegionShare, u.interRegionShareSteady],
      [t.interRegionShare, t.interRegionShareSteady],
    ],
    windows: [windows('uniform'), windows('topology')],
    vivaldi: t.coordinateError.median,
    durationS,
    merges: [counts('uniform', 'merges'), counts('topology', 'merges')],
    steps: [counts('uniform', 'steps'), counts('topology', 'steps')],
    whole: wholeCurve(uc, tc),
  }
}

const x = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${v.toFixed(2)}x`)
const f3 = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(3))
const lv = (l: number) => l.toFixed(3).replace(/0$/, '')
const t1 = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1))

/** Prints how far the averaged reading moves with which seeds were run (`bootstrapSpeedUps`). */
function printBootstrap(rows: readonly SeedRow[], until: number, n: number): void {
  const rng = createRng(hashSeed('bench:topology-seeds', rows.length))
  const q = (sorted: number[], p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
  console.log(
    `bootstrap over the runs (${n} resamples): 5th / 50th / 95th percentile of the averaged-curve speed-up`,
  )
  for (const [level, sorted] of bootstrapSpeedUps(rows, until, LOWER_LEVELS, n, rng)) {
    if (sorted.length === 0) continue
    const share = sorted.filter((u) => u >= 1.5).length / sorted.length
    console.log(
      `  ${level === null ? 'highest common' : lv(level)}: ${x(q(sorted, 0.05))} / ${x(q(sorted, 0.5))} / ` +
        `${x(q(sorted, 0.95))}, 1.5x or more in ${(share * 100).toFixed(0)} % (of the ${sorted.length} resamples that read it)`,
    )
  }
  // Its own stream: the readings above stay what they were before this one was added.
  const wrng = createRng(hashSeed('bench:topology-seeds whole-curve', rows.length))
  const whole = SCALE_FROM_S.map(() => [] as number[])
  for (let b = 0; b < n; b++) {
    const pick = rows.map(() => rows[wrng.int(rows.length)]!)
    const scales = wholeCurve(
      averageCurves(
        pick.map((r) => r.uniform),
        until,
      ),
      averageCurves(
        pick.map((r) => r.topology),
        until,
      ),
    )
    scales.forEach((v, i) => {
      if (v !== undefined) whole[i]!.push(v)
    })
  }
  SCALE_FROM_S.forEach((from, i) => {
    const sorted = whole[i]!.sort((a, b) => a - b)
    if (sorted.length === 0) return
    const share = sorted.filter((u) => u >= 1.5).length / sorted.length
    console.log(
      `  whole-curve from ${from} s: ${x(q(sorted, 0.05))} / ${x(q(sorted, 0.5))} / ${x(q(sorted, 0.95))}, ` +
        `1.5x or more in ${(share * 100).toFixed(0)} %`,
    )
  })
}

async function main(): Promise<void> {
  if (args.dir === undefined) flags.usage('--dir DIR is required (--help for usage)')
  let seeds: number[] = []
  try {
    seeds = seedList(args.seeds)
  } catch (err) {
    flags.usage(`--seeds: ${(err as Error).message}`)
  }
  const dir = resolve(args.dir!)
  await mkdir(dir, { recursive: true })
  for (const seed of seeds) {
    const json = join(dir, `seed-${seed}.json`)
    if (await exists(json)) console.log(`seed ${seed}: ${json} exists, kept`)
    else await runSeed(seed, json)
  }

  const files = (await readdir(dir))
    .filter((f) => f.endsWith('.json'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
  const rows: SeedRow[] = []
  for (const f of files) {
    const run = JSON.parse(await readFile(join(dir, f), 'utf8')) as Partial<TopologyJson>
    const paired = args['topology-from'] === undefined ? run : await withTopologyFrom(run, f)
    const row = typeof paired === 'string' ? paired : seedRow(f, paired)
    if (typeof row === 'string') console.log(`${f}: skipped, ${row}`)
    else rows.push(row)
  }
  if (rows.length === 0) flags.usage(`no bench:topology JSON of both samplers in ${dir}`)

  const cut = Number.isFinite(UNTIL) ? `, read up to ${UNTIL} s (final accuracy: whole runs)` : ''
  console.log(`\n${rows.length} runs in ${dir}${cut}`)
  const at = LOWER_LEVELS.map(lv).join(' / ')
  console.log(
    `run | level | speed-up | at ${at} | whole-curve from ${SCALE_FROM_S.join(' / ')} s | final u / t | MiB across regions u / t | Vivaldi t`,
  )
  for (const r of rows) {
    const mib = r.mib.every((m) => m !== undefined && m > 0)
      ? `${r.mib[0]!.toFixed(1)} / ${r.mib[1]!.toFixed(1)} (${(r.mib[0]! / r.mib[1]!).toFixed(2)}x)`
      : '-'
    console.log(
      `${r.name} | ${r.level.toFixed(3)} | ${x(r.speedUp)} | ${r.lower.map(x).join(' / ')} | ${r.whole.map(x).join(' / ')} | ` +
        `${f3(r.final[0])} / ${f3(r.final[1])} | ${mib} | ${(r.vivaldi * 100).toFixed(1)} %`,
    )
  }

  printShares(rows)

  const ups = rows.map((r) => r.speedUp).filter((v): v is number => v !== null)
  const geo = Math.exp(ups.reduce((a, v) => a + Math.log(v), 0) / ups.length)
  const until = Math.min(...rows.map((r) => r.durationS))
  const { avgU, avgT, level, speedUp: averaged, atLevels } = averagedSpeedUps(rows, until, LOWER_LEVELS)
  const averagedLower = atLevels.map((a) => `${lv(a.level)}: ${x(a.speedUp)}`)
  const met = ups.filter((v) => v >= 1.5).length
  console.log(
    `\nper-run speed-up: median ${x(median(ups))}, geometric mean ${x(geo)}, ` +
      `range ${x(Math.min(...ups))}-${x(Math.max(...ups))}, 1.5x or more in ${met} of ${ups.length}`,
  )
  console.log(
    `averaged curves (${rows.length} runs, first ${until.toFixed(0)} s): highest common level ${level.toFixed(3)}, ` +
      `speed-up ${x(averaged)} (uniform ${t1(firstReach(avgU, level)?.t)} s, ` +
      `topology ${t1(firstReach(avgT, level)?.t)} s)${averagedLower.length > 0 ? `; ${averagedLower.join(', ')}` : ''}`,
  )
  const scales = wholeCurve(avgU, avgT)
  console.log(
    `whole-curve speed-up from ${SCALE_FROM_S.join(' / ')} s: ${scales.map(x).join(' / ')} ` +
      `(topology's averaged curve, fitted from ${SIMULATE_FIT_FROM_S} s, slowed by it fits uniform's best from then on)`,
  )
  // The spread of runs' own readings says how far a series of this many runs may sit from another.
  const perRunWhole = SCALE_FROM_S.map((from, i) => {
    const v = rows.map((r) => r.whole[i]).filter((w): w is number => w !== undefined)
    const m = v.length < 2 ? undefined : meanSpread(v)
    if (m === undefined) return `${from} s -`
    return `${from} s ${x(m.mean)} (SD ${m.sd.toFixed(3)}, standard error ${m.se.toFixed(3)})`
  })
  console.log(`each run's own whole-curve speed-up, mean over the runs: ${perRunWhole.join(', ')}`)
  printCounts(rows, 'merges', 'models merged')
  printCounts(rows, 'steps', 'steps trained')
  if (args.json !== undefined) {
    await mkdir(dirname(resolve(args.json)), { recursive: true })
    const perRun = rows.map(({ uniform: _u, topology: _t, ...r }) => r)
    await writeFile(
      args.json,
      `${JSON.stringify({ perRun, median: median(ups), geometricMean: geo, averaged: { level, speedUp: averaged, atLevels }, wholeCurve: SCALE_FROM_S.map((fromS, i) => ({ fromS, speedUp: scales[i] ?? null })) }, null, 2)}\n`,
    )
    console.log(`wrote ${args.json}`)
  }
  if (BOOTSTRAP > 0) printBootstrap(rows, until, BOOTSTRAP)
  if (SIMULATE.length > 0) printSimulated(rows, until, avgT)
}

/**
 * The share of bytes across regions over whole runs and from 30 s on (runs that hold the polled
 * counters): whether the first seconds, before RTTs are measured, inflate it.
 */
function printShares(rows: readonly SeedRow[]): void {
  const cell = (side: 0 | 1, which: 0 | 1): string => {
    const v = rows.map((r) => r.share[side][which]).filter((s): s is number => typeof s === 'number')
    if (v.length === 0) return '-'
    return `${meanSpread(v)!.mean.toFixed(3)} (${Math.min(...v).toFixed(3)}-${Math.max(...v).toFixed(3)}, ${v.length} runs)`
  }
  console.log(
    `share of bytes across regions, mean (range): uniform ${cell(0, 0)} whole run, ${cell(0, 1)} from 30 s; ` +
      `topology ${cell(1, 0)} whole run, ${cell(1, 1)} from 30 s`,
  )
  // Runs from before the series held the byte counters have no windows.
  const byWindow = (side: 0 | 1): string =>
    SHARE_WINDOWS_S.map((_, i) => {
      const v = rows.map((r) => r.windows[side][i]).filter((s): s is number => typeof s === 'number')
      return v.length === 0 ? '-' : meanSpread(v)!.mean.toFixed(3)
    }).join(' / ')
  const runs = rows.filter((r) => r.windows[1].some((s) => s !== null)).length
  if (runs > 0) {
    console.log(
      `  by window, ${shareWindowNames(SHARE_WINDOWS_S)} s (mean of ${runs} runs): uniform ${byWindow(0)}; topology ${byWindow(1)}`,
    )
  }
}

/**
 * `run` with its topology side (summary and peers) taken from --topology-from's JSON of the same
 * name, or why it cannot be (then the run is skipped).
 */
async function withTopologyFrom(
  run: Partial<TopologyJson>,
  name: string,
): Promise<Partial<TopologyJson> | string> {
  const path = join(resolve(args['topology-from']!), name)
  if (!(await exists(path))) return `no ${name} in --topology-from`
  const other = JSON.parse(await readFile(path, 'utf8')) as Partial<TopologyJson>
  const topology = other.summaries?.find((s) => s.sampler === 'topology')
  if (topology === undefined) return `${path} holds no topology run`
  return {
    summaries: [...(run.summaries?.filter((s) => s.sampler === 'uniform') ?? []), topology],
    results: { ...run.results, ...(other.results?.topology ? { topology: other.results.topology } : {}) },
  }
}

/** The runs' mean of a per-peer counter at COUNTS_AT_S and each run's end, both samplers and their ratio. */
function printCounts(rows: readonly SeedRow[], key: 'merges' | 'steps', what: string): void {
  const mean = (side: 0 | 1, i: number) => {
    const v = rows.map((r) => r[key][side][i]).filter((c): c is number => c !== null)
    return v.length === rows.length ? (meanSpread(v)?.mean ?? null) : null
  }
  const cells = [...COUNTS_AT_S.map((s) => `${s} s`), 'end'].map((at, i) => {
    const [u, t] = [mean(0, i), mean(1, i)]
    return u === null || t === null
      ? `${at} -`
      : `${at} ${u.toFixed(0)} / ${t.toFixed(0)} (${x(u > 0 ? t / u : null)})`
  })
  console.log(`${what} per peer, mean of the runs, uniform / topology: ${cells.join(', ')}`)
}

/** `timeScale` of the averaged curves from each of SCALE_FROM_S, undefined where they are too short to fit. */
function wholeCurve(avgU: Curve, avgT: Curve): Array<number | undefined> {
  let topology: ReturnType<typeof fitLogCubic>
  try {
    topology = fitLogCubic(avgT, SIMULATE_FIT_FROM_S)
  } catch {
    return SCALE_FROM_S.map(() => undefined)
  }
  return SCALE_FROM_S.map((from) => {
    try {
      return timeScale(avgU, topology, from)
    } catch {
      return undefined
    }
  })
}

/** Simulated series with known speed-ups, read as the measured one is (`simulateReadings`). */
function printSimulated(rows: readonly SeedRow[], until: number, avgT: Curve): void {
  const topology = fitLogCubic(avgT, SIMULATE_FIT_FROM_S)
  const noise = residualNoise(
    rows.flatMap((r) => [r.uniform, r.topology]),
    SIMULATE_NOISE_FROM_S,
  )
  const gaps = rows.flatMap((r) => r.topology.slice(1).map((p, i) => p.t - r.topology[i]!.t))
  const pollS = Math.max(0.5, median(gaps))
  const q = (v: number[]) => `${x(quantile(v, 0.05))} / ${x(quantile(v, 0.5))} / ${x(quantile(v, 0.95))}`
  console.log(
    `simulated series (${SIMULATE_REPS} of ${rows.length} runs of ${until.toFixed(0)} s, polls every ${pollS.toFixed(1)} s): ` +
      `topology's averaged curve fitted from ${SIMULATE_FIT_FROM_S} s, uniform = it slowed by the true speed-up; ` +
      `per-run noise ${(noise.sd * 100).toFixed(2)} points, lag-1 correlation ${noise.phi.toFixed(2)} (the runs' own, from ${SIMULATE_NOISE_FROM_S} s). ` +
      'Readings, 5th / 50th / 95th percentile:',
  )
  const rng = createRng(hashSeed('bench:topology-seeds --simulate', rows.length))
  for (const k of SIMULATE) {
    const r = simulateReadings({
      topology,
      speedUp: k,
      noise,
      runs: rows.length,
      durationS: until,
      pollS,
      reps: SIMULATE_REPS,
      levels: LOWER_LEVELS,
      fitFromS: SIMULATE_FIT_FROM_S,
      scaleFromS: SCALE_FROM_S[0]!,
      rng,
    })
    const share = (v: number[]) =>
      `${((v.filter((u) => u >= 1.5).length / Math.max(1, v.length)) * 100).toFixed(0)} %`
    const levels = [...r.atLevels]
      .filter(([, v]) => v.length > 0)
      .map(([l, v]) => `${lv(l)} ${x(quantile(v, 0.5))}`)
    console.log(
      `  true ${x(k)}: per-run median ${q(r.seriesMedian)} (one run at 1.5x or more: ${share(r.perRun)}); ` +
        `averaged curves at the highest common level ${q(r.averaged)} (1.5x or more: ${share(r.averaged)}); ` +
        `whole-curve from ${SCALE_FROM_S[0]} s ${q(r.timeScale)}; medians at ${levels.join(', ')}`,
    )
  }
}

await main()
