/** Text table and SVG chart of bench:merge rows. */
import { type LineChartSpec, renderLineSvgs } from '../plot-svg.ts'
import type { Row } from './sim.ts'

export const THRESHOLDS = [0.8, 0.9, 0.95] as const

/** First evaluated step whose mean accuracy reaches `target` (undefined if never). */
export function stepsToReach(row: Row, target: number): number | undefined {
  return row.curve.find((p) => p.accuracy >= target)?.step
}

/** First evaluated step at which mean accuracy reaches `target`, interpolated between eval points. */
export function stepsToReachInterpolated(row: Row, target: number): number | undefined {
  let prev = { step: 0, accuracy: 0 }
  for (const p of row.curve) {
    if (p.accuracy >= target) {
      if (p.accuracy === prev.accuracy) return p.step
      return prev.step + ((target - prev.accuracy) / (p.accuracy - prev.accuracy)) * (p.step - prev.step)
    }
    prev = p
  }
  return undefined
}

function label(row: Row): string {
  return row.variant === '' ? row.mode : `${row.mode} [${row.variant}]`
}

/** Markdown table: one line per row, accuracies in percent. */
export function formatTable(rows: readonly Row[]): string {
  const head = [
    'mode',
    'init',
    'final mean %',
    'last-5 mean %',
    'min %',
    'max %',
    ...THRESHOLDS.map((t) => `steps to ${t.toFixed(2)}`),
    'merge ms',
    'wall s',
  ]
  const lines = rows.map((r) => [
    label(r),
    r.init,
    (r.finalAccuracy * 100).toFixed(2),
    (r.tailAccuracy * 100).toFixed(2),
    (r.minAccuracy * 100).toFixed(2),
    (r.maxAccuracy * 100).toFixed(2),
    ...THRESHOLDS.map((t) => String(stepsToReach(r, t) ?? '-')),
    r.mergeMs > 0 ? r.mergeMs.toFixed(1) : '-',
    r.wallSeconds.toFixed(0),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [fmt(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n')
}

/**
 * Mean accuracy vs local steps per peer, one line per row (dashed for shared init and the
 * baselines). The y axis starts at the lowest mean after the first eval point, rounded down to
 * 5 points, so the end of training is readable. Drawn by the pages' chart code (plot-svg.ts).
 */
export function mergeChart(rows: readonly Row[], title: string): LineChartSpec {
  const lows = rows.map((r) => (r.curve.length > 1 ? r.curve[1]!.accuracy : r.curve[0]!.accuracy))
  const yMin = Math.max(0, Math.floor(Math.min(...lows) * 20) / 20)
  return {
    title,
    width: 860,
    height: 480,
    x: { label: 'local steps per peer' },
    y: { label: 'mean test accuracy %', domain: [yMin, 1], percent: true },
    series: rows.map((r) => ({
      name: `${label(r)} (${r.init}) ${(r.finalAccuracy * 100).toFixed(2)}`,
      points: r.curve.map((p) => [p.step, Math.max(p.accuracy, yMin)] as [number, number]),
      dashed: r.init !== 'independent',
    })),
  }
}

/** The merge chart as an SVG document. */
export async function renderSvg(rows: readonly Row[], title: string): Promise<string> {
  const [svg] = await renderLineSvgs([mergeChart(rows, title)])
  return svg!
}
