/**
 * Membership over gossipsub: every node announces a small descriptor of itself
 * on `/gossip-learn/<task>/announce` and keeps a live view of the peers it
 * heard from. Model payloads never travel here (gossipsub floods the mesh).
 */
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidArgumentError } from '../util/errors.ts'
import { InvalidDescriptorError } from './errors.ts'
import { logSafeMessage } from './log-safe.ts'
import type { PeerEntry } from './sampling/sampler.ts'
import { type Coordinate, isValidCoordinate, validateCoordinate } from './topology/coordinate.ts'

/** What a peer says about itself. Gossipsub signs the message, so `peerId` must equal the signer. */
export interface PeerDescriptor {
  v: 1
  peerId: string
  addrs: string[]
  age: number
  accuracy?: number
  coordinate?: Coordinate
  region?: string
  /** The sender's announcement period in ms (absent from nodes before it grew with the network). */
  every?: number
  /** It has merged no model since it started: pushes favour it for a while (sampling/hungry.ts). */
  hungry?: boolean
}

/** A view entry: sampler fields plus what the descriptor said. */
export interface ViewEntry extends PeerEntry {
  addrs: string[]
  age: number
  accuracy?: number
  region?: string
  /** How long the entry lives without a sign of life: three of the sender's announcement periods. */
  ttlMs?: number
  /** When the peer entered the view (this clock): an entry expired or evicted and heard again starts anew. */
  addedAt: number
}

/**
 * Announcement periods. Every node hears every announcement (gossipsub floods the topic), so with
 * a fixed period the work of each node grows with the network: at 48 peers announcing every 2 s,
 * checking the 24 signatures a second took 6 % of a saturated host's CPU, and it grows as the
 * square of the network. The period grows with the network instead, so a node hears about
 * `1000 / perPeerMs` announcements a second whatever the network's size (until the cap). At 4 a
 * second, handling them (each received from several mesh peers, checked, forwarded) was still a
 * sixth to a quarter of a host's CPU with 16 daemons in it.
 */
export const ANNOUNCE_DEFAULTS = {
  /** The period of a small network (and of a node that knows nobody yet, so it is heard soon). */
  intervalMs: 2000,
  /** Added per peer heard from: 2 announcements a second heard; 9 peers announce every 4.5 s, 120 every 60 s. */
  perPeerMs: 500,
  /** Longest period, so a dead peer leaves views within 3 of them (pushes that fail evict it sooner). */
  maxIntervalMs: 60_000,
} as const

/**
 * How long after a peer first says it is hungry its view entry says so. 5 min: an honest peer
 * that is heard at all gets a model well within it (a median of 9 models per peer in 300 s at 128
 * peers, docs/BENCHMARKS.md Scale), and a peer that claims hunger forever draws the boosted share
 * of pushes for this long per node that hears it, then an ordinary one.
 */
export const DEFAULT_HUNGRY_WINDOW_MS = 5 * 60_000

/** Descriptors are tiny; anything larger is garbage or an attack. */
export const MAX_DESCRIPTOR_BYTES = 4096
const MAX_ADDRS = 16

export function announceTopic(task: string): string {
  return `/gossip-learn/${task}/announce`
}

const isFiniteNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x)

/** Parse and validate an announcement; throws InvalidDescriptorError. `from` is the gossipsub signer. */
export function decodeDescriptor(data: Uint8Array, from: string): PeerDescriptor {
  if (data.byteLength > MAX_DESCRIPTOR_BYTES) {
    throw new InvalidDescriptorError(`descriptor of ${data.byteLength} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  } catch {
    throw new InvalidDescriptorError('descriptor is not UTF-8 JSON')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidDescriptorError('descriptor is not an object')
  }
  const d = raw as Record<string, unknown>
  if (d.v !== 1) throw new InvalidDescriptorError(`unsupported descriptor version ${String(d.v)}`)
  if (d.peerId !== from) throw new InvalidDescriptorError('descriptor peerId does not match the signer')
  if (!Array.isArray(d.addrs) || d.addrs.length > MAX_ADDRS || !d.addrs.every((a) => typeof a === 'string')) {
    throw new InvalidDescriptorError('descriptor addrs must be a short list of strings')
  }
  for (const a of d.addrs as string[]) {
    try {
      multiaddr(a)
    } catch {
      throw new InvalidDescriptorError(`descriptor addr is not a multiaddr: ${a.slice(0, 80)}`)
    }
  }
  if (!isFiniteNumber(d.age) || d.age < 0) throw new InvalidDescriptorError('descriptor age must be >= 0')
  if (d.accuracy !== undefined && (!isFiniteNumber(d.accuracy) || d.accuracy < 0 || d.accuracy > 1)) {
    throw new InvalidDescriptorError('descriptor accuracy must be in [0, 1]')
  }
  if (d.region !== undefined && (typeof d.region !== 'string' || d.region.length > 64)) {
    throw new InvalidDescriptorError('descriptor region must be a short string')
  }
  if (
    d.every !== undefined &&
    (!isFiniteNumber(d.every) || d.every <= 0 || d.every > ANNOUNCE_DEFAULTS.maxIntervalMs)
  ) {
    throw new InvalidDescriptorError(
      `descriptor period must be in (0, ${ANNOUNCE_DEFAULTS.maxIntervalMs}] ms`,
    )
  }
  if (d.hungry !== undefined && typeof d.hungry !== 'boolean') {
    throw new InvalidDescriptorError('descriptor hungry must be a boolean')
  }
  let coordinate: Coordinate | undefined
  if (d.coordinate !== undefined) {
    if (!isValidCoordinate(d.coordinate)) {
      throw new InvalidDescriptorError('descriptor coordinate is malformed')
    }
    coordinate = validateCoordinate(d.coordinate)
  }
  return {
    v: 1,
    peerId: d.peerId,
    addrs: d.addrs as string[],
    age: d.age,
    accuracy: d.accuracy as number | undefined,
    coordinate,
    region: d.region as string | undefined,
    every: d.every as number | undefined,
    hungry: d.hungry as boolean | undefined,
  }
}

export function encodeDescriptor(d: PeerDescriptor): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(d))
}

/** The slice of gossipsub that membership uses (a fake in unit tests). */
export interface PubsubLike {
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  publish(topic: string, data: Uint8Array): Promise<unknown>
  addEventListener(type: 'message', listener: (evt: CustomEvent<AnnounceMessage>) => void): void
  removeEventListener(type: 'message', listener: (evt: CustomEvent<AnnounceMessage>) => void): void
  /**
   * gossipsub's per-topic validators: a 'reject' stops the message from being forwarded and
   * lowers the score of the peer that relayed it. Absent in fakes; then the listener validates.
   */
  topicValidators?: Map<string, (peer: PeerId, msg: AnnounceMessage) => TopicVerdict>
  /** gossipsub's mesh for a topic. Absent in fakes. */
  getMeshPeers?(topic: string): unknown[]
}

/** gossipsub's TopicValidatorResult values. */
export type TopicVerdict = 'accept' | 'ignore' | 'reject'

export interface AnnounceMessage {
  type: 'signed' | 'unsigned'
  topic: string
  data: Uint8Array
  from?: PeerId
}

export interface MembershipComponents {
  pubsub: PubsubLike
  peerId: PeerId
  logger: ComponentLogger
  /** Remember a peer's addresses so a later push can dial it. */
  addAddresses?: (peerId: PeerId, addrs: string[]) => Promise<void>
  now?: () => number
  /** Told of each rejected announcement and its author (the signer, else the relaying peer). */
  onRejected?: (peerId: string, err: Error) => void
  /** Peers the peer policy refuses: their announcements do not (re-)enter the view. */
  isRefused?: (peerId: string) => boolean
}

export interface MembershipInit {
  task: string
  /** Our own descriptor, read at every announcement (age and accuracy change). */
  describe: () => Omit<PeerDescriptor, 'v' | 'peerId' | 'every'>
  /**
   * Announcement period of a node that has heard from nobody (ANNOUNCE_DEFAULTS); it grows by
   * `perPeerMs` per peer heard from (see `periodMs`), up to `maxIntervalMs`. A peer silent for three of its own periods (and at least
   * `ttlMs`) leaves the view.
   */
  intervalMs?: number
  perPeerMs?: number
  maxIntervalMs?: number
  ttlMs?: number
  /** See DEFAULT_HUNGRY_WINDOW_MS; 0 never marks a peer hungry. */
  hungryWindowMs?: number
}

/** Announces this node and keeps the live view of the others. start()/stop() are idempotent. */
export class Membership {
  readonly topic: string
  private readonly components: MembershipComponents
  private readonly init: MembershipInit
  private readonly log: Logger
  private readonly view = new Map<string, ViewEntry>()
  private readonly intervalMs: number
  private readonly perPeerMs: number
  private readonly maxIntervalMs: number
  private readonly ttlMs: number
  private timer?: ReturnType<typeof setTimeout>
  private running = false
  /** When each peer was last heard from, for the period (kept longer than view entries). */
  private readonly heard = new Map<string, number>()
  /** When each peer first said it was hungry (kept across evictions, dropped with `heard`). */
  private readonly hungrySince = new Map<string, number>()
  private readonly hungryWindowMs: number
  /** Descriptors checked by the topic validator, for the delivery of the same message that follows. */
  private readonly checked = new WeakMap<AnnounceMessage, PeerDescriptor>()
  private readonly now: () => number
  /** Rejected announcements by error name. */
  readonly rejected = new Map<string, number>()
  announcementsReceived = 0

  constructor(components: MembershipComponents, init: MembershipInit) {
    this.components = components
    this.init = init
    this.topic = announceTopic(init.task)
    this.log = components.logger.forComponent('gossip-learn:membership')
    this.intervalMs = init.intervalMs ?? ANNOUNCE_DEFAULTS.intervalMs
    this.perPeerMs = init.perPeerMs ?? ANNOUNCE_DEFAULTS.perPeerMs
    this.maxIntervalMs = Math.max(this.intervalMs, init.maxIntervalMs ?? ANNOUNCE_DEFAULTS.maxIntervalMs)
    if (
      !(this.intervalMs > 0 && this.maxIntervalMs <= ANNOUNCE_DEFAULTS.maxIntervalMs && this.perPeerMs >= 0)
    ) {
      throw new InvalidArgumentError(
        `announcement periods must be in (0, ${ANNOUNCE_DEFAULTS.maxIntervalMs}] ms and perPeerMs >= 0`,
      )
    }
    this.ttlMs = init.ttlMs ?? Math.max(3 * this.intervalMs, 5000)
    this.hungryWindowMs = init.hungryWindowMs ?? DEFAULT_HUNGRY_WINDOW_MS
    this.now = components.now ?? Date.now
  }

  /**
   * The current announcement period: the base, plus `perPeerMs` per peer heard from within three
   * of the longest periods, capped. Not the live view: when a loaded network delivers
   * announcements late, entries expire and the view shrinks, and a period that shrank with it
   * would add announcements exactly when nodes are too busy to handle them (128 peers on 2
   * cores: views of 5-7 and event loops 1 s late).
   */
  get periodMs(): number {
    const cutoff = this.now() - 3 * this.maxIntervalMs
    for (const [id, at] of this.heard) {
      if (at >= cutoff) continue
      this.heard.delete(id)
      this.hungrySince.delete(id)
    }
    const size = Math.max(this.view.size, this.heard.size)
    return Math.min(this.maxIntervalMs, Math.max(this.intervalMs, this.perPeerMs * size))
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.components.pubsub.topicValidators?.set(this.topic, this.validate)
    this.components.pubsub.addEventListener('message', this.onMessage)
    this.components.pubsub.subscribe(this.topic)
    this.tick()
  }

  /** Announces, then schedules the next announcement one period (as the view now makes it) later. */
  private readonly tick = (): void => {
    void this.announce()
    this.timer = setTimeout(this.tick, this.periodMs)
  }

  stop(): void {
    if (!this.running) return
    this.running = false
    clearTimeout(this.timer)
    this.timer = undefined
    this.components.pubsub.removeEventListener('message', this.onMessage)
    this.components.pubsub.topicValidators?.delete(this.topic)
    try {
      this.components.pubsub.unsubscribe(this.topic)
    } catch {
      // pubsub may already be stopped during shutdown
    }
  }

  /** Peers in our gossipsub mesh for the announcement topic (0 where the pubsub does not say). */
  meshSize(): number {
    return this.components.pubsub.getMeshPeers?.(this.topic).length ?? 0
  }

  /** Live peers (expired ones are dropped first). */
  peers(): ViewEntry[] {
    const now = this.now()
    for (const [id, e] of this.view) if (e.lastSeen < now - (e.ttlMs ?? this.ttlMs)) this.view.delete(id)
    return [...this.view.values()]
  }

  get(peerId: string): ViewEntry | undefined {
    return this.view.get(peerId)
  }

  /** A failed push: forget the peer until it announces itself again. */
  evict(peerId: string): void {
    this.view.delete(peerId)
  }

  /** Any other sign of life (a model received from it). */
  touch(peerId: string): void {
    const e = this.view.get(peerId)
    if (e !== undefined) e.lastSeen = this.now()
  }

  /** Publish our descriptor now. Never throws: a lonely node has nobody to tell. */
  async announce(): Promise<void> {
    const d: PeerDescriptor = {
      v: 1,
      peerId: this.components.peerId.toString(),
      ...this.init.describe(),
      every: this.periodMs,
    }
    try {
      await this.components.pubsub.publish(this.topic, encodeDescriptor(d))
    } catch (err) {
      this.log.trace('announce not delivered: %s', logSafeMessage(err))
    }
  }

  /** Signed by the peer it describes and a valid descriptor, or InvalidDescriptorError. */
  private check(msg: AnnounceMessage): PeerDescriptor {
    const known = this.checked.get(msg)
    if (known !== undefined) return known
    if (msg.type !== 'signed' || msg.from === undefined) {
      throw new InvalidDescriptorError('announcement is not signed')
    }
    const d = decodeDescriptor(msg.data, msg.from.toString())
    this.checked.set(msg, d)
    return d
  }

  private count(err: unknown, author?: string): void {
    const name = (err as Error)?.name ?? 'Error'
    this.rejected.set(name, (this.rejected.get(name) ?? 0) + 1)
    this.log('rejected announcement from %s: %s', author ?? 'unknown', logSafeMessage(err))
    if (author !== undefined) this.components.onRejected?.(author, err as Error)
  }

  /** Runs inside gossipsub before a message is delivered or forwarded. */
  private readonly validate = (peer: PeerId, msg: AnnounceMessage): TopicVerdict => {
    try {
      this.check(msg)
      return 'accept'
    } catch (err) {
      this.count(err, (msg.from ?? peer).toString())
      return 'reject'
    }
  }

  private readonly onMessage = (evt: CustomEvent<AnnounceMessage>): void => {
    const msg = evt.detail
    if (msg.topic !== this.topic) return
    if (msg.from?.toString() === this.components.peerId.toString()) return
    try {
      const d = this.check(msg)
      const from = d.peerId
      this.announcementsReceived++
      if (this.components.isRefused?.(from) === true) return
      this.heard.set(from, this.now())
      const known = this.view.get(from)
      // The first claim starts the window; one that stops and starts again does not restart it.
      if (d.hungry === true && !this.hungrySince.has(from)) this.hungrySince.set(from, this.now())
      this.view.set(from, {
        peerId: from,
        addrs: d.addrs,
        age: d.age,
        accuracy: d.accuracy,
        coordinate: d.coordinate,
        region: d.region,
        rttMs: known?.rttMs,
        lastSeen: this.now(),
        addedAt: known?.addedAt ?? this.now(),
        ttlMs: d.every !== undefined ? Math.max(this.ttlMs, 3 * d.every) : undefined,
        hungry: d.hungry === true && this.now() - this.hungrySince.get(from)! < this.hungryWindowMs,
      })
      if (known === undefined && this.components.addAddresses !== undefined && d.addrs.length > 0) {
        this.components.addAddresses(peerIdFromString(from), d.addrs).catch((err) => {
          this.log.error('could not store addresses of %s: %s', from, logSafeMessage(err))
        })
      }
    } catch (err) {
      // Only reachable without topic validators (they reject before delivery).
      this.count(err, msg.from?.toString())
    }
  }
}
