/** The body of an attacker process (main.ts): parse flags, run until a signal, report as JSON lines. */
import { UsageError } from '../../node/errors.ts'
import { parseAttackerArgs } from './args.ts'
import { startAttacker } from './attacker.ts'

/** Runs one attacker until SIGTERM/SIGINT; `emit` gets one JSON line per event. Returns the exit code. */
export async function runAttackerProcess(argv: string[], emit: (line: string) => void): Promise<number> {
  let config: ReturnType<typeof parseAttackerArgs>
  try {
    config = parseAttackerArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    emit(JSON.stringify({ event: 'error', name: err.name, message: err.message }))
    return 2
  }
  const controller = new AbortController()
  const onSignal = (): void => controller.abort()
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  const attacker = await startAttacker(config, { signal: controller.signal })
  emit(
    JSON.stringify({
      event: 'ready',
      peerId: attacker.peerId,
      multiaddrs: attacker.multiaddrs,
      mode: config.mode,
    }),
  )
  const timer = setInterval(
    () => emit(JSON.stringify({ event: 'status', ...attacker.stats() })),
    config.statusIntervalMs,
  )
  try {
    if (!controller.signal.aborted) {
      await new Promise((resolve) => controller.signal.addEventListener('abort', resolve, { once: true }))
    }
  } finally {
    clearInterval(timer)
    emit(JSON.stringify({ event: 'status', ...attacker.stats() }))
    await attacker.stop()
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
  }
  return 0
}
