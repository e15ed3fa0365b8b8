/**
 * The daemon's live dashboard (GET /): polls /api/dashboard for the points recorded since its
 * last poll and redraws the learning curve, traffic, merges and the peers in view.
 * Browser script; uses window.GossipCharts (charts.js).
 */
;(() => {
  const POLL_MS = 2000
  const C = window.GossipCharts
  const app = document.getElementById('app')
  const history = []
  let last

  const short = (id) => (id ? `…${id.slice(-8)}` : '-')
  const mib = (b) => (b / 2 ** 20).toFixed(1)
  const pct = (a) => (a === null || a === undefined ? '-' : `${(a * 100).toFixed(1)}%`)
  const num = (v, d = 0) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d))

  function el(tag, attrs, children) {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (k === 'text') e.textContent = v
      else e.setAttribute(k, v)
    }
    for (const c of children ?? []) e.appendChild(c)
    return e
  }

  function tile(key, value, id) {
    return el('div', { class: 'tile', 'data-tile': id }, [
      el('div', { class: 'v', text: value }),
      el('div', { class: 'k', text: key }),
    ])
  }

  /** Per-second rates of a cumulative counter between consecutive points. */
  function rate(field, scale = 1) {
    const out = []
    for (let i = 1; i < history.length; i++) {
      const a = history[i - 1]
      const b = history[i]
      const dt = b.t - a.t
      if (dt > 0) out.push([b.t, (b[field] - a[field]) / dt / scale])
    }
    return out
  }

  function render(d) {
    const n = d.node
    const h1 = el('h1', { text: `gossip-learn node ${short(n.peerId)}` })
    const facts = [
      n.task,
      n.arch.split('|')[0],
      `backend ${n.backend}`,
      `merge ${n.merge}`,
      `sampler ${n.sampler}`,
      n.gossip ? null : 'no gossip',
      n.region ? `region ${n.region}` : null,
      `up ${Math.round(n.uptimeS)} s`,
    ].filter(Boolean)
    const sub = el('p', { class: 'sub' }, [
      el('code', { text: n.peerId }),
      document.createTextNode(` · ${facts.join(' · ')}`),
    ])
    const rejected = Object.values(n.rejected ?? {}).reduce((a, b) => a + b, 0)
    const tiles = el('div', { class: 'tiles' }, [
      tile('accuracy', pct(n.lastAccuracy), 'accuracy'),
      tile('loss', num(n.lastLoss, 3), 'loss'),
      tile('age (samples)', String(n.age), 'age'),
      tile('steps', String(n.steps), 'steps'),
      tile('peers in view / connected', `${n.viewSize} / ${n.connectedPeers.length}`, 'peers'),
      tile('models out / in', `${n.modelsSent} / ${n.modelsReceived}`, 'models'),
      tile('MiB out / in', `${mib(n.bytesSent)} / ${mib(n.bytesReceived)}`, 'bytes'),
      tile('merges', String(n.merges), 'merges'),
      tile('rejected', String(rejected), 'rejected'),
    ])
    const t = { label: 'seconds since start' }
    const charts = el('div', { class: 'grid' }, [
      C.lines({
        id: 'accuracy',
        title: 'Test accuracy',
        x: t,
        y: { label: 'accuracy %', percent: true },
        series: [{ name: 'accuracy', points: history.map((p) => [p.t, p.accuracy]) }],
        emptyText: 'no evaluation yet',
      }),
      C.lines({
        id: 'loss',
        title: 'Training loss (last round)',
        x: t,
        y: { label: 'loss' },
        series: [{ name: 'loss', points: history.map((p) => [p.t, p.loss]), color: '#e15759' }],
      }),
      C.lines({
        id: 'models-rate',
        title: 'Models per second',
        x: t,
        y: { label: 'models / s' },
        series: [
          { name: 'sent', points: rate('modelsSent') },
          { name: 'received', points: rate('modelsReceived') },
          { name: 'merged', points: rate('merges'), dashed: true },
        ],
      }),
      C.lines({
        id: 'bytes-rate',
        title: 'Model traffic',
        x: t,
        y: { label: 'MiB / s' },
        series: [
          { name: 'out', points: rate('bytesSent', 2 ** 20) },
          { name: 'in', points: rate('bytesReceived', 2 ** 20) },
        ],
      }),
      C.lines({
        id: 'merges',
        title: 'Merges and rejections (total since start)',
        x: t,
        y: { label: 'count' },
        series: [
          { name: 'merges', points: history.map((p) => [p.t, p.merges]) },
          { name: 'rejected', points: history.map((p) => [p.t, p.rejected]), color: '#e15759' },
        ],
      }),
      C.dots({
        id: 'coordinates',
        title: 'Network coordinates (Vivaldi, ms)',
        x: { label: 'x (ms)' },
        y: { label: 'y (ms)' },
        points: [
          ...(n.coordinate
            ? [
                {
                  x: n.coordinate.vec[0],
                  y: n.coordinate.vec[1],
                  label: 'me',
                  group: n.region ?? 'peers',
                  self: true,
                },
              ]
            : []),
          ...d.peers
            .filter((p) => p.coordinate)
            .map((p) => ({
              x: p.coordinate.vec[0],
              y: p.coordinate.vec[1],
              label: short(p.peerId),
              group: p.region ?? 'peers',
            })),
        ],
      }),
    ])
    const rows = d.peers.map((p) =>
      el('tr', { 'data-peer': p.peerId }, [
        el('td', { class: 'l mono', text: short(p.peerId), title: p.peerId }),
        el('td', { text: p.connected ? 'yes' : 'no' }),
        el('td', {
          text:
            p.rttMs !== undefined
              ? num(p.rttMs, 1)
              : p.predictedRttMs !== undefined
                ? `~${num(p.predictedRttMs, 1)}`
                : '-',
        }),
        el('td', { class: 'l', text: p.region ?? '-' }),
        el('td', {
          class: 'mono',
          text: p.coordinate
            ? `${num(p.coordinate.vec[0], 1)}, ${num(p.coordinate.vec[1], 1)}, h ${num(p.coordinate.height, 1)}`
            : '-',
        }),
        el('td', { text: pct(p.accuracy) }),
        el('td', { text: String(p.age ?? '-') }),
        el('td', { text: num(p.lastSeenS, 0) }),
      ]),
    )
    const head = [
      'peer',
      'connected',
      'RTT ms (~ predicted)',
      'region',
      'coordinate (x, y, height)',
      'accuracy',
      'age',
      'seen s ago',
    ]
    const table = el('table', { id: 'peers' }, [
      el(
        'tr',
        {},
        head.map((h, i) => el('th', { class: i === 0 || i === 3 ? 'l' : '', text: h })),
      ),
      ...rows,
    ])
    const peers =
      d.peers.length > 0 ? table : el('p', { class: 'empty', id: 'peers', text: 'no peer in view yet' })
    const status = el('p', {
      class: 'status',
      id: 'status',
      text: `updated ${new Date().toLocaleTimeString()} · polling every ${POLL_MS / 1000} s`,
    })
    app.replaceChildren(
      h1,
      sub,
      tiles,
      charts,
      el('h2', { text: `Peers in view (${d.peers.length})` }),
      peers,
      status,
    )
  }

  async function poll() {
    try {
      const since = history.length > 0 ? `?since=${history[history.length - 1].t}` : ''
      const res = await fetch(`/api/dashboard${since}`, { cache: 'no-store' })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const d = await res.json()
      history.push(...d.history)
      last = d
      render(d)
    } catch (err) {
      const s = document.getElementById('status') ?? app.appendChild(el('p', { id: 'status' }))
      s.className = 'status error'
      s.textContent = `cannot reach the node: ${err.message}${last ? ' (showing the last data)' : ''}`
    }
    setTimeout(poll, POLL_MS)
  }
  poll()
})()
