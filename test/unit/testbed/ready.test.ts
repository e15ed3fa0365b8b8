import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { untilReady } from '../../../src/testbed/ready.ts'

const dir = await mkdtemp(join(tmpdir(), 'gl-ready-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

/** A real process that prints `count` ready lines `gapMs` apart, then stays up until killed. */
function host(count: number, gapMs: number) {
  const script = `let i = 0; const t = setInterval(() => {
    console.log(JSON.stringify({ event: 'ready', index: i }));
    if (++i === ${count}) clearInterval(t)
  }, ${gapMs}); setInterval(() => {}, 1000)`
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] })
}

describe('untilReady', () => {
  it('waits for a slow host as long as its daemons keep coming up', async () => {
    // 6 daemons 500 ms apart: 3 s in all, longer than the 2 s bound, but never 2 s without one.
    const proc = host(6, 500)
    const log = join(dir, 'slow.log')
    const seen: number[] = []
    try {
      await untilReady(proc, createWriteStream(log), {
        what: 'host 1',
        logPath: log,
        timeoutMs: 2000,
        ready: (msg) => {
          seen.push(msg.index!)
          return seen.length === 6
        },
      })
    } finally {
      proc.kill('SIGKILL')
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5])
    expect(await readFile(log, 'utf8')).toContain('"index":5')
  })

  it('gives up on a host that stops making progress, saying how many came up, and kills it', async () => {
    const proc = host(2, 50)
    const log = join(dir, 'stuck.log')
    await expect(
      untilReady(proc, createWriteStream(log), {
        what: 'host 2',
        logPath: log,
        timeoutMs: 1500,
        ready: () => false,
      }),
    ).rejects.toThrow(/host 2 not ready: no ready line for 1500 ms \(after 2 of its daemons came up\)/)
    if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit')
    expect(proc.signalCode).toBe('SIGKILL')
  })
})
