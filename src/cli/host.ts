/**
 * `gossip-learn host --config FILE`: internal (not in the help), the testbed's process of several
 * daemons (`testbed --peers-per-process N`). FILE lists each peer's index and its `start` flags;
 * every daemon prints the testbed's `ready` line with its index, and all stop on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util'
import type { LinkEmulation } from '../node/emulation.ts'
import { UsageError } from '../node/errors.ts'
import { announceMalloc, type Runtime } from './allocator.ts'
import { parseStartArgs } from './args.ts'
import { tuneHeap } from './heap.ts'
import { shutdownSignal } from './signals.ts'

export const HOST_USAGE = `gossip-learn host --config FILE

Internal: run several daemons in this process (the testbed's --peers-per-process). FILE is JSON,
{"peers": [{"index": N, "args": [start flags...]}, ...]}; each daemon prints one JSON ready line.`

/** The command: read the host file, start its daemons, run until a signal; returns the exit code. */
export async function host(argv: string[], runtime: Runtime = {}): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HOST_USAGE)
    return 0
  }
  let file: string | undefined
  try {
    file = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true }).values.config
  } catch (err) {
    throw new UsageError(String((err as Error).message).split('\n')[0])
  }
  if (file === undefined) throw new UsageError('host needs --config FILE')
  const { loadHostFile, startHost } = await import('../testbed/host.ts')
  const spec = await loadHostFile(file)
  const peers = spec.peers.map((p) => {
    try {
      return { index: p.index, config: parseStartArgs(p.args) }
    } catch (err) {
      throw new UsageError(`${file}: peer ${p.index}: ${(err as Error).message}`)
    }
  })
  const heap = tuneHeap()
  const malloc = announceMalloc(runtime.allocator)
  // One links file read per path; one emulation per daemon (each counts its own bytes).
  const { wanEmulation } = await import('../testbed/wan-emulation.ts')
  const { loadWanLinksFlag } = await import('../testbed/wan-links.ts')
  const links = new Map<string, Awaited<ReturnType<typeof loadWanLinksFlag>>>()
  const hosted = []
  for (const p of peers) {
    let emulation: LinkEmulation | undefined
    const path = p.config.wanLinks
    if (path !== undefined) {
      if (!links.has(path)) links.set(path, await loadWanLinksFlag('--wan-links', path))
      emulation = wanEmulation({ links: links.get(path)! })
    }
    hosted.push({ ...p, emulation })
  }
  // The testbed passes --stop-on-stdin-close to every peer; one host process reads stdin once.
  const stopOnStdinClose = peers.some((p) => p.config.stopOnStdinClose)
  const signal = shutdownSignal({ stdin: stopOnStdinClose ? process.stdin : undefined })
  let running: Awaited<ReturnType<typeof startHost>>
  try {
    running = await startHost(hosted, {
      signal,
      // The first daemon to train ends the start-up tuning: code optimised under it would keep it.
      beforeTraining: () => heap.running(),
      malloc,
      onReady: (index, d) =>
        console.log(
          JSON.stringify({
            event: 'ready',
            index,
            peerId: d.peerId,
            multiaddrs: d.multiaddrs,
            httpPort: d.httpPort,
          }),
        ),
    })
  } catch (err) {
    if ((err as Error).name === 'StartupAbortedError') return 130
    throw err
  }
  try {
    if (!signal.aborted) await new Promise((r) => signal.addEventListener('abort', r, { once: true }))
  } finally {
    await running.stop()
  }
  return 0
}
