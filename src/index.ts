/**
 * gossip-learn as a library: `createGossipLearnNode(config)` starts one peer in this process,
 * with the CLI's defaults for everything `config` leaves out; the handle gives its status, its
 * events ('model-received', 'merged', 'evaluated') and `stop()`.
 */
// First: libp2p 3 needs Promise.withResolvers, which Node 20 lacks.
import './polyfill.ts'
import { LEARN_DEFAULTS, NODE_DEFAULTS, type StartConfig } from './node/config.ts'
import { type Daemon, type NodeStatus, startDaemon } from './node/daemon.ts'

export { LEARN_DEFAULTS, NODE_DEFAULTS, type NodeStatus, type StartConfig }

/** What a library caller may set; everything else takes the CLI's default (src/node/config.ts). */
export type GossipLearnNodeConfig = Partial<StartConfig>

/** Options that are not configuration: cancellation and log lines. */
export interface GossipLearnNodeOptions {
  /** Aborting it before the node is up makes createGossipLearnNode reject with a StartupAbortedError. */
  signal?: AbortSignal
  /** Lines for people (identity, data dir, checkpoint notices); silent by default. */
  print?: (line: string) => void
}

/** Event payloads, by event type. */
export interface GossipLearnEventDetail {
  /** A peer's model arrived and passed the wire checks (the learner may still drop it). */
  'model-received': { from: string }
  /** The learner merged received models into ours (counts since start). */
  merged: { merges: number; modelsMerged: number }
  /** A new evaluation on the local test share. */
  evaluated: { accuracy?: number; loss?: number; age: number }
}

export type GossipLearnEventType = keyof GossipLearnEventDetail

/**
 * How often the learner's counters are read for 'merged' and 'evaluated': the learner evaluates
 * every 2 s by default, so 4 reads per second add at most a quarter second of lag for a few
 * property reads. Several merges between two reads arrive as one event (the counts say how many).
 */
export const EVENT_POLL_MS = 250

/** A running peer. Listen with `node.addEventListener('merged', (e) => e.detail.merges)`. */
export interface GossipLearnNode extends EventTarget {
  readonly peerId: string
  /** Addresses other peers can dial (pass one to their `bootstrap`). */
  readonly multiaddrs: string[]
  readonly dataDir: string
  /** The status HTTP server's port, when `config.http` was set. */
  readonly httpPort?: number
  /** The same object as GET /status. */
  status(): NodeStatus
  /** Write a checkpoint now (one is also written every checkpointIntervalMs and on stop). */
  checkpoint(): Promise<void>
  /** Stop training and gossip, write the checkpoint, close the network; idempotent. */
  stop(): Promise<void>
  addEventListener<K extends GossipLearnEventType>(
    type: K,
    listener: (event: CustomEvent<GossipLearnEventDetail[K]>) => void,
    options?: AddEventListenerOptions | boolean,
  ): void
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void
  removeEventListener<K extends GossipLearnEventType>(
    type: K,
    listener: (event: CustomEvent<GossipLearnEventDetail[K]>) => void,
    options?: EventListenerOptions | boolean,
  ): void
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void
}

/** The full daemon config: `config` over the CLI's defaults. */
export function withDefaults(config: GossipLearnNodeConfig = {}): StartConfig {
  return {
    ...LEARN_DEFAULTS,
    listen: NODE_DEFAULTS.listen,
    bootstrap: [],
    peerCount: NODE_DEFAULTS.peerCount,
    httpHost: NODE_DEFAULTS.httpHost,
    checkpointIntervalMs: NODE_DEFAULTS.checkpointIntervalMs,
    statusIntervalMs: 0,
    gossip: true,
    jsonStatus: false,
    stopOnStdinClose: false,
    ...config,
  }
}

class Node extends EventTarget {
  daemon!: Daemon
  get peerId(): string {
    return this.daemon.peerId
  }
  get multiaddrs(): string[] {
    return this.daemon.multiaddrs
  }
  get dataDir(): string {
    return this.daemon.dataDir
  }
  get httpPort(): number | undefined {
    return this.daemon.httpPort
  }
  status(): NodeStatus {
    return this.daemon.status()
  }
  checkpoint(): Promise<void> {
    return this.daemon.checkpoint()
  }
  stop(): Promise<void> {
    return this.daemon.stop()
  }
  emit<K extends GossipLearnEventType>(type: K, detail: GossipLearnEventDetail[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }
}

/** Start a gossip-learn peer in this process. The caller owns it and must `await node.stop()`. */
export async function createGossipLearnNode(
  config: GossipLearnNodeConfig = {},
  options: GossipLearnNodeOptions = {},
): Promise<GossipLearnNode> {
  const node = new Node()
  const daemon = await startDaemon(withDefaults(config), {
    print: options.print,
    signal: options.signal,
    onModelReceived: (from) => node.emit('model-received', { from }),
  })
  node.daemon = daemon
  let merges = daemon.learner.stats.merges
  let evalAt = daemon.learner.stats.lastEvalAt
  const timer = setInterval(() => {
    const s = daemon.learner.stats
    if (s.merges !== merges) {
      merges = s.merges
      node.emit('merged', { merges: s.merges, modelsMerged: s.modelsMerged })
    }
    if (s.lastEvalAt !== evalAt) {
      evalAt = s.lastEvalAt
      node.emit('evaluated', { accuracy: s.lastAccuracy, loss: s.lastLoss, age: s.age })
    }
  }, EVENT_POLL_MS)
  timer.unref()
  const stop = daemon.stop
  daemon.stop = () => {
    clearInterval(timer)
    return stop()
  }
  // EventTarget's listener type is not generic: the typed overloads above are what callers see.
  return node as unknown as GossipLearnNode
}
