/**
 * A Byzantine testbed peer: a real libp2p node with the daemon's stack that joins through the
 * bootstrap multiaddr, announces itself on the task's membership topic like any peer, receives
 * models, and pushes what its attack mode crafts to peers sampled from its view, every
 * `intervalMs` (or, for `label-flip`, once per training round like an honest learner).
 * It is built from the node's and the gossip layer's parts; no node module imports it.
 */

import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { loadDataset } from '../../data/registry.ts'
import type { SampleStore } from '../../data/samples.ts'
import type { Dataset } from '../../data/types.ts'
import { ModelExchange } from '../../gossip/exchange.ts'
import { Learner } from '../../gossip/learner.ts'
import { Membership } from '../../gossip/membership.ts'
import { UniformSampler } from '../../gossip/sampling/index.ts'
import { createMerger, DEFAULT_MERGE_MODE } from '../../merge/index.ts'
import { initBackend } from '../../model/backend.ts'
import { createLocalModel } from '../../model/local-model.ts'
import type { ArchKind, ArchSpec, ModelState } from '../../model/types.ts'
import { archFingerprint, archTensors, datasetArch } from '../../model/zoo.ts'
import { createNode, type GossipLearnNode } from '../../node/create-node.ts'
import { taskId } from '../../node/daemon.ts'
import { loadOrCreateIdentity } from '../../node/identity.ts'
import { PeerBook } from '../../node/peer-book.ts'
import { Redialer } from '../../node/redial.ts'
import { dialTarget, redialTargets } from '../../node/remembered-peers.ts'
import { anyWithTimeout, release } from '../../util/abort.ts'
import { createRng, hashSeed } from '../../util/rng.ts'
import { ALIE_WINDOW, ATTACK_PUSH_TIMEOUT_MS } from './constants.ts'
import { type AttackMode, attackMode, flipLabels } from './modes.ts'

/** What one attacker runs with. */
export interface AttackerConfig {
  mode: AttackMode
  /** Multiaddrs (with /p2p/<id>) to join through. */
  bootstrap: string[]
  /** Default one ephemeral TCP port on 127.0.0.1. */
  listen?: string[]
  /** Keeps the identity; a fresh one each start when absent. */
  dataDir?: string
  /** The honest peers' task: dataset spec, model, hidden units (the attacker must match them). */
  dataset: string
  model: ArchKind
  hidden?: number
  /** label-flip: which share of the honest partition it trains on (flipped). */
  partition: string
  peerIndex: number
  peerCount: number
  seed: number
  /** Seeds the attacker's own choices (targets, noise). */
  attackSeed: number
  /** Crafting modes: push every this many ms. */
  intervalMs: number
  /** Peers pushed to per tick. */
  fanout: number
  /** label-flip's learner. */
  stepsPerRound: number
  /** label-flip's learner: the honest peers' `--round-ms`; undefined: the learner's default. */
  roundMs?: number
  /** label-flip's learner: the honest peers' cap on steps per second, so it takes no more CPU than one of them. */
  trainRate?: number
  batchSize: number
  learningRate: number
  evalSize: number
  /** Value codec of pushed models (default raw-f32). */
  codec?: string
  /** Push only to these peer ids (when in the view); any peer of the view when absent. */
  targets?: string[]
  /** Never push to these peer ids: fellow attackers (colluding attackers do not attack each other). */
  spare?: string[]
}

/** Running totals of one attacker. */
export interface AttackerStats {
  peerId: string
  mode: AttackMode
  /** Pushes that completed (the receiver read the whole frame; it may still have refused the model). */
  modelsPushed: number
  pushesStarted: number
  /** Pushes that failed: dial refused (banned), stream reset, timeout. */
  pushFailures: number
  modelsReceived: number
  /** Completed pushes by target peer id. */
  pushedTo: Record<string, number>
  /** Failed pushes by target peer id. */
  failedTo: Record<string, number>
  viewSize: number
  connectedPeers: number
  /** Age the last pushed model claimed. */
  lastPushedAge?: number
  /** label-flip: its learner's steps and accuracy on the (unflipped) evaluation subset. */
  steps?: number
  lastAccuracy?: number
}

/** A running attacker; `stop()` is safe to call twice. */
export interface Attacker {
  peerId: string
  multiaddrs: string[]
  stats(): AttackerStats
  stop(): Promise<void>
}

/** The dataset with its training labels flipped (partition unchanged: the share is decided on the true labels). */
function flippedDataset(d: Dataset): Dataset {
  return {
    name: d.name,
    featureShape: d.featureShape,
    numClasses: d.numClasses,
    trainCount: d.trainCount,
    testCount: d.testCount,
    trainLabels: () => d.trainLabels(),
    trainSamples: (indices) => {
      const s = d.trainSamples(indices)
      return { ...s, labels: flipLabels(s.labels, d.numClasses) }
    },
    trainShare: (indices) => flippedStore(d.trainShare(indices), d.numClasses),
    testSamples: (size) => d.testSamples(size),
    testShare: (size) => d.testShare(size),
  }
}

/** A store whose labels are flipped (its rows' features unchanged). */
function flippedStore(s: SampleStore, classes: number): SampleStore {
  return {
    ...s,
    labels: flipLabels(s.labels, classes),
    select: (indices) => flippedStore(s.select(indices), classes),
  }
}

/** Start an attacker; the caller must `await attacker.stop()`. */
export async function startAttacker(
  config: AttackerConfig,
  options: { signal?: AbortSignal } = {},
): Promise<Attacker> {
  const definition = attackMode(config.mode)
  const dataset = loadDataset(config.dataset)
  const arch: ArchSpec = datasetArch(config.model, dataset, config.hidden || undefined)
  const fingerprint = archFingerprint(arch)
  const task = taskId(dataset.name, arch)
  const rng = createRng(config.attackSeed)
  const privateKey =
    config.dataDir !== undefined ? (await loadOrCreateIdentity(config.dataDir)).privateKey : undefined

  const cleanup: Array<() => Promise<unknown>> = []
  const undo = async (): Promise<void> => {
    for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
  }
  const node: GossipLearnNode = await createNode({
    listen: config.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: config.bootstrap,
    privateKey,
  })
  cleanup.push(async () => node.stop())
  try {
    const peerId = node.peerId.toString()
    const log: Logger = node.logger.forComponent('gossip-learn:attacker')
    const stats: AttackerStats = {
      peerId,
      mode: config.mode,
      modelsPushed: 0,
      pushesStarted: 0,
      pushFailures: 0,
      modelsReceived: 0,
      pushedTo: {},
      failedTo: {},
      viewSize: 0,
      connectedPeers: 0,
    }
    /** Newest model per sender, least recent sender first. */
    const received = new Map<string, ModelState>()
    let learner: Learner | undefined
    let membership: Membership | undefined

    const exchange = new ModelExchange(
      { node, logger: node.logger },
      {
        task,
        arch: fingerprint,
        expectedLayout: archTensors(arch),
        codec: config.codec,
        onModel: (state, _meta, from) => {
          stats.modelsReceived++
          membership?.touch(from)
          received.delete(from)
          received.set(from, state)
          while (received.size > ALIE_WINDOW) received.delete(received.keys().next().value as string)
          learner?.receive(state, from)
        },
      },
    )
    await exchange.start()
    cleanup.push(() => exchange.stop())

    membership = new Membership(
      {
        pubsub: node.services.pubsub as never,
        peerId: node.peerId,
        logger: node.logger,
        addAddresses: async (id, list) => {
          await node.peerStore.merge(id, { multiaddrs: list.map((a) => multiaddr(a)) })
        },
      },
      {
        task,
        describe: () => ({
          addrs: node.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/[^/]+$/, '')),
          // Claims what its models claim, like an honest peer announcing its age.
          age: learner?.stats.age ?? stats.lastPushedAge ?? 0,
          accuracy: learner?.stats.lastAccuracy,
        }),
      },
    )
    membership.start()
    cleanup.push(async () => membership?.stop())

    // @libp2p/bootstrap dials once: while alone, dial the bootstrap again with backoff, as a daemon does.
    const noneRemembered = new PeerBook()
    const redialer = new Redialer({
      connected: () => node.getConnections().length > 0,
      targets: () => redialTargets(config.bootstrap, noneRemembered, (id) => id === peerId),
      dial: (t, s) => dialTarget(node, t, s),
    })
    redialer.start()
    cleanup.push(() => redialer.stop())

    const targets = config.targets === undefined ? undefined : new Set(config.targets)
    const spare = new Set(config.spare ?? [])
    const view = () =>
      membership!
        .peers()
        .filter((p) => !spare.has(p.peerId) && (targets === undefined || targets.has(p.peerId)))
    const sampler = new UniformSampler({ random: () => rng.next() })
    /** Pushes `state` to `target`, counting the outcome; one push per target at a time. */
    const push = async (target: string, state: ModelState, signal?: AbortSignal): Promise<number> => {
      stats.pushesStarted++
      stats.lastPushedAge = state.age
      try {
        const sent = await exchange.push(target, state, { signal })
        stats.modelsPushed++
        stats.pushedTo[target] = (stats.pushedTo[target] ?? 0) + 1
        return sent
      } catch (err) {
        stats.pushFailures++
        stats.failedTo[target] = (stats.failedTo[target] ?? 0) + 1
        throw err
      }
    }

    const controller = new AbortController()
    const signal =
      options.signal === undefined ? controller.signal : AbortSignal.any([controller.signal, options.signal])
    let loop: Promise<void> | undefined

    if (definition.trains !== undefined) {
      // An honest learner in every respect but its labels: its models look like any peer's.
      await initBackend()
      const model = await createLocalModel({
        arch,
        dataset: flippedDataset(dataset),
        partition: config.partition,
        peerIndex: config.peerIndex,
        peerCount: config.peerCount,
        seed: config.seed,
        initSeed: hashSeed('init', peerId),
        trainSeed: hashSeed('train', config.attackSeed),
        batchSize: config.batchSize,
        learningRate: config.learningRate,
        evalSize: config.evalSize,
      })
      cleanup.push(async () => model.dispose())
      learner = new Learner(
        {
          model,
          pusher: { push: (target, state, opts) => push(target, state, opts?.signal) },
          sampler,
          view,
          merger: createMerger({ mode: DEFAULT_MERGE_MODE, seed: hashSeed('merge', peerId) }),
          logger: node.logger,
        },
        {
          stepsPerRound: config.stepsPerRound,
          fanout: config.fanout,
          ...(config.roundMs !== undefined ? { minRoundMs: config.roundMs } : {}),
          ...(config.trainRate !== undefined ? { trainRate: config.trainRate } : {}),
        },
      )
      learner.start()
      cleanup.push(() => learner!.stop())
    } else {
      const craft = definition.craft!
      const inflight = new Set<string>()
      const tick = (): void => {
        const candidates = view().filter((p) => !inflight.has(p.peerId))
        const chosen = sampler.sample(candidates, config.fanout)
        if (chosen.length === 0) return
        const state = craft({ received: [...received.values()], arch, rng })
        if (state === undefined) return
        for (const t of chosen) {
          inflight.add(t.peerId)
          const bound = anyWithTimeout([signal], ATTACK_PUSH_TIMEOUT_MS)
          push(t.peerId, state, bound)
            .catch((err: Error) => log('push to %s failed: %s', t.peerId, err.name))
            .finally(() => {
              release(bound)
              inflight.delete(t.peerId)
            })
        }
      }
      loop = (async () => {
        while (!signal.aborted) {
          tick()
          await sleep(config.intervalMs, undefined, { signal }).catch(() => {})
        }
      })()
      cleanup.push(async () => {
        controller.abort()
        await loop
      })
    }

    let stopping: Promise<void> | undefined
    return {
      peerId,
      multiaddrs: node.getMultiaddrs().map((a) => a.toString()),
      stats: () => ({
        ...stats,
        pushedTo: { ...stats.pushedTo },
        failedTo: { ...stats.failedTo },
        viewSize: membership!.peers().length,
        connectedPeers: new Set(node.getConnections().map((c) => c.remotePeer.toString())).size,
        ...(learner !== undefined
          ? { steps: learner.stats.steps, lastAccuracy: learner.stats.lastAccuracy }
          : {}),
      }),
      stop: () => {
        stopping ??= (async () => {
          controller.abort()
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
