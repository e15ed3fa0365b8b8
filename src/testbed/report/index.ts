/**
 * The testbed's page, in two forms: the HTML report, one self-contained file (charting library,
 * chart code, page script and the run's data inlined: it opens offline, from file://), and the
 * assets of the live page the testbed serves while it runs (src/testbed/server.ts).
 */
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Asset, chartAssets, localAsset, renderPage } from '../../node/dashboard/assets.ts'
import type { TestbedResult } from '../result.ts'

const here = dirname(fileURLToPath(import.meta.url))

/** d3, Plot, the shared chart code and style, and the run page's script, in load order. */
export function runPageAssets(): Asset[] {
  return [...chartAssets(), localAsset(here, 'run-page.js')]
}

/** The report of `result` (and of its baseline, if any) as one self-contained HTML document. */
export function renderReport(result: TestbedResult): string {
  const title = `gossip-learn testbed: ${result.peers.length} peers, ${result.config.startedAt}`
  return renderPage({ title, assets: runPageAssets(), inline: true, data: result })
}

/** The live page's HTML (assets linked under /assets/, data polled from /api/run). */
export function renderLivePage(): string {
  return renderPage({ title: 'gossip-learn testbed (live)', assets: runPageAssets(), inline: false })
}
