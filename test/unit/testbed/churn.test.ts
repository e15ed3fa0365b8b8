import { describe, expect, it } from 'vitest'
import {
  joinCount,
  parseChurnSpec,
  parseTrainRateSpec,
  pickPeers,
  trainRates,
} from '../../../src/testbed/churn.ts'

const errorName = (fn: () => unknown): string => {
  try {
    fn()
  } catch (err) {
    return (err as Error).name
  }
  return 'none'
}

describe('parseChurnSpec', () => {
  it('parses kill, restart and join events, sorted by time', () => {
    expect(parseChurnSpec('kill:0.3@50s,restart:0.5@80,join:2@30s')).toEqual([
      { action: 'join', amount: 2, atS: 30 },
      { action: 'kill', amount: 0.3, atS: 50 },
      { action: 'restart', amount: 0.5, atS: 80 },
    ])
  })

  it('counts late joiners over all events', () => {
    expect(joinCount(parseChurnSpec('join:2@10,kill:1@20,join:3@30'))).toBe(5)
  })

  it.each([
    '',
    'kill',
    'kill:0.5',
    'kill:0@10',
    'kill:1.5@10',
    'restart:2@10',
    'join:0.5@10',
    'join:0@10',
    'join:65@10',
    'boom:1@10',
    'kill:0.5@-1',
    'kill:0.5@10m',
  ])('refuses %j', (spec) => {
    expect(errorName(() => parseChurnSpec(spec))).toBe('InvalidChurnSpecError')
  })
})

describe('pickPeers', () => {
  const running = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]

  it('picks round(fraction x n) distinct candidates, at least one', () => {
    const picked = pickPeers(running, 0.3, 7, 0)
    expect(picked).toHaveLength(3)
    expect(new Set(picked).size).toBe(3)
    for (const p of picked) expect(running).toContain(p)
    expect(pickPeers(running, 0.01, 7, 0)).toHaveLength(1)
    expect(pickPeers(running, 1, 7, 0)).toEqual(running)
    expect(pickPeers([], 0.5, 7, 0)).toEqual([])
  })

  it('is deterministic in the seed and the event, and varies with them', () => {
    expect(pickPeers(running, 0.5, 7, 0)).toEqual(pickPeers([...running].reverse(), 0.5, 7, 0))
    const choices = new Set(Array.from({ length: 20 }, (_, s) => pickPeers(running, 0.5, s, 0).join(',')))
    expect(choices.size).toBeGreaterThan(1)
  })
})

describe('parseTrainRateSpec / trainRates', () => {
  it('parses one rate', () => {
    expect(parseTrainRateSpec('20')).toEqual({ rate: 20 })
    expect(trainRates({ rate: 20 }, 3, 1)).toEqual([20, 20, 20])
  })

  it('parses stragglers and assigns round(fraction x peers) of them from the seed', () => {
    const spec = parseTrainRateSpec('20,straggler:0.25@5')
    expect(spec).toEqual({ rate: 20, straggler: { fraction: 0.25, rate: 5 } })
    const rates = trainRates(spec, 8, 42)
    expect(rates.filter((r) => r === 5)).toHaveLength(2)
    expect(rates.filter((r) => r === 20)).toHaveLength(6)
    expect(trainRates(spec, 8, 42)).toEqual(rates)
  })

  it.each([
    '',
    '0',
    '-5',
    'fast',
    '20,straggler:0@5',
    '20,straggler:0.5@0',
    '20,slow:0.5@5',
    '20,straggler:0.5',
  ])('refuses %j', (spec) => {
    expect(errorName(() => parseTrainRateSpec(spec))).toBe('InvalidTrainRateSpecError')
  })
})
