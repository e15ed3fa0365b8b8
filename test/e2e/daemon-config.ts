/** The config of a small test daemon on loopback, as `start` would parse it (one helper for every e2e file). */
import { parseStartArgs, type StartArgs } from '../../src/cli/args.ts'

export interface TestDaemonOptions {
  /** Shares of the iid partition (the number of daemons in the test). */
  peerCount: number
  stepsPerRound?: number
  /** Flags appended last (they win). */
  extra?: string[]
}

/** `start` flags for daemon `index` in `dir`: 127.0.0.1, iid shares, a 200-sample evaluation, quiet. */
export function testDaemonConfig(dir: string, index: number, options: TestDaemonOptions): StartArgs {
  return parseStartArgs([
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--data-dir',
    dir,
    '--peer-index',
    String(index),
    '--peer-count',
    String(options.peerCount),
    '--partition',
    'iid',
    '--eval-size',
    '200',
    '--steps-per-round',
    String(options.stepsPerRound ?? 10),
    '--status-interval',
    '0',
    ...(options.extra ?? []),
  ])
}
