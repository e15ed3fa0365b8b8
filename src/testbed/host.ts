/**
 * Several complete daemons in one process (the testbed's `--peers-per-process`): each has its
 * own libp2p node, identity, data dir, model, data share and HTTP status port, and is started by
 * startDaemon exactly as `start` starts one. What a process holds once is shared: the tfjs
 * backend, the loaded code, and the dataset while the daemons start (each then keeps its share).
 */
import { readFile } from 'node:fs/promises'
import { loadDataset } from '../data/registry.ts'
import type { Dataset } from '../data/types.ts'
import type { StartConfig } from '../node/config.ts'
import type { ConnectionTimeouts } from '../node/create-node.ts'
import { type Daemon, type DaemonHooks, startDaemon } from '../node/daemon.ts'
import type { LinkEmulation } from '../node/emulation.ts'
import { HostFileError } from './errors.ts'
import { settleLimited } from './settle-limited.ts'

/** What the testbed writes for one host process: each peer's index and its `start` flags. */
export interface HostFile {
  peers: Array<{ index: number; args: string[] }>
}

/** One daemon of a host: the testbed's peer index, its config and its link emulation. */
export interface HostedPeer {
  index: number
  config: StartConfig
  emulation?: LinkEmulation
}

export interface HostHooks {
  /** Aborts startup: startHost stops what it started and rejects (StartupAbortedError). */
  signal?: AbortSignal
  /** Called as each daemon comes up (the CLI prints the testbed's `ready` line). */
  onReady?: (index: number, daemon: Daemon) => void
  /** Lines for people from each daemon (silent by default). */
  print?: (index: number, line: string) => void
  /** Passed to every daemon (DaemonHooks.beforeTraining). */
  beforeTraining?: () => void
  /** Passed to every daemon (DaemonHooks.malloc). */
  malloc?: string
}

/** Running daemons of one host. */
export interface Host {
  daemons: ReadonlyMap<number, Daemon>
  /** Stops every daemon (each writes its checkpoint); safe to call twice. */
  stop(): Promise<void>
}

/** Reads and checks a host file. HostFileError when it is unreadable or not a list of peers. */
export async function loadHostFile(path: string): Promise<HostFile> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw new HostFileError(`${path}: ${(err as Error).message}`)
  }
  const peers = (parsed as { peers?: unknown })?.peers
  if (!Array.isArray(peers) || peers.length === 0) {
    throw new HostFileError(`${path}: expected {"peers": [{"index": N, "args": [...]}, ...]}, at least one`)
  }
  const seen = new Set<number>()
  for (const p of peers as Array<{ index?: unknown; args?: unknown }>) {
    const { index, args } = p ?? {}
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || seen.has(index)) {
      throw new HostFileError(`${path}: peer index ${String(index)} is not a new non-negative integer`)
    }
    if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) {
      throw new HostFileError(`${path}: peer ${index}: args must be a list of strings`)
    }
    seen.add(index)
  }
  return { peers: peers as HostFile['peers'] }
}

/**
 * Bound on each data-dir step of a hosted daemon. The daemon's own 10 s tells a hung network mount
 * from a local disk; in a host whose other daemons keep the loop and libuv's thread pool busy, a
 * local disk's step took longer (128 peers, 16 per process: DataDirTimeoutError at load 11), and
 * a testbed's data dirs are local by construction.
 */
export const HOSTED_FS_STEP_TIMEOUT_MS = 60_000

/**
 * Bounds on a hosted daemon's dials, handshakes and keep-alive pings. A daemon shares its event
 * loop with the host's others, and a loop late by seconds is the normal state of a big testbed:
 * at 128 peers (16 per process, loops 1-3 s late) libp2p's connection monitor measured pings of
 * 2.5 s on average and aborted connections whose ping passed its 5 s floor, and Noise handshakes
 * ran past their bounds (`EncryptionFailedError` on 56 of 65 dials of one daemon): the
 * connections, then the gossipsub mesh and the views, fell to nothing. The bound that cut the
 * dials was libp2p's 6 s per address, which `dialMs` alone did not lift (`addressDialMs`).
 */
export const HOSTED_CONNECTION_TIMEOUTS: ConnectionTimeouts = {
  // 30 s was not enough with 128 peers on 1 core (loops 4-7 s late at p50): 443 of 551 failed
  // pushes died in the dial, the Noise handshake aborted at its bound, and the peers whose every
  // dial died never received a model (docs/BENCHMARKS.md, Scale).
  dialMs: 60_000,
  addressDialMs: 60_000,
  upgradeMs: 60_000,
  pingMs: 30_000,
  // A host's loops run seconds late: identify had not completed on 28-42 connections a 128-peer
  // run that a retry by the LinkWatch then completed, and such a connection carries no gossipsub.
  identifyMs: 30_000,
  // Every connection is pinged: 16 daemons of 60 connections each made 96 pings a second per host.
  pingEveryMs: 60_000,
}

/**
 * Deadline of a hosted daemon's model push, dial included. In a 128-peer run (16 per process,
 * loops about 1 s late at p50) the daemon's 20 s cut pushes short: a 400 kB push waits for yamux
 * window updates from a receiver just as late. The receivers counted 176 truncated frames against
 * 240 completed pushes, and 6 in the run before 685d2d1 made the 20 s fire reliably
 * (docs/BENCHMARKS.md, Scale). It was 60 s, the exchange's default, until the hosted dial bound
 * became 60 s: a dial that takes its whole bound must leave time to send.
 */
export const HOSTED_PUSH_TIMEOUT_MS = 90_000

/**
 * Silence after which a hosted daemon drops an inbound transfer. The sender shares its loop with
 * its host's others: at 128 peers on 1 core, pushes from a daemon whose loop stalled 7-23 s were
 * cut at the exchange's 10 s (docs/BENCHMARKS.md, Scale). After a stall of the receiver's own
 * loop the exchange reads its sockets once more before it gives up, so this covers the sender's.
 */
export const HOSTED_RECEIVE_IDLE_MS = 30_000

/**
 * Training between yields to the event loop in a hosted daemon (a lone one yields every 10 ms, so
 * a ping or a frame waits at most that long). Hosted, each yield hands the core to the other
 * daemon's model, and on the 2-core machine two models alternating on one core trained 0.70 of one
 * alone; a hosted testbed without gossip made 14 % more steps a second with 50 ms slices than with
 * 10 (means of 5 and 6 runs, alternated; docs/BENCHMARKS.md, CPU overhead). A capped daemon trains in short
 * bursts and is not affected; an uncapped one answers up to this much later, well inside the
 * hosted bounds above.
 */
export const HOSTED_TRAIN_SLICE_MS = 50

/** A loopback address of a running daemon, for the others of its host to bootstrap through. */
function loopbackAddr(daemon: Daemon): string | undefined {
  return daemon.multiaddrs.find((a) => a.includes('/ip4/127.0.0.1/')) ?? daemon.multiaddrs[0]
}

/**
 * Starts the daemons: the first alone, then the rest; every daemon after the first joins
 * through the first (the host's daemons are one site, joining through a local peer), and only
 * the first through its own `bootstrap`. With every daemon of every host dialling the network's
 * one bootstrap peer, that peer's saturated host timed out their Noise handshakes
 * (`EncryptionFailedError`, 48 peers in 3 hosts): most daemons of the other hosts never
 * connected, and their views stayed empty (docs/BENCHMARKS.md, Scale). On any failure every
 * daemon started is stopped and the error is rethrown.
 */
export async function startHost(peers: readonly HostedPeer[], hooks: HostHooks = {}): Promise<Host> {
  if (peers.length === 0) throw new HostFileError('a host needs at least one peer')
  // Held while the daemons start, so the dataset is read once for all of them; emptied after.
  const held: Dataset[] = [...new Set(peers.map((p) => p.config.dataset))].map((d) => loadDataset(d))
  const daemons = new Map<number, Daemon>()
  const stopAll = async () => {
    await Promise.allSettled([...daemons.values()].map((d) => d.stop()))
  }
  const startOne = async (p: HostedPeer, bootstrap: string[]) => {
    const daemonHooks: DaemonHooks = {
      signal: hooks.signal,
      fsTimeoutMs: HOSTED_FS_STEP_TIMEOUT_MS,
      connectionTimeouts: HOSTED_CONNECTION_TIMEOUTS,
      pushTimeoutMs: HOSTED_PUSH_TIMEOUT_MS,
      // The exchange's bound on a whole transfer: an outbound one includes its dial, as a push does.
      transferTimeoutMs: HOSTED_PUSH_TIMEOUT_MS,
      receiveIdleMs: HOSTED_RECEIVE_IDLE_MS,
      trainSliceMs: HOSTED_TRAIN_SLICE_MS,
      emulation: p.emulation,
      print: hooks.print !== undefined ? (line) => hooks.print?.(p.index, line) : undefined,
      beforeTraining: hooks.beforeTraining,
      malloc: hooks.malloc,
    }
    const daemon = await startDaemon({ ...p.config, bootstrap }, daemonHooks)
    daemons.set(p.index, daemon)
    hooks.onReady?.(p.index, daemon)
    return daemon
  }
  try {
    const [first, ...rest] = peers
    const firstDaemon = await startOne(first!, first!.config.bootstrap)
    const boot = loopbackAddr(firstDaemon)
    // One at a time: a daemon's start-up (model init, tfjs kernels) blocks this process's event
    // loop, and 15 at once starved each other's file-system and listen steps past their bounds
    // (128-peer testbed, 16 per process: DataDirTimeoutError on a local disk).
    const results = await settleLimited(rest, 1, (p) =>
      startOne(p, boot === undefined ? p.config.bootstrap : [boot]),
    )
    const failed = results.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  } catch (err) {
    await stopAll()
    throw err
  }
  // Each daemon keeps only its share: the whole dataset may go now.
  held.length = 0
  let stopping: Promise<void> | undefined
  return {
    daemons,
    stop: () => {
      stopping ??= stopAll()
      return stopping
    },
  }
}
