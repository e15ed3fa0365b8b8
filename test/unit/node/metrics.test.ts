/**
 * The metrics registry: our gossip_learn_ metrics follow the components' counters on scrape, and
 * libp2p's and gossipsub's metrics share the node's registry without clearing ours or each other's.
 * The output is checked with the Prometheus client's reference text parser.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { emptyDefenceCounters } from '../../../src/gossip/defences/index.ts'
import { createNode, type GossipLearnNode } from '../../../src/node/create-node.ts'
import {
  createMetricsRegistry,
  METRIC_PREFIX,
  type MetricsSources,
  registerNodeMetrics,
  timedMerger,
  timedPush,
} from '../../../src/node/metrics.ts'
import { type Family, parseByName, sampleValue } from './prometheus-text.ts'

function fakeSources() {
  const state = {
    exchange: {
      modelsSent: 0,
      modelsReceived: 0,
      bytesSent: 0,
      bytesReceived: 0,
      pushFailures: 0,
      rejected: {} as Record<string, number>,
    },
    learner: { steps: 0, merges: 0, modelsMerged: 0, age: 0, lastAccuracy: undefined as number | undefined },
    samples: 0,
    view: 0,
    announcementsRejected: new Map<string, number>(),
    codecs: {
      sentByCodec: {} as Record<string, { models: number; bytes: number }>,
      receivedByCodec: {} as Record<string, { models: number; bytes: number }>,
    },
    defences: emptyDefenceCounters(),
    backend: { tensors: 7, tensorBytes: 4096, wasmHeapBytes: undefined as number | undefined },
  }
  const sources: MetricsSources = {
    exchange: () => state.exchange,
    learner: () => state.learner,
    trainingSamples: () => state.samples,
    viewSize: () => state.view,
    connectedPeers: () => 1,
    announcementsRejected: () => state.announcementsRejected,
    codecs: () => state.codecs,
    defences: () => state.defences,
    backendMemory: () => state.backend,
  }
  return { state, sources }
}

const INFO = {
  task: 'mnist-mlp',
  arch: 'mlp-x',
  merge: 'varcorr',
  sampler: 'uniform',
  backend: 'cpu',
  malloc: 'tuned',
}

describe('node metrics', () => {
  const nodes: GossipLearnNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
  })

  it('have Prometheus names, help and types, and follow the counters on every scrape', async () => {
    const { state, sources } = fakeSources()
    const metrics = registerNodeMetrics(createMetricsRegistry(), sources, INFO)
    const text = await metrics.scrape()
    const first = await parseByName(text)
    const v = (fams: Map<string, Family>, sample: string, labels?: Record<string, string>) =>
      sampleValue(fams, `${METRIC_PREFIX}${sample}`, labels)

    const ours = [...first.values()].filter((f) => f.name.startsWith(METRIC_PREFIX))
    expect(ours.length).toBeGreaterThanOrEqual(20)
    for (const f of ours) {
      expect(f.name).toMatch(/^[a-z_][a-z0-9_]*$/)
      expect(f.help.length, `${f.name} has help`).toBeGreaterThan(10)
      expect(f.type, `${f.name} is typed`).not.toBe('unknown')
      // Counters' samples end in _total; nothing else does.
      for (const s of f.samples) {
        if (f.type === 'counter') expect(s.name).toMatch(/_total$/)
        else expect(s.name).not.toMatch(/_total$/)
        expect(Object.keys(s.labels)).not.toContain('peer')
      }
    }
    // Every one of our sample lines was parsed into a sample.
    const lines = text.split('\n').filter((l) => l.startsWith(METRIC_PREFIX))
    expect(ours.reduce((n, f) => n + f.samples.length, 0)).toBe(lines.length)
    for (const name of [
      'models_sent',
      'models_received',
      'models_merged',
      'models_rejected',
      'model_sent_bytes',
      'model_received_bytes',
      'training_steps',
      'training_samples',
      'accuracy_ratio',
      'loss',
      'view_peers',
      'peers_refused',
      'merge_duration_seconds',
      'push_duration_seconds',
      'codec_sent_bytes',
      'codec_received_models',
      'defence_actions',
      'rollbacks',
      'suspects_skipped',
    ]) {
      expect(first.has(`${METRIC_PREFIX}${name}`), name).toBe(true)
    }
    expect(first.get(`${METRIC_PREFIX}models_sent`)?.type).toBe('counter')
    expect(first.get(`${METRIC_PREFIX}accuracy_ratio`)?.type).toBe('gauge')
    expect(first.get(`${METRIC_PREFIX}merge_duration_seconds`)?.type).toBe('histogram')
    expect(v(first, 'training_steps_total')).toBe(0)
    // No evaluation yet: NaN (Prometheus' "no value"), not a made-up 0.
    expect(v(first, 'accuracy_ratio')).toBeNaN()
    expect(v(first, 'info', { merge: 'varcorr', task: 'mnist-mlp', malloc: 'tuned' })).toBe(1)
    expect(v(first, 'backend_tensors')).toBe(7)
    expect(v(first, 'backend_tensor_bytes')).toBe(4096)
    // Not on wasm: no value rather than 0.
    expect(v(first, 'backend_wasm_memory_bytes')).toBeNaN()

    state.learner.steps = 40
    state.learner.lastAccuracy = 0.8
    state.samples = 1280
    state.exchange.modelsReceived = 3
    state.exchange.bytesSent = 1_000_000
    state.exchange.rejected = { NonFiniteValueError: 2 }
    state.announcementsRejected.set('InvalidDescriptorError', 1)
    state.view = 5
    state.codecs.sentByCodec['partial:0.25+int4'] = { models: 4, bytes: 53_212 }
    state.codecs.receivedByCodec['raw-f32'] = { models: 2, bytes: 814_560 }
    state.defences.byReason = { 'distance-clipped': 3, 'rate-limited': 1 }
    state.defences.rollbacks = 1
    state.defences.suspectsSkipped = 6
    state.backend = { tensors: 9, tensorBytes: 8192, wasmHeapBytes: 16 * 2 ** 20 }
    const timed = timedMerger((a: number) => a * 2, metrics)
    expect(timed(21)).toBe(42)
    await timedPush(async () => 7, metrics)()
    await expect(timedPush(async () => Promise.reject(new Error('reset')), metrics)()).rejects.toThrow(
      'reset',
    )

    const second = await parseByName(await metrics.scrape())
    expect(v(second, 'training_steps_total')).toBe(40)
    expect(v(second, 'training_samples_total')).toBe(1280)
    expect(v(second, 'models_received_total')).toBe(3)
    expect(v(second, 'model_sent_bytes_total')).toBe(1_000_000)
    expect(v(second, 'accuracy_ratio')).toBe(0.8)
    expect(v(second, 'view_peers')).toBe(5)
    expect(v(second, 'models_rejected_total', { reason: 'NonFiniteValueError' })).toBe(2)
    expect(v(second, 'announcements_rejected_total', { reason: 'InvalidDescriptorError' })).toBe(1)
    expect(v(second, 'codec_sent_bytes_total', { codec: 'partial:0.25+int4' })).toBe(53_212)
    expect(v(second, 'codec_sent_models_total', { codec: 'partial:0.25+int4' })).toBe(4)
    expect(v(second, 'codec_received_bytes_total', { codec: 'raw-f32' })).toBe(814_560)
    expect(v(second, 'defence_actions_total', { reason: 'distance-clipped' })).toBe(3)
    expect(v(second, 'defence_actions_total', { reason: 'rate-limited' })).toBe(1)
    expect(v(second, 'rollbacks_total')).toBe(1)
    expect(v(second, 'suspects_skipped_total')).toBe(6)
    expect(v(second, 'backend_tensors')).toBe(9)
    expect(v(second, 'backend_wasm_memory_bytes')).toBe(16 * 2 ** 20)
    expect(v(second, 'merge_duration_seconds_count')).toBe(1)
    expect(v(second, 'push_duration_seconds_count', { result: 'ok' })).toBe(1)
    expect(v(second, 'push_duration_seconds_count', { result: 'failed' })).toBe(1)

    // A scrape adds only what the source gained since the previous one.
    state.learner.steps = 60
    const third = await parseByName(await metrics.scrape())
    expect(v(third, 'training_steps_total')).toBe(60)
  })

  it("share the node's registry with libp2p's and gossipsub's metrics, in each of two nodes", async () => {
    const registries = [createMetricsRegistry(), createMetricsRegistry()]
    // Ours first: libp2p's metrics component clears prom-client's global registry when it starts,
    // and must leave the node's own registry alone.
    const ours = registries.map((r) => registerNodeMetrics(r, fakeSources().sources, INFO))
    for (const registry of registries) {
      nodes.push(
        await createNode({
          listen: ['/ip4/127.0.0.1/tcp/0'],
          metrics: { registry, topics: { '/gossip-learn/mnist-mlp/announce': 'announce' } },
        }),
      )
    }
    const [a, b] = nodes as [GossipLearnNode, GossipLearnNode]
    a.services.pubsub.subscribe('/gossip-learn/mnist-mlp/announce')
    await a.dial(multiaddr(b.getMultiaddrs()[0]!.toString()))

    for (const m of ours) {
      const families = await parseByName(await m.scrape())
      const names = [...families.keys()]
      expect(names.filter((n) => n.startsWith(METRIC_PREFIX)).length).toBeGreaterThanOrEqual(20)
      expect(names.filter((n) => n.startsWith('libp2p_')).length).toBeGreaterThan(3)
      expect(names.filter((n) => n.startsWith('gossipsub_')).length).toBeGreaterThan(10)
      expect(names).toContain('process_cpu_user_seconds')
    }
    const aFamilies = await parseByName(await ours[0]!.scrape())
    expect(
      sampleValue(aFamilies, 'gossipsub_topic_subscription_status', {
        topicStr: '/gossip-learn/mnist-mlp/announce',
      }),
    ).toBe(1)
  })
})
