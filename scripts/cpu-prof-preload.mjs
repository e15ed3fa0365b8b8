/**
 * `node --cpu-prof` for processes started through NODE_OPTIONS (which refuses --cpu-prof):
 * `NODE_OPTIONS="--import /abs/scripts/cpu-prof-preload.mjs" GOSSIP_LEARN_CPU_PROF_DIR=DIR`
 * profiles the whole process with the inspector and writes DIR/<pid>.cpuprofile when it exits
 * normally (a SIGKILLed process writes nothing). Used by `npm run bench:overhead -- --cpu-prof DIR`.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join } from 'node:path'

const dir = process.env.GOSSIP_LEARN_CPU_PROF_DIR
if (dir !== undefined && dir !== '') {
  const session = new Session()
  session.connect()
  // The same sampling interval as --cpu-prof (1 ms).
  session.post('Profiler.enable')
  session.post('Profiler.setSamplingInterval', { interval: 1000 })
  session.post('Profiler.start')
  process.once('exit', () => {
    // A session in the same thread answers synchronously, so this runs before the process ends.
    session.post('Profiler.stop', (err, res) => {
      if (err === null) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile))
    })
  })
}
