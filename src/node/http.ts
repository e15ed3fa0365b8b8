/** Optional HTTP endpoint: GET /status as JSON for people, scripts and the testbed. */
import { createServer, type Server } from 'node:http'

export interface StatusServer {
  port: number
  close(): Promise<void>
}

/** Serve `status()` at GET /status on `host:port` (port 0 picks a free one). */
export async function startStatusServer(init: {
  port: number
  host?: string
  status: () => unknown
}): Promise<StatusServer> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end()
      return
    }
    if (url.pathname !== '/status') {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"error":"not found; try GET /status"}\n')
      return
    }
    let body: string
    try {
      body = `${JSON.stringify(init.status())}\n`
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: (err as Error).message }))
      return
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body)
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
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
