/** The model checkpoint in the data dir: written periodically and on shutdown, loaded on start. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeState, encodeState, validateState } from '../model/state.ts'
import type { ModelState } from '../model/types.ts'
import { DataDirError } from './errors.ts'
import { writeFileAtomic } from './files.ts'

export const CHECKPOINT_FILE = 'checkpoint.bin'

export function checkpointPath(dataDir: string): string {
  return join(dataDir, CHECKPOINT_FILE)
}

/**
 * Atomic write, so a crash mid-write leaves the previous checkpoint intact. A state with a
 * non-finite value or age is refused with InvalidStateError before anything is written: it
 * must never replace a good checkpoint (issue 9: weights that overflowed stopped every save).
 */
export async function saveCheckpoint(dataDir: string, state: ModelState): Promise<void> {
  validateState(state)
  await writeFileAtomic(checkpointPath(dataDir), encodeState(state))
}

/** The saved state, or undefined when there is none yet. A corrupt file is a DataDirError, not a silent reset. */
export async function loadCheckpoint(dataDir: string): Promise<ModelState | undefined> {
  const path = checkpointPath(dataDir)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return decodeState(bytes)
  } catch (err) {
    throw new DataDirError(
      `${path} is not a valid checkpoint (${(err as Error).message}); move it away to start fresh`,
    )
  }
}
