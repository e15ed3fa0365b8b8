/**
 * Stable addresses: the TCP port a node first listened on is kept in its data dir (`listen.json`)
 * and reused on restart, so a restarted bootstrap node keeps the multiaddr others were given.
 * Only listen addresses with port 0 (the default: "any port") take the stored port; an explicit
 * `--listen` port always wins.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from './files.ts'

export const LISTEN_FILE = 'listen.json'

interface ListenState {
  tcpPort: number
}

const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536

/** The stored TCP port, or undefined when there is none (first start) or the file is unreadable. */
export async function loadListenPort(dataDir: string): Promise<number | undefined> {
  try {
    const state = JSON.parse(await readFile(join(dataDir, LISTEN_FILE), 'utf8')) as Partial<ListenState>
    return isPort(state.tcpPort) ? state.tcpPort : undefined
  } catch {
    // Missing or corrupt: pick a fresh port; the next save overwrites it.
    return undefined
  }
}

/** Keep `port` for the next start. */
export async function saveListenPort(dataDir: string, port: number): Promise<void> {
  const state: ListenState = { tcpPort: port }
  await writeFileAtomic(
    join(dataDir, LISTEN_FILE),
    new TextEncoder().encode(`${JSON.stringify(state)}\n`),
    0o600,
  )
}

/** `listen` with every `/tcp/0` replaced by `/tcp/<port>` (unchanged when `port` is undefined). */
export function withStoredPort(listen: string[], port: number | undefined): string[] {
  if (port === undefined) return listen
  return listen.map((a) => a.replace(/\/tcp\/0(?=\/|$)/, `/tcp/${port}`))
}

/** Whether any listen address asks for "any port" (and so may take the stored one). */
export function wantsAnyPort(listen: string[]): boolean {
  return listen.some((a) => /\/tcp\/0(?=\/|$)/.test(a))
}

/** The first TCP port among bound multiaddrs. */
export function firstTcpPort(addrs: string[]): number | undefined {
  for (const a of addrs) {
    const m = /\/tcp\/(\d+)/.exec(a)
    if (m !== null && isPort(Number(m[1]))) return Number(m[1])
  }
  return undefined
}

/** Whether `port` can be bound on `host` now (bounded by `timeoutMs`: a bind answers at once). */
export async function portFree(host: string, port: number, timeoutMs = 5000): Promise<boolean> {
  const { createServer } = await import('node:net')
  return new Promise((resolve) => {
    const srv = createServer()
    const timer = setTimeout(() => {
      srv.close()
      resolve(true)
    }, timeoutMs)
    srv.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(err.code !== 'EADDRINUSE')
    })
    srv.listen({ host, port, exclusive: true }, () => {
      clearTimeout(timer)
      srv.close(() => resolve(true))
    })
  })
}
