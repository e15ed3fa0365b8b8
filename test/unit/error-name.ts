/** The `name` of what `fn` throws, or 'no error': tests assert on error names, never on messages. */
export function errorName(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as Error).name
  }
  return 'no error'
}
