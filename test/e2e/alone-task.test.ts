/**
 * A node joined to a network of another task (here an MLP and a CNN on MNIST: two gossip topics)
 * is connected but has nobody to gossip with. `start` used to warn only without a connection, so
 * such a node trained alone in silence; both now print the warning, naming their task.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, describe, expect, it } from 'vitest'
import { ALONE_WARNING_MS } from '../../src/cli/alone.ts'
import { BIN } from './run-cli.ts'
import { until } from './until.ts'

interface Node {
  proc: ChildProcess
  lines: string[]
  multiaddr: Promise<string>
}

function startNode(dir: string, flags: string[]): Node {
  const proc = spawn(
    process.execPath,
    [BIN, 'start', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', dir, '--status-interval', '0', ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const lines: string[] = []
  const multiaddr = new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      lines.push(line)
      const addr = /^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/.exec(line)?.[1]
      if (addr !== undefined) resolve(addr)
    })
    proc.once('exit', (code) => reject(new Error(`exited early with ${code}`)))
  })
  return { proc, lines, multiaddr }
}

describe('a node whose connected peers train another task', () => {
  const dirs: string[] = []
  const nodes: Node[] = []
  afterAll(async () => {
    for (const n of nodes) n.proc.kill('SIGKILL')
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('warns that it trains alone, naming its task', { timeout: 120_000 }, async () => {
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(join(tmpdir(), 'gl-alone-task-')))
    const common = ['--eval-size', '100', '--train-rate', '5']
    const mlp = startNode(dirs[0]!, [...common, '--model', 'mlp', '--hidden', '16'])
    nodes.push(mlp)
    const cnn = startNode(dirs[1]!, [...common, '--model', 'cnn', '--bootstrap', await mlp.multiaddr])
    nodes.push(cnn)
    await cnn.multiaddr
    const warned = (n: Node) => n.lines.some((l) => l.startsWith('WARNING:'))
    await until('both warnings', () => warned(mlp) && warned(cnn), ALONE_WARNING_MS + 60_000, 500)
    // Connected (not the unreachable-bootstrap warning), and each names its own task.
    expect(mlp.lines.find((l) => l.startsWith('WARNING:'))).toMatch(
      /^WARNING: 1 connected peer\(s\), but none announced task mnist-mlp for \d+ s: training alone/,
    )
    expect(cnn.lines.find((l) => l.startsWith('WARNING:'))).toMatch(
      /^WARNING: 1 connected peer\(s\), but none announced task mnist-cnn for \d+ s/,
    )
  })
})
