/**
 * SVG figures for the benchmarks, drawn by the same chart code as the dashboard and the testbed
 * report (src/node/dashboard/charts.js over Observable Plot) in headless Chromium (Debian's
 * /usr/bin/chromium, driven by playwright-core): one plotting path for pages and docs.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { chartAssets, renderPage } from '../../src/node/dashboard/assets.ts'

/** A GossipCharts.lines spec (see charts.js), plus the figure's title. */
export interface LineChartSpec {
  title: string
  width?: number
  height?: number
  x: { label: string; domain?: [number, number] }
  y: { label: string; domain?: [number, number]; percent?: boolean }
  series: Array<{ name: string; points: Array<[number, number]>; dashed?: boolean; width?: number }>
  bands?: Array<{ name: string; points: Array<[number, number, number]> }>
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Draw each spec as a standalone SVG document (title inside, white background). */
export async function renderLineSvgs(specs: LineChartSpec[]): Promise<string[]> {
  const profile = await mkdtemp(join(tmpdir(), 'gl-plot-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-sync',
    ],
  })
  try {
    const page = context.pages()[0] ?? (await context.newPage())
    await page.setContent(
      renderPage({ title: 'plot', assets: chartAssets(), inline: true, body: '<main id="app"></main>' }),
    )
    // A plain arrow with no named locals: tsx would wrap named ones in a helper the page lacks.
    return await page.evaluate(
      (all) =>
        all.map((spec) =>
          (window as unknown as { GossipCharts: { linesSvg(s: unknown): string } }).GossipCharts.linesSvg(
            spec,
          ),
        ),
      specs,
    )
  } finally {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  }
}
