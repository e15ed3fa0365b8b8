/**
 * The warning `start` prints while a node trains alone, which it would otherwise do in silence:
 * with no connection (an unreachable `--bootstrap`), with connections but no peer of its task
 * (a network of another dataset or model announces on another topic), or with peers of its task
 * but no received model merged (every one refused: another `--hidden` is an ArchMismatchError).
 */

/** No connection, or no peer of our task in view, for this long. 30 s covers a normal join (dial, identify, the first announcements). */
export const ALONE_WARNING_MS = 30_000

/**
 * Peers of our task in view, yet no received model merged for this long. A peer is pushed to about
 * once a round and a slow device's round of 20 steps at 2 steps/s is 10 s, so 120 s without one is
 * a mismatch or a fault, not chance (e^-12).
 */
export const UNMERGED_WARNING_MS = 120_000

/** How often the status is checked. */
const ALONE_CHECK_MS = 5_000

/** What the warning reads of the node's `/status`. */
export interface AloneStatus {
  connectedPeers: string[]
  viewSize: number
  task: string
  merges: number
  /** Refused inputs by error name (models and announcements). */
  rejected: Record<string, number>
}

type Reason = 'no-connection' | 'no-task-peer' | 'no-merge'

/**
 * Prints a loud line (a JSON `alone` event with --json-status) while the node trains alone: every
 * ALONE_WARNING_MS without a connection or a peer of its task, every UNMERGED_WARNING_MS without
 * a merge, naming what was refused meanwhile. Returns the interval to clear.
 */
export function warnWhenAlone(
  status: () => AloneStatus,
  print: (line: string) => void,
  json: boolean,
  now: () => number = Date.now,
): ReturnType<typeof setInterval> {
  let lastPeerAt = now()
  let lastMergeAt = lastPeerAt
  /** When this spell alone was last warned about; undefined while not alone. */
  let warnedAt: number | undefined
  let merges: number | undefined
  let rejectedAtMerge: Record<string, number> = {}
  const timer = setInterval(() => {
    const t = now()
    const s = status()
    if (s.merges !== merges) {
      if (merges === undefined) rejectedAtMerge = { ...s.rejected }
      else [lastMergeAt, rejectedAtMerge] = [t, { ...s.rejected }]
      merges = s.merges
    }
    const connected = s.connectedPeers.length
    const reason: Reason | undefined =
      connected === 0
        ? 'no-connection'
        : s.viewSize === 0
          ? 'no-task-peer'
          : t - lastMergeAt >= UNMERGED_WARNING_MS
            ? 'no-merge'
            : undefined
    if (reason !== 'no-connection' && reason !== 'no-task-peer') lastPeerAt = t
    if (reason === undefined) {
      warnedAt = undefined
      return
    }
    const from = reason === 'no-merge' ? lastMergeAt : lastPeerAt
    if (t - (warnedAt ?? from) < (reason === 'no-merge' ? UNMERGED_WARNING_MS : ALONE_WARNING_MS)) return
    warnedAt = t
    const forS = Math.round((t - from) / 1000)
    const refused = since(rejectedAtMerge, s.rejected)
    if (json) {
      print(JSON.stringify({ event: 'alone', reason, forS, connected, refused }))
      return
    }
    const mismatch = 'do --dataset, --model and --hidden match the network?'
    if (reason === 'no-connection') {
      print(`WARNING: no connected peer for ${forS} s: training alone (is --bootstrap reachable?)`)
    } else if (reason === 'no-task-peer') {
      print(
        `WARNING: ${connected} connected peer(s), but none announced task ${s.task} for ${forS} s: ` +
          `training alone (${mismatch})`,
      )
    } else {
      const names = Object.entries(refused).map(([name, n]) => `${name} ${n}`)
      print(
        `WARNING: no received model merged for ${forS} s` +
          (names.length > 0 ? `, refused meanwhile: ${names.join(', ')}` : '') +
          `: training alone${refused.ArchMismatchError !== undefined ? ` (${mismatch})` : ''}`,
      )
    }
  }, ALONE_CHECK_MS)
  timer.unref?.()
  return timer
}

/** Counts of `now` above those of `before`, the names that grew only. */
function since(before: Record<string, number>, now: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, n] of Object.entries(now)) {
    const grew = n - (before[name] ?? 0)
    if (grew > 0) out[name] = grew
  }
  return out
}
