/**
 * The local testbed: N real daemon processes on 127.0.0.1 (peer 0 is the
 * bootstrap, the others join through its multiaddr), polled over their HTTP
 * /status, stopped at the end; writes a JSON record of the run. With
 * `--regions` / `--links`, every daemon runs behind the emulated wide-area
 * links of docs/WAN.md (peer ids are created up front to place them in regions).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
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
import type { TestbedConfig } from './config.ts'
import {
  defaultRegionCounts,
  InvalidRegionSpecError,
  loadWanLinksFlag,
  saveWanLinks,
  testbedLinks,
  type WanLinks,
} from './wan-emulation.ts'

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/gossip-learn.js')
const READY_TIMEOUT_MS = 120_000
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
  /** The learner's defences: clips, rejections, drops and rollbacks by reason. */
  defences?: NodeStatus['defences']
  /** Bytes sent over emulated links, by destination region (emulation only). */
  bytesSentByRegion?: Record<string, number>
  /** Bytes written and pushes completed, by codec spec (all of bytesSent is in it). */
  sentByCodec?: Record<string, { models: number; bytes: number }>
  /** Accepted inbound models and their frame bytes, by the codec they came in. */
  receivedByCodec?: Record<string, { models: number; bytes: number }>
  series: SeriesPoint[]
}

export interface TestbedResult {
  config: TestbedConfig & { startedAt: string }
  durationS: number
  reachedTarget: boolean
  meanFinalAccuracy: number | null
  minFinalAccuracy: number | null
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
  series: SeriesPoint[]
  exited: boolean
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
interface SpawnExtras {
  /** Links file written by the testbed. */
  wanLinks?: string
}

function daemonArgs(
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
    String(cfg.peers),
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
    '--status-interval',
    '0',
    '--json-status',
  ]
  if (cfg.hidden !== undefined) args.push('--hidden', String(cfg.hidden))
  if (cfg.initSeed !== undefined) args.push('--init-seed', String(cfg.initSeed))
  if (cfg.randomShare !== undefined) args.push('--random-share', String(cfg.randomShare))
  if (cfg.maxUploadBytesPerS !== undefined) args.push('--max-upload', `${cfg.maxUploadBytesPerS}B`)
  if (extras.wanLinks !== undefined) args.push('--wan-links', extras.wanLinks)
  if (!cfg.gossip) args.push('--no-gossip')
  if (cfg.defences !== undefined) args.push('--defences', cfg.defences ? 'on' : 'off')
  if (bootstrap !== undefined) args.push('--bootstrap', bootstrap)
  return args
}

/** Start one daemon and resolve when it prints its ready line (peer id, addresses, HTTP port). */
async function startPeer(
  cfg: TestbedConfig,
  index: number,
  dataDir: string,
  extras: SpawnExtras,
  bootstrap?: string,
): Promise<Peer> {
  await mkdir(dataDir, { recursive: true })
  const log = createWriteStream(join(dataDir, 'daemon.log'))
  const proc = spawn(process.execPath, daemonArgs(cfg, index, dataDir, extras, bootstrap), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  })
  proc.stderr?.pipe(log)
  const peer: Peer = { index, proc, dataDir, multiaddrs: [], series: [], exited: false }
  proc.once('exit', () => {
    peer.exited = true
  })
  const lines = createInterface({ input: proc.stdout! })
  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`peer ${index} not ready after ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    )
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(
        new Error(
          `peer ${index} exited with code ${code} before it was ready; see ${join(dataDir, 'daemon.log')}`,
        ),
      )
    })
    lines.on('line', (line) => {
      log.write(`${line}\n`)
      let msg: { event?: string; peerId?: string; multiaddrs?: string[]; httpPort?: number }
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      if (msg.event === 'ready') {
        peer.peerId = msg.peerId
        peer.multiaddrs = msg.multiaddrs ?? []
        peer.httpPort = msg.httpPort
        clearTimeout(timer)
        resolveReady()
      }
    })
  })
  try {
    await ready
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
  return peer
}

async function poll(peer: Peer, t0: number): Promise<void> {
  if (peer.exited || peer.httpPort === undefined) return
  try {
    const res = await fetch(`http://127.0.0.1:${peer.httpPort}/status`, { signal: AbortSignal.timeout(2000) })
    const s = (await res.json()) as NodeStatus
    peer.status = s
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
    })
  } catch {
    // A busy peer may miss a poll; the next one catches up.
  }
}

async function stopPeer(peer: Peer): Promise<void> {
  if (peer.exited) return
  const exited = once(peer.proc, 'exit')
  peer.proc.kill('SIGTERM')
  const timer = setTimeout(() => peer.proc.kill('SIGKILL'), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
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
): TestbedResult {
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
    defences: p.status?.defences,
    series: p.series,
  }))
  const finals = results.map((r) => r.finalAccuracy).filter((a): a is number => a !== null)
  return {
    config: { ...cfg, startedAt },
    durationS,
    reachedTarget,
    meanFinalAccuracy: mean(finals),
    minFinalAccuracy: finals.length > 0 ? Math.min(...finals) : null,
    ...(links !== undefined ? { links } : {}),
    peers: results,
  }
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
  const stopAll = () => Promise.all([attack?.stop(), ...peers.map(stopPeer)])
  const onAbort = () => void stopAll()
  hooks.signal?.addEventListener('abort', onAbort)
  try {
    const wan = await prepareWan(cfg, base)
    cfg = { ...cfg, peers: wan.peers }
    const extras: SpawnExtras = { wanLinks: wan.path }
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
    const first = await startPeer(cfg, 0, join(base, 'peer-0'), extras)
    peers.push(first)
    const boot = first.multiaddrs.find((a) => a.includes('/ip4/127.0.0.1/')) ?? first.multiaddrs[0]
    if (boot === undefined) throw new Error('bootstrap peer printed no multiaddr')
    hooks.print(`testbed: bootstrap ${boot}`)
    const rest = await Promise.allSettled(
      Array.from({ length: cfg.peers - 1 }, (_, k) =>
        startPeer(cfg, k + 1, join(base, `peer-${k + 1}`), extras, boot),
      ),
    )
    for (const r of rest) if (r.status === 'fulfilled') peers.push(r.value)
    const failed = rest.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
    peers.sort((a, b) => a.index - b.index)
    if (cfg.gossip && (cfg.byzantine?.length ?? 0) > 0) {
      // Attackers join like any peer, through the bootstrap, once the honest peers are up.
      attack = await startAttackers(cfg, base, boot, { intervalMs: cfg.attackIntervalMs, fanout: cfg.fanout })
      hooks.print(`testbed: attackers ready (${cfg.byzantine!.map((g) => `${g.count}:${g.mode}`).join(',')})`)
    }
    hooks.print(`testbed: all ${peers.length} peers ready; running for ${cfg.durationS} s`)

    const t0 = Date.now()
    let reachedTarget = false
    let lastPrint = 0
    while (Date.now() - t0 < cfg.durationS * 1000 && hooks.signal?.aborted !== true) {
      const tick = Date.now()
      await Promise.all(peers.map((p) => poll(p, t0)))
      attack?.observe(peers, (Date.now() - t0) / 1000)
      const accs = peers.map((p) => p.status?.lastAccuracy)
      if (
        cfg.targetAccuracy !== undefined &&
        accs.every((a) => a !== undefined && a >= cfg.targetAccuracy!)
      ) {
        reachedTarget = true
        break
      }
      if (hooks.progress !== undefined) {
        hooks.progress(phase, assemble(cfg, startedAt, (Date.now() - t0) / 1000, false, wan.links, peers))
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
      if (peers.some((p) => p.exited))
        throw new Error(`peer ${peers.find((p) => p.exited)!.index} exited during the run`)
      await new Promise((r) => setTimeout(r, Math.max(0, cfg.pollMs - (Date.now() - tick))))
    }
    await Promise.all(peers.map((p) => poll(p, t0)))
    const durationS = (Date.now() - t0) / 1000
    attack?.observe(peers, durationS)

    const result = assemble(cfg, startedAt, durationS, reachedTarget, wan.links, peers)
    if (attack !== undefined) {
      await attack.stop() // each attacker prints its final counts as it stops
      result.attackers = attack.results(peers)
    }
    return result
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort)
    await stopAll()
    if (cfg.keepDir === undefined) await rm(base, { recursive: true, force: true })
  }
}

/** Share of the emulated bytes that crossed regions, or null without emulation. */
export function interRegionShare(peers: readonly PeerResult[]): number | null {
  const inter = peers.reduce((s, p) => s + (p.bytesSentInterRegion ?? 0), 0)
  const total = inter + peers.reduce((s, p) => s + (p.bytesSentIntraRegion ?? 0), 0)
  return total > 0 ? inter / total : null
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
        `${(p.bytesReceived / 2 ** 20).toFixed(1).padStart(7)}`,
    ),
    `mean final accuracy ${fmtAcc(r.meanFinalAccuracy)}, min ${fmtAcc(r.minFinalAccuracy)}, ` +
      `${r.durationS.toFixed(1)} s${r.reachedTarget ? ' (every peer reached the target)' : ''}`,
    ...(share !== null ? [`bytes across regions: ${(share * 100).toFixed(1)}% of emulated bytes sent`] : []),
    ...(r.attackers !== undefined && r.attackers.length > 0
      ? [formatAttackers(r.attackers, r.peers.length)]
      : []),
  ]
  return rows.join('\n')
}
