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
