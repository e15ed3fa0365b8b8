import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { ConnectionView } from '../../../src/gossip/connectivity.ts'
import { layoutBytes } from '../../../src/gossip/wire/codec.ts'
import { archTensors, datasetArch } from '../../../src/model/arch.ts'
import { LEARN_DEFAULTS } from '../../../src/node/config.ts'
import {
  CIRCUIT_LISTEN,
  type NatStatusNode,
  natListen,
  natServices,
  RELAY_DATA_LIMIT_BYTES,
  trackNat,
} from '../../../src/node/nat.ts'

const newPeerId = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
const conn = (remotePeer: PeerId, limited: boolean): ConnectionView =>
  ({ remotePeer, status: 'open', limits: limited ? { bytes: 1000n } : undefined }) as ConnectionView

/** A node whose connections and addresses the test sets, and whose connection:open events it fires. */
function fakeNode(relayReservations?: number) {
  const connections: ConnectionView[] = []
  let listener: ((evt: CustomEvent<ConnectionView>) => void) | undefined
  const node: NatStatusNode = {
    getConnections: () => connections,
    getMultiaddrs: () => [
      '/ip4/192.168.1.2/tcp/4001/p2p/Me',
      '/ip4/11.0.0.1/tcp/4001/p2p/Relay/p2p-circuit/p2p/Me',
    ],
    addEventListener: (_t, l) => {
      listener = l
    },
    removeEventListener: () => {
      listener = undefined
    },
    services:
      relayReservations === undefined
        ? {}
        : { circuitRelay: { reservations: { size: relayReservations } as never } },
  }
  const open = (c: ConnectionView) => {
    connections.push(c)
    listener?.(new CustomEvent('connection:open', { detail: c }))
  }
  return { node, open, listening: () => listener !== undefined }
}

describe('natListen', () => {
  it('adds the /p2p-circuit listener, except on a relay, and never twice', () => {
    expect(natListen(['/ip4/0.0.0.0/tcp/0'])).toEqual(['/ip4/0.0.0.0/tcp/0', CIRCUIT_LISTEN])
    expect(natListen(['/ip4/0.0.0.0/tcp/0'], { relay: true })).toEqual(['/ip4/0.0.0.0/tcp/0'])
    expect(natListen(['/ip4/0.0.0.0/tcp/0', CIRCUIT_LISTEN])).toEqual(['/ip4/0.0.0.0/tcp/0', CIRCUIT_LISTEN])
  })

  it('leaves a node that listens only on loopback without it (a testbed: no NAT, no relay search)', () => {
    expect(natListen(['/ip4/127.0.0.1/tcp/0'])).toEqual(['/ip4/127.0.0.1/tcp/0'])
    expect(natListen(['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0'])).toEqual([
      '/ip4/127.0.0.1/tcp/0',
      '/ip6/::1/tcp/0',
    ])
    expect(natListen(['/ip4/127.0.0.1/tcp/0', '/ip4/192.168.1.2/tcp/0'])).toContain(CIRCUIT_LISTEN)
  })
})

describe('natServices', () => {
  it('always AutoNAT and DCUtR; a relay server and UPnP only when asked', () => {
    expect(Object.keys(natServices()).sort()).toEqual(['autoNAT', 'dcutr'])
    expect(Object.keys(natServices({ relay: true, upnp: true })).sort()).toEqual([
      'autoNAT',
      'circuitRelay',
      'dcutr',
      'upnpNAT',
    ])
  })

  it('caps what one relayed connection carries below the size of one model', () => {
    // The smallest model a default node pushes: the default MLP on MNIST, in raw float32.
    const arch = datasetArch(LEARN_DEFAULTS.model, {
      name: 'mnist',
      featureShape: [28, 28, 1],
      numClasses: 10,
    })
    const modelBytes = layoutBytes(archTensors(arch))
    expect(RELAY_DATA_LIMIT_BYTES).toBeLessThan(modelBytes)
  })
})

describe('trackNat', () => {
  it('counts relayed connections and direct ones that replace them', async () => {
    const [a, b] = [await newPeerId(), await newPeerId()]
    const { node, open } = fakeNode()
    const nat = trackNat(node)
    open(conn(a, true))
    open(conn(b, false)) // direct from the start: not an upgrade
    expect(nat.status()).toMatchObject({ relayedOpened: 1, directUpgrades: 0, relayedPeers: [a.toString()] })
    open(conn(a, false)) // the hole punch (or a direct dial) worked
    expect(nat.status()).toMatchObject({ relayedOpened: 1, directUpgrades: 1, relayedPeers: [] })
  })

  it('reports our relayed addresses, the relay reservations we hold, and stops listening', () => {
    const relay = fakeNode(3)
    const nat = trackNat(relay.node, { relay: true, upnp: true })
    const s = nat.status()
    expect(s.relayAddrs).toEqual(['/ip4/11.0.0.1/tcp/4001/p2p/Relay/p2p-circuit/p2p/Me'])
    expect(s.relay).toEqual({ reservations: 3 })
    expect(s.upnp).toBe(true)
    expect(trackNat(fakeNode().node).status().relay).toBeUndefined()
    nat.stop()
    expect(relay.listening()).toBe(false)
  })
})
