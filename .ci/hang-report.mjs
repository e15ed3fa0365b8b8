// Summarises Node diagnostic reports (node --report-on-signal) from a directory: per process, its
// command line, JS stack and the libuv handles keeping it alive. Used by .ci/deadline.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
if (files.length === 0) console.log('hang-report: no node process wrote a report')
for (const file of files) {
  let r
  try {
    r = JSON.parse(readFileSync(join(dir, file), 'utf8'))
  } catch (err) {
    console.log(`hang-report: ${file}: unreadable (${err.message})`)
    continue
  }
  const h = r.header ?? {}
  console.log(`\n== pid ${h.processId}: ${(h.commandLine ?? []).join(' ').slice(0, 300)}`)
  const stack = r.javascriptStack?.stack ?? []
  console.log(`JS stack: ${r.javascriptStack?.message ?? ''}`)
  for (const line of stack.slice(0, 12)) console.log(`  ${line.trim()}`)
  const handles = (r.libuv ?? []).filter((u) => u.is_active || u.is_referenced)
  console.log(`active libuv handles: ${handles.length}`)
  for (const u of handles.slice(0, 40)) {
    const where = u.localEndpoint || u.remoteEndpoint ? ` ${JSON.stringify(u.localEndpoint)} -> ${JSON.stringify(u.remoteEndpoint)}` : ''
    const timer = u.type === 'timer' ? ` due in ${u.firesInMsFromNow} ms` : ''
    console.log(`  ${u.type}${u.is_referenced ? '' : ' (unref)'}${timer}${where}${u.filename ? ` ${u.filename}` : ''}${u.signal ? ` ${u.signal}` : ''}`)
  }
  const workers = r.workers ?? []
  if (workers.length > 0) console.log(`worker threads: ${workers.length}`)
}
