/**
 * The composition root of one peer: identity, data share, model, libp2p node
 * (behind the testbed's WAN emulation when given a links file), model exchange,
 * membership, link measurement (RTT + Vivaldi), learner, checkpoints and the
 * HTTP status. Shutdown is ordered: learner, checkpoint, gossip, HTTP, libp2p.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { ComponentLogger, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { loadDataset } from '../data/registry.ts'
import { relayedOnlyPeers } from '../gossip/connectivity.ts'
import { type DefenceCounters, MAX_TRACKED_SENDERS, SenderMap } from '../gossip/defences/index.ts'
import { RelayedOnlyError, verdictOf } from '../gossip/errors.ts'
import { ModelExchange } from '../gossip/exchange.ts'
import { Learner } from '../gossip/learner.ts'
import { announceTopic, Membership } from '../gossip/membership.ts'
import { createPeerPolicy, type PeerPolicy, policyGater, reportForRejection } from '../gossip/policy/index.ts'
import {
  createSampler,
  HungrySampler,
  PartnerSampler,
  type PeerEntry,
  type PeerSampler,
} from '../gossip/sampling/index.ts'
import { MinFilteredVivaldi, MinRttTracker } from '../gossip/topology/filters.ts'
import { StreamPinger } from '../gossip/topology/stream-ping.ts'
import { type TopologyCounters, TopologyService } from '../gossip/topology/topology-service.ts'
import type { Coordinate } from '../gossip/topology/vivaldi.ts'
import type { CodecOptions } from '../gossip/wire/codecs/index.ts'
import { createMergePipeline } from '../merge/index.ts'
import { backendMemory, initBackend } from '../model/backend.ts'
import { createLocalModel, type LocalTfModel } from '../model/local-model.ts'
import type { ArchSpec, ModelState } from '../model/types.ts'
import { archFingerprint, archTensors, datasetArch } from '../model/zoo.ts'
import { anyWithTimeout, release } from '../util/abort.ts'
import { hashSeed, randomSeed } from '../util/rng.ts'
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts'
import { learnerDefences, pushCodecOptions, pushPartners, type StartConfig } from './config.ts'
import {
  boundAddrs,
  CONNECTION_TIMEOUTS,
  type ConnectionTimeouts,
  createNode,
  type GossipLearnNode,
} from './create-node.ts'
import { type DashboardPeer, dashboardRoutes, type HistorySource, recordHistory } from './dashboard/index.ts'
import { acquireDataDir, bounded, type DataDirLock } from './data-dir.ts'
import type { LinkEmulation, LinkEmulationStats } from './emulation.ts'
import { HttpPortInUseError, ListenAddressError, StartupAbortedError } from './errors.ts'
import { type StatusServer, startStatusServer } from './http.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { KeepAlive } from './keep-alive.ts'
import { LINK_WATCH_INIT, LinkWatch } from './link-watch.ts'
import {
  firstTcpPort,
  loadListenPort,
  portFree,
  saveListenPort,
  wantsAnyPort,
  withStoredPort,
} from './listen-state.ts'
import {
  countTrainingSamples,
  createMetricsRegistry,
  registerNodeMetrics,
  timedMerger,
  timedPush,
} from './metrics.ts'
import { type NatStatus, trackNat } from './nat.ts'
import { BOOTSTRAP_KEEPER_INIT, Redialer } from './redial.ts'
import { bootstrapTargets, dialTarget, redialTargets, rememberedPeers } from './remembered-peers.ts'

/** The histogram samples the loop every 10 ms and records the whole interval: the delay is the excess. */
const LOOP_DELAY_RESOLUTION_MS = 10
const loopDelayMs = (ns: number): number =>
  Number.isFinite(ns) ? Math.max(0, ns / 1e6 - LOOP_DELAY_RESOLUTION_MS) : 0

/** When each peer of the view entered it. */
const viewSince = (membership: Membership): Record<string, number> =>
  Object.fromEntries(membership.peers().map((e) => [e.peerId, e.addedAt]))

/** GET /status. The testbed and the README's JSON schema rely on these names. */
export interface NodeStatus {
  peerId: string
  multiaddrs: string[]
  connectedPeers: string[]
  viewSize: number
  /**
   * When each peer in our view entered it (ms since the epoch): the testbed reads from it when
   * every peer was first in some other peer's view.
   */
  viewSince: Record<string, number>
  /**
   * Membership over gossipsub: peers in our mesh for the announcement topic, and announcements
   * received. A mesh of 0 means announcements reach us only by gossip (IHAVE/IWANT), or not at all
   * when no connection carries gossipsub (see link-watch.ts).
   */
  announceMesh: number
  announcementsReceived: number
  task: string
  arch: string
  backend: string
  /** How glibc's malloc was tuned for this process: 'tuned', 'environment', 'untuned', 'refused', 'not-glibc', 'unknown'. */
  malloc: string
  merge: string
  sampler: string
  /** The sticky partners pushes go to (`--partners`); absent when any peer may be picked. */
  partners?: string[]
  /** Value codec our pushes use (bytesSent is all in it). */
  codec: string
  gossip: boolean
  /** Our emulated region (testbed), from the links file; absent without emulation. */
  region?: string
  /** Our Vivaldi coordinate (what we announce). */
  coordinate: Coordinate
  /** Link measurement: ping counters, and the smoothed RTT in ms to each peer measured so far. */
  topology: TopologyCounters & { rttMs: Record<string, number> }
  /** The WAN emulation's counters (bytes within / across regions); absent without emulation. */
  wan?: LinkEmulationStats
  /**
   * Event-loop delay since start (ms): every ping, pong and emulated delivery waits this long
   * for its turn, so it is the part of a measured RTT that CPU contention adds.
   */
  eventLoopDelayMs: { mean: number; p50: number; p99: number }
  partition: { spec: string; index: number; count: number; samples: number }
  age: number
  steps: number
  lastAccuracy?: number
  lastLoss?: number
  lastEvalAt?: number
  modelsSent: number
  modelsReceived: number
  bytesSent: number
  bytesReceived: number
  /** Accepted inbound models and their frame bytes, by the codec they came in (`partial+int8`). */
  receivedByCodec: Record<string, { models: number; bytes: number }>
  /** Bytes written (failed pushes included: all of bytesSent) and pushes completed, by codec spec. */
  sentByCodec: Record<string, { models: number; bytes: number }>
  /** Upload budget in bytes/s (`--max-upload`); absent: unlimited. */
  maxUploadBytesPerS?: number
  /** Rounds whose push the upload budget deferred. */
  pushesDeferred: number
  /** Rounds that held their push after start while the node caught up with peers ahead of it. */
  pushesHeld: number
  /** Rounds that pushed nothing because every push slot held a push still in flight (slow links). */
  pushesBusy: number
  /** Our pushes ask for a model back: no received model merged for several rounds (learner.ts). */
  askingForModels: boolean
  /** Our announcements say we are hungry: no received model merged since start (sampling/hungry.ts). */
  hungry: boolean
  /** Our pushes to peers whose announcements said they were hungry. */
  pushesToHungry: number
  /** Received models whose sender asked for one back, and the pushes we made in reply. */
  modelsWanted: number
  replies: number
  merges: number
  modelsMerged: number
  pushesFailed: number
  /** The model exchange's failed pushes by `stage:ErrorName` (ExchangeCounters.pushFailuresByReason). */
  pushFailuresByReason: Record<string, number>
  /** The latest message for each of those keys: what an `EncryptionFailedError` at the dial said. */
  pushFailureMessages: Record<string, string>
  rejected: Record<string, number>
  /** Inbound model transfers in progress, and the most at once (`--max-inbound`). */
  inbound: { transfers: number; max: number }
  /** The learner's defences (issue 9): whether on, and the clips, rejections, drops and rollbacks so far by reason. */
  defences: DefenceCounters & { enabled: boolean }
  /** Accepted models by sender (who sent to whom, for the testbed's exchange matrix); the last 1000 senders. */
  modelsReceivedFrom: Record<string, number>
  /** Peers the peer policy refuses now (no dials, connections or view), why, and until when (Unix s). */
  refusedPeers: Array<{ peerId: string; reason: string; untilS: number }>
  /**
   * Peers whose score is at or below the suspect score now (failed pushes count against a peer
   * too): with defences on the learner pushes them nothing while others are left.
   */
  suspectPeers: string[]
  resumedFromCheckpoint: boolean
  /** Rounds in which the node found itself without connections and re-dialled its bootstrap list and remembered peers. */
  rejoins: number
  /** Rounds in which the node had connections but none to its bootstrap list, and dialled the list again. */
  bootstrapRedials: number
  /** Keep-alive pings on the kept ping streams, those that failed, and the connections they aborted. */
  keepAlive: { pings: number; failures: number; aborted: number }
  /** Connections without a gossipsub stream: identify retried, recovered and failed; found identified but streamless; aborted. */
  links: LinkWatch['counters']
  /** Peers remembered in the data dir (peers.json), dialled on restart and when the node is alone. */
  rememberedPeers: number
  /** NAT traversal: relay addresses, peers reached only through a relay, hole punches; `pushesRelayedOnly` skipped pushes. */
  nat: NatStatus & { pushesRelayedOnly: number }
  uptimeS: number
}

export interface Daemon {
  peerId: string
  multiaddrs: string[]
  dataDir: string
  httpPort?: number
  node: GossipLearnNode
  learner: Learner
  topology: TopologyService
  /** Scores peers from every verdict and refuses the ones that keep sending bad input. */
  policy: PeerPolicy
  /** The sampler the learner pushes with, and the view it samples from (membership + measured RTTs). */
  sampler: PeerSampler
  view(): PeerEntry[]
  model: LocalTfModel
  status(): NodeStatus
  checkpoint(): Promise<void>
  stop(): Promise<void>
}

export interface DaemonHooks {
  /** Lines for people (the CLI passes console.log); silent by default. */
  print?: (line: string) => void
  /** Aborts startup (a first Ctrl+C): startDaemon rejects with a StartupAbortedError and undoes what it started. */
  signal?: AbortSignal
  /** Called for every model a peer sent us that passed the wire checks (the library API's 'model-received'). */
  onModelReceived?: (from: string) => void
  /** Link emulation (a testbed facility) wrapped around every connection; none for a real deployment. */
  emulation?: LinkEmulation
  /** Bound on each data-dir step (ms), default FS_STEP_TIMEOUT_MS; a testbed host of many daemons loosens it. */
  fsTimeoutMs?: number
  /** Bounds on dials, handshakes and keep-alive pings (libp2p's by default); a testbed host loosens them. */
  connectionTimeouts?: Partial<ConnectionTimeouts>
  /** Deadline of one model push (ms), default LEARNER_DEFAULTS.pushTimeoutMs; a testbed host loosens it. */
  pushTimeoutMs?: number
  /** Deadline of one whole transfer, inbound or outbound, dial included (ms), default DEFAULT_TOTAL_TIMEOUT_MS; a testbed host loosens it. */
  transferTimeoutMs?: number
  /** Silence after which an inbound transfer is dropped (ms), default DEFAULT_IDLE_TIMEOUT_MS; a testbed host loosens it. */
  receiveIdleMs?: number
  /** Called once, just before the first training round (the CLI ends its start-up heap tuning there: src/cli/heap.ts). */
  beforeTraining?: () => void
  /** How glibc's malloc was tuned for this process (src/cli/allocator.ts), for /metrics and /status; default 'unknown'. */
  malloc?: string
  /** Training between yields to the event loop (ms), default the trainer's 10; a testbed host of several daemons lengthens it. */
  trainSliceMs?: number
}

/** The task id peers of one network share (gossip topic, frame header): dataset name + arch kind. */
export function taskId(dataset: string, arch: ArchSpec): string {
  return `${dataset}-${arch.kind}`
}

function httpPortInUse(port: number, host: string): HttpPortInUseError {
  return new HttpPortInUseError(
    `--http ${port}: port ${port} is in use on ${host}: pick another port, or --http 0 for any free one`,
  )
}

/** Start a peer. The caller owns the result and must `await daemon.stop()`. */
export async function startDaemon(config: StartConfig, hooks: DaemonHooks = {}): Promise<Daemon> {
  const print = hooks.print ?? (() => {})
  const malloc = hooks.malloc ?? 'unknown'
  const startedAt = Date.now()
  const signal = hooks.signal
  const checkAborted = () => {
    if (signal?.aborted) throw new StartupAbortedError('startup interrupted')
  }
  const lock: DataDirLock = await acquireDataDir(config.dataDir, signal, hooks.fsTimeoutMs)
  const cleanup: Array<() => Promise<unknown>> = [() => lock.release()]
  const undo = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {})
  }
  try {
    const wan = hooks.emulation
    const dirLabel = config.dataDir !== undefined ? `--data-dir ${config.dataDir}` : `data dir ${lock.dir}`

    const { privateKey, created } = await bounded(
      dirLabel,
      loadOrCreateIdentity(lock.dir),
      signal,
      hooks.fsTimeoutMs,
    )
    // Before the slow model load: a busy --http port fails in milliseconds, not after seconds of loading.
    if (config.http !== undefined && config.http !== 0 && !(await portFree(config.httpHost, config.http))) {
      throw httpPortInUse(config.http, config.httpHost)
    }
    checkAborted()
    const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS })
    loopDelay.enable()
    cleanup.push(async () => loopDelay.disable())
    const backend = await initBackend()
    // Before any networking: a missing or malformed dataset fails fast. Shape and classes come from it.
    const dataset = loadDataset(config.dataset)
    const arch: ArchSpec = datasetArch(config.model, dataset, config.hidden || undefined)
    const fingerprint = archFingerprint(arch)
    const task = taskId(dataset.name, arch)

    // Built once the node's logger exists; the gater asks it from the first connection on.
    let policy: PeerPolicy | undefined
    // One registry per node: libp2p's, gossipsub's and our metrics (GET /metrics).
    let registry = createMetricsRegistry()
    // One set of connection bounds for libp2p and for our own dials (bootstrap, remembered peers).
    const timeouts = { ...CONNECTION_TIMEOUTS, ...hooks.connectionTimeouts }
    checkAborted()
    const nodeInit = (listen: string[]) => ({
      listen,
      bootstrap: config.bootstrap,
      announce: config.announce,
      privateKey,
      encrypterWrapper: wan,
      metrics: { registry, topics: { [announceTopic(task)]: 'announce' } },
      connectionGater: policyGater({ isRefused: (id: string) => policy?.isRefused(id) === true }),
      nat: { relay: config.relay, upnp: config.upnp },
      timeouts,
      // KeepAlive (below) pings on the kept streams instead of a new stream per ping.
      connectionMonitor: false,
    })
    // Stable addresses: "any port" takes the port this data dir listened on last time (listen.json).
    const anyPort = wantsAnyPort(config.listen)
    const storedPort = anyPort
      ? await bounded(dirLabel, loadListenPort(lock.dir), signal, hooks.fsTimeoutMs)
      : undefined
    let node: GossipLearnNode
    try {
      node = await createNode(nodeInit(withStoredPort(config.listen, storedPort)))
    } catch (err) {
      if ((err as Error).name !== 'UnsupportedListenAddressesError') throw err
      if (storedPort === undefined) {
        throw new ListenAddressError(
          `--listen ${config.listen.join(' ')}: cannot listen there (port in use, or not an address of this host): ` +
            'pick another port, or stop the process that holds it',
        )
      }
      print(`port ${storedPort} (kept in ${lock.dir}) is taken: listening on a new port`)
      // The failed node registered its metrics: a fresh registry for the one that runs.
      registry = createMetricsRegistry()
      node = await createNode(nodeInit(config.listen))
    }
    cleanup.push(async () => node.stop())
    // Before any dial of ours: mends connections on which identify or gossipsub's stream failed.
    const linkWatch = new LinkWatch(node, {
      ...LINK_WATCH_INIT,
      protocols: node.services.pubsub.protocols,
      graceMs: timeouts.identifyMs + LINK_WATCH_INIT.checkEveryMs,
      timeoutMs: timeouts.identifyMs,
      identify: (c, options) => node.services.identify.identify(c, options),
    })
    linkWatch.start()
    cleanup.push(async () => linkWatch.stop())
    if (anyPort) {
      const port = firstTcpPort(boundAddrs(node))
      if (port !== undefined && port !== storedPort)
        await bounded(dirLabel, saveListenPort(lock.dir, port), signal, hooks.fsTimeoutMs)
    }
    checkAborted()
    const peerId = node.peerId.toString()
    const peerIndex = config.peerIndex ?? hashSeed(peerId) % config.peerCount
    const region = wan?.regionOf(peerId)
    const logger: ComponentLogger = node.logger
    // The most recent senders only: under churn a node meets new peers for as long as it runs.
    const receivedFrom = new SenderMap<number>(MAX_TRACKED_SENDERS)
    const remembered = await rememberedPeers(lock.dir, peerId, dirLabel, print, signal, hooks.fsTimeoutMs)
    checkAborted()
    // Read on scrape from the counters each component keeps; only merges and pushes are timed.
    const metrics = registerNodeMetrics(
      registry,
      {
        exchange: () => exchange.counters,
        learner: () => learner?.stats ?? { steps: 0, merges: 0, modelsMerged: 0, age: 0 },
        trainingSamples: () => trained.samples(),
        viewSize: () => membership?.peers().length ?? 0,
        connectedPeers: () => new Set(node.getConnections().map((c) => c.remotePeer.toString())).size,
        announcementsRejected: () => membership?.rejected ?? new Map(),
        peerPolicy: () => ({ bans: peers.counters.bans, refused: peers.refused().length }),
        wanBytesByRegion: wan !== undefined ? () => wan.stats().bytesSentByRegion : undefined,
        codecs: () => exchange.counters,
        defences: () => learner?.stats.defences,
        backendMemory,
      },
      {
        task,
        arch: fingerprint,
        merge: config.merge,
        sampler: config.sampler,
        backend: backend.name,
        malloc,
        region,
      },
    )

    // Independent init by default (a seed from the peer id, stable across restarts); shared when asked.
    const initSeed = config.initSeed ?? hashSeed('init', peerId)
    const model = await createLocalModel({
      arch,
      dataset,
      partition: config.partition,
      peerIndex,
      peerCount: config.peerCount,
      seed: config.seed,
      initSeed,
      trainSeed: hashSeed('train', peerId, randomSeed()),
      batchSize: config.batchSize,
      learningRate: config.learningRate,
      evalSize: config.evalSize,
      trainSliceMs: hooks.trainSliceMs,
    })
    cleanup.push(async () => model.dispose())
    checkAborted()

    let resumed = false
    const saved = await loadCheckpoint(lock.dir)
    if (saved !== undefined) {
      if (saved.arch === fingerprint) {
        model.setState(saved)
        resumed = true
      } else {
        print(
          `checkpoint in ${lock.dir} is for ${saved.arch}, not ${fingerprint}: starting fresh (it will be overwritten)`,
        )
      }
    }

    // A pipeline, not a bare merger: the learner reports each clipped or rejected input to the policy.
    const pipeline = createMergePipeline({
      mode: config.merge,
      seed: hashSeed('merge', peerId),
      // The `probe` step of the robust pipelines judges each received model on our own data.
      probe: { accuracy: (state) => model.probeAccuracy(state) },
    })
    const merger = { merge: timedMerger(pipeline.merge.bind(pipeline), metrics) }
    let learner: Learner | undefined
    let membership: Membership | undefined
    // Every verdict about a peer lands in the policy; a banned peer leaves the view and is hung up on.
    const peers = createPeerPolicy(
      { logger },
      {
        onBan: (id, refusal) => {
          membership?.evict(id)
          remembered.book.forget(id)
          node.hangUp(peerIdFromString(id)).catch(() => {})
          print(`refusing peer ${id} until ${new Date(refusal.until).toISOString()}: ${refusal.reason}`)
        },
      },
    )
    policy = peers
    let topology: TopologyService | undefined
    const codecOptions = pushCodecOptions(config, model)
    const exchange = new ModelExchange(
      { node, logger },
      {
        task,
        arch: fingerprint,
        expectedLayout: archTensors(arch),
        codec: config.codec,
        codecOptions,
        idleTimeoutMs: hooks.receiveIdleMs,
        totalTimeoutMs: hooks.transferTimeoutMs,
        maxConcurrentInbound: config.maxInbound,
        describe: () => ({
          accuracy: learner?.stats.lastAccuracy,
          coordinate: topology?.coordinate(),
          wantsModel: learner?.wantsModels(),
        }),
        onModel: (state: ModelState, meta, from: string) => {
          // A transfer that was in flight when its sender was banned.
          if (peers.isRefused(from)) return
          membership?.touch(from)
          remembered.see(node, from)
          receivedFrom.set(from, (receivedFrom.get(from) ?? 0) + 1)
          hooks.onModelReceived?.(from)
          // Credit only a model the learner took: a drop or refusal by its defences is reported by the learner.
          if (learner?.receive(state, from, { admitted: true }) !== false) {
            peers.report(from, { verdict: 'accept', reason: 'model' })
            // Its pushes say nobody sends it models: send one back (rate-limited per peer by the learner).
            if (meta.wantsModel === true) learner?.reply(from)
          }
        },
        onRejected: (from, err, verdict) => peers.report(from, reportForRejection(err, verdict)),
        // The fair share is taken before a model is read (the learner reports a refusal).
        admit: (from) => learner?.admit(from) ?? true,
        // Peers whose models we have been accepting may use the inbound slots kept for known-good peers.
        priority: (from) => peers.score(from) > 0,
      },
    )
    await exchange.start()
    cleanup.push(() => exchange.stop())

    const addrs = () => node.getMultiaddrs().map((a) => a.toString())
    membership = new Membership(
      {
        pubsub: node.services.pubsub as never,
        peerId: node.peerId,
        logger,
        addAddresses: async (id: PeerId, list: string[]) => {
          await node.peerStore.merge(id, { multiaddrs: list.map((a) => multiaddr(a)) })
        },
        onRejected: (id, err) => peers.report(id, { verdict: verdictOf(err), reason: err.name }),
        isRefused: (id) => peers.isRefused(id),
      },
      {
        task,
        describe: () => ({
          addrs: addrs().map((a) => a.replace(/\/p2p\/[^/]+$/, '')),
          age: model.getAge(),
          accuracy: learner?.stats.lastAccuracy,
          coordinate: topology?.coordinate(),
          region,
          // Absent when false: every announcement of a fed node stays as it was.
          ...(learner?.hungry() === true ? { hungry: true } : {}),
        }),
      },
    )
    membership.start()
    cleanup.push(async () => membership?.stop())

    const rtt = new MinRttTracker()
    // One kept ping stream per peer: a ping then costs its two 32-byte messages, not a stream's set-up.
    const pinger = new StreamPinger(node)
    topology = new TopologyService(
      { node, logger },
      {
        ping: (peer, options) => pinger.ping(peer, options),
        rtt,
        vivaldi: new MinFilteredVivaldi(rtt),
        getRemoteCoordinate: (id) => membership!.get(id)?.coordinate,
        onUnreachable: (id) => membership!.evict(id),
        // The keep-alive's bound (5 s, 30 s in a testbed host): three pings past it evict the peer
        // from the view, and a host's loops run seconds late (128 peers: 2739 evictions in 300 s at 5 s).
        pingTimeoutMs: timeouts.pingMs,
      },
    )
    topology.start()
    const keepAlive = new KeepAlive(node, {
      intervalMs: timeouts.pingEveryMs,
      timeoutMs: timeouts.pingMs,
      ping: (peer, options) => pinger.ping(peer, options),
    })
    keepAlive.start()
    cleanup.push(async () => {
      keepAlive.stop()
      topology?.stop()
      pinger.stop()
    })

    const chosen = createSampler(config.sampler, {
      localCoordinate: () => topology!.coordinate(),
      randomShare: config.randomShare,
    })
    const partners = pushPartners(config)
    const sampler: PeerSampler = partners === undefined ? chosen : new PartnerSampler(chosen, { partners })

    // Measured RTTs where we have them; the sampler predicts the rest from coordinates.
    const view = (): PeerEntry[] =>
      membership!.peers().map((p) => ({ ...p, rttMs: topology!.rttMs(p.peerId) }))
    const trained = countTrainingSamples(model)
    const defences = learnerDefences(config)
    learner = new Learner(
      {
        model: trained.model,
        pusher: {
          push: timedPush(async (id: string, state: ModelState, opts) => {
            const bytes = await exchange.push(id, state, opts)
            remembered.see(node, id)
            return bytes
          }, metrics),
        },
        // A stranded node pushes over held connections; `--hungry-boost` favours peers announcing hunger.
        sampler: new HungrySampler(sampler, {
          boost: config.hungryBoost,
          stranded: () => learner?.stranded() === true,
        }),
        // Only peers we hold more than a relayed connection to: models wait for a direct one (DCUtR).
        view: () => {
          const connections = node.getConnections()
          const relayed = relayedOnlyPeers(connections)
          const linked = new Set(connections.map((c) => c.remotePeer.toString()))
          return view().flatMap((p) =>
            relayed.has(p.peerId) ? [] : [{ ...p, connected: linked.has(p.peerId) }],
          )
        },
        merger,
        logger,
        onPushFailed: (id, err) => {
          // Reachable only through a relay: not the peer's fault, and it stays in the view.
          if (err.name === RelayedOnlyError.name) return
          membership!.evict(id)
          peers.report(id, { verdict: 'push-failed', reason: err.name })
        },
        // Clips, rejections, rate-limit drops and rollbacks of a sender's models.
        onVerdict: (id, report) => peers.report(id, report),
        ...(defences.skipSuspects ? { isSuspect: (id: string) => peers.isSuspect(id) } : {}),
      },
      {
        stepsPerRound: config.stepsPerRound,
        minRoundMs: config.roundMs,
        fanout: config.fanout,
        evalIntervalMs: config.evalIntervalMs,
        evalShare: config.evalShare,
        gossip: config.gossip,
        defences: defences.options,
        maxUploadBytesPerS: config.maxUploadBytesPerS,
        trainRate: config.trainRate,
        pushTimeoutMs: hooks.pushTimeoutMs,
      },
    )

    // Alone (every connection lost, or none ever made): dial the bootstrap list and the remembered peers with backoff.
    const redialer = new Redialer(
      {
        connected: () => node.getConnections().length > 0,
        targets: () =>
          redialTargets(config.bootstrap, remembered.book, (id) => id === peerId || peers.isRefused(id)),
        dial: (t, s) => dialTarget(node, t, s),
      },
      { dialTimeoutMs: timeouts.dialMs },
    )

    // Connected, but to none of the bootstrap list: peers that joined through one peer whose own
    // link to the rest was lost stay an island for good, since none of them is alone (at 128
    // peers, a testbed host's 16 daemons ended connected only to each other). Dial the list again,
    // slowly; while the node has no connection at all, that is the re-dialler's job.
    const bootstrapIds = new Set(
      bootstrapTargets(config.bootstrap, (id) => id === peerId).map((t) => t.peerId),
    )
    const bootstrapKeeper = new Redialer(
      {
        connected: () => {
          const conns = node.getConnections()
          return conns.length === 0 || conns.some((c) => bootstrapIds.has(c.remotePeer.toString()))
        },
        targets: () => bootstrapTargets(config.bootstrap, (id) => id === peerId || peers.isRefused(id)),
        dial: (t, s) => dialTarget(node, t, s),
      },
      { ...BOOTSTRAP_KEEPER_INIT, dialTimeoutMs: timeouts.dialMs },
    )

    const nat = trackNat(node, { relay: config.relay, upnp: config.upnp })
    cleanup.push(async () => nat.stop())
    // What the dashboard's history records every 2 s, apart from the rest of the status.
    const progress = (): HistorySource => {
      const c = exchange.counters
      return {
        viewSize: membership!.peers().length,
        age: model.getAge(),
        steps: learner!.stats.steps,
        lastAccuracy: learner!.stats.lastAccuracy,
        lastLoss: learner!.stats.lastLoss,
        modelsSent: c.modelsSent,
        modelsReceived: c.modelsReceived,
        bytesSent: c.bytesSent,
        bytesReceived: c.bytesReceived,
        merges: learner!.stats.merges,
        rejected: { ...c.rejected, ...Object.fromEntries(membership!.rejected) },
      }
    }
    const status = (): NodeStatus => {
      const c = exchange.counters
      return {
        peerId,
        multiaddrs: addrs(),
        connectedPeers: [...new Set(node.getConnections().map((conn) => conn.remotePeer.toString()))],
        ...progress(),
        viewSince: viewSince(membership!),
        inbound: { transfers: c.inboundTransfers, max: c.maxInbound },
        announceMesh: membership!.meshSize(),
        announcementsReceived: membership!.announcementsReceived,
        task,
        arch: fingerprint,
        backend: backend.name,
        malloc,
        merge: config.merge,
        sampler: config.sampler,
        ...(sampler instanceof PartnerSampler ? { partners: sampler.current() } : {}),
        codec: exchange.codec,
        gossip: config.gossip,
        region,
        coordinate: topology!.coordinate(),
        topology: {
          ...topology!.counters,
          rttMs: Object.fromEntries(topology!.rtt.peers().map((id) => [id, topology!.rttMs(id)!])),
        },
        wan: wan?.stats(),
        eventLoopDelayMs: {
          mean: loopDelayMs(loopDelay.mean),
          p50: loopDelayMs(loopDelay.percentile(50)),
          p99: loopDelayMs(loopDelay.percentile(99)),
        },
        partition: {
          spec: config.partition,
          index: peerIndex,
          count: config.peerCount,
          samples: model.trainSamples,
        },
        lastEvalAt: learner!.stats.lastEvalAt,
        receivedByCodec: c.receivedByCodec,
        sentByCodec: c.sentByCodec,
        maxUploadBytesPerS: config.maxUploadBytesPerS,
        pushesDeferred: learner!.stats.pushesDeferred,
        pushesHeld: learner!.stats.pushesHeld,
        pushesBusy: learner!.stats.pushesBusy,
        askingForModels: learner!.wantsModels(),
        hungry: learner!.hungry(),
        pushesToHungry: learner!.stats.pushesToHungry,
        modelsWanted: learner!.stats.modelsWanted,
        replies: learner!.stats.replies,
        modelsMerged: learner!.stats.modelsMerged,
        pushesFailed: learner!.stats.pushesFailed,
        pushFailuresByReason: c.pushFailuresByReason,
        pushFailureMessages: c.pushFailureMessages,
        defences: { enabled: config.defences, ...structuredClone(learner!.stats.defences) },
        modelsReceivedFrom: Object.fromEntries(receivedFrom.records()),
        refusedPeers: peers.refused().map((r) => ({
          peerId: r.peerId,
          reason: r.reason,
          untilS: Math.ceil(r.until / 1000),
        })),
        suspectPeers: peers.suspects(),
        resumedFromCheckpoint: resumed,
        rejoins: redialer.counters.rounds,
        bootstrapRedials: bootstrapKeeper.counters.rounds,
        keepAlive: { ...keepAlive.counters },
        links: { ...linkWatch.counters },
        rememberedPeers: remembered.book.size,
        nat: { ...nat.status(), pushesRelayedOnly: c.pushesRelayedOnly },
        uptimeS: Math.round((Date.now() - startedAt) / 1000),
      }
    }

    let http: StatusServer | undefined
    if (config.http !== undefined) {
      const recorder = recordHistory(progress, { startedAt })
      cleanup.push(async () => recorder.stop())
      const connected = () => new Set(node.getConnections().map((c) => c.remotePeer.toString()))
      const dashboardPeers = (): DashboardPeer[] => {
        const now = Date.now()
        const conn = connected()
        return membership!.peers().map((p) => ({
          peerId: p.peerId,
          connected: conn.has(p.peerId),
          rttMs: topology!.rttMs(p.peerId),
          predictedRttMs: topology!.predictRttMs(p.coordinate),
          region: p.region,
          coordinate: p.coordinate,
          accuracy: p.accuracy,
          age: p.age,
          lastSeenS: (now - p.lastSeen) / 1000,
        }))
      }
      http = await startStatusServer({
        port: config.http,
        host: config.httpHost,
        status,
        metrics,
        dashboard: dashboardRoutes({ status, peers: dashboardPeers, history: recorder.history }),
      }).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EADDRINUSE' ? httpPortInUse(config.http!, config.httpHost) : err
      })
      cleanup.push(() => http!.close())
    }

    hooks.beforeTraining?.()
    learner.start()
    // A restart dials the remembered peers at once, beside the --bootstrap list @libp2p/bootstrap dials.
    const dials = new AbortController()
    cleanup.push(async () => dials.abort())
    for (const p of remembered.book.peers()) {
      if (peers.isRefused(p.peerId)) continue
      const bound = anyWithTimeout([dials.signal], timeouts.dialMs)
      dialTarget(node, p, bound)
        .catch(() => {})
        .finally(() => release(bound))
    }
    redialer.start()
    cleanup.push(() => redialer.stop())
    if (bootstrapIds.size > 0) {
      bootstrapKeeper.start()
      cleanup.push(() => bootstrapKeeper.stop())
    }
    cleanup.push(async () => remembered.stop())
    // The last good model when the current one is not finite (saveCheckpoint refuses non-finite states).
    const checkpoint = () => saveCheckpoint(lock.dir, learner!.checkpointState())
    const checkpointTimer = setInterval(() => {
      checkpoint().catch((err) => print(`checkpoint failed: ${(err as Error).message}`))
      remembered.save()
    }, config.checkpointIntervalMs)
    checkpointTimer.unref()

    print(
      `gossip-learn ${created ? 'created' : 'loaded'} identity ${peerId} (data dir ${lock.dir}); backend ${backend.name}; ` +
        `${fingerprint}, share ${peerIndex}/${config.peerCount} of ${config.partition} (${model.trainSamples} samples); ` +
        `sampler ${config.sampler}; codec ${config.codec}${quietNote(codecOptions)}` +
        `${region !== undefined ? `; emulated region ${region}` : ''}` +
        `${resumed ? `, resumed at age ${model.getAge()}` : ''}`,
    )

    let stopping: Promise<void> | undefined
    return {
      peerId,
      get multiaddrs() {
        return addrs()
      },
      dataDir: lock.dir,
      httpPort: http?.port,
      node,
      learner,
      topology,
      policy: peers,
      sampler,
      view,
      model,
      status,
      checkpoint,
      stop: () => {
        stopping ??= (async () => {
          clearInterval(checkpointTimer)
          await learner!.stop()
          await checkpoint().catch((err) => print(`final checkpoint failed: ${(err as Error).message}`))
          await remembered.save()
          await undo()
        })()
        return stopping
      },
    }
  } catch (err) {
    await undo()
    throw err
  }
}

/** ` (N of M inputs quiet: left out of partial frames)`, or nothing. */
function quietNote(options: CodecOptions | undefined): string {
  const quiet = options?.quietInputs
  if (quiet === undefined) return ''
  const n = quiet.reduce((a, b) => a + b, 0)
  return ` (${n} of ${quiet.length} inputs quiet: left out of partial frames)`
}
