// What the alert pages share (alerts.js, alert-rules.js, the SIM page's alert card): the
// vocabulary in words (severities, states, metrics, targets), an alert's value in its metric's
// unit, who acknowledged it (a name, not the user id the API records), and the acknowledge
// form. Semantics: docs/fleet.md ("Alerts").

import { h, mount, bytes, num, dateTime, ago, errorBox, loading, field } from './ui.js';

// ---- vocabulary ------------------------------------------------------------------------------

/// Most severe first, as the API orders `openAlerts`.
export const SEVERITIES = [
  ['CRITICAL', 'Critical'],
  ['MAJOR', 'Major'],
  ['MINOR', 'Minor'],
  ['WARNING', 'Warning'],
  ['INFO', 'Info'],
];
const SEVERITY_WORD = Object.fromEntries(SEVERITIES);

export const ALERT_STATES = [
  ['PENDING', 'Pending'],
  ['FIRING', 'Firing'],
  ['RESOLVED', 'Resolved'],
];
const STATE_WORD = Object.fromEntries(ALERT_STATES);

export const OPEN_STATES = ['PENDING', 'FIRING'];

/// What a rule measures, in words, with the unit of its threshold (null: an event without one).
export const METRICS = [
  { metric: 'DATA_IN_DAY', word: 'Data in a day', unit: 'bytes', hint: 'Bytes up and down today, in the tenant’s time zone.' },
  { metric: 'DATA_IN_PERIOD', word: 'Data in the billing period', unit: 'bytes', hint: 'Bytes up and down this calendar month, in the tenant’s time zone.' },
  { metric: 'OFFLINE_HOURS', word: 'Hours without a session', unit: 'hours', min: 1, max: 168, hint: 'An active SIM not seen for this long; SIMs never seen are not offline.' },
  { metric: 'SESSIONS_IN_HOUR', word: 'Sessions in an hour', unit: 'sessions', min: 1, max: 100000, hint: 'Sessions started in the current hour (UTC).' },
  { metric: 'USAGE_OVER_MEDIAN', word: 'Usage over the median day', unit: 'times the median day', min: 2, max: 100, hint: 'Today’s bytes (UTC) against the SIM’s median day of the 30 before (at least 7 days with traffic).' },
  { metric: 'QUOTA_STAGE', word: 'Data quota stage reached', unit: 'percent', min: 1, max: 100, hint: 'A SIM’s data quota reached this share of its limit or more. An event.' },
  { metric: 'STATE_CHANGED', word: 'SIM changed state', unit: null, event: true, hint: 'A SIM changed state (into the state chosen, or any). An event.' },
  { metric: 'NEW_NETWORK', word: 'Traffic on a new network', unit: null, event: true, hint: 'A network the SIM did not use in the 30 days before. An event.' },
  { metric: 'NEW_COUNTRY', word: 'Traffic in a new country', unit: null, event: true, hint: 'A country the SIM did not use in the 30 days before. An event.' },
  { metric: 'FIRST_TRAFFIC', word: 'First traffic of a SIM', unit: null, event: true, hint: 'The first session Ioto ever counts for the SIM. An event.' },
  { metric: 'BULK_JOB_FINISHED', word: 'Bulk job finished', unit: null, event: true, hint: 'One of the tenant’s bulk jobs reached its final status; watches every SIM. An event.' },
  // Not in the published schema yet (the API's cost rules are being written): named when a rule
  // has one, offered in the editor only for a rule that has one already.
  { metric: 'COST_IN_DAY', word: 'Cost in a day', unit: 'hundredths of the currency', offer: false, hint: 'What the SIM’s traffic cost today (UTC), as the latest rating priced it; 500 is 5.00.' },
  { metric: 'COST_IN_PERIOD', word: 'Cost in the billing period', unit: 'hundredths of the currency', offer: false, hint: 'What the SIM’s traffic cost this billing period, as the latest rating priced it; 500 is 5.00.' },
  // A device's sensor against a value: the threshold is the rule's `field`, `value` and
  // `clearValue` (decimals, below zero for temperatures), in the field's unit (TELEMETRY_FIELDS).
  { metric: 'TELEMETRY_ABOVE', word: 'Device reading above a value', unit: null, telemetry: true, above: true, hint: 'A device’s sensor reads over the value; the alert is about the SIMs in the device (a device without a SIM is passed over). It clears once the reading is at or below the clear value (the value, without one).' },
  { metric: 'QUOTA_EXHAUSTION_FORECAST', word: 'Quota forecast to run out', unit: 'days ahead', min: 1, max: 31, hint: 'The SIM’s data quota runs out within this many days by its latest forecast (made every hour from its usage). A rule on every SIM, or on a sub-customer’s SIMs, watches their quota pools too: a pool whose shared limit runs out within as many days fires as well. It clears when a later forecast says the quota (or limit) lasts, or the pool is deleted.' },
  { metric: 'ANOMALY', word: 'Anomaly found', unit: null, event: true, anomaly: true, hint: 'The hourly anomaly pass found unusual behaviour on the SIM (a usage spike, silence, a session storm, a new network or country), of the kinds and at least the severity chosen. Dismissing the anomaly resolves its alert. An event.' },
  { metric: 'TELEMETRY_BELOW', word: 'Device reading below a value', unit: null, telemetry: true, above: false, hint: 'A device’s sensor reads under the value; the alert is about the SIMs in the device (a device without a SIM is passed over). It clears once the reading is at or above the clear value (the value, without one).' },
];
const METRIC = Object.fromEntries(METRICS.map((m) => [m.metric, m]));

export function metricInfo(metric) {
  return METRIC[metric] || { metric, word: words(metric), unit: null };
}

/// The sensors a telemetry rule reads (the API's TelemetryField), with their unit and the range
/// devices report them in (the rule's values lie within it).
export const TELEMETRY_FIELDS = [
  { field: 'TEMPERATURE', word: 'Temperature', unit: '°C', min: -80, max: 150 },
  { field: 'HUMIDITY', word: 'Humidity', unit: '%', min: 0, max: 100 },
  { field: 'BATTERY', word: 'Battery', unit: '%', min: 0, max: 100 },
  { field: 'LIGHT', word: 'Light', unit: 'lx', min: 0, max: 200000 },
];
const TELEMETRY_FIELD = Object.fromEntries(TELEMETRY_FIELDS.map((f) => [f.field, f]));

export function telemetryFieldInfo(field) {
  return TELEMETRY_FIELD[field] || { field, word: words(field), unit: '', min: null, max: null };
}

/// A reading or a rule's value of `field` with its unit ("38.5 °C", "-12.25 °C", "8 %").
export function readingText(field, v) {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  const text = Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: 2 }) : String(v);
  return `${text} ${telemetryFieldInfo(field).unit}`.trim();
}

/// A telemetry rule's limit in words: "temperature above 35 °C, clears at or below 33 °C".
export function telemetryLimitText(rule) {
  const f = telemetryFieldInfo(rule.field);
  const above = rule.metric !== 'TELEMETRY_BELOW';
  const limit = `${f.word.toLowerCase()} ${above ? 'above' : 'below'} ${readingText(rule.field, rule.value)}`;
  const clear = rule.clearValue === null || rule.clearValue === undefined ? null : readingText(rule.field, rule.clearValue);
  return clear ? `${limit}; clears at or ${above ? 'below' : 'above'} ${clear}` : limit;
}

/// Anomaly kinds and severities in words (the API's AnomalyKind and AnomalySeverity).
export const ANOMALY_KINDS = [
  ['USAGE_SPIKE', 'Usage spike'],
  ['SILENCE', 'Silence'],
  ['SESSION_STORM', 'Session storm'],
  ['NEW_NETWORK', 'New network'],
  ['NEW_COUNTRY', 'New country'],
  ['IMEI_CHANGE', 'IMEI change'],
];
export const ANOMALY_SEVERITIES = [
  ['LOW', 'Low or more (every anomaly)'],
  ['MEDIUM', 'Medium or more'],
  ['HIGH', 'High only'],
];

/// SIM states in words (the API's SimState).
export const SIM_STATE_WORDS = [
  ['INVENTORY', 'Inventory'],
  ['ACTIVE', 'Active'],
  ['SUSPENDED', 'Suspended'],
  ['LOST_STOLEN', 'Lost or stolen'],
  ['TERMINATED', 'Terminated'],
];
const SIM_STATE_WORD = Object.fromEntries(SIM_STATE_WORDS);

export const TARGET_KINDS = [
  ['ALL_SIMS', 'Every SIM of the tenant'],
  ['CUSTOMER', 'The SIMs of one sub-customer'],
  ['LABELS', 'SIMs carrying labels'],
  ['TARIFF_PLAN', 'SIMs on one tariff plan'],
  ['SIM', 'One SIM'],
];

/// An enum value as a word when the console has none for it ("SOME_CODE" → "Some code").
export function words(code) {
  if (!code) return '—';
  const s = String(code).toLowerCase().replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export const severityWord = (s) => SEVERITY_WORD[s] || words(s);
export const stateWord = (s) => STATE_WORD[s] || words(s);
export const simStateWord = (s) => SIM_STATE_WORD[s] || words(s);

/// The severity as a coloured badge that says it in words (colour is never the only sign).
export function severityBadge(severity) {
  return h('span', { class: `badge sev sev-${severity}`, dataset: { severity } }, severityWord(severity));
}

export function stateBadge(state) {
  return h('span', { class: `badge alert-state alert-${state}`, dataset: { state } }, stateWord(state));
}

// ---- values ----------------------------------------------------------------------------------

const plural = (n, one, many) => `${num(n)} ${Number(n) === 1 ? one : many}`;

/// A threshold (or a value) of `metric` in its unit; null for events, which have none.
export function amountText(metric, v) {
  if (v === null || v === undefined) return null;
  switch (metric) {
    case 'DATA_IN_DAY':
    case 'DATA_IN_PERIOD':
      return bytes(v);
    case 'OFFLINE_HOURS':
      return plural(v, 'hour', 'hours');
    case 'SESSIONS_IN_HOUR':
      return plural(v, 'session', 'sessions');
    case 'USAGE_OVER_MEDIAN':
      return `${num(v)} times the median day`;
    case 'QUOTA_STAGE':
      return `${num(v)} %`;
    case 'QUOTA_EXHAUSTION_FORECAST':
      return Number(v) === 0 ? 'today' : plural(v, 'day', 'days');
    case 'COST_IN_DAY':
    case 'COST_IN_PERIOD':
      // Hundredths of the retail card's currency, which the rule does not name.
      return (Number(v) / 100).toFixed(2);
    default:
      return num(v);
  }
}

/// An alert's value in words. The value of a median rule is today's bytes (its threshold is a
/// factor); a bulk job's is its failed rows; a telemetry rule's is the reading in hundredths of
/// its field's unit; the other events carry theirs in `detail`.
export function alertValueText(alert) {
  const metric = alert.rule && alert.rule.metric;
  const v = alert.value;
  switch (metric) {
    case 'TELEMETRY_ABOVE':
    case 'TELEMETRY_BELOW':
      // `detail` says it against the limit ("temperature 38.5 °C, above 35 °C").
      return alert.rule.field ? readingText(alert.rule.field, Number(v) / 100) : null;
    case 'USAGE_OVER_MEDIAN':
      return `${bytes(v)} today`;
    case 'QUOTA_EXHAUSTION_FORECAST':
      return Number(v) === 0 ? 'runs out today' : `runs out in ${plural(v, 'day', 'days')}`;
    case 'ANOMALY':
      // `detail` tells the anomaly; the value is its score.
      return null;
    case 'BULK_JOB_FINISHED':
      return plural(v, 'failed row', 'failed rows');
    case 'STATE_CHANGED':
    case 'NEW_NETWORK':
    case 'NEW_COUNTRY':
    case 'FIRST_TRAFFIC':
      return null;
    case undefined:
    case null:
      // The rule (and so the unit) is not shown to sub-customers' users: the detail says what
      // happened; a bare number says nothing.
      return null;
    default:
      return amountText(metric, v);
  }
}

/// Value and detail, one under the other.
export function valueCell(alert) {
  const value = alertValueText(alert);
  return h(
    'span',
    { class: 'alert-value', 'data-testid': 'alert-value' },
    value ? h('strong', {}, value) : null,
    value && alert.detail ? h('br') : null,
    alert.detail ? h('span', { class: value ? 'muted' : null }, alert.detail) : null,
    !value && !alert.detail ? h('span', { class: 'muted' }, '—') : null,
  );
}

/// "3 min ago", kept current by `tickAgo`, with the exact time in the tooltip.
export function agoEl(v, prefix = '') {
  if (!v) return h('span', { class: 'muted' }, '—');
  return h('time', { class: 'ago', datetime: v, title: dateTime(v), dataset: { prefix } }, `${prefix}${ago(v)}`);
}

/// Refreshes every `agoEl` under `root`; returns the function that stops it.
export function tickAgo(root, everyMs = 20000) {
  const timer = setInterval(() => {
    root.querySelectorAll('time.ago').forEach((t) => {
      t.textContent = `${t.dataset.prefix || ''}${ago(t.getAttribute('datetime'))}`;
    });
  }, everyMs);
  return () => clearInterval(timer);
}

/// Since when the alert stands as it does.
export function sinceCell(alert) {
  if (alert.state === 'RESOLVED') {
    return h('span', {}, agoEl(alert.resolvedAt, 'resolved '), h('br'), h('small', {}, 'started ', agoEl(alert.startedAt)));
  }
  const at = alert.state === 'FIRING' ? alert.firedAt || alert.startedAt : alert.startedAt;
  const repeats = Number(alert.repeats) > 0 ? `${plural(alert.repeats, 'repeat', 'repeats')}` : null;
  const flaps = Number(alert.flaps) > 0 ? `fired again ${plural(alert.flaps, 'time', 'times')}` : null;
  const extra = [repeats, flaps].filter(Boolean).join(' · ');
  return h('span', {}, agoEl(at), extra ? [h('br'), h('small', {}, extra)] : null);
}

// ---- who acknowledged ------------------------------------------------------------------------

const USER = 'query ConsoleAlertUser($id: ID!) { user(id: $id) { id displayName email } }';
const people = new Map(); // user id → Promise<{ name, email } | null>

/// The person behind a user id the API records (`acknowledgedBy`): the caller themselves, or
/// `user(id)` where the caller may read users; null when it cannot be told.
function person(ctx, id) {
  if (!id) return Promise.resolve(null);
  if (id === ctx.me.subject) return Promise.resolve({ name: ctx.me.displayName || ctx.me.email, email: ctx.me.email, you: true });
  if (!people.has(id)) {
    people.set(
      id,
      ctx.api
        .gql(USER, { id })
        .then((d) => (d.user ? { name: d.user.displayName, email: d.user.email } : null))
        .catch(() => null),
    );
  }
  return people.get(id);
}

/// The person behind a user id, filled in once known.
export function personEl(ctx, id) {
  const el = h('span', { class: 'ack-who', 'data-testid': 'alert-ack-who' }, 'someone');
  person(ctx, id).then((p) => {
    if (!p) {
      el.textContent = 'another user';
      el.title = 'Your role cannot read this user';
      return;
    }
    mount(el, p.name || p.email, p.email && p.name && p.name !== p.email ? h('small', { class: 'muted' }, ` (${p.email}${p.you ? ', you' : ''})`) : null);
  });
  return el;
}

/// The acknowledgement as a person reads it: who, when, what they said.
export function acknowledgement(ctx, alert) {
  if (!alert.acknowledged) return null;
  return h(
    'div',
    { class: 'ack', 'data-testid': 'alert-ack', tabindex: '-1' },
    h('span', {}, 'Acknowledged by ', personEl(ctx, alert.acknowledgedBy), ' · ', agoEl(alert.acknowledgedAt)),
    alert.acknowledgeComment ? h('q', { class: 'ack-comment', 'data-testid': 'alert-ack-comment' }, alert.acknowledgeComment) : null,
  );
}

// ---- acknowledging ---------------------------------------------------------------------------

const ACKNOWLEDGE_FIELDS = `id ruleId severity state subject iccid value detail startedAt firedAt resolvedAt
  lastSeenAt repeats flaps acknowledged acknowledgedBy acknowledgedAt acknowledgeComment
  rule { id name metric field }`;
export const ALERT_FIELDS = ACKNOWLEDGE_FIELDS;
const ACKNOWLEDGE = `mutation ConsoleAcknowledgeAlert($id: ID!, $comment: String) {
  acknowledgeAlert(id: $id, comment: $comment) { ${ACKNOWLEDGE_FIELDS} }
}`;

let uid = 0;

/// The acknowledgement of an alert, or (for fleet managers, while it is open) the button that
/// opens a small form for an optional comment. `onDone(alert)` gets the API's answer.
export function acknowledgeCell(ctx, alert, onDone) {
  const ack = acknowledgement(ctx, alert);
  if (ack) return ack;
  if (!ctx.caps.manageFleet || !OPEN_STATES.includes(alert.state)) return h('span', { class: 'muted' }, 'Not acknowledged');
  const box = h('div', { class: 'ack-box' });
  const open = h(
    'button',
    { type: 'button', 'data-testid': 'alert-ack-open', 'aria-expanded': 'false', onclick: () => drawForm() },
    'Acknowledge',
  );
  function drawForm() {
    uid += 1;
    const comment = h('input', {
      type: 'text',
      name: 'comment',
      maxlength: '500',
      autocomplete: 'off',
      placeholder: 'what is being done (optional)',
      id: `ack-comment-${uid}`,
      'data-testid': 'alert-ack-comment-input',
    });
    const status = h('div', { 'aria-live': 'assertive' });
    const go = h('button', { type: 'submit', class: 'primary', 'data-testid': 'alert-ack-confirm' }, 'Acknowledge');
    const cancel = h(
      'button',
      {
        type: 'button',
        onclick: () => {
          mount(box, open);
          open.focus();
        },
      },
      'Cancel',
    );
    const form = h(
      'form',
      {
        class: 'ack-form',
        'aria-label': `Acknowledge the alert on ${alert.subject}`,
        onsubmit: async (ev) => {
          ev.preventDefault();
          go.disabled = true;
          cancel.disabled = true;
          mount(status, loading('Acknowledging…'));
          try {
            const data = await ctx.api.gql(ACKNOWLEDGE, { id: alert.id, comment: comment.value.trim() || null });
            onDone(data.acknowledgeAlert);
          } catch (err) {
            mount(status, errorBox(err));
            go.disabled = false;
            cancel.disabled = false;
          }
        },
      },
      field('Comment (optional)', comment),
      h('div', { class: 'actions' }, go, cancel),
      status,
    );
    mount(box, form);
    comment.focus();
  }
  mount(box, open);
  return box;
}
