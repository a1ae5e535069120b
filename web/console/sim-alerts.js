// Two cards of the SIM page (sim.js): its data quota (`Sim.quota`: used of the limit, the stage
// reached, what happens at the limit, when the period ends; docs/fleet.md "Data quotas") and its
// alerts, open ones first then the latest resolved, kept current by the `alerts` subscription,
// with a link to all of them on the Alerts page. Each loads on its own.

import { h, mount, bytes, dateTime, errorBox, loading, link } from './ui.js';
import {
  ALERT_FIELDS,
  OPEN_STATES,
  severityBadge,
  stateBadge,
  valueCell,
  sinceCell,
  acknowledgeCell,
  agoEl,
  personEl,
} from './alert-parts.js';

const QUOTA = `query ConsoleSimQuota($iccid: Iccid!) {
  sim(iccid: $iccid) {
    iccid
    quota {
      limitBytes usedBytes remainingBytes overshootBytes percent state stages stageReached
      action actionState actionReason periodStart periodEnd setBy updatedAt
    }
  }
}`;
const SIM_ALERTS = `query ConsoleSimAlerts($tenantId: ID, $filter: AlertFilterInput, $first: Int) {
  alerts(tenantId: $tenantId, filter: $filter, first: $first) {
    pageInfo { hasNextPage }
    nodes { ${ALERT_FIELDS} }
  }
}`;
const LIVE = 'subscription ConsoleSimAlertChanges { alerts { id iccid } }';

const QUOTA_STATE = {
  WITHIN: 'Within the limit',
  WARNING: 'Past a warning stage',
  EXCEEDED: 'Limit reached',
};
const QUOTA_ACTION = {
  NOTIFY: 'Tell people; the SIM keeps its service',
  SUSPEND: 'Suspend the SIM',
};
const ACTION_STATE = {
  PENDING: 'Suspension pending: sent to the network within a minute',
  REQUESTED: 'Suspension sent to the network',
  DONE: 'Suspended for this period',
  FAILED: 'Suspension failed',
};
/// Shown at most this many alerts on the card; the Alerts page has the rest.
const RECENT = 10;

function dl(pairs) {
  return h(
    'dl',
    { class: 'props' },
    pairs.filter(Boolean).map(([k, v, attrs]) => [h('dt', {}, k), h('dd', attrs || {}, v === null || v === undefined || v === '' ? h('span', { class: 'muted' }, '—') : v)]),
  );
}

// ---- quota ---------------------------------------------------------------------------------

function drawQuota(ctx, card, q) {
  if (!q) {
    mount(
      card,
      h('h2', {}, 'Quota'),
      h('p', { 'data-testid': 'sim-quota-none' }, 'No quota.'),
      h('p', { class: 'muted' }, 'This SIM has no data limit per period; fleet managers set one through the API (setSimQuota).'),
    );
    card.dataset.state = 'NONE';
    return;
  }
  const limit = Number(q.limitBytes);
  const used = Number(q.usedBytes);
  const percent = Number(q.percent);
  const percentText = `${percent.toFixed(1)} %`;
  card.dataset.state = q.state;
  mount(
    card,
    h('h2', {}, 'Quota ', h('span', { class: `badge quota-${q.state}`, 'data-testid': 'sim-quota-state' }, QUOTA_STATE[q.state] || q.state)),
    h(
      'p',
      { class: 'quota-used', 'data-testid': 'sim-quota-used' },
      h('strong', {}, bytes(q.usedBytes)),
      ` of ${bytes(q.limitBytes)} used this period · `,
      h('strong', { class: 'nowrap', 'data-testid': 'sim-quota-percent' }, percentText),
    ),
    h('progress', {
      class: `quota-bar quota-${q.state}`,
      max: String(limit),
      value: String(Math.min(used, limit)),
      'aria-label': `${percentText} of the data quota used`,
    }),
    dl([
      ['Left', Number(q.remainingBytes) > 0 ? bytes(q.remainingBytes) : 'nothing'],
      Number(q.overshootBytes) > 0 ? ['Past the limit', `${bytes(q.overshootBytes)} (counted before the SIM was stopped)`] : null,
      ['Warnings at', q.stages.length ? q.stages.map((s) => `${s} %`).join(', ') : 'none'],
      ['Reached', q.stageReached ? `${q.stageReached} %${q.stageReached >= 100 ? ' (the limit)' : ''}` : 'no stage yet'],
      ['At the limit', QUOTA_ACTION[q.action] || q.action, { 'data-testid': 'sim-quota-action' }],
      q.actionState && q.actionState !== 'NONE'
        ? ['Action', [ACTION_STATE[q.actionState] || q.actionState, q.actionReason ? `: ${q.actionReason}` : ''], { 'data-testid': 'sim-quota-action-state' }]
        : null,
      ['Period started', dateTime(q.periodStart)],
      ['Period ends', h('span', {}, agoIn(q.periodEnd), h('br'), h('small', {}, 'The usage counts from zero again then.')), { 'data-testid': 'sim-quota-period-end' }],
      ['Set by', h('span', {}, personEl(ctx, q.setBy), ', ', agoEl(q.updatedAt))],
    ]),
  );
}

/// "in 12 days" for a time ahead, with the exact time in the tooltip.
function agoIn(v) {
  const s = Math.round((new Date(v).getTime() - Date.now()) / 1000);
  let text;
  if (s <= 0) text = 'ended';
  else if (s < 3600) text = `in ${Math.max(1, Math.round(s / 60))} min`;
  else if (s < 86400 * 2) text = `in ${Math.round(s / 3600)} h`;
  else text = `in ${Math.round(s / 86400)} days`;
  return h('time', { datetime: v, title: dateTime(v) }, `${dateTime(v)} (${text})`);
}

export async function loadQuota(ctx, iccid, card, alive) {
  if (!card.firstChild) mount(card, h('h2', {}, 'Quota'), loading('Loading the quota…'));
  try {
    const data = await ctx.api.gql(QUOTA, { iccid });
    if (!alive()) return;
    drawQuota(ctx, card, data.sim ? data.sim.quota : null);
  } catch (err) {
    if (alive()) mount(card, h('h2', {}, 'Quota'), errorBox(err));
  }
}

// ---- alerts --------------------------------------------------------------------------------

/// The SIM's alerts card: loads now, follows `alerts` for this SIM; returns the stop function.
export function startAlerts(ctx, iccid, card, alive) {
  let timer = null;
  let seq = 0;
  const all = `/alerts?iccid=${encodeURIComponent(iccid)}&state=ALL`;

  async function load() {
    seq += 1;
    const mine = seq;
    if (!card.firstChild) mount(card, h('h2', {}, 'Alerts'), loading('Loading the alerts…'));
    let conn;
    try {
      conn = (await ctx.api.gql(SIM_ALERTS, { tenantId: ctx.tenantId, filter: { iccid }, first: RECENT })).alerts;
    } catch (err) {
      if (alive() && mine === seq) mount(card, h('h2', {}, 'Alerts'), errorBox(err), h('p', {}, link(all, 'All alerts of this SIM')));
      return;
    }
    if (!alive() || mine !== seq) return;
    // Open ones first, each part newest first (as the API answered).
    const open = conn.nodes.filter((a) => OPEN_STATES.includes(a.state));
    const past = conn.nodes.filter((a) => !OPEN_STATES.includes(a.state));
    const rows = [...open, ...past];
    card.dataset.open = String(open.length);
    mount(
      card,
      h('h2', {}, 'Alerts'),
      h(
        'p',
        { class: 'muted', 'data-testid': 'sim-alerts-summary' },
        open.length ? `${open.length} open alert${open.length === 1 ? '' : 's'}.` : 'No open alerts.',
        conn.pageInfo.hasNextPage ? ` The latest ${RECENT} are shown.` : '',
      ),
      rows.length
        ? h(
            'ul',
            { class: 'plain sim-alerts', 'data-testid': 'sim-alerts' },
            rows.map((a) =>
              h(
                'li',
                { dataset: { id: a.id, state: a.state }, 'data-testid': 'sim-alert' },
                h('div', { class: 'sim-alert-head' }, severityBadge(a.severity), ' ', stateBadge(a.state), ' ', h('strong', {}, a.rule ? a.rule.name : 'Alert')),
                h('div', {}, valueCell(a)),
                h('div', { class: 'muted' }, sinceCell(a)),
                h('div', {}, acknowledgeCell(ctx, a, () => load())),
              ),
            ),
          )
        : h('p', { class: 'empty', 'data-testid': 'sim-alerts-empty' }, 'No alerts for this SIM.'),
      h('p', {}, link(all, 'All alerts of this SIM', { 'data-testid': 'sim-alerts-link' })),
    );
  }

  load();
  // The subscription follows the caller's own tenant: only then is it this SIM's.
  if (ctx.tenantId) return () => {};
  const stop = ctx.api.subscribe(
    LIVE,
    {},
    (data) => {
      if (!alive() || !data || !data.alerts || data.alerts.iccid !== iccid) return;
      // An acknowledge form being filled in is not redrawn under the person typing.
      if (card.querySelector('form.ack-form')) return;
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    },
    () => {},
  );
  return () => {
    clearTimeout(timer);
    stop();
  };
}
