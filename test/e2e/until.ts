export interface UntilOptions {
  /** Give up after this long (default 60 s). */
  ms?: number
  /** Poll this often (default 200 ms). */
  pollMs?: number
  /** The state worth knowing when it times out, appended to the error (a flake in CI is seen once). */
  detail?: () => string
}

/** Poll `cond` until it holds; throw naming `what` (and `detail()`) after `ms`. For e2e tests on real sockets. */
export async function until(
  what: string,
  cond: () => boolean,
  msOrOptions: number | UntilOptions = 60_000,
  pollMs = 200,
): Promise<void> {
  const opts = typeof msOrOptions === 'number' ? { ms: msOrOptions, pollMs } : msOrOptions
  const end = Date.now() + (opts.ms ?? 60_000)
  while (!cond()) {
    if (Date.now() > end) {
      const detail = opts.detail === undefined ? '' : `: ${opts.detail()}`
      throw new Error(`timed out waiting for ${what}${detail}`)
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200))
  }
}
