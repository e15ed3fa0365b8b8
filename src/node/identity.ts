/** Persistent node identity: an Ed25519 key in the data dir, so a restarted node keeps its peer id. */
import { chmod, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { DataDirError } from './errors.ts'
import { writeFileAtomic } from './files.ts'

export const IDENTITY_FILE = 'identity.key'

/** Load the key from `<dataDir>/identity.key`, or create it (mode 0600) on first start. */
export async function loadOrCreateIdentity(
  dataDir: string,
): Promise<{ privateKey: PrivateKey; created: boolean }> {
  const path = join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes !== undefined) {
    // A key others can read is a key others can impersonate: tighten it rather than refuse.
    const st = await stat(path)
    if ((st.mode & 0o077) !== 0) await chmod(path, 0o600)
    try {
      return { privateKey: privateKeyFromProtobuf(bytes), created: false }
    } catch (err) {
      throw new DataDirError(`${path} is not a libp2p private key: ${(err as Error).message}`)
    }
  }
  const privateKey = await generateKeyPair('Ed25519')
  await writeFileAtomic(path, privateKeyToProtobuf(privateKey), 0o600)
  return { privateKey, created: true }
}
