/**
 * The testbed's progress in a terminal: on a TTY, a table redrawn in place (one line per peer with
 * an accuracy bar); elsewhere (CI, pipes, files) a plain line every few seconds, which logs keep.
 */
import type { RunPhase, TestbedResult } from './result.ts'

/** Where progress goes: a TTY stream (process.stdout) or anything with `write`. */
export interface ProgressOutput {
  isTTY?: boolean
  columns?: number
  write(text: string): unknown
}

export interface ProgressView {
  /** The testbed's progress hook. */
  update(phase: RunPhase, result: TestbedResult): void
  /** Print a line for people without tearing the table. */
  log(line: string): void
  /** Leave the last table on screen; later output goes below it. */
  done(): void
}

/** A plain progress line this often when not on a TTY: a 120 s run logs 24 lines. */
export const PLAIN_INTERVAL_MS = 5000

/** Characters of the accuracy bar (the full bar is accuracy 1.0). */
export const BAR_WIDTH = 20

const ESC = '\x1b['

const fmtAcc = (a: number | null | undefined): string =>
  a === null || a === undefined ? '  -  ' : a.toFixed(3)
const mib = (b: number): string => (b / 2 ** 20).toFixed(1)
const mean = (xs: number[]): number | null =>
  xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length

/** An accuracy bar of `width` cells (eighths of a cell for precision). */
export function accuracyBar(accuracy: number | null | undefined, width = BAR_WIDTH): string {
  if (accuracy === null || accuracy === undefined || !Number.isFinite(accuracy)) return '·'.repeat(width)
  const eighths = Math.round(Math.min(1, Math.max(0, accuracy)) * width * 8)
  const full = Math.floor(eighths / 8)
  const part = eighths % 8
  const partial = part > 0 ? '▏▎▍▌▋▊▉'[part - 1]! : ''
  return `${'█'.repeat(full)}${partial}${'·'.repeat(width - full - (partial ? 1 : 0))}`
}

function accuracies(r: TestbedResult): number[] {
  return r.peers.map((p) => p.finalAccuracy).filter((a): a is number => a !== null)
}

/** The one-line summary of the run so far (the plain mode's line, the table's header). */
export function progressLine(phase: RunPhase, r: TestbedResult): string {
  const accs = accuracies(r)
  const rx = r.peers.reduce((s, p) => s + p.modelsReceived, 0)
  const sent = r.peers.reduce((s, p) => s + p.bytesSent, 0)
  return (
    `${phase === 'baseline' ? '[baseline] ' : ''}t=${String(Math.round(r.durationS)).padStart(4)}s  ` +
    `acc mean ${fmtAcc(mean(accs))}  [${r.peers.map((p) => fmtAcc(p.finalAccuracy)).join(' ')}]  ` +
    `models rx ${rx}  sent ${mib(sent)} MiB`
  )
}

/** The table: a header, then one line per peer. */
export function tableLines(phase: RunPhase, r: TestbedResult): string[] {
  const accs = accuracies(r)
  const width = Math.max(0, ...r.peers.map((p) => p.region?.length ?? 0))
  const head =
    `${phase === 'baseline' ? 'baseline (no gossip)' : 'gossip'}  t=${Math.round(r.durationS)} s  ` +
    `accuracy mean ${fmtAcc(mean(accs))}  min ${fmtAcc(accs.length > 0 ? Math.min(...accs) : null)}`
  return [
    head,
    ...r.peers.map(
      (p) =>
        `peer ${String(p.index).padStart(2)}${width > 0 ? ` ${(p.region ?? '-').padEnd(width)}` : ''}  ` +
        `${accuracyBar(p.finalAccuracy)} ${fmtAcc(p.finalAccuracy)}  steps ${String(p.steps).padStart(6)}  ` +
        `models in ${String(p.modelsReceived).padStart(4)} out ${String(p.modelsSent).padStart(4)}  ` +
        `${mib(p.bytesSent).padStart(7)} MiB out`,
    ),
  ]
}

/** A progress view on `out`: the live table on a TTY, plain lines otherwise. */
export function createProgressView(
  out: ProgressOutput,
  init: { intervalMs?: number; now?: () => number } = {},
): ProgressView {
  const now = init.now ?? Date.now
  if (out.isTTY !== true) {
    const interval = init.intervalMs ?? PLAIN_INTERVAL_MS
    let last = Number.NEGATIVE_INFINITY
    let lastPhase: RunPhase | undefined
    return {
      update(phase, result) {
        if (phase === lastPhase && now() - last < interval) return
        last = now()
        lastPhase = phase
        out.write(`${progressLine(phase, result)}\n`)
      },
      log: (line) => out.write(`${line}\n`),
      done: () => {},
    }
  }
  let drawn = 0
  let frame: string[] = []
  let shownPhase: RunPhase | undefined
  const clip = (line: string): string => {
    // A terminal that reports no width (0 under `script`, say) gets 100 columns.
    const cols = Math.max(20, (out.columns || 100) - 1)
    return line.length > cols ? `${line.slice(0, cols - 1)}…` : line
  }
  const erase = () => {
    // Back to the table's first line, then clear everything below.
    if (drawn > 0) out.write(`${ESC}${drawn}F${ESC}0J`)
    drawn = 0
  }
  const draw = () => {
    out.write(frame.map((l) => `${ESC}2K${clip(l)}\n`).join(''))
    drawn = frame.length
  }
  return {
    update(phase, result) {
      // A new phase (the baseline run) starts a new table below the finished one.
      if (phase !== shownPhase) drawn = 0
      shownPhase = phase
      frame = tableLines(phase, result)
      erase()
      draw()
    },
    log(line) {
      erase()
      out.write(`${line}\n`)
      draw()
    },
    done() {
      drawn = 0
      frame = []
    },
  }
}
