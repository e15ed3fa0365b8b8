/** Text table and hand-written SVG chart of bench:merge rows (no plotting dependency). */
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

const COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#000000',
  '#aa6600',
]

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * Mean accuracy vs local steps per peer, one polyline per row (dashed for shared init
 * and the baselines). The y axis starts at the lowest mean after the first eval point,
 * rounded down to 5 points, so the end of training is readable.
 */
export function renderSvg(rows: readonly Row[], title: string): string {
  const W = 860
  const H = 520
  const left = 60
  const right = 290
  const top = 40
  const bottom = 50
  const pw = W - left - right
  const ph = H - top - bottom
  const xMax = Math.max(...rows.flatMap((r) => r.curve.map((p) => p.step)))
  const lows = rows.map((r) => (r.curve.length > 1 ? r.curve[1]!.accuracy : r.curve[0]!.accuracy))
  const yMin = Math.max(0, Math.floor(Math.min(...lows) * 20) / 20)
  const yMax = 1
  const x = (s: number): number => left + (s / xMax) * pw
  const y = (a: number): number => top + (1 - (Math.max(a, yMin) - yMin) / (yMax - yMin)) * ph
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="14">${esc(title)}</text>`,
  ]
  for (let k = 0; k <= 5; k++) {
    const s = (xMax * k) / 5
    out.push(
      `<line x1="${x(s)}" y1="${top}" x2="${x(s)}" y2="${top + ph}" stroke="#eee"/>`,
      `<text x="${x(s)}" y="${top + ph + 16}" text-anchor="middle">${Math.round(s)}</text>`,
    )
  }
  for (let a = yMin; a <= yMax + 1e-9; a += 0.05) {
    out.push(
      `<line x1="${left}" y1="${y(a).toFixed(1)}" x2="${left + pw}" y2="${y(a).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${(y(a) + 4).toFixed(1)}" text-anchor="end">${(a * 100).toFixed(0)}</text>`,
    )
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
    `<text x="${left + pw / 2}" y="${H - 12}" text-anchor="middle">local steps per peer</text>`,
    `<text x="16" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + ph / 2})">mean test accuracy %</text>`,
  )
  rows.forEach((r, i) => {
    const color = COLORS[i % COLORS.length]!
    const dash = r.init === 'independent' ? '' : ' stroke-dasharray="6 3"'
    const pts = r.curve.map((p) => `${x(p.step).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(' ')
    out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.6"${dash}/>`)
    const ly = top + 8 + i * 18
    out.push(
      `<line x1="${left + pw + 14}" y1="${ly}" x2="${left + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${left + pw + 46}" y="${ly + 4}">${esc(`${label(r)} (${r.init}) ${(r.finalAccuracy * 100).toFixed(2)}`)}</text>`,
    )
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
