/**
 * NAT traversal in network namespaces: a public host runs `gossip-learn start --relay`; two hosts,
 * each behind its own masquerading router (no port forward), run `gossip-learn start --bootstrap
 * <public>`. The NATed nodes reserve a slot on the relay, find each other through the public one,
 * and connect through the relay; DCUtR then tries to punch a direct connection. Models go only
 * over direct connections: the test asserts that both NATed nodes merged models, that no model
 * crossed the relay (it carried less than one model's bytes), and records whether the two ended
 * on a direct (hole-punched) connection or stayed relayed.
 *
 * Skipped (not passed) where network namespaces cannot be built: not root, no iproute2/iptables.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, describe, expect, it } from 'vitest'
import type { NodeStatus } from '../../src/node/daemon.ts'
import { loadOrCreateIdentity } from '../../src/node/identity.ts'
import { buildNatInternet, NAT_NET, type NatInternet, netnsUnavailable } from './netns.ts'
import { BIN } from './run-cli.ts'

const unavailable = await netnsUnavailable()

/** The relay's fixed port: its address is what the NATed nodes bootstrap from. */
const RELAY_PORT = 4001
/**
 * Small, quick daemons (3 shares of MNIST): a capped step rate and the plain average (no alignment)
 * leave CPU for the event loops of all three; what is merged does not matter here, only that it is.
 */
const DAEMON_FLAGS = [
  '--merge',
  'plain',
  '--peer-count',
  '3',
  '--partition',
  'iid',
  '--eval-size',
  '200',
  '--steps-per-round',
  '20',
  '--train-rate',
  '40',
  '--status-interval',
  '0',
  '--checkpoint-interval',
  '3600',
  '--json-status',
  '--http',
  '0',
]
/** How long DCUtR gets, after the two NATed nodes connect through the relay, to make it direct (3 tries x 5 s). */
const HOLE_PUNCH_WINDOW_MS = 15_000
/** DCUtR's log line for its last failed try: the window ends early once it has given up (a wait, not an assertion). */
const DCUTR_GAVE_UP = /attempt 3 of 3/

interface RunningDaemon {
  ns: string
  proc: ChildProcess
  peerId: string
  httpPort: number
  startedAt: number
  readyAt: number
  stderr: () => string
}

/** Starts `gossip-learn start ...` inside namespace `ns`; resolves on its JSON ready line. */
function startIn(ns: string, args: string[], env: Record<string, string> = {}): Promise<RunningDaemon> {
  const startedAt = Date.now()
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'start', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  let stdout = ''
  let stderr = ''
  proc.stderr!.on('data', (d) => (stderr += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line from ${ns} in 60 s: ${stderr}`)), 60_000)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`daemon in ${ns} exited (${code}) before it was ready: ${stderr}`))
    })
    proc.stdout!.on('data', (d) => {
      stdout += d
      const line = stdout.split('\n').find((l) => l.includes('"event":"ready"'))
      if (line === undefined) return
      clearTimeout(timer)
      const ready = JSON.parse(line) as { peerId: string; httpPort: number }
      resolve({ ns, proc, startedAt, readyAt: Date.now(), ...ready, stderr: () => stderr })
    })
  })
}

/**
 * A fetch client living inside a namespace (a daemon's HTTP server listens on 127.0.0.1 there):
 * one `node` process per namespace reads URLs on stdin and answers one JSON line each, in order.
 */
const FETCH_PROXY = `
const rl = require('node:readline').createInterface({ input: process.stdin })
let chain = Promise.resolve()
rl.on('line', (url) => {
  chain = chain.then(() => fetch(url, { signal: AbortSignal.timeout(10000) }).then((r) => r.text()))
    .then((body) => ({ body }), (err) => ({ error: String(err) }))
    .then((out) => process.stdout.write(JSON.stringify(out) + '\\n'))
})`

const proxies = new Map<string, { get(url: string): Promise<string>; proc: ChildProcess }>()

function proxyFor(ns: string): { get(url: string): Promise<string>; proc: ChildProcess } {
  const known = proxies.get(ns)
  if (known !== undefined) return known
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', FETCH_PROXY], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const waiting: Array<(line: string) => void> = []
  let buf = ''
  proc.stdout!.on('data', (d) => {
    buf += d
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      waiting.shift()?.(line)
    }
  })
  const proxy = {
    proc,
    get: (url: string) =>
      new Promise<string>((resolve, reject) => {
        waiting.push((line) => {
          const out = JSON.parse(line) as { body?: string; error?: string }
          if (out.body !== undefined) resolve(out.body)
          else reject(new Error(`GET ${url} in ${ns}: ${out.error}`))
        })
        proc.stdin!.write(`${url}\n`)
      }),
  }
  proxies.set(ns, proxy)
  return proxy
}

/** GET `path` from the daemon's HTTP server, inside its namespace. */
const httpGet = (d: RunningDaemon, path: string): Promise<string> =>
  proxyFor(d.ns).get(`http://127.0.0.1:${d.httpPort}${path}`)

const status = async (d: RunningDaemon): Promise<NodeStatus> => JSON.parse(await httpGet(d, '/status'))

/** Bytes on the relay protocol's streams (HOP: every relayed connection and reservation), from /metrics. */
async function hopBytes(d: RunningDaemon): Promise<number> {
  const text = await httpGet(d, '/metrics')
  let sum = 0
  for (const m of text.matchAll(
    /^libp2p_data_transfer_bytes_total\{protocol="\/libp2p\/circuit\/relay\/0\.2\.0\/hop (?:sent|received)"\} (\d+)/gm,
  )) {
    sum += Number(m[1])
  }
  return sum
}

/** Polls the async `cond` every `everyMs` until it holds; throws naming `what` after `ms`. */
async function pollUntil(
  what: string,
  cond: () => Promise<boolean>,
  ms: number,
  everyMs = 500,
): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

async function stopDaemon(d: RunningDaemon): Promise<void> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return
  const exited = new Promise((r) => d.proc.once('exit', r))
  d.proc.kill('SIGTERM')
  const timer = setTimeout(() => d.proc.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

describe.skipIf(unavailable !== undefined)(
  `NAT traversal in network namespaces${unavailable !== undefined ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    let net: NatInternet | undefined
    let base: string | undefined
    const daemons: RunningDaemon[] = []

    afterAll(async () => {
      for (const p of proxies.values()) p.proc.kill()
      proxies.clear()
      await Promise.all(daemons.map((d) => stopDaemon(d).catch(() => {})))
      await net?.destroy()
      if (base !== undefined) await rm(base, { recursive: true, force: true })
    })

    it('two nodes behind their own NATs merge models through a public relay node; no model crosses the relay', async ({
      annotate,
    }) => {
      net = await buildNatInternet()
      base = await mkdtemp(join(tmpdir(), 'gl-nat-'))
      const relayAddr = `/ip4/${NAT_NET.public.ip}/tcp/${RELAY_PORT}`
      // The relay's identity first, so all three start at once (the NATed ones re-dial until it listens).
      await mkdir(join(base, 'p'))
      const relayId = peerIdFromPrivateKey(
        (await loadOrCreateIdentity(join(base, 'p'))).privateKey,
      ).toString()
      const boot = `${relayAddr}/p2p/${relayId}`
      const relayStarting = startIn(net.ns(NAT_NET.public.ns), [
        '--relay',
        '--listen',
        `/ip4/0.0.0.0/tcp/${RELAY_PORT}`,
        // A public host announces its public address (AutoNAT needs 4 dial-backs to confirm it).
        '--announce',
        relayAddr,
        '--data-dir',
        join(base, 'p'),
        '--peer-index',
        '0',
        ...DAEMON_FLAGS,
      ])
      const nattedStarting = Promise.all(
        NAT_NET.natted.map((h, i) =>
          startIn(
            net!.ns(h.ns),
            [
              '--bootstrap',
              boot,
              '--data-dir',
              join(base!, h.ns),
              '--peer-index',
              String(i + 1),
              ...DAEMON_FLAGS,
            ],
            // DCUtR's own log says why a hole punch was not tried; counted below for the record.
            { DEBUG: 'libp2p:dcutr*' },
          ),
        ),
      )
      const [relay, natted] = await Promise.all([relayStarting, nattedStarting])
      daemons.push(relay, ...natted)
      expect(relay.peerId).toBe(relayId)
      const [a, b] = natted as [RunningDaemon, RunningDaemon]

      // Both NATed nodes: a reservation on the relay, models merged, models pushed.
      const firstMergeAt = new Map<RunningDaemon, number>()
      const latest = new Map<RunningDaemon, NodeStatus>()
      const poll = async () => {
        for (const d of natted) {
          const s = await status(d)
          latest.set(d, s)
          if (s.merges > 0 && !firstMergeAt.has(d)) firstMergeAt.set(d, Date.now())
        }
      }
      await pollUntil(
        'both NATed nodes to merge models and to connect to each other',
        async () => {
          await poll()
          const [sa, sb] = [latest.get(a)!, latest.get(b)!]
          return (
            sa.merges > 0 &&
            sb.merges > 0 &&
            sa.modelsSent > 0 &&
            sb.modelsSent > 0 &&
            sa.connectedPeers.includes(b.peerId) &&
            sb.connectedPeers.includes(a.peerId)
          )
        },
        60_000,
      )
      const connectedAt = Date.now()
      // Give DCUtR its window to turn the relayed connection into a direct one.
      const direct = () =>
        !latest.get(a)!.nat.relayedPeers.includes(b.peerId) &&
        latest.get(a)!.connectedPeers.includes(b.peerId)
      await pollUntil(
        'a direct connection or the end of the hole-punch window',
        async () => {
          await poll()
          const gaveUp = natted.some((d) => DCUTR_GAVE_UP.test(d.stderr()))
          return direct() || gaveUp || Date.now() - connectedAt > HOLE_PUNCH_WINDOW_MS
        },
        HOLE_PUNCH_WINDOW_MS + 10_000,
      )
      const sa = latest.get(a)!
      const sb = latest.get(b)!
      const sr = await status(relay)
      const relayBytes = await hopBytes(relay)

      for (const [d, s] of [
        [a, sa],
        [b, sb],
      ] as const) {
        expect(s.merges).toBeGreaterThan(0)
        expect(s.modelsReceivedFrom[relay.peerId] ?? 0).toBeGreaterThan(0)
        // The relay gave it a slot, and it announces the relayed address.
        expect(s.nat.relayAddrs.some((r) => r.startsWith(`${boot}/p2p-circuit/p2p/${d.peerId}`))).toBe(true)
      }
      expect(sr.nat.relay?.reservations).toBe(2)
      expect(sr.modelsReceivedFrom[a.peerId] ?? 0).toBeGreaterThan(0)
      expect(sr.modelsReceivedFrom[b.peerId] ?? 0).toBeGreaterThan(0)
      // They met through the relay (a relayed connection opened), and learned of each other from it.
      expect(sa.nat.relayedOpened + sb.nat.relayedOpened).toBeGreaterThan(0)
      const isDirect = direct()
      if (!isDirect) {
        // Still relayed: no model went either way between them, and the relay carried less than one model.
        expect(sa.modelsReceivedFrom[b.peerId] ?? 0).toBe(0)
        expect(sb.modelsReceivedFrom[a.peerId] ?? 0).toBe(0)
      }
      const modelBytes = sr.bytesReceived / sr.modelsReceived
      expect(relayBytes).toBeGreaterThan(0)
      expect(relayBytes).toBeLessThan(modelBytes)

      const noDialable = (d: RunningDaemon) => (d.stderr().match(/had no dialable multiaddrs/g) ?? []).length
      const figures = {
        link: isDirect ? 'direct (hole punched)' : 'relayed only',
        directUpgrades: sa.nat.directUpgrades + sb.nat.directUpgrades,
        relayedConnectionsOpened: sa.nat.relayedOpened + sb.nat.relayedOpened,
        dcutrNoPublicAddress: noDialable(a) + noDialable(b),
        pushesRelayedOnly: sa.nat.pushesRelayedOnly + sb.nat.pushesRelayedOnly,
        relayHopBytes: relayBytes,
        modelFrameBytes: Math.round(modelBytes),
        firstMergeAfterStartS: natted.map((d) => ((firstMergeAt.get(d)! - d.startedAt) / 1000).toFixed(1)),
        firstMergeAfterReadyS: natted.map((d) => ((firstMergeAt.get(d)! - d.readyAt) / 1000).toFixed(1)),
        modelsMerged: [sa.modelsMerged, sb.modelsMerged],
        readyAfterStartS: daemons.map((d) => ((d.readyAt - d.startedAt) / 1000).toFixed(1)),
        connectedToEachOtherAfterStartS: ((connectedAt - relay.startedAt) / 1000).toFixed(1),
      }
      await annotate(`NAT figures: ${JSON.stringify(figures)}`)
      // For the deployment docs: GL_NAT_FIGURES=FILE writes the same figures as JSON.
      if (process.env.GL_NAT_FIGURES)
        await writeFile(process.env.GL_NAT_FIGURES, JSON.stringify(figures, null, 2))
    }, 120_000)
  },
)
