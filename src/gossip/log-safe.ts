/**
 * Peer-supplied strings (task ids, arch fingerprints, tensor names, announced regions, error
 * messages that quote them) reach our logs only through `logSafe`: control characters, the
 * backslash, Unicode line separators and bidirectional overrides are escaped, so a peer cannot
 * forge log lines, hide text or drive a terminal; the result is truncated so it cannot flood them.
 */

/**
 * Longest peer-supplied string kept in a log line, in characters. Our task ids, arch fingerprints
 * and tensor names are under 64; 80 keeps them whole and a hostile megabyte down to a line.
 */
export const DEFAULT_LOG_SAFE_LENGTH = 80

/** Longest error message (which may quote several peer strings) kept in a log line. */
export const MAX_LOGGED_MESSAGE_LENGTH = 300

const SHORT: Record<number, string> = { 10: '\\n', 13: '\\r', 9: '\\t', 92: '\\\\' }

const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff

/**
 * C0 and C1 controls, DEL, the backslash (so escapes stay unambiguous), zero-width characters,
 * line/paragraph separators, bidi embeddings/overrides/isolates and the BOM.
 */
function unsafe(c: number): boolean {
  return (
    c < 0x20 ||
    (c >= 0x7f && c <= 0x9f) ||
    c === 0x5c ||
    (c >= 0x200b && c <= 0x200f) ||
    (c >= 0x2028 && c <= 0x202e) ||
    (c >= 0x2060 && c <= 0x2069) ||
    c === 0xfeff
  )
}

function escapeCode(c: number): string {
  const short = SHORT[c]
  if (short !== undefined) return short
  return c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`
}

/** Escape every unsafe code unit, and lone surrogates (invalid UTF-16 that some log sinks mangle). */
function escapeAll(s: string): string {
  let out = ''
  let from = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    let bad = unsafe(c)
    if (isHigh(c)) {
      if (i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
        i++
        continue
      }
      bad = true
    } else if (isLow(c)) bad = true
    if (!bad) continue
    out += s.slice(from, i) + escapeCode(c)
    from = i + 1
  }
  return from === 0 ? s : out + s.slice(from)
}

/**
 * `value` as a single printable line for a log: unsafe characters escaped (`\x00`, `\n`,
 * `\u202e`, `\\`), cut to `maxLength` characters of the original with a note of how many were
 * dropped. Non-strings are stringified first (a peer's JSON may put anything where a string goes).
 */
export function logSafe(value: unknown, maxLength = DEFAULT_LOG_SAFE_LENGTH): string {
  let s: string
  try {
    s = typeof value === 'string' ? value : String(value)
  } catch {
    s = '[unprintable]'
  }
  const limit = Math.max(0, Math.floor(maxLength))
  let cut = ''
  if (s.length > limit) {
    // Do not split a surrogate pair: it would show as a lone (escaped) half.
    let end = limit
    if (end > 0 && isHigh(s.charCodeAt(end - 1))) end--
    cut = `...(+${s.length - end} chars)`
    s = s.slice(0, end)
  }
  return escapeAll(s) + cut
}

/** An error's message made safe for a log line (it may quote peer-supplied strings). */
export function logSafeMessage(err: unknown): string {
  return logSafe((err as { message?: unknown } | null)?.message ?? err, MAX_LOGGED_MESSAGE_LENGTH)
}
