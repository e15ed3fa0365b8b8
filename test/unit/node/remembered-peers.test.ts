import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { PEER_BOOK_FILE, PeerBook } from '../../../src/node/peer-book.ts'
import { RefreshTimes, redialTargets, rememberedPeers } from '../../../src/node/remembered-peers.ts'

const newId = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

let ids: string[]
beforeAll(async () => {
  ids = await Promise.all(Array.from({ length: 4 }, newId))
})

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gl-remembered-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('rememberedPeers', () => {
  it('a corrupt peers.json is a warning, an empty book, and is overwritten at the next save', async () => {
    await writeFile(join(dir, PEER_BOOK_FILE), '{"version": 1, "peers": [')
    const lines: string[] = []
    const r = await rememberedPeers(dir, ids[0]!, `--data-dir ${dir}`, (l) => lines.push(l))
    expect(r.book.size).toBe(0)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(PEER_BOOK_FILE)
    r.book.see(ids[1]!, ['/ip4/10.0.0.2/tcp/4001'])
    await r.save()
    expect(JSON.parse(await readFile(join(dir, PEER_BOOK_FILE), 'utf8')).peers[0].peerId).toBe(ids[1])
  })

  it('loads what an earlier run saved, without a warning', async () => {
    const first = await rememberedPeers(dir, ids[0]!, 'dir', () => {})
    first.book.see(ids[1]!, ['/ip4/10.0.0.2/tcp/4001'])
    await Promise.all([first.save(), first.save()]) // overlapping saves are serialised
    const lines: string[] = []
    const again = await rememberedPeers(dir, ids[0]!, 'dir', (l) => lines.push(l))
    expect(again.book.peers().map((p) => p.peerId)).toEqual([ids[1]])
    expect(lines).toEqual([])
  })
})

describe('redialTargets', () => {
  it('dials each bootstrap and remembered peer once, addresses merged, minus the skipped ones', () => {
    const [self, boot, both, refused] = ids as [string, string, string, string]
    const book = new PeerBook({ self })
    book.see(both, ['/ip4/10.0.0.3/tcp/4001'], 2)
    book.see(refused, ['/ip4/10.0.0.4/tcp/4001'], 1)
    const targets = redialTargets(
      [
        `/ip4/10.0.0.1/tcp/4001/p2p/${boot}`,
        `/ip4/10.0.0.9/tcp/4001/p2p/${both}`,
        '/ip4/10.0.0.1/tcp/4001', // no peer id: cannot be dialled by id
        `/ip4/10.0.0.5/tcp/4001/p2p/${self}`,
      ],
      book,
      (id) => id === self || id === refused,
    )
    expect(targets).toEqual([
      { peerId: boot, addrs: ['/ip4/10.0.0.1/tcp/4001'] },
      { peerId: both, addrs: ['/ip4/10.0.0.9/tcp/4001', '/ip4/10.0.0.3/tcp/4001'] },
    ])
  })
})

describe('RefreshTimes', () => {
  it('is due once a period has passed, and forgets peers not refreshed within it', () => {
    const times = new RefreshTimes(30_000)
    expect(times.due('a', 0)).toBe(true)
    times.mark('a', 0)
    expect(times.due('a', 29_999)).toBe(false)
    expect(times.due('a', 30_000)).toBe(true)
    // A new peer every second for an hour: only the last period's are kept.
    for (let s = 1; s <= 3600; s++) times.mark(`p${s}`, s * 1000)
    expect(times.size).toBe(30)
    expect(times.due('p3600', 3_600_000)).toBe(false)
    expect(times.due('p3500', 3_600_000)).toBe(true)
  })
})
