/**
 * Re-dial: a node that has lost every connection dials its bootstrap list and its remembered peers
 * again, with capped exponential backoff, until it has a peer; then it only watches. libp2p does
 * not do this: @libp2p/bootstrap dials its list once, and libp2p's reconnect queue retries only
 * peers tagged keep-alive, 5 times, then drops the tag (docs/DEPLOY.md).
 */
import { anyWithTimeout, release } from '../util/abort.ts'

/** How often a connected node checks that it still has a connection: one cheap call per second. */
export const REDIAL_CHECK_INTERVAL_MS = 1000

/**
 * First wait between two rounds of dials: a peer that restarts on its kept port is back within
 * seconds, and a dial to a dead TCP port on a LAN fails in milliseconds, so retrying soon is cheap.
 */
export const REDIAL_MIN_DELAY_MS = 1000

/**
 * Longest wait between rounds: a node alone for long still finds a returning network within a
 * minute, while dialling up to 64 remembered peers plus the bootstrap list costs a few dials a minute.
 */
export const REDIAL_MAX_DELAY_MS = 60_000

/** Each failed round doubles the wait (1, 2, 4, ... 60 s): the usual TCP-like backoff. */
export const REDIAL_BACKOFF_FACTOR = 2

/**
 * Waits vary by +-20%: nodes that lost the same bootstrap peer at the same moment do not all
 * dial it in the same instant when it comes back.
 */
export const REDIAL_JITTER = 0.2

/** A dial that has not connected in 10 s will not (libp2p's own dialTimeout in create-node.ts). */
export const REDIAL_DIAL_TIMEOUT_MS = 10_000

/**
 * The bootstrap keeper (a second Redialer in the daemon): a node connected to peers but to none
 * of its bootstrap list checks every 10 s and dials the list again, backing off to 5 min, so a
 * seed that is gone for good costs one dial per 5 minutes.
 */
export const BOOTSTRAP_KEEPER_INIT = {
  checkIntervalMs: 10_000,
  minDelayMs: 10_000,
  maxDelayMs: 300_000,
} as const satisfies RedialInit

/** A peer to re-dial: its id and where to reach it (multiaddrs without `/p2p/<id>`). */
export interface RedialTarget {
  peerId: string
  addrs: string[]
}

/** What the re-dialler uses: tests pass fakes, the daemon passes the libp2p node. */
export interface RedialComponents {
  /** Whether the node has at least one open connection. */
  connected(): boolean
  /** Whom to dial now (the bootstrap list and the remembered peers, minus refused ones). */
  targets(): RedialTarget[]
  /** Dial one target; rejects when it cannot be reached. */
  dial(target: RedialTarget, signal: AbortSignal): Promise<void>
  /** Wait `ms` or until `signal` aborts (resolves either way); default a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  /** Uniform in [0, 1) for the jitter; default Math.random. */
  random?: () => number
}

export interface RedialInit {
  checkIntervalMs?: number
  minDelayMs?: number
  maxDelayMs?: number
  factor?: number
  jitter?: number
  dialTimeoutMs?: number
}

/** Counters of the re-dialler (GET /status shows `rejoins`). */
export interface RedialCounters {
  /** Rounds in which the node had no connection and dialled every target. */
  rounds: number
  /** Single dials made, and how many of them failed. */
  dials: number
  dialsFailed: number
}

function sleepTimer(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    timer.unref?.()
    signal.addEventListener('abort', done, { once: true })
  })
}

/** Watches the node's connections and re-dials while it has none. start()/stop() are idempotent. */
export class Redialer {
  readonly counters: RedialCounters = { rounds: 0, dials: 0, dialsFailed: 0 }
  private readonly components: RedialComponents
  private readonly init: Required<RedialInit>
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>
  private readonly random: () => number
  private controller?: AbortController
  private running?: Promise<void>
  private nextDelay: number

  constructor(components: RedialComponents, init: RedialInit = {}) {
    this.components = components
    this.init = {
      checkIntervalMs: init.checkIntervalMs ?? REDIAL_CHECK_INTERVAL_MS,
      minDelayMs: init.minDelayMs ?? REDIAL_MIN_DELAY_MS,
      maxDelayMs: init.maxDelayMs ?? REDIAL_MAX_DELAY_MS,
      factor: init.factor ?? REDIAL_BACKOFF_FACTOR,
      jitter: init.jitter ?? REDIAL_JITTER,
      dialTimeoutMs: init.dialTimeoutMs ?? REDIAL_DIAL_TIMEOUT_MS,
    }
    this.sleep = components.sleep ?? sleepTimer
    this.random = components.random ?? Math.random
    this.nextDelay = this.init.minDelayMs
  }

  /** The wait before the next round if the current one fails (before jitter). */
  get backoffMs(): number {
    return this.nextDelay
  }

  start(): void {
    if (this.controller !== undefined) return
    this.controller = new AbortController()
    this.running = this.run(this.controller.signal)
  }

  /** Stop watching and abort the dials in flight. */
  async stop(): Promise<void> {
    this.controller?.abort()
    await this.running
    this.controller = undefined
    this.running = undefined
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.sleep(this.init.checkIntervalMs, signal)
      if (signal.aborted) return
      if (this.components.connected()) {
        this.nextDelay = this.init.minDelayMs
        continue
      }
      await this.round(signal)
      if (signal.aborted || this.components.connected()) {
        this.nextDelay = this.init.minDelayMs
        continue
      }
      const spread = 1 + this.init.jitter * (2 * this.random() - 1)
      await this.sleep(Math.round(this.nextDelay * spread), signal)
      this.nextDelay = Math.min(this.nextDelay * this.init.factor, this.init.maxDelayMs)
    }
  }

  /** Dial every target at once, each bounded by the dial timeout and by stop(). */
  private async round(signal: AbortSignal): Promise<void> {
    const targets = this.components.targets()
    if (targets.length === 0) return
    this.counters.rounds++
    await Promise.all(
      targets.map(async (t) => {
        this.counters.dials++
        const bound = anyWithTimeout([signal], this.init.dialTimeoutMs)
        try {
          await this.components.dial(t, bound)
        } catch {
          this.counters.dialsFailed++
        } finally {
          release(bound)
        }
      }),
    )
  }
}
