/**
 * Headless Chromium (Debian's /usr/bin/chromium, installed by .ci/run) driven by playwright-core,
 * for the page tests: a fresh profile, no background networking, every request that is not to
 * loopback or a file recorded and refused, and page errors collected so a broken page fails.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export interface TestBrowser {
  context: BrowserContext
  page: Page
  /** Uncaught exceptions and console errors of the page. */
  errors: string[]
  /** Requests that tried to leave the machine (refused). */
  external: string[]
  close(): Promise<void>
}

const LOCAL = /^(file:|data:|blob:|about:|https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/)/

/** Launch Chromium with a fresh profile; `offline` also cuts the page off from loopback. */
export async function launchBrowser(init: { offline?: boolean } = {}): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'gl-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  const errors: string[] = []
  const external: string[] = []
  await context.route('**/*', (route) => {
    const url = route.request().url()
    if (LOCAL.test(url)) return route.continue()
    external.push(url)
    return route.abort('blockedbyclient')
  })
  if (init.offline === true) await context.setOffline(true)
  const page = context.pages()[0] ?? (await context.newPage())
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`)
  })
  return {
    context,
    page,
    errors,
    external,
    close: async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}
