/**
 * What one daemon needs to run, and its defaults. Each default is defined once, in the layer it
 * belongs to (data, model, merge, gossip), and assembled here; the CLI and the testbed import it.
 */
import { DEFAULT_DATASET, DEFAULT_EVAL_SIZE } from '../data/constants.ts'
import { DEFAULT_PARTITION, DEFAULT_PARTITION_SEED } from '../data/partition.ts'
import { DEFAULT_QUIET_SHARE } from '../data/quiet.ts'
import type { DefenceOptions, OptionalDefence } from '../gossip/defences/index.ts'
import { LEARNER_DEFAULTS } from '../gossip/learner.ts'
import { DEFAULT_PARTNERS, DEFAULT_SAMPLER, type SamplerKind } from '../gossip/sampling/index.ts'
import { type CodecOptions, DEFAULT_PUSH_CODEC, parseCodecSpec } from '../gossip/wire/codecs/index.ts'
import { PARTIAL } from '../gossip/wire/codecs/partial.ts'
import { splitDeltaSpec } from '../gossip/wire/delta.ts'
import { DEFAULT_MERGE_MODE, type MergeMode } from '../merge/registry.ts'
import { DEFAULT_BATCH_SIZE } from '../model/train.ts'
import type { ArchKind } from '../model/types.ts'
import { DEFAULT_ARCH_KIND, DEFAULT_LEARNING_RATE } from '../model/zoo.ts'

/** The learning knobs shared by `start` and `testbed`, with their defaults. */
export const LEARN_DEFAULTS = {
  dataset: DEFAULT_DATASET as string,
  model: DEFAULT_ARCH_KIND,
  partition: DEFAULT_PARTITION,
  seed: DEFAULT_PARTITION_SEED,
  merge: DEFAULT_MERGE_MODE,
  /** Issue 9's defences (fair share, plausible ages, rollback; with `--merge robust`): on unless measured off. */
  defences: true,
  sampler: DEFAULT_SAMPLER,
  codec: DEFAULT_PUSH_CODEC,
  /** Partial codecs leave out the first layer's weights of inputs this quiet (data/quiet.ts). */
  quietInputs: DEFAULT_QUIET_SHARE,
  stepsPerRound: LEARNER_DEFAULTS.stepsPerRound,
  roundMs: LEARNER_DEFAULTS.minRoundMs,
  fanout: LEARNER_DEFAULTS.fanout,
  batchSize: DEFAULT_BATCH_SIZE,
  learningRate: DEFAULT_LEARNING_RATE,
  evalSize: DEFAULT_EVAL_SIZE,
  evalShare: LEARNER_DEFAULTS.evalShare,
  evalIntervalMs: LEARNER_DEFAULTS.evalIntervalMs,
}

/** Defaults of a daemon's own settings (not learning). */
export const NODE_DEFAULTS = {
  listen: ['/ip4/0.0.0.0/tcp/0'],
  /** Peers of one network must agree on it (the partition is split this many ways). */
  peerCount: 8,
  httpHost: '127.0.0.1',
  /** A crash loses at most this much training. */
  checkpointIntervalMs: 30_000,
  statusIntervalMs: 10_000,
  /** Relaying costs the operator bandwidth and only helps from a reachable host: opt in with --relay. */
  relay: false,
  /** UPnP changes the router's configuration: opt in with --upnp. */
  upnp: false,
}

/** Everything a daemon needs; `start` builds it from flags, the testbed from its own. */
export interface StartConfig {
  /** Listen multiaddrs; a TCP port 0 takes the port stored in the data dir (listen.json) when there is one. */
  listen: string[]
  /** Public multiaddrs to announce instead of the listen addresses (a port forward, a load balancer); `--announce`. */
  announce?: string[]
  bootstrap: string[]
  /** Serve as a circuit relay v2 for peers behind NAT (`--relay`); default NODE_DEFAULTS.relay. */
  relay?: boolean
  /** Map our port on the router by UPnP (`--upnp`); default NODE_DEFAULTS.upnp. */
  upnp?: boolean
  /** undefined: pick the default data dir (see data-dir.ts). */
  dataDir?: string
  /** A dataset spec (`mnist`, `fashion-mnist`, `idx:...`, `csv:...`), checked by parseDatasetSpec. */
  dataset: string
  model: ArchKind
  hidden?: number
  partition: string
  /** undefined: derived from the peer id, so a restarted node keeps its share. */
  peerIndex?: number
  peerCount: number
  seed: number
  initSeed?: number
  http?: number
  httpHost: string
  gossip: boolean
  merge: MergeMode
  /** The learner's defences (fair share per sender, age plausibility, rollback); false: the undefended baseline. */
  defences: boolean
  /** Defences switched off one at a time (`--no-defence`); only with `defences` on. */
  defencesOff?: readonly OptionalDefence[]
  sampler: SamplerKind
  /** Topology sampler: share of uniform picks (undefined: the sampler's default). */
  randomShare?: number
  /** Push only to this many sticky partners; undefined: DEFAULT_PARTNERS with a delta codec, else any peer. */
  partners?: number
  /** A hungry peer's weight in a push round's first slot (sampling/hungry.ts); 1: off; undefined: the default. */
  hungryBoost?: number
  /** Codec spec for pushed models (`raw-f32`, `f16`, `int8`, `topk:F`, `partial:F+int8`, ...); inbound models may use any known codec. */
  codec: string
  /** `--quiet-inputs`: the share for data/quiet.ts, false to send every input's weights; undefined: the default. */
  quietInputs?: number | false
  /** Upload budget in bytes/s (`--max-upload`); undefined: unlimited (the default). */
  maxUploadBytesPerS?: number
  /** Inbound model transfers at once (`--max-inbound`); undefined: the exchange's default. */
  maxInbound?: number
  /** Cap on training steps per second (`--train-rate`, a slow device); undefined: as fast as the CPU allows. */
  trainRate?: number
  stepsPerRound: number
  /** Least ms from one round's end to the next (`--round-ms`; the learner's `minRoundMs`); undefined: the default. */
  roundMs?: number
  fanout: number
  batchSize: number
  learningRate: number
  evalSize: number
  /** Most evaluation time per training time (`--eval-share`; the learner's `evalShare`). */
  evalShare: number
  evalIntervalMs: number
  checkpointIntervalMs: number
  /** Print a status line this often (ms); 0 = never. */
  statusIntervalMs: number
  /** Write one JSON status line per interval to stdout instead of the human line (testbed). */
  jsonStatus: boolean
  /**
   * Stop when stdin closes (`--stop-on-stdin-close`): the testbed's pipe closes when the testbed
   * dies, even by SIGKILL, so its daemons do not train on as orphans.
   */
  stopOnStdinClose: boolean
}

/**
 * The learner's defences as `config` sets them: its options (false: the undefended baseline), and
 * whether pushes skip the peers the policy suspects. `--no-defence` takes one out of each.
 */
export function learnerDefences(config: Pick<StartConfig, 'defences' | 'defencesOff'>): {
  options: DefenceOptions | false
  skipSuspects: boolean
} {
  if (!config.defences) return { options: false, skipSuspects: false }
  const off = new Set(config.defencesOff ?? [])
  return { options: off.has('share') ? { share: false } : {}, skipSuspects: !off.has('suspects') }
}

/**
 * How many sticky partners the learner pushes to: `--partners`, else DEFAULT_PARTNERS with a
 * delta codec (a reference per destination needs destinations that come back), else undefined
 * (any peer of the view, the sampler's choice).
 */
export function pushPartners(config: Pick<StartConfig, 'partners' | 'codec'>): number | undefined {
  if (config.partners !== undefined) return config.partners
  return splitDeltaSpec(config.codec).delta ? DEFAULT_PARTNERS : undefined
}

/**
 * The push codec's options: the quiet inputs of this node's share (data/quiet.ts) when the codec
 * selects partial units and `--quiet-inputs` is not off; else none (other codecs send every input).
 */
export function pushCodecOptions(
  config: Pick<StartConfig, 'codec' | 'quietInputs'>,
  share: { quietInputs(share: number): Uint8Array },
): CodecOptions | undefined {
  if (config.quietInputs === false) return undefined
  if (parseCodecSpec(splitDeltaSpec(config.codec).inner).selection !== PARTIAL) return undefined
  return { quietInputs: share.quietInputs(config.quietInputs ?? LEARN_DEFAULTS.quietInputs) }
}
