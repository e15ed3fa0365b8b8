/**
 * The daemon's glue between the libp2p node and its peer book: which addresses of a peer to
 * remember, when to write peers.json, whom the re-dialler dials and how.
 */
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { bounded } from './data-dir.ts'
import { PeerBookError } from './errors.ts'
import { dialableAddr, loadPeerBook, PEER_BOOK_FILE, PeerBook, savePeerBook } from './peer-book.ts'
import type { RedialTarget } from './redial.ts'

/**
 * A peer sends a model every round or so: its remembered addresses and last-seen time are
 * refreshed at most this often (each refresh reads the peer store), not on every model.
 */
export const PEER_BOOK_REFRESH_MS = 30_000

/** A newly met peer is written to peers.json this soon, so a node killed before its next checkpoint still remembers it. */
export const PEER_BOOK_NEW_PEER_SAVE_MS = 2000

/**
 * When each peer was last refreshed, for the throttle. Only the last `periodMs` matter, so older
 * entries are dropped as new ones come: a node meets new peers for as long as it runs.
 */
export class RefreshTimes {
  private readonly at = new Map<string, number>()

  constructor(private readonly periodMs: number) {}

  /** True when `peerId` was not refreshed within the period before `now`. */
  due(peerId: string, now: number): boolean {
    return now - (this.at.get(peerId) ?? Number.NEGATIVE_INFINITY) >= this.periodMs
  }

  mark(peerId: string, now: number): void {
    // Re-inserted, so the map stays in time order and the stale ones are at its front.
    this.at.delete(peerId)
    this.at.set(peerId, now)
    for (const [id, t] of this.at) {
      if (now - t < this.periodMs) break
      this.at.delete(id)
    }
  }

  get size(): number {
    return this.at.size
  }
}

/** The daemon's remembered peers: the book, and how it is fed and saved. */
export interface RememberedPeers {
  book: PeerBook
  /** We exchanged a model with `peerId`: remember where it can be dialled (throttled, never throws). */
  see(node: Libp2p, peerId: string): void
  /** Write peers.json if it changed; failures are printed, never thrown. Saves never overlap. */
  save(): Promise<void>
  /** Cancel a pending save (the caller saves once more on an ordered shutdown). */
  stop(): void
}

/**
 * Load peers.json from `dir`. A corrupt or unreadable file is printed as a warning and the node
 * starts with no remembered peers (the file is overwritten at the next save): never a crash.
 */
export async function rememberedPeers(
  dir: string,
  self: string,
  dirLabel: string,
  print: (line: string) => void,
  signal?: AbortSignal,
  timeoutMs?: number,
): Promise<RememberedPeers> {
  let book: PeerBook
  try {
    book = await bounded(dirLabel, loadPeerBook(dir, { self }), signal, timeoutMs)
  } catch (err) {
    if (!(err instanceof PeerBookError)) throw err
    print(`warning: ${err.message}; starting with no remembered peers`)
    book = new PeerBook({ self })
  }
  const refreshed = new RefreshTimes(PEER_BOOK_REFRESH_MS)
  const looking = new Set<string>()
  let saving: Promise<void> = Promise.resolve()
  let timer: ReturnType<typeof setTimeout> | undefined
  const save = (): Promise<void> => {
    saving = saving.then(async () => {
      if (!book.dirty) return
      await bounded(dirLabel, savePeerBook(dir, book), undefined, timeoutMs).catch((err: Error) =>
        print(`could not write ${PEER_BOOK_FILE}: ${err.message}`),
      )
    })
    return saving
  }
  return {
    book,
    see(node, peerId) {
      const now = Date.now()
      if (!refreshed.due(peerId, now)) return
      if (looking.has(peerId)) return
      looking.add(peerId)
      peerAddrs(node, peerId)
        .then((addrs) => {
          const isNew = book.see(peerId, addrs, now)
          // No dialable address yet (identify still running): ask again with the next model.
          if (book.has(peerId)) refreshed.mark(peerId, now)
          if (!isNew || timer !== undefined) return
          timer = setTimeout(() => {
            timer = undefined
            void save()
          }, PEER_BOOK_NEW_PEER_SAVE_MS)
          timer.unref?.()
        })
        .catch(() => {})
        .finally(() => looking.delete(peerId))
    },
    save,
    stop() {
      clearTimeout(timer)
      timer = undefined
    },
  }
}

/**
 * Where `peerId` can be dialled: the addresses of our outbound connections to it first (they
 * worked), then what identify and its announcements put in the peer store. An inbound
 * connection's address is the peer's source port, not a listener, so it is left out.
 */
async function peerAddrs(node: Libp2p, peerId: string): Promise<string[]> {
  const id = peerIdFromString(peerId)
  const dialled = node
    .getConnections(id)
    .filter((c) => c.direction === 'outbound')
    .map((c) => c.remoteAddr.toString())
  const stored = await node.peerStore.get(id).then(
    (p) => p.addresses.map((a) => a.multiaddr.toString()),
    () => [] as string[],
  )
  return [...dialled, ...stored]
}

/**
 * Whom to re-dial: each `--bootstrap` peer and each remembered peer once (addresses merged),
 * bootstrap peers first, minus the ones `skip` names (ourselves, peers the policy refuses).
 */
export function redialTargets(
  bootstrap: string[],
  book: PeerBook,
  skip: (peerId: string) => boolean,
): RedialTarget[] {
  const byId = new Map<string, string[]>()
  for (const t of bootstrapTargets(bootstrap, () => false)) byId.set(t.peerId, t.addrs)
  for (const p of book.peers()) byId.set(p.peerId, [...new Set([...(byId.get(p.peerId) ?? []), ...p.addrs])])
  return [...byId].filter(([id]) => !skip(id)).map(([peerId, addrs]) => ({ peerId, addrs }))
}

/** The bootstrap list as dial targets, one per peer id; addresses without `/p2p/<id>` are left out. */
export function bootstrapTargets(bootstrap: string[], skip: (peerId: string) => boolean): RedialTarget[] {
  const byId = new Map<string, string[]>()
  for (const a of bootstrap) {
    const id = /\/p2p\/([^/]+)$/.exec(a)?.[1]
    const addr = id !== undefined ? dialableAddr(a, id) : undefined
    if (id === undefined || addr === undefined) continue
    byId.set(id, [...(byId.get(id) ?? []), addr])
  }
  return [...byId].filter(([id]) => !skip(id)).map(([peerId, addrs]) => ({ peerId, addrs }))
}

/** Dial `target` by peer id, after telling the peer store where it is (libp2p tries each address). */
export async function dialTarget(node: Libp2p, target: RedialTarget, signal: AbortSignal): Promise<void> {
  const id = peerIdFromString(target.peerId)
  if (target.addrs.length > 0)
    await node.peerStore.merge(id, { multiaddrs: target.addrs.map((a) => multiaddr(a)) })
  await node.dial(id, { signal })
}
