/**
 * Byzantine robustness (issue 9): testbed runs of 12 honest peers with 0, 1 and 4 attacker peers
 * besides them (`--byzantine K:MODE`, so 1 of 13 and 4 of 16; the honest peers, their data shares
 * and seeds stay the same whatever K), per attack mode, with the defences on and off.
 * Prints one table: the honest peers' mean and worst final accuracy, their change from the run
 * without attackers, the time until the honest mean first reaches 0.9, and how long until every
 * honest peer refused each attacker.
 *
 *   npm run bench:byzantine                     # full: 8 modes x {1, 4} + none, on/off, 150 s each (~1.5 h)
 *   npm run bench:byzantine -- --quick          # 3 modes x {4} + none, on/off, 60 s each (~15 min)
 *   npm run bench:byzantine -- [--peers N] [--duration S] [--modes a,b] [--counts 1,4] [--variants on,off]
 *                              [--seed S] [--attack-interval MS] [--train-rate STEPS_PER_S (4)] [--target A (0.9)]
 *                              [--peers-per-process N (4)] [--json FILE] [--keep-dir DIR] [--dry-run]
 *
 * Runs are sequential (one testbed at a time: the CPU is the limit on a 2-core box); --dry-run
 * prints the plan. Final accuracy is each honest peer's mean over the last FINAL_WINDOW_S.
 */
import '../../src/polyfill.ts'
import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { parseTestbedArgs } from '../../src/cli/args.ts'
import type { AttackerResult } from '../../src/testbed/attack/facility.ts'
import { ATTACK_MODE_NAMES, type AttackMode, isAttackMode } from '../../src/testbed/attack/modes.ts'
import { type PeerResult, runTestbed, type TestbedResult } from '../../src/testbed/testbed.ts'

/** Final accuracy: each honest peer's mean over its evaluations in this last stretch (one evaluation is noisy). */
const FINAL_WINDOW_S = 10

/** --quick: one mode per kind of lie: direction and norm (sign-flip), age (noise-age), within the spread (alie). */
const QUICK_MODES: AttackMode[] = ['sign-flip', 'noise-age', 'alie']

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    peers: { type: 'string' },
    duration: { type: 'string' },
    modes: { type: 'string' },
    counts: { type: 'string' },
    variants: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'attack-interval': { type: 'string' },
    'train-rate': { type: 'string' },
    'peers-per-process': { type: 'string' },
    json: { type: 'string' },
    'keep-dir': { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    target: { type: 'string', default: '0.9' },
  },
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
for (const v of variants) if (v !== 'on' && v !== 'off') throw new Error(`--variants: ${v} is not on|off`)

interface Plan {
  variant: 'on' | 'off'
  mode: AttackMode | null
  attackers: number
}

/** Per variant: the run without attackers first (the reference), then each mode x count. */
const plan: Plan[] = variants.flatMap((variant) => [
  { variant: variant as 'on' | 'off', mode: null, attackers: 0 },
  ...modes.flatMap((mode) =>
    counts.map((attackers) => ({ variant: variant as 'on' | 'off', mode: mode as AttackMode, attackers })),
  ),
])

interface RunSummary extends Plan {
  honestPeers: number
  meanAccuracy: number | null
  worstAccuracy: number | null
  /** Seconds until the honest mean (each peer's latest evaluation) first reached TARGET; null if never. */
  timeToTarget: number | null
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
    worstAccuracy: finals.length > 0 ? Math.min(...finals) : null,
    timeToTarget: timeToTarget(r.peers, TARGET),
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

function table(runs: readonly RunSummary[]): string {
  const reference = new Map(runs.filter((r) => r.attackers === 0).map((r) => [r.variant, r]))
  const rows = [
    `| mode | attackers / peers | defences | honest mean | worst | vs no attacker | time to ${TARGET} | refused by all honest (attackers, median / max) | first refusal (median) | pushes before refusal (median) | steps/peer |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map((r) => {
      const ref = reference.get(r.variant)
      const delta =
        r.attackers === 0 || ref?.meanAccuracy == null || r.meanAccuracy === null
          ? '-'
          : `${((r.meanAccuracy - ref.meanAccuracy) * 100).toFixed(1)} pts`
      const refused =
        r.attackers === 0
          ? '-'
          : `${r.attackersRefusedByAll}/${r.attackers}, ${fmtS(r.refusedByAllMedianS)} / ${fmtS(r.refusedByAllMaxS)}`
      return (
        `| ${r.mode ?? 'none'} | ${r.attackers} / ${r.honestPeers + r.attackers} | ${r.variant} | ${fmt(r.meanAccuracy)} | ` +
        `${fmt(r.worstAccuracy)} | ${delta} | ${fmtS(r.timeToTarget)} | ${refused} | ` +
        `${r.attackers === 0 ? '-' : fmtS(r.firstRefusalMedianS)} | ${r.attackers === 0 ? '-' : fmt(r.pushesBeforeRefusalMedian, 0)} | ` +
        `${r.stepsPerPeer.toFixed(0)} |`
      )
    }),
  ]
  return rows.join('\n')
}

async function main(): Promise<void> {
  const minutes = Math.ceil((plan.length * (durationS + 45)) / 60)
  console.log(
    `bench:byzantine: ${plan.length} runs of ${peers} honest peers (+ attackers), ${durationS} s each, seed ${args.seed}` +
      `${trainRate.length > 0 ? `, ${trainRate.join(' ')}` : ''}; about ${minutes} min`,
  )
  for (const p of plan) {
    console.log(`  defences ${p.variant}: ${p.attackers === 0 ? 'no attacker' : `${p.attackers}:${p.mode}`}`)
  }
  if (args['dry-run']) return

  const runs: RunSummary[] = []
  for (const [i, p] of plan.entries()) {
    const label = `${i + 1}/${plan.length} defences ${p.variant}, ${p.attackers === 0 ? 'no attacker' : `${p.attackers}:${p.mode}`}`
    const argv = [
      '--peers',
      String(peers),
      '--duration',
      String(durationS),
      '--seed',
      args.seed!,
      '--defences',
      p.variant,
      '--no-http',
      ...trainRate,
      ...hosting,
      ...(p.attackers > 0 ? ['--byzantine', `${p.attackers}:${p.mode}`] : []),
      ...(p.attackers > 0 && args['attack-interval'] !== undefined
        ? ['--attack-interval', args['attack-interval']]
        : []),
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
  console.log(
    `\n${peers} honest peers (MLP, ${parseTestbedArgs([]).partition}, seed ${args.seed}), ${durationS} s per run, ` +
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
    `${JSON.stringify({ peers, durationS, seed: Number(args.seed), trainRate, target: TARGET, runs }, null, 2)}\n`,
  )
}

await main()
