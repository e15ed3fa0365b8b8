/**
 * Wide-area link emulation for the testbed. This kernel has no netem, so the delay lives in
 * the application: every secured connection is wrapped in a message stream that holds each
 * outgoing chunk until (uplink departure time + one-way delay of the link's region pair).
 *
 * - One-way delay is RTT / 2 of the region pair, applied in the sending direction by each
 *   end, so a round trip (a libp2p ping included) takes the configured RTT.
 * - Each peer's uplink is a single FIFO paced at `uplinkMbps` across all its connections:
 *   a chunk departs when the previous one has left, after size * 8 / rate.
 * - Each connection (one TCP flow) is also paced at its region pair's throughput: an explicit
 *   `throughputMbps` entry, else the Mathis et al. (1997) figure from the pair's RTT and loss
 *   rate, (MSS / RTT) * sqrt(3/2) / sqrt(p). A chunk leaves at the later of its uplink and its
 *   flow departure, so a flow gets min(uplink share, pair throughput).
 * - Order is kept per connection (departure times grow and the link delay is constant).
 * - Backpressure: `send()` returns false while a connection holds more than its high-water
 *   mark of unreleased bytes, and 'drain' follows when half of it has left.
 *
 * Where: a wrapper around the connection encrypter (Noise), because the remote peer is
 * known only once the handshake is done. The TCP and Noise handshakes are therefore not
 * delayed; everything after them is (multistream, yamux, identify, gossipsub, ping, models).
 * Bytes are counted and paced as plaintext (Noise adds 18 bytes per 64 KiB, TCP/IP headers
 * ~3 %; both are ignored).
 *
 * Links file (JSON), see docs/WAN.md:
 * ```json
 * {
 *   "regions": { "us-east": { "peers": 4 }, "eu-west": { "peers": 4, "uplinkMbps": 50 } },
 *   "rttMs": { "us-east|us-east": 10, "eu-west|eu-west": 10, "us-east|eu-west": 70 },
 *   "uplinkMbps": 20,
 *   "loss": 0.001,
 *   "lossByPair": { "us-east|eu-west": 0.002 },
 *   "throughputMbps": { "us-east|us-east": 100 },
 *   "peers": { "12D3KooW...": "us-east" }
 * }
 * ```
 * `regions[name]`: `peers` (how many testbed peers it gets by default), `uplinkMbps` (overrides
 * the top-level value for peers of that region). `rttMs`: one entry per unordered region pair,
 * same-region pairs included, key `"a|b"` in either order. `uplinkMbps`: default 20.
 * `loss`: packet loss rate of every pair (default 0.001, 0 = no throughput cap); `lossByPair`
 * overrides it per pair; `throughputMbps` sets a pair's throughput outright (no formula).
 * `peers`: peer id -> region; the testbed fills it in from the identities it pre-generates.
 */
import { readFile, writeFile } from 'node:fs/promises'
import type {
  AbortOptions,
  ConnectionEncrypter,
  MessageStream,
  SecureConnectionOptions,
  SecuredConnection,
  StreamCloseEvent,
  StreamMessageEvent,
} from '@libp2p/interface'
import { AbstractMessageStream, type SendResult } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { EncrypterComponents, LinkEmulation, LinkEmulationStats } from '../node/emulation.ts'
import { UsageError } from '../node/errors.ts'

/** A region of the emulated topology. */
export interface WanRegion {
  /** Peers the testbed puts in this region when no `--regions` is given. */
  peers?: number
  /** Uplink of each peer of this region in Mbit/s; overrides the top-level `uplinkMbps`. */
  uplinkMbps?: number
}

/** The links file: regions, RTT per region pair, uplink rate, and (filled by the testbed) each peer's region. */
export interface WanLinks {
  regions: Record<string, WanRegion>
  /** RTT in ms per unordered region pair, key `"a|b"`; every pair, same-region ones included. */
  rttMs: Record<string, number>
  /** Per-peer uplink in Mbit/s (default 20). */
  uplinkMbps: number
  /** Packet loss rate in [0, 1) of every region pair (default DEFAULT_LOSS); 0 leaves flows uncapped. */
  loss?: number
  /** Loss rate per unordered region pair, key `"a|b"`; overrides `loss`. */
  lossByPair?: Record<string, number>
  /** Throughput of one flow in Mbit/s per region pair, key `"a|b"`; overrides the Mathis figure. */
  throughputMbps?: Record<string, number>
  /** Peer id -> region name. */
  peers?: Record<string, string>
}

/** A links file or value that does not describe a usable topology. */
export class InvalidWanLinksError extends Error {
  static readonly name = 'InvalidWanLinksError'
  override readonly name = 'InvalidWanLinksError'
}

/** A `--regions` spec that cannot be parsed or does not match the peer count. */
export class InvalidRegionSpecError extends Error {
  static readonly name = 'InvalidRegionSpecError'
  override readonly name = 'InvalidRegionSpecError'
}

/** One WanEmulation was installed in two nodes; its uplink and counters belong to one peer. */
export class WanEmulationSharedError extends Error {
  static readonly name = 'WanEmulationSharedError'
  override readonly name = 'WanEmulationSharedError'
}

/** The default topology: three regions of four peers, 20 Mbit/s uplinks. */
export const DEFAULT_WAN_LINKS: WanLinks = {
  regions: {
    'us-east': { peers: 4 },
    'eu-west': { peers: 4 },
    'ap-southeast': { peers: 4 },
  },
  rttMs: {
    'us-east|us-east': 10,
    'eu-west|eu-west': 10,
    'ap-southeast|ap-southeast': 10,
    'us-east|eu-west': 70,
    'us-east|ap-southeast': 215,
    'eu-west|ap-southeast': 165,
  },
  uplinkMbps: 20,
}

/** Default per-peer uplink, Mbit/s: a typical edge upload rate (the figure). */
export const DEFAULT_UPLINK_MBPS = 20

/**
 * Default packet loss rate of a region pair, 0.1 %: inside the best class (< 0.4 %) of the
 * peak-period loss figures the FCC's Measuring Broadband America reports give for fixed
 * broadband, i.e. a good path, not a lossy one (docs/WAN.md).
 */
export const DEFAULT_LOSS = 0.001

/** TCP maximum segment size in bytes for the Mathis formula: a 1500 B Ethernet MTU less 20 B IPv4 and 20 B TCP headers. */
export const MATHIS_MSS_BYTES = 1460

/** Mathis et al.'s constant for periodic loss with delayed ACKs off: sqrt(3/2). */
export const MATHIS_C = Math.sqrt(3 / 2)

export interface MathisInit {
  /** Round-trip time in ms. */
  rttMs: number
  /** Packet loss rate in [0, 1). */
  loss: number
  /** Maximum segment size in bytes (default MATHIS_MSS_BYTES). */
  mssBytes?: number
}

/**
 * Steady-state throughput bound of one TCP flow in Mbit/s (Mathis, Semke, Mahdavi, Ott 1997):
 * (MSS / RTT) * C / sqrt(p). Infinity when the RTT or the loss rate is 0 (no bound from loss).
 */
export function mathisThroughputMbps(init: MathisInit): number {
  const mss = init.mssBytes ?? MATHIS_MSS_BYTES
  if (init.rttMs <= 0 || init.loss <= 0) return Number.POSITIVE_INFINITY
  return (((mss * 8) / (init.rttMs / 1000)) * (MATHIS_C / Math.sqrt(init.loss))) / 1e6
}

/** Same bound as the RTT tracker: a larger RTT is a typo, not a link. */
export const MAX_LINK_RTT_MS = 10_000

/** At least 1 MiB may wait in a connection before send() says false: one model slice plus headroom. */
export const MIN_HIGH_WATER_BYTES = 1024 * 1024

const REGION_NAME = /^[A-Za-z0-9_.-]{1,64}$/

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function positiveFinite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0
}

/** Validates an untrusted links value (e.g. parsed JSON) and returns a normalised copy; throws InvalidWanLinksError. */
export function parseWanLinks(value: unknown): WanLinks {
  const fail = (msg: string): never => {
    throw new InvalidWanLinksError(msg)
  }
  if (!isObject(value)) fail('links must be a JSON object')
  const v = value as Record<string, unknown>
  if (!isObject(v.regions) || Object.keys(v.regions).length === 0)
    fail('links.regions must be a non-empty object')
  const regions: Record<string, WanRegion> = {}
  for (const [name, r] of Object.entries(v.regions as Record<string, unknown>)) {
    if (!REGION_NAME.test(name)) fail(`invalid region name ${JSON.stringify(name)} (letters, digits, - _ .)`)
    if (!isObject(r)) fail(`region ${name} must be an object`)
    const reg = r as Record<string, unknown>
    const out: WanRegion = {}
    if (reg.peers !== undefined) {
      if (!Number.isInteger(reg.peers) || (reg.peers as number) < 0)
        fail(`region ${name}: peers must be an integer >= 0`)
      out.peers = reg.peers as number
    }
    if (reg.uplinkMbps !== undefined) {
      if (!positiveFinite(reg.uplinkMbps)) fail(`region ${name}: uplinkMbps must be a positive number`)
      out.uplinkMbps = reg.uplinkMbps as number
    }
    regions[name] = out
  }
  const uplinkMbps = v.uplinkMbps ?? DEFAULT_UPLINK_MBPS
  if (!positiveFinite(uplinkMbps)) fail('links.uplinkMbps must be a positive number')

  if (!isObject(v.rttMs)) fail('links.rttMs must be an object of "a|b": ms')
  const rttMs: Record<string, number> = {}
  for (const [key, ms] of Object.entries(v.rttMs as Record<string, unknown>)) {
    const parts = key.split('|')
    if (parts.length !== 2) fail(`rttMs key ${JSON.stringify(key)} must be "regionA|regionB"`)
    const [a, b] = parts as [string, string]
    if (!(a in regions) || !(b in regions)) fail(`rttMs key ${JSON.stringify(key)} names an unknown region`)
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_LINK_RTT_MS) {
      fail(`rttMs[${key}] must be a number of ms in [0, ${MAX_LINK_RTT_MS}]`)
    }
    const k = pairKey(a, b)
    if (k in rttMs && rttMs[k] !== ms) fail(`rttMs gives ${a}|${b} twice with different values`)
    rttMs[k] = ms as number
  }
  const names = Object.keys(regions)
  const missing: string[] = []
  for (let i = 0; i < names.length; i++) {
    for (let j = i; j < names.length; j++) {
      if (!(pairKey(names[i]!, names[j]!) in rttMs)) missing.push(`${names[i]}|${names[j]}`)
    }
  }
  if (missing.length > 0) fail(`rttMs lacks ${missing.join(', ')}`)

  const loss = v.loss ?? DEFAULT_LOSS
  if (!isLossRate(loss)) fail('links.loss must be a packet loss rate in [0, 1)')
  const lossByPair = parsePairMap(v.lossByPair, 'lossByPair', regions, isLossRate, 'a loss rate in [0, 1)')
  const throughputMbps = parsePairMap(
    v.throughputMbps,
    'throughputMbps',
    regions,
    positiveFinite,
    'a positive number of Mbit/s',
  )

  let peers: Record<string, string> | undefined
  if (v.peers !== undefined) {
    if (!isObject(v.peers)) fail('links.peers must be an object of peerId: region')
    peers = {}
    for (const [id, region] of Object.entries(v.peers as Record<string, unknown>)) {
      if (typeof region !== 'string' || !(region in regions))
        fail(`peer ${id} is in unknown region ${region}`)
      peers[id] = region as string
    }
  }
  return {
    regions,
    rttMs,
    uplinkMbps: uplinkMbps as number,
    loss: loss as number,
    ...(lossByPair !== undefined ? { lossByPair } : {}),
    ...(throughputMbps !== undefined ? { throughputMbps } : {}),
    ...(peers !== undefined ? { peers } : {}),
  }
}

function isLossRate(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 1
}

/** An optional `{ "a|b": value }` map over known regions; keys normalised, conflicting duplicates refused. */
function parsePairMap(
  value: unknown,
  field: string,
  regions: Record<string, WanRegion>,
  valid: (v: unknown) => boolean,
  what: string,
): Record<string, number> | undefined {
  if (value === undefined) return undefined
  if (!isObject(value)) throw new InvalidWanLinksError(`links.${field} must be an object of "a|b": value`)
  const out: Record<string, number> = {}
  for (const [key, x] of Object.entries(value)) {
    const parts = key.split('|')
    if (parts.length !== 2 || !(parts[0]! in regions) || !(parts[1]! in regions)) {
      throw new InvalidWanLinksError(
        `${field} key ${JSON.stringify(key)} must be "regionA|regionB" of known regions`,
      )
    }
    if (!valid(x)) throw new InvalidWanLinksError(`${field}[${key}] must be ${what}`)
    const k = pairKey(parts[0]!, parts[1]!)
    if (k in out && out[k] !== x)
      throw new InvalidWanLinksError(`${field} gives ${key} twice with different values`)
    out[k] = x as number
  }
  return out
}

/** Reads and validates a links file; throws InvalidWanLinksError on bad JSON or content. */
export async function loadWanLinks(path: string, options: AbortOptions = {}): Promise<WanLinks> {
  const text = await readFile(path, { encoding: 'utf8', signal: options.signal })
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new InvalidWanLinksError(`${path} is not JSON: ${(err as Error).message}`)
  }
  try {
    return parseWanLinks(json)
  } catch (err) {
    if (err instanceof InvalidWanLinksError) throw new InvalidWanLinksError(`${path}: ${err.message}`)
    throw err
  }
}

/** RTT in ms between two regions of `links`; throws InvalidWanLinksError for an unknown pair. */
export function regionRttMs(links: WanLinks, a: string, b: string): number {
  const ms = links.rttMs[`${a}|${b}`] ?? links.rttMs[`${b}|${a}`]
  if (ms === undefined) throw new InvalidWanLinksError(`no RTT for ${a}|${b}`)
  return ms
}

/** Packet loss rate between two regions: the pair's `lossByPair` entry, else the file-wide `loss`. */
export function regionLoss(links: WanLinks, a: string, b: string): number {
  return links.lossByPair?.[pairKey(a, b)] ?? links.loss ?? DEFAULT_LOSS
}

/**
 * Throughput in Mbit/s of one flow between two regions: the pair's `throughputMbps` entry, else
 * the Mathis figure from its RTT and loss rate (Infinity: no cap beyond the uplink).
 */
export function regionThroughputMbps(links: WanLinks, a: string, b: string): number {
  const explicit = links.throughputMbps?.[pairKey(a, b)]
  if (explicit !== undefined) return explicit
  return mathisThroughputMbps({ rttMs: regionRttMs(links, a, b), loss: regionLoss(links, a, b) })
}

/** One entry of a `--regions` spec. */
export interface RegionCount {
  region: string
  count: number
}

/** Parses `us-east:4,eu-west:4` against the regions of `links`; throws InvalidRegionSpecError. */
export function parseRegionCounts(spec: string, links: WanLinks = DEFAULT_WAN_LINKS): RegionCount[] {
  const out: RegionCount[] = []
  const seen = new Set<string>()
  for (const part of spec.split(',')) {
    const m = /^\s*([^:\s]+)\s*:\s*(\d+)\s*$/.exec(part)
    if (m === null)
      throw new InvalidRegionSpecError(`bad region spec ${JSON.stringify(part)}, want name:count`)
    const region = m[1]!
    const count = Number(m[2])
    if (!(region in links.regions)) {
      throw new InvalidRegionSpecError(
        `unknown region ${region}; known: ${Object.keys(links.regions).join(', ')} (use --links for others)`,
      )
    }
    if (seen.has(region)) throw new InvalidRegionSpecError(`region ${region} given twice`)
    seen.add(region)
    out.push({ region, count })
  }
  if (out.reduce((s, r) => s + r.count, 0) === 0) throw new InvalidRegionSpecError('regions hold no peers')
  return out
}

/** The region counts a links file asks for by default (`regions[name].peers`). */
export function defaultRegionCounts(links: WanLinks = DEFAULT_WAN_LINKS): RegionCount[] {
  return Object.entries(links.regions)
    .filter(([, r]) => (r.peers ?? 0) > 0)
    .map(([region, r]) => ({ region, count: r.peers! }))
}

export interface AssignRegionsOptions {
  /**
   * 'block' (default): the first `count` peers go to the first region, and so on.
   * 'interleave': round-robin over regions, so consecutive peer indices (data shards) spread out.
   */
  order?: 'block' | 'interleave'
}

/** Maps peer ids (testbed order) to regions; throws InvalidRegionSpecError when the counts do not add up. */
export function assignRegions(
  peerIds: readonly string[],
  counts: readonly RegionCount[],
  options: AssignRegionsOptions = {},
): Record<string, string> {
  const total = counts.reduce((s, r) => s + r.count, 0)
  if (total !== peerIds.length) {
    throw new InvalidRegionSpecError(`regions hold ${total} peers but the testbed has ${peerIds.length}`)
  }
  const order: string[] = []
  if (options.order === 'interleave') {
    const left = counts.map((c) => c.count)
    while (order.length < total) {
      counts.forEach((c, i) => {
        if (left[i]! > 0) {
          order.push(c.region)
          left[i]!--
        }
      })
    }
  } else {
    for (const c of counts) for (let i = 0; i < c.count; i++) order.push(c.region)
  }
  return Object.fromEntries(peerIds.map((id, i) => [id, order[i]!]))
}

export interface TestbedLinksInit {
  /** The topology (default DEFAULT_WAN_LINKS), e.g. from `loadWanLinks(--links FILE)`. */
  links?: WanLinks
  /** A `--regions` spec such as `us-east:4,eu-west:4`; default the links' `regions[name].peers`. */
  regions?: string
  /** The testbed's peer ids, in peer-index order. */
  peerIds: readonly string[]
  /** How peers are dealt to regions (default 'block'). */
  order?: AssignRegionsOptions['order']
}

/**
 * The links every daemon of a testbed loads: the topology plus each peer's region.
 * Throws InvalidRegionSpecError when the region counts do not add up to the peers.
 */
export function testbedLinks(init: TestbedLinksInit): WanLinks {
  const links = parseWanLinks(init.links ?? DEFAULT_WAN_LINKS)
  const counts =
    init.regions !== undefined ? parseRegionCounts(init.regions, links) : defaultRegionCounts(links)
  return { ...links, peers: assignRegions(init.peerIds, counts, { order: init.order }) }
}

/** Writes a links file (pretty JSON) for daemons to load with loadWanLinks. */
export async function saveWanLinks(path: string, links: WanLinks, options: AbortOptions = {}): Promise<void> {
  await writeFile(path, `${JSON.stringify(links, null, 2)}\n`, { encoding: 'utf8', signal: options.signal })
}

/** Per-node counters of the emulation (for /status and the testbed JSON). */
export type WanStats = LinkEmulationStats

/** A FIFO paced at a fixed rate: one peer's uplink (shared by its connections) or one flow's path. */
class Pacer {
  private freeAt = 0
  constructor(
    private readonly bytesPerMs: number,
    private readonly now: () => number,
  ) {}

  /** Reserves the uplink for `bytes`; returns when their last byte has left (ms, `now` base). */
  reserve(bytes: number): number {
    this.freeAt = Math.max(this.now(), this.freeAt) + bytes / this.bytesPerMs
    return this.freeAt
  }
}

interface LinkParams {
  oneWayMs: number
  uplink: Pacer
  /** The region pair's throughput for this connection; undefined = only the uplink paces it. */
  flow?: Pacer
  highWaterBytes: number
  now: () => number
  onSend: (bytes: number) => void
  onQueued: (delta: number) => void
}

interface Pending {
  releaseAt: number
  data: Uint8ArrayList
}

/**
 * A message stream over `inner` that delivers each sent chunk to `inner` at
 * (uplink departure + one-way delay); reads, pause/resume and close pass through.
 */
export class EmulatedLinkStream extends AbstractMessageStream {
  private readonly inner: MessageStream
  private readonly link: LinkParams
  private readonly queue: Pending[] = []
  private queued = 0
  private timer?: ReturnType<typeof setTimeout>
  private innerNeedsDrain = false
  private emptyWaiters: Array<() => void> = []

  constructor(inner: MessageStream, link: LinkParams) {
    super({
      log: inner.log.newScope('wan'),
      inactivityTimeout: inner.inactivityTimeout,
      maxReadBufferLength: inner.maxReadBufferLength,
      direction: inner.direction,
    })
    this.inner = inner
    this.link = link
    inner.addEventListener('message', (evt: StreamMessageEvent) => {
      this.onData(evt.data)
    })
    inner.addEventListener('close', (evt: StreamCloseEvent) => {
      this.dropQueue()
      if (evt.error != null) {
        if (evt.local === true) this.abort(evt.error)
        else this.onRemoteReset()
      } else {
        this.onTransportClosed()
      }
    })
    inner.addEventListener('drain', () => {
      this.innerNeedsDrain = false
      this.release()
    })
    inner.addEventListener('remoteCloseWrite', () => {
      this.onRemoteCloseWrite()
    })
  }

  /** Bytes accepted but not yet handed to the inner stream. */
  get queuedBytes(): number {
    return this.queued
  }

  sendData(data: Uint8ArrayList): SendResult {
    const bytes = data.byteLength
    // The flow leaves at the slower of the two: the node's uplink and the pair's throughput.
    const departs = Math.max(this.link.uplink.reserve(bytes), this.link.flow?.reserve(bytes) ?? 0)
    const releaseAt = departs + this.link.oneWayMs
    this.queue.push({ releaseAt, data })
    this.queued += bytes
    this.link.onQueued(bytes)
    this.link.onSend(bytes)
    if (this.timer === undefined && !this.innerNeedsDrain && this.queue.length === 1) this.schedule()
    return { sentBytes: bytes, canSendMore: this.queued < this.link.highWaterBytes }
  }

  sendReset(err: Error): void {
    this.dropQueue()
    this.inner.abort(err)
  }

  sendPause(): void {
    this.inner.pause()
  }

  sendResume(): void {
    this.inner.resume()
  }

  async close(options?: AbortOptions): Promise<void> {
    await this.flushed(options)
    await this.inner.close(options)
  }

  /** Resolves once everything sent so far has reached the inner stream (or it closed). */
  async flushed(options: AbortOptions = {}): Promise<void> {
    while ((this.queue.length > 0 || this.writeBufferLength > 0) && this.status === 'open') {
      options.signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(options.signal?.reason)
        options.signal?.addEventListener('abort', onAbort, { once: true })
        this.emptyWaiters.push(() => {
          options.signal?.removeEventListener('abort', onAbort)
          resolve()
        })
      })
    }
  }

  private schedule(): void {
    const head = this.queue[0]
    if (head === undefined) return
    // Ceil, and re-check on wake: a timer may fire a fraction of a ms early, and an early release would
    // make a ping shorter than the configured RTT.
    this.timer = setTimeout(this.release, Math.max(0, Math.ceil(head.releaseAt - this.link.now())))
  }

  private readonly release = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.innerNeedsDrain) return
    const now = this.link.now()
    const batch = new Uint8ArrayList()
    while (this.queue.length > 0 && this.queue[0]!.releaseAt <= now) {
      batch.append(this.queue.shift()!.data)
    }
    if (batch.byteLength > 0) {
      this.queued -= batch.byteLength
      this.link.onQueued(-batch.byteLength)
      try {
        // One inner send per batch: fewer Noise frames and socket writes than one per chunk.
        if (!this.inner.send(batch)) this.innerNeedsDrain = true
      } catch (err) {
        this.abort(err as Error)
        return
      }
    }
    if (this.writableNeedsDrain && this.queued <= this.link.highWaterBytes / 2)
      this.safeDispatchEvent('drain')
    if (this.queue.length === 0) {
      const waiters = this.emptyWaiters
      this.emptyWaiters = []
      for (const w of waiters) w()
    } else if (!this.innerNeedsDrain) {
      this.schedule()
    }
  }

  private dropQueue(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.link.onQueued(-this.queued)
    this.queue.length = 0
    this.queued = 0
    const waiters = this.emptyWaiters
    this.emptyWaiters = []
    for (const w of waiters) w()
  }
}

export interface WanEmulationInit {
  /** The topology; `peers` must map this node and its remotes to regions (unknown remotes get no delay). */
  links: WanLinks
  /** Unreleased bytes per connection above which send() returns false (default max(1 MiB, 2 x bandwidth-delay)). */
  highWaterBytes?: number
  /** Clock in ms (default performance.now); injectable for tests. */
  now?: () => number
}

/**
 * The emulation for ONE node: wraps that node's connection encrypter so that every secured
 * connection gets the delay and uplink pacing of its region pair. Create one per node.
 */
export class WanEmulation implements LinkEmulation {
  readonly links: WanLinks
  private readonly now: () => number
  private readonly highWaterBytes?: number
  private localPeer?: string
  private uplink?: Pacer
  private readonly counters = {
    intra: 0,
    inter: 0,
    unknown: 0,
    byRegion: new Map<string, number>(),
    connections: 0,
    queued: 0,
  }

  constructor(init: WanEmulationInit) {
    this.links = parseWanLinks(init.links)
    this.now = init.now ?? (() => performance.now())
    this.highWaterBytes = init.highWaterBytes
  }

  /** The region of `peerId`, or undefined when the links file does not list it. */
  regionOf(peerId: string): string | undefined {
    return this.links.peers?.[peerId]
  }

  /** Emulated RTT in ms between two listed peers, or undefined when either is unknown. */
  rttMs(a: string, b: string): number | undefined {
    const ra = this.regionOf(a)
    const rb = this.regionOf(b)
    return ra === undefined || rb === undefined ? undefined : regionRttMs(this.links, ra, rb)
  }

  /** Throughput in Mbit/s of one flow between two listed peers (Infinity: uncapped), or undefined when either is unknown. */
  throughputMbps(a: string, b: string): number | undefined {
    const ra = this.regionOf(a)
    const rb = this.regionOf(b)
    return ra === undefined || rb === undefined ? undefined : regionThroughputMbps(this.links, ra, rb)
  }

  /** Uplink rate of `peerId` in Mbit/s (its region's override, else the top-level rate). */
  uplinkMbps(peerId: string): number {
    const region = this.regionOf(peerId)
    return (
      (region !== undefined ? this.links.regions[region]?.uplinkMbps : undefined) ?? this.links.uplinkMbps
    )
  }

  /** Counters for /status: bytes sent within and across regions, open emulated connections. */
  stats(): WanStats {
    const c = this.counters
    return {
      region: this.localPeer !== undefined ? this.regionOf(this.localPeer) : undefined,
      bytesSentIntraRegion: c.intra,
      bytesSentInterRegion: c.inter,
      bytesSentUnknown: c.unknown,
      bytesSentByRegion: Object.fromEntries(c.byRegion),
      connections: c.connections,
      queuedBytes: c.queued,
    }
  }

  /** Wraps a connection-encrypter factory (e.g. `noise()`) for createLibp2p's `connectionEncrypters`. */
  encrypter<C extends EncrypterComponents, E>(
    factory: (components: C) => ConnectionEncrypter<E>,
  ): (components: C) => ConnectionEncrypter<E> {
    return (components: C) => {
      const inner = factory(components)
      const local = components.peerId.toString()
      const secure = async (
        op: 'secureInbound' | 'secureOutbound',
        connection: MessageStream,
        options?: SecureConnectionOptions,
      ): Promise<SecuredConnection<E>> => {
        const secured = await inner[op](connection, options)
        const wrapped = this.wrap(secured.connection, local, secured.remotePeer.toString())
        if (wrapped !== secured.connection) flushBeforeClose(connection, wrapped as EmulatedLinkStream)
        return { ...secured, connection: wrapped }
      }
      return {
        protocol: inner.protocol,
        secureInbound: (connection, options) => secure('secureInbound', connection, options),
        secureOutbound: (connection, options) => secure('secureOutbound', connection, options),
      }
    }
  }

  /**
   * Wraps a secured connection from `local` to `remote` in an emulated link; returns `connection`
   * itself when `local` is not in the links file (this node is not part of the emulation).
   */
  wrap(connection: MessageStream, local: string, remote: string): MessageStream {
    if (this.localPeer === undefined) this.localPeer = local
    if (this.localPeer !== local) {
      throw new WanEmulationSharedError(`this WanEmulation belongs to ${this.localPeer}, not ${local}`)
    }
    const localRegion = this.regionOf(local)
    if (localRegion === undefined) return connection
    const remoteRegion = this.regionOf(remote)
    const oneWayMs = remoteRegion === undefined ? 0 : regionRttMs(this.links, localRegion, remoteRegion) / 2
    const bytesPerMs = (this.uplinkMbps(local) * 1e6) / 8 / 1000
    this.uplink ??= new Pacer(bytesPerMs, this.now)
    const flowMbps =
      remoteRegion === undefined
        ? Number.POSITIVE_INFINITY
        : regionThroughputMbps(this.links, localRegion, remoteRegion)
    const flowBytesPerMs = (flowMbps * 1e6) / 8 / 1000
    const c = this.counters
    const stream = new EmulatedLinkStream(connection, {
      oneWayMs,
      uplink: this.uplink,
      ...(Number.isFinite(flowBytesPerMs) ? { flow: new Pacer(flowBytesPerMs, this.now) } : {}),
      highWaterBytes:
        this.highWaterBytes ??
        Math.max(MIN_HIGH_WATER_BYTES, 2 * Math.min(bytesPerMs, flowBytesPerMs) * oneWayMs),
      now: this.now,
      onSend: (bytes) => {
        if (remoteRegion === undefined) c.unknown += bytes
        else if (remoteRegion === localRegion) c.intra += bytes
        else c.inter += bytes
        if (remoteRegion !== undefined)
          c.byRegion.set(remoteRegion, (c.byRegion.get(remoteRegion) ?? 0) + bytes)
      },
      onQueued: (delta) => {
        c.queued += delta
      },
    })
    c.connections++
    stream.addEventListener('close', () => {
      c.connections--
    })
    return stream
  }
}

/**
 * libp2p's Connection.close() closes the raw connection, not the secured one we return,
 * so data still held by the emulated link would be cut off: flush it first.
 */
function flushBeforeClose(raw: MessageStream, link: EmulatedLinkStream): void {
  const close = raw.close.bind(raw)
  raw.close = async (options?: AbortOptions) => {
    await link.flushed(options).catch(() => {})
    return close(options)
  }
}

/** Creates the emulation for one node; pass `.encrypter(noise())` to createLibp2p. */
export function wanEmulation(init: WanEmulationInit): WanEmulation {
  return new WanEmulation(init)
}

/** Load a links file named by a command-line flag: unreadable or invalid files are a UsageError naming the flag. */
export async function loadWanLinksFlag(flag: string, path: string): Promise<WanLinks> {
  try {
    return await loadWanLinks(path)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (
      err instanceof InvalidWanLinksError ||
      e.code === 'ENOENT' ||
      e.code === 'EISDIR' ||
      e.code === 'EACCES'
    ) {
      throw new UsageError(`${flag}: ${e.message}`)
    }
    throw err
  }
}
