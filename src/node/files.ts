import { open, rename, rm } from 'node:fs/promises'

/**
 * Write `data` to `path` atomically: a temporary file in the same directory,
 * fsynced, then renamed over the target, so a crash never leaves half a file.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
