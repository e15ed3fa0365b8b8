import { describe, expect, it } from 'vitest'
import {
  growth,
  type MemorySample,
  metricValue,
  parseSample,
  slope,
} from '../../../../../scripts/bench/soak/series.ts'

const MIB = 2 ** 20

/** A /metrics text as prom-client and our registry print it (help, type, labelled neighbours). */
const TEXT = [
  '# HELP process_resident_memory_bytes Resident memory size in bytes.',
  '# TYPE process_resident_memory_bytes gauge',
  `process_resident_memory_bytes ${140 * MIB}`,
  '# TYPE nodejs_heap_size_used_bytes gauge',
  'nodejs_heap_size_used_bytes 33554432',
  'nodejs_external_memory_bytes 5e+6',
  'nodejs_heap_space_size_used_bytes{space="old"} 999',
  'gossip_learn_backend_tensors 23',
  'gossip_learn_backend_wasm_memory_bytes 16777216',
  'gossip_learn_training_steps_total 1200',
  'gossip_learn_training_steps_total_extra 5',
  'gossip_learn_models_received_total 40',
].join('\n')

function sample(t: number, rssMiB: number, extra: Partial<MemorySample> = {}): MemorySample {
  return {
    t,
    rss: rssMiB * MIB,
    heapUsed: 30 * MIB,
    external: 5 * MIB,
    wasm: 16 * MIB,
    tensors: 23,
    steps: t * 20,
    received: 0,
    ...extra,
  }
}

describe('soak series', () => {
  it('reads unlabelled samples by exact name, NaN when absent', () => {
    expect(metricValue(TEXT, 'gossip_learn_training_steps_total')).toBe(1200)
    expect(metricValue(TEXT, 'nodejs_external_memory_bytes')).toBe(5e6)
    expect(metricValue(TEXT, 'gossip_learn_backend_tensor_bytes')).toBeNaN()
    const s = parseSample(TEXT, 42)
    expect(s).toEqual({
      t: 42,
      rss: 140 * MIB,
      heapUsed: 32 * MIB,
      external: 5e6,
      wasm: 16 * MIB,
      tensors: 23,
      steps: 1200,
      received: 40,
    })
  })

  it('fits a least-squares slope that one outlier does not decide', () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2)
    expect(slope([0, 1, 2, 3, 4], [0, 1, 2, 3, 14])).toBeCloseTo(3)
    expect(slope([1, 1], [0, 5])).toBeNaN()
    expect(slope([1], [1])).toBeNaN()
  })

  it('measures growth from the first sample after the warm-up, in MiB and MiB an hour', () => {
    // 130 MiB while warming up, then 10 MiB an hour from 140 MiB at 600 s.
    const samples = [
      sample(0, 130),
      ...[600, 1800, 3000, 4200].map((t) => sample(t, 140 + ((t - 600) / 3600) * 10)),
    ]
    const g = growth(samples, 600)!
    expect(g.warmS).toBe(600)
    expect(g.endS).toBe(4200)
    expect(g.rssWarm).toBeCloseTo(140)
    expect(g.rssEnd).toBeCloseTo(150)
    expect(g.ratio).toBeCloseTo(150 / 140)
    expect(g.perHour.rss).toBeCloseTo(10)
    expect(g.perHour.heapUsed).toBeCloseTo(0)
    expect(g.tensorsEnd).toBe(23)
    expect(growth(samples, 4000)).toBeUndefined()
  })
})
