import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { earliest, enteredViews, finalPoll, poll } from '../../../src/testbed/poll.ts'
import type { Peer } from '../../../src/testbed/spawn.ts'

/** The /status fields the poll reads, as a daemon answers them. */
const status = (steps: number) => ({
  lastAccuracy: 0.5,
  age: steps * 32,
  modelsReceived: 1,
  bytesSent: 10,
  steps,
  modelsSent: 1,
  bytesReceived: 10,
  merges: 1,
  viewSize: 2,
  connectedPeers: ['x', 'y'],
  announceMesh: 1,
  viewSince: { x: 1000 },
  wan: { bytesSentIntraRegion: 7, bytesSentInterRegion: 3, bytesSentUnknown: 0, bytesSentByRegion: {} },
})

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  server?.close()
  server = undefined
})

/** A /status server that holds each answer until `release` is called; counts the requests. */
async function slowStatus(): Promise<{ port: number; requests: () => number; release: () => void }> {
  let requests = 0
  const held: Array<() => void> = []
  server = createServer((_req, res) => {
    requests++
    held.push(() => res.end(JSON.stringify(status(requests * 10))))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => requests,
    release: () => {
      for (const answer of held.splice(0)) answer()
    },
  }
}

/** Resolves once `cond` holds (checked every 10 ms): the requests reach the server when they do. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10))
}

const polled = (httpPort: number) => ({ index: 0, httpPort, exited: false, series: [] }) as unknown as Peer

describe('poll', () => {
  it('keeps one request in flight: a round that times out does not send another', async () => {
    const s = await slowStatus()
    const peer = polled(s.port)
    await poll(peer, Date.now(), 50)
    await until(() => s.requests() === 1)
    await poll(peer, Date.now(), 50)
    // Time for a second request to arrive, were one sent (the first took well under this).
    await new Promise((r) => setTimeout(r, 500))
    expect(s.requests()).toBe(1)
    expect(peer.series).toHaveLength(0)
    s.release()
    await peer.polling
    // The late answer is still recorded, with what it says.
    expect(peer.series.map((p) => p.steps)).toEqual([10])
    expect(peer.series[0]).toMatchObject({
      accuracy: 0.5,
      connected: 2,
      view: 2,
      mesh: 1,
      bytesWithinRegion: 7,
      bytesAcrossRegions: 3,
    })
    expect(peer.viewSince?.get('x')).toBe(1000)
  })

  it('the final poll waits for the request in flight, then for a fresh answer', async () => {
    const s = await slowStatus()
    const peer = polled(s.port)
    await poll(peer, Date.now(), 20)
    const done = finalPoll(peer, Date.now())
    await until(() => s.requests() === 1)
    s.release() // the first answer
    await until(() => s.requests() === 2)
    s.release() // the fresh one
    await done
    expect(peer.series.map((p) => p.steps)).toEqual([10, 20])
  })

  it('skips a peer that is down or has no HTTP port', async () => {
    const s = await slowStatus()
    await poll({ ...polled(s.port), exited: true } as Peer, Date.now(), 20)
    await poll(polled(undefined as unknown as number), Date.now(), 20)
    expect(s.requests()).toBe(0)
  })
})

describe('earliest', () => {
  it('keeps the earliest time seen for each peer over successive answers', () => {
    let seen = earliest(undefined, { a: 500, b: 300 })
    // A later answer: b expired and came back (a later time), c is new.
    seen = earliest(seen, { b: 900, c: 700 })
    seen = earliest(seen, { a: 400 })
    expect(Object.fromEntries(seen)).toEqual({ a: 400, b: 300, c: 700 })
    expect(Object.fromEntries(earliest(seen, undefined))).toEqual({ a: 400, b: 300, c: 700 })
  })
})

describe('enteredViews', () => {
  it("takes for each peer the earliest time another peer's view held it, never its own entry", () => {
    const first = enteredViews([
      {
        peerId: 'a',
        viewSince: new Map([
          ['b', 300],
          ['c', 500],
          ['a', 1],
        ]),
      },
      {
        peerId: 'b',
        viewSince: new Map([
          ['a', 200],
          ['c', 400],
        ]),
      },
      // A peer never read has nothing to say; one read with an empty view neither.
      { peerId: 'c' },
      { peerId: 'd', viewSince: new Map() },
    ])
    expect(Object.fromEntries(first)).toEqual({ a: 200, b: 300, c: 400 })
    expect(first.has('d')).toBe(false)
  })
})
