// The alert inbox (#/alerts): the tenant's alerts newest first, paged forward by the API's
// cursors (`alerts(filter, first, after)`; the page keeps the cursors it was given to go back),
// filtered by state (open by default: pending or firing) and severity, and by one SIM when the
// address names it (#/alerts?iccid=…, the SIM page's link). Filters live in the hash query,
// rewritten with history.replaceState so changing one does not re-route.
//
// The page follows the `alerts` subscription while it is open: an alert that changes is redrawn
// in place, a new one that belongs on the page appears on top. Fleet managers acknowledge an
// open alert here, with an optional comment; the row shows who, when and why.

import { h, mount, errorBox, loading, field, select, link } from './ui.js';
import { cursorPager } from './fleet.js';
import {
  SEVERITIES,
  ALERT_FIELDS,
  OPEN_STATES,
  severityBadge,
  severityWord,
  stateBadge,
  valueCell,
  sinceCell,
  acknowledgeCell,
  tickAgo,
} from './alert-parts.js';

const ALERTS = `query ConsoleAlerts($tenantId: ID, $filter: AlertFilterInput, $first: Int, $after: String) {
  alerts(tenantId: $tenantId, filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { ${ALERT_FIELDS} } }
  }
}`;
const LIVE = `subscription ConsoleAlertsLive { alerts { ${ALERT_FIELDS} } }`;

const STATE_FILTERS = [
  ['OPEN', 'Open (pending or firing)', OPEN_STATES],
  ['FIRING', 'Firing', ['FIRING']],
  ['PENDING', 'Pending', ['PENDING']],
  ['RESOLVED', 'Resolved', ['RESOLVED']],
  ['ALL', 'All', []],
];
const PAGE_SIZE = 25;

export async function render(main, ctx) {
  const params = new URLSearchParams(ctx.query);
  let stateKey = STATE_FILTERS.some(([k]) => k === params.get('state')) ? params.get('state') : 'OPEN';
  let severity = SEVERITIES.some(([s]) => s === params.get('severity')) ? params.get('severity') : '';
  let iccid = params.get('iccid') || null;

  let left = false;
  const stops = [];
  ctx.onLeave(() => {
    left = true;
    stops.forEach((fn) => fn());
  });

  // ---- the filters -----------------------------------------------------------------------
  const stateSel = select(
    STATE_FILTERS.map(([k, label]) => [k, label]),
    stateKey,
    { name: 'state', 'data-testid': 'alerts-state', onchange: (ev) => apply({ stateKey: ev.target.value }) },
  );
  const severitySel = select([['', 'Every severity'], ...SEVERITIES], severity, {
    name: 'severity',
    'data-testid': 'alerts-severity',
    onchange: (ev) => apply({ severity: ev.target.value }),
  });
  const simFilter = h('div', { class: 'filter-note' });
  const liveStatus = h('small', { class: 'live-status', 'aria-live': 'polite', 'data-testid': 'alerts-live' });
  const notice = h('div', { 'aria-live': 'polite' });
  // Not a live region itself (a redrawn table would be read out whole): arrivals are said in
  // `liveStatus`.
  const results = h('div', {});

  function drawSimFilter() {
    mount(
      simFilter,
      iccid
        ? [
            'Only the alerts of SIM ',
            ctx.caps.readSims ? link(`/sims/${encodeURIComponent(iccid)}`, iccid, { class: 'mono' }) : h('span', { class: 'mono' }, iccid),
            ' ',
            h('button', { type: 'button', 'data-testid': 'alerts-all-sims', onclick: () => apply({ iccid: null }) }, 'Show every SIM'),
          ]
        : null,
    );
  }

  function apply(change) {
    if ('stateKey' in change) stateKey = change.stateKey;
    if ('severity' in change) severity = change.severity;
    if ('iccid' in change) iccid = change.iccid;
    const q = new URLSearchParams();
    if (stateKey !== 'OPEN') q.set('state', stateKey);
    if (severity) q.set('severity', severity);
    if (iccid) q.set('iccid', iccid);
    const qs = q.toString();
    history.replaceState(null, '', `#/alerts${qs ? `?${qs}` : ''}`);
    drawSimFilter();
    cursors = [null];
    load();
  }

  function filter() {
    const states = STATE_FILTERS.find(([k]) => k === stateKey)[2];
    return { states, severities: severity ? [severity] : [], iccid };
  }

  /// Whether an alert belongs in the list as filtered (for alerts pushed live).
  function matches(a) {
    const f = filter();
    return (
      (f.states.length === 0 || f.states.includes(a.state)) &&
      (f.severities.length === 0 || f.severities.includes(a.severity)) &&
      (!iccid || a.iccid === iccid)
    );
  }

  mount(
    main,
    h('h1', {}, 'Alerts'),
    h(
      'div',
      { class: 'toolbar alerts-toolbar' },
      field('Show', stateSel),
      field('Severity', severitySel),
      ctx.caps.readAlertRules ? h('p', { class: 'alerts-links' }, link('/alerts/rules', 'Alert rules', { 'data-testid': 'alerts-rules-link' })) : null,
      simFilter,
    ),
    liveStatus,
    notice,
    results,
  );
  drawSimFilter();

  // ---- the list --------------------------------------------------------------------------
  let cursors = [null];
  let seq = 0;
  let shown = []; // the alerts on the page, newest first
  let pageInfo = null;
  const rows = new Map(); // alert id → <tr>
  let tbody = null;
  let pagerHost = null; // where the pager sits, redrawn when a live alert joins the page

  const COLUMNS = [
    { label: 'Severity', cell: (a) => severityBadge(a.severity) },
    { label: 'State', cell: (a) => stateBadge(a.state) },
    { label: 'Rule', cell: (a) => (a.rule ? h('span', { 'data-testid': 'alert-rule' }, a.rule.name) : h('span', { class: 'muted' }, 'a rule of your provider')), wrap: true },
    { label: 'SIM', cell: subjectCell },
    { label: 'Value', cell: valueCell, wrap: true },
    { label: 'Since', cell: sinceCell },
    { label: 'Acknowledgement', cell: (a) => acknowledgeCell(ctx, a, acknowledged), wrap: true, ack: true },
  ];

  function subjectCell(a) {
    if (!a.iccid) return h('span', { title: 'not about a SIM' }, a.subject);
    return ctx.caps.readSims
      ? link(`/sims/${encodeURIComponent(a.iccid)}`, a.iccid, { class: 'mono', 'data-testid': 'alert-sim' })
      : h('span', { class: 'mono' }, a.iccid);
  }

  function rowFor(a, keep) {
    const tr = h(
      'tr',
      { 'data-testid': 'alert-row', dataset: { id: a.id, state: a.state, severity: a.severity } },
      COLUMNS.map((c) => {
        // An acknowledge form someone is typing in survives an update of its alert.
        if (c.ack && keep) return keep;
        return h('td', { class: c.wrap ? 'wrap' : null, dataset: { label: c.label } }, c.cell(a));
      }),
    );
    return tr;
  }

  function acknowledged(a) {
    replace(a);
    mount(notice, h('p', { class: 'notice', role: 'status' }, `Acknowledged the alert on ${a.subject}.`));
    // The form the focus was in is gone: the acknowledgement that replaced it takes it.
    const ack = rows.get(a.id) && rows.get(a.id).querySelector('[data-testid=alert-ack]');
    if (ack) ack.focus();
  }

  /// Redraws the row of `a` in place (returns whether it is on the page).
  function replace(a) {
    const old = rows.get(a.id);
    if (!old) return false;
    const i = shown.findIndex((x) => x.id === a.id);
    if (i >= 0) shown[i] = a;
    const ackTd = old.querySelector('td[data-label=Acknowledgement]');
    const typing = ackTd && ackTd.querySelector('form') && !a.acknowledged && OPEN_STATES.includes(a.state) ? ackTd : null;
    const tr = rowFor(a, typing);
    old.replaceWith(tr);
    rows.set(a.id, tr);
    return true;
  }

  function flash(tr) {
    tr.classList.add('flash');
    tr.addEventListener('animationend', () => tr.classList.remove('flash'), { once: true });
  }

  function drawList() {
    rows.clear();
    if (shown.length === 0) {
      tbody = null;
      mount(
        results,
        h(
          'p',
          { class: 'empty', 'data-testid': 'alerts-empty' },
          cursors.length > 1 ? 'No more alerts.' : stateKey === 'OPEN' ? 'No open alerts. All quiet.' : 'No alerts match these filters.',
        ),
        pagerEl(),
      );
      return;
    }
    tbody = h('tbody', {});
    for (const a of shown) {
      const tr = rowFor(a);
      rows.set(a.id, tr);
      tbody.appendChild(tr);
    }
    mount(
      results,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'alerts-table', 'data-testid': 'alerts-table' },
          h('caption', {}, 'Alerts, newest first'),
          h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, c.label)))),
          tbody,
        ),
      ),
      (pagerHost = h('div', {}, pagerEl())),
    );
  }

  function pagerEl() {
    return cursorPager({
      pageInfo,
      page: cursors.length - 1,
      size: PAGE_SIZE,
      shown: shown.length,
      noun: 'alerts',
      testid: 'alerts-pager',
      onFirst: () => {
        cursors = [null];
        load();
      },
      onPrevious: () => {
        if (cursors.length > 1) cursors.pop();
        load();
      },
      onNext: (c) => {
        cursors.push(c);
        load();
      },
    });
  }

  let firstDraw = true;
  async function load() {
    seq += 1;
    const mine = seq;
    mount(notice);
    results.setAttribute('aria-busy', 'true');
    if (!results.firstChild) mount(results, loading('Loading alerts…'));
    try {
      const data = await ctx.api.gql(ALERTS, { tenantId: ctx.tenantId, filter: filter(), first: PAGE_SIZE, after: cursors[cursors.length - 1] });
      if (left || mine !== seq) return;
      shown = data.alerts.edges.map((e) => e.node);
      pageInfo = data.alerts.pageInfo;
      drawList();
    } catch (err) {
      if (left || mine !== seq) return;
      mount(results, errorBox(err), h('p', { class: 'muted' }, 'Change the filters or reload the page to try again.'));
    } finally {
      if (mine === seq) results.removeAttribute('aria-busy');
      if (firstDraw && !left) {
        firstDraw = false;
        main.dataset.ready = 'alerts';
      }
    }
  }

  // ---- live ------------------------------------------------------------------------------
  let received = 0;
  let waiting = 0; // new alerts that belong on the first page while another page is shown

  function arrived(a) {
    received += 1;
    main.dataset.updates = String(received);
    if (replace(a)) {
      flash(rows.get(a.id));
      return;
    }
    if (!matches(a)) return;
    const newest = shown[0];
    const isNew = !newest || new Date(a.startedAt) >= new Date(newest.startedAt);
    if (isNew) liveStatus.textContent = `New alert: ${severityWord(a.severity)}, ${a.rule ? a.rule.name : 'an alert'} on ${a.subject}. Following alerts live.`;
    if (cursors.length > 1) {
      if (isNew) {
        waiting += 1;
        mount(
          notice,
          h(
            'p',
            { class: 'notice', role: 'status' },
            `${waiting} new alert${waiting === 1 ? '' : 's'} on the first page. `,
            h(
              'button',
              {
                type: 'button',
                onclick: () => {
                  waiting = 0;
                  cursors = [null];
                  load();
                },
              },
              'Show the newest',
            ),
          ),
        );
      }
      return;
    }
    // On the first page: in its place by start time, unless it is older than everything shown
    // on a page with more after it (then it belongs to a later page).
    const oldest = shown[shown.length - 1];
    if (pageInfo && pageInfo.hasNextPage && oldest && new Date(a.startedAt) < new Date(oldest.startedAt)) return;
    let i = shown.findIndex((x) => new Date(x.startedAt) <= new Date(a.startedAt));
    if (i < 0) i = shown.length;
    shown.splice(i, 0, a);
    if (!tbody) {
      drawList();
    } else {
      const tr = rowFor(a);
      rows.set(a.id, tr);
      tbody.insertBefore(tr, tbody.children[i] || null);
      if (pagerHost) mount(pagerHost, pagerEl());
    }
    flash(rows.get(a.id));
  }

  if (ctx.tenantId) {
    // The subscription follows the caller's own tenant; another tenant's page is read on demand.
    mount(
      liveStatus,
      'Live updates follow your own tenant only; ',
      h('button', { type: 'button', onclick: () => load() }, 'Refresh'),
      ' to see this tenant’s latest.',
    );
  } else {
    liveStatus.textContent = 'Following alerts live.';
    stops.push(
      ctx.api.subscribe(
        LIVE,
        {},
        (data) => {
          if (!left && data && data.alerts) arrived(data.alerts);
        },
        (err) => {
          if (!left) liveStatus.textContent = `Live updates stopped: ${err.message || err}. Reload the page to follow alerts again.`;
        },
      ),
    );
  }
  stops.push(tickAgo(main));

  await load();
}
