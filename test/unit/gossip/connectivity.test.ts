import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { type ConnectionView, linkOf, relayedOnlyPeers } from '../../../src/gossip/connectivity.ts'

const newPeerId = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

const conn = (remotePeer: PeerId, limited: boolean, status: Connection['status'] = 'open'): ConnectionView =>
  ({ remotePeer, status, limits: limited ? { bytes: 1000n } : undefined }) as ConnectionView

describe('linkOf', () => {
  it('is direct when any open connection is unlimited, relayed when all open ones are limited', async () => {
    const p = await newPeerId()
    expect(linkOf([])).toBe('none')
    expect(linkOf([conn(p, true)])).toBe('relayed')
    expect(linkOf([conn(p, true), conn(p, false)])).toBe('direct')
    expect(linkOf([conn(p, false)])).toBe('direct')
  })

  it('ignores connections that are closing or closed', async () => {
    const p = await newPeerId()
    expect(linkOf([conn(p, false, 'closing'), conn(p, true)])).toBe('relayed')
    expect(linkOf([conn(p, false, 'closed')])).toBe('none')
    expect(linkOf([conn(p, true, 'closed')])).toBe('none')
  })
})

describe('relayedOnlyPeers', () => {
  it('lists the peers whose every open connection is limited', async () => {
    const [a, b, c] = [await newPeerId(), await newPeerId(), await newPeerId()]
    const out = relayedOnlyPeers([conn(a, true), conn(b, true), conn(b, false), conn(c, false)])
    expect([...out]).toEqual([a.toString()])
  })
})
