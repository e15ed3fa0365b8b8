/**
 * Uniform vs topology-aware peer sampling on the default emulated wide-area topology
 * (us-east:4, eu-west:4, ap-southeast:4; 10 ms within a region, 70/165/215 ms across;
 * 20 Mbit/s uplinks): two testbed runs of 12 real daemon processes with the same identities
 * (so the same regions, data shares and initial weights), partition, merge mode and duration,
 * one per sampler. Prints one table:
 *   - time until the mean accuracy reaches 0.95 (or the highest level both runs reach);
 *   - final mean accuracy (each peer's mean over the last 20 s, averaged);
 *   - bytes sent across regions: their share, MiB per peer, and how many times fewer (in MiB);
 *   - median relative error of the Vivaldi-predicted RTT (from each pair's coordinates in
 *     /status) against the emulated RTT of the pair;
 *   - CPU contention: training steps/s per peer, load average.
 *
 *   npm run bench:topology -- [--duration 240] [--json FILE] [--random-share R] [--partition SPEC]
 *                             [--merge MODE] [--steps-per-round K] [--defences SPEC] [--seed S] [--only uniform|topology] [--keep-dir DIR] [--parallel]
 *                             [--eval-share S] (evaluation time per training time; default 2, see EVAL_SHARE)
 *                             [--train-rate R] (device speed: each peer's steps/s cap, e.g. 20 or 40,straggler:0.25@10;
 *                                               default 2, `none` uncaps: see TRAIN_RATE)
 *                             [--peers-per-process N] (N daemons per process: less memory and load, but they share one event loop, so RTTs read later; docs/BENCHMARKS.md)
 *                             [--testbed="FLAGS"] (more testbed flags for both runs, e.g. "--hidden 1024": a bigger model, longer pushes)
 */
import '../../src/polyfill.ts'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseTestbedArgs } from '../../src/cli/args.ts'
import type { SamplerKind } from '../../src/gossip/sampling/index.ts'
import { median } from '../../src/gossip/topology/rtt.ts'
import { distance } from '../../src/gossip/topology/vivaldi.ts'
import { IDENTITY_FILE, loadOrCreateIdentity } from '../../src/node/identity.ts'
import {
  interRegionShare,
  interRegionShareSince,
  interRegionShareWindows,
  type PeerResult,
  SHARE_WINDOWS_S,
  type ShareWindow,
  shareWindowNames,
  type TestbedResult,
} from '../../src/testbed/result.ts'
import { runTestbed } from '../../src/testbed/testbed.ts'
import { regionRttMs, type WanLinks } from '../../src/testbed/wan-links.ts'
import { averageAccuracy, firstReach, highestCommonLevel, speedUp, TARGET_ACCURACY } from './curves.ts'
import { parseBenchArgs, testbedFlags } from './flags.ts'

const REGIONS = 'us-east:4,eu-west:4,ap-southeast:4'
const PEERS = 12
/**
 * Each peer's steps/s cap unless --train-rate says otherwise. 12 daemons on a 2-core machine must
 * leave it idle for an RTT of 10 ms to read as 10 ms: at 2 steps/s the median peer's event loop is
 * 0 ms late at p50 (8-15 ms at p99) and Vivaldi's median error is 2-3 %; at 10 steps/s, 64-70 ms
 * late and 90-190 % (docs/BENCHMARKS.md, bench:topology). The sampler is what is measured here.
 */
const TRAIN_RATE = '2'
/**
 * Each peer's evaluation time per training time unless --eval-share says otherwise. The learner's
 * 0.25 evaluates a peer capped at 2 steps/s about every 40 s (2000 test samples forward are about
 * 20 steps' work), so in a 150 s run the time to a level moved by tens of seconds with the luck of
 * when each peer evaluated; at 2, every few seconds, on a CPU the cap leaves idle.
 */
const EVAL_SHARE = '2'
/** Final accuracy is each peer's mean over this last stretch: one evaluation is noisy (2000 images). */
const FINAL_WINDOW_S = 20

const args = parseBenchArgs('bench:topology', import.meta.url, {
  duration: { type: 'string', default: '240' },
  json: { type: 'string' },
  'random-share': { type: 'string' },
  'train-rate': { type: 'string', default: TRAIN_RATE },
  /** testbed --eval-share: how often peers evaluate (see EVAL_SHARE). */
  'eval-share': { type: 'string', default: EVAL_SHARE },
  /** Hosts several daemons per process (testbed --peers-per-process): 12 processes keep 2 cores saturated. */
  'peers-per-process': { type: 'string' },
  testbed: { type: 'string' },
  partition: { type: 'string' },
  merge: { type: 'string' },
  /** Training steps between two pushes (testbed --steps-per-round): fewer make pushes, not training, the limit. */
  'steps-per-round': { type: 'string' },
  /** Passed to every peer (testbed --defences): the fair share limits what near peers may send each other. */
  defences: { type: 'string' },
  seed: { type: 'string' },
  only: { type: 'string' },
  /** Run both testbeds at the same time (24 processes): both get the same CPU, whatever else the box runs. */
  parallel: { type: 'boolean', default: false },
  'keep-dir': { type: 'string' },
})

/**
 * Bytes across regions are also read from here on: a node measures RTTs only to peers it has
 * connected to, and the topology sampler's peers held 9 of 11 connections by 30 s (seed 11).
 */
const STEADY_FROM_S = 30

interface RunSummary {
  sampler: SamplerKind
  /** Mean accuracy over peers (each peer's latest evaluation) at each poll. */
  meanCurve: Array<{ t: number; acc: number; steps: number }>
  finalAccuracy: number | null
  interRegionShare: number | null
  /**
   * Bytes each peer sent across regions, in MiB. The goal's "fewer bytes across regions" is the
   * ratio of these, not of the shares: a sampler that sends more models in all has a smaller share
   * of more bytes (the twentieth session's 4.1-5.0x were share ratios; in bytes, 3.8-4.3x).
   */
  mibAcrossRegionsPerPeer: number
  /** The share of the bytes sent from STEADY_FROM_S on (null: runs from before the series held the counters). */
  interRegionShareSteady?: number | null
  /** The share in each window from SHARE_WINDOWS_S (absent in runs from before it was recorded). */
  interRegionShareByWindow?: ShareWindow[]
  coordinateError: { median: number; intra: number; inter: number; pairs: number }
  /** Measured (min-filtered) RTT vs emulated, median relative error over all measured links. */
  measuredRttError: number
  stepsPerSecondPerPeer: number
  /** Seconds a round of `stepsPerRound` steps takes (steps per round / steps per second); the round floor may join several. */
  roundPeriodS: number
  /** Run time over models sent per peer: the time between two pushes that were made. */
  pushPeriodS: number
  /** Median over peers of their event-loop delay p50 / p99 (ms). */
  eventLoopDelayMs: { p50: number; p99: number }
  modelsSentPerPeer: number
  /** Rounds per peer that pushed nothing because both push slots were busy (null: peers too old to say). */
  busyRoundsPerPeer: number | null
  mibSentPerPeer: number
  pingsFailed: number
  /** Peers that never received a model (cut off from the network): they drag the mean down. */
  isolatedPeers: number
  loadAverage: number[]
  durationS: number
}

/** Mean accuracy across peers over time: each peer counts with its latest evaluation; defined once all have one. */
function meanCurve(peers: readonly PeerResult[]): Array<{ t: number; acc: number; steps: number }> {
  const times = [...new Set(peers.flatMap((p) => p.series.map((s) => s.t)))].sort((a, b) => a - b)
  const idx = peers.map(() => -1)
  const out: Array<{ t: number; acc: number; steps: number }> = []
  for (const t of times) {
    let sum = 0
    let steps = 0
    let all = true
    peers.forEach((p, k) => {
      while (idx[k]! + 1 < p.series.length && p.series[idx[k]! + 1]!.t <= t) idx[k]!++
      let j = idx[k]!
      while (j >= 0 && p.series[j]!.accuracy === null) j--
      if (j < 0) all = false
      else {
        sum += p.series[j]!.accuracy!
        steps += p.series[idx[k]!]!.steps
      }
    })
    if (all) out.push({ t, acc: sum / peers.length, steps: steps / peers.length })
  }
  return out
}

function finalAccuracy(peers: readonly PeerResult[], durationS: number): number | null {
  const perPeer = peers.map((p) => {
    const last = p.series.filter((s) => s.t >= durationS - FINAL_WINDOW_S && s.accuracy !== null)
    return last.length > 0 ? last.reduce((a, s) => a + s.accuracy!, 0) / last.length : p.finalAccuracy
  })
  const known = perPeer.filter((a): a is number => a !== null && a !== undefined)
  return known.length === perPeer.length ? known.reduce((a, b) => a + b, 0) / known.length : null
}

function coordinateError(peers: readonly PeerResult[], links: WanLinks) {
  const all: number[] = []
  const intra: number[] = []
  const inter: number[] = []
  for (let i = 0; i < peers.length; i++) {
    for (let j = i + 1; j < peers.length; j++) {
      const [a, b] = [peers[i]!, peers[j]!]
      if (
        a.coordinate === undefined ||
        b.coordinate === undefined ||
        a.region === undefined ||
        b.region === undefined
      )
        continue
      const truth = regionRttMs(links, a.region, b.region)
      const rel = Math.abs(distance(a.coordinate, b.coordinate) - truth) / truth
      all.push(rel)
      ;(a.region === b.region ? intra : inter).push(rel)
    }
  }
  const med = (xs: number[]) => (xs.length > 0 ? median(xs) : Number.NaN)
  return { median: med(all), intra: med(intra), inter: med(inter), pairs: all.length }
}

function measuredRttError(peers: readonly PeerResult[], links: WanLinks): number {
  const errs: number[] = []
  for (const p of peers) {
    for (const [id, ms] of Object.entries(p.topology?.rttMs ?? {})) {
      const other = links.peers?.[id]
      if (p.region === undefined || other === undefined) continue
      const truth = regionRttMs(links, p.region, other)
      errs.push(Math.abs(ms - truth) / truth)
    }
  }
  return errs.length > 0 ? median(errs) : Number.NaN
}

function summarise(sampler: SamplerKind, r: TestbedResult, load: number[]): RunSummary {
  const links = r.links!
  const n = r.peers.length
  const perPeer = (value: (p: PeerResult) => number) => r.peers.reduce((s, p) => s + value(p), 0) / n
  const stepsPerS = perPeer((p) => p.steps) / r.durationS
  const modelsSent = perPeer((p) => p.modelsSent)
  return {
    sampler,
    meanCurve: meanCurve(r.peers),
    finalAccuracy: finalAccuracy(r.peers, r.durationS),
    interRegionShare: interRegionShare(r.peers),
    mibAcrossRegionsPerPeer: perPeer((p) => p.bytesSentInterRegion ?? 0) / 2 ** 20,
    interRegionShareSteady: interRegionShareSince(r.peers, STEADY_FROM_S),
    interRegionShareByWindow: interRegionShareWindows(r.peers, SHARE_WINDOWS_S),
    coordinateError: coordinateError(r.peers, links),
    measuredRttError: measuredRttError(r.peers, links),
    stepsPerSecondPerPeer: stepsPerS,
    roundPeriodS: r.config.stepsPerRound / stepsPerS,
    pushPeriodS: r.durationS / modelsSent,
    eventLoopDelayMs: {
      p50: median(r.peers.map((p) => p.eventLoopDelayMs?.p50 ?? Number.NaN).filter(Number.isFinite)),
      p99: median(r.peers.map((p) => p.eventLoopDelayMs?.p99 ?? Number.NaN).filter(Number.isFinite)),
    },
    modelsSentPerPeer: modelsSent,
    busyRoundsPerPeer: r.peers.every((p) => p.pushesBusy !== undefined)
      ? perPeer((p) => p.pushesBusy!)
      : null,
    mibSentPerPeer: perPeer((p) => p.bytesSent) / 2 ** 20,
    pingsFailed: r.peers.reduce((s, p) => s + (p.topology?.pingsFailed ?? 0), 0),
    isolatedPeers: r.peers.filter((p) => p.modelsReceived === 0).length,
    loadAverage: load,
    durationS: r.durationS,
  }
}

async function main(): Promise<void> {
  const durationS = Number(args.duration)
  const samplers: SamplerKind[] =
    args.only === 'uniform' || args.only === 'topology' ? [args.only] : ['uniform', 'topology']
  const base =
    args['keep-dir'] !== undefined
      ? resolve(args['keep-dir'])
      : await mkdtemp(join(tmpdir(), 'gl-bench-topology-'))
  // One set of identities for both runs: same peer ids, hence the same regions, data shares and initial weights.
  const ids = join(base, 'identities')
  for (let i = 0; i < PEERS; i++) {
    await mkdir(join(ids, `peer-${i}`), { recursive: true })
    await loadOrCreateIdentity(join(ids, `peer-${i}`))
  }
  const summaries: RunSummary[] = []
  const results: Record<string, TestbedResult> = {}
  const runOne = async (sampler: SamplerKind): Promise<void> => {
    const dir = join(base, sampler)
    await rm(dir, { recursive: true, force: true })
    for (let i = 0; i < PEERS; i++) {
      await mkdir(join(dir, `peer-${i}`), { recursive: true })
      await copyFile(join(ids, `peer-${i}`, IDENTITY_FILE), join(dir, `peer-${i}`, IDENTITY_FILE))
    }
    const argv = [
      '--regions',
      REGIONS,
      '--sampler',
      sampler,
      '--duration',
      String(durationS),
      '--keep-dir',
      dir,
    ]
    if (args['random-share'] !== undefined) argv.push('--random-share', args['random-share'])
    if (args.partition !== undefined) argv.push('--partition', args.partition)
    if (args.merge !== undefined) argv.push('--merge', args.merge)
    if (args['steps-per-round'] !== undefined) argv.push('--steps-per-round', args['steps-per-round'])
    if (args.defences !== undefined) argv.push('--defences', args.defences)
    if (args.seed !== undefined) argv.push('--seed', args.seed)
    if (args['train-rate'] !== 'none') argv.push('--train-rate', args['train-rate'])
    argv.push('--eval-share', args['eval-share'])
    if (args['peers-per-process'] !== undefined) argv.push('--peers-per-process', args['peers-per-process'])
    argv.push(...testbedFlags(args.testbed))
    const cfg = parseTestbedArgs(argv)
    console.log(`\n=== ${sampler} sampler: ${argv.join(' ')}`)
    const loads: number[][] = []
    const loadTimer = setInterval(() => loads.push(loadavg()), 10_000)
    const r = await runTestbed(cfg, { print: (line) => console.log(`[${sampler}] ${line}`) })
    clearInterval(loadTimer)
    const load = loads.length > 0 ? [0, 1, 2].map((k) => median(loads.map((l) => l[k]!))) : loadavg()
    results[sampler] = r
    summaries.push(summarise(sampler, r, load))
  }
  try {
    if (args.parallel) await Promise.all(samplers.map(runOne))
    else for (const sampler of samplers) await runOne(sampler)
    summaries.sort((a, b) => samplers.indexOf(a.sampler) - samplers.indexOf(b.sampler))
  } finally {
    if (args['keep-dir'] === undefined) await rm(base, { recursive: true, force: true })
  }

  // The level: 0.95, or the highest both runs' mean accuracy reached (rounded down to 0.005).
  const level = highestCommonLevel(
    summaries.map((s) => s.meanCurve),
    TARGET_ACCURACY,
  )
  const reached = summaries.map((s) => firstReach(s.meanCurve, level))
  const times = reached.map((c) => c?.t ?? null)
  // From the first moment both curves are defined (every peer of both runs has evaluated).
  const since = Math.max(...summaries.map((s) => s.meanCurve[0]?.t ?? Number.NaN))

  const fmt = (x: number | null | undefined, digits: number, unit = ''): string =>
    x === null || x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(digits)}${unit}`
  const pct = (x: number | null) => (x === null || Number.isNaN(x) ? '-' : `${(x * 100).toFixed(1)}%`)
  const rows: Array<[string, ...string[]]> = [
    [`time to mean accuracy ${level.toFixed(3)}`, ...times.map((t) => fmt(t, 0, ' s'))],
    // Wall time depends on how much CPU the run got (the box is shared); steps do not.
    [`  training steps per peer until then`, ...reached.map((c) => fmt(c?.steps, 0))],
    [
      `mean accuracy averaged over ${fmt(since, 0)}-${durationS} s`,
      ...summaries.map((s) => fmt(averageAccuracy(s.meanCurve, since, durationS), 3)),
    ],
    [`final mean accuracy (last ${FINAL_WINDOW_S} s)`, ...summaries.map((s) => fmt(s.finalAccuracy, 3))],
    [
      'bytes across regions: share of emulated bytes (MiB per peer)',
      ...summaries.map((s) => `${pct(s.interRegionShare)} (${fmt(s.mibAcrossRegionsPerPeer, 1)})`),
    ],
    [
      `  share from ${STEADY_FROM_S} s on (RTTs measured by then)`,
      ...summaries.map((s) => pct(s.interRegionShareSteady ?? null)),
    ],
    [
      `  share by window, ${shareWindowNames(SHARE_WINDOWS_S)} s`,
      ...summaries.map((s) => s.interRegionShareByWindow?.map((w) => pct(w.share)).join(' / ') ?? '-'),
    ],
    ['Vivaldi RTT error, median (all pairs)', ...summaries.map((s) => pct(s.coordinateError.median))],
    [
      '  within regions / across regions',
      ...summaries.map((s) => `${pct(s.coordinateError.intra)} / ${pct(s.coordinateError.inter)}`),
    ],
    ['measured (min-filtered) RTT error, median', ...summaries.map((s) => pct(s.measuredRttError))],
    ['training steps/s per peer', ...summaries.map((s) => fmt(s.stepsPerSecondPerPeer, 1))],
    [
      'seconds per round of steps (steps per round / steps/s)',
      ...summaries.map((s) => fmt(s.roundPeriodS, 1)),
    ],
    [
      'seconds per model sent (run time / models sent per peer)',
      ...summaries.map((s) => fmt(s.pushPeriodS, 1)),
    ],
    [
      'event-loop delay p50 / p99, ms (median peer)',
      ...summaries.map((s) => `${fmt(s.eventLoopDelayMs.p50, 0)} / ${fmt(s.eventLoopDelayMs.p99, 0)}`),
    ],
    [
      'models sent per peer / MiB sent per peer',
      ...summaries.map((s) => `${fmt(s.modelsSentPerPeer, 0)} / ${fmt(s.mibSentPerPeer, 0)}`),
    ],
    ['rounds per peer with every push slot busy', ...summaries.map((s) => fmt(s.busyRoundsPerPeer, 0))],
    ['failed pings (all peers)', ...summaries.map((s) => String(s.pingsFailed))],
    ['peers that never received a model', ...summaries.map((s) => String(s.isolatedPeers))],
    [
      'load average (1/5/15 min, median)',
      ...summaries.map((s) => s.loadAverage.map((l) => l.toFixed(1)).join(' ')),
    ],
  ]
  if (times.length === 2 && times[0] !== null && times[1] !== null && times[1] > 0) {
    rows.push(['speed-up (uniform time / topology time)', '', `${(times[0] / times[1]).toFixed(2)}x`])
    // One crossing of one level is a noisy event (peers evaluate seconds apart): the lower levels too.
    const lower = [0.6, 0.7, 0.75, 0.8].filter((l) => l < level)
    const speedUps = lower.flatMap((l) => {
      const x = speedUp(summaries[0]!.meanCurve, summaries[1]!.meanCurve, l)
      return x === null ? [] : [`${l.toFixed(2)}: ${x.toFixed(2)}x`]
    })
    if (speedUps.length > 0) rows.push(['  speed-up at lower levels', '', speedUps.join(', ')])
  }
  if (summaries.length === 2 && summaries[1]!.mibAcrossRegionsPerPeer > 0) {
    const fewer = summaries[0]!.mibAcrossRegionsPerPeer / summaries[1]!.mibAcrossRegionsPerPeer
    rows.push(['bytes across regions (uniform / topology)', '', `${fmt(fewer, 2)}x fewer`])
  }
  const w0 = Math.max(...rows.map((r) => r[0].length))
  const w = summaries.map((_, k) =>
    Math.max(summaries[k]!.sampler.length, ...rows.map((r) => (r[k + 1] ?? '').length)),
  )
  const defaults = parseTestbedArgs([])
  console.log(
    `\n12 peers (${REGIONS}), ${durationS} s per run, train rate ${args['train-rate']}, ` +
      `partition ${args.partition ?? defaults.partition}, ` +
      `merge ${Object.values(results)[0]?.config.merge ?? args.merge ?? defaults.merge}${args.defences !== undefined ? `, defences ${args.defences}` : ''}${args['random-share'] !== undefined ? `, random share ${args['random-share']}` : ''}`,
  )
  console.log(`${''.padEnd(w0)}  ${summaries.map((s, k) => s.sampler.padStart(w[k]!)).join('  ')}`)
  for (const r of rows)
    console.log(
      `${r[0].padEnd(w0)}  ${r
        .slice(1)
        .map((c, k) => c.padStart(w[k] ?? 0))
        .join('  ')}`,
    )

  if (args.json !== undefined) {
    await mkdir(dirname(resolve(args.json)), { recursive: true })
    await writeFile(args.json, `${JSON.stringify({ level, times, summaries, results }, null, 2)}\n`)
    console.log(`wrote ${args.json}`)
  }
}

await main()
