/**
 * Prometheus metrics of one daemon, in one prom-client registry per node: ours under
 * `gossip_learn_`, libp2p's (`@libp2p/prometheus-metrics`, `libp2p_*`, `nodejs_*`, `process_*`)
 * and gossipsub's (`gossipsub_*`). Ours are read from the counters the components already keep,
 * in collect callbacks that run on scrape: nothing is added to the training or transfer paths
 * except one timer around each merge and each push. No peer id is ever a label.
 */
import type { MetricsRegister, TopicStrToLabel } from '@libp2p/gossipsub/metrics'
import type { Metrics } from '@libp2p/interface'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { DefenceCounters } from '../gossip/defences/index.ts'
import type { ExchangeCounters } from '../gossip/exchange.ts'
import type { LearnerStats, LocalModel } from '../gossip/learner.ts'
import type { BackendMemory } from '../model/index.ts'

/** The prefix of every metric this project defines. */
export const METRIC_PREFIX = 'gossip_learn_'

/**
 * Merge durations: an MLP merge takes ~1 ms, an aligned CNN merge up to a second on a loaded
 * 2-core box (bench:merge), so buckets from 0.5 ms to 5 s.
 */
export const MERGE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/**
 * Push durations: a 400 KB MLP push takes a few ms on loopback and seconds over an emulated
 * 20 Mbit/s uplink with queued pushes; the exchange gives up after 20 s (its total deadline).
 */
export const PUSH_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20]

/** The counters and values the metrics read on every scrape (all cheap, all already kept). */
export interface MetricsSources {
  exchange: () => Pick<
    ExchangeCounters,
    'modelsSent' | 'modelsReceived' | 'bytesSent' | 'bytesReceived' | 'pushFailures' | 'rejected'
  >
  learner: () => Pick<LearnerStats, 'steps' | 'merges' | 'modelsMerged' | 'age' | 'lastAccuracy' | 'lastLoss'>
  /** Training samples consumed since start. */
  trainingSamples: () => number
  /** Peers in the membership view. */
  viewSize: () => number
  connectedPeers: () => number
  /** Membership announcements rejected, by error name. */
  announcementsRejected?: () => ReadonlyMap<string, number>
  /** The peer policy: bans so far and peers refused right now. */
  peerPolicy?: () => { bans: number; refused: number }
  /** Emulated WAN traffic (testbed), bytes sent by destination region. */
  wanBytesByRegion?: () => Record<string, number> | undefined
  /** Bytes and pushes by codec spec, sent and accepted (the exchange's `sentByCodec` / `receivedByCodec`). */
  codecs?: () => Pick<ExchangeCounters, 'sentByCodec' | 'receivedByCodec'>
  /** What the defences did to received models, by reason (the learner's `defences`). */
  defences?: () => DefenceCounters | undefined
  /** The tfjs backend's tensors and wasm memory (per process: nodes hosted together share it). */
  backendMemory?: () => BackendMemory
}

/** Constant facts about the node, exported as the labels of `gossip_learn_info` (value 1). */
export interface MetricsInfo {
  task: string
  arch: string
  merge: string
  sampler: string
  backend: string
  /** How glibc's malloc was tuned (DaemonHooks.malloc); '' when not known. */
  malloc?: string
  region?: string
}

/** Our metrics, registered in a registry, with the two observations made on the hot path. */
export interface NodeMetrics {
  registry: Registry
  /** Record one merge's duration. */
  observeMerge(seconds: number): void
  /** Record one push's duration and outcome. */
  observePush(seconds: number, ok: boolean): void
  /** The registry in Prometheus text format (runs every collect callback). */
  scrape(): Promise<string>
  contentType: string
}

/** A fresh registry for one node: libp2p's, gossipsub's and our metrics all go into it. */
export function createMetricsRegistry(): Registry {
  return new Registry()
}

/**
 * libp2p's metrics component for `createLibp2p({ metrics })`, registering into `registry`.
 * `@libp2p/prometheus-metrics` caches metrics by name in a module-global map and, unless told
 * to preserve them, clears that cache and prom-client's *global* registry when a node is created.
 * We leave it to do so: our metrics live in the node's own registry, which it never clears, and
 * a cleared cache is what gives a second node in the same process (tests) its own libp2p metrics
 * instead of the first node's.
 */
export function libp2pMetrics(registry: Registry): (components: never) => Metrics {
  return prometheusMetrics({ registry, preserveExistingMetrics: false, collectDefaultMetrics: true }) as (
    components: never,
  ) => Metrics
}

/** A gauge whose value callbacks (gossipsub's `addCollect`) run on every scrape. */
class CollectingGauge extends Gauge<string> {
  private readonly collectFns: Array<(gauge: CollectingGauge) => void>

  constructor(config: { name: string; help: string; labelNames?: readonly string[]; registers: Registry[] }) {
    const fns: Array<(gauge: CollectingGauge) => void> = []
    super({
      ...config,
      collect(this: Gauge<string>) {
        for (const fn of fns) fn(this as CollectingGauge)
      },
    })
    this.collectFns = fns
  }

  addCollect(fn: (gauge: CollectingGauge) => void): void {
    this.collectFns.push(fn)
  }
}

/** gossipsub's average/min/max of a set of values, as three gauges `<name>_avg|_min|_max`. */
class AvgMinMaxGauges {
  private readonly avg: Gauge<string>
  private readonly min: Gauge<string>
  private readonly max: Gauge<string>

  constructor(config: { name: string; help: string; labelNames?: readonly string[] }, registry: Registry) {
    const make = (suffix: string, what: string) =>
      new Gauge({
        ...config,
        name: `${config.name}_${suffix}`,
        help: `${config.help} (${what})`,
        registers: [registry],
      })
    this.avg = make('avg', 'average')
    this.min = make('min', 'minimum')
    this.max = make('max', 'maximum')
  }

  set(...args: [number[]] | [Record<string, string | number>, number[]]): void {
    const [labels, values] = args.length === 1 ? [{}, args[0]] : args
    if (values.length === 0) return
    let sum = 0
    let lo = Number.POSITIVE_INFINITY
    let hi = Number.NEGATIVE_INFINITY
    for (const v of values) {
      sum += v
      if (v < lo) lo = v
      if (v > hi) hi = v
    }
    this.avg.set(labels, sum / values.length)
    this.min.set(labels, lo)
    this.max.set(labels, hi)
  }
}

/** gossipsub's `metricsRegister` over a prom-client registry. */
export function gossipsubMetricsRegister(registry: Registry): MetricsRegister {
  type Config = { name: string; help: string; labelNames?: readonly string[]; buckets?: number[] }
  return {
    gauge: (config: Config) => new CollectingGauge({ ...config, registers: [registry] }),
    histogram: (config: Config) => new Histogram({ ...config, registers: [registry] }),
    avgMinMax: (config: Config) => new AvgMinMaxGauges(config, registry),
  } as unknown as MetricsRegister
}

/** gossipsub labels its per-topic metrics through this map: our one topic gets a short name. */
export function gossipsubTopicLabels(topics: Record<string, string>): TopicStrToLabel {
  return new Map(Object.entries(topics))
}

/**
 * A counter that follows a monotonic source: on scrape it adds what the source gained since the
 * previous scrape (a source that went down, e.g. after a restart of the component, adds nothing).
 */
function followCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Record<string, number> | ReadonlyMap<string, number> | undefined,
  labelName?: string,
): Counter<string> {
  const last = new Map<string, number>()
  return new Counter({
    name,
    help,
    labelNames: labelName !== undefined ? [labelName] : [],
    registers: [registry],
    collect(this: Counter<string>) {
      const v = read()
      if (v === undefined) return
      if (typeof v === 'number') {
        const gained = v - (last.get('') ?? 0)
        if (gained > 0) this.inc(gained)
        last.set('', Math.max(v, last.get('') ?? 0))
        return
      }
      const entries = v instanceof Map ? [...v.entries()] : Object.entries(v)
      for (const [label, value] of entries) {
        const gained = value - (last.get(label) ?? 0)
        if (gained > 0) this.inc({ [labelName!]: label }, gained)
        last.set(label, Math.max(value, last.get(label) ?? 0))
      }
    },
  })
}

/** A gauge set from `read` on every scrape; NaN (Prometheus' "no value") while `read` has none. */
function followGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | undefined,
): Gauge<string> {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect(this: Gauge<string>) {
      const v = read()
      this.set(v !== undefined && Number.isFinite(v) ? v : Number.NaN)
    },
  })
}

/** Register our metrics in `registry`, fed by `sources` on every scrape. */
export function registerNodeMetrics(
  registry: Registry,
  sources: MetricsSources,
  info: MetricsInfo,
): NodeMetrics {
  const p = METRIC_PREFIX
  const ex = sources.exchange
  const ln = sources.learner

  const infoGauge = new Gauge({
    name: `${p}info`,
    help: "Constant 1, labelled with the task, architecture, merge mode, sampler, backend, malloc's tuning and emulated region",
    labelNames: ['task', 'arch', 'merge', 'sampler', 'backend', 'malloc', 'region'],
    registers: [registry],
  })
  infoGauge.set({ ...info, malloc: info.malloc ?? '', region: info.region ?? '' }, 1)

  followCounter(registry, `${p}models_sent_total`, 'Model pushes completed', () => ex().modelsSent)
  followCounter(
    registry,
    `${p}models_received_total`,
    'Models received that passed validation',
    () => ex().modelsReceived,
  )
  followCounter(
    registry,
    `${p}models_merged_total`,
    'Received models merged into the local model',
    () => ln().modelsMerged,
  )
  followCounter(
    registry,
    `${p}merges_total`,
    'Merge operations (one merges every model pending)',
    () => ln().merges,
  )
  followCounter(
    registry,
    `${p}models_rejected_total`,
    'Inbound model transfers refused, by reason (error name)',
    () => ex().rejected,
    'reason',
  )
  followCounter(registry, `${p}push_failures_total`, 'Model pushes that failed', () => ex().pushFailures)
  followCounter(
    registry,
    `${p}model_sent_bytes_total`,
    'Bytes written by model pushes, failed ones included',
    () => ex().bytesSent,
  )
  followCounter(
    registry,
    `${p}model_received_bytes_total`,
    'Bytes read from inbound model streams, rejected ones included',
    () => ex().bytesReceived,
  )
  followCounter(registry, `${p}training_steps_total`, 'Local training steps (minibatches)', () => ln().steps)
  followCounter(
    registry,
    `${p}training_samples_total`,
    'Training samples consumed by local steps',
    sources.trainingSamples,
  )
  followCounter(
    registry,
    `${p}announcements_rejected_total`,
    'Membership announcements rejected, by reason (error name)',
    () => sources.announcementsRejected?.(),
    'reason',
  )
  followCounter(
    registry,
    `${p}peer_bans_total`,
    'Peers the peer policy banned (refused for a cooling-off period)',
    () => sources.peerPolicy?.().bans ?? 0,
  )
  if (sources.wanBytesByRegion !== undefined) {
    followCounter(
      registry,
      `${p}wan_sent_bytes_total`,
      'Bytes sent over emulated wide-area links, by destination region (testbed)',
      sources.wanBytesByRegion,
      'region',
    )
  }

  const codecs = sources.codecs
  if (codecs !== undefined) {
    const by = (side: 'sentByCodec' | 'receivedByCodec', field: 'models' | 'bytes') => () =>
      Object.fromEntries(Object.entries(codecs()[side]).map(([codec, c]) => [codec, c[field]]))
    followCounter(
      registry,
      `${p}codec_sent_bytes_total`,
      'Bytes written by model pushes, by codec spec (sums to model_sent_bytes)',
      by('sentByCodec', 'bytes'),
      'codec',
    )
    followCounter(
      registry,
      `${p}codec_sent_models_total`,
      'Model pushes completed, by codec spec',
      by('sentByCodec', 'models'),
      'codec',
    )
    followCounter(
      registry,
      `${p}codec_received_bytes_total`,
      'Bytes of accepted inbound models, by the codec they arrived in',
      by('receivedByCodec', 'bytes'),
      'codec',
    )
    followCounter(
      registry,
      `${p}codec_received_models_total`,
      'Accepted inbound models, by the codec they arrived in',
      by('receivedByCodec', 'models'),
      'codec',
    )
  }
  const defences = sources.defences
  if (defences !== undefined) {
    followCounter(
      registry,
      `${p}defence_actions_total`,
      'Received models the defences clipped, down-weighted, rejected or rate-limited, by reason',
      () => defences()?.byReason,
      'reason',
    )
    followCounter(
      registry,
      `${p}rollbacks_total`,
      'Roll-backs of the local model to its last good state',
      () => defences()?.rollbacks,
    )
    followCounter(
      registry,
      `${p}suspects_skipped_total`,
      "Suspect peers (the peer policy's) left out of push targets, summed over rounds",
      () => defences()?.suspectsSkipped,
    )
  }

  followGauge(
    registry,
    `${p}accuracy_ratio`,
    'Accuracy on the evaluation set at the last evaluation',
    () => ln().lastAccuracy,
  )
  followGauge(registry, `${p}loss`, 'Training loss of the last local round', () => ln().lastLoss)
  followGauge(
    registry,
    `${p}model_age_samples`,
    'Age of the local model: training samples it has absorbed',
    () => ln().age,
  )
  followGauge(registry, `${p}view_peers`, 'Peers in the membership view', sources.viewSize)
  followGauge(registry, `${p}connected_peers`, 'Peers with an open libp2p connection', sources.connectedPeers)
  followGauge(
    registry,
    `${p}peers_refused`,
    'Peers the peer policy refuses right now',
    () => sources.peerPolicy?.().refused ?? 0,
  )
  const backend = sources.backendMemory
  if (backend !== undefined) {
    // Beside process_resident_memory_bytes, these split a growing RSS into tfjs and the rest.
    followGauge(registry, `${p}backend_tensors`, 'Live tfjs tensors in this process', () => backend().tensors)
    followGauge(
      registry,
      `${p}backend_tensor_bytes`,
      'Bytes of live tfjs tensor data in this process',
      () => backend().tensorBytes,
    )
    followGauge(
      registry,
      `${p}backend_wasm_memory_bytes`,
      "The wasm backend's linear memory in this process (grows, never shrinks; none on other backends)",
      () => backend().wasmHeapBytes,
    )
  }

  const mergeSeconds = new Histogram({
    name: `${p}merge_duration_seconds`,
    help: 'Time to merge the pending received models into the local one',
    buckets: MERGE_BUCKETS_S,
    registers: [registry],
  })
  const pushSeconds = new Histogram({
    name: `${p}push_duration_seconds`,
    help: 'Time from dial to the last byte of a model push, by result (ok or failed)',
    labelNames: ['result'],
    buckets: PUSH_BUCKETS_S,
    registers: [registry],
  })

  return {
    registry,
    observeMerge: (s) => mergeSeconds.observe(s),
    observePush: (s, ok) => pushSeconds.observe({ result: ok ? 'ok' : 'failed' }, s),
    scrape: () => registry.metrics(),
    contentType: registry.contentType,
  }
}

/** `merger`, timed into `metrics` (one timer per merge, not per step). */
export function timedMerger<A extends unknown[], R>(
  merger: (...args: A) => R,
  metrics: Pick<NodeMetrics, 'observeMerge'>,
): (...args: A) => R {
  return (...args) => {
    const t0 = performance.now()
    const out = merger(...args)
    metrics.observeMerge((performance.now() - t0) / 1000)
    return out
  }
}

/** A push function, timed into `metrics` with its outcome. */
export function timedPush<A extends unknown[]>(
  push: (...args: A) => Promise<number>,
  metrics: Pick<NodeMetrics, 'observePush'>,
): (...args: A) => Promise<number> {
  return async (...args) => {
    const t0 = performance.now()
    try {
      const n = await push(...args)
      metrics.observePush((performance.now() - t0) / 1000, true)
      return n
    } catch (err) {
      metrics.observePush((performance.now() - t0) / 1000, false)
      throw err
    }
  }
}

/** The learner's view of the local model, counting the training samples it consumes. */
export function countTrainingSamples<M extends LocalModel>(
  model: M,
): { model: LocalModel; samples: () => number } {
  let samples = 0
  return {
    model: {
      train: async (steps, options) => {
        const r = await model.train(steps, options)
        samples += r.samples
        return r
      },
      getState: () => model.getState(),
      setState: (state) => model.setState(state),
      resetOptimizer: () => model.resetOptimizer?.(),
      evaluate: () => model.evaluate(),
    },
    samples: () => samples,
  }
}
