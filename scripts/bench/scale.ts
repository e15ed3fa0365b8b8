/**
 * Scale (issue 11): one testbed of many peers hosted several per process (`--peers-per-process`),
 * train-rate capped so that the CPU is not the limit. From the run's JSON it prints:
 *  - the time from start until every peer's view holds every other peer, and the smallest view
 *    at the end; the start-up time, and when every peer was in some other peer's view;
 *  - how many peers received models, and the fewest any peer received;
 *  - the mean accuracy over time (every `--every` s) and at the end, worst peer;
 *  - resident memory in total and per peer (Linux /proc, read by the testbed).
 *
 *   npm run bench:scale -- [--peers 128] [--peers-per-process 16] [--train-rate 1]
 *                          [--duration 300] [--every 30] [--json FILE] [--quick]
 *   npm run bench:scale -- --analyse FILE     (only read a testbed JSON written before)
 *
 * `--quick`: 16 peers, 8 per process, 60 s (a smoke run of the script, not the measurement).
 */
import '../../src/polyfill.ts'
import { readFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { parseTestbedArgs } from '../../src/cli/args.ts'
import type { PeerResult, TestbedResult } from '../../src/testbed/result.ts'
import { runTestbed } from '../../src/testbed/testbed.ts'
import { benchFlags, parseBenchArgs } from './flags.ts'

const flags = benchFlags('bench:scale')
const args = parseBenchArgs('bench:scale', import.meta.url, {
  peers: { type: 'string' },
  'peers-per-process': { type: 'string' },
  'train-rate': { type: 'string' },
  duration: { type: 'string' },
  every: { type: 'string' },
  json: { type: 'string' },
  analyse: { type: 'string' },
  quick: { type: 'boolean' },
})
const quick = args.quick === true
const peers = flags.int('peers', args.peers, quick ? 16 : 128, 2)
const perProcess = flags.int('peers-per-process', args['peers-per-process'], quick ? 8 : 16, 1)
const trainRate = flags.num('train-rate', args['train-rate'] ?? '1', 0.1)
const durationS = flags.int('duration', args.duration, quick ? 60 : 300, 10)
const everyS = flags.int('every', args.every, quick ? 15 : 30, 1)

const mean = (xs: readonly number[]): number | null =>
  xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : null
const pct = (a: number | null | undefined): string => (a == null ? '-' : `${(a * 100).toFixed(1)}%`)

/** The last value of `pick` at or before `t` (undefined: none yet). */
function at<T>(
  p: PeerResult,
  t: number,
  pick: (s: PeerResult['series'][number]) => T | null | undefined,
): T | undefined {
  let v: T | undefined
  for (const s of p.series) {
    if (s.t > t) break
    const x = pick(s)
    if (x !== null && x !== undefined) v = x
  }
  return v
}

/** First poll time at which every peer's view held all the others; null: never during the run. */
function fullViewAt(r: TestbedResult): number | null {
  const others = r.peers.length - 1
  const times = [...new Set(r.peers.flatMap((p) => p.series.map((s) => s.t)))].sort((a, b) => a - b)
  for (const t of times) if (r.peers.every((p) => (at(p, t, (s) => s.view) ?? 0) >= others)) return t
  return null
}

/**
 * When every peer was in some other peer's view (the peers' own `viewSince`, so start-up counts
 * too), from the first launch and from each peer's own ready line. Runs before these fields: say so.
 */
function inViewLine(r: TestbedResult): string {
  const entered = r.peers.map((p) => p.inViewAtS)
  if (r.startupS === undefined || entered.every((t) => t === undefined)) {
    return 'in some other view: not recorded (a run before `inViewAtS`)'
  }
  const missing = r.peers.filter((p) => p.inViewAtS === undefined).map((p) => p.index)
  const known = r.peers.filter((p) => p.inViewAtS !== undefined)
  const last = Math.max(...known.map((p) => p.inViewAtS!))
  const waits = known
    .filter((p) => p.readyAtS !== undefined)
    .map((p) => Math.max(0, p.inViewAtS! - p.readyAtS!))
    .sort((a, b) => a - b)
  const fromLaunch = (t: number) => (t + r.startupS!).toFixed(1)
  return (
    `start-up: all ${r.peers.length} peers ready ${r.startupS} s after the first launch; ` +
    (missing.length === 0
      ? `every peer was in some other peer's view ${fromLaunch(last)} s after the first launch`
      : `${missing.length} peers in no other view at the end (${missing.join(' ')})`) +
    (waits.length > 0
      ? `; from its own ready line: median ${waits[Math.floor(waits.length / 2)]!.toFixed(1)} s, longest ${waits.at(-1)!.toFixed(1)} s`
      : '')
  )
}

/**
 * The peers with no model yet at the run's first poll (mostly the last started, since the clock
 * starts once every peer is up) and when a poll first found one: what hungry announcements should
 * shorten. Poll-period coarse; earlier peers' first models came during start-up, before any poll.
 */
function firstModelLine(r: TestbedResult): string {
  const late = r.peers.filter((p) => p.series.length > 0 && (p.series[0]!.modelsReceived ?? 0) === 0)
  const at = late
    .flatMap((p) => p.series.find((x) => (x.modelsReceived ?? 0) > 0)?.t ?? [])
    .sort((a, b) => a - b)
  const head = `first model: ${late.length} peers had none at the first poll`
  if (late.length === 0) return head
  return (
    `${head}; ${at.length} got one, at t=${at.length > 0 ? `${at[Math.floor(at.length / 2)]!.toFixed(1)} s at the median, ${at.at(-1)!.toFixed(1)} s the last` : '-'}` +
    `; ${late.length - at.length} never`
  )
}

/** The sum of one numeric field over a list of counter records. */
function sumOf<T extends Record<string, number>>(records: readonly T[], key: keyof T): number {
  return records.reduce((n, r) => n + r[key]!, 0)
}

/** Adds `b`'s counts into `a`. */
function addCounts(a: Record<string, number>, b: Record<string, number> | undefined): Record<string, number> {
  for (const [k, v] of Object.entries(b ?? {})) a[k] = (a[k] ?? 0) + v
  return a
}

const byCount = (c: Record<string, number>) =>
  Object.entries(c)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none'

/**
 * Pushes completed and failed over the network, why they failed (the exchange's stage and error),
 * and for each peer that received nothing: its own pushes and how many peers held it as a suspect
 * (failed pushes count against a peer, and suspects are skipped). Runs before these fields: say so.
 */
function pushLines(r: TestbedResult): string[] {
  if (r.peers.every((p) => p.pushFailuresByReason === undefined)) {
    return ['push failures by reason: not recorded (a run before `pushFailuresByReason`)']
  }
  const failed = r.peers.reduce((n, p) => n + (p.pushesFailed ?? 0), 0)
  const sent = r.peers.reduce((n, p) => n + p.modelsSent, 0)
  const reasons = r.peers.reduce((c, p) => addCounts(c, p.pushFailuresByReason), {})
  const suspectOf = new Map<string, number>()
  for (const p of r.peers)
    for (const id of p.suspectPeers ?? []) suspectOf.set(id, (suspectOf.get(id) ?? 0) + 1)
  // The receivers' side: inbound transfers dropped (StreamTimeoutError: silence past the idle
  // bound or the transfer past its deadline; TruncatedFrameError: reset mid-frame).
  const dropped = r.peers.reduce((c, p) => addCounts(c, p.rejected), {})
  const lines = [
    `pushes: ${sent} completed, ${failed} failed; failures by stage:error: ${byCount(reasons)}`,
    `inbound transfers the receivers dropped or refused, by error: ${byCount(dropped)}`,
  ]
  // One message per reason (the latest some peer saw), the most common reasons first.
  const messages = new Map<string, string>()
  for (const p of r.peers)
    for (const [k, m] of Object.entries(p.pushFailureMessages ?? {})) messages.set(k, m)
  for (const [k] of Object.entries(reasons as Record<string, number>)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)) {
    if (messages.has(k)) lines.push(`  e.g. ${k}: ${messages.get(k)}`)
  }
  if (r.peers.some((p) => p.pushesToHungry !== undefined)) {
    const hungry = r.peers.reduce((n, p) => n + (p.pushesToHungry ?? 0), 0)
    lines.push(`pushes to peers announcing they were hungry (no model merged yet): ${hungry}`)
  }
  const held = [...suspectOf.values()]
  lines.push(
    `suspects: ${held.length} peers held as a suspect by some other peer at the end (most: ${held.length > 0 ? Math.max(...held) : 0} holders)`,
  )
  for (const p of r.peers.filter((p) => p.modelsReceived === 0)) {
    lines.push(
      `  received nothing: peer ${p.index}${p.host !== undefined ? ` (host ${p.host})` : ''}: sent ${p.modelsSent}, failed ${p.pushesFailed ?? 0} (${byCount(p.pushFailuresByReason ?? {})}); a suspect to ${suspectOf.get(p.peerId) ?? 0} peers`,
    )
  }
  return lines
}

/** A run's train-rate as its flag read: `2 steps/s`, `2 steps/s, 20 % at 0.5`, or `uncapped`. */
function describeRate(spec: TestbedResult['config']['trainRate']): string {
  if (spec === undefined) return 'uncapped'
  const s = spec.straggler
  return `${spec.rate} steps/s${s !== undefined ? `, ${Math.round(s.fraction * 100)} % at ${s.rate}` : ''}`
}

function report(r: TestbedResult): void {
  const n = r.peers.length
  const last = (p: PeerResult) => p.series.at(-1)
  const views = r.peers.map((p) => last(p)?.view ?? 0)
  // A peer whose host never answered a poll within its bound was not measured: say so, rather
  // than let it read as a peer that received nothing (one 128-peer run had 56 such).
  const read = r.peers.filter((p) => p.series.length > 0)
  const viewsRead = read.map((p) => last(p)!.view ?? 0)
  const unread = n - read.length
  const received = r.peers.map((p) => last(p)?.modelsReceived ?? 0)
  const steps = r.peers.map((p) => last(p)?.steps ?? 0)
  const full = fullViewAt(r)
  console.log(
    // From the run's own config: --analyse reads a file written with other flags.
    `\n${n} peers, ${r.config.peersPerProcess ?? 1} per process, train-rate ${describeRate(r.config.trainRate)}, ${r.durationS} s; load average now ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  )
  console.log(
    `views: ${full === null ? `no poll found every view holding all ${n - 1} others` : `every view held all ${n - 1} others from t=${full} s`}; smallest view at the end ${Math.min(...views)}${unread > 0 ? ` (${Math.min(...viewsRead)} among peers read)` : ''}`,
  )
  console.log(inViewLine(r))
  console.log(
    `models received: ${received.filter((x) => x > 0).length}/${n} peers received some; fewest ${Math.min(...received)}, median ${[...received].sort((a, b) => a - b)[Math.floor(n / 2)]}` +
      (unread > 0 ? `; ${unread} peers never answered a poll (counted as none)` : ''),
  )
  console.log(firstModelLine(r))
  for (const line of pushLines(r)) console.log(line)
  // Which peers ended alone, and what held them there: no connection, or connections but no mesh.
  const alone = read.filter((p) => (last(p)!.view ?? 0) === 0)
  if (alone.length > 0) {
    const where = (p: PeerResult) => {
      const s = last(p)!
      const meshAt = p.series.find((x) => (x.mesh ?? 0) > 0)?.t
      return `${p.index}${p.host !== undefined ? ` (host ${p.host})` : ''}: ${s.connected ?? '?'} connected, mesh ${s.mesh ?? '?'}${meshAt !== undefined ? ` (first >0 at ${meshAt} s)` : ''}`
    }
    console.log(`empty view at the end: ${alone.map(where).join('; ')}`)
  }
  const health = read.map((p) => p.connectionHealth).filter((h) => h !== undefined)
  if (health.length > 0) {
    const sum = (k: keyof (typeof health)[number]) => sumOf(health, k)
    const touched = read.filter(
      (p) => (p.connectionHealth?.identifyRetries ?? 0) + (p.connectionHealth?.streamless ?? 0) > 0,
    )
    console.log(
      `connections without gossipsub: identify retried ${sum('identifyRetries')} (recovered ${sum('identifyRecovered')}, failed ${sum('identifyFailures')}), identified but streamless ${sum('streamless')}, aborted ${sum('aborted')}; at peers ${touched.map((p) => p.index).join(' ') || 'none'}`,
    )
  }
  const pinged = read.map((p) => p.keepAlive).filter((k) => k !== undefined)
  if (pinged.length > 0) {
    const sum = (k: keyof (typeof pinged)[number]) => sumOf(pinged, k)
    console.log(
      `keep-alive: ${sum('pings')} pings, ${sum('failures')} failed, ${sum('aborted')} connections aborted after a failure`,
    )
  }
  console.log(`training steps per peer: ${Math.min(...steps)}-${Math.max(...steps)}`)
  console.log('mean accuracy over time (peers with an evaluation):')
  for (let t = everyS; t <= r.durationS + 1e-9; t += everyS) {
    const accs = r.peers.map((p) => at(p, t, (s) => s.accuracy)).filter((a): a is number => a !== undefined)
    console.log(`  ${String(t).padStart(4)} s  ${pct(mean(accs))}  (${accs.length}/${n} peers)`)
  }
  const finals = r.peers
    .map((p) => at(p, r.durationS + 1, (s) => s.accuracy))
    .filter((a): a is number => a !== undefined)
  console.log(
    `final: mean ${pct(mean(finals))}, worst ${pct(finals.length > 0 ? Math.min(...finals) : null)}`,
  )
  if (r.memory !== undefined) {
    const sizes = r.memory.processes.map((p) => p.rssMiB)
    console.log(
      `memory: ${r.memory.totalRssMiB} MiB resident in ${sizes.length} processes (${Math.min(...sizes)}-${Math.max(...sizes)} MiB each), ${r.memory.perPeerRssMiB} MiB per peer`,
    )
  } else console.log('memory: not measured (no /proc)')
}

if (args.analyse !== undefined) {
  report(JSON.parse(await readFile(args.analyse, 'utf8')) as TestbedResult)
} else {
  const argv = [
    '--peers',
    String(peers),
    '--peers-per-process',
    String(perProcess),
    '--train-rate',
    String(trainRate),
    '--duration',
    String(durationS),
  ]
  if (args.json !== undefined) argv.push('--json', args.json)
  console.log(`testbed ${argv.join(' ')}`)
  const r = await runTestbed(parseTestbedArgs(argv), { print: (line) => console.log(line) })
  report(r)
}
