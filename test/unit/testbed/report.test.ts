/** The HTML report: one self-contained file, and where the testbed writes it by default. */
import { describe, expect, it } from 'vitest'
import { renderReport } from '../../../src/testbed/report/index.ts'
import { reportPath, type TestbedResult } from '../../../src/testbed/testbed.ts'

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
