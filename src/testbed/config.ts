/** What a testbed run needs (the `testbed` command builds it from flags). */
import type { OptionalDefence } from '../gossip/defences/index.ts'
import type { SamplerKind } from '../gossip/sampling/index.ts'
import type { MergeMode } from '../merge/registry.ts'
import type { ArchKind } from '../model/types.ts'
import type { AttackerGroup } from './attack/modes.ts'
import type { ChurnEvent, TrainRateSpec } from './churn.ts'

export interface TestbedConfig {
  peers: number
  /** Daemons hosted by one process (`--peers-per-process`); absent or 1: a process per peer. */
  peersPerProcess?: number
  durationS: number
  targetAccuracy?: number
  /** A dataset spec, passed to every peer as --dataset (relative paths: from the testbed's directory). */
  dataset: string
  model: ArchKind
  hidden?: number
  partition: string
  seed: number
  initSeed?: number
  json?: string
  gossip: boolean
  merge: MergeMode
  sampler: SamplerKind
  randomShare?: number
  /** Sticky push partners of every peer (`--partners`); undefined: the daemon's default. */
  partners?: number
  /** Every peer's `--hungry-boost`; undefined: the daemon's default. */
  hungryBoost?: number
  /** Codec spec every peer pushes with (`raw-f32`, `f16`, `int8`, `topk:F`, `partial:F+int8`, ...). */
  codec: string
  /** `--quiet-inputs` of every peer; undefined: the daemon's default. */
  quietInputs?: number | false
  /** Upload budget of every peer in bytes/s (`--max-upload`); undefined: unlimited. */
  maxUploadBytesPerS?: number
  /** Inbound model transfers at once, every peer (`--max-inbound`); undefined: the default. */
  maxInbound?: number
  /** Emulated regions, e.g. `us-east:4,eu-west:4` (sets the peer count); implies WAN emulation. */
  regions?: string
  /** Links file (docs/WAN.md) for the emulation; default the built-in 3-region matrix. */
  links?: string
  stepsPerRound: number
  /** Least ms between two pushes of a peer (`--round-ms`); undefined: the daemon's default. */
  roundMs?: number
  fanout: number
  evalSize: number
  /** Most evaluation time per training time, passed to every peer (`--eval-share`). */
  evalShare: number
  /** Poll each peer's /status this often. */
  pollMs: number
  /** Keep the per-peer data dirs (logs, checkpoints) here instead of a temp dir removed at the end. */
  keepDir?: string
  /** Serve the live page on this port (0: any free port); undefined: no page. */
  http?: number
  /** Write the HTML report here (default: next to `json`, with .html). */
  report?: string
  /** After the run, run the same peers again without gossip (the baseline) and report both. */
  baseline?: boolean
  /** Byzantine attacker peers to start besides the honest `peers` (`--byzantine K:MODE`); none when absent. */
  byzantine?: AttackerGroup[]
  /** Attackers push this often (ms); default DEFAULT_ATTACK_INTERVAL_MS. */
  attackIntervalMs?: number
  /** Every peer's `--defences on|off`; absent: the daemon's default (on). */
  defences?: boolean
  /** Defences every peer switches off (`--no-defence`), with the defences on. */
  defencesOff?: readonly OptionalDefence[]
  /** Every peer's `--train-rate` (or a share of stragglers at a slower one); absent: uncapped. */
  trainRate?: TrainRateSpec
  /** Kills, restarts and late joins during the run (`--churn`), sorted by time; absent: none. */
  churn?: ChurnEvent[]
}
