/**
 * The `gossip-learn` command. The only place (with the testbed) that prints for people.
 * `main` returns the exit code: 0 ok, 1 runtime failure, 2 bad usage.
 */
import { readFileSync } from 'node:fs'
import { parseStartArgs, parseTestbedArgs, START_USAGE, TESTBED_USAGE } from './args.ts'
import { UsageError } from './errors.ts'

const HELP = `gossip-learn: a fully decentralized gossip learning node (libp2p + TensorFlow.js)

commands:
  start     run a peer daemon (trains on its data share, gossips its model)
  testbed   run N real peers on 127.0.0.1 and report how they learn
  help      this text; 'gossip-learn <command> --help' for a command's flags

${START_USAGE}

${TESTBED_USAGE}
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

/** Run until SIGINT/SIGTERM; a second signal forces exit. */
function shutdownSignal(): AbortSignal {
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

async function start(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(START_USAGE)
    return 0
  }
  const config = parseStartArgs(argv)
  const signal = shutdownSignal()
  const { runDaemon } = await import('./daemon.ts')
  await runDaemon(config, { signal, print: (line) => console.log(line) })
  return 0
}

async function testbed(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(TESTBED_USAGE)
    return 0
  }
  const config = parseTestbedArgs(argv)
  const signal = shutdownSignal()
  const { runTestbed, formatSummary } = await import('./testbed.ts')
  const result = await runTestbed(config, { signal, print: (line) => console.log(line) })
  console.log(formatSummary(result))
  if (config.json !== undefined) console.log(`wrote ${config.json}`)
  return 0
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'start':
        return await start(rest)
      case 'testbed':
        return await testbed(rest)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(HELP)
        return command === undefined ? 2 : 0
      case '--version':
      case 'version':
        console.log(version())
        return 0
      default:
        throw new UsageError(`unknown command '${command}'`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`gossip-learn: ${err.message}`)
      console.error(
        `try 'gossip-learn ${command === 'start' || command === 'testbed' ? `${command} ` : ''}--help'`,
      )
      return 2
    }
    console.error(
      `gossip-learn: ${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`,
    )
    return 1
  }
}
