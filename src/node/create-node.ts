/**
 * The libp2p node every gossip-learn peer runs: TCP + circuit relay v2 + Noise + Yamux, identify,
 * ping, gossipsub, and the NAT services (AutoNAT, DCUtR; a relay server and UPnP when asked).
 */
import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { type YamuxMuxerInit, yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { type GossipSub, type GossipsubOpts, gossipsub } from '@libp2p/gossipsub'
import { type Identify, identify } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PeerDiscovery, PrivateKey } from '@libp2p/interface'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { Registry } from 'prom-client'
import type { LinkEmulation } from './emulation.ts'
import { gossipsubMetricsRegister, gossipsubTopicLabels, libp2pMetrics } from './metrics.ts'
import { type NatInit, type NatServices, natListen, natServices, relayTransport } from './nat.ts'

/** Services every node carries; gossip code types `node.services.pubsub` / `.ping` against this. */
// A type alias, not an interface: libp2p's ServiceMap needs an index signature.
export type NodeServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
} & NatServices

/** A started gossip-learn libp2p node. */
export type GossipLearnNode = Libp2p<NodeServices>

export interface CreateNodeInit {
  /** Listen multiaddrs; default one ephemeral TCP port on every interface. */
  listen?: string[]
  /** Public multiaddrs announced instead of the listen addresses (a port forward); none: announce what we listen on. */
  announce?: string[]
  /** Multiaddrs (with /p2p/<id>) to join through; none makes this node a bootstrap/seed. */
  bootstrap?: string[]
  /** Identity; a fresh Ed25519 key when absent. */
  privateKey?: PrivateKey
  /** Overrides for the Yamux muxer (merged over the tuned defaults below). */
  yamux?: YamuxMuxerInit
  /** Connection manager limit; default sized for a 32-peer testbed on one host. */
  maxConnections?: number
  /** Bounds on dialling, handshakes and keep-alive pings (CONNECTION_TIMEOUTS by default). */
  timeouts?: Partial<ConnectionTimeouts>
  /** Wraps the Noise encrypter: the testbed's link emulation reaches the node here. */
  encrypterWrapper?: Pick<LinkEmulation, 'encrypter'>
  /** Refuses dials and connections (the daemon passes its peer policy's gater); allow-all by default. */
  connectionGater?: ConnectionGater
  /** Register libp2p's and gossipsub's metrics here (`topics`: gossipsub topic -> metric label). */
  metrics?: { registry: Registry; topics?: Record<string, string> }
  /** Serve as a circuit relay (`--relay`), map a port by UPnP (`--upnp`); AutoNAT and DCUtR are always on. */
  nat?: NatInit
  /**
   * libp2p's connection monitor (a new ping stream per connection every `pingEveryMs`). false:
   * the caller keeps its connections alive itself (the daemon's KeepAlive, on kept streams).
   */
  connectionMonitor?: boolean
}

/** How long a connection may take to come up and to answer a keep-alive ping, in ms. */
export interface ConnectionTimeouts {
  /** A whole outbound dial: TCP connect, Noise and the muxer, over every address tried. */
  dialMs: number
  /**
   * One address's attempt within a dial, the Noise handshake included: libp2p bounds it on its
   * own, at 6 s by default, so a dial to a peer whose loop is seconds late fails at 6 s whatever
   * `dialMs` says (at 128 hosted peers every dial into a busy host did).
   */
  addressDialMs: number
  /** An inbound connection's Noise handshake and muxer negotiation. */
  upgradeMs: number
  /** Least time libp2p's connection monitor gives a ping before it aborts the connection. */
  pingMs: number
  /** How often the connection monitor pings each connection. */
  pingEveryMs: number
  /**
   * Identify on a new connection. libp2p runs it once and tells gossipsub of the peer only when it
   * completes: one that times out leaves the connection open and silent (LinkWatch retries it).
   */
  identifyMs: number
}

/** libp2p's own bounds (the monitor's ping timeout adapts upwards from 5 s). */
export const CONNECTION_TIMEOUTS: ConnectionTimeouts = {
  dialMs: 10_000,
  addressDialMs: 6_000,
  upgradeMs: 10_000,
  pingMs: 5_000,
  pingEveryMs: 10_000,
  // libp2p's own default.
  identifyMs: 5_000,
}

/**
 * Yamux stream windows. The initial window stays at the spec's 256 KiB: js
 * yamux assumes the remote's initial window equals its own, so a larger one
 * overruns peers running the default and gets the connection reset; and on
 * loopback a 16 MiB initial window measured no faster (docs/BENCHMARKS.md).
 * The window grows (doubling per fast epoch) up to 16 MiB, one 2M-parameter
 * model in flight, which is what a high bandwidth-delay WAN link needs.
 */
export const DEFAULT_YAMUX_INIT: YamuxMuxerInit = {
  streamOptions: {
    initialStreamWindowSize: 256 * 1024,
    maxStreamWindowSize: 16 * 1024 * 1024,
  },
}

/** How long we echo on one inbound ping stream (libp2p ends it after 10 s); a kept stream is renewed after. */
export const PING_STREAM_KEEP_MS = 5 * 60_000

/** Bootstrap discovery delay: short so testbed peers join within a second of starting. */
const BOOTSTRAP_DELAY_MS = 200

/**
 * Source IPs exempt from gossipsub's IP colocation penalty (P6): it scores every peer of an IP
 * that more than 10 peers connect from at -5 x surplus^2, against Sybils on one remote host.
 * Peers on loopback run on this host, and a testbed puts every peer there: a node with 11 of
 * them scored each -5 (pruned from its mesh: it relayed nothing), with 12 -20 (no gossip either),
 * with 15 -125 (graylisted: their announcements ignored). A node that joined through such a
 * bootstrap never learnt the view, nor the view it (issue 9).
 */
export const COLOCATION_EXEMPT_IPS: readonly string[] = ['127.0.0.1', '::1']

/** The fields of a received gossipsub message (RPC.Message) that its fast id covers. */
export interface RawGossipMessage {
  from?: Uint8Array
  data?: Uint8Array
  seqno?: Uint8Array
  topic: string
  signature?: Uint8Array
}

/**
 * Gossipsub's fast message id: a hash of the message as received, taken before its signature is
 * checked. Gossipsub checks the signature of every copy before it looks the id up in its seen
 * cache, and a node receives each announcement once per mesh peer: 78 % of the Ed25519 checks of
 * a 16-peer host were of copies. A copy with this id is dropped unchecked; an id enters the
 * cache only once its message passed the check, so a forged copy cannot hide the real one.
 */
export function fastMessageId(msg: RawGossipMessage): string {
  const h = createHash('sha256')
  for (const part of [msg.from, msg.seqno, msg.signature, msg.data]) {
    // Each field with its length: (ab, c) and (a, bc) hash apart.
    const bytes = part ?? new Uint8Array(0)
    h.update(Uint32Array.of(bytes.byteLength))
    h.update(bytes)
  }
  h.update(msg.topic)
  return h.digest('base64')
}

/**
 * Gossipsub for one small topic (membership announcements, a few a second network-wide), where
 * every copy beyond the first is waste: each costs a Noise frame, a yamux window update and a
 * socket write at both ends. Our own announcements go to the mesh like any other message
 * (`floodPublish` would send them to every connected peer, about 70 at 128 peers); the
 * announcement repeats every period, so a lost copy costs one period. The mesh keeps gossipsub's
 * degrees (D=6, 4-12): D=4 (3-8) received a third fewer messages on a host of 16 daemons
 * (docs/BENCHMARKS.md, Scale, tenth session), but then a bootstrap with 13 peers joined only
 * through it relays to 8 and reaches the rest by gossip alone, and with D=4
 * test/e2e/membership-busy-bootstrap.test.ts failed once in a full CI run (no full view in 30 s;
 * 2.3 s alone, as with D=6). Back to the defaults until that is understood.
 */
export const GOSSIPSUB_TUNING: Partial<GossipsubOpts> = {
  floodPublish: false,
  fastMsgIdFn: fastMessageId,
}

/**
 * Create and start a libp2p node with the gossip-learn stack. The caller owns it
 * and must `await node.stop()`.
 */
export async function createNode(init: CreateNodeInit = {}): Promise<GossipLearnNode> {
  const peerDiscovery: Array<(components: Parameters<ReturnType<typeof bootstrap>>[0]) => PeerDiscovery> = []
  if (init.bootstrap != null && init.bootstrap.length > 0) {
    peerDiscovery.push(bootstrap({ list: init.bootstrap, timeout: BOOTSTRAP_DELAY_MS }))
  }

  const yamuxInit: YamuxMuxerInit = {
    ...DEFAULT_YAMUX_INIT,
    ...init.yamux,
    streamOptions: { ...DEFAULT_YAMUX_INIT.streamOptions, ...init.yamux?.streamOptions },
  }

  const timeouts = { ...CONNECTION_TIMEOUTS, ...init.timeouts }
  return createLibp2p<NodeServices>({
    privateKey: init.privateKey,
    addresses: {
      // Plus /p2p-circuit: a reservation on the first relay we meet, so peers can reach us behind NAT.
      listen: natListen(init.listen ?? ['/ip4/0.0.0.0/tcp/0'], init.nat),
      ...(init.announce !== undefined && init.announce.length > 0 ? { announce: init.announce } : {}),
    },
    transports: [tcp(), relayTransport()],
    connectionEncrypters: [init.encrypterWrapper?.encrypter(noise()) ?? noise()],
    streamMuxers: [yamux(yamuxInit)],
    peerDiscovery,
    connectionGater: init.connectionGater,
    metrics: init.metrics !== undefined ? libp2pMetrics(init.metrics.registry) : undefined,
    connectionManager: {
      // A testbed runs up to ~32 peers on one host: all of them may connect to
      // everyone, and every inbound connection comes from 127.0.0.1. The default
      // of 5 connections per second per host would refuse a testbed's joins.
      maxConnections: init.maxConnections ?? 128,
      inboundConnectionThreshold: 256,
      maxIncomingPendingConnections: 64,
      maxParallelDials: 64,
      dialTimeout: timeouts.dialMs,
      addressDialTimeout: timeouts.addressDialMs,
      inboundUpgradeTimeout: timeouts.upgradeMs,
    },
    connectionMonitor: {
      enabled: init.connectionMonitor ?? true,
      pingInterval: timeouts.pingEveryMs,
      pingTimeout: { minTimeout: timeouts.pingMs },
    },
    services: {
      identify: identify({ timeout: timeouts.identifyMs }),
      // libp2p's connection monitor pings every connection every 10 s and drops it if that ping
      // fails; with 1 outbound ping stream, a TopologyService ping in flight makes it fail (docs/WAN.md).
      // The topology service keeps one ping stream per peer (StreamPinger): our side echoes on it for
      // PING_STREAM_KEEP_MS before it ends the stream, libp2p's 10 s would end most between pings.
      ping: ping({ maxOutboundStreams: 2, maxInboundStreams: 4, timeout: PING_STREAM_KEEP_MS }),
      pubsub: gossipsub({
        // Small networks: a task may have one peer, and we still want to announce.
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        ...GOSSIPSUB_TUNING,
        scoreParams: { IPColocationFactorWhitelist: new Set(COLOCATION_EXEMPT_IPS) },
        ...(init.metrics !== undefined
          ? {
              metricsRegister: gossipsubMetricsRegister(init.metrics.registry),
              metricsTopicStrToLabel: gossipsubTopicLabels(init.metrics.topics ?? {}),
            }
          : {}),
      }),
      ...natServices(init.nat),
    },
  })
}

/** The addresses the node's transports are bound to (getMultiaddrs() gives the announced ones when `announce` is set). */
export function boundAddrs(node: GossipLearnNode): string[] {
  const tm = (node as unknown as { components?: { transportManager?: { getAddrs(): unknown[] } } }).components
    ?.transportManager
  // A /p2p-circuit address is the relay's socket, not ours.
  return (tm?.getAddrs() ?? node.getMultiaddrs())
    .map((a) => String(a))
    .filter((a) => !a.includes('/p2p-circuit'))
}
