/**
 * Keep-alive pings on the kept ping streams. libp2p's connection monitor pings every connection
 * every `pingEveryMs` on a new stream (yamux open, multistream-select, the echo, two FINs: 13 Noise
 * frames, about 10 times the CPU of a ping on a kept stream; `npm run bench:ping-cost`), and aborts
 * the connection when the ping fails. This does the same through the daemon's StreamPinger, so a
 * node with 30 connections does not open 3 streams a second only to learn that they are alive.
 * Limited (relayed) connections are left to the relay's own limits, as the topology service does.
 */

import type { AbortOptions, Connection, PeerId } from '@libp2p/interface'
import { PingBusyError, PingNotConnectedError } from '../gossip/topology/stream-ping.ts'
import { anyWithTimeoutAfterReads, release } from '../util/abort.ts'
import { InvalidArgumentError } from '../util/errors.ts'

/** The slice of a libp2p node the keep-alive needs. */
export interface KeepAliveNode {
  getConnections(): Connection[]
}

export interface KeepAliveInit {
  /** How often every peer with a direct connection is pinged. */
  intervalMs: number
  /**
   * A ping that takes longer fails, and the peer's direct connections are aborted. The answer
   * that came during a stall of this process's own loop is read first (anyWithTimeoutAfterReads).
   */
  timeoutMs: number
  /** The ping to send (StreamPinger.ping); PingBusyError means another ping is out, so alive. */
  ping(peer: PeerId, options: AbortOptions): Promise<number>
}

/** Thrown into the connections of a peer whose keep-alive ping failed. */
export class KeepAliveFailedError extends Error {
  override name = 'KeepAliveFailedError'
}

export class KeepAlive {
  /** Pings sent, failed, and connections aborted after a failure (for tests and /status). */
  readonly counters = { pings: 0, failures: 0, aborted: 0 }
  private timer: ReturnType<typeof setInterval> | undefined
  private controller = new AbortController()

  constructor(
    private readonly node: KeepAliveNode,
    private readonly init: KeepAliveInit,
  ) {
    if (!(init.intervalMs > 0 && init.timeoutMs > 0)) {
      throw new InvalidArgumentError(`keep-alive interval and timeout must be positive`)
    }
  }

  start(): void {
    if (this.timer !== undefined) return
    this.controller = new AbortController()
    this.timer = setInterval(() => void this.round(), this.init.intervalMs)
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.controller.abort()
  }

  /** One round: each peer with an open direct connection pinged once, at once. */
  async round(): Promise<void> {
    const byPeer = new Map<string, Connection[]>()
    for (const c of this.node.getConnections()) {
      if (c.status !== 'open' || c.limits !== undefined) continue
      const id = c.remotePeer.toString()
      const list = byPeer.get(id)
      if (list === undefined) byPeer.set(id, [c])
      else list.push(c)
    }
    const stopped = this.controller.signal
    await Promise.all(
      [...byPeer.values()].map(async (conns) => {
        const peer = conns[0]!.remotePeer
        this.counters.pings++
        const signal = anyWithTimeoutAfterReads([stopped], this.init.timeoutMs)
        try {
          await this.init.ping(peer, { signal })
        } catch (err) {
          // Busy: another ping is out. Unsupported: the peer answered multistream-select, so it
          // is alive, only without ping (libp2p's monitor reads it the same way).
          // Not connected: the connections closed since the round listed them (pings never dial).
          if (
            stopped.aborted ||
            err instanceof PingBusyError ||
            err instanceof PingNotConnectedError ||
            (err as Error).name === 'UnsupportedProtocolError'
          )
            return
          this.counters.failures++
          const why = err instanceof Error ? err.message : String(err)
          for (const c of conns) {
            if (c.status !== 'open') continue
            c.abort(new KeepAliveFailedError(`keep-alive ping to ${peer} failed: ${why}`))
            this.counters.aborted++
          }
        } finally {
          release(signal)
        }
      }),
    )
  }
}
