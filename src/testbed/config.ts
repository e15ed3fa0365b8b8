/** What a testbed run needs (the `testbed` command builds it from flags). */
import type { SamplerKind } from '../gossip/sampling/index.ts'
import type { ArchKind, MergeMode } from '../model/types.ts'
import type { DatasetName } from '../node/config.ts'

export interface TestbedConfig {
  peers: number
  durationS: number
  targetAccuracy?: number
  dataset: DatasetName
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
  /** Emulated regions, e.g. `us-east:4,eu-west:4` (sets the peer count); implies WAN emulation. */
  regions?: string
  /** Links file (docs/WAN.md) for the emulation; default the built-in 3-region matrix. */
  links?: string
  stepsPerRound: number
  fanout: number
  evalSize: number
  /** Poll each peer's /status this often. */
  pollMs: number
  /** Keep the per-peer data dirs (logs, checkpoints) here instead of a temp dir removed at the end. */
  keepDir?: string
}
