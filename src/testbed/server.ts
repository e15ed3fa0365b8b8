/**
 * The testbed's live page: one page for the whole run (every peer's curve, traffic, who sends to
 * whom; then the baseline run, if any), served on 127.0.0.1 while the testbed runs. It polls
 * GET /api/run, which answers the latest progress the testbed reported.
 */

import { assetRoutes } from '../node/dashboard/assets.ts'
import { json, startHttpServer } from '../node/http.ts'
import { renderLivePage, runPageAssets } from './report/index.ts'
import type { RunPhase, TestbedResult } from './result.ts'

/** What GET /api/run answers. */
export interface LiveRunView {
  phase: RunPhase
  /** The gossip run so far (with the baseline run so far under `baseline`); null before the first poll. */
  result: TestbedResult | null
  /** The run of the current phase (for its elapsed time). */
  phaseResult: TestbedResult | null
  /** The testbed has finished: the page stops polling. */
  done: boolean
}

export interface RunServer {
  port: number
  url: string
  /** The testbed's progress hook. */
  update(phase: RunPhase, result: TestbedResult): void
  /** The final result (with its baseline): the page shows it and stops polling. */
  finish(result: TestbedResult): void
  close(): Promise<void>
}

/** Serve the live page on `host:port` (port 0: any free port). */
export async function startRunServer(init: { port: number; host?: string }): Promise<RunServer> {
  const host = init.host ?? '127.0.0.1'
  let view: LiveRunView = { phase: 'gossip', result: null, phaseResult: null, done: false }
  let gossip: TestbedResult | null = null
  const server = await startHttpServer({
    port: init.port,
    host,
    routes: { ...assetRoutes(runPageAssets(), renderLivePage()), '/api/run': () => json(view) },
  })
  return {
    port: server.port,
    url: `http://${host}:${server.port}/`,
    update(phase, result) {
      if (phase === 'gossip') gossip = result
      const shown = phase === 'baseline' && gossip !== null ? { ...gossip, baseline: result } : result
      view = { phase, result: shown, phaseResult: result, done: false }
    },
    finish(result) {
      view = { phase: view.phase, result, phaseResult: result.baseline ?? result, done: true }
    },
    close: () => server.close(),
  }
}
