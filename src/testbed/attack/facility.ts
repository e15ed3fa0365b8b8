/**
 * The testbed's side of `--byzantine K:MODE`: start the attackers, all hosted by one process (each
 * with its own libp2p node and identity, joining through the bootstrap multiaddr like any peer),
 * follow their JSON status lines, watch the honest peers' /status `refusedPeers` for when each
 * attacker is refused, and report per attacker.
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
import { type AttackerProcessConfig, hostedAttackersArgv } from './args.ts'
import type { AttackerStats } from './attacker.ts'
import { ATTACK_STATUS_INTERVAL_MS, DEFAULT_ATTACK_FANOUT, DEFAULT_ATTACK_INTERVAL_MS } from './constants.ts'
import { type AttackMode, expandAttackers } from './modes.ts'

const HERE = fileURLToPath(import.meta.url)
/**
 * The attackers' entry beside this module: compiled in dist/ (the CLI once built, as after `npm
 * ci`), where it runs on plain node; TypeScript in src/ (tests, scripts, an unbuilt checkout),
 * where it needs tsx. A fixed `main.ts` made every `testbed --byzantine` of a built CLI fail.
 */
const COMPILED = HERE.endsWith('.js')
const MAIN = resolve(dirname(HERE), COMPILED ? 'main.js' : 'main.ts')
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

interface HostedAttacker extends TrackedAttacker {
  dataDir: string
}

/** The one process that hosts every attacker of a testbed. */
interface AttackerHost {
  proc: ChildProcess
  exited: boolean
  attackers: HostedAttacker[]
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
    ...(cfg.roundMs !== undefined ? { roundMs: cfg.roundMs } : {}),
    // label-flip trains like an honest device of the testbed (the base rate, never a straggler's).
    ...(cfg.trainRate !== undefined ? { trainRate: cfg.trainRate.rate } : {}),
    batchSize: LEARN_DEFAULTS.batchSize,
    learningRate: LEARN_DEFAULTS.learningRate,
    evalSize: cfg.evalSize,
    codec: cfg.codec,
    statusIntervalMs: ATTACK_STATUS_INTERVAL_MS,
  }
}

/**
 * Spawn one process hosting the attackers of `configs` (their data dirs made by the caller) and
 * resolve once each printed its ready line; its lines (each with the attacker's `slot`) go to `log`.
 */
async function startHost(configs: readonly AttackerProcessConfig[], log: string): Promise<AttackerHost> {
  const out = createWriteStream(log)
  const loader = COMPILED ? [] : ['--import', import.meta.resolve('tsx')]
  const proc = spawn(process.execPath, [...loader, MAIN, ...hostedAttackersArgv(configs)], {
    // A pipe the attackers read until it closes: they do not outlive a killed testbed.
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  })
  proc.stderr?.pipe(out)
  const host: AttackerHost = {
    proc,
    exited: false,
    attackers: configs.map((c, index) => ({
      index,
      mode: c.mode,
      dataDir: c.dataDir!,
      refusedBy: new Map(),
    })),
  }
  proc.once('exit', () => {
    host.exited = true
  })
  const lines = createInterface({ input: proc.stdout! })
  let ready = 0
  const allReady = new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`${configs.length - ready} attackers not ready after ${READY_TIMEOUT_MS} ms; see ${log}`),
        ),
      READY_TIMEOUT_MS,
    )
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the attackers' process exited with code ${code}; see ${log}`))
    })
    lines.on('line', (line) => {
      out.write(`${line}\n`)
      let msg: { event?: string; slot?: number; peerId?: string } & Partial<AttackerStats>
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      const a = host.attackers[msg.slot ?? 0]
      if (a === undefined) return
      if (msg.event === 'ready') {
        a.peerId = msg.peerId
        if (++ready === configs.length) {
          clearTimeout(timer)
          resolveReady()
        }
      } else if (msg.event === 'status') {
        const { event: _e, slot: _s, ...stats } = msg
        a.stats = stats as AttackerStats
      }
    })
  })
  try {
    await allReady
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
  return host
}

async function stopHost(host: AttackerHost): Promise<void> {
  if (host.exited) return
  // 'close' comes after stdout is drained: the last status lines have been read by then.
  const exited = once(host.proc, 'close')
  host.proc.kill('SIGTERM')
  const timer = setTimeout(() => host.proc.kill('SIGKILL'), STOP_GRACE_MS)
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
  // Identities first, so that every attacker knows its fellows and spares them: attackers collude.
  const dirs = modes.map((_, i) => join(base, `attacker-${i}`))
  const ids: string[] = []
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true })
    ids.push(peerIdFromPrivateKey((await loadOrCreateIdentity(dir)).privateKey).toString())
  }
  const configs = modes.map((mode, i) => ({
    ...attackerConfig(cfg, i, mode, dirs[i]!, bootstrap, options),
    spare: ids.filter((_, j) => j !== i),
  }))
  const host = await startHost(configs, join(base, 'attackers.log'))
  const attackers = host.attackers
  const stop = () => stopHost(host)

  return {
    count: attackers.length,
    observe: (honest, tS) => observeRefusals(attackers, honest, tS),
    results: (honest) => attackers.map((a) => attackerResult(a, honest)),
    exited: () => host.exited,
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
