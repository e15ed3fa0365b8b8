/**
 * Per-input step `probe`: is the received model any good on my data? Each input's accuracy on a
 * small fixed batch of the local share (the node supplies the function; the data never leaves)
 * is compared with the median accuracy of the models accepted recently: an input below
 * DEFAULT_PROBE_RATIO of it is refused. Refused inputs do not enter the history (attackers, even
 * most of the inputs, cannot lower the bar); a run of refusals with nothing accepted in between
 * means the bar no longer fits the peers we hear from, and it is dropped (as `clip` does).
 * After UBAR (Guo et al., 2021: keep the neighbours whose loss on a local sample is low), with the bar set by the received models themselves, since
 * with independent inits and label-skewed shares a neighbour's model can be far below one's own
 * and still worth merging. The distance test cannot refuse a random model early in training,
 * when honest peers are as far apart as random ones; by accuracy, once the network has learnt
 * anything, random weights (or trained on flipped labels) are far below every honest model.
 * A minority of attackers cannot move a median. Without a probe function the step accepts all.
 */
import type { ModelState } from '../../model/types.ts'
import { InvalidArgumentError } from '../../util/errors.ts'
import {
  DEFAULT_PROBE_LOCAL_RATIO,
  DEFAULT_PROBE_MIN_HISTORY,
  DEFAULT_PROBE_RATIO,
  DEFAULT_PROBE_WINDOW,
  DEFAULT_REWARM_AFTER_REJECTS,
  MERGE_REASONS,
} from '../constants.ts'
import type { InputStepDefinition, InputVerdict, MergeInput } from '../pipeline.ts'
import { Window } from './vector.ts'

/** Options of `probe` (defaults and reasons in ../constants.ts). */
export interface ProbeOptions {
  /** Accuracy of a state on the local probe batch; absent: the step accepts every input. */
  accuracy?: (state: ModelState) => number
  /** An input below this fraction of the median recent accuracy is refused. */
  ratio?: number
  /** Accuracies of recently accepted inputs kept. */
  window?: number
  /** Accepted inputs needed before their median sets the bar. */
  minHistory?: number
  /** The bar is at least this fraction of the local model's own accuracy. */
  localRatio?: number
}

/** The accuracies `probe` keeps across one merger's merges. */
export class ProbeHistory {
  private readonly ratio: number
  private readonly window: number
  private readonly minHistory: number
  private readonly localRatio: number
  /** The local state last probed and its accuracy: one merge probes it once, whatever its inputs. */
  private local?: { state: ModelState; accuracy: number }
  private values: Window
  private rejectsInARow = 0

  constructor(
    private readonly accuracy: (state: ModelState) => number,
    options: ProbeOptions = {},
  ) {
    this.ratio = options.ratio ?? DEFAULT_PROBE_RATIO
    this.window = options.window ?? DEFAULT_PROBE_WINDOW
    this.minHistory = options.minHistory ?? DEFAULT_PROBE_MIN_HISTORY
    this.localRatio = options.localRatio ?? DEFAULT_PROBE_LOCAL_RATIO
    if (!(this.localRatio >= 0 && this.localRatio <= 1))
      throw new InvalidArgumentError(`probe localRatio ${this.localRatio}`)
    if (!(this.ratio > 0 && this.ratio <= 1)) throw new InvalidArgumentError(`probe ratio ${this.ratio}`)
    for (const [k, v] of [
      ['window', this.window],
      ['minHistory', this.minHistory],
    ] as const) {
      if (!(Number.isInteger(v) && v >= 1)) throw new InvalidArgumentError(`probe ${k} ${v}`)
    }
    if (this.minHistory > this.window)
      throw new InvalidArgumentError('probe minHistory must not exceed window')
    this.values = new Window(this.window)
  }

  /**
   * The accuracy an input needs to pass against `local`: a fraction of the median of accepted
   * inputs (once there are enough), and never below a fraction of the local model's own.
   */
  bar(local?: ModelState): number {
    const fromHistory = this.values.length < this.minHistory ? 0 : this.ratio * this.values.median()
    if (local === undefined || this.localRatio === 0) return fromHistory
    if (this.local?.state !== local) this.local = { state: local, accuracy: this.accuracy(local) }
    return Math.max(fromHistory, this.localRatio * this.local.accuracy)
  }

  judge(input: MergeInput, local?: ModelState): InputVerdict {
    const acc = this.accuracy(input.state)
    const bar = this.bar(local)
    if (!(acc >= bar)) {
      if (++this.rejectsInARow >= DEFAULT_REWARM_AFTER_REJECTS) {
        this.values = new Window(this.window)
        this.rejectsInARow = 0
      }
      return { action: 'reject', reason: MERGE_REASONS.probeLow }
    }
    this.rejectsInARow = 0
    this.values.push(acc)
    return { action: 'accept', input }
  }
}

/** Refuses inputs whose accuracy on the local probe batch is far below recent inputs' (see the module comment). */
export const probeStep: InputStepDefinition = {
  kind: 'input',
  create(init) {
    const accuracy = init.probe?.accuracy
    if (accuracy === undefined) return (_local, input) => ({ action: 'accept', input })
    const history = new ProbeHistory(accuracy, init.probe)
    return (local, input) => history.judge(input, local)
  },
}
