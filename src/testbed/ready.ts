/**
 * Waiting for a spawned daemon (or host of daemons) to say it is up: one JSON object per line on
 * its stdout, `{"event": "ready", ...}` once a daemon listens.
 */
import type { ChildProcess } from 'node:child_process'
import type { WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'

/** A daemon's ready line on stdout (one JSON object per line; `index` names a host's daemon). */
export interface ReadyLine {
  event?: string
  index?: number
  peerId?: string
  multiaddrs?: string[]
  httpPort?: number
}

/**
 * Copies `proc`'s stdout to `log` and resolves once `ready` returns true for a ready line; rejects
 * (and SIGKILLs the process) when it exits first, or when `timeoutMs` passes without a ready line
 * (each one that does not finish restarts the wait).
 */
export async function untilReady(
  proc: ChildProcess,
  log: WriteStream,
  opts: { what: string; logPath: string; timeoutMs: number; ready: (msg: ReadyLine) => boolean },
): Promise<void> {
  const lines = createInterface({ input: proc.stdout! })
  const ready = new Promise<void>((resolveReady, reject) => {
    let seen = 0
    let settled = false
    const stuck = () =>
      reject(
        new Error(
          `${opts.what} not ready: no ready line for ${opts.timeoutMs} ms` +
            (seen > 0 ? ` (after ${seen} of its daemons came up)` : ''),
        ),
      )
    let timer = setTimeout(stuck, opts.timeoutMs)
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${opts.what} exited with code ${code} before it was ready; see ${opts.logPath}`))
    })
    lines.on('line', (line) => {
      log.write(`${line}\n`)
      let msg: ReadyLine
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      if (msg.event !== 'ready' || settled) return
      clearTimeout(timer)
      if (opts.ready(msg)) {
        settled = true
        resolveReady()
        return
      }
      seen++
      timer = setTimeout(stuck, opts.timeoutMs)
    })
  })
  try {
    await ready
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
}
