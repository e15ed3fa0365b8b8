/**
 * The local testbed: N real daemon processes on 127.0.0.1 (peer 0 is the
 * bootstrap, the others join through its multiaddr), polled over their HTTP
 * /status, stopped at the end; writes a JSON record of the run. With
 * `--regions` / `--links`, every daemon runs behind the emulated wide-area
 * links of docs/WAN.md (peer ids are created up front to place them in regions).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { UsageError } from '../node/errors.ts'
import { loadOrCreateIdentity } from '../node/identity.ts'
import { applyChurn, type ChurnContext } from './apply-churn.ts'
import { type AttackFacility, startAttackers } from './attack/facility.ts'
import { joinCount, trainRates } from './churn.ts'
import type { TestbedConfig } from './config.ts'
import { memoryTracker } from './memory.ts'
import { enteredViews, finalPoll, poll } from './poll.ts'
import { peerAvailability } from './report/availability.ts'
import { fmtAcc, mean, type PeerResult, type RunPhase, type TestbedResult } from './result.ts'
import { type Peer, type SpawnExtras, startHosts, startProcesses, stopPeer } from './spawn.ts'
import {
  defaultRegionCounts,
  InvalidRegionSpecError,
  loadWanLinksFlag,
  saveWanLinks,
  testbedLinks,
  type WanLinks,
} from './wan-links.ts'

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
