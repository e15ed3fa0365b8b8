import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryTracker } from '../../../src/testbed/memory.ts'
import type { Peer } from '../../../src/testbed/spawn.ts'

const linux = process.platform === 'linux'
const children: ChildProcess[] = []

/** A real process that holds about `mib` MiB of touched memory until killed. */
async function holder(mib: number): Promise<ChildProcess> {
  const code = `const b = Buffer.alloc(${mib} * 2 ** 20, 1); console.log('up'); setInterval(() => b[0]++, 1000)`
  const proc = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(proc)
  await once(proc.stdout!, 'data')
  return proc
}

const peer = (index: number, proc: ChildProcess) => ({ index, proc }) as unknown as Peer

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL')
      await once(c, 'exit')
    }
  }
})

describe.runIf(linux)('memoryTracker', () => {
  it('reads each process once, however many peers it hosts, and divides by the peers', async () => {
    const host = await holder(64)
    const single = await holder(8)
    const tracker = memoryTracker()
    tracker.sample([peer(0, host), peer(1, host), peer(2, host), peer(3, single)])
    const s = tracker.summary()!
    expect(s.processes.map((p) => p.peers)).toEqual([[0, 1, 2], [3]])
    const [big, small] = s.processes
    // The 64 MiB buffer is resident in the host, not in the other process.
    expect(big!.rssMiB).toBeGreaterThan(small!.rssMiB + 40)
    expect(s.totalRssMiB).toBeCloseTo(big!.rssMiB + small!.rssMiB, 0)
    expect(s.perPeerRssMiB).toBeCloseTo(s.totalRssMiB / 4, 0)
  })

  it('leaves out a process that exited', async () => {
    const a = await holder(32)
    const b = await holder(8)
    const tracker = memoryTracker()
    tracker.sample([peer(0, a), peer(1, b)])
    expect(tracker.summary()!.processes).toHaveLength(2)
    a.kill('SIGKILL')
    await once(a, 'exit')
    tracker.sample([peer(0, a), peer(1, b)])
    const s = tracker.summary()!
    expect(s.processes.map((p) => p.peers)).toEqual([[1]])
    expect(s.perPeerRssMiB).toBeCloseTo(s.processes[0]!.rssMiB, 0)
  })

  it('keeps the largest reading beside the last', async () => {
    // Drops its 64 MiB when told to: a large buffer is its own mapping, unmapped once collected.
    const code =
      "let b = Buffer.alloc(64 * 2 ** 20, 1); console.log('up'); process.stdin.once('data', () => " +
      "{ b = undefined; globalThis.gc(); setTimeout(() => console.log('freed'), 300) }); setInterval(() => {}, 1000)"
    const proc = spawn(process.execPath, ['--expose-gc', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] })
    children.push(proc)
    await once(proc.stdout!, 'data')
    const tracker = memoryTracker()
    tracker.sample([peer(0, proc)])
    proc.stdin!.write('x')
    await once(proc.stdout!, 'data')
    tracker.sample([peer(0, proc)])
    const [p] = tracker.summary()!.processes
    expect(p!.maxRssMiB).toBeGreaterThan(p!.rssMiB + 40)
  })

  it('has nothing to report when no process is alive', async () => {
    const a = await holder(1)
    a.kill('SIGKILL')
    await once(a, 'exit')
    const tracker = memoryTracker()
    tracker.sample([peer(0, a)])
    expect(tracker.summary()).toBeUndefined()
  })
})
