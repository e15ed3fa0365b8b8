/** `gossip-learn start`: run one peer daemon until SIGINT/SIGTERM. */
import type { StartConfig } from '../node/config.ts'
import type { DaemonHooks } from '../node/daemon.ts'
import type { LinkEmulation } from '../node/emulation.ts'
import { announceMalloc, type Runtime } from './allocator.ts'
import { warnWhenAlone } from './alone.ts'
import { parseStartArgs, START_USAGE } from './args.ts'
import { tuneHeap } from './heap.ts'
import { shutdownSignal } from './signals.ts'

/** The command: parse flags, run until a signal, return the exit code. */
export async function start(argv: string[], runtime: Runtime = {}): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(START_USAGE)
    return 0
  }
  const config = parseStartArgs(argv)
  const heap = tuneHeap()
  const malloc = announceMalloc(runtime.allocator)
  // The links file first: a bad one is a usage error, reported before anything slow starts.
  let emulation: LinkEmulation | undefined
  if (config.wanLinks !== undefined) {
    // Loaded lazily, like the daemon: `--help` and usage errors answer before tfjs and libp2p load.
    const { wanEmulation } = await import('../testbed/wan-emulation.ts')
    const { loadWanLinksFlag } = await import('../testbed/wan-links.ts')
    emulation = wanEmulation({ links: await loadWanLinksFlag('--wan-links', config.wanLinks) })
  }
  const signal = shutdownSignal({ stdin: config.stopOnStdinClose ? process.stdin : undefined })
  try {
    await runDaemon(config, {
      signal,
      emulation,
      print: (line) => console.log(line),
      beforeTraining: () => heap.running(),
      malloc,
    })
  } catch (err) {
    // A first Ctrl+C during startup stops it: what had started is undone, nothing to report.
    if ((err as Error).name === 'StartupAbortedError') return 130
    throw err
  }
  return 0
}

/** `gossip-learn start`: run until the signal, printing the addresses and periodic status. */
export async function runDaemon(
  config: StartConfig,
  hooks: DaemonHooks & { signal: AbortSignal },
): Promise<void> {
  const print = hooks.print ?? (() => {})
  const { startDaemon } = await import('../node/daemon.ts')
  const daemon = await startDaemon(config, {
    print: config.jsonStatus ? undefined : print,
    emulation: hooks.emulation,
    signal: hooks.signal,
    beforeTraining: hooks.beforeTraining,
    malloc: hooks.malloc,
  })
  try {
    if (config.jsonStatus) {
      print(
        JSON.stringify({
          event: 'ready',
          peerId: daemon.peerId,
          multiaddrs: daemon.multiaddrs,
          httpPort: daemon.httpPort,
        }),
      )
    } else {
      print('listening on (pass one of these to --bootstrap on another node):')
      for (const a of daemon.multiaddrs) print(`  ${a}`)
      if (daemon.httpPort !== undefined) print(`status: http://${config.httpHost}:${daemon.httpPort}/status`)
    }
    const timer =
      config.statusIntervalMs > 0
        ? setInterval(() => {
            const s = daemon.status()
            print(
              `age ${s.age}  steps ${s.steps}  acc ${s.lastAccuracy?.toFixed(3) ?? '-'}  peers ${s.connectedPeers.length} ` +
                `(view ${s.viewSize})  models sent ${s.modelsSent} recv ${s.modelsReceived}  merges ${s.merges}`,
            )
          }, config.statusIntervalMs)
        : undefined
    // --no-gossip trains alone on purpose: nothing to warn about.
    const alone = config.gossip ? warnWhenAlone(daemon.status, print, config.jsonStatus) : undefined
    if (!hooks.signal.aborted)
      await new Promise((r) => hooks.signal.addEventListener('abort', r, { once: true }))
    if (timer) clearInterval(timer)
    if (alone) clearInterval(alone)
  } finally {
    await daemon.stop()
  }
  if (!config.jsonStatus) print('stopped; checkpoint written')
}
