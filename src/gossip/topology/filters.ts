/** The RTT filters the daemon measures links with: minimum of recent samples, fed into Vivaldi. */
import { RttTracker } from './rtt.ts'
import { type Coordinate, VivaldiClient, type VivaldiUpdateOptions } from './vivaldi.ts'

/**
 * Pings share the uplink with model pushes, and queueing only ever adds delay: under load the
 * median of recent pings measured 343 ms on a 10 ms emulated link and 380 ms on a 215 ms one
 * (4-peer testbed, 20 Mbit/s uplinks), which hides which peers are near. The minimum of the
 * last few samples estimates the propagation RTT (network-coordinate systems use a low
 * percentile filter for the same reason: Ledlie et al., NSDI 2007). 32, not 8: the near peers a
 * topology sampler pushes to most can have every ping of a minute queue behind a push (the min
 * of 8 read 90-100 ms on a 10 ms link, and Vivaldi's median error was 10-16 %; with 32, 3.5-4.7 %:
 * docs/BENCHMARKS.md, topology). A longer route is then seen after 32 pings, in a 12-peer
 * network about 3 minutes (a shorter one at once).
 */
export const RTT_MIN_WINDOW = 32

/** RttTracker that reports the minimum of each peer's last `RTT_MIN_WINDOW` samples. */
export class MinRttTracker extends RttTracker {
  constructor() {
    super({ windowSize: RTT_MIN_WINDOW })
  }

  override record(peerId: string, rttMs: number): number {
    super.record(peerId, rttMs)
    return this.get(peerId)!
  }

  override get(peerId: string): number | undefined {
    const s = this.samples(peerId)
    return s.length === 0 ? undefined : Math.min(...s)
  }
}

/** Vivaldi fed with the tracker's minimum for the peer (TopologyService records the sample first). */
export class MinFilteredVivaldi extends VivaldiClient {
  constructor(private readonly tracker: RttTracker) {
    super({ latencyFilterSize: 0 })
  }

  override update(remote: Coordinate, rttMs: number, options: VivaldiUpdateOptions = {}): Coordinate {
    const filtered = options.peerId !== undefined ? this.tracker.get(options.peerId) : undefined
    return super.update(remote, filtered ?? rttMs)
  }
}
