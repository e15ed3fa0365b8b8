/**
 * Byzantine robustness (issue 9): testbed runs of 12 honest peers with 0, 1 and 4 attacker peers
 * besides them (`--byzantine K:MODE`, so 1 of 13 and 4 of 16; `--peers 9 --counts 4` is the
 * issue's 4 of 13; the honest peers, their data shares and seeds stay the same whatever K), per
 * attack mode, with the defences on and off.
 * Prints one table: the honest peers' mean and worst final accuracy, their change from the run
 * without attackers, the time until the honest mean first reaches 0.9, and how long until every
 * honest peer refused each attacker. An attacked run whose honest peers trained under 90 % of the
 * steps of their run without attackers is marked short (on 2 cores the attackers' own process
 * can take that CPU, and then the change is partly lost training: try a lower --train-rate).
 *
 *   npm run bench:byzantine                     # full: 8 modes x {1, 4} + none, on/off, 150 s each (~1.5 h)
 *   npm run bench:byzantine -- --quick          # 3 modes x {4} + none, on/off, 60 s each (~15 min)
 *   npm run bench:byzantine -- [--peers N] [--duration S] [--modes a,b] [--counts 1,4] [--variants on,off]
 *                              [--seed S | --seeds 1,2,3] [--attack-interval MS] [--train-rate STEPS_PER_S (4)] [--target A (0.9)]
 *                              [--peers-per-process N (4)] [--json FILE] [--keep-dir DIR] [--dry-run]
 *                              [--testbed="FLAGS"]  # more testbed flags for every run, e.g. "--codec int8"
 *   npm run bench:byzantine -- --tables a.json,b.json   # no runs: the tables of runs saved by --json
 *                              [--kept dirA,dirB]  # their --keep-dir, for figures the files predate (the run mean)
 *                              [--json out.json]   # and the runs so read, in one file
 *   npm run bench:byzantine -- --modes '' --variants on,off,no-share,no-probe --seeds 1,2 --duration 240
 *                              # what each defence costs with no attacker (variants: on, off, no-X joined by +)
 *
 * Runs are sequential (one testbed at a time: the CPU is the limit on a 2-core box); --dry-run
 * prints the plan. With --seeds the whole plan runs once per seed (a seed fixes the data shares
 * and initialisations of all peers), and a second table gives each row over the seeds: the
 * change from the same seed's run without attackers, paired, since one run's spread (a point or
 * two) is as large as the effects measured. Final accuracy is each honest peer's mean over the last FINAL_WINDOW_S.
 */
import '../../src/polyfill.ts'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseTestbedArgs } from '../../src/cli/args.ts'
import { OPTIONAL_DEFENCES } from '../../src/gossip/defences/index.ts'
import { MERGE_PIPELINES, UNDEFENDED_MERGE_MODE } from '../../src/merge/registry.ts'
import type { AttackerResult } from '../../src/testbed/attack/facility.ts'
import { ATTACK_MODE_NAMES, type AttackMode, isAttackMode } from '../../src/testbed/attack/modes.ts'
import type { PeerResult, TestbedResult } from '../../src/testbed/result.ts'
import { runTestbed } from '../../src/testbed/testbed.ts'
import { parseBenchArgs, testbedFlags } from './flags.ts'

/** Final accuracy: each honest peer's mean over its evaluations in this last stretch (one evaluation is noisy). */
const FINAL_WINDOW_S = 10

/**
 * The run's mean accuracy: the honest mean of each peer's latest evaluation, averaged on a 5 s
 * grid from this time to the end. It weighs speed and level together (the area under the curve
 * after the local warm-up), and it is steadier than the final accuracy: six 240 s runs without
 * attackers read 0.874-0.895 final and 0.852-0.856 by this measure.
 */
const RUN_MEAN_FROM_S = 60

/** The smoothed time to the target: the trailing window its curve is averaged over (s). */
const SMOOTH_S = 30

/** --quick: one mode per kind of lie: direction and norm (sign-flip), age (noise-age), within the spread (alie). */
const QUICK_MODES: AttackMode[] = ['sign-flip', 'noise-age', 'alie']

const args = parseBenchArgs('bench:byzantine', import.meta.url, {
  quick: { type: 'boolean', default: false },
  peers: { type: 'string' },
  duration: { type: 'string' },
  modes: { type: 'string' },
  counts: { type: 'string' },
  variants: { type: 'string' },
  seed: { type: 'string', default: '1' },
  seeds: { type: 'string' },
  'attack-interval': { type: 'string' },
  'train-rate': { type: 'string' },
  'peers-per-process': { type: 'string' },
  json: { type: 'string' },
  'keep-dir': { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  tables: { type: 'string' },
  kept: { type: 'string' },
  target: { type: 'string', default: '0.9' },
  testbed: { type: 'string' },
})

/** The accuracy mark for "time to" (the issue's: 0.9; at 4 steps/s a 150 s run may not reach it). */
const TARGET = Number(args.target)
if (!(TARGET > 0 && TARGET <= 1)) throw new Error(`--target: ${args.target} is not an accuracy in (0, 1]`)

const list = (s: string | undefined): string[] | undefined =>
  s
    ?.split(',')
    .map((x) => x.trim())
    .filter(Boolean)

// The honest peers' device speed. At 20 steps/s in a process each, the attacked runs' honest peers
// trained 640 steps in 150 s against 1502 without attackers; at 8, hosted 4 per process, 488-708
// against 1045: the runs compared CPU shares more than defences. At 4 a run with 4 sign-flip
// attackers trained as many steps as the run without (630 against 627): the default.
const trainRate = ['--train-rate', args['train-rate'] ?? '4']
const peers = Number(args.peers ?? 12)
// Honest peers hosted 4 to a process: 12 processes of their own spend a whole core more in
// start-up, garbage collection and context switches than 3 processes do, and with the attackers'
// processes on top the honest peers of attacked runs were starved of CPU. Hosting changes no
// node's behaviour (each keeps its libp2p node, identity, model and share).
const hosting = ['--peers-per-process', args['peers-per-process'] ?? '4']
const durationS = Number(args.duration ?? (args.quick ? 60 : 150))
const modes = (list(args.modes) ?? (args.quick ? QUICK_MODES : ATTACK_MODE_NAMES)) as string[]
const counts = (list(args.counts) ?? (args.quick ? ['4'] : ['1', '4'])).map(Number)
const variants = list(args.variants) ?? ['on', 'off']
for (const m of modes)
  if (!isAttackMode(m)) throw new Error(`unknown mode ${m}: ${ATTACK_MODE_NAMES.join(', ')}`)
for (const c of counts)
  if (!(Number.isInteger(c) && c >= 1)) throw new Error(`--counts: ${c} is not a count >= 1`)
for (const v of variants) variantArgs(v) // throws on a variant it does not know
const seeds = (list(args.seeds) ?? [args.seed!]).map(Number)
for (const s of seeds) if (!Number.isSafeInteger(s)) throw new Error(`--seeds: ${s} is not an integer`)

/**
 * A variant's testbed flags: `on`, `off`, or the defences on without some of them, each named
 * `no-X` and joined by `+` (`no-share`, `no-probe+no-clip`), X one of the learner's optional
 * defences (`--no-defence`) or a step of the robust merge pipeline (left out of `--merge`).
 */
function variantArgs(variant: string): string[] {
  if (variant === 'on' || variant === 'off') return ['--defences', variant]
  const robust: readonly string[] = MERGE_PIPELINES.robust
  // The robust steps are those the undefended pipeline lacks (probe, clip, age-cap).
  const undefended: readonly string[] = MERGE_PIPELINES[UNDEFENDED_MERGE_MODE as 'varcorr']
  const names = [...OPTIONAL_DEFENCES, ...robust.filter((x) => !undefended.includes(x))]
  const off = variant.split('+').map((part) => {
    const name = part.startsWith('no-') ? part.slice(3) : ''
    if (!names.includes(name))
      throw new Error(
        `--variants: '${part}' in '${variant}' is not on|off or no-X, X one of ${names.join(', ')}`,
      )
    return name
  })
  const steps = robust.filter((step) => !off.includes(step))
  return [
    '--defences',
    'on',
    ...off.filter((x) => !robust.includes(x)).flatMap((x) => ['--no-defence', x]),
    ...(steps.length < robust.length ? ['--merge', steps.join(',')] : []),
  ]
}

interface Plan {
  seed: number
  /** `on`, `off`, or an ablation such as `no-share` (see variantArgs). */
  variant: string
  mode: AttackMode | null
  attackers: number
}

/** Per seed and variant: the run without attackers first (the reference), then each mode x count. */
const plan: Plan[] = seeds.flatMap((seed) =>
  variants.flatMap((v) => {
    const variant = v
    return [
      { seed, variant, mode: null, attackers: 0 },
      ...modes.flatMap((mode) =>
        counts.map((attackers) => ({ seed, variant, mode: mode as AttackMode, attackers })),
      ),
    ]
  }),
)

interface RunSummary extends Plan {
  /** With --tables, which file the run came from. */
  invocation?: number
  honestPeers: number
  meanAccuracy: number | null
  /** The run's mean accuracy from RUN_MEAN_FROM_S (see there); absent in files written before it. */
  runMeanAccuracy?: number | null
  worstAccuracy: number | null
  /** Seconds until the honest mean (each peer's latest evaluation) first reached TARGET; null if never. */
  timeToTarget: number | null
  /** Seconds until the honest mean, averaged over the trailing SMOOTH_S, reached TARGET; absent in older files. */
  smoothedTimeToTarget?: number | null
  /** Attackers refused by every honest peer, and when (s): median and max over them. */
  attackersRefusedByAll: number
  refusedByAllMedianS: number | null
  refusedByAllMaxS: number | null
  /** Median over attackers of the first refusal by any honest peer (s). */
  firstRefusalMedianS: number | null
  /** Median over attackers of the pushes an honest peer took from it before refusing it. */
  pushesBeforeRefusalMedian: number | null
  modelsPushedByAttackers: number
  stepsPerPeer: number
  loadAverage: number[]
  durationS: number
  /** Each attacker's entry from the testbed JSON. */
  attackerResults: AttackerResult[]
}

const meanOf = (xs: readonly number[]): number | null =>
  xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function finalAccuracies(peers: readonly PeerResult[], durationS: number): number[] {
  return peers
    .map((p) => {
      const last = p.series.filter((s) => s.t >= durationS - FINAL_WINDOW_S && s.accuracy !== null)
      return last.length > 0 ? last.reduce((a, s) => a + s.accuracy!, 0) / last.length : p.finalAccuracy
    })
    .filter((a): a is number => a !== null && a !== undefined)
}

/** The honest mean of each peer's latest evaluation every 5 s (null until every peer has one). */
function honestCurve(peers: readonly PeerResult[], durationS: number): { t: number; mean: number | null }[] {
  const curve: { t: number; mean: number | null }[] = []
  for (let t = 0; t <= durationS; t += 5) {
    const latest = peers.map((p) => {
      let a: number | null = null
      for (const s of p.series) if (s.t <= t && s.accuracy !== null) a = s.accuracy
      return a
    })
    curve.push({ t, mean: latest.some((a) => a === null) ? null : meanOf(latest as number[]) })
  }
  return curve
}

/** The run mean: {@link honestCurve} averaged from `fromS` to the end. */
function runMeanAccuracy(
  peers: readonly PeerResult[],
  durationS: number,
  fromS = RUN_MEAN_FROM_S,
): number | null {
  const points = honestCurve(peers, durationS).filter((x) => x.t >= fromS && x.mean !== null)
  return meanOf(points.map((x) => x.mean!))
}

/**
 * When {@link honestCurve}'s mean over the trailing SMOOTH_S first reached `target`: a crossing of
 * the raw curve moves by 10 s with a 0.3-point fluctuation where the curve is flat (near 0.88 at 4
 * steps/s it climbs 0.3 points per 10 s), so the raw time alone compares luck.
 */
function smoothedTimeToTarget(
  peers: readonly PeerResult[],
  durationS: number,
  target: number,
): number | null {
  const curve = honestCurve(peers, durationS)
  for (const { t } of curve) {
    const window = curve.filter((x) => x.t > t - SMOOTH_S && x.t <= t && x.mean !== null).map((x) => x.mean!)
    if (window.length > 0 && meanOf(window)! >= target) return t
  }
  return null
}

/** First poll time at which the mean of every honest peer's latest accuracy reached `target`. */
function timeToTarget(peers: readonly PeerResult[], target: number): number | null {
  const times = [...new Set(peers.flatMap((p) => p.series.map((s) => s.t)))].sort((a, b) => a - b)
  const latest = peers.map(() => null as number | null)
  const idx = peers.map(() => 0)
  for (const t of times) {
    peers.forEach((p, k) => {
      while (idx[k]! < p.series.length && p.series[idx[k]!]!.t <= t) {
        const a = p.series[idx[k]!]!.accuracy
        if (a !== null) latest[k] = a
        idx[k]!++
      }
    })
    if (latest.every((a) => a !== null) && latest.reduce((s, a) => s + a!, 0) / latest.length >= target)
      return t
  }
  return null
}

function summarize(p: Plan, r: TestbedResult): RunSummary {
  const finals = finalAccuracies(r.peers, r.durationS)
  const attackers = r.attackers ?? []
  const byAll = attackers.map((a) => a.allRefusedAtS).filter((s): s is number => s !== null)
  return {
    ...p,
    honestPeers: r.peers.length,
    meanAccuracy: finals.length === r.peers.length ? finals.reduce((a, b) => a + b, 0) / finals.length : null,
    runMeanAccuracy: runMeanAccuracy(r.peers, r.durationS),
    worstAccuracy: finals.length > 0 ? Math.min(...finals) : null,
    timeToTarget: timeToTarget(r.peers, TARGET),
    smoothedTimeToTarget: smoothedTimeToTarget(r.peers, r.durationS, TARGET),
    attackersRefusedByAll: byAll.length,
    refusedByAllMedianS: median(byAll),
    refusedByAllMaxS: byAll.length > 0 ? Math.max(...byAll) : null,
    firstRefusalMedianS: median(
      attackers.map((a) => a.firstRefusedAtS).filter((s): s is number => s !== null),
    ),
    pushesBeforeRefusalMedian: median(attackers.flatMap((a) => a.refusedBy.map((x) => x.pushesBefore))),
    modelsPushedByAttackers: attackers.reduce((s, a) => s + a.modelsPushed, 0),
    stepsPerPeer: r.peers.reduce((s, x) => s + x.steps, 0) / Math.max(1, r.peers.length),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    durationS: r.durationS,
    attackerResults: attackers,
  }
}

const fmt = (x: number | null, digits = 3): string => (x === null ? '-' : x.toFixed(digits))
const fmtS = (x: number | null): string => (x === null ? '-' : `${x.toFixed(0)} s`)

/**
 * An attacked run whose honest peers trained under this share of the steps of their run without
 * attackers is marked short: the attackers' own process took CPU on the same cores, and steps
 * lost cost points, so its change mixes the attack with lost training (docs/BENCHMARKS.md, "alie
 * at equal training"). 0.9 passes the spread of the runs there whose loops were on time (0.90-1.04).
 */
const STEPS_SHORT = 0.9

/** Runs pair with the no-attacker run of their invocation (a --tables file), variant, seed and honest peers. */
const refKey = (r: RunSummary): string => `${r.invocation ?? 0}/${r.variant}/${r.seed}/${r.honestPeers}`

/** Each attacked run's run without attackers (by `refKey`), where there is one. */
function references(runs: readonly RunSummary[]): Map<RunSummary, RunSummary> {
  const byKey = new Map(runs.filter((r) => r.attackers === 0).map((r) => [refKey(r), r]))
  const out = new Map<RunSummary, RunSummary>()
  for (const r of runs) {
    const ref = byKey.get(refKey(r))
    if (r.attackers > 0 && ref !== undefined) out.set(r, ref)
  }
  return out
}

/** Change of the honest mean from the run without attackers of the same variant and seed (points), or null. */
function deltas(
  runs: readonly RunSummary[],
  get: (r: RunSummary) => number | null | undefined = (r) => r.meanAccuracy,
): Map<RunSummary, number | null> {
  const refs = references(runs)
  return new Map(
    runs.map((r) => {
      const ref = refs.get(r)
      const [a, b] = [get(r), ref === undefined ? null : get(ref)]
      return [r, a != null && b != null ? (a - b) * 100 : null]
    }),
  )
}

/** Each attacked run's honest steps per peer over its no-attacker run's, where there is one. */
function stepRatios(runs: readonly RunSummary[]): Map<RunSummary, number> {
  const out = new Map<RunSummary, number>()
  for (const [r, ref] of references(runs)) {
    if (ref.stepsPerPeer > 0) out.set(r, r.stepsPerPeer / ref.stepsPerPeer)
  }
  return out
}

/** A line on the runs marked short, or null when none is. */
function shortNote(runs: readonly RunSummary[]): string | null {
  const short = [...stepRatios(runs).values()].filter((x) => x < STEPS_SHORT)
  if (short.length === 0) return null
  return (
    `${short.length} attacked run${short.length > 1 ? 's' : ''} trained under ${STEPS_SHORT * 100} % of the steps of ` +
    `the same seed's run without attackers (steps/peer marked "short"): something took their CPU (on one machine, ` +
    "the attackers' own processes), so the change mixes the attack with lost training; a lower --train-rate leaves room"
  )
}

function table(runs: readonly RunSummary[], target = TARGET): string {
  const delta = deltas(runs)
  const ratios = stepRatios(runs)
  const rows = [
    `| seed | mode | attackers / peers | defences | honest mean | worst | vs no attacker | time to ${target} | refused by all honest (attackers, median / max) | first refusal (median) | pushes before refusal (median) | steps/peer |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map((r) => {
      const d = delta.get(r)
      const ratio = ratios.get(r)
      const short = ratio !== undefined && ratio < STEPS_SHORT ? ` (${ratio.toFixed(2)}x: short)` : ''
      const refused =
        r.attackers === 0
          ? '-'
          : `${r.attackersRefusedByAll}/${r.attackers}, ${fmtS(r.refusedByAllMedianS)} / ${fmtS(r.refusedByAllMaxS)}`
      return (
        `| ${r.seed} | ${r.mode ?? 'none'} | ${r.attackers} / ${r.honestPeers + r.attackers} | ${r.variant} | ${fmt(r.meanAccuracy)} | ` +
        `${fmt(r.worstAccuracy)} | ${d == null ? '-' : `${d.toFixed(1)} pts`} | ${fmtS(r.timeToTarget)} | ${refused} | ` +
        `${r.attackers === 0 ? '-' : fmtS(r.firstRefusalMedianS)} | ${r.attackers === 0 ? '-' : fmt(r.pushesBeforeRefusalMedian, 0)} | ` +
        `${r.stepsPerPeer.toFixed(0)}${short} |`
      )
    }),
  ]
  return rows.join('\n')
}

/** Each row over the seeds: honest means, and the paired changes from the no-attacker runs. */
function seedTable(runs: readonly RunSummary[]): string {
  const delta = deltas(runs)
  const runDelta = deltas(runs, (r) => r.runMeanAccuracy)
  const groups = new Map<string, RunSummary[]>()
  for (const r of runs) {
    const key = `${r.variant}/${r.mode ?? 'none'}/${r.attackers}/${r.honestPeers}`
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  const rows = [
    `| mode | attackers / peers | defences | seeds | honest mean, each seed | mean | vs no attacker, each seed (pts) | mean (pts) | worst (pts) | run mean from ${RUN_MEAN_FROM_S} s vs no attacker, each seed (pts) | mean (pts) |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...[...groups.values()].map((g) => {
      const r = g[0]!
      const accs = g.map((x) => x.meanAccuracy).filter((a): a is number => a !== null)
      const ds = g.map((x) => delta.get(x)).filter((d): d is number => d != null)
      const rds = g.map((x) => runDelta.get(x)).filter((d): d is number => d != null)
      const none = r.attackers === 0
      return (
        `| ${r.mode ?? 'none'} | ${r.attackers} / ${r.honestPeers + r.attackers} | ${r.variant} | ${g.map((x) => x.seed).join(', ')} | ` +
        `${g.map((x) => fmt(x.meanAccuracy)).join(', ')} | ${fmt(meanOf(accs))} | ` +
        `${none ? '-' : ds.map((d) => d.toFixed(1)).join(', ')} | ` +
        `${none ? '-' : fmt(meanOf(ds), 1)} | ${none || ds.length === 0 ? '-' : Math.min(...ds).toFixed(1)} | ` +
        `${none || rds.length === 0 ? '-' : rds.map((d) => d.toFixed(1)).join(', ')} | ${none ? '-' : fmt(meanOf(rds), 1)} |`
      )
    }),
  ]
  return rows.join('\n')
}

/**
 * The runs without attackers, each variant against `off` of the same seed, honest peers and
 * duration: the defences' cost when nobody attacks (final accuracy, and time to the target as a
 * ratio). The undefended run may come from another invocation (`--tables`): an undefended run
 * does not depend on the defences' code, and one run's spread is the same within an invocation
 * as across; several undefended runs of a seed are averaged.
 */
function costTable(runs: readonly RunSummary[], target = TARGET): string | null {
  const clean = runs.filter((r) => r.attackers === 0)
  // A run's durationS is as measured (240.4, 240.6): the planned length is that to 10 s.
  const offKey = (r: RunSummary): string => `${r.seed}/${r.honestPeers}/${Math.round(r.durationS / 10) * 10}`
  const offRuns = new Map<string, RunSummary[]>()
  for (const r of clean.filter((x) => x.variant === 'off'))
    offRuns.set(offKey(r), [...(offRuns.get(offKey(r)) ?? []), r])
  const groups = new Map<string, { r: RunSummary; refs: RunSummary[] }[]>()
  const files = new Set(clean.filter((r) => r.variant !== 'off').map((r) => r.invocation ?? 0)).size
  for (const r of clean) {
    const refs = offRuns.get(offKey(r))
    if (r.variant === 'off' || refs === undefined) continue
    // The same variant from several --tables files is several rows: each file may be other code.
    const label = files > 1 ? `${r.variant} (file ${(r.invocation ?? 0) + 1})` : r.variant
    groups.set(label, [...(groups.get(label) ?? []), { r, refs }])
  }
  if (groups.size === 0) return null
  // Several undefended runs of a seed: their mean; a time only when every one reached the target.
  const refOf = (refs: RunSummary[], get: (r: RunSummary) => number | null | undefined): number | null => {
    const xs = refs.map(get)
    return xs.every((x) => x != null) ? meanOf(xs as number[]) : null
  }
  const change = (a: number | null | undefined, b: number | null): number | null =>
    a == null || b === null ? null : (a - b) * 100
  const list = (xs: (number | null)[], digits = 1): string =>
    xs.map((x) => (x === null ? '-' : x.toFixed(digits))).join(', ')
  const rows = [
    `| defences | seeds | final, each seed (off) | vs off (pts) | mean (pts) | run mean from ${RUN_MEAN_FROM_S} s, each seed (off) | vs off (pts) | mean (pts) | time to ${target} / off's | the same, curve averaged over ${SMOOTH_S} s |`,
    '|---|---|---|---|---|---|---|---|---|---|',
    ...[...groups.entries()].map(([variant, g]) => {
      const finals = g.map(({ r, refs }) =>
        change(
          r.meanAccuracy,
          refOf(refs, (x) => x.meanAccuracy),
        ),
      )
      const runMeans = g.map(({ r, refs }) =>
        change(
          r.runMeanAccuracy,
          refOf(refs, (x) => x.runMeanAccuracy),
        ),
      )
      // Each run's time over its undefended pair's, and their mean where every run has one.
      const ratios = (get: (x: RunSummary) => number | null | undefined): string => {
        const rs = g.map(({ r, refs }) => {
          const [mine, ref] = [get(r) ?? null, refOf(refs, get)]
          return mine !== null && ref !== null ? mine / ref : `${fmtS(mine)} / ${fmtS(ref)}`
        })
        const nums = rs.filter((x): x is number => typeof x === 'number')
        const each = rs.map((x) => (typeof x === 'number' ? x.toFixed(2) : x)).join(', ')
        return nums.length === rs.length ? `${each} (mean ${fmt(meanOf(nums), 2)})` : each
      }
      const present = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null)
      return (
        `| ${variant} | ${g.map(({ r }) => r.seed).join(', ')} | ` +
        `${g.map(({ r, refs }) => `${fmt(r.meanAccuracy)} (${fmt(refOf(refs, (x) => x.meanAccuracy))})`).join(', ')} | ` +
        `${list(finals)} | ${fmt(meanOf(present(finals)), 2)} | ` +
        `${g.map(({ r, refs }) => `${fmt(r.runMeanAccuracy ?? null)} (${fmt(refOf(refs, (x) => x.runMeanAccuracy))})`).join(', ')} | ` +
        `${list(runMeans)} | ${fmt(meanOf(present(runMeans)), 2)} | ${ratios((x) => x.timeToTarget)} | ` +
        `${ratios((x) => x.smoothedTimeToTarget)} |`
      )
    }),
  ]
  return rows.join('\n')
}

/** The runs saved by earlier invocations' --json (older files carry one seed for all their runs). */
async function savedRuns(
  files: readonly string[],
  kept: readonly string[] = [],
): Promise<{ runs: RunSummary[]; targets: Set<number> }> {
  const runs: RunSummary[] = []
  const targets = new Set<number>()
  for (const [invocation, file] of files.entries()) {
    const saved = JSON.parse(await readFile(file, 'utf8')) as {
      seed?: number
      seeds?: number[]
      target?: number
      runs: RunSummary[]
    }
    targets.add(saved.target ?? 0.9)
    const seed = saved.seed ?? saved.seeds?.[0]
    for (const [k, r] of saved.runs.entries()) {
      const run = { ...r, seed: r.seed ?? seed!, invocation }
      // A file written before the run mean: computed from the run's testbed JSON kept by --keep-dir.
      const stale = run.runMeanAccuracy === undefined || run.smoothedTimeToTarget === undefined
      if (stale && kept[invocation] !== undefined && kept[invocation] !== '') {
        const result = JSON.parse(
          await readFile(join(kept[invocation], `run-${k + 1}.json`), 'utf8'),
        ) as TestbedResult
        run.runMeanAccuracy = runMeanAccuracy(result.peers, result.durationS)
        run.smoothedTimeToTarget = smoothedTimeToTarget(result.peers, result.durationS, saved.target ?? 0.9)
      }
      runs.push(run)
    }
  }
  return { runs, targets }
}

async function main(): Promise<void> {
  const saved = list(args.tables)
  if (saved !== undefined) {
    const { runs, targets } = await savedRuns(saved, list(args.kept) ?? [])
    if (targets.size > 1)
      throw new Error(`--tables: the files were run with different --target (${[...targets].join(', ')})`)
    console.log(table(runs, [...targets][0]))
    const note = shortNote(runs)
    if (note !== null) console.log(`\n${note}`)
    console.log(`\n${seedTable(runs)}`)
    const cost = costTable(runs, [...targets][0])
    if (cost !== null)
      console.log(`\nWith no attacker, against the undefended run of the same seed:\n\n${cost}`)
    // The runs as read (with what --kept added), in one file that --tables reads without the kept JSONs.
    if (args.json !== undefined) {
      await mkdir(dirname(resolve(args.json)), { recursive: true })
      const out = { sources: saved, target: [...targets][0], runs: runs.map(({ invocation: _, ...r }) => r) }
      await writeFile(args.json, `${JSON.stringify(out, null, 2)}\n`)
      console.log(`wrote ${args.json}`)
    }
    return
  }
  const minutes = Math.ceil((plan.length * (durationS + 45)) / 60)
  console.log(
    `bench:byzantine: ${plan.length} runs of ${peers} honest peers (+ attackers), ${durationS} s each, seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}` +
      `${trainRate.length > 0 ? `, ${trainRate.join(' ')}` : ''}; about ${minutes} min`,
  )
  for (const p of plan) {
    console.log(
      `  seed ${p.seed}, defences ${p.variant}: ${p.attackers === 0 ? 'no attacker' : `${p.attackers}:${p.mode}`}`,
    )
  }

  const runs: RunSummary[] = []
  for (const [i, p] of plan.entries()) {
    const label = `${i + 1}/${plan.length} seed ${p.seed}, defences ${p.variant}, ${p.attackers === 0 ? 'no attacker' : `${p.attackers}:${p.mode}`}`
    const argv = [
      '--peers',
      String(peers),
      '--duration',
      String(durationS),
      '--seed',
      String(p.seed),
      ...variantArgs(p.variant),
      '--no-http',
      ...trainRate,
      ...hosting,
      ...(p.attackers > 0 ? ['--byzantine', `${p.attackers}:${p.mode}`] : []),
      ...(p.attackers > 0 && args['attack-interval'] !== undefined
        ? ['--attack-interval', args['attack-interval']]
        : []),
      ...testbedFlags(args.testbed),
      // With --keep-dir, each run's full testbed JSON too (per-peer defences: what was clipped, refused, rolled back).
      ...(args['keep-dir'] !== undefined
        ? [
            '--keep-dir',
            join(args['keep-dir'], `run-${i + 1}`),
            '--json',
            join(args['keep-dir'], `run-${i + 1}.json`),
          ]
        : []),
    ]
    console.log(`[${label}] testbed ${argv.join(' ')}`)
    const cfg = parseTestbedArgs(argv)
    if (args['dry-run']) continue
    const r = await runTestbed(cfg, { print: (line) => console.log(`[${label}] ${line}`) })
    const s = summarize(p, r)
    runs.push(s)
    // After every run, so a bench cut short keeps what it measured.
    if (args.json !== undefined) await writeJson(args.json, runs)
    console.log(
      `[${label}] honest mean ${fmt(s.meanAccuracy)}, worst ${fmt(s.worstAccuracy)}, time to ${TARGET} ${fmtS(s.timeToTarget)}` +
        (p.attackers > 0
          ? `, ${s.attackersRefusedByAll}/${p.attackers} attackers refused by every honest peer (max ${fmtS(s.refusedByAllMaxS)})`
          : ''),
    )
  }
  console.log('')
  console.log(table(runs))
  const note = shortNote(runs)
  if (note !== null) console.log(`\n${note}`)
  if (seeds.length > 1) console.log(`\n${seedTable(runs)}`)
  const cost = costTable(runs)
  if (cost !== null)
    console.log(`\nWith no attacker, against the undefended run of the same seed:\n\n${cost}`)
  console.log(
    `\n${peers} honest peers (MLP, ${parseTestbedArgs([]).partition}, seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}), ${durationS} s per run, ` +
      `final accuracy = each honest peer's mean over its last ${FINAL_WINDOW_S} s; load average at the end ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
  )
  if (args.json !== undefined) console.log(`wrote ${args.json}`)
}

async function writeJson(file: string, runs: readonly RunSummary[]): Promise<void> {
  await mkdir(dirname(resolve(file)), { recursive: true })
  await writeFile(
    file,
    `${JSON.stringify({ peers, durationS, seeds, trainRate, target: TARGET, runs }, null, 2)}\n`,
  )
}

await main()
