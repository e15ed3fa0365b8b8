/**
 * The charts of every gossip-learn page (daemon dashboard, testbed live page, testbed report) and
 * of the benchmarks' SVG figures: small declarative specs drawn with Observable Plot (global `Plot`,
 * which needs global `d3`). Browser script, no build step: it defines `window.GossipCharts`.
 * Every chart is a <figure class="chart" data-chart="ID"> holding one <svg>; legends are drawn
 * inside the SVG so that an exported figure is complete.
 */
;(() => {
  /** Tableau 10 and its lighter half: distinct enough for up to 20 series. */
  const PALETTE = [
    '#4e79a7',
    '#f28e2b',
    '#e15759',
    '#76b7b2',
    '#59a14f',
    '#edc948',
    '#b07aa1',
    '#ff9da7',
    '#9c755f',
    '#bab0ac',
    '#1f77b4',
    '#ff7f0e',
    '#2ca02c',
    '#d62728',
    '#9467bd',
    '#8c564b',
    '#e377c2',
    '#7f7f7f',
    '#bcbd22',
    '#17becf',
  ]
  /** More series than this: no legend (tooltips name them). */
  const MAX_LEGEND = 20
  const LEGEND_WIDTH = 170

  /** Right margin that fits the longest legend entry (11 px text, ~6.5 px a character). */
  function legendWidth(names) {
    return Math.max(LEGEND_WIDTH, 40 + 6.5 * Math.max(0, ...names.map((n) => String(n).length)))
  }

  function figure(id, title, note) {
    const fig = document.createElement('figure')
    fig.className = 'chart'
    fig.dataset.chart = id
    if (title) {
      const h = document.createElement('figcaption')
      h.textContent = title
      fig.appendChild(h)
    }
    if (note) {
      const p = document.createElement('p')
      p.className = 'note'
      p.textContent = note
      fig.appendChild(p)
    }
    return fig
  }

  function empty(fig, text) {
    const p = document.createElement('p')
    p.className = 'empty'
    p.textContent = text
    fig.appendChild(p)
    return fig
  }

  /** Colour of each series name, in order. */
  function colors(names, fixed) {
    return names.map((n, i) => (fixed?.[n] !== undefined ? fixed[n] : PALETTE[i % PALETTE.length]))
  }

  /** Legend entries as text marks in the right margin (inside the SVG). */
  function legendMarks(entries) {
    return entries.map((e, i) =>
      Plot.text([e], {
        text: (d) => `${d.dashed ? '╌╌' : '━━'} ${d.name}`,
        fill: (d) => d.name,
        frameAnchor: 'top-right',
        textAnchor: 'start',
        dx: 14,
        dy: 6 + i * 16,
        fontSize: 11,
        // Once for the whole figure, not once per facet.
        facet: 'super',
      }),
    )
  }

  /**
   * Lines (and min-max bands) over a shared x axis.
   * spec: { id, title, note?, width?, height?, x: { label, domain? }, y: { label, domain?, percent? },
   *         series: [{ name, points: [[x, y], ...], dashed?, width?, color? }],
   *         bands?: [{ name, points: [[x, lo, hi], ...] }], tips?: boolean,
   *         shades?: [{ from, to }] (full-height x intervals, e.g. peers down; overlaps darken),
   *         rules?: [{ x }] (dotted vertical lines, e.g. peers joining) }
   */
  function lines(spec) {
    const fig = figure(spec.id, spec.title, spec.note)
    const series = (spec.series ?? []).filter((s) =>
      s.points.some((p) => p[1] !== null && p[1] !== undefined),
    )
    if (series.length === 0) return empty(fig, spec.emptyText ?? 'no data yet')
    const names = [...new Set([...series.map((s) => s.name), ...(spec.bands ?? []).map((b) => b.name)])]
    const fixed = Object.fromEntries(series.filter((s) => s.color).map((s) => [s.name, s.color]))
    const legend = series.length <= MAX_LEGEND
    const ys = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null && v !== undefined))
    // All zero (no traffic yet, say): a unit-high axis rather than a degenerate one.
    const zero = ys.length > 0 && ys.every((v) => v === 0) && spec.y?.domain === undefined
    const yDomain = zero ? [0, 1] : spec.y?.domain
    const marks = [Plot.frame({ stroke: '#ccc' })]
    if ((spec.shades ?? []).length > 0) {
      marks.push(Plot.rect(spec.shades, { x1: 'from', x2: 'to', fill: '#e15759', fillOpacity: 0.07 }))
    }
    if ((spec.rules ?? []).length > 0) {
      marks.push(Plot.ruleX(spec.rules, { x: 'x', stroke: '#555', strokeDasharray: '2 3' }))
    }
    for (const b of spec.bands ?? []) {
      const data = b.points.map(([x, lo, hi]) => ({ x, lo, hi, name: b.name }))
      marks.push(Plot.areaY(data, { x: 'x', y1: 'lo', y2: 'hi', fill: 'name', fillOpacity: 0.15 }))
    }
    for (const s of series) {
      const data = s.points
        .filter((p) => p[1] !== null && p[1] !== undefined)
        .map(([x, y]) => ({ x, y, name: s.name }))
      marks.push(
        Plot.lineY(data, {
          x: 'x',
          y: 'y',
          stroke: 'name',
          strokeWidth: s.width ?? 1.6,
          strokeDasharray: s.dashed ? '6 3' : undefined,
          marker: data.length === 1 ? 'circle' : undefined,
        }),
      )
    }
    if (spec.tips !== false) {
      const all = series.flatMap((s) =>
        s.points.filter((p) => p[1] !== null && p[1] !== undefined).map(([x, y]) => ({ x, y, name: s.name })),
      )
      marks.push(
        Plot.tip(all, Plot.pointer({ x: 'x', y: 'y', stroke: 'name', title: (d) => tipText(d, spec) })),
      )
    }
    if (legend) marks.push(...legendMarks(series.map((s) => ({ name: s.name, dashed: s.dashed }))))
    fig.appendChild(
      Plot.plot({
        width: spec.width ?? 640,
        height: spec.height ?? 260,
        marginRight: legend ? legendWidth(series.map((s) => s.name)) : 20,
        marginLeft: 55,
        style: { fontSize: '11px', background: 'white' },
        x: { label: spec.x?.label, labelAnchor: 'center', domain: spec.x?.domain, nice: true },
        y: {
          label: spec.y?.label,
          // Plot's percent scale multiplies the data by 100; the domain is given in data units.
          domain: yDomain && spec.y?.percent === true ? yDomain.map((v) => v * 100) : yDomain,
          percent: spec.y?.percent === true,
          grid: true,
          nice: true,
        },
        color: { domain: names, range: colors(names, fixed) },
        marks,
      }),
    )
    return fig
  }

  function tipText(d, spec) {
    const y = spec.y?.percent ? `${(d.y * 100).toFixed(1)}%` : fmt(d.y)
    return `${d.name}\n${spec.x?.label ?? 'x'}: ${fmt(d.x)}\n${spec.y?.label ?? 'y'}: ${y}`
  }

  function fmt(v) {
    if (typeof v !== 'number') return String(v)
    if (Math.abs(v) >= 100 || Number.isInteger(v)) return v.toFixed(0)
    return v.toPrecision(3)
  }

  /**
   * Grouped bars: one group per `group` value, one bar per `key` in it.
   * spec: { id, title, note?, x: { label }, y: { label }, rows: [{ group, key, value }], width?, height? }
   */
  function bars(spec) {
    const fig = figure(spec.id, spec.title, spec.note)
    const rows = (spec.rows ?? []).filter((r) => Number.isFinite(r.value))
    if (rows.length === 0) return empty(fig, spec.emptyText ?? 'no data yet')
    const keys = [...new Set(rows.map((r) => r.key))]
    const groups = [...new Set(rows.map((r) => r.group))]
    fig.appendChild(
      Plot.plot({
        width: spec.width ?? 640,
        height: spec.height ?? 260,
        marginRight: legendWidth(keys),
        marginLeft: 55,
        marginBottom: 40,
        style: { fontSize: '11px', background: 'white' },
        fx: { label: spec.x?.label, domain: groups, padding: 0.15 },
        x: { axis: null, domain: keys, paddingInner: 0.1 },
        y: { label: spec.y?.label, grid: true, nice: true },
        color: { domain: keys, range: colors(keys, spec.colors) },
        marks: [
          Plot.barY(rows, {
            fx: 'group',
            x: 'key',
            y: 'value',
            fill: 'key',
            title: (d) => `${d.group} ${d.key}: ${fmt(d.value)}`,
          }),
          Plot.ruleY([0]),
          ...legendMarks(keys.map((k) => ({ name: k }))),
        ],
      }),
    )
    return fig
  }

  /**
   * A matrix of values (who sent to whom, traffic between regions).
   * spec: { id, title, note?, x: { label }, y: { label }, cells: [{ x, y, value }], format?: 'int'|'mib' }
   */
  function cells(spec) {
    const fig = figure(spec.id, spec.title, spec.note)
    const data = (spec.cells ?? []).filter((c) => Number.isFinite(c.value))
    if (data.length === 0) return empty(fig, spec.emptyText ?? 'no data yet')
    const xs = spec.x?.domain ?? [...new Set(data.map((c) => c.x))]
    const ys = spec.y?.domain ?? [...new Set(data.map((c) => c.y))]
    const max = Math.max(...data.map((c) => c.value))
    const label = (v) => (spec.format === 'mib' ? (v / 2 ** 20).toFixed(1) : fmt(v))
    const size = Math.max(18, Math.min(48, Math.floor(560 / Math.max(xs.length, ys.length))))
    fig.appendChild(
      Plot.plot({
        width: Math.max(260, xs.length * size + 120),
        height: Math.max(200, ys.length * size + 80),
        marginLeft: 90,
        marginBottom: 70,
        style: { fontSize: '11px', background: 'white' },
        x: {
          label: spec.x?.label,
          domain: xs,
          tickRotate: xs.length > 8 || Math.max(...xs.map((x) => String(x).length)) * 6.5 > size ? -30 : 0,
        },
        y: { label: spec.y?.label, domain: ys },
        color: { type: 'linear', scheme: 'blues', zero: true },
        marks: [
          Plot.cell(data, {
            x: 'x',
            y: 'y',
            fill: 'value',
            inset: 0.5,
            title: (d) => `${d.y} -> ${d.x}: ${label(d.value)}`,
          }),
          // Values on the cells when they fit: white on dark cells, black on light ones.
          ...(size >= 28
            ? [
                [(d) => d.value > max / 2, 'white'],
                [(d) => d.value <= max / 2, 'black'],
              ].map(([keep, fill]) =>
                Plot.text(data.filter(keep), {
                  x: 'x',
                  y: 'y',
                  text: (d) => label(d.value),
                  fill,
                  fontSize: 10,
                }),
              )
            : []),
        ],
      }),
    )
    return fig
  }

  /**
   * Points in a plane (Vivaldi coordinates), coloured by group, `self` drawn larger.
   * spec: { id, title, note?, x: { label }, y: { label }, points: [{ x, y, label, group, self? }] }
   */
  function dots(spec) {
    const fig = figure(spec.id, spec.title, spec.note)
    const data = (spec.points ?? []).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    if (data.length === 0) return empty(fig, spec.emptyText ?? 'no data yet')
    const groups = [...new Set(data.map((p) => p.group))]
    fig.appendChild(
      Plot.plot({
        width: spec.width ?? 420,
        height: spec.height ?? 320,
        marginRight: 120,
        style: { fontSize: '11px', background: 'white' },
        x: { label: spec.x?.label, grid: true, nice: true },
        y: { label: spec.y?.label, grid: true, nice: true },
        color: { domain: groups, range: colors(groups) },
        marks: [
          Plot.frame({ stroke: '#ccc' }),
          Plot.dot(data, {
            x: 'x',
            y: 'y',
            fill: 'group',
            r: (d) => (d.self ? 7 : 4),
            stroke: (d) => (d.self ? 'black' : 'none'),
            title: 'label',
          }),
          Plot.text(data, { x: 'x', y: 'y', text: 'label', dy: -10, fontSize: 9 }),
          ...legendMarks(groups.map((g) => ({ name: g }))),
        ],
      }),
    )
    return fig
  }

  /** Mean, min and max of several step series sampled on a common grid: [[x, mean, min, max], ...]. */
  function spread(seriesList, gridStep) {
    const xs = seriesList.flatMap((s) => s.map((p) => p[0]))
    if (xs.length === 0) return []
    const end = Math.max(...xs)
    const out = []
    const cursor = seriesList.map(() => -1)
    for (let x = 0; x <= end + 1e-9; x += gridStep) {
      const vals = []
      seriesList.forEach((s, i) => {
        while (cursor[i] + 1 < s.length && s[cursor[i] + 1][0] <= x) cursor[i]++
        const v = cursor[i] >= 0 ? s[cursor[i]][1] : null
        if (v !== null && v !== undefined) vals.push(v)
      })
      if (vals.length === seriesList.length && vals.length > 0) {
        const mean = vals.reduce((a, b) => a + b, 0) / vals.length
        out.push([Math.round(x * 100) / 100, mean, Math.min(...vals), Math.max(...vals)])
      }
    }
    return out
  }

  /** A lines chart as a standalone SVG document (title inside, white background): for docs figures. */
  function linesSvg(spec) {
    const fig = lines({ ...spec, title: undefined, tips: false })
    document.body.appendChild(fig)
    const svg = fig.querySelector('svg')
    fig.remove()
    if (svg === null) throw new Error('the chart drew no svg')
    const top = 30
    const w = Number(svg.getAttribute('width'))
    const h = Number(svg.getAttribute('height')) + top
    const title = String(spec.title ?? '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">`,
      `<rect width="${w}" height="${h}" fill="white"/>`,
      `<text x="12" y="20" font-family="system-ui, sans-serif" font-size="14">${title}</text>`,
      `<g transform="translate(0 ${top})">${svg.outerHTML}</g>`,
      '</svg>',
      '',
    ].join('\n')
  }

  window.GossipCharts = { lines, linesSvg, bars, cells, dots, spread, PALETTE }
})()
