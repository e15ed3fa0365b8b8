/** Poll `cond` until it holds; throw naming `what` after `ms`. For e2e tests on real sockets. */
export async function until(what: string, cond: () => boolean, ms = 60_000, pollMs = 200): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, pollMs))
  }
}
