/**
 * The testbed's page: every peer's learning curve, the mean with its spread (and the no-gossip
 * baseline), traffic and models per peer, who sent models to whom, rejections and, under WAN
 * emulation, the traffic between regions. One script for two uses: the HTML report (the run is
 * inlined as #page-data) and the live page of a running testbed (it polls /api/run).
 * Browser script; uses window.GossipCharts (charts.js).
 */
;(() => {
  const POLL_MS = 2000
  const C = window.GossipCharts
  const app = document.getElementById('app')

  const mib = (b) => b / 2 ** 20
  const pct = (a) => (a === null || a === undefined ? '-' : `${(a * 100).toFixed(1)}%`)
  const sum = (xs) => xs.reduce((a, b) => a + b, 0)
  const peerName = (p) => `peer ${p.index}${p.region ? ` (${p.region})` : ''}`

  function el(tag, attrs, children) {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (k === 'text') e.textContent = v
      else e.setAttribute(k, v)
    }
    for (const c of children ?? []) if (c) e.appendChild(c)
    return e
  }

  const tile = (key, value, id) =>
    el('div', { class: 'tile', 'data-tile': id }, [
      el('div', { class: 'v', text: value }),
      el('div', { class: 'k', text: key }),
    ])

  /** Grid step for the mean/spread: ~200 points over the run, at least the poll period. */
  function gridStep(result) {
    const end = Math.max(1, ...result.peers.flatMap((p) => p.series.map((s) => s.t)))
    return Math.max((result.config.pollMs ?? 1000) / 1000, end / 200)
  }

  function spreadOf(result) {
    const curves = result.peers.map((p) =>
      p.series.filter((s) => s.accuracy !== null).map((s) => [s.t, s.accuracy]),
    )
    return C.spread(curves, gridStep(result))
  }

  function configLine(r) {
    const c = r.config
    return [
      `${r.peers.length} peers`,
      `${Math.round(r.durationS)} s`,
      c.dataset,
      c.model + (c.hidden ? ` (hidden ${c.hidden})` : ''),
      c.partition,
      `merge ${c.merge}`,
      `sampler ${c.sampler}`,
      c.codec ? `codec ${c.codec}` : null,
      `K ${c.stepsPerRound}, fanout ${c.fanout}`,
      c.gossip ? null : 'no gossip',
      c.regions ? `regions ${c.regions}` : r.links ? 'WAN emulation' : null,
    ]
      .filter(Boolean)
      .join(' · ')
  }

  function render(view) {
    const r = view.result
    const base = r.baseline
    const live = view.live === true
    const title = el('h1', { text: live ? 'gossip-learn testbed (live)' : 'gossip-learn testbed report' })
    const when = live
      ? `${view.phase === 'baseline' ? 'baseline run (no gossip)' : 'gossip run'} · t = ${Math.round(view.phaseResult?.durationS ?? r.durationS)} s${view.done ? ' · finished' : ''}`
      : `run of ${r.config.startedAt}`
    const sub = el('p', { class: 'sub', text: `${configLine(r)} · ${when}` })

    const rejected = sum(r.peers.map((p) => sum(Object.values(p.rejected ?? {}))))
    const tiles = el('div', { class: 'tiles' }, [
      tile('mean final accuracy', pct(r.meanFinalAccuracy), 'mean'),
      tile('worst peer', pct(r.minFinalAccuracy), 'min'),
      base ? tile('baseline mean (no gossip)', pct(base.meanFinalAccuracy), 'baseline-mean') : null,
      base ? tile('baseline worst peer', pct(base.minFinalAccuracy), 'baseline-min') : null,
      tile('models exchanged', String(sum(r.peers.map((p) => p.modelsReceived))), 'models'),
      tile('MiB sent (all peers)', mib(sum(r.peers.map((p) => p.bytesSent))).toFixed(1), 'bytes'),
      tile('rejected inputs', String(rejected), 'rejected'),
    ])

    const t = { label: 'seconds since every peer was up' }
    const perPeer = C.lines({
      id: 'accuracy-peers',
      title: 'Test accuracy of every peer',
      x: t,
      y: { label: 'accuracy %', percent: true },
      series: r.peers.map((p) => ({
        name: peerName(p),
        points: p.series.map((s) => [s.t, s.accuracy]),
        width: 1.2,
      })),
      emptyText: 'no evaluation yet',
    })
    const g = spreadOf(r)
    const meanSeries = [
      { name: 'gossip: mean', points: g.map((p) => [p[0], p[1]]), width: 2.4, color: '#4e79a7' },
    ]
    const bands = [{ name: 'gossip: mean', points: g.map((p) => [p[0], p[2], p[3]]) }]
    if (base) {
      const b = spreadOf(base)
      meanSeries.push({
        name: 'no gossip: mean',
        points: b.map((p) => [p[0], p[1]]),
        width: 2.4,
        dashed: true,
        color: '#e15759',
      })
      bands.push({ name: 'no gossip: mean', points: b.map((p) => [p[0], p[2], p[3]]) })
    }
    const mean = C.lines({
      id: 'accuracy-mean',
      title: base
        ? 'Mean accuracy with its spread (min-max), gossip vs the same peers alone'
        : 'Mean accuracy with its spread (min-max)',
      note: base
        ? null
        : r.config.baseline
          ? 'The baseline (the same peers trained alone) runs after this run.'
          : 'Run with --baseline to add the same peers trained alone (--no-gossip).',
      x: t,
      y: { label: 'accuracy %', percent: true },
      series: meanSeries,
      bands,
      emptyText: 'no evaluation yet',
    })

    const peersLabel = r.peers.map((p) => `peer ${p.index}`)
    const bytes = C.bars({
      id: 'bytes-per-peer',
      title: 'Model traffic per peer',
      x: { label: 'peer' },
      y: { label: 'MiB' },
      rows: r.peers.flatMap((p) => [
        { group: `peer ${p.index}`, key: 'sent', value: mib(p.bytesSent) },
        { group: `peer ${p.index}`, key: 'received', value: mib(p.bytesReceived) },
      ]),
    })
    const models = C.bars({
      id: 'models-per-peer',
      title: 'Models exchanged per peer',
      x: { label: 'peer' },
      y: { label: 'models' },
      rows: r.peers.flatMap((p) => [
        { group: `peer ${p.index}`, key: 'sent', value: p.modelsSent },
        { group: `peer ${p.index}`, key: 'received', value: p.modelsReceived },
        { group: `peer ${p.index}`, key: 'merges', value: p.merges },
      ]),
    })
    const indexOf = Object.fromEntries(r.peers.map((p) => [p.peerId, `peer ${p.index}`]))
    const exchanges = C.cells({
      id: 'exchanges',
      title: 'Models received, by receiver and sender',
      x: { label: 'sender', domain: peersLabel },
      y: { label: 'receiver', domain: peersLabel },
      cells: r.peers.flatMap((p) =>
        Object.entries(p.modelsReceivedFrom ?? {})
          .filter(([id]) => indexOf[id] !== undefined)
          .map(([id, n]) => ({ x: indexOf[id], y: `peer ${p.index}`, value: n })),
      ),
      emptyText: r.config.gossip ? 'no model exchanged yet' : 'no gossip in this run',
    })
    const reasons = [...new Set(r.peers.flatMap((p) => Object.keys(p.rejected ?? {})))]
    const rejections = C.bars({
      id: 'rejections',
      title: 'Rejected inputs per peer, by reason',
      x: { label: 'peer' },
      y: { label: 'rejected' },
      rows: r.peers.flatMap((p) =>
        reasons.map((k) => ({ group: `peer ${p.index}`, key: k, value: p.rejected?.[k] ?? 0 })),
      ),
      emptyText: 'no input was rejected',
    })

    const sections = [
      title,
      sub,
      tiles,
      el('div', { class: 'grid' }, [perPeer, mean]),
      el('h2', { text: 'Traffic and exchanges' }),
      el('div', { class: 'grid' }, [bytes, models, exchanges, rejections]),
    ]

    if (r.links || r.peers.some((p) => p.region)) {
      const regionOf = Object.fromEntries(r.peers.map((p) => [p.peerId, p.region]))
      const regions = [
        ...new Set([...Object.keys(r.links?.regions ?? {}), ...r.peers.map((p) => p.region).filter(Boolean)]),
      ]
      const matrix = {}
      for (const p of r.peers) {
        for (const [to, b] of Object.entries(p.bytesSentByRegion ?? {})) {
          const key = `${p.region}|${to}`
          matrix[key] = (matrix[key] ?? 0) + b
        }
      }
      const intra = sum(r.peers.map((p) => p.bytesSentIntraRegion ?? 0))
      const inter = sum(r.peers.map((p) => p.bytesSentInterRegion ?? 0))
      const share =
        intra + inter > 0
          ? `${((inter / (intra + inter)) * 100).toFixed(1)}% of the bytes crossed regions`
          : null
      sections.push(
        el('h2', { text: 'Wide-area emulation' }),
        el('div', { class: 'grid' }, [
          C.cells({
            id: 'region-traffic',
            title: 'Traffic between regions (MiB, sender region -> receiver region)',
            note: share,
            x: { label: 'to region', domain: regions },
            y: { label: 'from region', domain: regions },
            cells: Object.entries(matrix).map(([k, v]) => {
              const [from, to] = k.split('|')
              return { x: to, y: from, value: v }
            }),
            format: 'mib',
          }),
          C.dots({
            id: 'coordinates',
            title: 'Final Vivaldi coordinates (ms)',
            x: { label: 'x (ms)' },
            y: { label: 'y (ms)' },
            points: r.peers
              .filter((p) => p.coordinate)
              .map((p) => ({
                x: p.coordinate.vec[0],
                y: p.coordinate.vec[1],
                label: `${p.index}`,
                group: regionOf[p.peerId] ?? 'peers',
              })),
          }),
        ]),
      )
    }

    sections.push(el('h2', { text: 'Peers' }), peerTable(r, base))
    app.replaceChildren(...sections)
  }

  function peerTable(r, base) {
    const head = [
      'peer',
      'peer id',
      'region',
      'samples',
      'final accuracy',
      base ? 'alone (baseline)' : null,
      'steps',
      'models out',
      'models in',
      'merges',
      'MiB out',
      'MiB in',
      'rejected',
    ].filter((h) => h !== null)
    const baseByIndex = Object.fromEntries((base?.peers ?? []).map((p) => [p.index, p]))
    const rows = r.peers.map((p) =>
      el(
        'tr',
        { 'data-peer': String(p.index) },
        [
          String(p.index),
          `…${p.peerId.slice(-10)}`,
          p.region ?? '-',
          String(p.trainSamples),
          pct(p.finalAccuracy),
          base ? pct(baseByIndex[p.index]?.finalAccuracy) : null,
          String(p.steps),
          String(p.modelsSent),
          String(p.modelsReceived),
          String(p.merges),
          mib(p.bytesSent).toFixed(1),
          mib(p.bytesReceived).toFixed(1),
          String(sum(Object.values(p.rejected ?? {}))),
        ]
          .filter((c) => c !== null)
          .map((c, i) => el('td', { class: i === 1 || i === 2 ? 'l mono' : '', text: c })),
      ),
    )
    return el('table', { id: 'peers' }, [
      el(
        'tr',
        {},
        head.map((h, i) => el('th', { class: i === 1 || i === 2 ? 'l' : '', text: h })),
      ),
      ...rows,
    ])
  }

  const inlined = document.getElementById('page-data')
  if (inlined) {
    render({ result: JSON.parse(inlined.textContent) })
    return
  }

  async function poll() {
    let done = false
    try {
      const res = await fetch('/api/run', { cache: 'no-store' })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const view = await res.json()
      done = view.done === true
      if (view.result) render({ ...view, live: true })
      else app.replaceChildren(el('p', { class: 'status', text: 'waiting for the peers to start…' }))
    } catch (err) {
      const s = el('p', { class: 'status error', text: `cannot reach the testbed: ${err.message}` })
      app.appendChild(s)
    }
    if (!done) setTimeout(poll, POLL_MS)
  }
  poll()
})()
