/**
 * The library API: `createGossipLearnNode` from the sources (stable addresses across restarts,
 * `announce`), and the package as `npm pack` makes it, installed in a scratch directory and
 * imported by name with plain `node`.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { BUILD_STAMP, buildIsCurrent } from '../../bin/current-build.js'
import { createGossipLearnNode } from '../../src/index.ts'
import { LISTEN_FILE } from '../../src/node/listen-state.ts'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../..')
const tcpPort = (addrs: string[]) => Number(/\/tcp\/(\d+)/.exec(addrs[0] ?? '')?.[1])

describe('library API', () => {
  const dirs: string[] = []
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'gl-lib-'))
    dirs.push(d)
    return d
  }
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('a restarted node comes back on the port kept in its data dir, and announces --announce addresses', async () => {
    const dataDir = await tmp()
    const base = { listen: ['/ip4/127.0.0.1/tcp/0'], dataDir, evalSize: 100 }
    const first = await createGossipLearnNode(base)
    const port = tcpPort(first.multiaddrs)
    await first.stop()
    expect(port).toBeGreaterThan(0)
    expect(JSON.parse(await readFile(join(dataDir, LISTEN_FILE), 'utf8'))).toEqual({ tcpPort: port })

    const announced = '/ip4/203.0.113.7/tcp/4001'
    const second = await createGossipLearnNode({ ...base, announce: [announced] })
    try {
      expect(second.peerId).toBe(first.peerId)
      expect(second.multiaddrs).toEqual([`${announced}/p2p/${second.peerId}`])
      expect(second.status().multiaddrs[0]).toContain('203.0.113.7')
      // Bound where it was before, though it announces the public address: the kept port is unchanged.
      expect(JSON.parse(await readFile(join(dataDir, LISTEN_FILE), 'utf8'))).toEqual({ tcpPort: port })
    } finally {
      await second.stop()
    }
    const third = await createGossipLearnNode(base)
    try {
      expect(tcpPort(third.multiaddrs)).toBe(port)
    } finally {
      await third.stop()
    }
  })

  it('takes a new port (and keeps it) when the kept one is taken', async () => {
    const dataDir = await tmp()
    const busy = createServer()
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
    const taken = (busy.address() as { port: number }).port
    await writeFile(join(dataDir, LISTEN_FILE), JSON.stringify({ tcpPort: taken }))
    const lines: string[] = []
    try {
      const node = await createGossipLearnNode(
        { listen: ['/ip4/127.0.0.1/tcp/0'], dataDir, evalSize: 100 },
        { print: (l) => lines.push(l) },
      )
      const port = tcpPort(node.multiaddrs)
      await node.stop()
      expect(port).not.toBe(taken)
      expect(lines.some((l) => l.includes(`port ${taken}`))).toBe(true)
      expect(JSON.parse(await readFile(join(dataDir, LISTEN_FILE), 'utf8'))).toEqual({ tcpPort: port })
    } finally {
      busy.close()
    }
  })

  it('an aborted signal stops startup with a StartupAbortedError and releases the data dir', async () => {
    const dataDir = await tmp()
    const err = await createGossipLearnNode({ dataDir }, { signal: AbortSignal.abort() }).catch((e) => e)
    expect((err as Error).name).toBe('StartupAbortedError')
    // The lock is released: a second start on the same dir works.
    const node = await createGossipLearnNode({ listen: ['/ip4/127.0.0.1/tcp/0'], dataDir, evalSize: 100 })
    await node.stop()
  })

  it("the packed package: installed from `npm pack`, import('gossip-learn') in plain node starts a node, emits 'evaluated', stops, and its CLI runs from dist/", async () => {
    const scratch = await tmp()
    // `npm pack` runs `prepare`, so the tarball holds a fresh build.
    const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', scratch], {
      cwd: ROOT,
    })
    const [{ filename, files }] = JSON.parse(packed) as Array<{
      filename: string
      files: Array<{ path: string }>
    }>
    const paths = files.map((f) => f.path)
    expect(paths).toEqual(
      expect.arrayContaining(['bin/gossip-learn.js', 'dist/index.js', 'dist/cli/index.js', BUILD_STAMP]),
    )
    expect(paths.filter((p) => p.startsWith('test/') || p.startsWith('docs/'))).toEqual([])
    const installed = join(scratch, 'node_modules', 'gossip-learn')
    await mkdir(installed, { recursive: true })
    await run('tar', ['-xzf', join(scratch, filename), '-C', installed, '--strip-components=1'])
    // The dependencies come from this checkout: the test installs nothing from the registry.
    await symlink(join(ROOT, 'node_modules'), join(installed, 'node_modules'), 'dir')
    // The tarball's times are all npm's fixed date, so the build counts as current and the CLI skips tsx.
    expect(buildIsCurrent(installed, {})).toBe(true)
    const { stdout: version } = await run(
      process.execPath,
      [join(installed, 'bin', 'gossip-learn.js'), '--version'],
      {
        cwd: scratch,
        timeout: 60_000,
      },
    )
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    expect(version).toContain(pkg.version)
    const script = `
        import { createGossipLearnNode } from 'gossip-learn'
        const node = await createGossipLearnNode({
          listen: ['/ip4/127.0.0.1/tcp/0'], dataDir: ${JSON.stringify(join(scratch, 'data'))}, evalSize: 100,
        })
        const evaluated = await new Promise((r) => node.addEventListener('evaluated', (e) => r(e.detail), { once: true }))
        const s = node.status()
        const multiaddrs = node.multiaddrs
        await node.stop()
        console.log(JSON.stringify({ peerId: node.peerId, multiaddrs, statusPeerId: s.peerId, evaluated }))
      `
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: scratch,
      timeout: 60_000,
    })
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      peerId: string
      multiaddrs: string[]
      statusPeerId: string
      evaluated: { accuracy?: number; age: number }
    }
    expect(out.statusPeerId).toBe(out.peerId)
    expect(out.multiaddrs[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    expect(out.evaluated.accuracy).toBeGreaterThanOrEqual(0)
  }, 120_000)
})
