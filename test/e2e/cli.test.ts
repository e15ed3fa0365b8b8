/** The real `gossip-learn` command as a person runs it: a child process, signals, exit codes. */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN, runCli } from './run-cli.ts'

const run = runCli

describe('gossip-learn CLI', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it.each([
    [['start', '--partition', 'dirichlet:0'], '--partition'],
    [['start', '--bootstrap', '/ip4/1.2.3.4/tcp/1'], '--bootstrap'],
    [['testbed', '--peers', 'many'], '--peers'],
    [['start', '--bogus'], '--bogus'],
  ])('%j exits 2 with a one-line error naming %s', async (args, flag) => {
    const r = await run(args)
    expect(r.code).toBe(2)
    const [first, hint] = r.stderr.trim().split('\n')
    expect(first).toContain(flag)
    expect(hint).toMatch(/--help/)
  })

  it('start prints a joinable multiaddr, serves /status, and on SIGTERM checkpoints and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gl-cli-'))
    dirs.push(dir)
    const p = spawn(
      process.execPath,
      [
        BIN,
        'start',
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--data-dir',
        dir,
        '--http',
        '0',
        '--json-status',
        '--eval-size',
        '100',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)))
    const ready = await new Promise<{ peerId: string; multiaddrs: string[]; httpPort: number }>(
      (res, rej) => {
        createInterface({ input: p.stdout }).on('line', (line) => {
          const msg = JSON.parse(line)
          if (msg.event === 'ready') res(msg)
        })
        p.on('exit', (code) => rej(new Error(`exited early with ${code}`)))
      },
    )
    expect(
      ready.multiaddrs.some((a) => a.startsWith('/ip4/127.0.0.1/tcp/') && a.endsWith(`/p2p/${ready.peerId}`)),
    ).toBe(true)
    const status = (await (await fetch(`http://127.0.0.1:${ready.httpPort}/status`)).json()) as {
      peerId: string
    }
    expect(status.peerId).toBe(ready.peerId)
    p.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(existsSync(join(dir, 'checkpoint.bin'))).toBe(true)
    expect(existsSync(join(dir, 'lock'))).toBe(false)
  })
})
