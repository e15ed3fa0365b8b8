/**
 * The testbed's page in headless Chromium. The HTML report of a recorded short run (3 peers in 3
 * emulated regions, 20 s, with its --no-gossip baseline; test/e2e/fixtures/testbed-run.json came
 * from `gossip-learn testbed --regions us-east:1,eu-west:1,ap-southeast:1 --duration 20 --baseline`)
 * opens from file:// with the browser offline and draws every chart; the live page served while
 * a testbed runs draws the same charts from /api/run. Any page error fails the test.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { renderReport } from '../../src/testbed/report/index.ts'
import type { TestbedResult } from '../../src/testbed/result.ts'
import { startRunServer } from '../../src/testbed/server.ts'
import { launchBrowser, type TestBrowser } from './browser.ts'

const FIXTURE = new URL('./fixtures/testbed-run.json', import.meta.url)

/** How many marks of `selector` each chart holds. */
async function count(page: Page, chart: string, selector: string): Promise<number> {
  return page.locator(`[data-chart="${chart}"] svg ${selector}`).count()
}

describe('testbed page', () => {
  let dir: string
  let run: TestbedResult
  const browsers: TestBrowser[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-report-'))
    run = JSON.parse(await readFile(FIXTURE, 'utf8')) as TestbedResult
  })

  afterAll(async () => {
    await Promise.all(browsers.map((b) => b.close()))
    await rm(dir, { recursive: true, force: true })
  })

  it('the report is one self-contained file that draws its charts offline from file://', async () => {
    const html = renderReport(run)
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/)
    const file = join(dir, 'report.html')
    await writeFile(file, html)

    const browser = await launchBrowser({ offline: true })
    browsers.push(browser)
    const { page } = browser
    await page.goto(pathToFileURL(file).href)
    await page.waitForSelector('#peers')

    const peers = run.peers.length
    // One line per peer; the mean of the run and of its baseline, each with its min-max band.
    expect(await count(page, 'accuracy-peers', '[aria-label="line"] path')).toBe(peers)
    expect(await count(page, 'accuracy-mean', '[aria-label="line"] path')).toBe(2)
    expect(await count(page, 'accuracy-mean', '[aria-label="area"] path')).toBe(2)
    // Sent and received bytes per peer; models sent, received and merges per peer.
    expect(await count(page, 'bytes-per-peer', '[aria-label="bar"] rect')).toBe(2 * peers)
    expect(await count(page, 'models-per-peer', '[aria-label="bar"] rect')).toBe(3 * peers)
    const pairs = run.peers.reduce((n, p) => n + Object.keys(p.modelsReceivedFrom ?? {}).length, 0)
    expect(pairs).toBeGreaterThan(0)
    expect(await count(page, 'exchanges', '[aria-label="cell"] rect')).toBe(pairs)
    expect(await count(page, 'region-traffic', '[aria-label="cell"] rect')).toBeGreaterThan(0)
    expect(await count(page, 'coordinates', '[aria-label="dot"] circle')).toBe(peers)
    // Nothing was rejected in this run: the chart says so instead of drawing empty axes.
    expect(await page.locator('[data-chart="rejections"] .empty').count()).toBe(1)
    expect(await page.locator('#peers tr[data-peer]').count()).toBe(peers)
    expect(await page.locator('[data-tile="baseline-mean"] .v').textContent()).toBe(
      `${(run.baseline!.meanFinalAccuracy! * 100).toFixed(1)}%`,
    )

    await page.screenshot({ path: join(dir, 'report.png'), fullPage: true })
    expect(browser.errors).toEqual([])
    expect(browser.external).toEqual([])
  })

  it('shades when peers were down and sets late joiners apart (chart, mean, table)', async () => {
    // The recorded run, recast as churn: peer 1 killed at 8 s, peer 2 a late joiner up at 5 s.
    const { baseline: _b, ...gossip } = run
    const churned = {
      ...gossip,
      config: { ...gossip.config, peers: 2 },
      alivePeers: 2,
      peers: gossip.peers.map((p) => {
        if (p.index === 1) return { ...p, alive: false, downAt: 8, down: [{ from: 8, to: gossip.durationS }] }
        if (p.index === 2) {
          const series = p.series.filter((s) => s.t >= 5)
          return { ...p, lateJoiner: true, joinedAt: 5, down: [], series }
        }
        return { ...p, down: [] }
      }),
    } as TestbedResult
    const file = join(dir, 'churn.html')
    await writeFile(file, renderReport(churned))
    const browser = await launchBrowser({ offline: true })
    browsers.push(browser)
    const { page } = browser
    await page.goto(pathToFileURL(file).href)
    await page.waitForSelector('#peers')
    // One shaded interval (peer 1 down) and one joining rule, on both accuracy charts.
    for (const chart of ['accuracy-peers', 'accuracy-mean']) {
      expect(await count(page, chart, '[aria-label="rect"] rect')).toBe(1)
      expect(await count(page, chart, '[aria-label="rule"] line')).toBe(1)
    }
    // Gossip mean over the initial peers, and the late joiners' own mean.
    expect(await count(page, 'accuracy-mean', '[aria-label="line"] path')).toBe(2)
    expect(await page.locator('[data-tile="alive"] .v').textContent()).toBe('2 of 3')
    // The late joiner's row comes after a heading row; the dead peer's row says when it went down.
    expect(await page.locator('#peers tr[data-peer]').count()).toBe(3)
    expect(await page.locator('#peers tr.group').count()).toBe(1)
    expect(await page.locator('#peers tr.late').getAttribute('data-peer')).toBe('2')
    expect(await page.locator('#peers tr.late').textContent()).toContain('joined 5.0 s')
    expect(await page.locator('#peers tr.down').textContent()).toContain('down from 8.0 s')
    expect(browser.errors).toEqual([])
    expect(browser.external).toEqual([])
  })

  it('the live page draws the run so far and stops polling when the testbed is done', async () => {
    const server = await startRunServer({ port: 0 })
    try {
      const { baseline, ...gossip } = run
      server.update('gossip', gossip)
      const browser = await launchBrowser()
      browsers.push(browser)
      const { page } = browser
      await page.goto(server.url)
      await page.waitForSelector('[data-chart="accuracy-peers"] svg')
      expect(await count(page, 'accuracy-peers', '[aria-label="line"] path')).toBe(run.peers.length)
      expect(await count(page, 'accuracy-mean', '[aria-label="line"] path')).toBe(1)
      expect(await page.locator('h1').textContent()).toContain('live')

      // The baseline run's progress joins the page without a reload.
      server.update('baseline', baseline!)
      await page.waitForFunction(
        () =>
          document.querySelectorAll('[data-chart="accuracy-mean"] svg [aria-label="line"] path').length === 2,
      )
      server.finish(run)
      await page.waitForFunction(() => document.querySelector('.sub')?.textContent?.includes('finished'))
      expect(browser.errors).toEqual([])
      expect(browser.external).toEqual([])
    } finally {
      await server.close()
    }
  })
})
