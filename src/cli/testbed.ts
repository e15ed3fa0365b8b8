/** `gossip-learn testbed`: N real peers on 127.0.0.1, with a summary and an optional JSON report. */
import { parseTestbedArgs, TESTBED_USAGE } from './args.ts'
import { shutdownSignal } from './signals.ts'

/** The command: parse flags, run the testbed, print its summary; returns the exit code. */
export async function testbed(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(TESTBED_USAGE)
    return 0
  }
  const config = parseTestbedArgs(argv)
  const signal = shutdownSignal()
  const { runTestbed, reportPath } = await import('../testbed/testbed.ts')
  const { formatSummary } = await import('../testbed/result.ts')
  const { createProgressView } = await import('../testbed/live-table.ts')
  const { startRunServer } = await import('../testbed/server.ts')
  // A redrawn table on a terminal, plain lines in CI and pipes.
  const view = createProgressView(process.stdout)
  const page = config.http !== undefined ? await startRunServer({ port: config.http }) : undefined
  try {
    if (page !== undefined) console.log(`testbed: live page ${page.url}`)
    const result = await runTestbed(config, {
      signal,
      print: (line) => view.log(line),
      progress: (phase, r) => {
        page?.update(phase, r)
        view.update(phase, r)
      },
    })
    view.done()
    page?.finish(result)
    console.log(formatSummary(result))
    if (result.baseline !== undefined) {
      console.log('baseline (the same peers alone, --no-gossip):')
      console.log(formatSummary(result.baseline))
    }
    if (config.json !== undefined) console.log(`wrote ${config.json}`)
    const report = reportPath(config)
    if (report !== undefined) console.log(`wrote ${report}`)
  } finally {
    await page?.close()
  }
  return 0
}
