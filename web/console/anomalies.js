// The Anomalies page (#/anomalies): what the hourly forecast pass found unusual in the fleet
// (`anomalies(filter, first, after)`, newest day first, then the highest score), filtered by
// kind, least severity, status (open by default), one SIM and a range of days — the filters
// live in the hash query, rewritten with history.replaceState so changing one does not re-route.
// "More" reads the next page under the rows shown. Each row opens its evidence (a chart of the
// days up to it against the usual range); fleet managers dismiss an anomaly as expected
// behaviour (with a comment and for how long) or confirm it, and the row shows who decided.
// Semantics: docs/forecasts.md.

import { h, mount, errorBox, loading, field, select, link } from './ui.js';
import {
  ANOMALY_FIELDS,
  KINDS,
  STATUSES,
  dayEl,
  decideControls,
  decidedText,
  decisionEl,
  evidenceChart,
  kindWord,
  severityBadge,
  statusBadge,
} from './anomaly-parts.js';

const ANOMALIES = `query ConsoleAnomalies($tenantId: ID, $filter: AnomalyFilter, $first: Int, $after: String) {
  anomalies(tenantId: $tenantId, filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { ${ANOMALY_FIELDS} sim { iccid msisdn device { name } customer { name } } }
  }
}`;

const PAGE_SIZE = 50;
const MIN_SEVERITIES = [
  ['', 'Any severity'],
  ['MEDIUM', 'Medium or high'],
  ['HIGH', 'High only'],
];
const STATUS_FILTERS = [...STATUSES, ['ALL', 'Any status']];
const DAY = /^\d{4}-\d{2}-\d{2}$/;

export async function render(main, ctx) {
  const params = new URLSearchParams(ctx.query);
  const pick = (value, options, fallback) => (options.some(([k]) => k === value) ? value : fallback);
  let kind = pick(params.get('kind'), KINDS.map((k) => [k.kind]), '');
  let severity = pick(params.get('severity'), MIN_SEVERITIES, '');
  let status = pick(params.get('status'), STATUS_FILTERS, 'OPEN');
  let iccid = params.get('iccid') || null;
  let from = DAY.test(params.get('from') || '') ? params.get('from') : '';
  let to = DAY.test(params.get('to') || '') ? params.get('to') : '';

  let left = false;
  ctx.onLeave(() => {
    left = true;
  });

  // ---- the filters -----------------------------------------------------------------------
  const kindSel = select([['', 'Every kind'], ...KINDS.map((k) => [k.kind, k.word])], kind, {
    name: 'kind',
    'data-testid': 'anomalies-kind',
    onchange: (ev) => apply({ kind: ev.target.value }),
  });
  const severitySel = select(MIN_SEVERITIES, severity, {
    name: 'severity',
    'data-testid': 'anomalies-severity',
    onchange: (ev) => apply({ severity: ev.target.value }),
  });
  const statusSel = select(STATUS_FILTERS, status, {
    name: 'status',
    'data-testid': 'anomalies-status',
    onchange: (ev) => apply({ status: ev.target.value }),
  });
  const fromInput = h('input', { type: 'date', name: 'from', value: from, 'data-testid': 'anomalies-from', onchange: (ev) => apply({ from: ev.target.value }) });
  const toInput = h('input', { type: 'date', name: 'to', value: to, 'data-testid': 'anomalies-to', onchange: (ev) => apply({ to: ev.target.value }) });
  const simFilter = h('div', { class: 'filter-note' });
  const notice = h('div', { 'aria-live': 'polite', 'data-testid': 'anomalies-message' });
  const results = h('div', {});

  function drawSimFilter() {
    mount(
      simFilter,
      iccid
        ? [
            'Only the anomalies of SIM ',
            link(`/sims/${encodeURIComponent(iccid)}`, iccid, { class: 'mono' }),
            ' ',
            h('button', { type: 'button', 'data-testid': 'anomalies-all-sims', onclick: () => apply({ iccid: null }) }, 'Show every SIM'),
          ]
        : null,
    );
  }

  function apply(change) {
    if ('kind' in change) kind = change.kind;
    if ('severity' in change) severity = change.severity;
    if ('status' in change) status = change.status;
    if ('iccid' in change) iccid = change.iccid;
    if ('from' in change) from = change.from;
    if ('to' in change) to = change.to;
    const q = new URLSearchParams();
    if (kind) q.set('kind', kind);
    if (severity) q.set('severity', severity);
    if (status !== 'OPEN') q.set('status', status);
    if (iccid) q.set('iccid', iccid);
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    const qs = q.toString();
    history.replaceState(null, '', `#/anomalies${qs ? `?${qs}` : ''}`);
    drawSimFilter();
    load();
  }

  function filter() {
    return {
      kinds: kind ? [kind] : [],
      minSeverity: severity || null,
      statuses: status === 'ALL' ? [] : [status],
      iccid,
      from: from || null,
      to: to || null,
    };
  }

  mount(
    main,
    h('h1', {}, 'Anomalies'),
    h(
      'p',
      { class: 'muted' },
      'What the hourly forecast pass found unusual, SIM by SIM: usage spikes, silences, session storms, new networks and countries. ',
      'Dismiss what is expected — the detector takes it into account from the next pass on — or confirm a real problem.',
    ),
    h(
      'div',
      { class: 'toolbar anomalies-toolbar', role: 'group', 'aria-label': 'Filter the anomalies' },
      field('Kind', kindSel),
      field('Severity at least', severitySel),
      field('Status', statusSel),
      field('From day', fromInput),
      field('To day', toInput),
      simFilter,
    ),
    notice,
    results,
  );
  drawSimFilter();

  // ---- the list --------------------------------------------------------------------------
  const COLUMNS = [
    { label: 'Day', cell: (a) => dayEl(a.day) },
    { label: 'SIM', cell: simCell },
    { label: 'Kind', cell: (a) => h('span', { 'data-testid': 'anomaly-kind' }, kindWord(a.kind)) },
    { label: 'Severity', cell: (a) => severityBadge(a.severity) },
    { label: 'What happened', cell: whatCell, wrap: true },
    { label: 'Status', cell: statusCell, wrap: true },
  ];

  function simCell(a) {
    const s = a.sim;
    const name = s && s.device ? s.device.name : null;
    return h(
      'span',
      { class: 'anomaly-sim' },
      link(`/sims/${encodeURIComponent(a.iccid)}`, a.iccid, { class: 'mono', 'data-testid': 'anomaly-sim' }),
      name ? h('small', { class: 'block' }, `in ${name}`) : null,
      s && s.customer ? h('small', { class: 'block' }, s.customer.name) : null,
    );
  }

  let seq = 0;
  let shown = []; // the anomalies on the page, in the API's order
  let pageInfo = null;
  const rows = new Map(); // id → { tr, evidence }
  let tbody = null;

  function whatCell(a) {
    const entry = () => rows.get(a.id);
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'link-button',
        'aria-expanded': 'false',
        'aria-controls': `evidence-${a.id}`,
        'data-testid': 'anomaly-evidence-toggle',
        onclick: () => {
          const e = entry();
          if (!e) return;
          const open = e.evidence.hidden;
          e.evidence.hidden = !open;
          toggle.setAttribute('aria-expanded', String(open));
          toggle.textContent = open ? 'Hide the evidence' : 'Show the evidence';
          const cell = e.evidence.firstChild;
          if (open && !cell.firstChild) mount(cell, evidenceChart(a));
        },
      },
      'Show the evidence',
    );
    return h('div', {}, h('span', { 'data-testid': 'anomaly-sentence' }, a.sentence), h('br'), toggle);
  }

  function statusCell(a) {
    return h(
      'div',
      { class: 'anomaly-status-cell' },
      statusBadge(a.status),
      decisionEl(ctx, a),
      decideControls(ctx, a, (fresh) => decided({ ...a, ...fresh, sim: a.sim })),
    );
  }

  function rowFor(a, evidenceOpen = false) {
    const tr = h(
      'tr',
      { 'data-testid': 'anomaly-row', dataset: { id: a.id, kind: a.kind, severity: a.severity, status: a.status } },
      COLUMNS.map((c) => h('td', { class: c.wrap ? 'wrap' : null, dataset: { label: c.label } }, c.cell(a))),
    );
    const evidence = h(
      'tr',
      { class: 'evidence-row', id: `evidence-${a.id}`, hidden: !evidenceOpen, 'data-testid': 'anomaly-evidence', dataset: { id: a.id } },
      h('td', { colspan: String(COLUMNS.length), class: 'evidence-cell', dataset: { label: 'Evidence' } }),
    );
    return { tr, evidence };
  }

  function add(a, before = null) {
    const e = rowFor(a);
    rows.set(a.id, e);
    tbody.insertBefore(e.tr, before);
    tbody.insertBefore(e.evidence, before);
  }

  /// The row of a decided anomaly, redrawn in place (it stays until the list is read again,
  /// whatever the status filter), its evidence as it was.
  function decided(a) {
    const old = rows.get(a.id);
    if (!old) return;
    const i = shown.findIndex((x) => x.id === a.id);
    if (i >= 0) shown[i] = a;
    const open = !old.evidence.hidden;
    const next = rowFor(a, open);
    if (open) {
      mount(next.evidence.firstChild, evidenceChart(a));
      const t = next.tr.querySelector('[data-testid=anomaly-evidence-toggle]');
      t.setAttribute('aria-expanded', 'true');
      t.textContent = 'Hide the evidence';
    }
    old.tr.replaceWith(next.tr);
    old.evidence.replaceWith(next.evidence);
    rows.set(a.id, next);
    mount(notice, h('p', { class: 'notice', role: 'status' }, decidedText(a)));
    const focus = next.tr.querySelector('[data-testid=anomaly-decision]');
    if (focus) focus.focus();
  }

  function moreEl() {
    if (!(pageInfo && pageInfo.hasNextPage)) return h('p', { class: 'muted', 'data-testid': 'anomalies-end' }, `${shown.length} shown: that is all.`);
    const more = h(
      'button',
      {
        type: 'button',
        'data-testid': 'anomalies-more',
        onclick: async () => {
          more.disabled = true;
          await loadMore(more);
        },
      },
      'More',
    );
    return h('nav', { class: 'pager', 'aria-label': 'more anomalies' }, h('span', { 'aria-live': 'polite' }, `${shown.length} shown, newest first`), more);
  }

  let pagerHost = null;

  function drawList() {
    rows.clear();
    if (!shown.length) {
      tbody = null;
      mount(
        results,
        h(
          'p',
          { class: 'empty', 'data-testid': 'anomalies-empty' },
          status === 'OPEN' && !kind && !severity && !iccid && !from && !to
            ? 'No open anomalies: nothing unusual waits for a decision.'
            : 'No anomalies match these filters.',
        ),
      );
      return;
    }
    tbody = h('tbody', {});
    for (const a of shown) add(a);
    mount(
      results,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'stack-table anomalies-table', 'data-testid': 'anomalies-table' },
          h('caption', {}, 'Anomalies, newest day first, then the most unusual'),
          h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, c.label)))),
          tbody,
        ),
      ),
      (pagerHost = h('div', {}, moreEl())),
    );
  }

  async function read(after) {
    return (await ctx.api.gql(ANOMALIES, { tenantId: ctx.tenantId, filter: filter(), first: PAGE_SIZE, after })).anomalies;
  }

  let firstDraw = true;
  async function load() {
    seq += 1;
    const mine = seq;
    mount(notice);
    results.setAttribute('aria-busy', 'true');
    if (!results.firstChild) mount(results, loading('Loading anomalies…'));
    try {
      const page = await read(null);
      if (left || mine !== seq) return;
      shown = page.nodes;
      pageInfo = page.pageInfo;
      drawList();
    } catch (err) {
      if (left || mine !== seq) return;
      mount(results, errorBox(err), h('p', { class: 'muted' }, 'Change the filters or reload the page to try again.'));
    } finally {
      if (mine === seq) results.removeAttribute('aria-busy');
      if (firstDraw && !left) {
        firstDraw = false;
        main.dataset.ready = 'anomalies';
      }
    }
  }

  async function loadMore(button) {
    const mine = seq;
    try {
      const page = await read(pageInfo.endCursor);
      if (left || mine !== seq) return;
      const fresh = page.nodes.filter((a) => !rows.has(a.id));
      shown.push(...fresh);
      pageInfo = page.pageInfo;
      for (const a of fresh) add(a);
      mount(pagerHost, moreEl());
      // The first new row takes the focus, so keyboard users go on reading where they were.
      const first = fresh.length ? rows.get(fresh[0].id).tr.querySelector('a, button') : null;
      if (first) first.focus();
    } catch (err) {
      if (left || mine !== seq) return;
      button.disabled = false;
      mount(notice, errorBox(err));
    }
  }

  await load();
}
