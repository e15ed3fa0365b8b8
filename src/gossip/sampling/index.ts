/** Peer sampling: whom the learner pushes to. Uniform and topology-aware samplers behind one interface. */
import { type PeerSampler, UniformSampler } from './sampler.ts'
import { TopologySampler, type TopologySamplerInit } from './topology-sampler.ts'

export { DEFAULT_HUNGRY_BOOST, HungrySampler, type HungrySamplerInit } from './hungry.ts'
export { DEFAULT_PARTNER_GRACE_MS, DEFAULT_PARTNERS, PartnerSampler } from './partners.ts'
export { type PeerEntry, type PeerSampler, UniformSampler } from './sampler.ts'
export { TOPOLOGY_SAMPLER_DEFAULTS, TopologySampler, type TopologySamplerInit } from './topology-sampler.ts'

export const SAMPLER_KINDS = ['uniform', 'topology'] as const
export type SamplerKind = (typeof SAMPLER_KINDS)[number]

/**
 * Uniform by default: it needs no RTT to be right. On the emulated 3-region topology the topology
 * sampler sent 3.7-4.4x fewer bytes across regions at equal or better accuracy, but was faster to
 * an accuracy level only where pushes across regions were slow, and by how much varied from seed
 * to seed (1.12-1.83x over fifteen 300 s runs at 1 % loss, 1.07-1.76x at mid-run levels; 0.89x at
 * 0.1 % loss; bench:topology, docs/BENCHMARKS.md).
 */
export const DEFAULT_SAMPLER: SamplerKind = 'uniform'

/** Builds the sampler of `kind`; the topology sampler needs our coordinate. */
export function createSampler(kind: SamplerKind, init: TopologySamplerInit): PeerSampler {
  return kind === 'topology' ? new TopologySampler(init) : new UniformSampler()
}
