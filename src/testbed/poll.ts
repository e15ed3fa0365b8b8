/**
 * Polling the peers' HTTP /status: one request in flight per peer, each answer appended to the
 * peer's accuracy curve, and when each peer entered another's view.
 */
import type { NodeStatus } from '../node/daemon.ts'
import type { Peer } from './spawn.ts'

/**
 * How long a poll round waits for each peer's /status (an answer that comes later is still
 * recorded). A round waits for every peer, so this bounds a round; 2 s left 23 of 128 peers
 * (16 per process, loops 1-3 s late) without a single reading in 300 s.
 */
const POLL_TIMEOUT_MS = 10_000

/**
 * The last poll, whose answers are the run's results, waits longer: at 128 peers a host's 16
 * daemons, loops seconds late, answered none of a run's polls within 10 s (35 peers of one run
 * had no result at all, and counted as having received nothing).
 */
export const FINAL_POLL_TIMEOUT_MS = 60_000

/**
 * Asks `peer` for its status and waits up to `waitMs` for the answer. One request per peer is in
 * flight at a time, bounded by FINAL_POLL_TIMEOUT_MS: a host seconds behind builds and writes
 * every request it reads, abandoned or not, so a fresh one each round while the last is still
 * queued only adds to what it must catch up with (hosts that answered no poll were still pushing
 * models: docs/BENCHMARKS.md, Scale).
 */
export async function poll(peer: Peer, t0: number, waitMs = POLL_TIMEOUT_MS): Promise<void> {
  if (peer.exited || peer.httpPort === undefined) return
  peer.polling ??= request(peer, t0).finally(() => {
    peer.polling = undefined
  })
  const inFlight = peer.polling
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([inFlight, new Promise((r) => (timer = setTimeout(r, waitMs)))])
  clearTimeout(timer)
}

/** The run's last poll: a request still in flight settles first, then a fresh one is waited for. */
export async function finalPoll(peer: Peer, t0: number): Promise<void> {
  await peer.polling
  await poll(peer, t0, FINAL_POLL_TIMEOUT_MS)
}

async function request(peer: Peer, t0: number): Promise<void> {
  try {
    const res = await fetch(`http://127.0.0.1:${peer.httpPort}/status`, {
      signal: AbortSignal.timeout(FINAL_POLL_TIMEOUT_MS),
    })
    const s = (await res.json()) as NodeStatus
    peer.status = s
    peer.viewSince = earliest(peer.viewSince, s.viewSince)
    peer.series.push({
      t: Math.round((Date.now() - t0) / 100) / 10,
      accuracy: s.lastAccuracy ?? null,
      age: s.age,
      modelsReceived: s.modelsReceived,
      bytesSent: s.bytesSent,
      steps: s.steps,
      loss: s.lastLoss ?? null,
      modelsSent: s.modelsSent,
      bytesReceived: s.bytesReceived,
      merges: s.merges,
      view: s.viewSize,
      connected: s.connectedPeers.length,
      mesh: s.announceMesh,
      bytesWithinRegion: s.wan?.bytesSentIntraRegion,
      bytesAcrossRegions: s.wan?.bytesSentInterRegion,
    })
  } catch {
    // A busy peer may miss a poll; the next one catches up.
  }
}

/** `seen` with each entry of `next` whose time is new or earlier (a copy; `seen` may be absent). */
export function earliest(
  seen: ReadonlyMap<string, number> | undefined,
  next: Record<string, number> | undefined,
): Map<string, number> {
  const out = new Map(seen)
  for (const [id, at] of Object.entries(next ?? {})) {
    const known = out.get(id)
    if (known === undefined || at < known) out.set(id, at)
  }
  return out
}

/** For each peer id, the earliest time (ms since the epoch) some other peer's answers say it entered that peer's view. */
export function enteredViews(
  peers: ReadonlyArray<{ peerId?: string; viewSince?: ReadonlyMap<string, number> }>,
): Map<string, number> {
  const first = new Map<string, number>()
  for (const p of peers) {
    for (const [id, at] of p.viewSince ?? []) {
      const known = first.get(id)
      if (id !== p.peerId && (known === undefined || at < known)) first.set(id, at)
    }
  }
  return first
}
