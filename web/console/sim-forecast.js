// Two cards of the SIM page (sim.js), each loading on its own:
// - its usage forecast (`Sim.forecast`, made by the hourly forecast pass; docs/forecasts.md):
//   the last 30 days of actual usage and, from today, the expected usage with its 80 % and 95 %
//   ranges; with a data quota, the period's usage added up against the limit, and a sentence
//   saying when the quota runs out or that it lasts; the method and its past accuracy in words;
// - its latest anomalies (`Sim.anomalies`), each with its evidence, and Dismiss / Confirm for
//   fleet managers, with a link to the Anomalies page for the rest.

import { h, mount, bytes, errorBox, loading, link } from './ui.js';
import { bandChart } from './charts.js';
import { agoEl } from './alert-parts.js';
import { dailyMethod, withinWords } from './forecast-words.js';
import {
  ANOMALY_FIELDS,
  addDays,
  dateOf,
  dayEl,
  dayWords,
  decideControls,
  decidedText,
  decisionEl,
  evidenceChart,
  kindWord,
  severityBadge,
  statusBadge,
  utcToday,
} from './anomaly-parts.js';

// A forecast holds 31 days: enough to reach the end of any calendar month (the quota's period).
const FORECAST_DAYS = 31;
const HISTORY_DAYS = 30;

const FORECAST = `query ConsoleSimForecast($iccid: Iccid!, $from: DateTime!, $to: DateTime!, $days: Int!) {
  sim(iccid: $iccid) {
    iccid
    usage(from: $from, to: $to, granularity: DAY) { period bytesIn bytesOut }
    forecast(days: $days) {
      method backtestMase backtestWape historyDays computedAt
      days { date bytes low80 high80 low95 high95 }
      quota {
        limitBytes usedBytes periodEnd exhaustionDate exhaustionEarliest exhaustionLatest
        projectedPeriodBytes projectedPeriodBytesHigh80
      }
    }
  }
}`;
const SIM_ANOMALIES = `query ConsoleSimAnomalies($iccid: Iccid!, $first: Int!) {
  sim(iccid: $iccid) { iccid anomalies(first: $first) { ${ANOMALY_FIELDS} } }
}`;

/// The backtest's error in words: "usually within 12 % on past weeks".
function accuracyWords(f) {
  return (
    withinWords(f.backtestWape, 'past weeks') ||
    `Not measured yet: a forecast is tested on past weeks from 15 days of history (this SIM has ${f.historyDays}).`
  );
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/// "11 and 19 December", "28 November and 3 December".
function rangeWords(a, b) {
  const da = dateOf(a);
  const db = dateOf(b);
  if (da.getUTCMonth() === db.getUTCMonth() && da.getUTCFullYear() === db.getUTCFullYear()) {
    return `${da.getUTCDate()} and ${dayWords(b)}`;
  }
  return `${dayWords(a)} and ${dayWords(b)}`;
}

/// The quota read against the forecast, in a sentence.
export function quotaSentence(q, today) {
  const limit = bytes(q.limitBytes);
  if (Number(q.usedBytes) >= Number(q.limitBytes)) {
    return `The ${limit} quota has run out this period: ${bytes(q.usedBytes)} used before today.`;
  }
  if (q.exhaustionDate) {
    const when = q.exhaustionDate === today ? `today (${dayWords(today)})` : `around ${dayWords(q.exhaustionDate)}`;
    let range = '';
    const { exhaustionEarliest: early, exhaustionLatest: late } = q;
    if (early && late && early !== late) range = ` (between ${rangeWords(early, late)})`;
    else if (early && !late) range = ` (not before ${dayWords(early)}; it may also last the period)`;
    return `At this rate the ${limit} quota runs out ${when}${range}.`;
  }
  const risk = q.exhaustionEarliest
    ? `; in a busy month it could run out from ${dayWords(q.exhaustionEarliest)}`
    : `; 9 times in 10 under ${bytes(q.projectedPeriodBytesHigh80)}`;
  return `The quota lasts the period: about ${bytes(q.projectedPeriodBytes)} of ${limit} expected by ${dayWords(q.periodEnd)}${risk}.`;
}

function dl(pairs) {
  return h(
    'dl',
    { class: 'props' },
    pairs.filter(Boolean).map(([k, v, attrs]) => [h('dt', {}, k), h('dd', attrs || {}, v)]),
  );
}

/// Bytes per UTC day ("2026-03-04" → bytes) of the SIM's usage points.
function perDay(points) {
  const days = new Map();
  for (const p of points || []) {
    const day = new Date(p.period).toISOString().slice(0, 10);
    days.set(day, (days.get(day) || 0) + Number(p.bytesIn) + Number(p.bytesOut));
  }
  return days;
}

/// The daily chart: actual usage of the last 30 days, today so far, and the forecast.
function dailyChart(f, actual, today) {
  const rows = [];
  for (let back = HISTORY_DAYS; back >= 1; back -= 1) {
    const day = addDays(today, -back);
    rows.push({ at: dateOf(day), actual: actual.get(day) || 0 });
  }
  for (const d of f.days) {
    rows.push({
      at: dateOf(d.date),
      sofar: d.date === today ? actual.get(today) || 0 : null,
      expected: d.bytes,
      low80: d.low80,
      high80: d.high80,
      low95: d.low95,
      high95: d.high95,
    });
  }
  const expected = sum(f.days.map((d) => Number(d.bytes)));
  return bandChart(rows, {
    title: 'Data per day: the last 30 days and the forecast (UTC days)',
    testid: 'chart-sim-forecast',
    format: bytes,
    yLabel: 'Data per day',
    summary: `${bytes(sum(rows.slice(0, HISTORY_DAYS).map((r) => r.actual)))} used in the last 30 days; about ${bytes(expected)} expected in the next ${f.days.length} days`,
    bands: [
      { low: 'low95', high: 'high95', label: '95 % of days within', level: 95 },
      { low: 'low80', high: 'high80', label: '80 % of days within', level: 80 },
    ],
    series: [
      { key: 'actual', label: 'Used', kind: 'actual' },
      { key: 'sofar', label: 'Used today so far', kind: 'sofar' },
      { key: 'expected', label: 'Expected', kind: 'expected' },
    ],
    marks: [{ at: dateOf(today), label: 'today' }],
  });
}

/// The period chart: usage added up from the period's first day, actual to yesterday, then
/// expected with its 80 % range, against the limit.
function periodChart(f, q, actual, today) {
  const end = q.periodEnd;
  const start = `${end.slice(0, 8)}01`;
  const used = Number(q.usedBytes);
  const byDay = new Map();
  for (let day = start; day <= end; day = addDays(day, 1)) byDay.set(day, { at: dateOf(day) });
  // Actual, back from what the quota counts by yesterday (its period is the tenant's month, the
  // cube's days are UTC: counting back keeps the line ending where the quota stands).
  let total = used;
  for (let day = addDays(today, -1); day >= start; day = addDays(day, -1)) {
    const r = byDay.get(day);
    if (r) r.actual = Math.max(0, total);
    total -= actual.get(day) || 0;
  }
  // Expected from today on, starting from where the actual line ends.
  const yesterday = byDay.get(addDays(today, -1));
  if (yesterday) Object.assign(yesterday, { expected: used, low80: used, high80: used });
  let exp = used;
  let lo = used;
  let hi = used;
  for (const d of f.days) {
    if (d.date > end) break;
    exp += Number(d.bytes);
    lo += Number(d.low80);
    hi += Number(d.high80);
    const r = byDay.get(d.date);
    if (r) Object.assign(r, { expected: exp, low80: lo, high80: hi });
  }
  return bandChart([...byDay.values()], {
    title: `This period (to ${dayWords(end)}): data used, added up, against the ${bytes(q.limitBytes)} quota`,
    testid: 'chart-sim-period',
    format: bytes,
    yLabel: 'Used in the period',
    summary: quotaSentence(q, today),
    bands: [{ low: 'low80', high: 'high80', label: '80 % within', level: 80 }],
    series: [
      { key: 'actual', label: 'Used so far', kind: 'actual' },
      { key: 'expected', label: 'Expected', kind: 'expected' },
    ],
    rules: [{ value: q.limitBytes, label: `Quota ${bytes(q.limitBytes)}` }],
    marks: start <= today ? [{ at: dateOf(today), label: 'today' }] : [],
  });
}

/// Loads the forecast into `card`.
export async function loadForecast(ctx, iccid, card, alive) {
  const head = h('h2', {}, 'Usage forecast');
  mount(card, head, loading('Loading the forecast…'));
  const today = utcToday();
  const from = dateOf(addDays(today, -HISTORY_DAYS));
  const to = dateOf(addDays(today, 1));
  let sim;
  try {
    sim = (await ctx.api.gql(FORECAST, { iccid, from: from.toISOString(), to: to.toISOString(), days: FORECAST_DAYS })).sim;
  } catch (err) {
    if (alive()) mount(card, head, errorBox(err));
    return;
  }
  if (!alive()) return;
  const f = sim && sim.forecast;
  if (!f || !f.days.length) {
    card.dataset.state = 'none';
    mount(
      card,
      head,
      h('p', { 'data-testid': 'sim-forecast-none' }, 'Not enough usage in the last 90 days to forecast.'),
      h('p', { class: 'muted' }, 'Forecasts are made every hour from up to 90 days of daily usage; a SIM without any has none.'),
    );
    return;
  }
  const actual = perDay(sim.usage);
  // The forecast's first day is the day it calls today (the pass's; the quota counts the days
  // before it).
  const first = f.days[0].date;
  const q = f.quota;
  const [method, how] = dailyMethod(f.method);
  const next = f.days.slice(0, 30);
  card.dataset.state = q ? 'quota' : 'forecast';
  mount(
    card,
    head,
    q
      ? h('p', { class: 'quota-sentence', 'data-testid': 'sim-forecast-quota', dataset: { exhaustion: q.exhaustionDate || '' } }, quotaSentence(q, first))
      : h('p', { class: 'muted', 'data-testid': 'sim-forecast-quota-none' }, 'No data quota: nothing runs out.'),
    dl([
      ['Next 30 days', `about ${bytes(sum(next.map((d) => Number(d.bytes))))} expected`, { 'data-testid': 'sim-forecast-total' }],
      ['Method', h('span', {}, method, how ? h('small', { class: 'block' }, how) : null), { 'data-testid': 'sim-forecast-method', 'data-value': f.method }],
      ['Accuracy', accuracyWords(f), { 'data-testid': 'sim-forecast-accuracy' }],
      ['History', `${f.historyDays} day${f.historyDays === 1 ? '' : 's'} of usage`],
      ['Made', agoEl(f.computedAt)],
    ]),
    h('div', { class: 'grid forecast-charts' }, dailyChart(f, actual, first), q ? periodChart(f, q, actual, first) : null),
  );
}

// ---- anomalies -----------------------------------------------------------------------------

/// The latest this many anomalies on the card; the Anomalies page has them all.
const RECENT = 10;

/// Loads the SIM's latest anomalies into `card`.
export async function loadSimAnomalies(ctx, iccid, card, alive) {
  const head = h('h2', {}, 'Anomalies');
  const notice = h('div', { 'aria-live': 'polite', 'data-testid': 'sim-anomalies-message' });
  const all = link(`/anomalies?iccid=${encodeURIComponent(iccid)}&status=ALL`, 'All anomalies of this SIM', { 'data-testid': 'sim-anomalies-all' });
  mount(card, head, loading('Loading anomalies…'));
  let list;
  try {
    const data = await ctx.api.gql(SIM_ANOMALIES, { iccid, first: RECENT });
    list = data.sim ? data.sim.anomalies : [];
  } catch (err) {
    if (alive()) mount(card, head, errorBox(err));
    return;
  }
  if (!alive()) return;
  if (!list.length) {
    mount(
      card,
      head,
      h('p', { 'data-testid': 'sim-anomalies-none' }, 'Nothing unusual found.'),
      h('p', { class: 'muted' }, 'Every hour the forecast pass looks for usage spikes, silences, session storms and new networks or countries.'),
    );
    return;
  }
  const items = new Map();
  function item(a) {
    const chartHost = h('div', {});
    const details = h(
      'details',
      {
        class: 'evidence-details',
        ontoggle: () => {
          if (details.open && !chartHost.firstChild) mount(chartHost, evidenceChart(a));
        },
      },
      h('summary', { 'data-testid': 'anomaly-evidence-toggle' }, 'Evidence'),
      chartHost,
    );
    const li = h(
      'li',
      { 'data-testid': 'sim-anomaly', dataset: { id: a.id, kind: a.kind, status: a.status } },
      h('div', { class: 'sim-anomaly-head' }, severityBadge(a.severity, { long: true }), h('strong', {}, kindWord(a.kind)), ' · ', dayEl(a.day), ' ', statusBadge(a.status)),
      h('p', { class: 'anomaly-sentence', 'data-testid': 'anomaly-sentence' }, a.sentence),
      decisionEl(ctx, a),
      decideControls(ctx, a, (fresh) => {
        const old = items.get(a.id);
        const next = item(fresh);
        old.replaceWith(next);
        mount(notice, h('p', { class: 'notice', role: 'status' }, decidedText(fresh)));
        const focus = next.querySelector('[data-testid=anomaly-decision]');
        if (focus) focus.focus();
      }),
      details,
    );
    items.set(a.id, li);
    return li;
  }
  mount(
    card,
    head,
    notice,
    h('ul', { class: 'plain sim-anomalies', 'data-testid': 'sim-anomalies' }, list.map(item)),
    h('p', {}, all),
  );
}
