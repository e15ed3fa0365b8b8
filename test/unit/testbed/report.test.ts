/** The HTML report: one self-contained file, and where the testbed writes it by default. */
import { describe, expect, it } from 'vitest'
import { downIntervals, peerAvailability } from '../../../src/testbed/report/availability.ts'
import { renderReport } from '../../../src/testbed/report/index.ts'
import type { TestbedResult } from '../../../src/testbed/result.ts'
import { reportPath } from '../../../src/testbed/testbed.ts'

const result = {
  config: { startedAt: '2026-01-01T00:00:00.000Z', peers: 1, gossip: true },
  durationS: 1,
  reachedTarget: false,
  meanFinalAccuracy: 0.5,
  minFinalAccuracy: 0.5,
  peers: [
    {
      index: 0,
      peerId: '</script><script>alert(1)</script>',
      finalAccuracy: 0.5,
      modelsSent: 0,
      modelsReceived: 0,
      bytesSent: 0,
      bytesReceived: 0,
      merges: 0,
      steps: 0,
      trainSamples: 0,
      series: [],
    },
  ],
} as unknown as TestbedResult

describe('renderReport', () => {
  it('inlines the charting library, the page script and the data, and loads nothing', () => {
    const html = renderReport(result)
    expect(html).not.toMatch(/<script[^>]+src=/)
    expect(html).not.toMatch(/<link[^>]+href=/)
    expect(html).toContain('@observablehq/plot')
    expect(html).toContain('window.GossipCharts')
    // Data that looks like markup cannot close the data element.
    const data = html.slice(html.indexOf('id="page-data">'))
    expect(data.slice(0, data.indexOf('</script>'))).toContain('\\u003c/script>')
    expect(html.match(/<\/script>/g)?.length).toBe(html.match(/<script/g)?.length)
  })
})

describe('reportPath', () => {
  it('is --report when given, else next to --json, else none', () => {
    expect(reportPath({ report: 'r.html', json: 'a.json' })).toBe('r.html')
    expect(reportPath({ json: 'runs/a.json' })).toBe('runs/a.html')
    expect(reportPath({ json: 'runs/a' })).toBe('runs/a.html')
    expect(reportPath({})).toBeUndefined()
  })
})

describe('peer availability (the report shades down intervals, lists late joiners apart)', () => {
  it('finds the gaps between up spans and the time after a last exit', () => {
    // Killed at 50 s, restarted (ready) at 80.5 s, killed again at 100 s; the run ended at 120 s.
    const up = [
      { from: 80.5, to: 100 },
      { from: 0, to: 50 },
    ]
    expect(downIntervals(up, 120)).toEqual([
      { from: 50, to: 80.5 },
      { from: 100, to: 120 },
    ])
    // Still running at the end: no trailing interval.
    expect(
      downIntervals(
        [
          { from: 0, to: 50 },
          { from: 60, to: null },
        ],
        120,
      ),
    ).toEqual([{ from: 50, to: 60 }])
    expect(downIntervals([{ from: 0, to: null }], 120)).toEqual([])
    expect(downIntervals([], 120)).toEqual([])
  })

  it('marks peers numbered after the initial ones as late joiners, with when they came up', () => {
    const initial = peerAvailability({ index: 2, up: [{ from: 0, to: 30 }] }, 4, 90)
    expect(initial).toEqual({ lateJoiner: false, down: [{ from: 30, to: 90 }] })
    const joiner = peerAvailability({ index: 4, up: [{ from: 45.2, to: null }] }, 4, 90)
    expect(joiner).toEqual({ lateJoiner: true, joinedAt: 45.2, down: [] })
    // A joiner still starting at the end has no joinedAt and no down interval (it was never up).
    expect(peerAvailability({ index: 5, up: [] }, 4, 90)).toEqual({ lateJoiner: true, down: [] })
  })

  it('renders a churned run with its down intervals and late joiners in the inlined data', () => {
    const peer = result.peers[0]!
    const churned = {
      ...result,
      config: { ...result.config, peers: 1 },
      alivePeers: 1,
      peers: [
        { ...peer, alive: false, ...peerAvailability({ index: 0, up: [{ from: 0, to: 50 }] }, 1, 90) },
        { ...peer, index: 1, ...peerAvailability({ index: 1, up: [{ from: 40, to: null }] }, 1, 90) },
      ],
    } as TestbedResult
    const html = renderReport(churned)
    const data = html.slice(html.indexOf('id="page-data">'))
    expect(data).toContain('"down":[{"from":50,"to":90}]')
    expect(data).toContain('"lateJoiner":true,"joinedAt":40')
  })
})
