/**
 * The emulated wide-area topology: the links file (regions, RTT and loss per region pair, uplinks,
 * throughput from the Mathis formula) that the testbed writes and every daemon loads.
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
import type { AbortOptions } from '@libp2p/interface'
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
