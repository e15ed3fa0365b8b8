/** A bounded map of per-sender records: the least recently updated is forgotten at the cap. */

import { InvalidArgumentError } from '../../util/errors.ts'

/** Per-sender records, at most `max`; `set` makes a record the most recent. */
export class SenderMap<T> {
  private readonly entries = new Map<string, T>()

  constructor(private readonly max: number) {
    if (!(Number.isInteger(max) && max > 0)) throw new InvalidArgumentError(`max senders ${max}`)
  }

  get size(): number {
    return this.entries.size
  }

  get(sender: string): T | undefined {
    return this.entries.get(sender)
  }

  /** Every record, least recently updated first. */
  values(): IterableIterator<T> {
    return this.entries.values()
  }

  /** Senders and their records, least recently set first. */
  records(): IterableIterator<[string, T]> {
    return this.entries.entries()
  }

  set(sender: string, record: T): void {
    this.entries.delete(sender)
    this.entries.set(sender, record)
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string)
  }
}
