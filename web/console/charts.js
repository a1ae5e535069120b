// D3 charts for the console. Each chart is a <figure> holding an SVG (with a text alternative)
// and a "Numbers" table of exactly the data drawn, so every figure can be read without the
// picture. Charts size themselves to their container's width when drawn and redraw on resize.

import { h, table } from './ui.js';

const d3 = () => window.d3;
const PALETTE = ['#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c', '#4b5563'];
const STATE_COLOURS = {
  INVENTORY: '#94a3b8',
  TEST_READY: '#a78bfa',
  ACTIVE: '#16a34a',
  SUSPENDED: '#f59e0b',
  LOST_STOLEN: '#dc2626',
  TERMINATED: '#475569',
};

function colour(key, i) {
  return STATE_COLOURS[key] || PALETTE[i % PALETTE.length];
}

/// The figure: caption, SVG area (drawn by `draw(svgHost, width)`), numbers table.
function figure({ title, testid, summary, columns, rows, draw }) {
  const host = h('div', { class: 'chart-area' });
  const numbers = table(columns, rows, { caption: title, empty: 'No data in this range.' });
  // data-key / data-value on each row of the numbers table: the raw values, for readers and tests.
  const body = numbers.querySelector ? numbers.querySelector('tbody') : null;
  if (body) {
    Array.from(body.rows).forEach((tr, i) => {
      const r = rows[i];
      tr.dataset.key = r.__key === null || r.__key === undefined ? '' : String(r.__key);
      if (r.__value !== undefined) tr.dataset.value = String(r.__value);
    });
  }
  const fig = h(
    'figure',
    { class: 'chart', 'data-testid': testid },
    h('figcaption', {}, title),
    host,
    h('details', { class: 'numbers' }, h('summary', {}, 'Numbers'), numbers),
  );
  if (!rows.length) {
    host.append(h('p', { class: 'empty' }, 'No data in this range.'));
    return fig;
  }
  let lastWidth = 0;
  const redraw = () => {
    const width = Math.max(240, Math.floor(host.clientWidth || 480));
    if (width === lastWidth) return;
    lastWidth = width;
    host.replaceChildren();
    const svg = draw(width);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `${title}: ${summary}`);
    host.append(svg);
  };
  // Draw once attached (so the width is known), and again when the width changes.
  requestAnimationFrame(redraw);
  if (window.ResizeObserver) {
    // Observes while the chart is in the page; a replaced chart's observer lets it go.
    const ro = new ResizeObserver(() => {
      if (!host.isConnected) {
        ro.disconnect();
        return;
      }
      redraw();
    });
    ro.observe(host);
  }
  return fig;
}

function svgOf(width, height) {
  return d3().create('svg').attr('width', width).attr('height', height).attr('viewBox', `0 0 ${width} ${height}`);
}

function describe(rows, key, value, format) {
  return rows
    .slice(0, 8)
    .map((r) => `${key(r) ?? 'none'} ${format(value(r))}`)
    .join(', ');
}

const plain = (v) => new Intl.NumberFormat('en').format(v);

/// A donut of shares: rows → key(r), value(r).
export function donut(rows, { key, value, format = plain, title, testid }) {
  const data = rows.map((r) => ({ r, k: key(r), v: Number(value(r)) || 0, __key: key(r), __value: value(r) }));
  const total = d3().sum(data, (d) => d.v);
  const tableRows = data.map((d) => ({ ...d }));
  return figure({
    title,
    testid,
    summary: describe(rows, key, value, format),
    rows: tableRows,
    columns: [
      { label: 'Key', value: (d) => d.k ?? 'none' },
      { label: 'Value', value: (d) => format(d.v), num: true },
      { label: 'Share', value: (d) => (total ? `${((d.v / total) * 100).toFixed(1)} %` : '—'), num: true },
    ],
    draw: (width) => {
      const size = Math.min(220, width * 0.45);
      const height = Math.max(size, data.length * 20 + 10);
      const svg = svgOf(width, height);
      const radius = size / 2;
      const g = svg.append('g').attr('transform', `translate(${radius + 4},${height / 2})`);
      const pie = d3().pie().sort(null).value((d) => d.v);
      const arc = d3().arc().innerRadius(radius * 0.58).outerRadius(radius - 2);
      g.selectAll('path')
        .data(pie(data.filter((d) => d.v > 0)))
        .join('path')
        .attr('d', arc)
        .attr('fill', (d) => colour(d.data.k, data.indexOf(d.data)))
        .append('title')
        .text((d) => `${d.data.k ?? 'none'}: ${format(d.data.v)}`);
      g.append('text').attr('text-anchor', 'middle').attr('dy', '0.35em').attr('class', 'donut-total').text(format(total));
      const legend = svg.append('g').attr('transform', `translate(${size + 20},${(height - data.length * 20) / 2})`);
      const item = legend
        .selectAll('g')
        .data(data)
        .join('g')
        .attr('transform', (d, i) => `translate(0,${i * 20})`);
      item.append('rect').attr('width', 12).attr('height', 12).attr('rx', 2).attr('fill', (d, i) => colour(d.k, i));
      item
        .append('text')
        .attr('x', 18)
        .attr('y', 10)
        .attr('class', 'legend')
        .text((d) => `${d.k ?? 'none'}  ${format(d.v)}`);
      return svg.node();
    },
  });
}

/// Horizontal bars, largest first as given: rows → key(r), value(r).
export function barsH(rows, { key, value, format = plain, title, testid }) {
  const data = rows.map((r) => ({ k: key(r), v: Number(value(r)) || 0, __key: key(r), __value: value(r) }));
  return figure({
    title,
    testid,
    summary: describe(rows, key, value, format),
    rows: data,
    columns: [
      { label: 'Key', value: (d) => d.k ?? 'none' },
      { label: 'Value', value: (d) => format(d.v), num: true },
    ],
    draw: (width) => {
      const bar = 22;
      const labelWidth = Math.min(180, width * 0.35);
      const height = data.length * (bar + 6) + 6;
      const svg = svgOf(width, height);
      const x = d3()
        .scaleLinear()
        .domain([0, d3().max(data, (d) => d.v) || 1])
        .range([0, width - labelWidth - 90]);
      const row = svg
        .selectAll('g')
        .data(data)
        .join('g')
        .attr('transform', (d, i) => `translate(0,${i * (bar + 6) + 3})`);
      row
        .append('text')
        .attr('x', labelWidth - 6)
        .attr('y', bar / 2)
        .attr('dy', '0.35em')
        .attr('text-anchor', 'end')
        .attr('class', 'legend')
        .text((d) => truncate(d.k ?? 'none', labelWidth / 7));
      row
        .append('rect')
        .attr('x', labelWidth)
        .attr('width', (d) => Math.max(1, x(d.v)))
        .attr('height', bar)
        .attr('rx', 3)
        .attr('fill', (d, i) => colour(d.k, i))
        .append('title')
        .text((d) => `${d.k ?? 'none'}: ${format(d.v)}`);
      row
        .append('text')
        .attr('x', (d) => labelWidth + Math.max(1, x(d.v)) + 6)
        .attr('y', bar / 2)
        .attr('dy', '0.35em')
        .attr('class', 'legend')
        .text((d) => format(d.v));
      return svg.node();
    },
  });
}

function truncate(s, n) {
  const str = String(s);
  return str.length > n ? `${str.slice(0, Math.max(1, Math.floor(n) - 1))}…` : str;
}

function xLabel(x, time) {
  if (!time) return String(x);
  const d = x instanceof Date ? x : new Date(x);
  return d.toISOString().slice(0, 10);
}

/// Stacked columns per bucket: rows → x(r), and value(r, seriesKey) for each series.
export function columns(rows, { x, series, value, format = plain, title, testid, time = true }) {
  const keys = series.map((s) => s.key);
  const data = rows.map((r) => {
    const d = { x: x(r), __key: xLabel(x(r), time) };
    let total = 0;
    for (const k of keys) {
      d[k] = Number(value(r, k)) || 0;
      total += d[k];
    }
    d.__value = total;
    return d;
  });
  return figure({
    title,
    testid,
    summary: `${data.length} buckets, ${series.length} series`,
    rows: data,
    columns: [
      { label: time ? 'Period' : 'Bucket', value: (d) => d.__key },
      ...series.map((s) => ({ label: s.label, value: (d) => format(d[s.key]), num: true })),
      { label: 'Total', value: (d) => format(d.__value), num: true },
    ],
    draw: (width) => {
      const height = 240;
      const m = { top: 10, right: 10, bottom: 28, left: 64 };
      const legendRows = Math.ceil(series.length / Math.max(1, Math.floor(width / 160)));
      const svg = svgOf(width, height + legendRows * 18);
      const xs = d3()
        .scaleBand()
        .domain(data.map((d) => d.__key))
        .range([m.left, width - m.right])
        .padding(0.15);
      const stacked = d3().stack().keys(keys)(data);
      const ys = d3()
        .scaleLinear()
        .domain([0, d3().max(data, (d) => d.__value) || 1])
        .nice()
        .range([height - m.bottom, m.top]);
      svg
        .append('g')
        .selectAll('g')
        .data(stacked)
        .join('g')
        .attr('fill', (s, i) => PALETTE[i % PALETTE.length])
        .selectAll('rect')
        .data((s) => s.map((p) => ({ p, key: s.key })))
        .join('rect')
        .attr('x', (d) => xs(d.p.data.__key))
        .attr('y', (d) => ys(d.p[1]))
        .attr('height', (d) => Math.max(0, ys(d.p[0]) - ys(d.p[1])))
        .attr('width', xs.bandwidth())
        .append('title')
        .text((d) => `${d.p.data.__key} ${series.find((s) => s.key === d.key).label}: ${format(d.p.data[d.key])}`);
      const every = Math.ceil(data.length / Math.max(1, Math.floor((width - m.left) / 80)));
      svg
        .append('g')
        .attr('transform', `translate(0,${height - m.bottom})`)
        .attr('class', 'axis')
        .call(
          d3()
            .axisBottom(xs)
            .tickValues(xs.domain().filter((d, i) => i % every === 0))
            .tickFormat((d) => (time ? d.slice(5) : truncate(d, 12))),
        );
      svg
        .append('g')
        .attr('transform', `translate(${m.left},0)`)
        .attr('class', 'axis')
        .call(d3().axisLeft(ys).ticks(5).tickFormat(format));
      const perRow = Math.max(1, Math.floor(width / 160));
      const legend = svg
        .append('g')
        .attr('transform', `translate(${m.left},${height + 4})`)
        .selectAll('g')
        .data(series)
        .join('g')
        .attr('transform', (s, i) => `translate(${(i % perRow) * 160},${Math.floor(i / perRow) * 18})`);
      legend.append('rect').attr('width', 12).attr('height', 12).attr('rx', 2).attr('fill', (s, i) => PALETTE[i % PALETTE.length]);
      legend
        .append('text')
        .attr('x', 16)
        .attr('y', 10)
        .attr('class', 'legend')
        .text((s) => truncate(s.label, 20));
      return svg.node();
    },
  });
}

/// A line over time: rows → x(r) (a Date or ISO string), y(r).
export function line(rows, { x, y, format = plain, title, testid }) {
  const data = rows.map((r) => {
    const at = x(r) instanceof Date ? x(r) : new Date(x(r));
    return { at, v: Number(y(r)) || 0, __key: at.toISOString(), __value: y(r) };
  });
  return figure({
    title,
    testid,
    summary: `${data.length} points, highest ${format(d3().max(data, (d) => d.v) || 0)}`,
    rows: data,
    columns: [
      { label: 'Time', value: (d) => d.at.toISOString().replace('T', ' ').slice(0, 16) },
      { label: 'Value', value: (d) => format(d.v), num: true },
    ],
    draw: (width) => {
      const height = 220;
      const m = { top: 10, right: 12, bottom: 28, left: 64 };
      const svg = svgOf(width, height);
      const xs = d3()
        .scaleTime()
        .domain(d3().extent(data, (d) => d.at))
        .range([m.left, width - m.right]);
      const ys = d3()
        .scaleLinear()
        .domain([0, d3().max(data, (d) => d.v) || 1])
        .nice()
        .range([height - m.bottom, m.top]);
      svg
        .append('path')
        .datum(data)
        .attr('fill', 'none')
        .attr('stroke', PALETTE[0])
        .attr('stroke-width', 2)
        .attr(
          'd',
          d3()
            .line()
            .x((d) => xs(d.at))
            .y((d) => ys(d.v)),
        );
      svg
        .append('g')
        .selectAll('circle')
        .data(data)
        .join('circle')
        .attr('cx', (d) => xs(d.at))
        .attr('cy', (d) => ys(d.v))
        .attr('r', 2.5)
        .attr('fill', PALETTE[0])
        .append('title')
        .text((d) => `${d.at.toISOString().slice(0, 16)}: ${format(d.v)}`);
      svg
        .append('g')
        .attr('transform', `translate(0,${height - m.bottom})`)
        .attr('class', 'axis')
        .call(d3().axisBottom(xs).ticks(Math.max(2, Math.floor(width / 90))));
      svg
        .append('g')
        .attr('transform', `translate(${m.left},0)`)
        .attr('class', 'axis')
        .call(d3().axisLeft(ys).ticks(5).tickFormat(format));
      return svg.node();
    },
  });
}

// ---- days with ranges: forecasts and anomaly evidence -------------------------------------

const finite = (v) => v !== null && v !== undefined && v !== '' && Number.isFinite(Number(v));
const HOUR_MS = 3600000;
const DAY_MS = 24 * HOUR_MS;

/// How each kind of series and band looks (colour is never the only sign: the legend names
/// each, and the lines differ in dashes and dots too).
const SERIES_STYLE = {
  actual: { stroke: '#2563eb', width: 2, dash: null, dot: '#2563eb', hollow: false },
  expected: { stroke: '#c2410c', width: 2, dash: '6 4', dot: '#c2410c', hollow: true },
  sofar: { stroke: null, width: 0, dash: null, dot: '#2563eb', hollow: true },
  expectedpoint: { stroke: null, width: 0, dash: null, dot: '#c2410c', hollow: true },
  highlight: { stroke: null, width: 0, dash: null, dot: '#dc2626', hollow: false },
};
const BAND_STYLE = {
  95: { fill: '#fdba74', opacity: 0.35 },
  80: { fill: '#fb923c', opacity: 0.45 },
  range: { fill: '#86efac', opacity: 0.45 },
};

/// "3 Mar" of a UTC day.
function dayShort(d) {
  return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

/// "Tue 3 Mar" of a UTC day.
function dayLong(d) {
  return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' });
}

/// "14:00" of a UTC hour.
function hourOfDay(d) {
  return `${String(d.getUTCHours()).padStart(2, '0')}:00`;
}

/// "Tue 3 Mar, 14:00" of a UTC hour.
function hourLong(d) {
  return `${dayLong(d)}, ${hourOfDay(d)}`;
}

/// Whole days only, as many as fit, counted back from the last day (the day judged, the
/// forecast's end) so that it has its label.
function dayTicks(first, last, fit) {
  const step = Math.max(1, Math.ceil((last - first) / DAY_MS / fit)) * DAY_MS;
  const ticks = [];
  for (let t = last; t >= first; t -= step) ticks.unshift(new Date(t));
  return ticks;
}

/// Whole hours a divisor of a day apart (1, 2, 3, 4, 6, 8, 12 or 24 hours), as many as fit, on
/// the hours of the day that step divides (every 6 hours: 00:00, 06:00, 12:00, 18:00), so that each
/// midnight that falls on the axis has a tick, labelled with its date.
function hourTicks(first, last, fit) {
  const hours = (last - first) / HOUR_MS;
  const step = ([1, 2, 3, 4, 6, 8, 12].find((n) => hours / n <= fit) || 24) * HOUR_MS;
  const ticks = [];
  for (let t = Math.ceil(first / step) * step; t <= last; t += step) ticks.push(new Date(t));
  return ticks;
}

/// What `bandChart` does per unit of its axis: a row's key, the first column, a point's name,
/// the ticks and their labels, the axis's name.
const UNITS = {
  day: {
    ms: DAY_MS,
    key: (at) => at.toISOString().slice(0, 10),
    column: 'Day',
    cell: dayLong,
    point: dayShort,
    ticks: dayTicks,
    tick: dayShort,
    axis: 'Day (UTC)',
    many: 'days',
  },
  hour: {
    ms: HOUR_MS,
    key: (at) => `${at.toISOString().slice(0, 19)}Z`,
    column: 'Hour (UTC)',
    cell: hourLong,
    point: hourLong,
    ticks: hourTicks,
    tick: (d) => (d.getUTCHours() === 0 ? dayShort(d) : hourOfDay(d)),
    axis: 'Hour (UTC)',
    many: 'hours',
  },
};

/// Days (or hours, with `unit: 'hour'`) on a UTC time axis with shaded ranges: `rows` are
/// { at: Date (a UTC midnight, or a whole UTC hour), …values }; `series` lines or points ({ key,
/// label, kind: actual | expected | sofar | expectedpoint | highlight, dots }) drawn where a row
/// has a value, `bands` shaded between two values ({ low, high, label, level: 95 | 80 | range }),
/// `rules` horizontal lines ({ value, label }: a limit; one far above the data is named instead of
/// squashing the chart) and `marks` vertical ones ({ at, label }: today, the day judged). Both
/// axes are labelled (`yLabel`, `xLabel`: "Day (UTC)" or "Hour (UTC)" unless given); the numbers
/// table lists every row, keyed by its day (YYYY-MM-DD) or hour (YYYY-MM-DDTHH:00:00Z).
export function bandChart(rows, { title, testid, format = plain, yLabel, xLabel, unit = 'day', series = [], bands = [], rules = [], marks = [], summary, height = 250 }) {
  const u = UNITS[unit] || UNITS.day;
  const axisLabel = xLabel || u.axis;
  const keys = [...series.map((s) => s.key), ...bands.flatMap((b) => [b.low, b.high])];
  const data = rows.map((r) => {
    const d = { at: r.at, __key: u.key(r.at) };
    for (const k of keys) d[k] = finite(r[k]) ? Number(r[k]) : null;
    const first = series.find((s) => d[s.key] !== null);
    if (first) d.__value = d[first.key];
    return d;
  });
  const values = data.flatMap((d) => keys.map((k) => d[k]).filter((v) => v !== null));
  const dataMax = values.length ? Math.max(...values) : 0;
  // A limit far above the data would flatten it: such a rule is named, not drawn to scale.
  const onScale = (r) => !(dataMax > 0 && Number(r.value) > dataMax * 3);
  const yMax = Math.max(dataMax, ...rules.filter(onScale).map((r) => Number(r.value)), 0);
  const tableColumns = [
    { label: u.column, value: (d) => u.cell(d.at) },
    ...series.map((s) => ({ label: s.label, value: (d) => (d[s.key] === null ? '—' : format(d[s.key])), num: true })),
    ...bands.map((b) => ({
      label: b.label,
      value: (d) => (d[b.low] === null || d[b.high] === null ? '—' : `${format(d[b.low])} – ${format(d[b.high])}`),
      num: true,
    })),
  ];
  return figure({
    title,
    testid,
    summary: summary || `${data.length} ${u.many}`,
    rows: data,
    columns: tableColumns,
    draw: (width) => {
      const m = { top: 16, right: 26, bottom: 46, left: 86 };
      const items = [
        ...bands.map((b) => ({ type: 'band', label: b.label, style: BAND_STYLE[b.level] || BAND_STYLE.range })),
        ...series.map((s) => ({ type: 'series', label: s.label, style: SERIES_STYLE[s.kind] || SERIES_STYLE.actual })),
        ...rules.map((r) => ({ type: 'rule', label: r.label })),
      ];
      const perRow = Math.max(1, Math.floor((width - 8) / 190));
      const legendRows = Math.ceil(items.length / perRow);
      const svg = svgOf(width, height + legendRows * 18 + 6);
      let [x0, x1] = d3().extent(data, (d) => d.at);
      if (x0.getTime() === x1.getTime()) {
        x0 = new Date(x0.getTime() - u.ms / 2);
        x1 = new Date(x1.getTime() + u.ms / 2);
      }
      const xs = d3().scaleUtc().domain([x0, x1]).range([m.left, width - m.right]);
      const ys = d3()
        .scaleLinear()
        .domain([0, yMax || 1])
        .nice()
        .range([height - m.bottom, m.top]);
      const top = ys.domain()[1];
      const y = (v) => ys(Math.min(v, top));

      for (const b of bands) {
        const st = BAND_STYLE[b.level] || BAND_STYLE.range;
        svg
          .append('path')
          .datum(data)
          .attr('class', `band band-${b.level}`)
          .attr('fill', st.fill)
          .attr('fill-opacity', st.opacity)
          .attr('stroke', 'none')
          .attr(
            'd',
            d3()
              .area()
              .defined((d) => d[b.low] !== null && d[b.high] !== null)
              .x((d) => xs(d.at))
              .y0((d) => y(d[b.low]))
              .y1((d) => y(d[b.high])),
          )
          .append('title')
          .text(b.label);
      }
      for (const mk of marks) {
        const x = xs(mk.at);
        svg
          .append('line')
          .attr('class', 'mark')
          .attr('x1', x)
          .attr('x2', x)
          .attr('y1', m.top)
          .attr('y2', height - m.bottom)
          .attr('stroke', '#64748b')
          .attr('stroke-dasharray', '2 3');
        svg
          .append('text')
          .attr('class', 'mark-label')
          .attr('x', x + 4)
          .attr('y', m.top - 4)
          .attr('text-anchor', x > width - m.right - 60 ? 'end' : 'start')
          .text(mk.label);
      }
      for (const r of rules) {
        const v = Number(r.value);
        if (onScale(r)) {
          svg
            .append('line')
            .attr('class', 'limit')
            .attr('x1', m.left)
            .attr('x2', width - m.right)
            .attr('y1', ys(v))
            .attr('y2', ys(v))
            .attr('stroke', '#dc2626')
            .attr('stroke-width', 1.5)
            .attr('stroke-dasharray', '8 4')
            .append('title')
            .text(r.label);
          // At the left, where an added-up line is lowest (today's mark is at the right).
          svg
            .append('text')
            .attr('class', 'rule-label')
            .attr('x', m.left + 4)
            .attr('y', ys(v) - 5)
            .attr('text-anchor', 'start')
            .text(r.label);
        } else {
          svg
            .append('text')
            .attr('class', 'rule-label')
            .attr('x', width - m.right - 4)
            .attr('y', m.top + 10)
            .attr('text-anchor', 'end')
            .text(`${r.label}: above the chart`);
        }
      }
      for (const s of series) {
        const st = SERIES_STYLE[s.kind] || SERIES_STYLE.actual;
        if (st.stroke) {
          const path = svg
            .append('path')
            .datum(data)
            .attr('class', `series series-${s.kind}`)
            .attr('fill', 'none')
            .attr('stroke', st.stroke)
            .attr('stroke-width', st.width)
            .attr(
              'd',
              d3()
                .line()
                .defined((d) => d[s.key] !== null)
                .x((d) => xs(d.at))
                .y((d) => y(d[s.key])),
            );
          if (st.dash) path.attr('stroke-dasharray', st.dash);
        }
        if (s.dots || !st.stroke) {
          svg
            .append('g')
            .selectAll('circle')
            .data(data.filter((d) => d[s.key] !== null))
            .join('circle')
            .attr('class', `dot dot-${s.kind}`)
            .attr('cx', (d) => xs(d.at))
            .attr('cy', (d) => y(d[s.key]))
            .attr('r', s.kind === 'highlight' ? 5 : 3)
            .attr('fill', st.hollow ? '#fff' : st.dot)
            .attr('stroke', st.dot)
            .attr('stroke-width', 1.5)
            .append('title')
            .text((d) => `${u.point(d.at)}, ${s.label.toLowerCase()}: ${format(d[s.key])}`);
        }
      }
      const fit = Math.max(1, Math.floor((width - m.left - m.right) / 64));
      const ticks = u.ticks(data[0].at.getTime(), data[data.length - 1].at.getTime(), fit);
      svg
        .append('g')
        .attr('transform', `translate(0,${height - m.bottom})`)
        .attr('class', 'axis')
        .call(
          d3()
            .axisBottom(xs)
            .tickValues(ticks)
            .tickFormat((d) => u.tick(d)),
        );
      svg
        .append('g')
        .attr('transform', `translate(${m.left},0)`)
        .attr('class', 'axis')
        .call(d3().axisLeft(ys).ticks(5).tickFormat(format));
      svg
        .append('text')
        .attr('class', 'axis-label')
        .attr('x', (m.left + width - m.right) / 2)
        .attr('y', height - 8)
        .attr('text-anchor', 'middle')
        .text(axisLabel);
      svg
        .append('text')
        .attr('class', 'axis-label')
        .attr('transform', 'rotate(-90)')
        .attr('x', -(m.top + height - m.bottom) / 2)
        .attr('y', 14)
        .attr('text-anchor', 'middle')
        .text(yLabel);
      const legend = svg
        .append('g')
        .attr('transform', `translate(8,${height + 4})`)
        .selectAll('g')
        .data(items)
        .join('g')
        .attr('transform', (it, i) => `translate(${(i % perRow) * 190},${Math.floor(i / perRow) * 18})`);
      legend.each(function drawKey(it) {
        const g = d3().select(this);
        if (it.type === 'band') {
          g.append('rect').attr('width', 16).attr('height', 10).attr('y', 1).attr('fill', it.style.fill).attr('fill-opacity', it.style.opacity + 0.2);
        } else if (it.type === 'rule') {
          g.append('line').attr('x1', 0).attr('x2', 16).attr('y1', 6).attr('y2', 6).attr('stroke', '#dc2626').attr('stroke-width', 1.5).attr('stroke-dasharray', '4 2');
        } else if (it.style.stroke) {
          const l = g.append('line').attr('x1', 0).attr('x2', 16).attr('y1', 6).attr('y2', 6).attr('stroke', it.style.stroke).attr('stroke-width', it.style.width);
          if (it.style.dash) l.attr('stroke-dasharray', '4 2');
        } else {
          g.append('circle').attr('cx', 8).attr('cy', 6).attr('r', 4).attr('fill', it.style.hollow ? '#fff' : it.style.dot).attr('stroke', it.style.dot).attr('stroke-width', 1.5);
        }
        g.append('text').attr('x', 22).attr('y', 10).attr('class', 'legend').text(truncate(it.label, 26));
      });
      return svg.node();
    },
  });
}
