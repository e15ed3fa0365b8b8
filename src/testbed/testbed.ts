/**
 * The local testbed: N real daemon processes on 127.0.0.1 (peer 0 is the
 * bootstrap, the others join through its multiaddr), polled over their HTTP
 * /status, stopped at the end; writes a JSON record of the run. With
 * `--regions` / `--links`, every daemon runs behind the emulated wide-area
 * links of docs/WAN.md (peer ids are created up front to place them in regions).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { TopologyCounters } from '../gossip/topology/topology-service.ts'
import type { Coordinate } from '../gossip/topology/vivaldi.ts'
import type { NodeStatus } from '../node/daemon.ts'
import { UsageError } from '../node/errors.ts'
import { loadOrCreateIdentity } from '../node/identity.ts'
import {
  type AttackerResult,
  type AttackFacility,
  formatAttackers,
  startAttackers,
} from './attack/facility.ts'
import { type ChurnEvent, joinCount, pickPeers, trainRates } from './churn.ts'
import type { TestbedConfig } from './config.ts'
import type { HostFile } from './host.ts'
import { type ReadyLine, untilReady } from './ready.ts'
import { type DownInterval, peerAvailability } from './report/availability.ts'
import { settleLimited } from './settle-limited.ts'
import {
  defaultRegionCounts,
  InvalidRegionSpecError,
  loadWanLinksFlag,
  saveWanLinks,
  testbedLinks,
  type WanLinks,
} from './wan-emulation.ts'

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/gossip-learn.js')
/**
 * Longest wait for a peer's ready line, or for a host's next one: a host starts its daemons one
 * after another, and is stuck only when none comes up for this long. A bound on the whole host
 * (120 s plus 15 s per daemon) stopped a 128-peer start that was slow but moving (16 daemons per
 * host at load 12-14: `host 5 not ready after 345000 ms` with 15 of its 16 up).
 */
const READY_TIMEOUT_MS = 120_000
/**
 * The same bound for a host's next daemon. A host starts its daemons one after another in the
 * loop its running daemons already keep busy, so each start waits behind their work: with the
 * bootstrap in a process of its own (networks form sooner, so the running daemons exchange more
 * while the last ones start) the 16th daemon of a 128-peer run's host took over 120 s.
 */
const HOST_READY_TIMEOUT_MS = 300_000
/**
 * Peer processes (or hosts) starting at once after the bootstrap. A starting daemon spends 10-20 s
 * of CPU on loading (tsx, tfjs, libp2p); 23 started at once on 2 cores each got a twelfth of a
 * core and outlived the ready timeout (24-peer bench:churn: "peer 1 not ready after 120000 ms",
 * load average 29). Twice the cores keeps every core busy without starving each start.
 */
const STARTS_AT_ONCE = Math.max(2, 2 * availableParallelism())
/**
 * The peers' environment. MALLOC_ARENA_MAX=2 (unless set): glibc gives each thread that allocates
 * (libuv's pool, V8's workers, tsx's loader) an arena that keeps what it freed; 2 arenas cut a
 * daemon's resident memory from 160 to 146 MiB with no loss of training speed (docs/BENCHMARKS.md, Memory).
 * Read at each spawn, not at import: `bench:overhead --cpu-prof` sets NODE_OPTIONS after importing this.
 */
export const daemonEnv = (): NodeJS.ProcessEnv => ({
  MALLOC_ARENA_MAX: '2',
  ...process.env,
  FORCE_COLOR: '0',
})
const STOP_GRACE_MS = 15_000

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

interface Peer {
  index: number
  proc: ChildProcess
  dataDir: string
  peerId?: string
  multiaddrs: string[]
  httpPort?: number
  status?: NodeStatus
  /** Over all its answers, when each peer entered its view (epoch ms; the earliest seen). */
  viewSince?: Map<string, number>
  /** The /status request in flight, if any (one at a time per peer). */
  polling?: Promise<void>
  series: SeriesPoint[]
  /** Not running (killed, crashed, or restarting and not ready yet). */
  exited: boolean
  /** When each process became ready and, once it exited, when it ended (epoch ms). */
  spans: Array<{ startMs: number; endMs?: number }>
  exits: Array<{ atMs: number; code: number | null; signal: string | null; churn: boolean }>
  /** Exits already printed. */
  reportedExits: number
  /** Set just before --churn kills it, so the exit is recorded as churn. */
  killing?: boolean
  /** Its process's log; default daemon.log in its data dir. */
  log?: string
  /** With --peers-per-process: the index of the process that hosts it. */
  host?: number
}

export interface TestbedHooks {
  /** Progress lines for people (the CLI passes console.log). */
  print: (line: string) => void
  signal?: AbortSignal
  /**
   * The run so far, after every poll of the peers (the CLI's live table and live page); without
   * it, a progress line is printed every 5 s.
   */
  progress?: (phase: RunPhase, result: TestbedResult) => void
}

/** Per-run extras for every daemon. */
export interface SpawnExtras {
  /** Links file written by the testbed. */
  wanLinks?: string
  /** Partition shares: the initial peers plus every late joiner of --churn. */
  peerCount: number
  /** Each peer's --train-rate by index; absent: uncapped. */
  trainRates?: number[]
}

export function daemonArgs(
  cfg: TestbedConfig,
  index: number,
  dataDir: string,
  extras: SpawnExtras,
  bootstrap?: string,
): string[] {
  const args = [
    BIN,
    'start',
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--http',
    '0',
    '--data-dir',
    dataDir,
    '--dataset',
    cfg.dataset,
    '--model',
    cfg.model,
    '--partition',
    cfg.partition,
    '--peer-index',
    String(index),
    '--peer-count',
    String(extras.peerCount),
    '--seed',
    String(cfg.seed),
    '--merge',
    cfg.merge,
    '--sampler',
    cfg.sampler,
    '--codec',
    cfg.codec,
    '--steps-per-round',
    String(cfg.stepsPerRound),
    '--fanout',
    String(cfg.fanout),
    '--eval-size',
    String(cfg.evalSize),
    '--eval-share',
    String(cfg.evalShare),
    '--status-interval',
    '0',
    '--json-status',
  ]
  if (cfg.hidden !== undefined) args.push('--hidden', String(cfg.hidden))
  if (cfg.roundMs !== undefined) args.push('--round-ms', String(cfg.roundMs))
  if (cfg.initSeed !== undefined) args.push('--init-seed', String(cfg.initSeed))
  if (cfg.randomShare !== undefined) args.push('--random-share', String(cfg.randomShare))
  if (cfg.partners !== undefined) args.push('--partners', String(cfg.partners))
  if (cfg.hungryBoost !== undefined) args.push('--hungry-boost', String(cfg.hungryBoost))
  if (cfg.maxUploadBytesPerS !== undefined) args.push('--max-upload', `${cfg.maxUploadBytesPerS}B`)
  if (cfg.maxInbound !== undefined) args.push('--max-inbound', String(cfg.maxInbound))
  if (cfg.quietInputs !== undefined)
    args.push('--quiet-inputs', cfg.quietInputs === false ? 'off' : String(cfg.quietInputs))
  if (extras.wanLinks !== undefined) args.push('--wan-links', extras.wanLinks)
  const rate = extras.trainRates?.[index]
  if (rate !== undefined) args.push('--train-rate', String(rate))
  if (!cfg.gossip) args.push('--no-gossip')
  if (cfg.defences !== undefined) args.push('--defences', cfg.defences ? 'on' : 'off')
  for (const name of cfg.defencesOff ?? []) args.push('--no-defence', name)
  if (bootstrap !== undefined) args.push('--bootstrap', bootstrap)
  return args
}

/** A peer not started yet (no process; `exited` keeps it out of polls until it is up). */
function idlePeer(index: number, dataDir: string, extra: Partial<Pick<Peer, 'host' | 'log'>> = {}): Peer {
  const peer = {
    index,
    dataDir,
    multiaddrs: [],
    series: [],
    exited: true,
    spans: [],
    exits: [],
    reportedExits: 0,
  }
  return { ...peer, ...extra } as Omit<Peer, 'proc'> as Peer
}

/** Start one daemon and resolve when it prints its ready line (peer id, addresses, HTTP port). */
async function startPeer(
  cfg: TestbedConfig,
  index: number,
  dataDir: string,
  extras: SpawnExtras,
  bootstrap?: string,
): Promise<Peer> {
  const peer = {
    index,
    dataDir,
    multiaddrs: [],
    series: [],
    exited: false,
    spans: [],
    exits: [],
    reportedExits: 0,
  }
  await launch(cfg, peer as Omit<Peer, 'proc'> as Peer, extras, bootstrap)
  return peer as Omit<Peer, 'proc'> as Peer
}

/**
 * Spawn the daemon of `peer` (first start, or a restart from its data dir) and resolve when it
 * prints its ready line; every exit is recorded on the peer.
 */
async function launch(
  cfg: TestbedConfig,
  peer: Peer,
  extras: SpawnExtras,
  bootstrap?: string,
): Promise<void> {
  const { index, dataDir } = peer
  await mkdir(dataDir, { recursive: true })
  const log = createWriteStream(join(dataDir, 'daemon.log'), { flags: 'a' })
  const proc = spawn(process.execPath, daemonArgs(cfg, index, dataDir, extras, bootstrap), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: daemonEnv(),
  })
  proc.stderr?.pipe(log)
  peer.proc = proc
  proc.once('exit', (code, signal) => {
    const atMs = Date.now()
    peer.exited = true
    const span = peer.spans.at(-1)
    if (span !== undefined && span.endMs === undefined && peer.proc === proc) span.endMs = atMs
    peer.exits.push({ atMs, code, signal, churn: peer.killing === true })
    peer.killing = false
  })
  await untilReady(proc, log, {
    what: `peer ${index}`,
    logPath: join(dataDir, 'daemon.log'),
    timeoutMs: READY_TIMEOUT_MS,
    ready: (msg) => {
      markUp(peer, msg)
      return true
    },
  })
}

/** Resident set size of a process in MiB, from /proc (Linux); undefined elsewhere or once it is gone. */
function residentMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) / 1024
  } catch {
    return undefined
  }
}

/** Samples each live peer process's RSS at every poll; sums the last samples of those alive at the end. */
function memoryTracker() {
  const seen = new Map<ChildProcess, { peers: Set<number>; rssMiB: number; maxRssMiB: number }>()
  return {
    sample(peers: readonly Peer[]): void {
      const live = (proc: ChildProcess) => proc.exitCode === null && proc.signalCode === null
      for (const p of peers) {
        if (p.proc === undefined || !live(p.proc)) continue
        let entry = seen.get(p.proc)
        if (entry === undefined) {
          entry = { peers: new Set(), rssMiB: 0, maxRssMiB: 0 }
          seen.set(p.proc, entry)
        }
        entry.peers.add(p.index)
      }
      // Once per process, however many peers it hosts.
      for (const [proc, entry] of seen) {
        const rss = live(proc) ? residentMiB(proc.pid) : undefined
        if (rss === undefined) continue
        entry.rssMiB = rss
        entry.maxRssMiB = Math.max(entry.maxRssMiB, rss)
      }
    },
    summary(): MemorySummary | undefined {
      const alive = [...seen].filter(
        ([proc, e]) => proc.exitCode === null && proc.signalCode === null && e.rssMiB > 0,
      )
      if (alive.length === 0) return undefined
      const processes = alive.map(([, e]) => ({
        peers: [...e.peers].sort((a, b) => a - b),
        rssMiB: Math.round(e.rssMiB * 10) / 10,
        maxRssMiB: Math.round(e.maxRssMiB * 10) / 10,
      }))
      const total = alive.reduce((t, [, e]) => t + e.rssMiB, 0)
      const hosted = processes.reduce((n, p) => n + p.peers.length, 0)
      return {
        processes,
        totalRssMiB: Math.round(total * 10) / 10,
        perPeerRssMiB: Math.round((total / hosted) * 10) / 10,
      }
    },
  }
}

/** A process per peer: peer 0 first (the bootstrap), then the others through it. Returns the bootstrap address. */
async function startProcesses(
  cfg: TestbedConfig,
  base: string,
  extras: SpawnExtras,
  peers: Peer[],
  print: (line: string) => void,
): Promise<string> {
  const first = await startPeer(cfg, 0, join(base, 'peer-0'), extras)
  peers.push(first)
  const boot = loopbackOf(first)
  if (boot === undefined) throw new Error('bootstrap peer printed no multiaddr')
  print(`testbed: bootstrap ${boot}`)
  const rest = await settleLimited(
    Array.from({ length: cfg.peers - 1 }, (_, k) => k + 1),
    STARTS_AT_ONCE,
    (i) => startPeer(cfg, i, join(base, `peer-${i}`), extras, boot),
  )
  for (const r of rest) if (r.status === 'fulfilled') peers.push(r.value)
  const failed = rest.find((r) => r.status === 'rejected')
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  return boot
}

const loopbackOf = (p: Peer): string | undefined =>
  p.multiaddrs.find((a) => a.includes('/ip4/127.0.0.1/')) ?? p.multiaddrs[0]

/**
 * The bootstrap shares its host with at most this many peers: two daemons of one process were
 * 12 ms late at p50 and 42 ms at p99, uncapped (docs/BENCHMARKS.md, CPU overhead).
 */
export const BOOTSTRAP_SHARES_WITH = 1

/**
 * Which peers each host process runs: with more peers than fit in one host, and hosts of more
 * than BOOTSTRAP_SHARES_WITH + 1 peers, peer 0 (the bootstrap, through which the first daemon of
 * every other host joins) in a process of its own, then consecutive groups of `per`. Sharing a
 * loop with 15 training daemons, the bootstrap was 10 s late at p99 and the handshakes of the
 * hosts joining through it took tens of seconds or failed, leaving the last hosts islands
 * (docs/BENCHMARKS.md, Scale). Real networks run their bootstrap peers on machines of their own too.
 * Smaller hosts are consecutive groups from peer 0: 4 peers 2 per process on 2 cores are then 2
 * processes, one a core, not 3 (docs/BENCHMARKS.md, CPU overhead).
 */
export function hostGroups(peers: number, per: number): number[][] {
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k)
  if (peers <= per) return [range(0, peers)]
  const alone = per > BOOTSTRAP_SHARES_WITH + 1
  const groups = alone ? [[0]] : []
  for (let i = alone ? 1 : 0; i < peers; i += per) groups.push(range(i, Math.min(peers, i + per)))
  return groups
}

/**
 * `--peers-per-process N`: the host processes of `hostGroups`, each one `gossip-learn host`
 * process. The first host starts first (its peer 0 is the bootstrap), then the others at once.
 * Returns the bootstrap address.
 */
async function startHosts(
  cfg: TestbedConfig,
  base: string,
  extras: SpawnExtras,
  peers: Peer[],
  print: (line: string) => void,
): Promise<string> {
  const per = cfg.peersPerProcess ?? 1
  const groups: Peer[][] = hostGroups(cfg.peers, per).map((indices, h) =>
    indices.map((i) => idlePeer(i, join(base, `peer-${i}`), { host: h, log: join(base, `host-${h}.log`) })),
  )
  await launchHost(cfg, base, groups[0]!, extras, peers)
  const boot = loopbackOf(groups[0]![0]!)
  if (boot === undefined) throw new Error('bootstrap peer printed no multiaddr')
  print(`testbed: bootstrap ${boot}; ${groups.length} processes of up to ${per} peers`)
  const rest = await settleLimited(groups.slice(1), STARTS_AT_ONCE, (g) =>
    launchHost(cfg, base, g, extras, peers, boot),
  )
  const failed = rest.find((r) => r.status === 'rejected')
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  return boot
}

/**
 * Spawns one host process for `group` (listed in `peers` at once, so a failure stops it) and
 * resolves when every daemon in it printed its ready line; an exit is recorded on each of them.
 */
async function launchHost(
  cfg: TestbedConfig,
  base: string,
  group: Peer[],
  extras: SpawnExtras,
  peers: Peer[],
  bootstrap?: string,
): Promise<void> {
  const h = group[0]!.host!
  for (const p of group) await mkdir(p.dataDir, { recursive: true })
  // The first host's first peer is the bootstrap; the host joins its other peers through it.
  const file: HostFile = {
    peers: group.map((p) => ({
      index: p.index,
      args: daemonArgs(cfg, p.index, p.dataDir, extras, bootstrap).slice(2),
    })),
  }
  const config = join(base, `host-${h}.json`)
  await writeFile(config, `${JSON.stringify(file, null, 2)}\n`)
  const log = createWriteStream(group[0]!.log!, { flags: 'a' })
  const proc = spawn(process.execPath, [BIN, 'host', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: daemonEnv(),
  })
  proc.stderr?.pipe(log)
  for (const p of group) {
    p.proc = proc
    peers.push(p)
  }
  proc.once('exit', (code, signal) => {
    const atMs = Date.now()
    for (const p of group) {
      const span = p.spans.at(-1)
      if (!p.exited && span !== undefined && span.endMs === undefined) span.endMs = atMs
      if (!p.exited) p.exits.push({ atMs, code, signal, churn: false })
      p.exited = true
    }
  })
  const byIndex = new Map(group.map((p) => [p.index, p]))
  let waiting = group.length
  await untilReady(proc, log, {
    what: `host ${h}`,
    logPath: group[0]!.log!,
    timeoutMs: HOST_READY_TIMEOUT_MS,
    ready: (msg) => {
      const peer = msg.index !== undefined ? byIndex.get(msg.index) : undefined
      if (peer === undefined || !peer.exited) return false
      markUp(peer, msg)
      return --waiting === 0
    },
  })
}

/** A daemon's ready line: where it listens, and the start of an up span. */
function markUp(peer: Peer, msg: ReadyLine): void {
  peer.peerId = msg.peerId
  peer.multiaddrs = msg.multiaddrs ?? []
  peer.httpPort = msg.httpPort
  peer.exited = false
  peer.spans.push({ startMs: Date.now() })
}

/**
 * How long a poll round waits for each peer's /status (an answer that comes later is still
 * recorded). A round waits for every peer, so this bounds a round; 2 s left 23 of 128 peers
 * (16 per process, loops 1-3 s late) without a single reading in 300 s.
 */
const POLL_TIMEOUT_MS = 10_000

/**
 * The last poll, whose answers are the run's results, waits longer: at 128 peers a host's 16
 * daemons, loops seconds late, answered none of a run's polls within 10 s (35 peers of one run
 * had no result at all, and counted as having received nothing).
 */
export const FINAL_POLL_TIMEOUT_MS = 60_000

/**
 * Asks `peer` for its status and waits up to `waitMs` for the answer. One request per peer is in
 * flight at a time, bounded by FINAL_POLL_TIMEOUT_MS: a host seconds behind builds and writes
 * every request it reads, abandoned or not, so a fresh one each round while the last is still
 * queued only adds to what it must catch up with (hosts that answered no poll were still pushing
 * models: docs/BENCHMARKS.md, Scale).
 */
async function poll(peer: Peer, t0: number, waitMs = POLL_TIMEOUT_MS): Promise<void> {
  if (peer.exited || peer.httpPort === undefined) return
  peer.polling ??= request(peer, t0).finally(() => {
    peer.polling = undefined
  })
  const inFlight = peer.polling
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([inFlight, new Promise((r) => (timer = setTimeout(r, waitMs)))])
  clearTimeout(timer)
}

/** The run's last poll: a request still in flight settles first, then a fresh one is waited for. */
async function finalPoll(peer: Peer, t0: number): Promise<void> {
  await peer.polling
  await poll(peer, t0, FINAL_POLL_TIMEOUT_MS)
}

async function request(peer: Peer, t0: number): Promise<void> {
  try {
    const res = await fetch(`http://127.0.0.1:${peer.httpPort}/status`, {
      signal: AbortSignal.timeout(FINAL_POLL_TIMEOUT_MS),
    })
    const s = (await res.json()) as NodeStatus
    peer.status = s
    peer.viewSince = earliest(peer.viewSince, s.viewSince)
    peer.series.push({
      t: Math.round((Date.now() - t0) / 100) / 10,
      accuracy: s.lastAccuracy ?? null,
      age: s.age,
      modelsReceived: s.modelsReceived,
      bytesSent: s.bytesSent,
      steps: s.steps,
      loss: s.lastLoss ?? null,
      modelsSent: s.modelsSent,
      bytesReceived: s.bytesReceived,
      merges: s.merges,
      view: s.viewSize,
      connected: s.connectedPeers.length,
      mesh: s.announceMesh,
    })
  } catch {
    // A busy peer may miss a poll; the next one catches up.
  }
}

/** One stop per process: the peers of a host share it, and a second SIGTERM would force its exit. */
const stopping = new WeakMap<ChildProcess, Promise<void>>()

async function stopPeer(peer: Peer): Promise<void> {
  // By the process, not `exited`: a restart still starting up is not ready, but must be stopped.
  const proc = peer.proc
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
  let stop = stopping.get(proc)
  if (stop === undefined) {
    stop = (async () => {
      const exited = once(proc, 'exit')
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS)
      await exited
      clearTimeout(timer)
    })()
    stopping.set(proc, stop)
  }
  await stop
}

const fmtAcc = (a: number | null | undefined): string =>
  a === null || a === undefined ? '  -  ' : a.toFixed(3)
const mean = (xs: number[]): number | null =>
  xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length

/**
 * Creates each peer's identity now (the daemon loads the same key from its data dir) and, when
 * emulation is asked for, writes the links file that places every peer in its region.
 * Regions are dealt round-robin ('interleave'): peer index is data-shard index, and with
 * shards partitions consecutive shards hold neighbouring labels, so blocks of consecutive
 * peers would give each region a skewed label mix and penalise a sampler that stays in-region.
 */
async function prepareWan(
  cfg: TestbedConfig,
  base: string,
): Promise<{ peers: number; links?: WanLinks; path?: string }> {
  if (cfg.regions === undefined && cfg.links === undefined) return { peers: cfg.peers }
  const topology = cfg.links !== undefined ? await loadWanLinksFlag('--links', cfg.links) : undefined
  // --links without --regions: the file's own region sizes set the peer count.
  const peers =
    cfg.regions === undefined && topology !== undefined
      ? defaultRegionCounts(topology).reduce((s, r) => s + r.count, 0)
      : cfg.peers
  if (peers < 1) throw new UsageError('--links: its regions hold no peers; give --regions')
  const peerIds: string[] = []
  for (let i = 0; i < peers; i++) {
    const dir = join(base, `peer-${i}`)
    await mkdir(dir, { recursive: true })
    const { privateKey } = await loadOrCreateIdentity(dir)
    peerIds.push(peerIdFromPrivateKey(privateKey).toString())
  }
  let links: WanLinks
  try {
    links = testbedLinks({ links: topology, regions: cfg.regions, peerIds, order: 'interleave' })
  } catch (err) {
    if (err instanceof InvalidRegionSpecError) throw new UsageError(`--regions: ${err.message}`)
    throw err
  }
  const path = join(base, 'links.json')
  await saveWanLinks(path, links)
  return { peers, links, path }
}

/** What the run has measured so far (or in the end), from the peers' last status. */
function assemble(
  cfg: TestbedConfig,
  startedAt: string,
  durationS: number,
  reachedTarget: boolean,
  links: WanLinks | undefined,
  peers: Peer[],
  t0: number,
  rates?: number[],
  launchedAt?: number,
): TestbedResult {
  const signed = (ms: number) => Math.round((ms - t0) / 100) / 10
  const rel = (ms: number) => Math.max(0, signed(ms))
  const inView = enteredViews(peers)
  const results: PeerResult[] = peers.map((p) => ({
    index: p.index,
    peerId: p.peerId ?? '',
    region: p.status?.region,
    coordinate: p.status?.coordinate,
    bytesSentIntraRegion: p.status?.wan?.bytesSentIntraRegion,
    bytesSentInterRegion: p.status?.wan?.bytesSentInterRegion,
    bytesSentByRegion: p.status?.wan?.bytesSentByRegion,
    sentByCodec: p.status?.sentByCodec,
    receivedByCodec: p.status?.receivedByCodec,
    topology: p.status?.topology,
    eventLoopDelayMs: p.status?.eventLoopDelayMs,
    finalAccuracy: p.status?.lastAccuracy ?? null,
    modelsSent: p.status?.modelsSent ?? 0,
    modelsReceived: p.status?.modelsReceived ?? 0,
    bytesSent: p.status?.bytesSent ?? 0,
    bytesReceived: p.status?.bytesReceived ?? 0,
    merges: p.status?.merges ?? 0,
    steps: p.status?.steps ?? 0,
    trainSamples: p.status?.partition.samples ?? 0,
    rejected: p.status?.rejected,
    modelsReceivedFrom: p.status?.modelsReceivedFrom,
    modelsWanted: p.status?.modelsWanted,
    replies: p.status?.replies,
    pushesFailed: p.status?.pushesFailed,
    pushesToHungry: p.status?.pushesToHungry,
    pushesBusy: p.status?.pushesBusy,
    pushFailuresByReason: p.status?.pushFailuresByReason,
    pushFailureMessages: p.status?.pushFailureMessages,
    suspectPeers: p.status?.suspectPeers,
    defences: p.status?.defences,
    connectionHealth: p.status?.links,
    keepAlive: p.status?.keepAlive,
    alive: !p.exited,
    up: p.spans.map((s) => ({ from: rel(s.startMs), to: s.endMs === undefined ? null : rel(s.endMs) })),
    exits: p.exits.map((e) => ({ atS: rel(e.atMs), code: e.code, signal: e.signal, churn: e.churn })),
    ...(p.exited && p.exits.length > 0 ? { downAt: rel(p.exits.at(-1)!.atMs) } : {}),
    ...(rates?.[p.index] !== undefined ? { trainRate: rates[p.index] } : {}),
    ...(p.host !== undefined ? { host: p.host } : {}),
    ...(p.spans.length > 0 ? { readyAtS: signed(p.spans[0]!.startMs) } : {}),
    ...(p.peerId !== undefined && inView.has(p.peerId) ? { inViewAtS: signed(inView.get(p.peerId)!) } : {}),
    series: p.series,
  }))
  for (const r of results) Object.assign(r, peerAvailability(r, cfg.peers, Math.round(durationS * 10) / 10))
  const accuracies = (rs: PeerResult[]) =>
    rs.map((r) => r.finalAccuracy).filter((a): a is number => a !== null)
  // Means over the peers alive at the end: a dead peer's last accuracy is stale.
  const finals = accuracies(results.filter((r) => r.alive === true))
  return {
    config: { ...cfg, startedAt },
    durationS,
    ...(launchedAt !== undefined ? { startupS: Math.round((t0 - launchedAt) / 100) / 10 } : {}),
    reachedTarget,
    meanFinalAccuracy: mean(finals),
    minFinalAccuracy: finals.length > 0 ? Math.min(...finals) : null,
    meanFinalAccuracyAll: mean(accuracies(results)),
    alivePeers: results.filter((r) => r.alive === true).length,
    ...(links !== undefined ? { links } : {}),
    peers: results,
  }
}

/** `seen` with each entry of `next` whose time is new or earlier (a copy; `seen` may be absent). */
export function earliest(
  seen: ReadonlyMap<string, number> | undefined,
  next: Record<string, number> | undefined,
): Map<string, number> {
  const out = new Map(seen)
  for (const [id, at] of Object.entries(next ?? {})) {
    const known = out.get(id)
    if (known === undefined || at < known) out.set(id, at)
  }
  return out
}

/** For each peer id, the earliest time (ms since the epoch) some other peer's answers say it entered that peer's view. */
export function enteredViews(
  peers: ReadonlyArray<{ peerId?: string; viewSince?: ReadonlyMap<string, number> }>,
): Map<string, number> {
  const first = new Map<string, number>()
  for (const p of peers) {
    for (const [id, at] of p.viewSince ?? []) {
      const known = first.get(id)
      if (id !== p.peerId && (known === undefined || at < known)) first.set(id, at)
    }
  }
  return first
}

/** Where the HTML report goes: --report, else next to --json (same name, .html), else nowhere. */
export function reportPath(cfg: Pick<TestbedConfig, 'json' | 'report'>): string | undefined {
  if (cfg.report !== undefined) return cfg.report
  if (cfg.json === undefined) return undefined
  return `${cfg.json.replace(/\.json$/i, '')}.html`
}

/**
 * Run the testbed (then, with `baseline`, the same peers without gossip), write the JSON and the
 * HTML report when asked; always stops every process it started, also on error or abort.
 */
export async function runTestbed(config: TestbedConfig, hooks: TestbedHooks): Promise<TestbedResult> {
  const result = await runOnce(config, hooks, 'gossip')
  if (config.baseline === true && config.gossip && hooks.signal?.aborted !== true) {
    hooks.print('testbed: baseline run: the same peers, shares and duration, no gossip')
    const keepDir = config.keepDir !== undefined ? join(config.keepDir, 'baseline') : undefined
    result.baseline = await runOnce({ ...config, gossip: false, baseline: false, keepDir }, hooks, 'baseline')
  }
  if (config.json !== undefined) {
    await mkdir(dirname(resolve(config.json)), { recursive: true })
    await writeFile(config.json, `${JSON.stringify(result, null, 2)}\n`)
  }
  const report = reportPath(config)
  if (report !== undefined) {
    const { renderReport } = await import('./report/index.ts')
    await mkdir(dirname(resolve(report)), { recursive: true })
    await writeFile(report, renderReport(result))
  }
  return result
}

/** One run: start the peers, poll them for the duration, stop them. */
async function runOnce(config: TestbedConfig, hooks: TestbedHooks, phase: RunPhase): Promise<TestbedResult> {
  const startedAt = new Date().toISOString()
  const base =
    config.keepDir !== undefined
      ? resolve(config.keepDir)
      : await mkdtemp(join(tmpdir(), 'gossip-learn-testbed-'))
  let cfg = config
  await mkdir(base, { recursive: true })
  const peers: Peer[] = []
  let attack: AttackFacility | undefined
  // Restarts and late joins of --churn start in the background while the others are polled.
  const starting = new Set<Promise<void>>()
  let churnCtx: ChurnContext | undefined
  const stopAll = () => Promise.all([attack?.stop(), ...peers.map(stopPeer)])
  const onAbort = () => void stopAll()
  hooks.signal?.addEventListener('abort', onAbort)
  try {
    const wan = await prepareWan(cfg, base)
    cfg = { ...cfg, peers: wan.peers }
    const joins = joinCount(cfg.churn ?? [])
    if ((cfg.peersPerProcess ?? 1) > 1 && (cfg.churn?.length ?? 0) > 0) {
      throw new UsageError('--churn needs --peers-per-process 1: it kills processes, not peers')
    }
    if (joins > 0 && wan.links !== undefined) {
      // The links file places every peer id up front; a late joiner would have no region.
      throw new UsageError('--churn join cannot be combined with --regions/--links')
    }
    const rates =
      cfg.trainRate !== undefined ? trainRates(cfg.trainRate, cfg.peers + joins, cfg.seed) : undefined
    const extras: SpawnExtras = { wanLinks: wan.path, peerCount: cfg.peers + joins, trainRates: rates }
    hooks.print(
      `testbed: starting ${cfg.peers} peers (${cfg.model}, ${cfg.partition}, merge ${cfg.merge}, sampler ${cfg.sampler}` +
        `${cfg.gossip ? '' : ', no gossip'}) in ${base}`,
    )
    if (wan.links !== undefined) {
      const regions = Object.values(wan.links.peers ?? {})
      hooks.print(
        `testbed: emulated regions (interleaved by peer index) ${regions.join(' ')}; links ${wan.path}`,
      )
    }
    const launchedAt = Date.now()
    const boot =
      (cfg.peersPerProcess ?? 1) > 1
        ? await startHosts(cfg, base, extras, peers, hooks.print)
        : await startProcesses(cfg, base, extras, peers, hooks.print)
    peers.sort((a, b) => a.index - b.index)
    if (cfg.gossip && (cfg.byzantine?.length ?? 0) > 0) {
      // Attackers join like any peer, through the bootstrap, once the honest peers are up.
      attack = await startAttackers(cfg, base, boot, { intervalMs: cfg.attackIntervalMs, fanout: cfg.fanout })
      hooks.print(`testbed: attackers ready (${cfg.byzantine!.map((g) => `${g.count}:${g.mode}`).join(',')})`)
    }
    hooks.print(`testbed: all ${peers.length} peers ready; running for ${cfg.durationS} s`)

    const memory = memoryTracker()
    const t0 = Date.now()
    let reachedTarget = false
    let lastPrint = 0
    const churn = cfg.churn ?? []
    let nextEvent = 0
    let joined = 0
    churnCtx = { cfg, extras, peers, starting, print: hooks.print, base }
    while (Date.now() - t0 < cfg.durationS * 1000 && hooks.signal?.aborted !== true) {
      const tick = Date.now()
      while (nextEvent < churn.length && churn[nextEvent]!.atS * 1000 <= tick - t0) {
        joined += await applyChurn(churnCtx, churn[nextEvent]!, nextEvent, cfg.peers + joined)
        nextEvent++
      }
      await Promise.all(peers.map((p) => poll(p, t0)))
      memory.sample(peers)
      reportExits(peers, t0, hooks.print)
      attack?.observe(peers, (Date.now() - t0) / 1000)
      const live = peers.filter((p) => !p.exited)
      const accs = peers.map((p) => (p.exited ? undefined : p.status?.lastAccuracy))
      if (
        cfg.targetAccuracy !== undefined &&
        live.length > 0 &&
        live.every(
          (p) => p.status?.lastAccuracy !== undefined && p.status.lastAccuracy >= cfg.targetAccuracy!,
        )
      ) {
        reachedTarget = true
        break
      }
      if (hooks.progress !== undefined) {
        hooks.progress(
          phase,
          assemble(cfg, startedAt, (Date.now() - t0) / 1000, false, wan.links, peers, t0, rates, launchedAt),
        )
      } else if (Date.now() - lastPrint >= 5000) {
        lastPrint = Date.now()
        const known = accs.filter((a): a is number => a !== undefined)
        const rx = peers.reduce((s, p) => s + (p.status?.modelsReceived ?? 0), 0)
        const mb = peers.reduce((s, p) => s + (p.status?.bytesSent ?? 0), 0) / 2 ** 20
        hooks.print(
          `t=${String(Math.round((Date.now() - t0) / 1000)).padStart(4)}s  acc mean ${fmtAcc(mean(known))}  ` +
            `[${accs.map(fmtAcc).join(' ')}]  models rx ${rx}  sent ${mb.toFixed(1)} MiB`,
        )
      }
      await new Promise((r) => setTimeout(r, Math.max(0, cfg.pollMs - (Date.now() - tick))))
    }
    await Promise.all(peers.map((p) => finalPoll(p, t0)))
    memory.sample(peers)
    reportExits(peers, t0, hooks.print)
    const durationS = (Date.now() - t0) / 1000
    attack?.observe(peers, durationS)

    const result = assemble(cfg, startedAt, durationS, reachedTarget, wan.links, peers, t0, rates, launchedAt)
    const summary = memory.summary()
    if (summary !== undefined) result.memory = summary
    if (attack !== undefined) {
      await attack.stop() // each attacker prints its final counts as it stops
      result.attackers = attack.results(peers)
    }
    return result
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort)
    if (churnCtx !== undefined) churnCtx.stopping = true
    await stopAll()
    await Promise.allSettled(starting)
    await stopAll() // a restart that became ready while the others stopped
    if (cfg.keepDir === undefined) await rm(base, { recursive: true, force: true })
  }
}

interface ChurnContext {
  cfg: TestbedConfig
  extras: SpawnExtras
  peers: Peer[]
  starting: Set<Promise<void>>
  print: (line: string) => void
  base: string
  /** Set once the run ends: a restart or join cut short by the stop is not a failure to report. */
  stopping?: boolean
}

/** A live peer's loopback multiaddr to bootstrap through (peer 0 may be dead). */
function liveBootstrap(peers: readonly Peer[]): string | undefined {
  for (const p of peers) {
    if (p.exited) continue
    const a = p.multiaddrs.find((m) => m.includes('/ip4/127.0.0.1/')) ?? p.multiaddrs[0]
    if (a !== undefined) return a
  }
  return undefined
}

/** Prints each exit not printed yet. */
function reportExits(peers: readonly Peer[], t0: number, print: (line: string) => void): void {
  for (const p of peers) {
    for (const e of p.exits.slice(p.reportedExits)) {
      const how = e.signal !== null ? `signal ${e.signal}` : `code ${e.code}`
      print(
        `testbed: peer ${p.index} exited (${how}${e.churn ? ', --churn' : ''}) at t=${((e.atMs - t0) / 1000).toFixed(1)}s; see ${p.log ?? join(p.dataDir, 'daemon.log')}`,
      )
    }
    p.reportedExits = p.exits.length
  }
}

/**
 * Applies one --churn event: kills (SIGKILL, waited for), or starts restarts / late joiners in
 * the background through any live peer; late joiners take indices from `nextIndex`. Returns
 * how many joiners it started.
 */
async function applyChurn(
  ctx: ChurnContext,
  e: ChurnEvent,
  eventIndex: number,
  nextIndex: number,
): Promise<number> {
  const { cfg, peers, print } = ctx
  const launchIn = (peer: Peer, what: 'restart' | 'join') => {
    const boot = liveBootstrap(peers)
    const p = launch(cfg, peer, ctx.extras, boot)
      .then(() => print(`testbed: peer ${peer.index} ${what}ed (${peer.peerId})`))
      .catch((err: Error) => {
        if (ctx.stopping !== true) print(`testbed: peer ${peer.index} failed to ${what}: ${err.message}`)
      })
      .finally(() => ctx.starting.delete(p))
    ctx.starting.add(p)
  }
  if (e.action === 'kill') {
    const running = peers.filter((p) => !p.exited).map((p) => p.index)
    const victims = pickPeers(running, e.amount, cfg.seed, eventIndex)
    print(`testbed: churn: killing peers ${victims.join(' ')} (SIGKILL)`)
    await Promise.all(
      victims.map((i) => {
        const peer = peers.find((p) => p.index === i)!
        const exited = once(peer.proc, 'exit')
        peer.killing = true
        peer.proc.kill('SIGKILL')
        return exited
      }),
    )
    return 0
  }
  if (e.action === 'restart') {
    // Down and not being restarted already (a restart's process runs before it is ready).
    const down = (p: Peer) =>
      p.exited && p.proc !== undefined && (p.proc.exitCode !== null || p.proc.signalCode !== null)
    const dead = peers.filter(down).map((p) => p.index)
    const chosen = pickPeers(dead, e.amount, cfg.seed, eventIndex)
    print(`testbed: churn: restarting peers ${chosen.length > 0 ? chosen.join(' ') : '(none dead)'}`)
    for (const i of chosen) launchIn(peers.find((p) => p.index === i)!, 'restart')
    return 0
  }
  print(`testbed: churn: ${e.amount} late joiner(s) starting`)
  for (let k = 0; k < e.amount; k++) {
    const index = nextIndex + k
    const peer = idlePeer(index, join(ctx.base, `peer-${index}`))
    launchIn(peer, 'join')
    // Polled (and in the results) once it has a process: until then `exited` keeps it idle.
    peers.push(peer)
  }
  return e.amount
}

/** Share of the emulated bytes that crossed regions, or null without emulation. */
export function interRegionShare(peers: readonly PeerResult[]): number | null {
  const inter = peers.reduce((s, p) => s + (p.bytesSentInterRegion ?? 0), 0)
  const total = inter + peers.reduce((s, p) => s + (p.bytesSentIntraRegion ?? 0), 0)
  return total > 0 ? inter / total : null
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
