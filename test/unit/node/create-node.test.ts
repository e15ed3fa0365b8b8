/**
 * The connection bounds createNode passes to libp2p, seen from real sockets: a dial to a server
 * that accepts and never answers gives up after `dialMs`, and an inbound connection that never
 * starts its handshake is closed after `upgradeMs`. libp2p's own bounds are 10 s for both.
 */
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { createNode, type GossipLearnNode } from '../../../src/node/create-node.ts'

describe('createNode connection bounds', () => {
  const nodes: GossipLearnNode[] = []
  const servers: Server[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
  })

  it('gives up a dial to a silent peer after dialMs', async () => {
    // Accepts TCP and says nothing: the Noise handshake never gets an answer.
    const silent = createServer((s) => sockets.push(s))
    servers.push(silent)
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    const port = (silent.address() as { port: number }).port
    const node = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], timeouts: { dialMs: 500 } })
    nodes.push(node)
    const t0 = Date.now()
    await expect(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}`))).rejects.toThrow()
    // Well under what libp2p's own bounds take here (6 s for this dial): the bound we passed was used.
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  it('closes an inbound connection that never starts its handshake after upgradeMs', async () => {
    const node = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], timeouts: { upgradeMs: 500 } })
    nodes.push(node)
    const port = Number(node.getMultiaddrs()[0]!.toString().split('/tcp/')[1]!.split('/')[0])
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    // The node resets the socket: an 'error' (ECONNRESET) then 'close'.
    socket.on('error', () => {})
    const t0 = Date.now()
    await new Promise((r) => socket.once('close', r))
    expect(Date.now() - t0).toBeLessThan(3000)
  })
})
