/**
 * The files every gossip-learn page is made of: the charting library (Observable Plot and d3, read
 * from their npm packages and served by us: no CDN, pages work offline), our shared chart code and
 * style, and each page's own script. Pages are either served (routes under /assets/) or written
 * as one self-contained HTML file with everything inlined (the testbed report).
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HttpResponse, RouteHandler } from '../http.ts'

/** A script or stylesheet of a page, by the name it is served under. */
export interface Asset {
  name: string
  type: 'text/javascript' | 'text/css'
  text: string
}

const require = createRequire(import.meta.url)

/** The browser bundle an npm package ships for CDNs (its `jsdelivr` field), read from node_modules. */
function packageBundle(pkg: string): string {
  let dir = dirname(require.resolve(pkg))
  for (;;) {
    try {
      const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string
        jsdelivr?: string
      }
      if (meta.name === pkg && meta.jsdelivr !== undefined)
        return readFileSync(join(dir, meta.jsdelivr), 'utf8')
    } catch {
      // no package.json at this level
    }
    const up = dirname(dir)
    if (up === dir) throw new Error(`cannot find the browser bundle of ${pkg}`)
    dir = up
  }
}

const here = dirname(fileURLToPath(import.meta.url))
const cache = new Map<string, string>()

function cached(key: string, load: () => string): string {
  let v = cache.get(key)
  if (v === undefined) {
    v = load()
    cache.set(key, v)
  }
  return v
}

/** `file` in directory `dir` (a page's own script or style). */
export function localAsset(dir: string, file: string): Asset {
  const path = join(dir, file)
  return {
    name: file,
    type: file.endsWith('.css') ? 'text/css' : 'text/javascript',
    text: cached(path, () => readFileSync(path, 'utf8')),
  }
}

/** d3, Observable Plot, our chart code and the shared style, in load order. */
export function chartAssets(): Asset[] {
  return [
    { name: 'd3.min.js', type: 'text/javascript', text: cached('d3', () => packageBundle('d3')) },
    {
      name: 'plot.umd.min.js',
      type: 'text/javascript',
      text: cached('plot', () => packageBundle('@observablehq/plot')),
    },
    localAsset(here, 'charts.js'),
    localAsset(here, 'style.css'),
  ]
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** `text` safe inside a <script> or <style> element (no closing tag, no HTML comment opener). */
const inlineSafe = (text: string): string =>
  text.replace(/<\/(script|style)/gi, '<\\/$1').replace(/<!--/g, '<\\!--')

/**
 * A page's HTML. `inline`: every asset and `data` embedded (a self-contained file); otherwise
 * assets are linked under /assets/ and the page fetches its data.
 */
export function renderPage(init: {
  title: string
  assets: Asset[]
  inline: boolean
  data?: unknown
  body?: string
}): string {
  const head: string[] = []
  const scripts: string[] = []
  for (const a of init.assets) {
    if (a.type === 'text/css') {
      head.push(
        init.inline
          ? `<style>\n${inlineSafe(a.text)}\n</style>`
          : `<link rel="stylesheet" href="/assets/${a.name}">`,
      )
    } else {
      scripts.push(
        init.inline
          ? `<script>\n${inlineSafe(a.text)}\n</script>`
          : `<script src="/assets/${a.name}"></script>`,
      )
    }
  }
  const data =
    init.data !== undefined
      ? `<script type="application/json" id="page-data">${JSON.stringify(init.data).replace(/</g, '\\u003c')}</script>`
      : ''
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(init.title)}</title>`,
    ...head,
    '</head><body>',
    init.body ?? '<main id="app"><p class="status">loading…</p></main>',
    data,
    ...scripts,
    '</body></html>',
    '',
  ].join('\n')
}

/** Routes serving `assets` under /assets/ (cached by browsers for an hour) and `page` at `/`. */
export function assetRoutes(assets: Asset[], page: string): Record<string, RouteHandler> {
  const routes: Record<string, RouteHandler> = {
    '/': (): HttpResponse => ({ type: 'text/html; charset=utf-8', body: page }),
    // Browsers ask for it; an empty answer keeps their consoles free of 404s.
    '/favicon.ico': (): HttpResponse => ({ status: 204, type: 'image/x-icon', body: '', maxAgeS: 86400 }),
  }
  for (const a of assets) {
    const r: HttpResponse = { type: `${a.type}; charset=utf-8`, body: a.text, maxAgeS: 3600 }
    routes[`/assets/${a.name}`] = () => r
  }
  return routes
}
