import type { Readable } from 'node:stream'

/**
 * Why not AbortSignal.any: on Node 20 (and 22 before 22.12) each call leaves an entry in every
 * source's set of dependants for as long as the source lives (nodejs/node#55351). A node combines
 * its long-lived stop signal with a deadline for every push, ping and dial: a 2-peer node gained
 * 2345 WeakRefs in 15 minutes (heap snapshots), and calls in a loop held one entry each, 17 MiB
 * of heap for 300 000 (docs/BENCHMARKS.md, Memory over time). The signals made here hold a listener
 * on each source only until they abort, and each either has a deadline of its own or is given one.
 */

/** How to let go of each signal made here before it aborts (see `release`). */
const releases = new WeakMap<AbortSignal, () => void>()

/**
 * Aborts with the first of `sources` to abort (with its reason), or when `arm`'s callback is
 * called; then takes its listeners off every source, and cancels what `arm` set up.
 */
function follow(
  sources: ReadonlyArray<AbortSignal | undefined>,
  arm?: (abort: (reason: unknown) => void) => NodeJS.Timeout,
): AbortSignal {
  const controller = new AbortController()
  const given = sources.filter((s): s is AbortSignal => s !== undefined)
  const aborted = given.find((s) => s.aborted)
  if (aborted !== undefined) {
    controller.abort(aborted.reason)
    return controller.signal
  }
  let timer: NodeJS.Timeout | undefined
  let done = false
  const onAbort = (event: Event) => abort((event.target as AbortSignal).reason)
  const detach = () => {
    if (done) return
    done = true
    clearTimeout(timer)
    for (const s of given) s.removeEventListener('abort', onAbort)
    releases.delete(controller.signal)
  }
  const abort = (reason: unknown) => {
    if (done) return
    detach()
    controller.abort(reason)
  }
  for (const s of given) s.addEventListener('abort', onAbort, { once: true })
  timer = arm?.(abort)
  releases.set(controller.signal, detach)
  return controller.signal
}

/**
 * Lets go of a signal made here once the work it bounded is over: takes its listeners off its
 * sources and cancels its deadline, so it never aborts after. Without it each stays on a
 * long-lived source until its deadline: a node pushing every second held 20 at a time, and Node
 * printed "MaxListenersExceededWarning: Possible EventTarget memory leak detected" in every
 * gossiping daemon's log. Does nothing for any other signal, or twice.
 */
export function release(signal: AbortSignal): void {
  releases.get(signal)?.()
}

const timeoutError = () => new DOMException('The operation was aborted due to timeout', 'TimeoutError')

/**
 * A signal that aborts with the first of `signals`: leak-free only when one of them is bound to
 * abort (a deadline such as AbortSignal.timeout, which the listener put on it also keeps from
 * being collected before it fires) or it is `release`d, since the listeners stay on the others
 * until then.
 */
export function anySignal(signals: ReadonlyArray<AbortSignal | undefined>): AbortSignal {
  return follow(signals)
}

/**
 * A signal that aborts with any of `signals` or after `ms` (a TimeoutError). Its timer holds it
 * until then: a bare AbortSignal.timeout through AbortSignal.any could be collected before it
 * fired on Node 20, and never fire (50 timeouts, a few collections: 1 fired).
 */
export function anyWithTimeout(signals: ReadonlyArray<AbortSignal | undefined>, ms: number): AbortSignal {
  return follow(signals, (abort) => setTimeout(() => abort(timeoutError()), ms).unref())
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
  return follow(signals, (abort) => setTimeout(() => setImmediate(() => abort(timeoutError())), ms).unref())
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
