/**
 * The daemon's live dashboard: GET / (the page), GET /api/dashboard?since=T (its feed: the node's
 * status, the peers in view and the history points newer than T) and the page's scripts. The page
 * polls; the node only records a history point every few seconds and answers the polls.
 */
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Coordinate } from '../../gossip/topology/vivaldi.ts'
import type { NodeStatus } from '../daemon.ts'
import { json, type RouteHandler } from '../http.ts'
import { assetRoutes, chartAssets, localAsset, renderPage } from './assets.ts'
import { HISTORY_INTERVAL_MS, History, type HistoryPoint } from './history.ts'

export { HISTORY_INTERVAL_MS, History, type HistoryPoint } from './history.ts'

/** A peer in the view, as the dashboard lists it. */
export interface DashboardPeer {
  peerId: string
  connected: boolean
  /** Measured (filtered) RTT in ms. */
  rttMs?: number
  /** RTT predicted from Vivaldi coordinates, for peers not pinged yet. */
  predictedRttMs?: number
  region?: string
  coordinate?: Coordinate
  accuracy?: number
  age?: number
  /** Seconds since the last sign of life. */
  lastSeenS: number
}

/** What GET /api/dashboard answers. */
export interface DashboardFeed {
  node: NodeStatus
  peers: DashboardPeer[]
  history: HistoryPoint[]
}

/** The part of a node's status a history point keeps. */
export type HistorySource = Pick<
  NodeStatus,
  | 'lastAccuracy'
  | 'lastLoss'
  | 'age'
  | 'steps'
  | 'modelsSent'
  | 'modelsReceived'
  | 'bytesSent'
  | 'bytesReceived'
  | 'merges'
  | 'rejected'
  | 'viewSize'
>

/** The history point of a status taken `t` seconds after start. */
export function historyPoint(s: HistorySource, t: number): HistoryPoint {
  return {
    t: Math.round(t * 10) / 10,
    accuracy: s.lastAccuracy ?? null,
    loss: s.lastLoss ?? null,
    age: s.age,
    steps: s.steps,
    modelsSent: s.modelsSent,
    modelsReceived: s.modelsReceived,
    bytesSent: s.bytesSent,
    bytesReceived: s.bytesReceived,
    merges: s.merges,
    rejected: Object.values(s.rejected).reduce((a, b) => a + b, 0),
    viewSize: s.viewSize,
  }
}

/**
 * Record a history point of `source()` every `intervalMs` from now on (unref'd timer); `stop()`
 * ends it. Give it only what a point keeps: building a daemon's whole /status every 2 s took
 * 1.8 % of a 128-peer host's CPU (docs/BENCHMARKS.md, Scale).
 */
export function recordHistory(
  source: () => HistorySource,
  init: { intervalMs?: number; startedAt?: number } = {},
): { history: History; stop(): void } {
  const history = new History()
  const startedAt = init.startedAt ?? Date.now()
  const sample = () => {
    let s: HistorySource
    try {
      s = source()
    } catch {
      return // the node is still starting or already stopping; the next tick records it
    }
    history.push(historyPoint(s, (Date.now() - startedAt) / 1000))
  }
  const timer = setInterval(sample, init.intervalMs ?? HISTORY_INTERVAL_MS)
  timer.unref()
  return { history, stop: () => clearInterval(timer) }
}

/** The dashboard's routes (merge them into the daemon's HTTP server). */
export function dashboardRoutes(sources: {
  status: () => NodeStatus
  peers: () => DashboardPeer[]
  history: History
}): Record<string, RouteHandler> {
  const here = dirname(fileURLToPath(import.meta.url))
  const assets = [...chartAssets(), localAsset(here, 'dashboard.js')]
  const page = renderPage({ title: 'gossip-learn node', assets, inline: false })
  return {
    ...assetRoutes(assets, page),
    '/api/dashboard': (url) => {
      const since = url.searchParams.get('since')
      const feed: DashboardFeed = {
        node: sources.status(),
        peers: sources.peers(),
        history: sources.history.since(since !== null ? Number(since) : undefined),
      }
      return json(feed)
    },
  }
}
