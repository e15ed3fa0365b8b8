/**
 * Does watching a node slow it down? Two daemons learn together on 127.0.0.1; the first one's
 * training steps per second are measured in windows, alternately with its dashboard open in
 * headless Chromium (polling and redrawing every 2 s) and closed (about:blank), in one run.
 * Phases alternate A B B A ... so a drift of the machine's load falls on both sides; the noise is
 * the spread between windows of the same condition.
 *
 *   npm run bench:dashboard [-- --phase-seconds 15 --rounds 2 --window-seconds 5 --warmup-seconds 15]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { chromium } from 'playwright-core'
import { parseBenchArgs } from './flags.ts'

const args = parseBenchArgs('bench:dashboard', import.meta.url, {
  'phase-seconds': { type: 'string', default: '15' },
  rounds: { type: 'string', default: '2' },
  'window-seconds': { type: 'string', default: '5' },
  'warmup-seconds': { type: 'string', default: '15' },
})
const PHASE_S = Number(args['phase-seconds'])
const ROUNDS = Number(args.rounds)
const WINDOW_S = Number(args['window-seconds'])
const WARMUP_S = Number(args['warmup-seconds'])
const BIN = new URL('../../bin/gossip-learn.js', import.meta.url).pathname

interface Daemon {
  proc: ChildProcess
  multiaddrs: string[]
  httpPort: number
}

async function startDaemon(dir: string, index: number, bootstrap?: string): Promise<Daemon> {
  const argv = [
    BIN,
    'start',
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--http',
    '0',
    '--data-dir',
    dir,
    '--peer-index',
    String(index),
    '--peer-count',
    '2',
    '--status-interval',
    '0',
    '--json-status',
    ...(bootstrap !== undefined ? ['--bootstrap', bootstrap] : []),
  ]
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: proc.stdout! })
  for await (const line of lines) {
    try {
      const msg = JSON.parse(line) as { event?: string; multiaddrs: string[]; httpPort: number }
      if (msg.event === 'ready') return { proc, multiaddrs: msg.multiaddrs, httpPort: msg.httpPort }
    } catch {
      // not a JSON line
    }
  }
  throw new Error(`daemon ${index} exited before it was ready`)
}

async function steps(port: number): Promise<number> {
  const s = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { steps: number }
  return s.steps
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000))
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1))

const base = await mkdtemp(join(tmpdir(), 'gl-bench-dashboard-'))
const daemons: Daemon[] = []
const context = await chromium.launchPersistentContext(join(base, 'profile'), {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-sync',
  ],
})
try {
  daemons.push(await startDaemon(join(base, 'a'), 0))
  const boot = daemons[0]!.multiaddrs.find((a) => a.includes('127.0.0.1'))!
  daemons.push(await startDaemon(join(base, 'b'), 1, boot))
  const port = daemons[0]!.httpPort
  const page = context.pages()[0] ?? (await context.newPage())
  const pageErrors: string[] = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  console.log(`two daemons up; warming up ${WARMUP_S} s`)
  await sleep(WARMUP_S)

  const rates: Record<'closed' | 'open', number[]> = { closed: [], open: [] }
  for (let round = 0; round < ROUNDS; round++) {
    const order: Array<'closed' | 'open'> = round % 2 === 0 ? ['closed', 'open'] : ['open', 'closed']
    for (const condition of order) {
      await page.goto(condition === 'open' ? `http://127.0.0.1:${port}/` : 'about:blank')
      for (let w = 0; w < Math.floor(PHASE_S / WINDOW_S); w++) {
        const s0 = await steps(port)
        const t0 = performance.now()
        await sleep(WINDOW_S)
        const rate = ((await steps(port)) - s0) / ((performance.now() - t0) / 1000)
        rates[condition].push(rate)
      }
      console.log(
        `round ${round + 1} dashboard ${condition.padEnd(6)}: ${rates[condition]
          .slice(-Math.floor(PHASE_S / WINDOW_S))
          .map((r) => r.toFixed(0))
          .join(' ')} steps/s`,
      )
    }
  }
  const open = rates.open
  const closed = rates.closed
  const diff = mean(open) - mean(closed)
  // Standard error of the difference of two means (Welch); "noise" = 2 standard errors.
  const se = Math.sqrt(sd(open) ** 2 / open.length + sd(closed) ** 2 / closed.length)
  console.log(
    `\nsteps/s, dashboard closed: ${mean(closed).toFixed(1)} (sd ${sd(closed).toFixed(1)}, ${closed.length} windows of ${WINDOW_S} s)`,
  )
  console.log(
    `steps/s, dashboard open:   ${mean(open).toFixed(1)} (sd ${sd(open).toFixed(1)}, ${open.length} windows)`,
  )
  console.log(
    `open - closed: ${diff.toFixed(1)} steps/s (${((diff / mean(closed)) * 100).toFixed(1)}%); ` +
      `2 standard errors: ${(2 * se).toFixed(1)} steps/s -> ${Math.abs(diff) < 2 * se ? 'within noise' : 'beyond noise'}`,
  )
  if (pageErrors.length > 0) console.log(`page errors: ${pageErrors.join('; ')}`)
} finally {
  await context.close()
  for (const d of daemons) {
    const exited = once(d.proc, 'exit')
    d.proc.kill('SIGTERM')
    await exited
  }
  await rm(base, { recursive: true, force: true })
}
