/**
 * What a Byzantine testbed peer sends, one mode per line of ATTACK_MODES. A mode crafts the model
 * to push from what the attacker has received (pure functions on ModelState), or, for
 * `label-flip`, is an honest learner on poisoned data. Only the testbed starts attackers:
 * `gossip-learn start` has no attack mode.
 */
import { initialState } from '../../model/arch.ts'
import { cloneState } from '../../model/layout.ts'
import type { ArchSpec, ModelState } from '../../model/types.ts'
import type { Rng } from '../../util/rng.ts'
import { ALIE_Z, INFLATED_AGE, SCALE_FACTOR, SIGN_FLIP_FACTOR } from './constants.ts'
import { InvalidByzantineSpecError } from './errors.ts'

/** What a crafting mode sees. */
export interface CraftContext {
  /** The newest model received from each recent sender, oldest first (may be empty). */
  received: readonly ModelState[]
  /** The attacker's architecture (noise modes draw fresh weights of its shapes). */
  arch: ArchSpec
  rng: Rng
}

/** One attack. `craft` returns the model to push next, or undefined when it has nothing yet. */
export interface AttackModeDefinition {
  /** One line for help texts and reports. */
  description: string
  /** Trains an honest learner on poisoned data instead of crafting (pushes once per round). */
  trains?: { flipLabels: true }
  craft?: (ctx: CraftContext) => ModelState | undefined
}

/** Every value of each tensor times `factor`; the age is kept. */
export function scaleState(state: ModelState, factor: number): ModelState {
  return {
    arch: state.arch,
    age: state.age,
    tensors: state.tensors.map((t) => ({
      name: t.name,
      shape: [...t.shape],
      values: t.values.map((v) => v * factor),
    })),
  }
}

/** A copy of `state` claiming `age`. */
export function withAge(state: ModelState, age: number): ModelState {
  return { ...cloneState(state), age }
}

/**
 * "A little is enough" (Baruch et al. 2019): per coordinate the mean of `models` minus `z`
 * standard deviations (population), with the largest age among them. Inside the honest spread
 * when z is about 1, so a distance test alone does not single it out.
 */
export function alieState(models: readonly ModelState[], z: number): ModelState {
  const first = models[0]
  if (first === undefined) throw new InvalidByzantineSpecError('alie needs at least one model')
  const n = models.length
  return {
    arch: first.arch,
    age: Math.max(...models.map((m) => m.age)),
    tensors: first.tensors.map((t, ti) => {
      const values = new Float32Array(t.values.length)
      for (let k = 0; k < values.length; k++) {
        let sum = 0
        let sq = 0
        for (const m of models) {
          const v = m.tensors[ti]!.values[k]!
          sum += v
          sq += v * v
        }
        const mean = sum / n
        const std = Math.sqrt(Math.max(0, sq / n - mean * mean))
        values[k] = mean - z * std
      }
      return { name: t.name, shape: [...t.shape], values }
    }),
  }
}

/** Fresh glorot-uniform weights of the attacker's shapes, claiming `age`. */
export function noiseState(arch: ArchSpec, rng: Rng, age: number): ModelState {
  return { ...initialState(arch, rng.uint32()), age }
}

const latest = (ctx: CraftContext): ModelState | undefined => ctx.received[ctx.received.length - 1]

/** The attacks `--byzantine K:MODE` knows. */
export const ATTACK_MODES = {
  'sign-flip': {
    description: `a received model times ${SIGN_FLIP_FACTOR}`,
    craft: (ctx) => {
      const m = latest(ctx)
      return m && scaleState(m, SIGN_FLIP_FACTOR)
    },
  },
  scale: {
    description: `a received model times ${SCALE_FACTOR}`,
    craft: (ctx) => {
      const m = latest(ctx)
      return m && scaleState(m, SCALE_FACTOR)
    },
  },
  noise: {
    description: 'random weights of the right shapes, claiming the age of the newest received model',
    craft: (ctx) => noiseState(ctx.arch, ctx.rng, latest(ctx)?.age ?? 0),
  },
  'noise-age': {
    description: `random weights claiming age ${INFLATED_AGE}`,
    craft: (ctx) => noiseState(ctx.arch, ctx.rng, INFLATED_AGE),
  },
  age: {
    description: `an honest copy of a received model claiming age ${INFLATED_AGE}`,
    craft: (ctx) => {
      const m = latest(ctx)
      return m && withAge(m, INFLATED_AGE)
    },
  },
  alie: {
    description: `mean of received models minus ${ALIE_Z} per-coordinate std ("a little is enough")`,
    craft: (ctx) => (ctx.received.length === 0 ? undefined : alieState(ctx.received, ALIE_Z)),
  },
  'label-flip': {
    description: 'an honest learner whose labels are flipped (y -> K-1-y)',
    trains: { flipLabels: true },
  },
  'free-rider': {
    description: 'sends back what it received, never trains',
    craft: latest,
  },
} as const satisfies Record<string, AttackModeDefinition>

/** An attack mode's name. */
export type AttackMode = keyof typeof ATTACK_MODES

/** Every attack mode name, in ATTACK_MODES order. */
export const ATTACK_MODE_NAMES = Object.keys(ATTACK_MODES) as AttackMode[]

/** The definition of `mode` (typed for callers that do not care which one). */
export function attackMode(mode: AttackMode): AttackModeDefinition {
  return ATTACK_MODES[mode]
}

/** True when `name` is an attack mode. */
export function isAttackMode(name: string): name is AttackMode {
  return Object.hasOwn(ATTACK_MODES, name)
}

/** K attackers of one mode. */
export interface AttackerGroup {
  count: number
  mode: AttackMode
}

/** Most attackers a testbed starts (each is a process; the testbed's own peer cap is 64). */
export const MAX_ATTACKERS = 64

/**
 * Parse `--byzantine` values: each is `K:MODE` or a comma list of them (`4:sign-flip,1:scale`).
 * Groups of one mode are summed. Throws InvalidByzantineSpecError.
 */
export function parseByzantineSpecs(specs: readonly string[]): AttackerGroup[] {
  const counts = new Map<AttackMode, number>()
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      const m = /^\s*(\d+)\s*:\s*([a-z-]+)\s*$/.exec(part)
      if (m === null) {
        throw new InvalidByzantineSpecError(
          `'${part}' is not K:MODE (e.g. 4:sign-flip; modes ${ATTACK_MODE_NAMES.join('|')})`,
        )
      }
      const count = Number(m[1])
      const mode = m[2]!
      if (!isAttackMode(mode)) {
        throw new InvalidByzantineSpecError(
          `unknown attack mode '${mode}': use ${ATTACK_MODE_NAMES.join('|')}`,
        )
      }
      if (count < 1) throw new InvalidByzantineSpecError(`'${part}': K must be at least 1`)
      counts.set(mode, (counts.get(mode) ?? 0) + count)
    }
  }
  const groups = [...counts].map(([mode, count]) => ({ count, mode }))
  const total = groups.reduce((s, g) => s + g.count, 0)
  if (total > MAX_ATTACKERS) {
    throw new InvalidByzantineSpecError(`${total} attackers; at most ${MAX_ATTACKERS}`)
  }
  return groups
}

/** `4:sign-flip,1:scale`: the groups as one spec (for reports and attacker command lines). */
export function formatByzantineSpecs(groups: readonly AttackerGroup[]): string {
  return groups.map((g) => `${g.count}:${g.mode}`).join(',')
}

/** The groups as one mode per attacker, in order (attacker i runs the i-th). */
export function expandAttackers(groups: readonly AttackerGroup[]): AttackMode[] {
  return groups.flatMap((g) => Array.from({ length: g.count }, () => g.mode))
}

/**
 * Labels flipped as `label-flip` trains on them: y -> K-1-y (9-y for MNIST's 10 classes), so
 * every class is taught as another one and the model stays the right shape.
 */
export function flipLabels(labels: Uint8Array, classes: number): Uint8Array {
  return labels.map((y) => classes - 1 - y)
}
