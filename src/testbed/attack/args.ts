/**
 * The command line of an attacker process (internal: the testbed builds it, people use
 * `gossip-learn testbed --byzantine K:MODE`). `attackerArgv` and `parseAttackerArgs` are inverses.
 */
import { parseArgs } from 'node:util'
import { LEARN_DEFAULTS } from '../../node/config.ts'
import { UsageError } from '../../node/errors.ts'
import type { AttackerConfig } from './attacker.ts'
import { ATTACK_STATUS_INTERVAL_MS, DEFAULT_ATTACK_FANOUT, DEFAULT_ATTACK_INTERVAL_MS } from './constants.ts'
import { ATTACK_MODE_NAMES, isAttackMode } from './modes.ts'

/** An attacker process's settings: the attacker's, and how often it reports. */
export interface AttackerProcessConfig extends AttackerConfig {
  /** Print a JSON status line this often (ms). */
  statusIntervalMs: number
}

const OPTIONS = {
  mode: { type: 'string' },
  bootstrap: { type: 'string', multiple: true },
  listen: { type: 'string', multiple: true },
  'data-dir': { type: 'string' },
  dataset: { type: 'string' },
  model: { type: 'string' },
  hidden: { type: 'string' },
  partition: { type: 'string' },
  'peer-index': { type: 'string' },
  'peer-count': { type: 'string' },
  seed: { type: 'string' },
  'attack-seed': { type: 'string' },
  interval: { type: 'string' },
  fanout: { type: 'string' },
  'steps-per-round': { type: 'string' },
  'round-ms': { type: 'string' },
  'train-rate': { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  'eval-size': { type: 'string' },
  codec: { type: 'string' },
  target: { type: 'string', multiple: true },
  spare: { type: 'string', multiple: true },
  'status-interval': { type: 'string' },
} as const

/** The argv that `parseAttackerArgs` turns back into `config`. */
export function attackerArgv(config: AttackerProcessConfig): string[] {
  const argv = [
    '--mode',
    config.mode,
    ...config.bootstrap.flatMap((b) => ['--bootstrap', b]),
    ...(config.listen ?? []).flatMap((l) => ['--listen', l]),
    '--dataset',
    config.dataset,
    '--model',
    config.model,
    '--partition',
    config.partition,
    '--peer-index',
    String(config.peerIndex),
    '--peer-count',
    String(config.peerCount),
    '--seed',
    String(config.seed),
    '--attack-seed',
    String(config.attackSeed),
    '--interval',
    String(config.intervalMs),
    '--fanout',
    String(config.fanout),
    '--steps-per-round',
    String(config.stepsPerRound),
    '--batch-size',
    String(config.batchSize),
    '--lr',
    String(config.learningRate),
    '--eval-size',
    String(config.evalSize),
    '--status-interval',
    String(config.statusIntervalMs),
    ...(config.targets ?? []).flatMap((t) => ['--target', t]),
    ...(config.spare ?? []).flatMap((t) => ['--spare', t]),
  ]
  if (config.dataDir !== undefined) argv.push('--data-dir', config.dataDir)
  if (config.hidden !== undefined) argv.push('--hidden', String(config.hidden))
  if (config.codec !== undefined) argv.push('--codec', config.codec)
  if (config.trainRate !== undefined) argv.push('--train-rate', String(config.trainRate))
  if (config.roundMs !== undefined) argv.push('--round-ms', String(config.roundMs))
  return argv
}

/** Parse an attacker process's argv; UsageError naming the flag. */
export function parseAttackerArgs(argv: string[]): AttackerProcessConfig {
  let v: Record<string, string | string[] | boolean | undefined>
  try {
    v = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError(String((err as Error).message).split('\n')[0])
  }
  const str = (name: string): string | undefined =>
    typeof v[name] === 'string' ? (v[name] as string) : undefined
  const num = (name: string, min: number, integer = true): number | undefined => {
    const s = str(name)
    if (s === undefined) return undefined
    const n = Number(s)
    if (s.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${s}'`)
    }
    return n
  }
  const positive = (name: string): number => {
    const n = num(name, 0, false)!
    if (!(n > 0)) throw new UsageError(`--${name} must be a number > 0, got '${str(name)}'`)
    return n
  }
  const mode = str('mode')
  if (mode === undefined || !isAttackMode(mode)) {
    throw new UsageError(`--mode must be one of ${ATTACK_MODE_NAMES.join('|')}, got '${mode ?? ''}'`)
  }
  const model = str('model') ?? LEARN_DEFAULTS.model
  if (model !== 'mlp' && model !== 'cnn') throw new UsageError(`--model must be mlp|cnn, got '${model}'`)
  const peerCount = num('peer-count', 1) ?? 1
  const peerIndex = num('peer-index', 0) ?? 0
  if (peerIndex >= peerCount) throw new UsageError(`--peer-index must be below --peer-count (${peerCount})`)
  const targets = v.target as string[] | undefined
  const spare = v.spare as string[] | undefined
  return {
    mode,
    bootstrap: (v.bootstrap as string[] | undefined) ?? [],
    listen: v.listen as string[] | undefined,
    dataDir: str('data-dir'),
    dataset: str('dataset') ?? LEARN_DEFAULTS.dataset,
    model,
    hidden: num('hidden', 1),
    partition: str('partition') ?? LEARN_DEFAULTS.partition,
    peerIndex,
    peerCount,
    seed: num('seed', 0) ?? LEARN_DEFAULTS.seed,
    attackSeed: num('attack-seed', 0) ?? 0,
    intervalMs: num('interval', 1) ?? DEFAULT_ATTACK_INTERVAL_MS,
    fanout: num('fanout', 1) ?? DEFAULT_ATTACK_FANOUT,
    stepsPerRound: num('steps-per-round', 1) ?? LEARN_DEFAULTS.stepsPerRound,
    ...(str('round-ms') !== undefined ? { roundMs: num('round-ms', 0) } : {}),
    ...(str('train-rate') !== undefined ? { trainRate: positive('train-rate') } : {}),
    batchSize: num('batch-size', 1) ?? LEARN_DEFAULTS.batchSize,
    learningRate: num('lr', 0, false) ?? LEARN_DEFAULTS.learningRate,
    evalSize: num('eval-size', 1) ?? LEARN_DEFAULTS.evalSize,
    codec: str('codec'),
    ...(targets !== undefined ? { targets } : {}),
    ...(spare !== undefined ? { spare } : {}),
    statusIntervalMs: num('status-interval', 1) ?? ATTACK_STATUS_INTERVAL_MS,
  }
}

/** Opens each attacker's flags when one process hosts several. */
export const ATTACKER_SEPARATOR = '--attacker'

/** The flags of each hosted attacker: groups opened by ATTACKER_SEPARATOR, or the whole argv for one. */
export function splitAttackerArgv(argv: readonly string[]): string[][] {
  if (argv[0] !== ATTACKER_SEPARATOR) return [[...argv]]
  const groups: string[][] = []
  for (const arg of argv) {
    if (arg === ATTACKER_SEPARATOR) groups.push([])
    else groups[groups.length - 1]!.push(arg)
  }
  return groups
}

/** The command line of one process hosting `configs` (the inverse of splitAttackerArgv + parseAttackerArgs). */
export function hostedAttackersArgv(configs: readonly AttackerProcessConfig[]): string[] {
  return configs.flatMap((c) => [ATTACKER_SEPARATOR, ...attackerArgv(c)])
}
