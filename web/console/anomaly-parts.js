// What the anomaly views share (the Anomalies page, anomalies.js; the SIM page's card,
// sim-forecast.js): the vocabulary in words (kinds, severities, statuses), days in words, the
// evidence as a chart, who decided what, and the Dismiss / Confirm forms for fleet managers.
// Semantics: docs/forecasts.md ("Anomalies", "Dismiss and confirm").

import { h, mount, bytes, num, loading, select, isoDay } from './ui.js';
import { bandChart } from './charts.js';
import { fieldErrors } from './alert-rule-form.js';
import { agoEl, personEl, words } from './alert-parts.js';

// ---- vocabulary ------------------------------------------------------------------------------

/// The kinds (`AnomalyKind`) in words, with what their evidence counts.
export const KINDS = [
  { kind: 'USAGE_SPIKE', word: 'Usage spike', unit: 'bytes', measure: 'Data per day' },
  { kind: 'SILENCE', word: 'Silence', unit: 'bytes', measure: 'Data per day' },
  { kind: 'SESSION_STORM', word: 'Session storm', unit: ['session', 'sessions'], measure: 'Sessions per day' },
  { kind: 'NEW_NETWORK', word: 'New network', unit: ['network', 'networks'], measure: 'Networks used per day' },
  { kind: 'NEW_COUNTRY', word: 'New country', unit: ['country', 'countries'], measure: 'Countries per day' },
  { kind: 'IMEI_CHANGE', word: 'IMEI change', unit: ['device', 'devices'], measure: 'Devices per day' },
];
const KIND = Object.fromEntries(KINDS.map((k) => [k.kind, k]));

export function kindInfo(kind) {
  return KIND[kind] || { kind, word: words(kind), unit: ['', ''], measure: 'Per day' };
}
export const kindWord = (kind) => kindInfo(kind).word;

/// Least severe first (`AnomalySeverity`).
export const SEVERITIES = [
  ['LOW', 'Low'],
  ['MEDIUM', 'Medium'],
  ['HIGH', 'High'],
];
const SEVERITY = Object.fromEntries(SEVERITIES);
export const severityWord = (s) => SEVERITY[s] || words(s);

export const STATUSES = [
  ['OPEN', 'Open'],
  ['DISMISSED', 'Dismissed'],
  ['CONFIRMED', 'Confirmed'],
];
const STATUS = Object.fromEntries(STATUSES);
export const statusWord = (s) => STATUS[s] || words(s);

/// The severity as a coloured badge that says it in words (colour is never the only sign).
export function severityBadge(severity, { long = false } = {}) {
  const word = severityWord(severity);
  return h(
    'span',
    { class: `badge anomaly-sev anomaly-sev-${severity}`, dataset: { severity }, title: `Severity: ${word}` },
    long ? `${word} severity` : word,
  );
}

export function statusBadge(status) {
  return h('span', { class: `badge anomaly-status anomaly-status-${status}`, dataset: { status }, 'data-testid': 'anomaly-status' }, statusWord(status));
}

/// The fields every anomaly view reads.
export const ANOMALY_FIELDS = `id kind day score severity sentence status value comment decidedBy decidedAt
  dismissedUntil iccid evidence { series observed expected bandLow bandHigh baseline }`;
const DISMISS = `mutation ConsoleDismissAnomaly($id: ID!, $comment: String, $until: Date) {
  dismissAnomaly(id: $id, comment: $comment, until: $until) { ${ANOMALY_FIELDS} }
}`;
const CONFIRM = `mutation ConsoleConfirmAnomaly($id: ID!, $comment: String) {
  confirmAnomaly(id: $id, comment: $comment) { ${ANOMALY_FIELDS} }
}`;

// ---- days ------------------------------------------------------------------------------------

const DAY_MS = 86400000;
/// A Date of an API day ("2026-03-04", a UTC day).
export const dateOf = (iso) => new Date(`${iso}T00:00:00Z`);
/// Today as the API's days count it (UTC).
export const utcToday = () => isoDay(new Date());
export const addDays = (iso, n) => isoDay(new Date(dateOf(iso).getTime() + n * DAY_MS));

/// "14 December" ("Tuesday 14 December" with `weekday`; the year when it is not this one).
export function dayWords(iso, { weekday = false } = {}) {
  const d = dateOf(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const opts = { day: 'numeric', month: 'long', timeZone: 'UTC' };
  if (weekday) opts.weekday = 'long';
  if (d.getUTCFullYear() !== new Date().getUTCFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString('en-GB', opts);
}

/// "Today, 4 March", "Yesterday, 3 March", or "Monday 2 March".
export function dayText(iso) {
  const today = utcToday();
  if (iso === today) return `Today, ${dayWords(iso)}`;
  if (iso === addDays(today, -1)) return `Yesterday, ${dayWords(iso)}`;
  return dayWords(iso, { weekday: true });
}

export function dayEl(iso) {
  return h('time', { datetime: iso, title: `${dayWords(iso, { weekday: true })} (UTC)` }, dayText(iso));
}

// ---- values and evidence ---------------------------------------------------------------------

/// A figure of the kind's evidence in its unit: "57.0 MB", "412 sessions", "2 networks".
export function valueText(kind, v) {
  const unit = kindInfo(kind).unit;
  if (unit === 'bytes') return bytes(Math.round(Number(v)));
  const n = Number(v);
  const text = Number.isInteger(n) ? num(n) : n.toLocaleString('en', { maximumFractionDigits: 1 });
  return `${text} ${n === 1 ? unit[0] : unit[1]}`.trim();
}

/// A figure for an axis or a table whose column names the unit.
function axisFormat(kind) {
  if (kindInfo(kind).unit === 'bytes') return (v) => bytes(Math.round(Number(v)));
  return (v) => Number(v).toLocaleString('en', { maximumFractionDigits: 1 });
}

const BASELINE = {
  OWN: 'against its own history',
  COHORT: 'against similar SIMs (its tariff plan), having too little history of its own',
};

/// The evidence of `a`: its last days (up to 28, the day last) with the usual range shaded,
/// what was expected on the day and the day itself marked.
export function evidenceChart(a, { testid = 'anomaly-evidence-chart' } = {}) {
  const e = a.evidence;
  const info = kindInfo(a.kind);
  const end = dateOf(a.day).getTime();
  const series = e.series && e.series.length ? e.series : [e.observed];
  const n = series.length;
  const rows = series.map((v, i) => {
    const last = i === n - 1;
    return {
      at: new Date(end - (n - 1 - i) * DAY_MS),
      observed: v,
      low: e.bandLow,
      high: e.bandHigh,
      expected: last ? e.expected : null,
      day: last ? e.observed : null,
    };
  });
  const fmt = axisFormat(a.kind);
  return h(
    'div',
    { class: 'evidence' },
    bandChart(rows, {
      title: `${info.word} on ${dayWords(a.day)}: the ${n} days up to it`,
      testid,
      format: fmt,
      yLabel: info.measure,
      summary: `${valueText(a.kind, e.observed)} on the day, where ${valueText(a.kind, e.expected)} was expected and the usual range is ${valueText(a.kind, e.bandLow)} to ${valueText(a.kind, e.bandHigh)}`,
      height: 220,
      bands: [{ low: 'low', high: 'high', label: 'Usual range', level: 'range' }],
      series: [
        { key: 'observed', label: info.measure, kind: 'actual', dots: true },
        { key: 'expected', label: 'Expected on the day', kind: 'expectedpoint' },
        { key: 'day', label: 'The day', kind: 'highlight' },
      ],
      marks: [{ at: dateOf(a.day), label: 'the day' }],
    }),
    h(
      'p',
      { class: 'muted evidence-note' },
      `Compared ${BASELINE[e.baseline] || 'with its usual days'}. From ${valueText(a.kind, e.bandHigh)} a day is unusually high; below ${valueText(a.kind, e.bandLow)} it counts towards a silence.`,
    ),
  );
}

// ---- decisions -------------------------------------------------------------------------------

/// Who decided, when, until when and why; null while the anomaly is open.
export function decisionEl(ctx, a) {
  if (a.status === 'OPEN') return null;
  const verb = a.status === 'DISMISSED' ? 'Dismissed' : 'Confirmed';
  return h(
    'div',
    { class: 'decision', 'data-testid': 'anomaly-decision', tabindex: '-1' },
    h('span', {}, `${verb} by `, a.decidedBy ? personEl(ctx, a.decidedBy) : 'someone', a.decidedAt ? [' · ', agoEl(a.decidedAt)] : null),
    a.status === 'DISMISSED'
      ? h('small', { 'data-testid': 'anomaly-until-text' }, a.dismissedUntil ? `Accepted up to ${dayWords(a.dismissedUntil)}` : 'Accepted for good')
      : null,
    a.comment ? h('q', { class: 'decision-comment', 'data-testid': 'anomaly-comment-text' }, a.comment) : null,
  );
}

/// The API's message as a sentence: without the field's name in front, days in words.
function refusalWords(message) {
  const s = String(message)
    .replace(/^[A-Za-z.]+: /, '')
    .replace(/\b(\d{4}-\d{2}-\d{2})\b/g, (iso) => dayWords(iso));
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/// A refusal not about one field, in words.
function refusal(err, verb) {
  let text;
  if (err && err.code === 'FORBIDDEN') text = `Not ${verb}: your role may look at anomalies but not decide about them.`;
  else if (err && err.code === 'NOT_FOUND') text = `Not ${verb}: this anomaly is not there any more. Reload the page.`;
  else text = `Not ${verb}: ${refusalWords((err && err.message) || err)}`;
  return h('div', { class: 'error', role: 'alert', 'data-testid': 'anomaly-refusal' }, text);
}

/// What dismissing accepts from the next pass on, for the kind of `a`.
function acceptHint(a) {
  switch (a.kind) {
    case 'USAGE_SPIKE':
      return `From the next pass on, a day of up to 1.25 × this one (${valueText(a.kind, a.evidence.observed)}) is no spike on this SIM; a larger one still is.`;
    case 'SILENCE':
      return 'Every silence of this SIM is accepted until then (a device in maintenance, say): best given an end.';
    case 'SESSION_STORM':
      return 'Every session storm of this SIM is accepted until then: best given an end.';
    case 'NEW_NETWORK':
      return a.value ? `The network ${a.value} is accepted on this SIM.` : 'The network is accepted on this SIM.';
    case 'NEW_COUNTRY':
      return a.value ? `${a.value} is accepted on this SIM.` : 'The country is accepted on this SIM.';
    default:
      return 'The detector takes it into account from the next pass on.';
  }
}

/// The form behind Dismiss: a comment, and for how long the behaviour is accepted.
function dismissForm(ctx, a, { onDone, onCancel }) {
  const errors = fieldErrors({ idPrefix: 'dismiss', testid: (key) => `anomaly-error-${key}`, words: refusalWords });
  const today = utcToday();
  const week = addDays(today, 7);
  const month = addDays(today, 30);
  const comment = h('textarea', { name: 'comment', rows: '2', maxlength: '500', 'data-testid': 'anomaly-comment' });
  const temporary = a.kind === 'SILENCE' || a.kind === 'SESSION_STORM';
  const until = select(
    [
      ['GOOD', 'For good'],
      ['WEEK', `For a week (up to ${dayWords(week)})`],
      ['MONTH', `For a month (up to ${dayWords(month)})`],
      ['DATE', 'Up to a day I choose…'],
    ],
    temporary ? 'WEEK' : 'GOOD',
    { name: 'until', 'data-testid': 'anomaly-until', onchange: () => sync() },
  );
  const date = h('input', {
    type: 'date',
    name: 'untilDate',
    min: today,
    max: addDays(today, 365),
    value: week,
    'aria-label': 'Last day it is accepted',
    'data-testid': 'anomaly-until-date',
  });
  const sync = () => {
    date.hidden = until.value !== 'DATE';
    date.required = until.value === 'DATE';
  };
  sync();
  const commentField = errors.fieldFor('comment', 'Why it is expected (optional)', comment, 'At most 500 characters, kept with the anomaly.');
  const untilField = errors.fieldFor('until', 'Accept it', until, acceptHint(a), { body: h('div', { class: 'with-unit' }, until, date) });
  const status = h('div', { 'aria-live': 'assertive', 'data-testid': 'anomaly-form-status' });
  const go = h('button', { type: 'submit', class: 'primary', 'data-testid': 'anomaly-dismiss-submit' }, 'Dismiss');
  const cancel = h('button', { type: 'button', onclick: () => onCancel() }, 'Cancel');
  const form = h(
    'form',
    {
      class: 'decision-form',
      'data-testid': 'anomaly-dismiss-form',
      'aria-label': `Dismiss the ${kindWord(a.kind).toLowerCase()} of SIM ${a.iccid} as expected`,
      onsubmit: async (ev) => {
        ev.preventDefault();
        errors.clear();
        mount(status);
        let last = null;
        if (until.value === 'WEEK') last = week;
        else if (until.value === 'MONTH') last = month;
        else if (until.value === 'DATE') {
          if (!date.value) {
            errors.show({ field: 'until', message: 'Choose the last day, or accept it for good.' });
            return;
          }
          last = date.value;
        }
        go.disabled = true;
        cancel.disabled = true;
        mount(status, loading('Dismissing…'));
        try {
          const data = await ctx.api.gql(DISMISS, { id: a.id, comment: comment.value.trim() || null, until: last });
          onDone(data.dismissAnomaly);
        } catch (err) {
          go.disabled = false;
          cancel.disabled = false;
          if (errors.show(err)) mount(status, h('p', { class: 'field-error' }, 'Not dismissed: see above.'));
          else mount(status, refusal(err, 'dismissed'));
        }
      },
    },
    commentField.el,
    untilField.el,
    h('div', { class: 'actions' }, go, cancel),
    status,
  );
  setTimeout(() => comment.focus(), 0);
  return form;
}

/// The form behind Confirm: what was found.
function confirmForm(ctx, a, { onDone, onCancel }) {
  const errors = fieldErrors({ idPrefix: 'confirm', testid: (key) => `anomaly-error-${key}`, words: refusalWords });
  const comment = h('textarea', { name: 'comment', rows: '2', maxlength: '500', 'data-testid': 'anomaly-comment' });
  const commentField = errors.fieldFor('comment', 'What was found (optional)', comment, 'At most 500 characters, kept with the anomaly.');
  const status = h('div', { 'aria-live': 'assertive', 'data-testid': 'anomaly-form-status' });
  const go = h('button', { type: 'submit', class: 'primary', 'data-testid': 'anomaly-confirm-submit' }, 'Confirm');
  const cancel = h('button', { type: 'button', onclick: () => onCancel() }, 'Cancel');
  const form = h(
    'form',
    {
      class: 'decision-form',
      'data-testid': 'anomaly-confirm-form',
      'aria-label': `Confirm the ${kindWord(a.kind).toLowerCase()} of SIM ${a.iccid} as a real problem`,
      onsubmit: async (ev) => {
        ev.preventDefault();
        errors.clear();
        go.disabled = true;
        cancel.disabled = true;
        mount(status, loading('Confirming…'));
        try {
          const data = await ctx.api.gql(CONFIRM, { id: a.id, comment: comment.value.trim() || null });
          onDone(data.confirmAnomaly);
        } catch (err) {
          go.disabled = false;
          cancel.disabled = false;
          if (errors.show(err)) mount(status, h('p', { class: 'field-error' }, 'Not confirmed: see above.'));
          else mount(status, refusal(err, 'confirmed'));
        }
      },
    },
    commentField.el,
    h('p', { class: 'muted' }, 'A real problem: the detector goes on raising its like.'),
    h('div', { class: 'actions' }, go, cancel),
    status,
  );
  setTimeout(() => comment.focus(), 0);
  return form;
}

/// Dismiss and Confirm for fleet managers (a decision may be changed: a dismissed anomaly can
/// be confirmed and the other way round); null for everyone else. `onDecided(anomaly)` gets the
/// API's answer.
export function decideControls(ctx, a, onDecided) {
  if (!ctx.caps.manageFleet) return null;
  const box = h('div', { class: 'decide' });
  const what = `the ${kindWord(a.kind).toLowerCase()} of ${dayWords(a.day)}`;
  const dismiss =
    a.status === 'DISMISSED'
      ? null
      : h(
          'button',
          { type: 'button', 'data-testid': 'anomaly-dismiss', title: `Dismiss ${what} as expected behaviour`, onclick: () => open(dismissForm, dismiss) },
          a.status === 'OPEN' ? 'Dismiss' : 'Dismiss instead',
        );
  const confirm =
    a.status === 'CONFIRMED'
      ? null
      : h(
          'button',
          { type: 'button', 'data-testid': 'anomaly-confirm', title: `Confirm ${what} as a real problem`, onclick: () => open(confirmForm, confirm) },
          a.status === 'OPEN' ? 'Confirm' : 'Confirm instead',
        );
  const bar = h('div', { class: 'actions' }, dismiss, confirm);
  function open(makeForm, from) {
    mount(
      box,
      makeForm(ctx, a, {
        onDone: onDecided,
        onCancel: () => {
          mount(box, bar);
          from.focus();
        },
      }),
    );
  }
  mount(box, bar);
  return box;
}

/// "Dismissed the usage spike of SIM 8988… (yesterday)." after a decision.
export function decidedText(a) {
  const verb = a.status === 'DISMISSED' ? 'Dismissed' : 'Confirmed';
  return `${verb} the ${kindWord(a.kind).toLowerCase()} of SIM ${a.iccid} (${dayText(a.day)}).`;
}
