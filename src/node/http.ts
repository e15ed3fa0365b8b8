/**
 * The daemon's optional HTTP endpoint: GET /status (JSON), GET /metrics (Prometheus text) and the
 * live dashboard (GET /, its JSON feed and its scripts). The testbed serves its run page through
 * the same small router.
 */
import { createServer, type Server } from 'node:http'

/** What a route answers. */
export interface HttpResponse {
  status?: number
  type: string
  body: string | Uint8Array
  /** Seconds a browser may cache the answer; default 0 (no-store). */
  maxAgeS?: number
}

/** A GET handler for one path. */
export type RouteHandler = (url: URL) => HttpResponse | Promise<HttpResponse>

export interface HttpServer {
  port: number
  close(): Promise<void>
}

/** Back-compat name: the daemon's server. */
export type StatusServer = HttpServer

/** A JSON answer (with a trailing newline, for curl). */
export function json(value: unknown): HttpResponse {
  return { type: 'application/json', body: `${JSON.stringify(value)}\n` }
}

/** Serve `routes` (GET only) on `host:port`; port 0 picks a free one. */
export async function startHttpServer(init: {
  port: number
  host?: string
  routes: Record<string, RouteHandler>
}): Promise<HttpServer> {
  const paths = Object.keys(init.routes).sort()
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end()
      return
    }
    const handler = init.routes[url.pathname]
    if (handler === undefined) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(`${JSON.stringify({ error: `not found; try GET ${paths.join(', ')}` })}\n`)
      return
    }
    const fail = (err: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(`${JSON.stringify({ error: (err as Error)?.message ?? String(err) })}\n`)
    }
    let answer: HttpResponse | Promise<HttpResponse>
    try {
      answer = handler(url)
    } catch (err) {
      fail(err)
      return
    }
    Promise.resolve(answer).then((r) => {
      res.writeHead(r.status ?? 200, {
        'content-type': r.type,
        'cache-control': r.maxAgeS !== undefined ? `max-age=${r.maxAgeS}` : 'no-store',
      })
      res.end(r.body)
    }, fail)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.port, init.host ?? '0.0.0.0', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : init.port
  let closing: Promise<void> | undefined
  return {
    port,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
      return closing
    },
  }
}

/**
 * The daemon's server: GET /status always; GET /metrics with `metrics`; the dashboard routes
 * (GET /, its feed and scripts) with `dashboard`.
 */
export async function startStatusServer(init: {
  port: number
  host?: string
  status: () => unknown
  metrics?: { scrape(): Promise<string>; contentType: string }
  dashboard?: Record<string, RouteHandler>
}): Promise<HttpServer> {
  const routes: Record<string, RouteHandler> = { ...init.dashboard, '/status': () => json(init.status()) }
  const metrics = init.metrics
  if (metrics !== undefined) {
    routes['/metrics'] = async () => ({ type: metrics.contentType, body: await metrics.scrape() })
  }
  return startHttpServer({ port: init.port, host: init.host, routes })
}
