/** Process signals for long-running commands (the only place besides commands that touches `process`). */

/** Run until SIGINT/SIGTERM; a second signal forces exit. */
export function shutdownSignal(): AbortSignal {
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
  return controller.signal
}
