/**
 * Starting and stopping the testbed's daemon processes: one process per peer, or with
 * `--peers-per-process` host processes of several daemons (`gossip-learn host`). Every start
 * resolves on the daemon's ready line; every exit is recorded on its peers.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { NodeStatus } from '../node/daemon.ts'
import type { TestbedConfig } from './config.ts'
import type { HostFile } from './host.ts'
import { type ReadyLine, untilReady } from './ready.ts'
import type { SeriesPoint } from './result.ts'
import { settleLimited } from './settle-limited.ts'

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
 * The launcher caps the arenas itself too (bin/allocator.js); the variable also covers a machine
 * where its optional FFI dependency did not install.
 * Read at each spawn, not at import: `bench:overhead --cpu-prof` sets NODE_OPTIONS after importing this.
 */
export const daemonEnv = (): NodeJS.ProcessEnv => ({
  MALLOC_ARENA_MAX: '2',
  ...process.env,
  FORCE_COLOR: '0',
})
const STOP_GRACE_MS = 15_000

/** A peer of the run: its process, where it listens, and what its polls have read. */
export interface Peer {
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
    // Our stdin pipe closes when this process dies, SIGKILL included: no orphan keeps training.
    '--stop-on-stdin-close',
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
export function idlePeer(
  index: number,
  dataDir: string,
  extra: Partial<Pick<Peer, 'host' | 'log'>> = {},
): Peer {
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
export async function startPeer(
  cfg: TestbedConfig,
  index: number,
  dataDir: string,
  extras: SpawnExtras,
  bootstrap?: string,
): Promise<Peer> {
  // Running from the spawn on (an idle peer is not): its exit while starting is recorded as such.
  const peer = { ...idlePeer(index, dataDir), exited: false }
  await launch(cfg, peer, extras, bootstrap)
  return peer
}

/**
 * Spawn the daemon of `peer` (first start, or a restart from its data dir) and resolve when it
 * prints its ready line; every exit is recorded on the peer.
 */
export async function launch(
  cfg: TestbedConfig,
  peer: Peer,
  extras: SpawnExtras,
  bootstrap?: string,
): Promise<void> {
  const { index, dataDir } = peer
  await mkdir(dataDir, { recursive: true })
  const log = createWriteStream(join(dataDir, 'daemon.log'), { flags: 'a' })
  const proc = spawn(process.execPath, daemonArgs(cfg, index, dataDir, extras, bootstrap), {
    stdio: ['pipe', 'pipe', 'pipe'],
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

/** A process per peer: peer 0 first (the bootstrap), then the others through it. Returns the bootstrap address. */
export async function startProcesses(
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

export const loopbackOf = (p: Peer): string | undefined =>
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
export async function startHosts(
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
    stdio: ['pipe', 'pipe', 'pipe'],
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
export function markUp(peer: Peer, msg: ReadyLine): void {
  peer.peerId = msg.peerId
  peer.multiaddrs = msg.multiaddrs ?? []
  peer.httpPort = msg.httpPort
  peer.exited = false
  peer.spans.push({ startMs: Date.now() })
}

/** One stop per process: the peers of a host share it, and a second SIGTERM would force its exit. */
const stopping = new WeakMap<ChildProcess, Promise<void>>()

export async function stopPeer(peer: Peer): Promise<void> {
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
