/**
 * The body of an attacker process (main.ts): parse flags, run until a signal, report as JSON lines.
 * One process hosts every attacker of a testbed (`--attacker <flags> --attacker <flags> ...`),
 * each with its own libp2p node, identity and state: on a 2-core machine a Node process per
 * attacker cost the honest peers CPU that real attackers, on machines of their own, never take.
 */
import type { Readable } from 'node:stream'
import { UsageError } from '../../node/errors.ts'
import { abortWhenClosed } from '../../util/abort.ts'
import { type AttackerProcessConfig, parseAttackerArgs, splitAttackerArgv } from './args.ts'
import { type Attacker, startAttacker } from './attacker.ts'

/**
 * Runs the attackers of `argv` until SIGTERM/SIGINT, or until `stdin` closes (the testbed's pipe,
 * which closes when the testbed dies, even by SIGKILL); `emit` gets one JSON line per event, each
 * with the attacker's `slot` (its position on the command line). Returns the exit code.
 */
export async function runAttackerProcess(
  argv: string[],
  emit: (line: string) => void,
  stdin?: Readable,
): Promise<number> {
  let configs: AttackerProcessConfig[]
  try {
    configs = splitAttackerArgv(argv).map((group) => parseAttackerArgs(group))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    emit(JSON.stringify({ event: 'error', name: err.name, message: err.message }))
    return 2
  }
  const controller = new AbortController()
  const onSignal = (): void => controller.abort()
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  if (stdin !== undefined) abortWhenClosed(stdin, controller)
  const attackers: Attacker[] = []
  const status = (): void => {
    attackers.forEach((a, slot) => {
      emit(JSON.stringify({ event: 'status', slot, ...a.stats() }))
    })
  }
  let timer: NodeJS.Timeout | undefined
  try {
    for (const [slot, config] of configs.entries()) {
      const attacker = await startAttacker(config, { signal: controller.signal })
      attackers.push(attacker)
      emit(
        JSON.stringify({
          event: 'ready',
          slot,
          peerId: attacker.peerId,
          multiaddrs: attacker.multiaddrs,
          mode: config.mode,
        }),
      )
    }
    // One period for all: the testbed gives every attacker the same.
    timer = setInterval(status, Math.min(...configs.map((c) => c.statusIntervalMs)))
    if (!controller.signal.aborted) {
      await new Promise((resolve) => controller.signal.addEventListener('abort', resolve, { once: true }))
    }
  } finally {
    clearInterval(timer)
    status()
    await Promise.all(attackers.map((a) => a.stop()))
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
  }
  return 0
}
