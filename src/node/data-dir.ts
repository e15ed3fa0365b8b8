/**
 * The data dir holds a node's identity, checkpoint and lock. Without --data-dir
 * a node takes `./.gossip-learn/node`, or the next free `node-2`, `node-3`...
 * when another live process holds it, so two nodes started by hand in one
 * directory never share an identity.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { DataDirError } from './errors.ts'

export const DEFAULT_DATA_ROOT = '.gossip-learn'
const LOCK_FILE = 'lock'
/** Dirs locked by this process (several daemons can share one process in tests). */
const heldHere = new Set<string>()

export interface DataDirLock {
  dir: string
  release(): Promise<void>
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Take `dir` for this process, or return the pid that holds it. Stale locks (dead pid) are taken over. */
async function tryLock(dir: string): Promise<DataDirLock | { heldBy: number }> {
  if (heldHere.has(dir)) return { heldBy: process.pid }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600)
      await fh.writeFile(String(process.pid))
      await fh.close()
      heldHere.add(dir)
      return {
        dir,
        release: async () => {
          heldHere.delete(dir)
          await rm(path, { force: true })
        },
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) return { heldBy: pid }
      await rm(path, { force: true })
    }
  }
  throw new DataDirError(`could not lock ${dir}`)
}

/** Lock the given data dir (error if in use) or pick the default one. */
export async function acquireDataDir(explicit?: string): Promise<DataDirLock> {
  if (explicit !== undefined) {
    const dir = resolve(explicit)
    const r = await tryLock(dir)
    if ('heldBy' in r) throw new DataDirError(`data dir ${dir} is in use by process ${r.heldBy}`)
    return r
  }
  for (let i = 1; i <= 64; i++) {
    const dir = resolve(DEFAULT_DATA_ROOT, i === 1 ? 'node' : `node-${i}`)
    const r = await tryLock(dir)
    if (!('heldBy' in r)) return r
  }
  throw new DataDirError(
    `every default data dir under ${resolve(DEFAULT_DATA_ROOT)} is in use; pass --data-dir`,
  )
}
