// Small DOM helpers shared by the console's pages: element building (never innerHTML with data),
// formatting, tables, errors, pagers. Everything the user reads is text nodes.

/// h('div', { class: 'x', onclick: fn }, 'text', child, [more]) → element.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/// Replaces the children of `el`.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const nf = new Intl.NumberFormat('en');

/// An integer (a BigInt scalar arrives as a string or a number).
export function num(v) {
  if (v === null || v === undefined || v === '') return '—';
  const n = typeof v === 'string' ? Number(v) : v;
  return Number.isFinite(n) ? nf.format(n) : String(v);
}

/// Bytes in B, kB, MB, GB, TB (decimal units, as carriers bill).
export function bytes(v) {
  if (v === null || v === undefined) return '—';
  let n = Number(v);
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} ${units[i]}`;
}

/// A Decimal (string) amount with its ISO 4217 currency, in the currency's format. The string
/// goes to Intl as it is: a Number would round it to a float's precision, and rounding (where
/// `digits` asks for it) is decimal, half away from zero.
function formatMoney(amount, currency, digits) {
  if (amount === null || amount === undefined) return '—';
  if (!currency) return String(amount);
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency, ...digits }).format(String(amount));
  } catch {
    return `${amount} ${currency}`;
  }
}

/// An amount exactly as the API gives it (up to 12 decimals).
export function money(amount, currency) {
  return formatMoney(amount, currency, { maximumFractionDigits: 20 });
}

/// An amount rounded to its currency's usual digits (€182.30), for headline figures; tables and
/// hints keep the exact amount ([`money`]).
export function moneyRounded(amount, currency) {
  return formatMoney(amount, currency, {});
}

export function pct(share) {
  if (share === null || share === undefined) return '—';
  return `${(Number(share) * 100).toFixed(1)} %`;
}

export function dateTime(v) {
  if (!v) return '—';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

export function ago(v) {
  if (!v) return '—';
  const s = Math.round((Date.now() - new Date(v).getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/// A table: columns are { label, value: row => text|Node, num: bool }.
export function table(columns, rows, { caption, empty = 'Nothing to show.', testid } = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty', 'data-testid': testid }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { 'data-testid': testid },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h(
        'tbody',
        {},
        rows.map((r) => h('tr', {}, columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.value(r))))),
      ),
    ),
  );
}

/// An error box naming what went wrong (the API's message and code).
export function errorBox(err) {
  const code = err && err.code ? ` (${err.code})` : '';
  return h('div', { class: 'error', role: 'alert' }, `${(err && err.message) || err}${code}`);
}

export function loading(what = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, what);
}

/// Runs `load()` into `el`: a loading line, then what `render(data)` returns, or the error.
export async function load(el, loadFn, render) {
  mount(el, loading());
  try {
    const data = await loadFn();
    mount(el, render(data));
    return data;
  } catch (err) {
    mount(el, errorBox(err));
    return null;
  }
}

/// A card: a titled section.
export function card(title, ...body) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...body);
}

/// A figure with a big number.
export function stat(label, value, { testid, hint } = {}) {
  return h(
    'div',
    { class: 'stat', 'data-testid': testid },
    h('div', { class: 'stat-value' }, value),
    h('div', { class: 'stat-label' }, label),
    hint ? h('div', { class: 'stat-hint' }, hint) : null,
  );
}

/// A labelled form field around `control`.
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', {}, hint) : null);
}

export function select(options, value, attrs = {}) {
  return h(
    'select',
    attrs,
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: v === value }, label);
    }),
  );
}

/// "Next page" for cursor paging: `onNext(endCursor)`; `onFirst()` goes back to the start.
export function pager(pageInfo, { onNext, onFirst, total, shown }) {
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'pages' },
    total !== undefined ? h('span', {}, `${num(shown)} shown of ${num(total)}`) : null,
    onFirst ? h('button', { type: 'button', onclick: onFirst }, 'First page') : null,
    h('button', { type: 'button', disabled: !(pageInfo && pageInfo.hasNextPage), onclick: () => onNext(pageInfo.endCursor) }, 'Next page'),
  );
}

/// A link inside the console (hash routing).
export function link(href, text, attrs = {}) {
  return h('a', { href: `#${href}`, ...attrs }, text);
}

/// ISO date (YYYY-MM-DD) of a Date in UTC.
export function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

/// The browser's IANA time zone (the API's `timeZone` argument).
export function timeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/// The API's period presets (`PeriodPreset`) with their labels, and a custom range.
export const PERIOD_PRESETS = [
  ['LAST_24_HOURS', 'Last 24 hours (hourly)'],
  ['LAST_7_DAYS', 'Last 7 days (daily)'],
  ['LAST_30_DAYS', 'Last 30 days (daily)'],
  ['THIS_MONTH', 'This month (daily)'],
  ['THIS_YEAR', 'This year (monthly)'],
  ['CUSTOM', 'Custom range…'],
];

/// The pager of a job list kept in `list` ({ after, pageNo }): "Next page" and "First page"
/// move it and call `reload()`.
export function listPager(pageInfo, list, reload) {
  return pager(pageInfo, {
    onNext: (cursor) => {
      list.after = cursor;
      list.pageNo += 1;
      reload();
    },
    onFirst: list.after
      ? () => {
          list.after = null;
          list.pageNo = 1;
          reload();
        }
      : null,
  });
}
