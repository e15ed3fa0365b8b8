import type { Readable } from 'node:stream'

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
 * Like anyWithTimeout, but when the time is up it aborts only after the loop has read its sockets
 * once more. Node runs due timers before it reads sockets, so after a stall of this process's own
 * loop a timeout fires before the answer that came during the stall is read: a daemon sharing a
 * loaded core stalls for seconds, and its keep-alive aborted live connections that way (d21,
 * docs/BENCHMARKS.md, Scale). One turn, not a re-armed timer: under a loop that is always late,
 * timers that re-arm whenever they fire late never retire, pile up and stall the loop further.
 */
export function anyWithTimeoutAfterReads(
  signals: ReadonlyArray<AbortSignal | undefined>,
  ms: number,
): AbortSignal {
  const controller = new AbortController()
  setTimeout(() => {
    setImmediate(() =>
      controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    )
  }, ms).unref()
  return AbortSignal.any([...signals.filter((s): s is AbortSignal => s !== undefined), controller.signal])
}

/**
 * Aborts `controller` once `stream` ends, closes or fails, reading and discarding its input. A
 * pipe from a supervisor closes when the supervisor dies by any signal, SIGKILL included, which no
 * handler of the supervisor's can see; opt-in, since a stdin from /dev/null ends at once. Once
 * the controller aborts for any reason the stream is destroyed, so it does not keep the process up.
 */
export function abortWhenClosed(stream: Readable, controller: AbortController, onClosed?: () => void): void {
  const closed = () => {
    if (controller.signal.aborted) return
    onClosed?.()
    controller.abort()
  }
  stream.once('end', closed)
  stream.once('close', closed)
  stream.once('error', closed)
  controller.signal.addEventListener('abort', () => stream.destroy(), { once: true })
  // Flowing mode: 'end' fires only once the stream has been read to its end.
  stream.resume()
}
