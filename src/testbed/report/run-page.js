/**
 * The testbed's page: every peer's learning curve, the mean with its spread (and the no-gossip
 * baseline), traffic and models per peer, who sent models to whom, rejections and, under WAN
 * emulation, the traffic between regions. Under churn, intervals with peers down are shaded, the
 * mean is over the initial peers up at the time, and late joiners get their own mean and rows. One script for two uses: the HTML report (the run is
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
  const peerName = (p) =>
    `peer ${p.index}${p.region ? ` (${p.region})` : ''}${p.lateJoiner ? ' (late joiner)' : ''}`
  const secs = (v) => `${v.toFixed(1)} s`

  /** Up at `x` s: joined by then and not in one of its down intervals. */
  function upAt(p, x) {
    if (p.lateJoiner && (p.joinedAt === undefined || x < p.joinedAt)) return false
    return !(p.down ?? []).some((d) => x >= d.from && x < d.to)
  }

  /** The peer's availability in words, for the table: "up", "down 50.0-80.0 s", "joined 60.0 s". */
  function availability(p) {
    const parts = []
    if (p.lateJoiner) parts.push(p.joinedAt === undefined ? 'never joined' : `joined ${secs(p.joinedAt)}`)
    for (const d of p.down ?? []) {
      const open = p.alive === false && d === p.down.at(-1)
      parts.push(open ? `down from ${secs(d.from)}` : `down ${d.from.toFixed(1)}-${secs(d.to)}`)
    }
    return parts.length > 0 ? parts.join(', ') : 'up'
  }

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
    const initial = result.peers.filter((p) => !p.lateJoiner)
    if (!initial.some((p) => (p.down ?? []).length > 0)) {
      const curves = initial.map((p) =>
        p.series.filter((s) => s.accuracy !== null).map((s) => [s.t, s.accuracy]),
      )
      return C.spread(curves, gridStep(result))
    }
    return spreadUp(initial, gridStep(result), true)
  }

  /**
   * Mean, min and max over the peers up at each grid point, each at its latest accuracy:
   * [[x, mean, min, max], ...]. `all`: only where every peer up has evaluated (the start of a run).
   */
  function spreadUp(peers, step, all) {
    const curves = peers.map((p) => p.series.filter((s) => s.accuracy !== null).map((s) => [s.t, s.accuracy]))
    const end = Math.max(0, ...curves.flatMap((c) => c.map((q) => q[0])))
    const cursor = curves.map(() => -1)
    const out = []
    for (let x = 0; x <= end + 1e-9; x += step) {
      const vals = []
      let missing = 0
      curves.forEach((c, i) => {
        while (cursor[i] + 1 < c.length && c[cursor[i] + 1][0] <= x) cursor[i]++
        if (!upAt(peers[i], x)) return
        if (cursor[i] >= 0) vals.push(c[cursor[i]][1])
        else missing++
      })
      if (vals.length > 0 && (!all || missing === 0)) {
        const m = sum(vals) / vals.length
        out.push([Math.round(x * 100) / 100, m, Math.min(...vals), Math.max(...vals)])
      }
    }
    return out
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
    const late = r.peers.filter((p) => p.lateJoiner)
    const churned = late.length > 0 || r.peers.some((p) => (p.down ?? []).length > 0)
    const alive = r.alivePeers ?? r.peers.length
    const tiles = el('div', { class: 'tiles' }, [
      tile('mean final accuracy', pct(r.meanFinalAccuracy), 'mean'),
      churned ? tile('peers up at the end', `${alive} of ${r.peers.length}`, 'alive') : null,
      late.length > 0 ? tile('late joiners', String(late.length), 'late') : null,
      tile('worst peer', pct(r.minFinalAccuracy), 'min'),
      base ? tile('baseline mean (no gossip)', pct(base.meanFinalAccuracy), 'baseline-mean') : null,
      base ? tile('baseline worst peer', pct(base.minFinalAccuracy), 'baseline-min') : null,
      tile('models exchanged', String(sum(r.peers.map((p) => p.modelsReceived))), 'models'),
      tile('MiB sent (all peers)', mib(sum(r.peers.map((p) => p.bytesSent))).toFixed(1), 'bytes'),
      tile('rejected inputs', String(rejected), 'rejected'),
    ])

    const t = { label: 'seconds since every peer was up' }
    // Every peer's down intervals (overlaps darken: more peers down) and when late joiners came up.
    const shades = r.peers.flatMap((p) => p.down ?? [])
    const rules = late.filter((p) => p.joinedAt !== undefined).map((p) => ({ x: p.joinedAt }))
    const churnNote = churned
      ? 'Shaded: a peer down (darker: more peers down). Dotted: a late joiner comes up (its line dashed).'
      : null
    const perPeer = C.lines({
      id: 'accuracy-peers',
      title: 'Test accuracy of every peer',
      note: churnNote,
      x: t,
      y: { label: 'accuracy %', percent: true },
      series: r.peers.map((p) => ({
        name: peerName(p),
        points: p.series.map((s) => [s.t, s.accuracy]),
        width: 1.2,
        dashed: p.lateJoiner === true,
      })),
      shades,
      rules,
      emptyText: 'no evaluation yet',
    })
    const g = spreadOf(r)
    const meanSeries = [
      { name: 'gossip: mean', points: g.map((p) => [p[0], p[1]]), width: 2.4, color: '#4e79a7' },
    ]
    const bands = [{ name: 'gossip: mean', points: g.map((p) => [p[0], p[2], p[3]]) }]
    if (late.length > 0) {
      const j = spreadUp(late, gridStep(r), false)
      meanSeries.push({
        name: 'late joiners: mean',
        points: j.map((p) => [p[0], p[1]]),
        width: 2,
        dashed: true,
        color: '#59a14f',
      })
    }
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
      note: [
        churned ? 'Gossip mean over the initial peers up at the time; late joiners apart.' : null,
        base
          ? null
          : r.config.baseline
            ? 'The baseline (the same peers trained alone) runs after this run.'
            : 'Run with --baseline to add the same peers trained alone (--no-gossip).',
      ]
        .filter(Boolean)
        .join(' '),
      x: t,
      y: { label: 'accuracy %', percent: true },
      series: meanSeries,
      bands,
      shades,
      rules,
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
      'up / down',
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
    const left = new Set([1, 2, 3])
    const row = (p) =>
      el(
        'tr',
        {
          'data-peer': String(p.index),
          class: [p.alive === false ? 'down' : null, p.lateJoiner ? 'late' : null].filter(Boolean).join(' '),
        },
        [
          String(p.index),
          `…${p.peerId.slice(-10)}`,
          p.region ?? '-',
          availability(p),
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
          .map((c, i) => el('td', { class: left.has(i) ? 'l mono' : '', text: c })),
      )
    const initial = r.peers.filter((p) => !p.lateJoiner)
    const late = r.peers.filter((p) => p.lateJoiner)
    return el('table', { id: 'peers' }, [
      el(
        'tr',
        {},
        head.map((h, i) => el('th', { class: left.has(i) ? 'l' : '', text: h })),
      ),
      ...initial.map(row),
      late.length > 0
        ? el('tr', { class: 'group' }, [
            el('th', { class: 'l', colspan: String(head.length), text: 'Late joiners (--churn join)' }),
          ])
        : null,
      ...late.map(row),
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
