/** Process signals for long-running commands (the only place besides commands that touches `process`). */
import type { Readable } from 'node:stream'
import { abortWhenClosed } from '../util/abort.ts'

export interface ShutdownOptions {
  /** Also stop when this stream ends (`--stop-on-stdin-close` passes process.stdin): see abortWhenClosed. */
  stdin?: Readable
}

/** Run until SIGINT/SIGTERM (or `stdin` closes); a second signal forces exit. */
export function shutdownSignal(options: ShutdownOptions = {}): AbortSignal {
  const controller = new AbortController()
  let count = 0
  const onSignal = (sig: NodeJS.Signals) => {
    count++
    if (count === 1) {
      console.error(`\n${sig}: shutting down (again to force)`)
      controller.abort()
    } else {
      console.error('forced exit')
      process.exit(130)
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  if (options.stdin !== undefined) {
    abortWhenClosed(options.stdin, controller, () => {
      // Whoever read our stdout and stderr is most likely gone: a write to the broken pipe must
      // not throw before the checkpoint is written.
      process.stdout.on('error', () => {})
      process.stderr.on('error', () => {})
      console.error('stdin closed: shutting down')
    })
  }
  return controller.signal
}
