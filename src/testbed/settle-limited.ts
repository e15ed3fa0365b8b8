/** Starting many processes without starving each of CPU. */

/** `Promise.allSettled` over `items`, with at most `limit` of `start` in flight at once (in order). */
export async function settleLimited<T, R>(
  items: readonly T[],
  limit: number,
  start: (item: T) => Promise<R>,
): Promise<Array<PromiseSettledResult<R>>> {
  const results: Array<PromiseSettledResult<R>> = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const k = next++
      try {
        results[k] = { status: 'fulfilled', value: await start(items[k]!) }
      } catch (reason) {
        results[k] = { status: 'rejected', reason }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
