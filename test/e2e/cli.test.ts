/** The real `gossip-learn` command as a person runs it: a child process, signals, exit codes. */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, describe, expect, it } from 'vitest'
import { glibcRuntime, TUNING_VARIABLES } from '../../bin/allocator.js'
import { BIN, runCli } from './run-cli.ts'

const run = runCli

/** The glibc node runs on (undefined on musl, macOS, Windows): the launcher tunes malloc only there. */
const glibc = glibcRuntime()

/** This environment without the variables that tune malloc: the launcher then does it. */
function untunedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of TUNING_VARIABLES) delete env[name]
  return env
}

/** Waits for `start --json-status`'s ready line; rejects if the process exits first. */
function readyLine(
  p: ReturnType<typeof spawn>,
): Promise<{ peerId: string; multiaddrs: string[]; httpPort: number }> {
  return new Promise((res, rej) => {
    createInterface({ input: p.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line)
      if (msg.event === 'ready') res(msg)
    })
    p.on('exit', (code) => rej(new Error(`exited early with ${code}`)))
  })
}

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
      { stdio: ['ignore', 'pipe', 'pipe'], env: untunedEnv() },
    )
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)))
    let stderr = ''
    p.stderr.on('data', (d) => (stderr += d))
    const ready = await readyLine(p)
    expect(
      ready.multiaddrs.some((a) => a.startsWith('/ip4/127.0.0.1/tcp/') && a.endsWith(`/p2p/${ready.peerId}`)),
    ).toBe(true)
    const status = (await (await fetch(`http://127.0.0.1:${ready.httpPort}/status`)).json()) as {
      peerId: string
      malloc: string
    }
    expect(status.peerId).toBe(ready.peerId)
    // The launcher tuned glibc's malloc (koffi is installed with the package) and said nothing.
    expect(status.malloc).toBe(glibc === undefined ? 'not-glibc' : 'tuned')
    expect(stderr).not.toMatch(/malloc/)
    p.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(existsSync(join(dir, 'checkpoint.bin'))).toBe(true)
    expect(existsSync(join(dir, 'lock'))).toBe(false)
  })

  it.runIf(glibc !== undefined)(
    'start without koffi warns that malloc is not tuned, and /status says so',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'gl-cli-'))
      dirs.push(dir)
      // As if koffi (an optional dependency) had not been installed: its require fails.
      const noKoffi = join(dir, 'no-koffi.cjs')
      await writeFile(
        noKoffi,
        `const Module = require('node:module')
      const load = Module._load
      Module._load = function (request, ...rest) {
        if (request === 'koffi') throw Object.assign(new Error("Cannot find module 'koffi'"), { code: 'MODULE_NOT_FOUND' })
        return load.call(this, request, ...rest)
      }`,
      )
      const args = ['start', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(dir, 'd'), '--http', '0']
      const p = spawn(
        process.execPath,
        ['--require', noKoffi, BIN, ...args, '--json-status', '--eval-size', '100'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: untunedEnv(),
        },
      )
      const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)))
      let stderr = ''
      p.stderr.on('data', (d) => (stderr += d))
      const ready = await readyLine(p)
      const status = (await (await fetch(`http://127.0.0.1:${ready.httpPort}/status`)).json()) as {
        malloc: string
      }
      expect(status.malloc).toBe('untuned')
      const metrics = await (await fetch(`http://127.0.0.1:${ready.httpPort}/metrics`)).text()
      expect(metrics).toMatch(/^gossip_learn_info\{[^}]*malloc="untuned"/m)
      expect(stderr).toMatch(
        /^gossip-learn: warning: glibc's malloc is not tuned: the optional dependency koffi did not load/m,
      )
      expect(stderr).toContain(
        'MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=4194304',
      )
      p.kill('SIGTERM')
      expect(await exited).toBe(0)
    },
  )

  describe('user mistakes: one line naming the flag, exit 1, no stack trace, no hang', () => {
    let busy: Server
    let busyPort = 0
    afterAll(() => busy?.close())
    const occupy = async () => {
      busy = createServer()
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
      busyPort = (busy.address() as { port: number }).port
    }
    const tmp = async () => {
      const dir = await mkdtemp(join(tmpdir(), 'gl-cli-'))
      dirs.push(dir)
      return dir
    }
    const expectOneLine = (r: { code: number | null; stderr: string }, flag: string) => {
      expect(r.code).toBe(1)
      const lines = r.stderr.trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain(flag)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }

    it('--listen on a port in use', async () => {
      await occupy()
      const dir = await tmp()
      const r = await run([
        'start',
        '--listen',
        `/ip4/127.0.0.1/tcp/${busyPort}`,
        '--data-dir',
        dir,
        '--eval-size',
        '100',
      ])
      expectOneLine(r, '--listen')
      expect(r.stderr).toContain('ListenAddressError')
      expect(r.stderr).not.toContain('faultTolerance')
    })

    it('--http on a port in use fails before the model loads', async () => {
      if (busyPort === 0) await occupy()
      const dir = await tmp()
      const t0 = Date.now()
      const r = await run([
        'start',
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--data-dir',
        dir,
        '--http',
        String(busyPort),
      ])
      expectOneLine(r, `--http ${busyPort}`)
      expect(r.stderr).toContain('HttpPortInUseError')
      // Nothing listened: the check runs before libp2p and the model.
      expect(existsSync(join(dir, 'listen.json'))).toBe(false)
      expect(Date.now() - t0).toBeLessThan(30_000)
    })

    it('--data-dir pointing at a file', async () => {
      const file = join(await tmp(), 'a-file')
      await writeFile(file, 'x')
      const r = await run(['start', '--data-dir', file])
      expectOneLine(r, `--data-dir ${file}`)
      expect(r.stderr).toContain('DataDirUnusableError')
    })

    it('--data-dir /proc/x fails at once instead of hanging', async () => {
      const t0 = Date.now()
      const r = await run(['start', '--data-dir', '/proc/x'])
      expectOneLine(r, '--data-dir /proc/x')
      expect(r.stderr).toContain('DataDirUnusableError')
      expect(Date.now() - t0).toBeLessThan(15_000)
    })

    it('the first SIGINT during startup stops it', async () => {
      const dir = await tmp()
      const p = spawn(
        process.execPath,
        [BIN, 'start', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', dir],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)))
      // The daemon module loads lazily: wait for the data dir lock, then interrupt during the model load.
      while (!existsSync(join(dir, 'lock'))) await new Promise((r) => setTimeout(r, 20))
      const t0 = Date.now()
      p.kill('SIGINT')
      const code = await exited
      expect(code === 130 || code === 0).toBe(true)
      expect(Date.now() - t0).toBeLessThan(15_000)
      expect(existsSync(join(dir, 'lock'))).toBe(false)
    })
  })
})
