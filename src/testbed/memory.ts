/** Resident memory of the testbed's peer processes, read from /proc at every poll. */
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { MemorySummary } from './result.ts'
import type { Peer } from './spawn.ts'

/** Resident set size of a process in MiB, from /proc (Linux); undefined elsewhere or once it is gone. */
function residentMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) / 1024
  } catch {
    return undefined
  }
}

/** Samples each live peer process's RSS at every poll; sums the last samples of those alive at the end. */
export function memoryTracker() {
  const seen = new Map<ChildProcess, { peers: Set<number>; rssMiB: number; maxRssMiB: number }>()
  return {
    sample(peers: readonly Peer[]): void {
      const live = (proc: ChildProcess) => proc.exitCode === null && proc.signalCode === null
      for (const p of peers) {
        if (p.proc === undefined || !live(p.proc)) continue
        let entry = seen.get(p.proc)
        if (entry === undefined) {
          entry = { peers: new Set(), rssMiB: 0, maxRssMiB: 0 }
          seen.set(p.proc, entry)
        }
        entry.peers.add(p.index)
      }
      // Once per process, however many peers it hosts.
      for (const [proc, entry] of seen) {
        const rss = live(proc) ? residentMiB(proc.pid) : undefined
        if (rss === undefined) continue
        entry.rssMiB = rss
        entry.maxRssMiB = Math.max(entry.maxRssMiB, rss)
      }
    },
    summary(): MemorySummary | undefined {
      const alive = [...seen].filter(
        ([proc, e]) => proc.exitCode === null && proc.signalCode === null && e.rssMiB > 0,
      )
      if (alive.length === 0) return undefined
      const processes = alive.map(([, e]) => ({
        peers: [...e.peers].sort((a, b) => a - b),
        rssMiB: Math.round(e.rssMiB * 10) / 10,
        maxRssMiB: Math.round(e.maxRssMiB * 10) / 10,
      }))
      const total = alive.reduce((t, [, e]) => t + e.rssMiB, 0)
      const hosted = processes.reduce((n, p) => n + p.peers.length, 0)
      return {
        processes,
        totalRssMiB: Math.round(total * 10) / 10,
        perPeerRssMiB: Math.round((total / hosted) * 10) / 10,
      }
    },
  }
}
