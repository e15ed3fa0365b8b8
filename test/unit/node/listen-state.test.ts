import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  firstTcpPort,
  LISTEN_FILE,
  loadListenPort,
  saveListenPort,
  wantsAnyPort,
  withStoredPort,
} from '../../../src/node/listen-state.ts'

describe('listen state', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it('replaces only port 0 with the stored port', () => {
    expect(
      withStoredPort(['/ip4/0.0.0.0/tcp/0', '/ip4/127.0.0.1/tcp/4001', '/ip6/::/tcp/0/ws'], 5000),
    ).toEqual(['/ip4/0.0.0.0/tcp/5000', '/ip4/127.0.0.1/tcp/4001', '/ip6/::/tcp/5000/ws'])
    expect(withStoredPort(['/ip4/0.0.0.0/tcp/0'], undefined)).toEqual(['/ip4/0.0.0.0/tcp/0'])
    expect(wantsAnyPort(['/ip4/0.0.0.0/tcp/4001'])).toBe(false)
    expect(wantsAnyPort(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/0'])).toBe(true)
    expect(firstTcpPort(['/ip4/1.2.3.4/tcp/4242/p2p/x'])).toBe(4242)
    expect(firstTcpPort([])).toBeUndefined()
  })

  it('round-trips the port and ignores a missing or corrupt file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gl-listen-'))
    dirs.push(dir)
    expect(await loadListenPort(dir)).toBeUndefined()
    await saveListenPort(dir, 40123)
    expect(await loadListenPort(dir)).toBe(40123)
    await writeFile(join(dir, LISTEN_FILE), '{"tcpPort": 70000}')
    expect(await loadListenPort(dir)).toBeUndefined()
    await writeFile(join(dir, LISTEN_FILE), 'not json')
    expect(await loadListenPort(dir)).toBeUndefined()
  })
})
