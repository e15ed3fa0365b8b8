/**
 * A testbed killed by SIGKILL (an OOM killer, a CI timeout, `kill -9`) cannot stop its daemons,
 * and before --stop-on-stdin-close they trained on as orphans. Each daemon now stops once the
 * testbed's end of its stdin pipe closes: with a process per peer and with several per process.
 * The attackers' process of --byzantine is checked too, though it ended before as well: its status
 * line, written every second, failed on the dead pipe; it now stops on stdin's close, written or not.
 * From a built checkout (as after `npm ci`) this case also runs the compiled attackers' entry,
 * which the CLI could not find before (facility.ts `MAIN`).
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN } from './run-cli.ts'
import { until } from './until.ts'

/** Pids of live processes whose command line mentions `dir` (Linux /proc). */
function processesUsing(dir: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir)) pids.push(Number(name))
    } catch {
      // The process ended while we listed.
    }
  }
  return pids
}

describe('a SIGKILLed testbed leaves no daemon behind', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) {
      for (const pid of processesUsing(dir)) process.kill(pid, 'SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  })

  const cases = [
    { flags: ['--peers-per-process', '1'], processes: 2 },
    { flags: ['--peers-per-process', '2'], processes: 1 },
    { flags: ['--byzantine', '1:sign-flip'], processes: 3 },
  ]
  for (const { flags, processes } of cases) {
    it(`--peers 2 ${flags.join(' ')}`, { timeout: 120_000 }, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'gossip-learn-orphans-'))
      dirs.push(dir)
      const keep = join(dir, 'tb')
      const testbed = spawn(
        process.execPath,
        [
          BIN,
          'testbed',
          '--peers',
          '2',
          ...flags,
          '--duration',
          '300',
          '--hidden',
          '16',
          '--eval-size',
          '100',
          '--train-rate',
          '50',
          '--keep-dir',
          keep,
          '--no-http',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let out = ''
      testbed.stdout.on('data', (d) => (out += d))
      testbed.stderr.on('data', (d) => (out += d))
      await until('all peers ready', () => out.includes('peers ready') || testbed.exitCode !== null, 90_000)
      expect(out).toContain('all 2 peers ready')
      const daemons = processesUsing(keep).filter((pid) => pid !== testbed.pid)
      expect(daemons.length).toBe(processes)

      testbed.kill('SIGKILL')
      await until('the daemons to exit', () => processesUsing(keep).length === 0, 30_000)
      // They stopped as on a signal, not by a failed write to the dead pipe: each wrote its
      // checkpoint and released its data dir's lock (a crash leaves the lock file behind).
      for (const peer of ['peer-0', 'peer-1']) {
        const files = readdirSync(join(keep, peer))
        expect(files).toContain('checkpoint.bin')
        expect(files).not.toContain('lock')
      }
    })
  }
})
