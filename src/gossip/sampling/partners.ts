/**
 * Sticky partners (`--partners N`): the learner pushes only to N peers it keeps, chosen by the
 * underlying sampler (uniform or topology-aware) and replaced when one has been out of the view
 * for `graceMs`. Delta frames (../wire/delta.ts) need it: a reference per destination pays off
 * only if the destination comes back often. In bench:compression (16 peers, a twentieth of
 * raw-f32's bytes) `delta+partial:0.25+int2` ended 88.3 % with 4 fixed partners against 86.3 %
 * with a new random peer per push, whose references were many pushes stale (docs/BENCHMARKS.md).
 * A partner missing from one call's view (a push to it in flight, a suspect) is kept through the
 * grace period, so the set does not churn with every push.
 */
import { InvalidArgumentError } from '../../util/errors.ts'
import { type PeerEntry, type PeerSampler, UniformSampler } from './sampler.ts'

/**
 * How long a partner may be out of the view before it is replaced. 30 s: longer than a push's
 * round trip and a round of training (a partner is out of the view while a push to it is in
 * flight), far shorter than a run.
 */
export const DEFAULT_PARTNER_GRACE_MS = 30_000

/** Partners a node keeps with delta frames when `--partners` is not given: bench:compression's 4. */
export const DEFAULT_PARTNERS = 4

export interface PartnerSamplerInit {
  partners: number
  graceMs?: number
  random?: () => number
  now?: () => number
}

/** See the module comment. */
export class PartnerSampler implements PeerSampler {
  private readonly size: number
  private readonly graceMs: number
  /** Picks uniformly among the partners in the view. */
  private readonly among: UniformSampler
  private readonly now: () => number
  /** Partner ids and when each was last in the view. */
  private readonly partners = new Map<string, number>()

  constructor(
    private readonly base: PeerSampler,
    init: PartnerSamplerInit,
  ) {
    if (!(Number.isInteger(init.partners) && init.partners >= 1)) {
      throw new InvalidArgumentError(`partners must be an integer >= 1, got ${init.partners}`)
    }
    this.size = init.partners
    this.graceMs = init.graceMs ?? DEFAULT_PARTNER_GRACE_MS
    this.among = new UniformSampler({ random: init.random })
    this.now = init.now ?? Date.now
  }

  /** The current partners (ids). */
  current(): string[] {
    return [...this.partners.keys()]
  }

  sample(view: readonly PeerEntry[], count: number): PeerEntry[] {
    const now = this.now()
    const present = new Map(view.map((p) => [p.peerId, p]))
    for (const [id, seen] of this.partners) {
      if (present.has(id)) this.partners.set(id, now)
      else if (now - seen > this.graceMs) this.partners.delete(id)
    }
    if (this.partners.size < this.size) {
      const others = view.filter((p) => !this.partners.has(p.peerId))
      for (const p of this.base.sample(others, this.size - this.partners.size))
        this.partners.set(p.peerId, now)
    }
    const live = [...this.partners.keys()].flatMap((id) => present.get(id) ?? [])
    return this.among.sample(live, count)
  }
}
