import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  dialableAddr,
  loadPeerBook,
  MAX_PEER_BOOK_BYTES,
  PEER_BOOK_FILE,
  PeerBook,
  savePeerBook,
} from '../../../src/node/peer-book.ts'

const newId = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

let ids: string[]
beforeAll(async () => {
  ids = await Promise.all(Array.from({ length: 6 }, newId))
})

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gl-peers-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The name of what `p` rejects with, or 'no error'. */
async function rejectionName(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as Error).name
  }
  return 'no error'
}

describe('dialableAddr', () => {
  it('keeps dialable addresses and strips our /p2p suffix', () => {
    const [a, relay] = [ids[0]!, ids[1]!]
    expect(dialableAddr('/ip4/192.168.1.20/tcp/4001', a)).toBe('/ip4/192.168.1.20/tcp/4001')
    expect(dialableAddr(`/ip4/127.0.0.1/tcp/4001/p2p/${a}`, a)).toBe('/ip4/127.0.0.1/tcp/4001')
    expect(dialableAddr('/dns4/node.example.org/tcp/4001', a)).toBe('/dns4/node.example.org/tcp/4001')
    expect(dialableAddr('/ip6/2001:db8::1/tcp/4001', a)).toBe('/ip6/2001:db8::1/tcp/4001')
    const relayed = `/ip4/203.0.113.7/tcp/4001/p2p/${relay}/p2p-circuit`
    expect(dialableAddr(`${relayed}/p2p/${a}`, a)).toBe(relayed)
  })

  it('drops what cannot be dialled', () => {
    const [a, b] = [ids[0]!, ids[1]!]
    for (const bad of [
      'not a multiaddr',
      '/ip4/0.0.0.0/tcp/4001',
      '/ip6/::/tcp/4001',
      '/ip4/10.0.0.1/tcp/0',
      '/ip4/10.0.0.1/udp/4001',
      `/ip4/10.0.0.1/tcp/4001/p2p/${b}`, // another peer's address
      '/p2p-circuit',
      '/ip4/10.0.0.1/tcp/4001/p2p-circuit', // a circuit without a relay id
      `/ip4/10.0.0.1/tcp/4001/p2p/${a}/p2p-circuit`, // ourselves as our own relay
      `/p2p/${b}/p2p-circuit`,
    ]) {
      expect(dialableAddr(bad, a), bad).toBeUndefined()
    }
  })
})

describe('PeerBook', () => {
  it('remembers peers with their dialable addresses, newest address first, never itself', () => {
    const [self, a, b] = [ids[0]!, ids[1]!, ids[2]!]
    const book = new PeerBook({ self })
    expect(book.see(self, ['/ip4/10.0.0.1/tcp/1'])).toBe(false)
    expect(book.see(a, ['/ip4/0.0.0.0/tcp/4001'])).toBe(false) // nothing dialable: not remembered
    expect(book.has(a)).toBe(false)
    expect(book.see(a, ['/ip4/10.0.0.2/tcp/4001', '/ip4/0.0.0.0/tcp/4001'], 1000)).toBe(true)
    expect(book.see(a, ['/ip4/10.0.0.3/tcp/4001'], 2000)).toBe(false)
    expect(book.see(b, ['/ip4/10.0.0.4/tcp/4001'], 1500)).toBe(true)
    expect(book.size).toBe(2)
    expect(book.peers()).toEqual([
      { peerId: a, addrs: ['/ip4/10.0.0.3/tcp/4001', '/ip4/10.0.0.2/tcp/4001'], lastSeen: 2000 },
      { peerId: b, addrs: ['/ip4/10.0.0.4/tcp/4001'], lastSeen: 1500 },
    ])
    expect(book.multiaddrs()[0]).toBe(`/ip4/10.0.0.3/tcp/4001/p2p/${a}`)
    book.forget(a)
    expect(book.has(a)).toBe(false)
  })

  it('keeps only the most recently seen peers and addresses', () => {
    const book = new PeerBook({ maxPeers: 3, maxAddrsPerPeer: 2 })
    for (const [i, id] of ids.slice(0, 5).entries()) book.see(id, [`/ip4/10.0.0.${i + 1}/tcp/4001`], 1000 + i)
    expect(book.peers().map((p) => p.peerId)).toEqual([ids[4], ids[3], ids[2]])
    // Seeing an old peer again brings it back in and pushes out the least recent one.
    book.see(ids[0]!, ['/ip4/10.0.0.9/tcp/1', '/ip4/10.0.0.9/tcp/2', '/ip4/10.0.0.9/tcp/3'], 2000)
    expect(book.peers().map((p) => p.peerId)).toEqual([ids[0], ids[4], ids[3]])
    expect(book.peers()[0]!.addrs).toHaveLength(2)
  })
})

describe('peers.json', () => {
  it('round-trips through the data dir (mode 0600) and starts empty without a file', async () => {
    expect((await loadPeerBook(dir)).size).toBe(0)
    const book = new PeerBook()
    book.see(ids[1]!, ['/ip4/10.0.0.2/tcp/4001'], 1000)
    book.see(ids[2]!, ['/ip4/10.0.0.3/tcp/4001'], 2000)
    expect(book.dirty).toBe(true)
    await savePeerBook(dir, book)
    expect(book.dirty).toBe(false)
    expect((await stat(join(dir, PEER_BOOK_FILE))).mode & 0o777).toBe(0o600)
    const again = await loadPeerBook(dir)
    expect(again.peers()).toEqual(book.peers())
    expect(again.dirty).toBe(false)
  })

  it('skips malformed and undialable entries, and bounds what it loads', async () => {
    const good = (id: string, lastSeen: number) => ({
      peerId: id,
      addrs: ['/ip4/10.0.0.2/tcp/4001'],
      lastSeen,
    })
    await writeFile(
      join(dir, PEER_BOOK_FILE),
      JSON.stringify({
        version: 1,
        peers: [
          good(ids[1]!, 1),
          good(ids[2]!, 3),
          good(ids[3]!, 2),
          { peerId: 'not-a-peer-id', addrs: ['/ip4/10.0.0.2/tcp/4001'], lastSeen: 1 },
          { peerId: ids[4], addrs: ['/ip4/0.0.0.0/tcp/4001'], lastSeen: 1 },
          { peerId: ids[5], addrs: 'x', lastSeen: 1 },
          null,
        ],
      }),
    )
    const book = await loadPeerBook(dir, { self: ids[3], maxPeers: 1 })
    expect(book.peers().map((p) => p.peerId)).toEqual([ids[2]])
  })

  it('a corrupt, foreign, oversized or unreadable file is a PeerBookError', async () => {
    const path = join(dir, PEER_BOOK_FILE)
    for (const text of ['not json', '{"version":2,"peers":[]}', '[]', 'null', '{"version":1}']) {
      await writeFile(path, text)
      expect(await rejectionName(loadPeerBook(dir)), text).toBe('PeerBookError')
    }
    await writeFile(path, Buffer.alloc(MAX_PEER_BOOK_BYTES + 1, 0x20))
    expect(await rejectionName(loadPeerBook(dir))).toBe('PeerBookError')
    await rm(path)
    await mkdir(path)
    expect(await rejectionName(loadPeerBook(dir))).toBe('PeerBookError')
    await rm(path, { recursive: true })
    if (process.getuid?.() !== 0) {
      // root reads any file: the permission case only exists for other users.
      await writeFile(path, '{"version":1,"peers":[]}')
      await chmod(path, 0)
      expect(await rejectionName(loadPeerBook(dir))).toBe('PeerBookError')
    }
  })

  it('a failed save leaves the book dirty for the next try', async () => {
    const book = new PeerBook()
    book.see(ids[1]!, ['/ip4/10.0.0.2/tcp/4001'])
    expect(await rejectionName(savePeerBook(join(dir, 'missing', 'dir'), book))).not.toBe('no error')
    expect(book.dirty).toBe(true)
    await savePeerBook(dir, book)
    expect(JSON.parse(await readFile(join(dir, PEER_BOOK_FILE), 'utf8')).peers).toHaveLength(1)
  })
})
