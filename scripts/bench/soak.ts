/**
 * Does a daemon's memory level off? Real `gossip-learn start` processes (the built CLI, as a
 * user runs it) learn together on 127.0.0.1 for a long time; every --every seconds each one's
 * /metrics is read: resident size, JS heap in use, external memory, the wasm backend's memory,
 * live tensors, steps. At the end (or on Ctrl-C) each peer's RSS at the end is printed against its
 * own RSS after the warm-up, with least-squares MiB an hour for RSS and each of its parts.
 * `--compare "K=V ..."` runs a second network of the same size beside the first, with those
 * environment variables added, so an allocator setting is judged on the same machine and hours.
 *
 *   npm run bench:soak -- [--peers 2] [--duration 3600] [--every 30] [--warm 600]
 *       [--train-rate 20] [--compare "MALLOC_ARENA_MAX=2"] [--start-flags "..."]
 *       [--dir D] [--json F]
 *
 * Each daemon is a default `start` (its data share from its peer id, as for any user) but for
 * --train-rate: 0 trains as fast as the CPU allows; capped, several peers fit on a small machine
 * and the machine stays free for the readings. Needs `npm run build`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { benchFlags, parseBenchArgs, testbedFlags } from './flags.ts'
import { growth, type MemorySample, parseSample } from './soak/series.ts'

const NAME = 'bench:soak'
const args = parseBenchArgs(NAME, import.meta.url, {
  peers: { type: 'string', default: '2' },
  duration: { type: 'string', default: '3600' },
  every: { type: 'string', default: '30' },
  warm: { type: 'string', default: '600' },
  'train-rate': { type: 'string', default: '20' },
  compare: { type: 'string' },
  'start-flags': { type: 'string' },
  dir: { type: 'string' },
  json: { type: 'string' },
})
const flags = benchFlags(NAME)
const PEERS = flags.int('peers', args.peers, 2)
const DURATION_S = flags.num('duration', args.duration, 1)
const EVERY_S = flags.num('every', args.every, 1)
const WARM_S = flags.num('warm', args.warm, 0)
const RATE = flags.num('train-rate', args['train-rate'], 0)
const EXTRA = testbedFlags(args['start-flags'])
const COMPARE = parseEnv(args.compare)
const BIN = new URL('../../bin/gossip-learn.js', import.meta.url).pathname
const READY_TIMEOUT_MS = 120_000
const PRINT_EVERY_S = Math.max(EVERY_S, 300)

function parseEnv(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined
  const env: Record<string, string> = {}
  for (const word of testbedFlags(text)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(word)
    if (m === null) flags.usage(`--compare takes KEY=VALUE words, got ${word}`)
    env[m![1]!] = m![2]!
  }
  return env
}

interface Daemon {
  group: string
  index: number
  proc: ChildProcess
  httpPort: number
  multiaddr: string
  samples: MemorySample[]
}

async function startDaemon(
  group: string,
  index: number,
  dir: string,
  env: NodeJS.ProcessEnv,
  bootstrap?: string,
): Promise<Daemon> {
  await mkdir(dir, { recursive: true })
  const argv = [
    BIN,
    'start',
    ...['--listen', '/ip4/127.0.0.1/tcp/0', '--http', '0', '--data-dir', dir],
    ...['--status-interval', '0', '--json-status', '--stop-on-stdin-close'],
    ...(RATE > 0 ? ['--train-rate', String(RATE)] : []),
    ...(bootstrap !== undefined ? ['--bootstrap', bootstrap] : []),
    ...EXTRA,
  ]
  const log = createWriteStream(join(dir, 'daemon.log'))
  const proc = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'], env })
  proc.stderr!.pipe(log)
  const lines = createInterface({ input: proc.stdout! })
  const timer = setTimeout(() => proc.kill('SIGKILL'), READY_TIMEOUT_MS)
  try {
    // Every line is read to the end of the run (a pipe left unread would stall the daemon).
    const ready = await new Promise<{ multiaddrs: string[]; httpPort: number }>((resolve, reject) => {
      lines.on('line', (line) => {
        log.write(`${line}\n`)
        try {
          const msg = JSON.parse(line) as { event?: string; multiaddrs: string[]; httpPort: number }
          if (msg.event === 'ready') resolve(msg)
        } catch {
          // not a JSON line
        }
      })
      proc.once('exit', (code) =>
        reject(new Error(`${group}${index} exited (${code}) before it was ready; see ${dir}/daemon.log`)),
      )
    })
    return { group, index, proc, httpPort: ready.httpPort, multiaddr: ready.multiaddrs[0]!, samples: [] }
  } finally {
    clearTimeout(timer)
  }
}

async function startGroup(group: string, base: string, env: NodeJS.ProcessEnv): Promise<Daemon[]> {
  const first = await startDaemon(group, 0, join(base, `${group}-0`), env)
  const rest = await Promise.all(
    Array.from({ length: PEERS - 1 }, (_, k) =>
      startDaemon(group, k + 1, join(base, `${group}-${k + 1}`), env, first.multiaddr),
    ),
  )
  return [first, ...rest]
}

const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
const fixed = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-')

async function read(d: Daemon, t: number): Promise<void> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return
  try {
    const res = await fetch(`http://127.0.0.1:${d.httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) })
    d.samples.push(parseSample(await res.text(), t))
  } catch {
    // A missed scrape (a busy daemon) is a gap, not a reading.
  }
}

function summary(daemons: Daemon[]): void {
  console.log(`\nafter ${WARM_S} s of warm-up, to the end (MiB; per hour by least squares):`)
  console.log(
    'peer  t_warm  t_end  rss_warm  rss_end  end/warm  rss/h  heap/h  external/h  wasm/h  tensors  steps/s',
  )
  for (const d of daemons) {
    const g = growth(d.samples, WARM_S)
    const last = d.samples.at(-1)
    if (g === undefined || last === undefined) {
      console.log(`${d.group}${d.index}    too few samples after the warm-up (${d.samples.length} in all)`)
      continue
    }
    const first = d.samples[0]!
    const rate = (last.steps - first.steps) / Math.max(1, last.t - first.t)
    console.log(
      [
        `${d.group}${d.index}`.padEnd(4),
        String(Math.round(g.warmS)).padStart(6),
        String(Math.round(g.endS)).padStart(6),
        fixed(g.rssWarm).padStart(9),
        fixed(g.rssEnd).padStart(8),
        fixed(g.ratio, 3).padStart(9),
        fixed(g.perHour.rss).padStart(6),
        fixed(g.perHour.heapUsed).padStart(7),
        fixed(g.perHour.external).padStart(11),
        fixed(g.perHour.wasm).padStart(7),
        `${g.tensorsWarm}->${g.tensorsEnd}`.padStart(8),
        fixed(rate).padStart(8),
      ].join(' '),
    )
  }
}

const base = args.dir ?? (await mkdtemp(join(tmpdir(), 'gl-soak-')))
const groups: Array<[string, NodeJS.ProcessEnv]> = [['A', { ...process.env, FORCE_COLOR: '0' }]]
if (COMPARE !== undefined) groups.push(['B', { ...process.env, ...COMPARE, FORCE_COLOR: '0' }])
console.log(
  `${NAME}: ${groups.length} network(s) of ${PEERS} daemons, ${DURATION_S} s, train-rate ${RATE || 'uncapped'}, ` +
    `scrape every ${EVERY_S} s${COMPARE !== undefined ? `; B adds ${args.compare}` : ''}; data in ${base}`,
)
const daemons: Daemon[] = []
const stop = new AbortController()
const stopped = new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }))
process.once('SIGINT', () => stop.abort())
process.once('SIGTERM', () => stop.abort())
const started = Date.now()
try {
  for (const [group, env] of groups) daemons.push(...(await startGroup(group, base, env)))
  let nextPrint = 0
  for (let t = 0; t <= DURATION_S && !stop.signal.aborted; t += EVERY_S) {
    const wait = started + t * 1000 - Date.now()
    if (wait > 0) await Promise.race([sleep(wait, undefined, { ref: false }), stopped])
    if (stop.signal.aborted) break
    const now = (Date.now() - started) / 1000
    await Promise.all(daemons.map((d) => read(d, now)))
    if (now >= nextPrint) {
      nextPrint += PRINT_EVERY_S
      const line = daemons.map((d) => {
        const s = d.samples.at(-1)
        return s === undefined
          ? `${d.group}${d.index} -`
          : `${d.group}${d.index} rss ${MiB(s.rss)} heap ${MiB(s.heapUsed)} wasm ${MiB(s.wasm)}`
      })
      console.log(`t=${Math.round(now)}s  ${line.join('  ')}`)
    }
  }
} finally {
  for (const d of daemons) d.proc.stdin?.end()
  await Promise.all(
    daemons.map((d) =>
      d.proc.exitCode === null && d.proc.signalCode === null ? once(d.proc, 'exit') : undefined,
    ),
  )
  summary(daemons)
  for (const d of daemons)
    if (d.proc.exitCode !== 0)
      console.log(`${d.group}${d.index} exited with ${d.proc.exitCode ?? d.proc.signalCode}`)
  if (args.json !== undefined)
    await writeFile(
      args.json,
      JSON.stringify({
        peers: PEERS,
        trainRate: RATE,
        warmS: WARM_S,
        compare: COMPARE ?? null,
        daemons: daemons.map(({ group, index, samples }) => ({ group, index, samples })),
      }),
    )
  if (args.dir === undefined) await rm(base, { recursive: true, force: true })
}
