import { describe, expect, it } from 'vitest'
import {
  DEFAULT_LOG_SAFE_LENGTH,
  logSafe,
  logSafeMessage,
  MAX_LOGGED_MESSAGE_LENGTH,
} from '../../../src/gossip/log-safe.ts'

/** Anything a terminal or a line-based log sink would act on. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for raw control characters.
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

describe('logSafe', () => {
  it('leaves ordinary text, including non-ASCII letters and emoji, as it is', () => {
    expect(logSafe('mnist-mlp')).toBe('mnist-mlp')
    expect(logSafe('dense_0/kernel [784,128] é 数字 🙂')).toBe('dense_0/kernel [784,128] é 数字 🙂')
  })

  it('escapes NUL, newlines, ANSI escapes, bidi overrides and the backslash', () => {
    const hostile = 'a\u0000b\nc\r\td\u001b[31me\u202ef\u2028g\\h\u200bi\ufeffj\u0085k'
    const safe = logSafe(hostile)
    expect(safe).not.toMatch(RAW_CONTROL)
    expect(safe).toBe('a\\x00b\\nc\\r\\td\\x1b[31me\\u202ef\\u2028g\\\\h\\u200bi\\ufeffj\\x85k')
  })

  it('escapes lone surrogates but keeps surrogate pairs', () => {
    expect(logSafe('x\ud800y')).toBe('x\\ud800y')
    expect(logSafe('x\udc00y')).toBe('x\\udc00y')
    expect(logSafe('x\ud83d\ude42y')).toBe('x\ud83d\ude42y')
  })

  it('truncates to the limit and says how much was dropped', () => {
    const long = 'x'.repeat(10_000)
    const safe = logSafe(long)
    expect(safe.startsWith('x'.repeat(DEFAULT_LOG_SAFE_LENGTH))).toBe(true)
    expect(safe).toBe(`${'x'.repeat(DEFAULT_LOG_SAFE_LENGTH)}...(+${10_000 - DEFAULT_LOG_SAFE_LENGTH} chars)`)
    expect(logSafe('abcdef', 3)).toBe('abc...(+3 chars)')
    // Never cuts a surrogate pair in half.
    expect(logSafe('ab\ud83d\ude42cd', 3)).toBe('ab...(+4 chars)')
  })

  it('truncates before escaping, so escapes cannot be cut and a NUL flood stays short', () => {
    const safe = logSafe('\u0000'.repeat(1000), 4)
    expect(safe).toBe('\\x00\\x00\\x00\\x00...(+996 chars)')
  })

  it('stringifies non-strings and survives values that cannot be stringified', () => {
    expect(logSafe(42)).toBe('42')
    expect(logSafe(undefined)).toBe('undefined')
    expect(logSafe(Object.create(null))).toBe('[unprintable]')
  })
})

describe('logSafeMessage', () => {
  it('escapes and truncates an error message that quotes a peer string', () => {
    const err = new Error(`task '${'\u0000\n'.repeat(500)}', expected 'mnist-mlp'`)
    const safe = logSafeMessage(err)
    expect(safe).not.toMatch(RAW_CONTROL)
    expect(safe).toContain(`...(+${err.message.length - MAX_LOGGED_MESSAGE_LENGTH} chars)`)
  })

  it('takes thrown non-errors too', () => {
    expect(logSafeMessage('bad\nthing')).toBe('bad\\nthing')
  })
})
