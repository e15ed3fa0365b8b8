/**
 * Remembered peers: the peers this node has exchanged models with, and the addresses they can be
 * dialled at, kept in the data dir (`peers.json`) so a restarted node rejoins the network through
 * them even when every `--bootstrap` peer is gone. Bounded: the most recently seen peers win.
 */
import { readFile, stat } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { PeerBookError } from './errors.ts'
import { writeFileAtomic } from './files.ts'

export const PEER_BOOK_FILE = 'peers.json'

/**
 * One live peer is enough to rejoin, and a restart dials every remembered peer at once: 64 leaves
 * about 13 live ones after the 80% churn issue 11 tests against, and fits the connection manager's
 * 64 parallel dials (create-node.ts), so a restart is one round of dials.
 */
export const MAX_REMEMBERED_PEERS = 64

/** Identify lists every interface of a peer: 8 covers IPv4 and IPv6 on a few interfaces plus relayed addresses. */
export const MAX_ADDRS_PER_PEER = 8

/**
 * 64 peers x 8 addresses x ~200 characters is about 100 KiB: a file ten times larger was not
 * written by us, and is refused before it is read into memory.
 */
export const MAX_PEER_BOOK_BYTES = 1024 * 1024

const FORMAT_VERSION = 1

/** One remembered peer: its id, dialable addresses (without `/p2p/<id>`, most trusted first) and when it was last seen (ms). */
export interface RememberedPeer {
  peerId: string
  addrs: string[]
  lastSeen: number
}

export interface PeerBookInit {
  /** Our own peer id: never remembered. */
  self?: string
  maxPeers?: number
  maxAddrsPerPeer?: number
}

const HOST_PROTOCOLS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6', 'dnsaddr'])

/**
 * `addr` as another node can dial it to reach `peerId`, without the trailing `/p2p/<peerId>`; or
 * undefined when it cannot be dialled: not a multiaddr, an unspecified host (`0.0.0.0`, `::`), no
 * TCP port or port 0, another peer's id, or a `/p2p-circuit` that names no relay.
 */
export function dialableAddr(addr: string, peerId: string): string | undefined {
  let comps: Array<{ name: string; value?: string }>
  try {
    comps = multiaddr(addr).getComponents()
  } catch {
    return undefined
  }
  const last = comps.at(-1)
  if (last?.name === 'p2p') {
    if (last.value !== peerId) return undefined
    comps = comps.slice(0, -1)
  }
  const host = comps[0]
  if (host === undefined || !HOST_PROTOCOLS.has(host.name) || host.value === undefined) return undefined
  if (isIP(host.value) !== 0 && isUnspecified(host.value)) return undefined
  const tcp = comps.find((c) => c.name === 'tcp')
  const port = Number(tcp?.value)
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined
  const circuit = comps.findIndex((c) => c.name === 'p2p-circuit')
  for (let i = 0; i < comps.length; i++) {
    // A /p2p/ inside the address names the relay, and must be followed by /p2p-circuit.
    if (comps[i]!.name === 'p2p' && i !== circuit - 1) return undefined
  }
  if (circuit !== -1) {
    if (circuit !== comps.length - 1 || circuit < 3 || comps[circuit - 1]!.name !== 'p2p') return undefined
    if (comps[circuit - 1]!.value === peerId) return undefined
  }
  return comps.map((c) => (c.value === undefined ? `/${c.name}` : `/${c.name}/${c.value}`)).join('')
}

function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || /^[0:]+$/.test(ip)
}

function validPeerId(id: unknown): id is string {
  if (typeof id !== 'string') return false
  try {
    peerIdFromString(id)
    return true
  } catch {
    return false
  }
}

/** The remembered peers of one node, most recently seen first when listed. Pure: persistence is loadPeerBook / savePeerBook. */
export class PeerBook {
  private readonly entries = new Map<string, RememberedPeer>()
  private readonly self?: string
  private readonly maxPeers: number
  private readonly maxAddrs: number
  /** Set when something changed since the last save (savePeerBook clears it). */
  dirty = false

  constructor(init: PeerBookInit = {}) {
    this.self = init.self
    this.maxPeers = init.maxPeers ?? MAX_REMEMBERED_PEERS
    this.maxAddrs = init.maxAddrsPerPeer ?? MAX_ADDRS_PER_PEER
  }

  /**
   * Record that we exchanged with `peerId`, reachable at `addrs` (given first, ahead of the ones
   * kept from before). Undialable addresses are dropped; a peer with none is not remembered.
   * Returns true when the peer was not remembered before.
   */
  see(peerId: string, addrs: string[], now: number = Date.now()): boolean {
    if (peerId === this.self || !validPeerId(peerId)) return false
    const old = this.entries.get(peerId)
    const fresh = addrs.map((a) => dialableAddr(a, peerId)).filter((a): a is string => a !== undefined)
    const merged = [...new Set([...fresh, ...(old?.addrs ?? [])])].slice(0, this.maxAddrs)
    if (merged.length === 0) return false
    this.entries.delete(peerId)
    this.entries.set(peerId, { peerId, addrs: merged, lastSeen: Math.max(now, old?.lastSeen ?? 0) })
    this.dirty = true
    this.evict()
    return old === undefined
  }

  /** Forget a peer (the peer policy refused it). */
  forget(peerId: string): void {
    if (this.entries.delete(peerId)) this.dirty = true
  }

  has(peerId: string): boolean {
    return this.entries.has(peerId)
  }

  get size(): number {
    return this.entries.size
  }

  /** Remembered peers, most recently seen first. */
  peers(): RememberedPeer[] {
    return [...this.entries.values()]
      .sort((a, b) => b.lastSeen - a.lastSeen)
      .map((p) => ({ ...p, addrs: [...p.addrs] }))
  }

  /** Every remembered address with `/p2p/<id>` appended: what `--bootstrap` would take. */
  multiaddrs(): string[] {
    return this.peers().flatMap((p) => p.addrs.map((a) => `${a}/p2p/${p.peerId}`))
  }

  /** Drop the least recently seen peers beyond the bound. */
  private evict(): void {
    if (this.entries.size <= this.maxPeers) return
    for (const p of this.peers().slice(this.maxPeers)) this.entries.delete(p.peerId)
  }
}

interface PeerBookFile {
  version: number
  peers: RememberedPeer[]
}

/**
 * The peer book kept in `dataDir`; empty when there is none yet. A file that cannot be read, is too
 * large or is not a peer list is a PeerBookError (the daemon warns and starts empty); entries that
 * are malformed or undialable are skipped.
 */
export async function loadPeerBook(dataDir: string, init: PeerBookInit = {}): Promise<PeerBook> {
  const path = join(dataDir, PEER_BOOK_FILE)
  const book = new PeerBook(init)
  let text: string
  try {
    const st = await stat(path)
    if (!st.isFile()) throw new PeerBookError(`${path} is not a file: remove it`)
    if (st.size > MAX_PEER_BOOK_BYTES) {
      throw new PeerBookError(`${path} is ${st.size} bytes (at most ${MAX_PEER_BOOK_BYTES}): remove it`)
    }
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return book
    if (err instanceof PeerBookError) throw err
    throw new PeerBookError(
      `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    )
  }
  let parsed: Partial<PeerBookFile>
  try {
    parsed = JSON.parse(text) as Partial<PeerBookFile>
  } catch {
    throw new PeerBookError(`${path} is not JSON: it will be overwritten`)
  }
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    parsed.version !== FORMAT_VERSION ||
    !Array.isArray(parsed.peers)
  ) {
    throw new PeerBookError(`${path} is not a version ${FORMAT_VERSION} peer list: it will be overwritten`)
  }
  // Oldest first, so the bound keeps the most recently seen.
  const entries = parsed.peers.filter(
    (p): p is RememberedPeer =>
      p !== null &&
      typeof p === 'object' &&
      Array.isArray(p.addrs) &&
      p.addrs.every((a) => typeof a === 'string') &&
      Number.isFinite(p.lastSeen),
  )
  for (const p of entries.sort((a, b) => a.lastSeen - b.lastSeen)) book.see(p.peerId, p.addrs, p.lastSeen)
  book.dirty = false
  return book
}

/** Write the book to `dataDir` atomically (0600: it lists who this node talks to) and mark it clean. */
export async function savePeerBook(dataDir: string, book: PeerBook): Promise<void> {
  const file: PeerBookFile = { version: FORMAT_VERSION, peers: book.peers() }
  book.dirty = false
  try {
    await writeFileAtomic(
      join(dataDir, PEER_BOOK_FILE),
      new TextEncoder().encode(`${JSON.stringify(file, null, 1)}\n`),
      0o600,
    )
  } catch (err) {
    book.dirty = true
    throw err
  }
}
