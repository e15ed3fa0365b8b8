/**
 * The testbed's side of `--byzantine K:MODE`: start the attacker processes (each joins through
 * the bootstrap multiaddr like any peer), follow their JSON status lines, watch the honest peers'
 * /status `refusedPeers` for when each attacker is refused, and report per attacker.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LEARN_DEFAULTS } from '../../node/config.ts'
import { loadOrCreateIdentity } from '../../node/identity.ts'
import { hashSeed } from '../../util/rng.ts'
import type { TestbedConfig } from '../config.ts'
import { type AttackerProcessConfig, attackerArgv } from './args.ts'
import type { AttackerStats } from './attacker.ts'
import { ATTACK_STATUS_INTERVAL_MS, DEFAULT_ATTACK_FANOUT, DEFAULT_ATTACK_INTERVAL_MS } from './constants.ts'
import { type AttackMode, expandAttackers } from './modes.ts'

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), 'main.ts')
const READY_TIMEOUT_MS = 120_000
const STOP_GRACE_MS = 10_000

/** When one honest peer was first seen refusing an attacker. */
export interface Refusal {
  /** The honest peer's testbed index and id. */
  peer: number
  peerId: string
  /** Seconds since the run started (every peer up). */
  atS: number
  /** Models the attacker had pushed to that peer by its last status line before the refusal was seen. */
  pushesBefore: number
}

/** One attacker in the testbed's JSON. */
export interface AttackerResult {
  /** Attacker index (0..K-1), not a peer index: attackers are not among `peers`. */
  index: number
  peerId: string
  mode: AttackMode
  modelsPushed: number
  pushesStarted: number
  pushFailures: number
  modelsReceived: number
  /** Completed pushes by honest peer index ('?' for peers that are not honest testbed peers). */
  pushedTo: Record<string, number>
  lastPushedAge?: number
  /** label-flip: its learner's steps and accuracy. */
  steps?: number
  lastAccuracy?: number
  /** Honest peers that refused it, in the order they did. */
  refusedBy: Refusal[]
  /** When the first / every honest peer refused it (s), or null. */
  firstRefusedAtS: number | null
  allRefusedAtS: number | null
}

/** The honest peers as the testbed polls them. */
export interface HonestView {
  index: number
  peerId?: string
  status?: { refusedPeers?: Array<{ peerId: string }> }
}

/** What the testbed knows of one attacker: its last status line and the refusals seen so far. */
export interface TrackedAttacker {
  index: number
  mode: AttackMode
  peerId?: string
  stats?: AttackerStats
  /** By honest peer index. */
  refusedBy: Map<number, Refusal>
}

interface AttackerProcess extends TrackedAttacker {
  proc: ChildProcess
  dataDir: string
  exited: boolean
}

/** Record, for every attacker, the honest peers whose /status lists it as refused for the first time at `tS`. */
export function observeRefusals(
  attackers: readonly TrackedAttacker[],
  honest: readonly HonestView[],
  tS: number,
): void {
  for (const h of honest) {
    const refused = new Set((h.status?.refusedPeers ?? []).map((r) => r.peerId))
    for (const a of attackers) {
      if (a.peerId === undefined || a.refusedBy.has(h.index) || !refused.has(a.peerId)) continue
      a.refusedBy.set(h.index, {
        peer: h.index,
        peerId: h.peerId ?? '',
        atS: tS,
        pushesBefore: h.peerId === undefined ? 0 : (a.stats?.pushedTo[h.peerId] ?? 0),
      })
    }
  }
}

/** One attacker's entry in the testbed JSON (pushes keyed by honest peer index). */
export function attackerResult(a: TrackedAttacker, honest: readonly HonestView[]): AttackerResult {
  const indexOf = new Map(honest.map((h) => [h.peerId, h.index]))
  const s = a.stats
  const refusedBy = [...a.refusedBy.values()].sort((x, y) => x.atS - y.atS || x.peer - y.peer)
  const pushedTo: Record<string, number> = {}
  for (const [id, n] of Object.entries(s?.pushedTo ?? {})) {
    const key = String(indexOf.get(id) ?? '?')
    pushedTo[key] = (pushedTo[key] ?? 0) + n
  }
  return {
    index: a.index,
    peerId: a.peerId ?? '',
    mode: a.mode,
    modelsPushed: s?.modelsPushed ?? 0,
    pushesStarted: s?.pushesStarted ?? 0,
    pushFailures: s?.pushFailures ?? 0,
    modelsReceived: s?.modelsReceived ?? 0,
    pushedTo,
    lastPushedAge: s?.lastPushedAge,
    steps: s?.steps,
    lastAccuracy: s?.lastAccuracy,
    refusedBy,
    firstRefusedAtS: refusedBy[0]?.atS ?? null,
    allRefusedAtS:
      honest.length > 0 && refusedBy.length >= honest.length ? refusedBy[refusedBy.length - 1]!.atS : null,
  }
}

/** The running attackers of one testbed run. */
export interface AttackFacility {
  readonly count: number
  /** Call after each poll of the honest peers: records refusals first seen now. */
  observe(honest: readonly HonestView[], tS: number): void
  /** Per-attacker results so far. */
  results(honest: readonly HonestView[]): AttackerResult[]
  /** True when an attacker process died during the run. */
  exited(): boolean
  /** SIGTERM every attacker (each prints its last status line), SIGKILL after a grace period. */
  stop(): Promise<void>
}

/** Extra settings of the attackers beyond the testbed's own. */
export interface AttackOptions {
  /** Crafting attackers push this often (ms). */
  intervalMs?: number
  /** Peers pushed to per tick. */
  fanout?: number
}

function attackerConfig(
  cfg: TestbedConfig,
  index: number,
  mode: AttackMode,
  dataDir: string,
  bootstrap: string,
  options: AttackOptions,
): AttackerProcessConfig {
  return {
    mode,
    bootstrap: [bootstrap],
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dataDir,
    dataset: cfg.dataset,
    model: cfg.model,
    hidden: cfg.hidden,
    partition: cfg.partition,
    // label-flip trains on an honest peer's share (flipped); the others never train.
    peerIndex: index % cfg.peers,
    peerCount: cfg.peers,
    seed: cfg.seed,
    // Same seeds run after run: attacker i of a testbed seed always draws the same choices.
    attackSeed: hashSeed('attack', cfg.seed, index),
    intervalMs: options.intervalMs ?? DEFAULT_ATTACK_INTERVAL_MS,
    fanout: options.fanout ?? DEFAULT_ATTACK_FANOUT,
    stepsPerRound: cfg.stepsPerRound,
    // label-flip trains like an honest device of the testbed (the base rate, never a straggler's).
    ...(cfg.trainRate !== undefined ? { trainRate: cfg.trainRate.rate } : {}),
    batchSize: LEARN_DEFAULTS.batchSize,
    learningRate: LEARN_DEFAULTS.learningRate,
    evalSize: cfg.evalSize,
    codec: cfg.codec,
    statusIntervalMs: ATTACK_STATUS_INTERVAL_MS,
  }
}

async function startOne(config: AttackerProcessConfig, index: number): Promise<AttackerProcess> {
  await mkdir(config.dataDir!, { recursive: true })
  const log = createWriteStream(join(config.dataDir!, 'attacker.log'))
  const tsx = import.meta.resolve('tsx')
  const proc = spawn(process.execPath, ['--import', tsx, MAIN, ...attackerArgv(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  })
  proc.stderr?.pipe(log)
  const a: AttackerProcess = {
    index,
    mode: config.mode,
    proc,
    dataDir: config.dataDir!,
    exited: false,
    refusedBy: new Map(),
  }
  proc.once('exit', () => {
    a.exited = true
  })
  const lines = createInterface({ input: proc.stdout! })
  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`attacker ${index} not ready after ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    )
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`attacker ${index} exited with code ${code}; see ${join(a.dataDir, 'attacker.log')}`))
    })
    lines.on('line', (line) => {
      log.write(`${line}\n`)
      let msg: { event?: string; peerId?: string } & Partial<AttackerStats>
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      if (msg.event === 'ready') {
        a.peerId = msg.peerId
        clearTimeout(timer)
        resolveReady()
      } else if (msg.event === 'status') {
        a.stats = msg as AttackerStats
      }
    })
  })
  try {
    await ready
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
  return a
}

async function stopOne(a: AttackerProcess): Promise<void> {
  if (a.exited) return
  // 'close' comes after stdout is drained: the last status line has been read by then.
  const exited = once(a.proc, 'close')
  a.proc.kill('SIGTERM')
  const timer = setTimeout(() => a.proc.kill('SIGKILL'), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}

/**
 * Start the attackers `cfg.byzantine` asks for, joining through `bootstrap`; their data dirs and
 * logs go to `<base>/attacker-<i>`. Resolves once every one printed its ready line.
 */
export async function startAttackers(
  cfg: TestbedConfig,
  base: string,
  bootstrap: string,
  options: AttackOptions = {},
): Promise<AttackFacility> {
  const modes = expandAttackers(cfg.byzantine ?? [])
  const attackers: AttackerProcess[] = []
  // Identities first, so that every attacker knows its fellows and spares them: attackers collude.
  const dirs = modes.map((_, i) => join(base, `attacker-${i}`))
  const ids: string[] = []
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true })
    ids.push(peerIdFromPrivateKey((await loadOrCreateIdentity(dir)).privateKey).toString())
  }
  const started = await Promise.allSettled(
    modes.map((mode, i) =>
      startOne(
        {
          ...attackerConfig(cfg, i, mode, dirs[i]!, bootstrap, options),
          spare: ids.filter((_, j) => j !== i),
        },
        i,
      ),
    ),
  )
  for (const r of started) if (r.status === 'fulfilled') attackers.push(r.value)
  const stop = () => Promise.all(attackers.map(stopOne)).then(() => {})
  const failed = started.find((r) => r.status === 'rejected')
  if (failed !== undefined) {
    await stop()
    throw (failed as PromiseRejectedResult).reason
  }
  attackers.sort((x, y) => x.index - y.index)

  return {
    count: attackers.length,
    observe: (honest, tS) => observeRefusals(attackers, honest, tS),
    results: (honest) => attackers.map((a) => attackerResult(a, honest)),
    exited: () => attackers.some((a) => a.exited),
    stop,
  }
}

/** The attackers' lines of the testbed summary: mode, pushes, and when the honest peers refused each. */
export function formatAttackers(attackers: readonly AttackerResult[], honestPeers: number): string {
  const sec = (s: number | null): string => (s === null ? '-' : `${s.toFixed(0)} s`)
  const rows = [
    'attacker  peerId                  mode        pushed  failed  recv  refused by  first    all',
    ...attackers.map(
      (a) =>
        `${String(a.index).padStart(8)}  ${a.peerId.slice(-22).padEnd(22)}  ${a.mode.padEnd(10)}  ` +
        `${String(a.modelsPushed).padStart(6)}  ${String(a.pushFailures).padStart(6)}  ${String(a.modelsReceived).padStart(4)}  ` +
        `${`${a.refusedBy.length}/${honestPeers}`.padStart(10)}  ${sec(a.firstRefusedAtS).padStart(5)}  ${sec(a.allRefusedAtS).padStart(5)}`,
    ),
  ]
  return rows.join('\n')
}
