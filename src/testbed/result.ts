/**
 * What a testbed run reports: every peer's counters and accuracy curve, the run's means, and the
 * summary table printed at its end (the JSON of `--json`, the HTML report and the live page all
 * read these types).
 */
import type { TopologyCounters } from '../gossip/topology/topology-service.ts'
import type { Coordinate } from '../gossip/topology/vivaldi.ts'
import type { NodeStatus } from '../node/daemon.ts'
import { type AttackerResult, formatAttackers } from './attack/facility.ts'
import type { TestbedConfig } from './config.ts'
import type { DownInterval } from './report/availability.ts'
import type { WanLinks } from './wan-links.ts'

export interface SeriesPoint {
  t: number
  accuracy: number | null
  age: number
  modelsReceived: number
  bytesSent: number
  steps: number
  loss?: number | null
  modelsSent?: number
  bytesReceived?: number
  merges?: number
  /** Peers in its membership view. */
  view?: number
  /** Peers it holds a connection to, and those in its announcement mesh (gossipsub). */
  connected?: number
  mesh?: number
  /** Emulated bytes sent so far to peers of its own region and of others (emulation only). */
  bytesWithinRegion?: number
  bytesAcrossRegions?: number
}

export interface PeerResult {
  index: number
  peerId: string
  /** Emulated region; absent without emulation. */
  region?: string
  /** Final Vivaldi coordinate. */
  coordinate?: Coordinate
  /** Bytes sent to peers of its own region / of other regions (emulation only). */
  bytesSentIntraRegion?: number
  bytesSentInterRegion?: number
  topology?: TopologyCounters & { rttMs: Record<string, number> }
  /** Event-loop delay over the run (ms): the CPU contention every message waited through. */
  eventLoopDelayMs?: NodeStatus['eventLoopDelayMs']
  finalAccuracy: number | null
  modelsSent: number
  modelsReceived: number
  bytesSent: number
  bytesReceived: number
  merges: number
  steps: number
  trainSamples: number
  /** Inbound models and announcements refused, by error name. */
  rejected?: Record<string, number>
  /** Models accepted, by sender peer id (who sent to whom). */
  modelsReceivedFrom?: Record<string, number>
  /** Models whose sender asked for one back, and the pushes made in reply (learner.ts). */
  modelsWanted?: number
  replies?: number
  /** Pushes that failed or timed out (a peer that sent nothing either pushed to nobody or failed). */
  pushesFailed?: number
  /** Its pushes to peers whose announcements said they were hungry (gossip/sampling/hungry.ts). */
  pushesToHungry?: number
  /** Its rounds that pushed nothing because every push slot was busy (learner.ts `pushesBusy`). */
  pushesBusy?: number
  /** The exchange's failed pushes by `stage:ErrorName` (dial, send, close, ack). */
  pushFailuresByReason?: Record<string, number>
  /** The latest message for each of those keys. */
  pushFailureMessages?: Record<string, string>
  /** Peers it held as suspects at the end (its pushes skip them while others are left). */
  suspectPeers?: string[]
  /** The learner's defences: clips, rejections, drops and rollbacks by reason. */
  defences?: NodeStatus['defences']
  /** Bytes sent over emulated links, by destination region (emulation only). */
  bytesSentByRegion?: Record<string, number>
  /** Bytes written and pushes completed, by codec spec (all of bytesSent is in it). */
  sentByCodec?: Record<string, { models: number; bytes: number }>
  /** Accepted inbound models and their frame bytes, by the codec they came in. */
  receivedByCodec?: Record<string, { models: number; bytes: number }>
  /** Connections that carried no gossipsub, and what the daemon's LinkWatch did about them. */
  connectionHealth?: NodeStatus['links']
  /** Keep-alive pings sent and failed, and connections aborted after a failure. */
  keepAlive?: NodeStatus['keepAlive']
  /** Running at the end of the run (a killed peer not restarted is not). */
  alive?: boolean
  /** When the daemon ran, in s since the run started (`to` null: still running at the end). */
  up?: Array<{ from: number; to: number | null }>
  /** Every exit during the run: when (s since start), exit code or signal, and whether --churn killed it. */
  exits?: PeerExit[]
  /** When a peer down at the end went down (s since start); absent for a live peer. */
  downAt?: number
  /** Intervals it was down (between its `up` spans, and from its last exit to the end). */
  down?: DownInterval[]
  /** Started after the initial peers by `--churn join:N@T`. */
  lateJoiner?: boolean
  /** When a late joiner first came up (s since start). */
  joinedAt?: number
  /** Its --train-rate cap (steps/s); absent: uncapped. */
  trainRate?: number
  /** With --peers-per-process: the index of the process that hosts it (peers index / N). */
  host?: number
  /** When it first reported ready, in s since the run started: negative while the network was starting. */
  readyAtS?: number
  /**
   * When it entered the view of some other peer, in s since the run started (negative: during
   * start-up), from the `viewSince` of the other peers' answers: an upper bound, since an entry
   * that expired and came back before the next poll counts from its return. Absent: no answer
   * showed it in another peer's view.
   */
  inViewAtS?: number
  series: SeriesPoint[]
}

/** Resident memory of the peer processes (their own RSS, not esbuild's or the testbed's). */
export interface MemorySummary {
  /** Each process still running at the end: its peers, its last and its largest resident size. */
  processes: Array<{ peers: number[]; rssMiB: number; maxRssMiB: number }>
  totalRssMiB: number
  /** totalRssMiB over the peers those processes host. */
  perPeerRssMiB: number
}

/** A daemon's exit during the run. */
export interface PeerExit {
  atS: number
  code: number | null
  signal: string | null
  /** True when the testbed's --churn killed it. */
  churn: boolean
}

export interface TestbedResult {
  config: TestbedConfig & { startedAt: string }
  durationS: number
  /** From launching the first peer until every peer was ready (the run's clock starts then). */
  startupS?: number
  reachedTarget: boolean
  /** Over the peers alive at the end (all of them without churn). */
  meanFinalAccuracy: number | null
  minFinalAccuracy: number | null
  /** Over every peer, dead ones at their last reported accuracy. */
  meanFinalAccuracyAll?: number | null
  /** Peers alive at the end. */
  alivePeers?: number
  /** The emulated topology with every peer's region (what the daemons loaded); absent without emulation. */
  links?: WanLinks
  peers: PeerResult[]
  /**
   * With --byzantine: the attacker peers, apart from `peers` (which, with the mean and min
   * accuracy, are the honest peers only): mode, pushes, and when each honest peer refused it.
   */
  attackers?: AttackerResult[]
  /** With --baseline: the same peers trained alone (--no-gossip), run after this one. */
  baseline?: TestbedResult
  /** Resident memory of the peer processes at the end (Linux /proc; absent elsewhere). */
  memory?: MemorySummary
}

/** Which run of a testbed invocation is in progress. */
export type RunPhase = 'gossip' | 'baseline'

export const fmtAcc = (a: number | null | undefined): string =>
  a === null || a === undefined ? '  -  ' : a.toFixed(3)
export const mean = (xs: number[]): number | null =>
  xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length

/** Share of the emulated bytes that crossed regions, or null without emulation. */
export function interRegionShare(peers: readonly PeerResult[]): number | null {
  const inter = peers.reduce((s, p) => s + (p.bytesSentInterRegion ?? 0), 0)
  const total = inter + peers.reduce((s, p) => s + (p.bytesSentIntraRegion ?? 0), 0)
  return total > 0 ? inter / total : null
}

/** The polls that hold the byte counters (runs from before they were polled have none). */
const withByteCounters = <P extends Pick<SeriesPoint, 'bytesWithinRegion' | 'bytesAcrossRegions'>>(
  series: readonly P[],
): P[] => series.filter((x) => x.bytesAcrossRegions !== undefined && x.bytesWithinRegion !== undefined)

/**
 * Share of the emulated bytes sent from `fromS` seconds on that crossed regions: each peer's
 * counters at the end less those of its first poll at or after `fromS`. Null when no peer's
 * series holds the counters (no emulation, or a run from before they were polled). Tells a
 * steady share from one the first seconds' picks inflate (before RTTs are measured).
 */
export function interRegionShareSince(peers: readonly PeerResult[], fromS: number): number | null {
  let inter = 0
  let total = 0
  for (const p of peers) {
    const points = withByteCounters(p.series)
    const first = points.find((x) => x.t >= fromS)
    const last = points.at(-1)
    if (first === undefined || last === undefined) continue
    const across = last.bytesAcrossRegions! - first.bytesAcrossRegions!
    inter += across
    total += across + last.bytesWithinRegion! - first.bytesWithinRegion!
  }
  return total > 0 ? inter / total : null
}

/**
 * The windows (seconds, from each boundary to the next) the benches read bytes across regions in:
 * a node's first seconds, before it has measured its peers' RTTs, against the rest of the run.
 */
export const SHARE_WINDOWS_S: readonly number[] = [0, 10, 30, 100]

/** `0-10 / 10-30 / 30-end`: the windows from `boundaries`, for a table's row name. */
export const shareWindowNames = (boundaries: readonly number[]): string =>
  boundaries.map((t, i) => `${t}-${boundaries[i + 1] ?? 'end'}`).join(' / ')

/** The share of bytes across regions in one window of a run: `[fromS, toS)`. */
export interface ShareWindow {
  fromS: number
  /** The next boundary; for the last window, the latest poll of any peer. */
  toS: number
  /** Null when nothing was sent in the window. */
  share: number | null
}

/**
 * Share of bytes across regions in each window between consecutive `boundaries` (seconds, rising;
 * the last window ends at each peer's last poll). A peer's counters at a boundary are those of its
 * last poll at or before it (zero before its first poll: nothing was sent before it started), and
 * the windows' bytes are those differences summed over peers. Peers whose series lack the counters
 * are left out. Shows where a sampler's bytes across regions go: its first seconds, before RTTs
 * are measured, against the rest of the run.
 */
export function interRegionShareWindows(
  peers: ReadonlyArray<{
    series: ReadonlyArray<Pick<SeriesPoint, 't' | 'bytesWithinRegion' | 'bytesAcrossRegions'>>
  }>,
  boundaries: readonly number[],
): ShareWindow[] {
  for (let i = 1; i < boundaries.length; i++) {
    if (!(boundaries[i]! > boundaries[i - 1]!)) throw new RangeError('window boundaries must rise')
  }
  const edges = [...boundaries, Number.POSITIVE_INFINITY]
  let end = boundaries.at(-1) ?? 0
  const across = new Array<number>(boundaries.length).fill(0)
  const total = new Array<number>(boundaries.length).fill(0)
  for (const p of peers) {
    const points = withByteCounters(p.series)
    if (points.length === 0) continue
    end = Math.max(end, points.at(-1)!.t)
    const at = (t: number): [within: number, across: number] => {
      let last: (typeof points)[number] | undefined
      for (const x of points) if (x.t <= t) last = x
      return last === undefined ? [0, 0] : [last.bytesWithinRegion!, last.bytesAcrossRegions!]
    }
    for (let i = 0; i < boundaries.length; i++) {
      const [w0, a0] = at(edges[i]!)
      const [w1, a1] = at(edges[i + 1]!)
      across[i] = across[i]! + a1 - a0
      total[i] = total[i]! + a1 - a0 + w1 - w0
    }
  }
  return boundaries.map((fromS, i) => ({
    fromS,
    toS: i + 1 < boundaries.length ? boundaries[i + 1]! : end,
    share: total[i]! > 0 ? across[i]! / total[i]! : null,
  }))
}

/** `  DOWN at 12.3 s (SIGKILL)` for a peer dead at the end, `  (restarted)` for one that came back. */
function downNote(p: PeerResult): string {
  const last = p.exits?.at(-1)
  if (p.alive === false && p.downAt !== undefined) {
    const how = last === undefined ? '' : last.signal !== null ? ` (${last.signal})` : ` (exit ${last.code})`
    return `  DOWN at ${p.downAt.toFixed(1)} s${how}`
  }
  return (p.exits?.length ?? 0) > 0 ? `  (down ${p.exits!.length}x, restarted)` : ''
}

/** The summary table printed at the end of a run. */
export function formatSummary(r: TestbedResult): string {
  const width = Math.max(6, ...r.peers.map((p) => p.region?.length ?? 0))
  const share = interRegionShare(r.peers)
  const rows = [
    `peer  peerId                  ${'region'.padEnd(width)}  samples  final acc  steps   sent  recv  merges   MiB out   MiB in`,
    ...r.peers.map(
      (p) =>
        `${String(p.index).padStart(4)}  ${p.peerId.slice(-22).padEnd(22)}  ${(p.region ?? '-').padEnd(width)}  ${String(p.trainSamples).padStart(7)}  ` +
        `${fmtAcc(p.finalAccuracy).padStart(9)}  ${String(p.steps).padStart(5)}  ${String(p.modelsSent).padStart(5)}  ` +
        `${String(p.modelsReceived).padStart(4)}  ${String(p.merges).padStart(6)}  ${(p.bytesSent / 2 ** 20).toFixed(1).padStart(8)}  ` +
        `${(p.bytesReceived / 2 ** 20).toFixed(1).padStart(7)}${downNote(p)}`,
    ),
    `mean final accuracy ${fmtAcc(r.meanFinalAccuracy)}, min ${fmtAcc(r.minFinalAccuracy)}` +
      (r.alivePeers !== undefined && r.alivePeers < r.peers.length
        ? ` (over the ${r.alivePeers} peers alive at the end; all ${r.peers.length}: ${fmtAcc(r.meanFinalAccuracyAll)})`
        : '') +
      `, ${r.durationS.toFixed(1)} s${r.reachedTarget ? ' (every peer reached the target)' : ''}`,
    ...(share !== null ? [`bytes across regions: ${(share * 100).toFixed(1)}% of emulated bytes sent`] : []),
    ...(r.attackers !== undefined && r.attackers.length > 0
      ? [formatAttackers(r.attackers, r.peers.length)]
      : []),
  ]
  return rows.join('\n')
}
