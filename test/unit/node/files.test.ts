import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ModelState } from '../../../src/model/types.ts'
import { checkpointPath, loadCheckpoint, saveCheckpoint } from '../../../src/node/checkpoint.ts'
import { acquireDataDir, bounded } from '../../../src/node/data-dir.ts'
import { IDENTITY_FILE, loadOrCreateIdentity } from '../../../src/node/identity.ts'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gl-files-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('identity', () => {
  it('creates a 0600 key once and loads the same peer id afterwards', async () => {
    const a = await loadOrCreateIdentity(dir)
    expect(a.created).toBe(true)
    expect((await stat(join(dir, IDENTITY_FILE))).mode & 0o777).toBe(0o600)
    const b = await loadOrCreateIdentity(dir)
    expect(b.created).toBe(false)
    expect(peerIdFromPrivateKey(b.privateKey).toString()).toBe(peerIdFromPrivateKey(a.privateKey).toString())
  })

  it('refuses a corrupt key file with a DataDirError', async () => {
    await writeFile(join(dir, IDENTITY_FILE), 'not a key')
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ name: 'DataDirError' })
  })
})

describe('checkpoint', () => {
  const state: ModelState = {
    arch: 'test-arch',
    age: 1234,
    tensors: [
      { name: 'dense_0/kernel', shape: [2, 3], values: Float32Array.of(1, 2, 3, 4, 5, 6) },
      { name: 'dense_0/bias', shape: [3], values: Float32Array.of(-1, 0, 1) },
    ],
  }

  it('is absent at first, then round-trips', async () => {
    expect(await loadCheckpoint(dir)).toBeUndefined()
    await saveCheckpoint(dir, state)
    const back = await loadCheckpoint(dir)
    expect(back?.age).toBe(1234)
    expect(back?.arch).toBe('test-arch')
    expect(back?.tensors.map((t) => [t.name, t.shape, [...t.values]])).toEqual(
      state.tensors.map((t) => [t.name, t.shape, [...t.values]]),
    )
  })

  it('refuses a corrupt checkpoint instead of silently starting over', async () => {
    await saveCheckpoint(dir, state)
    const bytes = await readFile(checkpointPath(dir))
    await writeFile(checkpointPath(dir), bytes.subarray(0, bytes.length - 5))
    await expect(loadCheckpoint(dir)).rejects.toMatchObject({ name: 'DataDirError' })
  })
})

describe('data dir lock', () => {
  it('gives a dir to one holder at a time and frees it on release', async () => {
    const a = await acquireDataDir(join(dir, 'n'))
    await expect(acquireDataDir(join(dir, 'n'))).rejects.toMatchObject({ name: 'DataDirError' })
    await a.release()
    const b = await acquireDataDir(join(dir, 'n'))
    await b.release()
  })

  it('takes over a stale lock left by a dead process', async () => {
    const a = await acquireDataDir(join(dir, 'n'))
    await a.release()
    await writeFile(join(dir, 'n', 'lock'), '999999999')
    const b = await acquireDataDir(join(dir, 'n'))
    expect(b.dir).toBe(join(dir, 'n'))
    await b.release()
  })

  it('leaves no lock behind when startup is interrupted while the lock is being taken', async () => {
    const controller = new AbortController()
    const taking = acquireDataDir(join(dir, 'n'), controller.signal)
    controller.abort()
    await expect(taking).rejects.toMatchObject({ name: 'StartupAbortedError' })
    // The file-system steps that were under way have ended by now; a lock they created must be gone.
    await new Promise((r) => setTimeout(r, 200))
    await expect(stat(join(dir, 'n', 'lock'))).rejects.toMatchObject({ code: 'ENOENT' })
    const again = await acquireDataDir(join(dir, 'n'))
    await again.release()
  })
})

describe('bounded data-dir steps', () => {
  it('fail with DataDirTimeoutError after the bound given, naming it', async () => {
    const never = new Promise<never>(() => {})
    await expect(bounded('--data-dir D', never, undefined, 50)).rejects.toMatchObject({
      name: 'DataDirTimeoutError',
      message: expect.stringContaining('within 0.05 s'),
    })
  })

  it('return what the step returns within the bound', async () => {
    await expect(bounded('--data-dir D', Promise.resolve(7), undefined, 50)).resolves.toBe(7)
  })
})
