/**
 * The hook through which link emulation (a testbed facility) reaches a node without the node
 * importing the testbed: it wraps the connection encrypter, and reports regions and counters.
 */
import type { ConnectionEncrypter } from '@libp2p/interface'

/** Per-node counters of an emulation (for /status and the testbed JSON). */
export interface LinkEmulationStats {
  /** This node's region, once its first connection is secured. */
  region?: string
  /** Bytes handed to connections whose remote is in our region. */
  bytesSentIntraRegion: number
  /** Bytes handed to connections whose remote is in another region. */
  bytesSentInterRegion: number
  /** Bytes to peers absent from the links file (no delay applied). */
  bytesSentUnknown: number
  /** Bytes sent, by remote region. */
  bytesSentByRegion: Record<string, number>
  /** Emulated connections currently open. */
  connections: number
  /** Bytes waiting in emulated links right now (uplink queue + propagation). */
  queuedBytes: number
}

/** Components an encrypter factory receives from libp2p (only peerId is read). */
export interface EncrypterComponents {
  peerId: { toString(): string }
}

export interface LinkEmulation {
  /** Wraps a connection-encrypter factory (e.g. `noise()`) for createLibp2p's `connectionEncrypters`. */
  encrypter<C extends EncrypterComponents, E>(
    factory: (components: C) => ConnectionEncrypter<E>,
  ): (components: C) => ConnectionEncrypter<E>
  /** The emulated region of a peer, when it has one. */
  regionOf(peerId: string): string | undefined
  stats(): LinkEmulationStats
}
