/**
 * The `gossip-learn` command. The only place (with the testbed) that prints for people.
 * `main` returns the exit code: 0 ok, 1 runtime failure, 2 bad usage.
 */
import { readFileSync } from 'node:fs'
import { UsageError } from '../node/errors.ts'
import type { Runtime } from './allocator.ts'
import { host } from './host.ts'
import { start } from './start.ts'
import { testbed } from './testbed.ts'

const HELP = `gossip-learn: a fully decentralized gossip learning node (libp2p + TensorFlow.js)

commands:
  start     run a peer daemon (trains on its data share, gossips its model)
  testbed   run N real peers on 127.0.0.1 and report how they learn
  help      this text; 'gossip-learn <command> --help' lists a command's flags and defaults
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

/** `runtime`: what bin/gossip-learn.js did before loading us (glibc's malloc tuning). */
export async function main(argv: string[], runtime: Runtime = {}): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'start':
        return await start(rest, runtime)
      case 'testbed':
        return await testbed(rest)
      // Internal, not in HELP: the testbed's process of several daemons (--peers-per-process).
      case 'host':
        return await host(rest, runtime)
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
