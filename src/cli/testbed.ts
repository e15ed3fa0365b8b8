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
  const { runTestbed, formatSummary } = await import('../testbed/testbed.ts')
  const result = await runTestbed(config, { signal, print: (line) => console.log(line) })
  console.log(formatSummary(result))
  if (config.json !== undefined) console.log(`wrote ${config.json}`)
  return 0
}
