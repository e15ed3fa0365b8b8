/**
 * Splits a labelled dataset among peers: iid, Dirichlet label skew, or label
 * shards, as in the federated-learning literature. Deterministic for a seed.
 */
import { InvalidArgumentError } from '../util/errors.ts'
import { createRng, type Rng } from '../util/rng.ts'

/** Non-iid by default: each peer's label mix is skewed, as on real devices (Hsu et al. 2019). */
export const DEFAULT_PARTITION = 'dirichlet:0.5'

/** Partition seed: peers of one network must agree on it so their shares are disjoint. */
export const DEFAULT_PARTITION_SEED = 1

export type PartitionSpec =
  | { kind: 'iid' }
  /** Per class, peer proportions ~ Dir(alpha): small alpha = strong label skew (Hsu et al. 2019). */
  | { kind: 'dirichlet'; alpha: number }
  /** Sort by label, cut into peers*k shards, k random shards per peer (McMahan et al. 2017). */
  | { kind: 'shards'; shardsPerPeer: number }

export interface PartitionOptions {
  spec: PartitionSpec | string
  peers: number
  seed: number
  /**
   * dirichlet only: every peer ends with at least this many samples, taken from the largest
   * peers (default 10; never more than floor(n / peers)). Keeps tiny alphas from leaving a peer empty.
   */
  minPerPeer?: number
}

/** Parses 'iid', 'dirichlet:<alpha>' or 'shards:<k>'; InvalidArgumentError otherwise. */
export function parsePartitionSpec(text: string): PartitionSpec {
  if (typeof text !== 'string') throw new InvalidArgumentError('partition spec must be a string')
  const s = text.trim()
  if (s === 'iid') return { kind: 'iid' }
  const [kind, arg, ...rest] = s.split(':')
  if ((kind === 'dirichlet' || kind === 'shards') && (arg === undefined || arg === '' || rest.length > 0)) {
    throw new InvalidArgumentError(`bad partition spec "${text}": expected ${kind}:<number>`)
  }
  if (kind === 'dirichlet') {
    const alpha = Number(arg)
    if (!Number.isFinite(alpha) || alpha <= 0) {
      throw new InvalidArgumentError(
        `bad partition spec "${text}": dirichlet alpha must be a positive number`,
      )
    }
    return { kind: 'dirichlet', alpha }
  }
  if (kind === 'shards') {
    const k = Number(arg)
    if (!Number.isInteger(k) || k < 1) {
      throw new InvalidArgumentError(
        `bad partition spec "${text}": shards per peer must be a positive integer`,
      )
    }
    return { kind: 'shards', shardsPerPeer: k }
  }
  throw new InvalidArgumentError(
    `unknown partition spec "${text}": expected iid, dirichlet:<alpha> or shards:<k>`,
  )
}

/** Canonical text of a spec (inverse of parsePartitionSpec). */
export function formatPartitionSpec(spec: PartitionSpec): string {
  switch (spec.kind) {
    case 'iid':
      return 'iid'
    case 'dirichlet':
      return `dirichlet:${spec.alpha}`
    case 'shards':
      return `shards:${spec.shardsPerPeer}`
  }
}

/**
 * Assigns every sample index to exactly one peer. Returns one ascending index list per
 * peer; every list is non-empty. Throws InvalidArgumentError when that is impossible.
 */
export function partition(labels: ArrayLike<number>, options: PartitionOptions): number[][] {
  const spec = typeof options.spec === 'string' ? parsePartitionSpec(options.spec) : options.spec
  const { peers } = options
  const n = labels.length
  if (!Number.isInteger(peers) || peers < 1)
    throw new InvalidArgumentError(`peers must be a positive integer, got ${peers}`)
  if (n < peers) throw new InvalidArgumentError(`cannot give ${peers} peers at least one of ${n} samples`)
  const rng = createRng(options.seed)
  let parts: number[][]
  switch (spec.kind) {
    case 'iid':
      parts = iid(n, peers, rng)
      break
    case 'dirichlet':
      parts = dirichlet(labels, peers, spec.alpha, rng, options.minPerPeer ?? 10)
      break
    case 'shards':
      parts = shards(labels, peers, spec.shardsPerPeer, rng)
      break
    default:
      throw new InvalidArgumentError(`unknown partition kind ${(spec as { kind: string }).kind}`)
  }
  for (const p of parts) p.sort((a, b) => a - b)
  return parts
}

function iid(n: number, peers: number, rng: Rng): number[][] {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i))
  return splitEvenly(order, peers)
}

/** Contiguous near-equal chunks (sizes differ by at most one). */
function splitEvenly<T>(items: T[], parts: number): T[][] {
  const out: T[][] = []
  for (let p = 0; p < parts; p++) {
    out.push(
      items.slice(Math.floor((p * items.length) / parts), Math.floor(((p + 1) * items.length) / parts)),
    )
  }
  return out
}

function byClass(labels: ArrayLike<number>): Map<number, number[]> {
  const classes = new Map<number, number[]>()
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]
    let list = classes.get(c)
    if (list === undefined) {
      list = []
      classes.set(c, list)
    }
    list.push(i)
  }
  // Class order must not depend on which label happens to come first.
  return new Map([...classes.entries()].sort((a, b) => a[0] - b[0]))
}

function dirichlet(
  labels: ArrayLike<number>,
  peers: number,
  alpha: number,
  rng: Rng,
  minPerPeer: number,
): number[][] {
  const parts: number[][] = Array.from({ length: peers }, () => [])
  for (const members of byClass(labels).values()) {
    rng.shuffle(members)
    const weights = Array.from({ length: peers }, () => rng.gamma(alpha))
    let total = weights.reduce((a, b) => a + b, 0)
    if (!(total > 0)) {
      // Every draw underflowed (alpha ~1e-3 and below): the whole class goes to one peer.
      weights.fill(0)
      weights[rng.int(peers)] = 1
      total = 1
    }
    // Cumulative rounding: counts sum exactly to the class size.
    let acc = 0
    let start = 0
    for (let p = 0; p < peers; p++) {
      acc += weights[p]
      const end = p === peers - 1 ? members.length : Math.round((acc / total) * members.length)
      for (let k = start; k < end; k++) parts[p].push(members[k])
      start = Math.max(start, end)
    }
  }
  // Clamped so the guarantee is always satisfiable (n >= peers was checked).
  rebalance(parts, Math.max(1, Math.min(minPerPeer, Math.floor(labels.length / peers))), rng)
  return parts
}

/** Moves random samples from the currently largest peer to each peer below `min`. */
function rebalance(parts: number[][], min: number, rng: Rng): void {
  for (const part of parts) {
    while (part.length < min) {
      let largest = parts[0]
      for (const q of parts) if (q.length > largest.length) largest = q
      if (largest.length <= min) return
      const k = rng.int(largest.length)
      part.push(largest[k])
      largest[k] = largest[largest.length - 1]
      largest.pop()
    }
  }
}

function shards(labels: ArrayLike<number>, peers: number, perPeer: number, rng: Rng): number[][] {
  const n = labels.length
  const count = peers * perPeer
  if (n < count)
    throw new InvalidArgumentError(
      `shards:${perPeer} for ${peers} peers needs at least ${count} samples, have ${n}`,
    )
  // Stable sort by label: within a class, the dataset's own order.
  const sorted = Array.from({ length: n }, (_, i) => i).sort((a, b) => labels[a] - labels[b] || a - b)
  const shardList = splitEvenly(sorted, count)
  const order = rng.shuffle(Array.from({ length: count }, (_, i) => i))
  const parts: number[][] = []
  for (let p = 0; p < peers; p++) {
    const mine: number[] = []
    for (let s = 0; s < perPeer; s++) for (const i of shardList[order[p * perPeer + s]]) mine.push(i)
    parts.push(mine)
  }
  return parts
}
