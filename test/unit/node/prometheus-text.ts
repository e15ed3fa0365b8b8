/**
 * Parse Prometheus text format with the reference parser of the Prometheus project's Python client
 * (`prometheus_client.parser`, Debian's python3-prometheus-client, installed by .ci/run). It is
 * strict: a malformed line raises, and it groups histogram samples by labels correctly (the npm
 * parsers tried drop labelled histogram samples). Counter families are named without `_total`,
 * as in OpenMetrics; their samples keep it.
 */
import { execFile } from 'node:child_process'

export interface Sample {
  name: string
  labels: Record<string, string>
  /** NaN and +-Inf as numbers. */
  value: number
}

export interface Family {
  name: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'info' | 'stateset' | 'unknown'
  help: string
  samples: Sample[]
}

const PYTHON = '/usr/bin/python3'

const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({'name': f.name, 'type': f.type, 'help': f.documentation, 'samples': [
        {'name': s.name, 'labels': s.labels, 'value': s.value if math.isfinite(s.value) else repr(s.value)}
        for s in f.samples]})
json.dump(out, sys.stdout)
`

/** Parse `text`; rejects with the parser's error on any malformed line. */
export function parsePrometheusText(text: string): Promise<Family[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ['-c', SCRIPT], { maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(
          new Error(`prometheus_client.parser failed: ${stderr.trim().split('\n').pop() ?? err.message}`),
        )
        return
      }
      const families = JSON.parse(stdout) as Array<Family & { samples: Array<{ value: number | string }> }>
      for (const f of families) for (const s of f.samples) s.value = Number(s.value)
      resolve(families as Family[])
    })
    child.stdin?.end(text)
  })
}

/** The families by name (counters under their name without `_total`). */
export async function parseByName(text: string): Promise<Map<string, Family>> {
  return new Map((await parsePrometheusText(text)).map((f) => [f.name, f]))
}

/** The value of the first sample named `sample` whose labels include `labels`. */
export function sampleValue(
  families: Map<string, Family>,
  sample: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value
    }
  }
  return undefined
}
