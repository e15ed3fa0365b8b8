/**
 * Command-line parsing and validation for `gossip-learn start` and `testbed`.
 * Pure: returns typed configs or throws UsageError naming the flag.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { parsePartitionSpec } from '../data/partition.ts'
import { parseDatasetSpec } from '../data/registry.ts'
import { OPTIONAL_DEFENCES, type OptionalDefence } from '../gossip/defences/index.ts'
import { SAMPLER_KINDS } from '../gossip/sampling/index.ts'
import { parseRate } from '../gossip/upload-budget.ts'
import { pushCodecSpec } from '../gossip/wire/delta.ts'
import { type MergeMode, parseMergeMode, UNDEFENDED_MERGE_MODE } from '../merge/registry.ts'
import { ARCH_KINDS } from '../model/zoo.ts'
import { LEARN_DEFAULTS, NODE_DEFAULTS, type StartConfig } from '../node/config.ts'
import { UsageError } from '../node/errors.ts'
import { type AttackerGroup, parseByzantineSpecs } from '../testbed/attack/modes.ts'
import { parseChurnSpec, parseTrainRateSpec } from '../testbed/churn.ts'
import type { TestbedConfig } from '../testbed/config.ts'
import { DEFAULT_WAN_LINKS, InvalidRegionSpecError, parseRegionCounts } from '../testbed/wan-links.ts'
import { formatHelp, parserOptions, START_FLAGS, TESTBED_FLAGS } from './options.ts'

/** `start`'s flags: a daemon's config plus the testbed facility that wraps it. */
export interface StartArgs extends StartConfig {
  /** Testbed facility: a links file (docs/WAN.md) that emulates wide-area delay and uplinks on every connection. */
  wanLinks?: string
}

export const START_USAGE = formatHelp(
  'start',
  'Run one peer: train on its data share, push the model to sampled peers, merge what arrives.',
  START_FLAGS,
)

export const TESTBED_USAGE = formatHelp(
  'testbed',
  'Run N real peers on 127.0.0.1 (the first is the bootstrap) and report how they learn.',
  TESTBED_FLAGS,
)

type Values = Record<string, string | boolean | string[] | undefined>

function parse(argv: string[], options: ParseArgsConfig['options']): Values {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Values
  } catch (err) {
    // node's messages name the flag already ("Unknown option '--foo'"); keep them on one line.
    throw new UsageError(String((err as Error).message).split('\n')[0])
  }
}

function str(v: Values, name: string): string | undefined {
  const x = v[name]
  return typeof x === 'string' ? x : undefined
}

function int(v: Values, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const s = str(v, name)
  if (s === undefined) return undefined
  if (!/^-?\d+$/.test(s.trim())) throw new UsageError(`--${name} must be an integer, got '${s}'`)
  const n = Number(s)
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`)
  return n
}

function num(v: Values, name: string, min: number, max: number, exclusiveMin = false): number | undefined {
  const s = str(v, name)
  if (s === undefined) return undefined
  const n = Number(s)
  if (s.trim() === '' || !Number.isFinite(n) || n > max || n < min || (exclusiveMin && n === min)) {
    throw new UsageError(
      `--${name} must be a number in ${exclusiveMin ? '(' : '['}${min}, ${max}], got '${s}'`,
    )
  }
  return n
}

function oneOf<T extends string>(v: Values, name: string, allowed: readonly T[]): T | undefined {
  const s = str(v, name)
  if (s === undefined) return undefined
  if (!(allowed as readonly string[]).includes(s)) {
    throw new UsageError(`--${name} must be one of ${allowed.join('|')}, got '${s}'`)
  }
  return s as T
}

function partitionFlag(v: Values): string | undefined {
  const s = str(v, 'partition')
  if (s === undefined) return undefined
  try {
    parsePartitionSpec(s)
  } catch (err) {
    throw new UsageError(`--partition: ${(err as Error).message}`)
  }
  return s
}

function mergeFlag(v: Values): MergeMode | undefined {
  const s = str(v, 'merge')
  if (s === undefined) return undefined
  try {
    return parseMergeMode(s)
  } catch (err) {
    throw new UsageError(`--merge: ${(err as Error).message}`)
  }
}

function codecFlag(v: Values): string | undefined {
  const s = str(v, 'codec')
  if (s === undefined) return undefined
  try {
    return pushCodecSpec(s)
  } catch (err) {
    throw new UsageError(`--codec: ${(err as Error).message}`)
  }
}

/** `--quiet-inputs SHARE|off`: off, or the share of samples in which a quiet input may be non-zero. */
function quietFlag(v: Values): number | false | undefined {
  if (str(v, 'quiet-inputs') === 'off') return false
  const share = num(v, 'quiet-inputs', 0, 1)
  if (share === 1)
    throw new UsageError("--quiet-inputs must be below 1 (every input would be quiet), or 'off'")
  return share
}

function rateFlag(v: Values, name: string): number | undefined {
  const s = str(v, name)
  if (s === undefined) return undefined
  try {
    return parseRate(s)
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`)
  }
}

function datasetFlag(v: Values): string | undefined {
  const s = str(v, 'dataset')
  if (s === undefined) return undefined
  try {
    parseDatasetSpec(s)
  } catch (err) {
    throw new UsageError(`--dataset: ${(err as Error).message}`)
  }
  return s
}

function multiaddrs(v: Values, name: string, requirePeerId: boolean): string[] {
  const list = (v[name] as string[] | undefined) ?? []
  for (const s of list) {
    let ma: ReturnType<typeof multiaddr>
    try {
      ma = multiaddr(s)
    } catch {
      throw new UsageError(`--${name} is not a multiaddr: '${s}'`)
    }
    if (requirePeerId && !ma.toString().includes('/p2p/')) {
      throw new UsageError(`--${name} needs the peer id at the end (.../p2p/<id>), got '${s}'`)
    }
  }
  return list
}

function learnFlags(v: Values) {
  return {
    dataset: datasetFlag(v) ?? LEARN_DEFAULTS.dataset,
    model: oneOf(v, 'model', ARCH_KINDS) ?? LEARN_DEFAULTS.model,
    hidden: int(v, 'hidden', 1, 4096),
    partition: partitionFlag(v) ?? LEARN_DEFAULTS.partition,
    seed: int(v, 'seed', 0, 2 ** 32 - 1) ?? LEARN_DEFAULTS.seed,
    initSeed: int(v, 'init-seed', 0, 2 ** 32 - 1),
    merge: mergeFlag(v) ?? LEARN_DEFAULTS.merge,
    sampler: oneOf(v, 'sampler', SAMPLER_KINDS) ?? LEARN_DEFAULTS.sampler,
    randomShare: num(v, 'random-share', 0, 1),
    partners: int(v, 'partners', 1, 64),
    hungryBoost: num(v, 'hungry-boost', 1, 1000),
    codec: codecFlag(v) ?? LEARN_DEFAULTS.codec,
    quietInputs: quietFlag(v),
    maxUploadBytesPerS: rateFlag(v, 'max-upload'),
    // 2 at least: one slot is kept for known-good peers, so 1 would refuse every stranger.
    maxInbound: int(v, 'max-inbound', 2, 1024),
    stepsPerRound: int(v, 'steps-per-round', 1, 100_000) ?? LEARN_DEFAULTS.stepsPerRound,
    roundMs: int(v, 'round-ms', 0, 3_600_000) ?? LEARN_DEFAULTS.roundMs,
    fanout: int(v, 'fanout', 1, 64) ?? LEARN_DEFAULTS.fanout,
    evalSize: int(v, 'eval-size', 1, 10_000) ?? LEARN_DEFAULTS.evalSize,
    evalShare: num(v, 'eval-share', 0, 100, true) ?? LEARN_DEFAULTS.evalShare,
    gossip: v['no-gossip'] !== true,
    defencesOff: defencesOffFlag(v),
  }
}

/** `--no-defence NAME` (repeatable, or a comma list): defences switched off one at a time; needs `--defences on`. */
function defencesOffFlag(v: Values): OptionalDefence[] | undefined {
  const names = ((v['no-defence'] as string[] | undefined) ?? []).flatMap((s) =>
    s.split(',').map((x) => x.trim()),
  )
  if (names.length === 0) return undefined
  for (const name of names) {
    if (!(OPTIONAL_DEFENCES as readonly string[]).includes(name)) {
      throw new UsageError(`--no-defence: unknown defence '${name}': use ${OPTIONAL_DEFENCES.join(' | ')}`)
    }
  }
  if (v.defences === 'off') throw new UsageError('--no-defence needs the defences on; drop --defences off')
  return [...new Set(names)] as OptionalDefence[]
}

export function parseStartArgs(argv: string[]): StartArgs {
  const v = parse(argv, parserOptions(START_FLAGS))
  const learn = learnFlags(v)
  // --defences off: the learner's defences off and, unless --merge says otherwise, the pipeline without the robust steps.
  const defences = (oneOf(v, 'defences', ['on', 'off'] as const) ?? 'on') === 'on'
  const peerCount = int(v, 'peer-count', 1, 100_000) ?? NODE_DEFAULTS.peerCount
  const peerIndex = int(v, 'peer-index', 0, 99_999)
  if (peerIndex !== undefined && peerIndex >= peerCount) {
    throw new UsageError(`--peer-index must be below --peer-count (${peerCount}), got ${peerIndex}`)
  }
  const listen = multiaddrs(v, 'listen', false)
  return {
    ...learn,
    merge: defences || str(v, 'merge') !== undefined ? learn.merge : UNDEFENDED_MERGE_MODE,
    defences,
    listen: listen.length > 0 ? listen : NODE_DEFAULTS.listen,
    announce: multiaddrs(v, 'announce', false),
    bootstrap: multiaddrs(v, 'bootstrap', true),
    relay: v.relay === true,
    upnp: v.upnp === true,
    dataDir: str(v, 'data-dir'),
    peerIndex,
    peerCount,
    http: int(v, 'http', 0, 65535),
    httpHost: str(v, 'http-host') ?? NODE_DEFAULTS.httpHost,
    batchSize: int(v, 'batch-size', 1, 4096) ?? LEARN_DEFAULTS.batchSize,
    learningRate: num(v, 'lr', 0, 10, true) ?? LEARN_DEFAULTS.learningRate,
    evalIntervalMs: LEARN_DEFAULTS.evalIntervalMs,
    checkpointIntervalMs:
      (int(v, 'checkpoint-interval', 1, 86_400) ?? NODE_DEFAULTS.checkpointIntervalMs / 1000) * 1000,
    statusIntervalMs: (int(v, 'status-interval', 0, 86_400) ?? NODE_DEFAULTS.statusIntervalMs / 1000) * 1000,
    jsonStatus: v['json-status'] === true,
    stopOnStdinClose: v['stop-on-stdin-close'] === true,
    wanLinks: str(v, 'wan-links'),
    trainRate: num(v, 'train-rate', 0, 1_000_000, true),
  }
}

/** Peers a `--regions` spec holds; checks the names against the built-in topology when `known`. */
function regionTotal(spec: string, known: boolean): number {
  try {
    // Any name goes when a links file will supply the regions: only the syntax and counts are checked here.
    const anyName = {
      regions: Object.fromEntries(spec.split(',').map((p) => [p.split(':')[0]!.trim(), {}])),
      rttMs: {},
      uplinkMbps: 1,
    }
    const counts = parseRegionCounts(spec, known ? DEFAULT_WAN_LINKS : anyName)
    return counts.reduce((s, r) => s + r.count, 0)
  } catch (err) {
    if (err instanceof InvalidRegionSpecError) throw new UsageError(`--regions: ${err.message}`)
    throw err
  }
}

export function parseTestbedArgs(argv: string[]): TestbedConfig {
  const v = parse(argv, parserOptions(TESTBED_FLAGS))
  if (v['no-http'] === true && v.http !== undefined) {
    throw new UsageError('--http and --no-http exclude each other')
  }
  if (v.baseline === true && v['no-gossip'] === true) {
    throw new UsageError('--baseline adds a --no-gossip run after the gossip run; drop --no-gossip')
  }
  const regions = str(v, 'regions')
  const links = str(v, 'links')
  // 256: the 128-peer scale runs host many peers per process (--peers-per-process).
  let peers = int(v, 'peers', 1, 256)
  if (regions !== undefined) {
    // Region names from a --links file are checked once the testbed has read it.
    const total = regionTotal(regions, links === undefined)
    if (peers !== undefined && peers !== total) {
      throw new UsageError(`--peers ${peers} disagrees with --regions, which hold ${total} peers`)
    }
    if (total < 1 || total > 64) throw new UsageError(`--regions must hold 1 to 64 peers, got ${total}`)
    peers = total
  }
  return {
    ...learnFlags(v),
    regions,
    links,
    peers: peers ?? 8,
    durationS: num(v, 'duration', 1, 86_400) ?? 120,
    targetAccuracy: num(v, 'target-accuracy', 0, 1),
    json: str(v, 'json'),
    pollMs: int(v, 'poll', 100, 60_000) ?? 1000,
    keepDir: str(v, 'keep-dir'),
    // The live page is on by default, on a free port (several testbeds may run at once).
    http: v['no-http'] === true ? undefined : (int(v, 'http', 0, 65535) ?? 0),
    report: str(v, 'report'),
    baseline: v.baseline === true,
    ...byzantineFlags(v),
    ...churnFlags(v),
    ...peersPerProcessFlag(v),
    // As for start: --defences off also drops the robust merge steps unless --merge names a pipeline.
    ...(v.defences !== undefined ? defencesFlag(v) : {}),
  }
}

/** The testbed's `--defences on|off`, passed to every peer (with the merge pipeline it implies). */
function defencesFlag(v: Values): { defences: boolean; merge?: MergeMode } {
  const defences = oneOf(v, 'defences', ['on', 'off'] as const) === 'on'
  return defences || str(v, 'merge') !== undefined ? { defences } : { defences, merge: UNDEFENDED_MERGE_MODE }
}

/** `--byzantine K:MODE` (repeatable, or a comma list) and `--attack-interval MS`: testbed-only attackers. */
function byzantineFlags(v: Values): { byzantine?: AttackerGroup[]; attackIntervalMs?: number } {
  const specs = (v.byzantine as string[] | undefined) ?? []
  const attackIntervalMs = int(v, 'attack-interval', 10, 600_000)
  if (specs.length === 0) {
    if (attackIntervalMs !== undefined) throw new UsageError('--attack-interval needs --byzantine')
    return {}
  }
  if (v['no-gossip'] === true) throw new UsageError('--byzantine needs gossip; drop --no-gossip')
  let byzantine: AttackerGroup[]
  try {
    byzantine = parseByzantineSpecs(specs)
  } catch (err) {
    throw new UsageError(`--byzantine: ${(err as Error).message}`)
  }
  return { byzantine, ...(attackIntervalMs !== undefined ? { attackIntervalMs } : {}) }
}

/**
 * `--peers-per-process N`: daemons hosted by one process. --churn kills processes, so with more
 * than one peer per process a kill would take down a whole host: refused.
 */
function peersPerProcessFlag(v: Values): Pick<TestbedConfig, 'peersPerProcess'> {
  const n = int(v, 'peers-per-process', 1, 256)
  if (n === undefined || n === 1) return {}
  if (str(v, 'churn') !== undefined) {
    throw new UsageError(
      `--churn needs --peers-per-process 1: it kills processes, and a process hosts ${n} peers`,
    )
  }
  return { peersPerProcess: n }
}

/** The testbed's `--train-rate` and `--churn` specs (formats in src/testbed/churn.ts). */
function churnFlags(v: Values): Pick<TestbedConfig, 'trainRate' | 'churn'> {
  const out: Pick<TestbedConfig, 'trainRate' | 'churn'> = {}
  const rate = str(v, 'train-rate')
  const churn = str(v, 'churn')
  try {
    if (rate !== undefined) out.trainRate = parseTrainRateSpec(rate)
  } catch (err) {
    throw new UsageError(`--train-rate: ${(err as Error).message}`)
  }
  try {
    if (churn !== undefined) out.churn = parseChurnSpec(churn)
  } catch (err) {
    throw new UsageError(`--churn: ${(err as Error).message}`)
  }
  return out
}
