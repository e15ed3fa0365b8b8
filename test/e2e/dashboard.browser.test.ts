/**
 * Two real daemons on loopback exchange models while a headless Chromium watches the first one's
 * dashboard: within a bounded wait it draws the accuracy curve, lists the other peer and shows
 * traffic, with no page error and no request leaving the machine. Meanwhile GET /metrics parses as
 * Prometheus text (reference parser) and its counters move as the node learns.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../../src/node/daemon.ts'
import { METRIC_PREFIX } from '../../src/node/metrics.ts'
import { parseByName, sampleValue } from '../unit/node/prometheus-text.ts'
import { launchBrowser, type TestBrowser } from './browser.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const config = (dir: string, index: number, extra: string[] = []) =>
  testDaemonConfig(dir, index, { peerCount: 2, extra: extra })

describe('daemon HTTP: dashboard and metrics', () => {
  let base: string
  const daemons: Daemon[] = []
  let browser: TestBrowser | undefined
  let url: string

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-dash-'))
    daemons.push(await startDaemon(config(join(base, 'a'), 0, ['--http', '0'])))
    const boot = daemons[0]!.multiaddrs.find((a) => a.includes('127.0.0.1'))!
    daemons.push(await startDaemon(config(join(base, 'b'), 1, ['--bootstrap', boot])))
    url = `http://127.0.0.1:${daemons[0]!.httpPort}`
  })

  afterAll(async () => {
    await browser?.close()
    await Promise.all(daemons.map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  it('GET /metrics parses as Prometheus text and its counters move while the node learns', async () => {
    const scrape = async () => parseByName(await (await fetch(`${url}/metrics`)).text())
    const first = await scrape()
    await until(
      'a model received and more training steps',
      () => daemons[0]!.status().modelsReceived > 0,
      60_000,
    )
    const second = await scrape()
    const steps = (f: typeof first) => sampleValue(f, `${METRIC_PREFIX}training_steps_total`)!
    expect(steps(second)).toBeGreaterThan(steps(first))
    expect(sampleValue(second, `${METRIC_PREFIX}models_received_total`)).toBeGreaterThan(0)
    expect(sampleValue(second, `${METRIC_PREFIX}model_received_bytes_total`)).toBeGreaterThan(0)
    const names = [...second.keys()]
    expect(names.some((n) => n.startsWith('libp2p_'))).toBe(true)
    expect(names.some((n) => n.startsWith('gossipsub_'))).toBe(true)
  })

  it('GET / draws the curve, lists the peer and shows traffic without reloading', async () => {
    browser = await launchBrowser()
    const { page } = browser
    await page.goto(`${url}/`)
    const other = daemons[1]!.peerId
    await page.waitForSelector('[data-chart="accuracy"] svg [aria-label="line"] path', { timeout: 45_000 })
    await page.waitForSelector(`#peers tr[data-peer="${other}"]`, { timeout: 45_000 })
    // Traffic shows once a model has come in; the page polls, so no reload is needed.
    await page.waitForFunction(
      () => {
        const v = document.querySelector('[data-tile="bytes"] .v')?.textContent ?? ''
        return v.split('/').every((x) => Number(x) > 0)
      },
      undefined,
      { timeout: 45_000 },
    )
    await page.waitForSelector('[data-chart="bytes-rate"] svg [aria-label="line"] path', { timeout: 10_000 })
    const points = await page.$$eval('[data-chart="accuracy"] svg [aria-label="line"] path', (paths) =>
      paths.map((p) => (p.getAttribute('d') ?? '').split(/[ML]/).filter((s) => s.trim() !== '').length),
    )
    expect(Math.max(...points)).toBeGreaterThanOrEqual(1)
    for (const id of ['accuracy', 'loss', 'models-rate', 'bytes-rate', 'merges', 'coordinates']) {
      expect(await page.locator(`[data-chart="${id}"] svg`).count(), id).toBeGreaterThan(0)
    }
    await page.screenshot({ path: join(base, 'dashboard.png'), fullPage: true })
    expect(browser.errors).toEqual([])
    expect(browser.external).toEqual([])
  })
})
