/**
 * When each testbed peer was down, and which peers joined late: derived from the `up` spans the
 * testbed records, for the JSON (the report draws them) and for scripts that read it.
 */

/** One interval in s since every initial peer was up; `to` null: still running at the end. */
export interface UpSpan {
  from: number
  to: number | null
}

/** An interval during which a peer was not running, in s since every initial peer was up. */
export interface DownInterval {
  from: number
  to: number
}

/** What `peerAvailability` needs of a peer. */
export interface AvailabilityInput {
  index: number
  up?: readonly UpSpan[]
}

/** A peer's availability over the run. */
export interface PeerAvailability {
  /** Started after the initial peers (`--churn join:N@T`). */
  lateJoiner: boolean
  /** When a late joiner first came up; absent for initial peers and joiners that never did. */
  joinedAt?: number
  /** Intervals down: between its spans, and from its last exit to the end of the run. */
  down: DownInterval[]
}

/**
 * The intervals a peer was down between `startS` (its first start) and `endS` (the end of the
 * run), from its up spans. Spans may come in any order; a peer with no span has no interval.
 */
export function downIntervals(up: readonly UpSpan[], endS: number): DownInterval[] {
  const spans = [...up].sort((a, b) => a.from - b.from)
  const out: DownInterval[] = []
  for (let i = 0; i < spans.length; i++) {
    const to = spans[i]!.to
    if (to === null) continue
    const next = spans[i + 1]
    const until = next !== undefined ? next.from : endS
    if (until > to) out.push({ from: to, to: until })
  }
  return out
}

/**
 * Availability of a peer of a run that started `initialPeers` peers (indices 0 to initialPeers - 1;
 * the testbed numbers late joiners after them) and lasted `endS` seconds.
 */
export function peerAvailability(
  peer: AvailabilityInput,
  initialPeers: number,
  endS: number,
): PeerAvailability {
  const up = peer.up ?? []
  const lateJoiner = peer.index >= initialPeers
  const first = up.length > 0 ? Math.min(...up.map((s) => s.from)) : undefined
  return {
    lateJoiner,
    ...(lateJoiner && first !== undefined ? { joinedAt: first } : {}),
    down: downIntervals(up, endS),
  }
}
