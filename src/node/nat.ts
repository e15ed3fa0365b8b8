/**
 * NAT traversal with libp2p's own parts: AutoNAT (are our public addresses dialable?), circuit
 * relay v2 (a reachable node relays for unreachable ones with `--relay`; every other node reserves
 * a slot on a relay it meets and announces its /p2p-circuit address), DCUtR (upgrades a relayed
 * connection to a direct one by hole punching) and, with `--upnp`, a UPnP port mapping on the router.
 */
import { autoNAT } from '@libp2p/autonat'
import { type CircuitRelayService, circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { type UPnPNAT, uPnPNAT } from '@libp2p/upnp-nat'
import { type ConnectionView, isLimited, linkOf, relayedOnlyPeers } from '../gossip/connectivity.ts'

/** What a node does about NAT: serve as a relay, map a port by UPnP. */
export interface NatInit {
  /** Serve as a circuit relay v2 for unreachable peers (`--relay`; only on a reachable node). */
  relay?: boolean
  /** Ask the router for a port mapping by UPnP (`--upnp`). */
  upnp?: boolean
}

/**
 * The listen address that makes the relay transport reserve a slot on the first relay we connect
 * to and announce the /p2p-circuit address it gives us. Always on (except on a relay), because
 * libp2p's AutoNAT cannot say we are unreachable in time to matter: it needs 8 failed dial-backs
 * (4 successes to say reachable), ignores private addresses, and js-libp2p ignores observed TCP
 * addresses. A reservation costs the relay one kept-alive connection and costs us nothing more.
 */
export const CIRCUIT_LISTEN = '/p2p-circuit'

/** A relay's reservations: each keeps one connection open; half the default 128 connections stay for gossip. */
export const RELAY_MAX_RESERVATIONS = 64

/**
 * Bytes one relayed connection may carry (both directions): the circuit relay v2 default (128
 * KiB), enough for identify, DCUtR's hole punch, pings and a few announcements, and less than one
 * model (407 KB for the default MLP), so a relay never carries models whatever a peer does.
 */
export const RELAY_DATA_LIMIT_BYTES = 128 * 1024

/** How long one relayed connection may stay open: the v2 default, ample for DCUtR's three 5 s attempts. */
export const RELAY_DURATION_LIMIT_MS = 2 * 60_000

const LOOPBACK = /^\/(ip4\/127\.|ip6\/::1\/)/

/**
 * Listen addresses with the /p2p-circuit listener added. Not on a relay (it is reachable itself),
 * and not on a node that listens only on loopback (a testbed on 127.0.0.1: no NAT to get through,
 * and until it holds a reservation the relay transport dials every peer it learns of, looking for one).
 */
export function natListen(listen: readonly string[], init: NatInit = {}): string[] {
  if (init.relay === true || listen.includes(CIRCUIT_LISTEN)) return [...listen]
  if (listen.length > 0 && listen.every((a) => LOOPBACK.test(a))) return [...listen]
  return [...listen, CIRCUIT_LISTEN]
}

/** The circuit relay v2 transport every node carries (dial relayed addresses, hold reservations). */
export function relayTransport(): ReturnType<typeof circuitRelayTransport> {
  return circuitRelayTransport()
}

/** The NAT services of a node, by libp2p service name; `circuitRelay` and `upnpNAT` only when asked. */
export function natServices(init: NatInit = {}) {
  return {
    autoNAT: autoNAT(),
    dcutr: dcutr(),
    ...(init.relay === true
      ? {
          circuitRelay: circuitRelayServer({
            reservations: {
              maxReservations: RELAY_MAX_RESERVATIONS,
              applyDefaultLimit: true,
              defaultDataLimit: BigInt(RELAY_DATA_LIMIT_BYTES),
              defaultDurationLimit: RELAY_DURATION_LIMIT_MS,
            },
          }),
        }
      : {}),
    ...(init.upnp === true ? { upnpNAT: uPnPNAT() } : {}),
  }
}

/** The NAT services as they appear on a started node. */
export type NatServices = {
  autoNAT: unknown
  dcutr: unknown
  circuitRelay?: CircuitRelayService
  upnpNAT?: UPnPNAT
}

/** The parts of a libp2p node the NAT status reads. */
export interface NatStatusNode {
  getConnections(): ConnectionView[]
  getMultiaddrs(): Array<{ toString(): string }>
  addEventListener(type: 'connection:open', listener: (evt: CustomEvent<ConnectionView>) => void): void
  removeEventListener(type: 'connection:open', listener: (evt: CustomEvent<ConnectionView>) => void): void
  services: { circuitRelay?: Pick<CircuitRelayService, 'reservations'> }
}

/** Relayed connections seen, and how many of their peers then got a direct one (hole punched or dialled). */
export interface NatCounters {
  relayedOpened: number
  directUpgrades: number
}

/** What GET /status says about NAT (the `nat` field). */
export interface NatStatus extends NatCounters {
  /** Our /p2p-circuit addresses: a relay holds a reservation for us and forwards dials to us. */
  relayAddrs: string[]
  /** Connected peers we reach only through a relay: no model goes to or comes from them. */
  relayedPeers: string[]
  /** Serving as a relay (--relay): the reservations held for other peers now. */
  relay?: { reservations: number }
  upnp: boolean
}

/**
 * Counts relayed connections as they open, and direct ones that open to a peer we held only a
 * relayed connection to (DCUtR's hole punch, or a direct dial that worked). Call `stop()` when done.
 */
export function trackNat(node: NatStatusNode, init: NatInit = {}): { status(): NatStatus; stop(): void } {
  const counters: NatCounters = { relayedOpened: 0, directUpgrades: 0 }
  const onOpen = (evt: CustomEvent<ConnectionView>): void => {
    const conn = evt.detail
    if (isLimited(conn)) {
      counters.relayedOpened++
      return
    }
    const id = conn.remotePeer.toString()
    const others = node.getConnections().filter((c) => c !== conn && c.remotePeer.toString() === id)
    if (linkOf(others) === 'relayed') counters.directUpgrades++
  }
  node.addEventListener('connection:open', onOpen)
  return {
    status: () => {
      const relayServer = node.services.circuitRelay
      return {
        ...counters,
        relayAddrs: node
          .getMultiaddrs()
          .map((a) => a.toString())
          .filter((a) => a.includes('/p2p-circuit')),
        relayedPeers: [...relayedOnlyPeers(node.getConnections())],
        ...(relayServer !== undefined ? { relay: { reservations: relayServer.reservations.size } } : {}),
        upnp: init.upnp === true,
      }
    },
    stop: () => node.removeEventListener('connection:open', onOpen),
  }
}
