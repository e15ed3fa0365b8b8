/**
 * The composition root of one peer: identity, data share, model, libp2p node,
 * model exchange, membership, learner, checkpoints and the HTTP status.
 * Shutdown is ordered: learner, checkpoint, gossip, HTTP, libp2p.
 */
import type { ComponentLogger, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { ModelExchange } from '../gossip/exchange.ts'
import { Learner } from '../gossip/learner.ts'
import { Membership } from '../gossip/membership.ts'
import { UniformSampler } from '../gossip/sampler.ts'
import { initBackend } from '../model/backend.ts'
import { createLocalModel, type LocalTfModel } from '../model/local-model.ts'
import { createMerger } from '../model/merge/index.ts'
import { hashSeed, randomSeed } from '../model/rng.ts'
import type { ArchSpec, ModelState } from '../model/types.ts'
import { archFingerprint, archTensors, defaultArch } from '../model/zoo.ts'
import type { StartConfig } from './args.ts'
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts'
import { createNode, type GossipLearnNode } from './create-node.ts'
import { acquireDataDir, type DataDirLock } from './data-dir.ts'
import { type StatusServer, startStatusServer } from './http.ts'
import { loadOrCreateIdentity } from './identity.ts'

/** GET /status. The testbed and the README's JSON schema rely on these names. */
export interface NodeStatus {
  peerId: string
  multiaddrs: string[]
  connectedPeers: string[]
  viewSize: number
  task: string
  arch: string
  backend: string
  merge: string
  gossip: boolean
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
  merges: number
  modelsMerged: number
  pushesFailed: number
  rejected: Record<string, number>
  resumedFromCheckpoint: boolean
  uptimeS: number
}

export interface Daemon {
  peerId: string
  multiaddrs: string[]
  dataDir: string
  httpPort?: number
  node: GossipLearnNode
  learner: Learner
  model: LocalTfModel
  status(): NodeStatus
  checkpoint(): Promise<void>
  stop(): Promise<void>
}

export interface DaemonHooks {
  /** Lines for people (the CLI passes console.log); silent by default. */
  print?: (line: string) => void
  signal?: AbortSignal
}

function taskId(dataset: string, arch: ArchSpec): string {
  return `${dataset}-${arch.kind}`
}

/** Start a peer. The caller owns the result and must `await daemon.stop()`. */
export async function startDaemon(config: StartConfig, hooks: DaemonHooks = {}): Promise<Daemon> {
  const print = hooks.print ?? (() => {})
  const startedAt = Date.now()
  const lock: DataDirLock = await acquireDataDir(config.dataDir)
  const cleanup: Array<() => Promise<unknown>> = [() => lock.release()]
  const undo = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {})
  }
  try {
    const { privateKey, created } = await loadOrCreateIdentity(lock.dir)
    const backend = await initBackend()
    const arch: ArchSpec = { ...defaultArch(config.model), ...(config.hidden ? { hidden: config.hidden } : {}) }
    const fingerprint = archFingerprint(arch)
    const task = taskId(config.dataset, arch)

    const node = await createNode({ listen: config.listen, bootstrap: config.bootstrap, privateKey })
    cleanup.push(async () => node.stop())
    const peerId = node.peerId.toString()
    const peerIndex = config.peerIndex ?? hashSeed(peerId) % config.peerCount
    const logger: ComponentLogger = node.logger

    // Independent init by default (a seed from the peer id, stable across restarts); shared when asked.
    const initSeed = config.initSeed ?? hashSeed('init', peerId)
    const model = await createLocalModel({
      arch,
      dataset: config.dataset,
      partition: config.partition,
      peerIndex,
      peerCount: config.peerCount,
      seed: config.seed,
      initSeed,
      trainSeed: hashSeed('train', peerId, randomSeed()),
      batchSize: config.batchSize,
      learningRate: config.learningRate,
      evalSize: config.evalSize,
    })
    cleanup.push(async () => model.dispose())

    let resumed = false
    const saved = await loadCheckpoint(lock.dir)
    if (saved !== undefined) {
      if (saved.arch === fingerprint) {
        model.setState(saved)
        resumed = true
      } else {
        print(`checkpoint in ${lock.dir} is for ${saved.arch}, not ${fingerprint}: starting fresh (it will be overwritten)`)
      }
    }

    const merger = createMerger({ mode: config.merge, seed: hashSeed('merge', peerId) })
    let learner: Learner | undefined
    let membership: Membership | undefined
    const exchange = new ModelExchange(
      { node, logger },
      {
        task,
        arch: fingerprint,
        expectedLayout: archTensors(arch),
        describe: () => ({ accuracy: learner?.stats.lastAccuracy }),
        onModel: (state: ModelState, _meta, from: string) => {
          membership?.touch(from)
          learner?.receive(state, from)
        },
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
      },
      {
        task,
        describe: () => ({
          addrs: addrs().map((a) => a.replace(/\/p2p\/[^/]+$/, '')),
          age: model.getAge(),
          accuracy: learner?.stats.lastAccuracy,
        }),
      },
    )
    membership.start()
    cleanup.push(async () => membership?.stop())

    learner = new Learner(
      {
        model,
        pusher: { push: (id, state, opts) => exchange.push(id, state, opts) },
        sampler: new UniformSampler(),
        view: () => membership!.peers(),
        merger,
        logger,
        onPushFailed: (id) => membership!.evict(id),
      },
      {
        stepsPerRound: config.stepsPerRound,
        fanout: config.fanout,
        evalIntervalMs: config.evalIntervalMs,
        gossip: config.gossip,
      },
    )

    const status = (): NodeStatus => {
      const c = exchange.counters
      return {
        peerId,
        multiaddrs: addrs(),
        connectedPeers: [...new Set(node.getConnections().map((conn) => conn.remotePeer.toString()))],
        viewSize: membership!.peers().length,
        task,
        arch: fingerprint,
        backend: backend.name,
        merge: config.merge,
        gossip: config.gossip,
        partition: { spec: config.partition, index: peerIndex, count: config.peerCount, samples: model.trainSamples },
        age: model.getAge(),
        steps: learner!.stats.steps,
        lastAccuracy: learner!.stats.lastAccuracy,
        lastLoss: learner!.stats.lastLoss,
        lastEvalAt: learner!.stats.lastEvalAt,
        modelsSent: c.modelsSent,
        modelsReceived: c.modelsReceived,
        bytesSent: c.bytesSent,
        bytesReceived: c.bytesReceived,
        merges: learner!.stats.merges,
        modelsMerged: learner!.stats.modelsMerged,
        pushesFailed: learner!.stats.pushesFailed,
        rejected: { ...c.rejected, ...Object.fromEntries(membership!.rejected) },
        resumedFromCheckpoint: resumed,
        uptimeS: Math.round((Date.now() - startedAt) / 1000),
      }
    }

    let http: StatusServer | undefined
    if (config.http !== undefined) {
      http = await startStatusServer({ port: config.http, host: config.httpHost, status })
      cleanup.push(() => http!.close())
    }

    learner.start()
    const checkpoint = () => saveCheckpoint(lock.dir, model.getState())
    const checkpointTimer = setInterval(() => {
      checkpoint().catch((err) => print(`checkpoint failed: ${(err as Error).message}`))
    }, config.checkpointIntervalMs)
    checkpointTimer.unref()

    print(
      `gossip-learn ${created ? 'created' : 'loaded'} identity ${peerId} (data dir ${lock.dir}); backend ${backend.name}; ` +
        `${fingerprint}, share ${peerIndex}/${config.peerCount} of ${config.partition} (${model.trainSamples} samples)` +
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
      model,
      status,
      checkpoint,
      stop: () => {
        stopping ??= (async () => {
          clearInterval(checkpointTimer)
          await learner!.stop()
          await checkpoint().catch((err) => print(`final checkpoint failed: ${(err as Error).message}`))
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

/** `gossip-learn start`: run until the signal, printing the addresses and periodic status. */
export async function runDaemon(config: StartConfig, hooks: DaemonHooks & { signal: AbortSignal }): Promise<void> {
  const print = hooks.print ?? (() => {})
  const daemon = await startDaemon(config, { print: config.jsonStatus ? undefined : print })
  try {
    if (config.jsonStatus) {
      print(JSON.stringify({ event: 'ready', peerId: daemon.peerId, multiaddrs: daemon.multiaddrs, httpPort: daemon.httpPort }))
    } else {
      print('listening on (pass one of these to --bootstrap on another node):')
      for (const a of daemon.multiaddrs) print(`  ${a}`)
      if (daemon.httpPort !== undefined) print(`status: http://${config.httpHost}:${daemon.httpPort}/status`)
    }
    const timer =
      config.statusIntervalMs > 0
        ? setInterval(() => {
            const s = daemon.status()
            print(
              `age ${s.age}  steps ${s.steps}  acc ${s.lastAccuracy?.toFixed(3) ?? '-'}  peers ${s.connectedPeers.length} ` +
                `(view ${s.viewSize})  models sent ${s.modelsSent} recv ${s.modelsReceived}  merges ${s.merges}`,
            )
          }, config.statusIntervalMs)
        : undefined
    if (!hooks.signal.aborted) await new Promise((r) => hooks.signal.addEventListener('abort', r, { once: true }))
    if (timer) clearInterval(timer)
  } finally {
    await daemon.stop()
  }
  if (!config.jsonStatus) print('stopped; checkpoint written')
}
