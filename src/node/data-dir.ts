/**
 * The data dir holds a node's identity, checkpoint and lock. Without --data-dir
 * a node takes `./.gossip-learn/node`, or the next free `node-2`, `node-3`...
 * when another live process holds it, so two nodes started by hand in one
 * directory never share an identity.
 */
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { DataDirError, DataDirTimeoutError, DataDirUnusableError, StartupAbortedError } from './errors.ts'

export const DEFAULT_DATA_ROOT = '.gossip-learn'
const LOCK_FILE = 'lock'
/**
 * A local disk answers a data-dir step in milliseconds; a hung network mount or a special file
 * system (`/proc`) may never answer. Startup fails after this long instead of hanging.
 */
export const FS_STEP_TIMEOUT_MS = 10_000
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

/**
 * `work` bounded by FS_STEP_TIMEOUT_MS and `signal`: rejects with a DataDirTimeoutError naming
 * `what`, or a StartupAbortedError, instead of waiting for a file system that does not answer.
 */
export async function bounded<T>(
  what: string,
  work: Promise<T>,
  signal?: AbortSignal,
  timeoutMs = FS_STEP_TIMEOUT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        // The rejection waits one turn of the event loop: when the loop itself was blocked (several
        // daemons starting in one process), the answer that came meanwhile is read first (timers run
        // before I/O callbacks) and wins the race, so only a file system that did not answer fails.
        timer = setTimeout(
          () =>
            setImmediate(() =>
              reject(
                new DataDirTimeoutError(
                  `${what} did not answer within ${timeoutMs / 1000} s: use a directory on a local disk`,
                ),
              ),
            ),
          timeoutMs,
        )
        onAbort = () => reject(new StartupAbortedError('startup interrupted'))
        if (signal?.aborted) onAbort()
        signal?.addEventListener('abort', onAbort, { once: true })
      }),
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir loops forever on some special file
 * systems (`/proc/x`), and its EEXIST for a file says nothing about which flag to fix.
 */
async function makeDir(dir: string, label: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 })
    return
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return
      throw new DataDirUnusableError(`${label} is a file, not a directory: pass a directory path`)
    }
    if (code === 'ENOTDIR') {
      throw new DataDirUnusableError(`${label} is inside a file, not a directory: pass a directory path`)
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) {
      throw new DataDirUnusableError(`${label} cannot be created (${code}): pass a writable directory`)
    }
  }
  await makeDir(dirname(dir), label)
  try {
    await mkdir(dir, { mode: 0o700 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' && (await stat(dir)).isDirectory()) return
    throw new DataDirUnusableError(`${label} cannot be created (${code}): pass a writable directory`)
  }
}

/** Take `dir` for this process, or return the pid that holds it. Stale locks (dead pid) are taken over. */
async function tryLock(dir: string, label: string): Promise<DataDirLock | { heldBy: number }> {
  if (heldHere.has(dir)) return { heldBy: process.pid }
  await makeDir(dir, label)
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
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
        throw new DataDirUnusableError(`${label} is not writable (${code}): pass a writable directory`)
      }
      if (code !== 'EEXIST') throw err
      const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) return { heldBy: pid }
      await rm(path, { force: true })
    }
  }
  throw new DataDirError(`could not lock ${dir}`)
}

/**
 * `tryLock`, bounded. An interrupt can come after the lock file was created and before the lock
 * is returned (a SIGINT during start-up): the steps under way then finish, within the same bound,
 * and a lock they took is released, so an interrupted start leaves no lock behind.
 */
async function lockBounded(
  dir: string,
  label: string,
  signal?: AbortSignal,
  timeoutMs?: number,
): Promise<DataDirLock | { heldBy: number }> {
  const work = tryLock(dir, label)
  try {
    return await bounded(label, work, signal, timeoutMs)
  } catch (err) {
    if (err instanceof StartupAbortedError) {
      const r = await bounded(label, work, undefined, timeoutMs).catch(() => undefined)
      if (r !== undefined && !('heldBy' in r)) await r.release().catch(() => {})
    }
    throw err
  }
}

/**
 * Lock the given data dir (error if in use) or pick the default one. Every file-system step is
 * bounded (FS_STEP_TIMEOUT_MS) and stops at once when `signal` aborts.
 */
export async function acquireDataDir(
  explicit?: string,
  signal?: AbortSignal,
  timeoutMs?: number,
): Promise<DataDirLock> {
  if (explicit !== undefined) {
    const dir = resolve(explicit)
    const label = `--data-dir ${explicit}`
    const r = await lockBounded(dir, label, signal, timeoutMs)
    if ('heldBy' in r) throw new DataDirError(`data dir ${dir} is in use by process ${r.heldBy}`)
    return r
  }
  for (let i = 1; i <= 64; i++) {
    const dir = resolve(DEFAULT_DATA_ROOT, i === 1 ? 'node' : `node-${i}`)
    const label = `the default data dir ${dir} (choose one with --data-dir)`
    const r = await lockBounded(dir, label, signal, timeoutMs)
    if (!('heldBy' in r)) return r
  }
  throw new DataDirError(
    `every default data dir under ${resolve(DEFAULT_DATA_ROOT)} is in use; pass --data-dir`,
  )
}
