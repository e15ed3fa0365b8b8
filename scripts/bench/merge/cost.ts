/**
 * Cost of one merge of a received model, per merge mode, as a ratio to one local
 * training step (LocalTrainer, batch 32, the zoo's Adam) of the same model: the
 * method of scripts/bench/merge-cost.ts, as a function bench:merge calls.
 */

import type { Samples } from '../../../src/data/types.ts'
import { createMerger } from '../../../src/merge/merger.ts'
import { MERGE_MODES, type MergeMode } from '../../../src/merge/registry.ts'
import { getState } from '../../../src/model/state.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import { buildModel, parseArch } from '../../../src/model/zoo.ts'

export interface MergeCost {
  arch: string
  params: number
  stepMs: number
  merges: Array<{ mode: MergeMode; ms: number; steps: number }>
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/**
 * Two models from different seeds, each pretrained `pretrain` steps on its own data (so
 * alignment sees trained, not random, weights). Rounds of `trainReps` training steps and one
 * merge per mode alternate, so both see the same machine load; medians over `reps` rounds.
 */
export async function measureMergeCost(
  archText: string,
  data: [Samples, Samples],
  options: { pretrain: number; reps: number; trainReps: number },
): Promise<MergeCost> {
  const arch = parseArch(archText)
  const models = [buildModel(arch, { seed: 1 }), buildModel(arch, { seed: 2 })]
  try {
    const trainers = data.map((d, i) => new LocalTrainer({ data: d, seed: 10 + i }))
    for (let i = 0; i < 2; i++) await trainers[i]!.trainSteps(models[i]!, { steps: options.pretrain })
    const local = getState(models[0]!, { age: options.pretrain * 32 })
    const received = getState(models[1]!, { age: options.pretrain * 32 })
    const mergers = MERGE_MODES.map((mode) => ({ mode, merge: createMerger({ mode }) }))
    const stepTimes: number[] = []
    const times = mergers.map((): number[] => [])
    for (let r = 0; r < options.reps + 2; r++) {
      const t0 = performance.now()
      await trainers[0]!.trainSteps(models[0]!, { steps: options.trainReps })
      if (r >= 2) stepTimes.push((performance.now() - t0) / options.trainReps)
      mergers.forEach(({ merge }, i) => {
        const t1 = performance.now()
        merge(local, [received])
        if (r >= 2) times[i]!.push(performance.now() - t1)
      })
    }
    const stepMs = median(stepTimes)
    return {
      arch: local.arch.slice(0, local.arch.indexOf('|')),
      params: local.tensors.reduce((n, t) => n + t.values.length, 0),
      stepMs,
      merges: mergers.map(({ mode }, i) => {
        const ms = median(times[i]!)
        return { mode, ms, steps: ms / stepMs }
      }),
    }
  } finally {
    for (const m of models) m.dispose()
  }
}

/** Markdown table of merge costs. */
export function formatCost(costs: readonly MergeCost[]): string {
  const lines = [
    `| model | params | train step ms | ${MERGE_MODES.map((m) => `${m} ms (steps)`).join(' | ')} |`,
  ]
  lines.push(`|${'---|'.repeat(3 + MERGE_MODES.length)}`)
  for (const c of costs) {
    lines.push(
      `| ${c.arch} | ${c.params} | ${c.stepMs.toFixed(2)} | ${c.merges.map((m) => `${m.ms.toFixed(2)} (${m.steps.toFixed(2)})`).join(' | ')} |`,
    )
  }
  return lines.join('\n')
}
