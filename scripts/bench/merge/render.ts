/**
 * Re-renders bench:merge results: one table (and optionally one SVG) from any number
 * of --json files, e.g. the default run plus knob variants.
 *
 *   npx tsx scripts/bench/merge/render.ts [--svg FILE] [--title TEXT] a.json [b.json ...]
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { formatTable, renderSvg } from './report.ts'
import { type Row, TAIL_POINTS } from './sim.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { svg: { type: 'string' }, title: { type: 'string', default: 'bench:merge' } },
})

const rows: Row[] = positionals.flatMap((file) =>
  (JSON.parse(readFileSync(file, 'utf8')) as Row[]).map((r) => {
    const tail = r.curve.slice(-TAIL_POINTS)
    return {
      ...r,
      variant: r.variant ?? '',
      tailAccuracy: r.tailAccuracy ?? tail.reduce((s, p) => s + p.accuracy, 0) / tail.length,
    }
  }),
)
console.log(formatTable(rows))
if (values.svg !== undefined) writeFileSync(values.svg, await renderSvg(rows, values.title!))
