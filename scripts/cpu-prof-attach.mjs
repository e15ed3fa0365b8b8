/**
 * Profiles a node process that is already running (a testbed peer, a host, a `start` daemon) for
 * a few seconds, without restarting it: SIGUSR1 opens its inspector, the V8 sampling profiler runs
 * through the inspector protocol, and the profile is written as a .cpuprofile for
 * scripts/cpuprofile-summary.ts. For steady-state questions ("where does a peer's CPU go 60 s into
 * a run?") that `--cpu-prof` from start-up answers badly.
 *
 *   node --experimental-websocket scripts/cpu-prof-attach.mjs PID SECONDS OUT.cpuprofile [PORT]
 *
 * Node 20 needs --experimental-websocket (22 has WebSocket). SIGUSR1 opens the inspector on the
 * process's inspect port, 9229 unless it was started with --inspect-port=PORT, and it stays open
 * until the process ends: profile one process at a time. Under CPU contention the profile's busy
 * time includes time spent waiting to be scheduled: compare shares within one profile, and read a
 * process's CPU from /proc.
 */
import { writeFileSync } from 'node:fs'

const [pidArg, secondsArg, out, portArg] = process.argv.slice(2)
const pid = Number(pidArg)
const seconds = Number(secondsArg)
const port = Number(portArg ?? 9229)
if (!(Number.isInteger(pid) && pid > 0) || !(seconds > 0) || out === undefined || !(port > 0)) {
  process.stderr.write('usage: node --experimental-websocket cpu-prof-attach.mjs PID SECONDS OUT [PORT]\n')
  process.exit(2)
}
if (typeof WebSocket !== 'function') {
  process.stderr.write('no WebSocket: run node with --experimental-websocket (Node 20)\n')
  process.exit(2)
}

process.kill(pid, 'SIGUSR1')
/** The inspector's target list, once it answers (it opens a moment after the signal). */
async function targets() {
  for (let i = 0; i < 50; i++) {
    try {
      return await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  throw new Error(`no inspector on 127.0.0.1:${port} after SIGUSR1 to ${pid}`)
}
const [target] = await targets()
const ws = new WebSocket(target.webSocketDebuggerUrl)
const pending = new Map()
let nextId = 0
ws.onmessage = (e) => {
  const m = JSON.parse(String(e.data))
  const p = pending.get(m.id)
  if (p === undefined) return
  pending.delete(m.id)
  if (m.error !== undefined) p.reject(new Error(JSON.stringify(m.error)))
  else p.resolve(m.result)
}
const send = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = ++nextId
    pending.set(id, { resolve, reject })
    ws.send(JSON.stringify({ id, method, params }))
  })
await new Promise((resolve, reject) => {
  ws.onopen = resolve
  ws.onerror = () => reject(new Error('inspector websocket failed'))
})
await send('Profiler.enable')
// The same sampling interval as --cpu-prof (1 ms).
await send('Profiler.setSamplingInterval', { interval: 1000 })
await send('Profiler.start')
await new Promise((r) => setTimeout(r, seconds * 1000))
const { profile } = await send('Profiler.stop')
writeFileSync(out, JSON.stringify(profile))
ws.close()
process.stdout.write(`wrote ${out}\n`)
process.exit(0)
