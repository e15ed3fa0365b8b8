/**
 * A signal that aborts with any of `signals` or after `ms`. Node 20's AbortSignal.any holds its
 * sources weakly, and a bare AbortSignal.timeout is kept alive only while it has an abort listener
 * of its own: collected before it fires, it never fires, and the bound it stood for is gone (50
 * timeouts through AbortSignal.any, a few collections: 1 fired). The listener added here keeps it.
 */
export function anyWithTimeout(signals: ReadonlyArray<AbortSignal | undefined>, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  timeout.addEventListener('abort', () => {}, { once: true })
  return AbortSignal.any([...signals.filter((s): s is AbortSignal => s !== undefined), timeout])
}

/**
 * How late a timer of `ms` may fire and still mean its time ran out: a tenth of it, at most 1 s.
 * Node runs due timers before it reads sockets, so a timer that fires later than this was held up
 * by a stall of this process's own loop, and bytes that came during the stall still wait unread.
 */
export function loopStallGraceMs(ms: number): number {
  return Math.min(1_000, ms / 10)
}

/**
 * Like anyWithTimeout, but the timeout does not count a stall of this process's own loop: when
 * its timer fires more than loopStallGraceMs late, it waits one grace period more, so the answer
 * that came during the stall is read first. A daemon sharing a loaded core stalls for seconds;
 * a reply read late is still a reply (keep-alive pings aborted live connections otherwise).
 */
export function anyWithStallTolerantTimeout(
  signals: ReadonlyArray<AbortSignal | undefined>,
  ms: number,
): AbortSignal {
  const controller = new AbortController()
  const grace = loopStallGraceMs(ms)
  let due = Date.now() + ms
  const fire = (): void => {
    const now = Date.now()
    if (now - due > grace) {
      due = now + grace
      setTimeout(fire, grace).unref()
      return
    }
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
  }
  setTimeout(fire, ms).unref()
  return AbortSignal.any([...signals.filter((s): s is AbortSignal => s !== undefined), controller.signal])
}
