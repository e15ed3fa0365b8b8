/**
 * How we reach a peer: over a direct connection, only over a relay, or not at all.
 *
 * libp2p marks a relayed (circuit relay v2) connection as limited: the relay caps its bytes and
 * duration (128 KiB and 2 minutes by default) and only protocols that opt in may open streams on
 * it. Models (hundreds of KB) do not opt in: they wait for a direct connection, which DCUtR tries
 * to make by hole punching as soon as the relayed connection opens.
 */
import type { Connection } from '@libp2p/interface'

/** The best connection we hold to one peer. */
export type PeerLink = 'direct' | 'relayed' | 'none'

/** The parts of a connection this module reads. */
export type ConnectionView = Pick<Connection, 'remotePeer' | 'limits' | 'status'>

/** True for a connection libp2p limits (a relayed one): no model stream may open on it. */
export function isLimited(connection: Pick<Connection, 'limits'>): boolean {
  return connection.limits != null
}

/** The best link among `connections` (all to one peer): a closing or closed one does not count. */
export function linkOf(connections: readonly Pick<Connection, 'limits' | 'status'>[]): PeerLink {
  const open = connections.filter((c) => c.status === 'open')
  if (open.some((c) => !isLimited(c))) return 'direct'
  return open.length > 0 ? 'relayed' : 'none'
}

/** Peers (ids) that `connections` reach only through a relay: every open connection to them is limited. */
export function relayedOnlyPeers(connections: readonly ConnectionView[]): Set<string> {
  const byPeer = new Map<string, ConnectionView[]>()
  for (const c of connections) {
    const id = c.remotePeer.toString()
    const list = byPeer.get(id)
    if (list === undefined) byPeer.set(id, [c])
    else list.push(c)
  }
  const out = new Set<string>()
  for (const [id, list] of byPeer) if (linkOf(list) === 'relayed') out.add(id)
  return out
}
