// Usage analytics: one form over `usageAnalytics` (measures × dimensions × filter × time range),
// a chart and a table of the answer, a drill-down into the SIMs behind any row
// (`usageAnalyticsSims`), the carrier breakdown of the same range (`carrierBreakdown`) and, for
// staff, the reconciliation of session bytes against CDR bytes (`usageReconciliation`).
// The whole form lives in the hash's query string, so every view can be linked and reloaded.

import { h, mount, num, bytes, money, pct, table, errorBox, loading, card, field, select, pager, PERIOD_PRESETS, link, isoDay, timeZone } from './ui.js';
import { barsH, columns } from './charts.js';

// ---- GraphQL ----------------------------------------------------------------------------------

const MEASURE_FIELDS = 'bytesIn bytesOut bytesTotal ratedBytes cost activeSims sessions';

const ANALYTICS = `query ConsoleAnalytics($tenantId: ID, $input: UsageAnalyticsInput!) {
  usageAnalytics(tenantId: $tenantId, input: $input) {
    source
    unserved { reason message }
    from to granularity timeZone currency dimensions
    rows {
      time network { mccMnc name countryCode country } country subCustomerId iccid label tariffPlan rat
      measures { ${MEASURE_FIELDS} }
    }
    totals { ${MEASURE_FIELDS} }
  }
}`;

const DRILL = `query ConsoleAnalyticsSims($tenantId: ID, $input: UsageAnalyticsInput!, $row: AnalyticsRowInput!, $first: Int, $after: String) {
  usageAnalyticsSims(tenantId: $tenantId, input: $input, row: $row, first: $first, after: $after) {
    totalCount
    source
    unserved { reason message }
    pageInfo { hasNextPage endCursor }
    edges { cursor node { iccid measures { ${MEASURE_FIELDS} } } }
  }
}`;

const CARRIERS = `query ConsoleCarrierBreakdown($tenantId: ID, $subCustomerId: ID, $timeRange: TimeRangeInput!, $timeZone: String) {
  carrierBreakdown(tenantId: $tenantId, subCustomerId: $subCustomerId, timeRange: $timeRange, timeZone: $timeZone) {
    currency totalBytes totalCost
    carriers { network { mccMnc name countryCode country } bytes cost shareOfBytes shareOfCost }
  }
}`;

const RECONCILIATION = `query ConsoleReconciliation($tenantId: ID, $from: Date!, $to: Date!, $iccid: Iccid, $customerId: ID, $onlyDifferences: Boolean!, $first: Int) {
  usageReconciliation(tenantId: $tenantId, from: $from, to: $to, iccid: $iccid, customerId: $customerId, onlyDifferences: $onlyDifferences, first: $first) {
    iccid day status sessionBytesIn sessionBytesOut cdrBytesIn cdrBytesOut difference
  }
}`;


const LABELS = 'query ConsoleAnalyticsLabels($tenantId: ID) { labelCatalogue(tenantId: $tenantId) { key values } }';

// ---- The API's vocabulary ------------------------------------------------------------------------

const PRESETS = PERIOD_PRESETS;

const GRANULARITIES = [
  ['', 'Default (the preset’s own)'],
  ['HOUR', 'Hour'],
  ['DAY', 'Day'],
  ['MONTH', 'Month'],
  ['YEAR', 'Year'],
];

/// kind: how a value is shown; rated: needs cost visibility (and comes from rated CDRs).
const MEASURES = [
  { id: 'BYTES_TOTAL', field: 'bytesTotal', label: 'Bytes, total', kind: 'bytes' },
  { id: 'BYTES_IN', field: 'bytesIn', label: 'Bytes in (from devices)', kind: 'bytes' },
  { id: 'BYTES_OUT', field: 'bytesOut', label: 'Bytes out (to devices)', kind: 'bytes' },
  { id: 'ACTIVE_SIMS', field: 'activeSims', label: 'Active SIMs', kind: 'count' },
  { id: 'SESSIONS', field: 'sessions', label: 'Sessions started', kind: 'count' },
  { id: 'RATED_BYTES', field: 'ratedBytes', label: 'Rated bytes', kind: 'bytes', rated: true },
  { id: 'COST', field: 'cost', label: 'Cost', kind: 'money', rated: true },
];

const DIMENSIONS = [
  { id: 'TIME', label: 'Time bucket' },
  { id: 'NETWORK', label: 'Network' },
  { id: 'COUNTRY', label: 'Country' },
  { id: 'SUB_CUSTOMER', label: 'Sub-customer', staffOnly: true },
  { id: 'SIM', label: 'SIM' },
  { id: 'LABEL', label: 'Label (name the key)' },
  { id: 'TARIFF_PLAN', label: 'Tariff plan' },
  { id: 'RAT', label: 'Radio access type' },
];

const RATS = ['GERAN', 'UTRAN', 'LTE', 'LTE-M', 'NB-IoT', '5G NR'];

const SOURCES = {
  NETWORK_MONTHLY: 'monthly usage by sub-customer and network',
  USAGE_MONTHLY: 'monthly usage per SIM',
  USAGE_DAILY: 'daily usage per SIM (UTC days)',
  USAGE_HOURLY: 'hourly usage per SIM',
  SESSIONS_HOURLY: 'hourly sessions per SIM and radio access type',
  RATED_DAILY: 'rated CDRs per SIM and UTC day',
};

const UNSERVED_HELP = {
  TIME_NOT_ALIGNED:
    'A boundary of the range or of a bucket does not fall on the hours (or, for cost and rated bytes, the UTC days) the usage is kept in. Ask in UTC, or choose whole UTC days.',
  MIXED_SOURCES:
    'Cost and rated bytes come from rated CDRs; sessions and radio access types from session updates. Ask for them in two requests.',
  NO_RATE_CARD: 'The tenant has no retail rate card, so nothing is rated: leave out Cost and Rated bytes.',
};

const RECON_STATUS = {
  MATCH: 'Both views count the same bytes',
  SESSIONS_ONLY: 'Sessions counted bytes no CDR bills (yet)',
  CDRS_ONLY: 'CDRs bill bytes no session update counted',
  DIFFERENT: 'Both views have bytes, but not the same',
};

const STAFF = ['PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR', 'VIEWER'];

/// Rows drawn in the results table before "Show all" (an answer holds up to 10,000).
const TABLE_ROWS = 500;
const DRILL_PAGE = 50;
const RECON_ROWS = 200;
const CHART_SERIES = 8;
const CHART_BARS = 25;

// ---- Small helpers ------------------------------------------------------------------------------

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/// YYYY-MM-DD of a Date in the browser's zone.
function localDay(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function daysAgo(n, utc) {
  const d = new Date(Date.now() - n * 86400000);
  return utc ? isoDay(d) : localDay(d);
}

/// Comma- or whitespace-separated values of a text field.
function list(text) {
  return String(text || '')
    .split(/[\s,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/// Label filters written as `key=value`, separated by commas.
function labelPairs(text) {
  return String(text || '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const i = s.indexOf('=');
      return i < 0 ? { key: s, value: null } : { key: s.slice(0, i).trim(), value: s.slice(i + 1).trim() };
    });
}

/// Sum of Decimal strings, exactly (BigInt over the longest fraction), as a Decimal string.
function decimalSum(values) {
  const parts = values
    .filter((v) => v !== null && v !== undefined && v !== '')
    .map((v) => {
      const s = String(v).trim();
      const neg = s.startsWith('-');
      const [int, frac = ''] = s.replace(/^[-+]/, '').split('.');
      return { neg, int: int || '0', frac };
    });
  const scale = Math.max(0, ...parts.map((p) => p.frac.length));
  let total = 0n;
  for (const p of parts) {
    const n = BigInt(p.int + p.frac.padEnd(scale, '0'));
    total += p.neg ? -n : n;
  }
  const neg = total < 0n;
  const digits = (neg ? -total : total).toString().padStart(scale + 1, '0');
  const out = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return neg ? `-${out}` : out;
}

/// The parts of an instant in a zone (year, month, day, hour, minute as 2-digit strings).
function zoned(iso, tz) {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(iso));
  return Object.fromEntries(parts.map((p) => [p.type, p.value]));
}

/// A time bucket's start, as its granularity names it, in the answer's zone.
function bucketText(iso, granularity, tz) {
  if (!iso) return '—';
  const p = zoned(iso, tz);
  switch (granularity) {
    case 'HOUR':
      return `${p.year}-${p.month}-${p.day} ${p.hour}:00`;
    case 'DAY':
      return `${p.year}-${p.month}-${p.day}`;
    case 'MONTH':
      return `${p.year}-${p.month}`;
    case 'YEAR':
      return p.year;
    default:
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }
}

/// A shorter bucket label for chart axes.
function bucketShort(iso, granularity, tz) {
  const p = zoned(iso, tz);
  if (granularity === 'HOUR') return `${p.day}.${p.month} ${p.hour}h`;
  return bucketText(iso, granularity, tz);
}

function instantText(iso, tz) {
  const p = zoned(iso, tz);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

function networkText(n) {
  if (!n) return '—';
  return n.name ? `${n.name} (${n.mccMnc})` : n.mccMnc;
}

/// A measure's value as text (money in the answer's currency).
function measureText(m, v, currency) {
  if (v === null || v === undefined) return '—';
  if (m.kind === 'bytes') return h('span', { title: `${num(v)} bytes` }, bytes(v));
  if (m.kind === 'money') return money(v, currency);
  return num(v);
}

function measureFormat(m, currency) {
  if (m.kind === 'bytes') return bytes;
  if (m.kind === 'money') return (v) => money(v, currency);
  return num;
}

/// Every sub-customer of the tenant (read once per sign-in, see api.customers).
function allCustomers(api, tenantId) {
  return api.customers(tenantId);
}

/// `[from, to)` instants of a custom range of whole days (`to` inclusive, as the form shows it),
/// widened to whole months or years when the granularity asks for them (the API wants the range to
/// start and end on buckets). Days are the browser's unless `utc`.
function customRange(fromDay, toDay, granularity, utc) {
  const [fy, fm, fd] = fromDay.split('-').map(Number);
  const [ty, tm, td] = toDay.split('-').map(Number);
  let start = [fy, fm, fd];
  let end = [ty, tm, td + 1];
  if (granularity === 'MONTH') {
    start = [fy, fm, 1];
    end = [ty, tm + 1, 1];
  } else if (granularity === 'YEAR') {
    start = [fy, 1, 1];
    end = [ty + 1, 1, 1];
  }
  const at = ([y, m, d]) => (utc ? new Date(Date.UTC(y, m - 1, d)) : new Date(y, m - 1, d)).toISOString();
  const from = at(start);
  const to = at(end);
  const widened = from !== at([fy, fm, fd]) || to !== at([ty, tm, td + 1]);
  return { from, to, widened };
}

// ---- State in the hash ---------------------------------------------------------------------------

function readState(q, { caps, staff, browserTz }) {
  const utc = q.get('tz') === 'UTC';
  const presetIds = PRESETS.map((p) => p[0]);
  const allowedMeasures = MEASURES.filter((m) => !m.rated || caps.readCosts).map((m) => m.id);
  const allowedDims = DIMENSIONS.filter((d) => !d.staffOnly || staff).map((d) => d.id);
  let measures = list(q.get('m')).filter((m) => allowedMeasures.includes(m));
  if (!measures.length) measures = ['BYTES_TOTAL', 'ACTIVE_SIMS'];
  const dimsRaw = q.has('d') ? list(q.get('d')) : ['TIME', 'NETWORK'];
  const from = q.get('from');
  const to = q.get('to');
  return {
    preset: presetIds.includes(q.get('preset')) ? q.get('preset') : 'LAST_7_DAYS',
    from: DAY_RE.test(from || '') ? from : daysAgo(6, utc),
    to: DAY_RE.test(to || '') ? to : daysAgo(0, utc),
    granularity: GRANULARITIES.some((g) => g[0] && g[0] === q.get('g')) ? q.get('g') : '',
    tz: utc || browserTz === 'UTC' ? 'UTC' : 'local',
    measures,
    dimensions: DIMENSIONS.map((d) => d.id).filter((d) => dimsRaw.includes(d) && allowedDims.includes(d)),
    labelKey: q.get('lk') || '',
    customer: staff ? q.get('customer') || '' : '',
    networks: q.get('networks') || '',
    countries: q.get('countries') || '',
    labels: q.get('labels') || '',
    plans: q.get('plans') || '',
    rats: list(q.get('rats')).filter((r) => RATS.includes(r)),
    iccids: q.get('iccids') || '',
    chart: q.get('cm') || '',
  };
}

function readRecon(q) {
  const from = q.get('rfrom');
  const to = q.get('rto');
  return {
    from: DAY_RE.test(from || '') ? from : daysAgo(6, true),
    to: DAY_RE.test(to || '') ? to : daysAgo(0, true),
    onlyDifferences: q.get('rdiff') === '1',
    iccid: q.get('riccid') || '',
    customer: q.get('rcustomer') || '',
  };
}

function toQuery(s, r, withRecon) {
  const q = new URLSearchParams();
  q.set('preset', s.preset);
  if (s.preset === 'CUSTOM') {
    q.set('from', s.from);
    q.set('to', s.to);
  }
  if (s.granularity) q.set('g', s.granularity);
  if (s.tz === 'UTC') q.set('tz', 'UTC');
  q.set('m', s.measures.join(','));
  q.set('d', s.dimensions.join(','));
  if (s.dimensions.includes('LABEL') && s.labelKey) q.set('lk', s.labelKey);
  for (const k of ['customer', 'networks', 'countries', 'labels', 'plans', 'iccids']) if (s[k]) q.set(k, s[k]);
  if (s.rats.length) q.set('rats', s.rats.join(','));
  if (s.chart) q.set('cm', s.chart);
  if (withRecon) {
    q.set('rfrom', r.from);
    q.set('rto', r.to);
    if (r.onlyDifferences) q.set('rdiff', '1');
    if (r.iccid) q.set('riccid', r.iccid);
    if (r.customer) q.set('rcustomer', r.customer);
  }
  return q.toString();
}

/// The request the form describes, or the problems that keep it from being sent.
function buildInput(s, tzName) {
  const problems = [];
  if (!s.measures.length) problems.push('Choose at least one measure.');
  let timeRange;
  let widened = false;
  if (s.preset === 'CUSTOM') {
    if (!DAY_RE.test(s.from) || !DAY_RE.test(s.to)) problems.push('Give both days of the custom range.');
    else if (s.to < s.from) problems.push('The last day of the range is before its first day.');
    else {
      const r = customRange(s.from, s.to, s.granularity, tzName === 'UTC');
      timeRange = { from: r.from, to: r.to };
      widened = r.widened;
    }
    if (s.dimensions.includes('TIME') && !s.granularity) problems.push('Grouping a custom range by time bucket needs a granularity.');
  } else {
    timeRange = { preset: s.preset };
  }
  if (s.dimensions.includes('LABEL') && !s.labelKey.trim()) problems.push('Name the label key to group by (dimension “Label”).');
  const filter = {};
  if (s.customer) filter.subCustomerId = s.customer;
  const networks = list(s.networks);
  const badNet = networks.find((n) => !/^\d{3}-\d{2,3}$/.test(n));
  if (badNet) problems.push(`“${badNet}” is not an MCC-MNC such as 262-01.`);
  if (networks.length) filter.networks = networks;
  const countries = list(s.countries).map((c) => c.toUpperCase());
  const badCountry = countries.find((c) => !/^[A-Z]{2}$/.test(c));
  if (badCountry) problems.push(`“${badCountry}” is not an ISO 3166 alpha-2 country code such as DE.`);
  if (countries.length) filter.countries = countries;
  const labels = labelPairs(s.labels);
  const badLabel = labels.find((l) => !l.key || l.value === null || l.value === '');
  if (badLabel) problems.push('Write label filters as key=value, separated by commas.');
  if (labels.length) filter.labels = labels;
  const plans = String(s.plans || '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (plans.length) filter.tariffPlans = plans;
  if (s.rats.length) filter.rats = s.rats;
  const iccids = list(s.iccids);
  const badIccid = iccids.find((i) => !/^89\d{17,18}$/.test(i));
  if (badIccid) problems.push(`“${badIccid}” is not an ICCID (19 or 20 digits starting with 89).`);
  if (iccids.length) filter.iccids = iccids;
  const input = { measures: s.measures, dimensions: s.dimensions, timeRange, timeZone: tzName };
  if (s.granularity) input.granularity = s.granularity;
  if (s.dimensions.includes('LABEL')) input.labelKey = s.labelKey.trim();
  if (Object.keys(filter).length) input.filter = filter;
  return { input, problems, widened };
}

// ---- The page -------------------------------------------------------------------------------------

export async function render(main, ctx) {
  const { api, caps, me } = ctx;
  const staff = STAFF.includes(me.role);
  const browserTz = timeZone();
  let left = false;
  ctx.onLeave(() => {
    left = true;
  });

  // Sub-customer names (picker, SUB_CUSTOMER rows) and label keys (suggestions); neither is
  // essential, so a failure only leaves the picker or the suggestions out.
  const [customers, catalogue] = await Promise.all([
    staff ? allCustomers(api, ctx.tenantId).catch((err) => ({ error: err })) : Promise.resolve(me.customer ? [me.customer] : []),
    api
      .gql(LABELS, { tenantId: ctx.tenantId })
      .then((d) => d.labelCatalogue)
      .catch(() => []),
  ]);
  if (left) return;
  const customerList = Array.isArray(customers) ? customers : [];
  const customerName = new Map(customerList.map((c) => [c.id, c.name]));

  let state = readState(ctx.query, { caps, staff, browserTz });
  let recon = readRecon(ctx.query);
  const tzName = () => (state.tz === 'UTC' ? 'UTC' : browserTz);

  // Sections, filled below.
  const formStatus = h('div', { 'aria-live': 'polite' });
  const results = h('div', { 'data-testid': 'analytics-results', 'aria-live': 'polite' });
  const drillHost = h('div', {});
  const carrierHost = h('div', { 'aria-live': 'polite' });
  const reconHost = h('div', { 'aria-live': 'polite' });

  // ---- The form -------------------------------------------------------------------------------
  const presetSelect = select(PRESETS, state.preset, { name: 'preset', 'data-testid': 'analytics-preset' });
  const fromInput = h('input', { type: 'date', name: 'from', value: state.from, 'data-testid': 'analytics-from' });
  const toInput = h('input', { type: 'date', name: 'to', value: state.to, 'data-testid': 'analytics-to' });
  const fromField = field('First day', fromInput);
  const toField = field('Last day (included)', toInput);
  const granularitySelect = select(GRANULARITIES, state.granularity, { name: 'granularity', 'data-testid': 'analytics-granularity' });
  const tzOptions = browserTz === 'UTC' ? [['UTC', 'UTC']] : [['local', `Browser (${browserTz})`], ['UTC', 'UTC']];
  const tzSelect = select(tzOptions, state.tz, { name: 'tz', 'data-testid': 'analytics-tz' });
  const showCustom = () => {
    const custom = presetSelect.value === 'CUSTOM';
    fromField.hidden = !custom;
    toField.hidden = !custom;
    fromInput.required = custom;
    toInput.required = custom;
  };
  presetSelect.addEventListener('change', showCustom);
  showCustom();

  const measureBoxes = new Map();
  const measureChecks = MEASURES.filter((m) => !m.rated || caps.readCosts).map((m) => {
    const box = h('input', { type: 'checkbox', name: 'measure', value: m.id, checked: state.measures.includes(m.id), 'data-testid': `measure-${m.id}` });
    measureBoxes.set(m.id, box);
    return h('label', {}, box, m.label);
  });

  const dimBoxes = new Map();
  const labelKeyInput = h('input', {
    type: 'text',
    name: 'labelKey',
    value: state.labelKey,
    list: 'analytics-label-keys',
    maxlength: 100,
    placeholder: 'e.g. region',
    'data-testid': 'analytics-labelKey',
  });
  const labelKeyField = field('Label key to group by', labelKeyInput);
  const dimChecks = DIMENSIONS.filter((d) => !d.staffOnly || staff).map((d) => {
    const box = h('input', { type: 'checkbox', name: 'dimension', value: d.id, checked: state.dimensions.includes(d.id), 'data-testid': `dimension-${d.id}` });
    dimBoxes.set(d.id, box);
    return h('label', {}, box, d.label);
  });
  const showLabelKey = () => {
    const on = dimBoxes.get('LABEL').checked;
    labelKeyField.hidden = !on;
    labelKeyInput.required = on;
  };
  dimBoxes.get('LABEL').addEventListener('change', showLabelKey);
  showLabelKey();

  const keysList = h(
    'datalist',
    { id: 'analytics-label-keys' },
    catalogue.map((l) => h('option', { value: l.key })),
  );
  const pairsList = h(
    'datalist',
    { id: 'analytics-label-pairs' },
    catalogue.flatMap((l) => l.values.map((v) => h('option', { value: `${l.key}=${v}` }))),
  );

  let customerSelect = null;
  let customerFilter = null;
  if (staff) {
    if (Array.isArray(customers)) {
      const options = [['', 'Every sub-customer'], ...customerList.map((c) => [c.id, c.name])];
      if (state.customer && !customerName.has(state.customer)) options.push([state.customer, `Sub-customer ${state.customer}`]);
      customerSelect = select(options, state.customer, { name: 'customer', 'data-testid': 'analytics-customer' });
      customerFilter = field('Sub-customer', customerSelect);
    } else {
      customerFilter = h('div', {}, h('p', { class: 'muted' }, 'The sub-customer list could not be loaded:'), errorBox(customers.error));
    }
  }
  const networksInput = h('input', { type: 'text', name: 'networks', value: state.networks, placeholder: '262-01, 232-03', inputmode: 'numeric' });
  const countriesInput = h('input', { type: 'text', name: 'countries', value: state.countries, placeholder: 'DE, AT', autocapitalize: 'characters' });
  const labelsInput = h('input', { type: 'text', name: 'labels', value: state.labels, placeholder: 'region=north, fleet=vans', list: 'analytics-label-pairs' });
  const plansInput = h('input', { type: 'text', name: 'plans', value: state.plans, placeholder: 'IoT-S, IoT-M' });
  const iccidsInput = h('input', { type: 'text', name: 'iccids', value: state.iccids, placeholder: '8949…, 8949…', inputmode: 'numeric' });
  const ratBoxes = RATS.map((r) => h('input', { type: 'checkbox', name: 'rat', value: r, checked: state.rats.includes(r) }));
  const anyFilter = Boolean(state.customer || state.networks || state.countries || state.labels || state.plans || state.iccids || state.rats.length);

  const runButton = h('button', { type: 'submit', class: 'primary', 'data-testid': 'analytics-run' }, 'Run');
  const form = h(
    'form',
    { class: 'card analytics-form', 'data-testid': 'analytics-form', novalidate: true, onsubmit: (ev) => submit(ev) },
    h('h2', {}, 'Request'),
    h(
      'div',
      { class: 'toolbar' },
      field('Period', presetSelect),
      fromField,
      toField,
      field('Granularity', granularitySelect, 'A custom range without one is a single bucket'),
      field('Time zone', tzSelect, 'Days, months and years are counted in it'),
    ),
    h('fieldset', { class: 'checks' }, h('legend', {}, 'Measures'), measureChecks),
    caps.readCosts
      ? null
      : h('p', { class: 'muted', 'data-testid': 'analytics-cost-hidden' }, 'Cost and rated bytes are not offered: your role does not see costs (your provider does not share them).'),
    h('fieldset', { class: 'checks' }, h('legend', {}, 'Group by'), dimChecks),
    h('div', { class: 'toolbar' }, labelKeyField),
    h(
      'details',
      { class: 'analytics-filters', open: anyFilter },
      h('summary', {}, 'Filters'),
      h(
        'div',
        { class: 'toolbar' },
        customerFilter,
        field('Networks (MCC-MNC)', networksInput),
        field('Countries (ISO codes)', countriesInput),
        field('Labels (key=value)', labelsInput),
        field('Tariff plans (comma-separated)', plansInput),
        field('ICCIDs', iccidsInput),
      ),
      h(
        'fieldset',
        { class: 'checks' },
        h('legend', {}, 'Radio access types'),
        RATS.map((r, i) => h('label', {}, ratBoxes[i], r)),
      ),
    ),
    keysList,
    pairsList,
    h('div', { class: 'actions' }, runButton, h(
        'button',
        {
          type: 'button',
          'data-testid': 'analytics-reset',
          // Back to the defaults: the page drawn afresh from an empty query string.
          onclick: () => {
            if (window.location.hash === '#/analytics') window.dispatchEvent(new HashChangeEvent('hashchange'));
            else ctx.navigate('/analytics');
          },
        },
        'Reset',
      )),
    formStatus,
  );

  function readForm() {
    return {
      ...state,
      preset: presetSelect.value,
      from: fromInput.value,
      to: toInput.value,
      granularity: granularitySelect.value,
      tz: tzSelect.value,
      measures: MEASURES.map((m) => m.id).filter((id) => measureBoxes.get(id) && measureBoxes.get(id).checked),
      dimensions: DIMENSIONS.map((d) => d.id).filter((id) => dimBoxes.get(id) && dimBoxes.get(id).checked),
      labelKey: labelKeyInput.value.trim(),
      customer: customerSelect ? customerSelect.value : state.customer,
      networks: networksInput.value.trim(),
      countries: countriesInput.value.trim(),
      labels: labelsInput.value.trim(),
      plans: plansInput.value.trim(),
      rats: RATS.filter((r, i) => ratBoxes[i].checked),
      iccids: iccidsInput.value.trim(),
    };
  }

  /// Writes the state into the address (a new history entry when it changed).
  function remember(push) {
    const qs = toQuery(state, recon, caps.readBilling);
    const target = `#/analytics?${qs}`;
    if (window.location.hash === target) return;
    if (push) history.pushState(null, '', target);
    else history.replaceState(null, '', target);
  }

  function submit(ev) {
    ev.preventDefault();
    state = readForm();
    remember(true);
    runAll();
  }

  // ---- Running a request ------------------------------------------------------------------------
  let runId = 0;
  let lastInput = null;
  let lastAnswer = null;

  function runAll() {
    runAnalytics();
    runCarriers();
  }

  async function runAnalytics() {
    const id = (runId += 1);
    const { input, problems, widened } = buildInput(state, tzName());
    mount(drillHost);
    if (problems.length) {
      mount(formStatus, h('div', { class: 'error', role: 'alert', 'data-testid': 'analytics-problems' }, h('ul', {}, problems.map((p) => h('li', {}, p)))));
      mount(results, h('p', { class: 'muted' }, 'Correct the request to see results.'));
      markReady();
      return;
    }
    mount(formStatus, widened ? h('p', { class: 'notice' }, `The range was widened to whole ${state.granularity === 'YEAR' ? 'years' : 'months'} for this granularity.`) : null);
    mount(results, loading('Asking the usage cubes…'));
    runButton.disabled = true;
    try {
      const { usageAnalytics } = await api.gql(ANALYTICS, { tenantId: ctx.tenantId, input });
      if (left || id !== runId) return;
      lastInput = input;
      lastAnswer = usageAnalytics;
      drawResults(usageAnalytics);
    } catch (err) {
      if (left || id !== runId) return;
      lastAnswer = null;
      mount(results, errorBox(err), err.field ? h('p', { class: 'muted' }, `The server points at “${err.field}”.`) : null);
    } finally {
      if (id === runId) runButton.disabled = false;
      markReady();
    }
  }

  function markReady() {
    if (!left && !main.dataset.ready) main.dataset.ready = 'analytics';
  }

  // ---- Dimension values of a row ------------------------------------------------------------------
  function dimValue(r, d) {
    switch (d) {
      case 'TIME':
        return r.time;
      case 'NETWORK':
        return r.network ? r.network.mccMnc : null;
      case 'COUNTRY':
        return r.country;
      case 'SUB_CUSTOMER':
        return r.subCustomerId;
      case 'SIM':
        return r.iccid;
      case 'LABEL':
        return r.label;
      case 'TARIFF_PLAN':
        return r.tariffPlan;
      case 'RAT':
        return r.rat;
      default:
        return null;
    }
  }

  function dimText(r, d, a) {
    const v = dimValue(r, d);
    switch (d) {
      case 'TIME':
        return bucketText(v, a.granularity, a.timeZone);
      case 'NETWORK':
        return networkText(r.network);
      case 'SUB_CUSTOMER':
        return v ? customerName.get(v) || v : 'no sub-customer';
      case 'LABEL':
        return v ?? `no ${state.labelKey || 'label'}`;
      case 'TARIFF_PLAN':
        return v ?? 'no tariff plan';
      default:
        return v ?? '—';
    }
  }

  function dimCell(r, d, a) {
    if (d === 'SIM' && r.iccid) return link(`/sims/${encodeURIComponent(r.iccid)}`, r.iccid, { class: 'mono' });
    if (d === 'NETWORK' && r.network && r.network.country) return h('span', { title: r.network.country }, networkText(r.network));
    return dimText(r, d, a);
  }

  /// Why a row cannot be drilled into (null: it can).
  function noDrill(r, dims) {
    if (dims.includes('SIM')) return 'This row is one SIM already: open it.';
    for (const d of dims) {
      if (d === 'TIME') continue;
      const v = dimValue(r, d);
      if (v === null || v === undefined) {
        if (d === 'SUB_CUSTOMER') return 'SIMs assigned to no sub-customer: find them in the SIM list.';
        return `This row has no ${DIMENSIONS.find((x) => x.id === d).label.toLowerCase()} value to narrow the SIMs by.`;
      }
    }
    return null;
  }

  function rowInput(r, dims) {
    const row = {};
    if (dims.includes('TIME') && r.time) row.time = r.time;
    if (dims.includes('NETWORK') && r.network) row.network = r.network.mccMnc;
    if (dims.includes('COUNTRY') && r.country) row.country = r.country;
    if (dims.includes('SUB_CUSTOMER') && r.subCustomerId) row.subCustomerId = r.subCustomerId;
    if (dims.includes('LABEL') && r.label !== null) row.label = r.label;
    if (dims.includes('TARIFF_PLAN') && r.tariffPlan !== null) row.tariffPlan = r.tariffPlan;
    if (dims.includes('RAT') && r.rat) row.rat = r.rat;
    return row;
  }

  function rowTitle(r, a) {
    const parts = a.dimensions.map((d) => `${DIMENSIONS.find((x) => x.id === d).label.replace(/ \(.*\)$/, '')}: ${dimText(r, d, a)}`);
    return parts.length ? parts.join(' · ') : 'the whole range';
  }

  // ---- Drawing an answer ------------------------------------------------------------------------
  function drawResults(a) {
    const asked = MEASURES.filter((m) => a && lastInput.measures.includes(m.id));
    const sourceLine = h(
      'p',
      { 'data-testid': 'analytics-source', dataset: { value: a.source || '' } },
      a.source
        ? ['Answered from ', h('span', { class: 'badge' }, a.source), ` — ${SOURCES[a.source] || 'a usage cube'}.`]
        : ['No cube could answer this request exactly.'],
    );
    const range = h(
      'p',
      { class: 'muted', 'data-testid': 'analytics-range' },
      `${instantText(a.from, a.timeZone)} to ${instantText(a.to, a.timeZone)} (end exclusive, ${a.timeZone})`,
      a.granularity ? ` · ${a.granularity.toLowerCase()} buckets` : ' · one bucket for the whole range',
      a.currency ? ` · amounts in ${a.currency}` : '',
    );
    if (a.unserved) {
      const fixes = [];
      if (a.unserved.reason === 'TIME_NOT_ALIGNED' && state.tz !== 'UTC') {
        fixes.push(
          h(
            'button',
            {
              type: 'button',
              'data-testid': 'analytics-use-utc',
              onclick: () => {
                tzSelect.value = 'UTC';
                state = { ...readForm(), tz: 'UTC' };
                remember(true);
                runAll();
              },
            },
            'Ask again in UTC',
          ),
        );
      }
      mount(
        results,
        sourceLine,
        h(
          'div',
          { class: 'error', role: 'alert', 'data-testid': 'analytics-unserved', dataset: { reason: a.unserved.reason } },
          h('strong', {}, `Not served (${a.unserved.reason}): `),
          a.unserved.message,
          h('p', {}, UNSERVED_HELP[a.unserved.reason] || ''),
          fixes.length ? h('div', { class: 'actions' }, fixes) : null,
        ),
        range,
      );
      return;
    }

    // Totals over all rows (active SIMs counted once).
    const totals = h(
      'div',
      { class: 'stats', 'data-testid': 'analytics-totals' },
      asked.map((m) =>
        h(
          'div',
          { class: 'stat', dataset: { measure: m.id, value: a.totals[m.field] ?? '' } },
          h('div', { class: 'stat-value' }, measureText(m, a.totals[m.field], a.currency)),
          h('div', { class: 'stat-label' }, m.id === 'ACTIVE_SIMS' ? 'Active SIMs (each counted once)' : `${m.label}, all rows`),
        ),
      ),
    );

    // The chart, on one measure of the asked ones (switchable without asking again).
    const chartMeasure = asked.find((m) => m.id === state.chart) || asked[0];
    const chartHost = h('div', {});
    const chartPicker =
      asked.length > 1
        ? field(
            'Measure charted',
            select(
              asked.map((m) => [m.id, m.label]),
              chartMeasure.id,
              {
                'data-testid': 'analytics-chart-measure',
                onchange: (ev) => {
                  state = { ...state, chart: ev.target.value };
                  remember(false);
                  mount(chartHost, chartOf(a, asked.find((m) => m.id === ev.target.value)));
                },
              },
            ),
          )
        : null;
    mount(chartHost, chartOf(a, chartMeasure));

    // The table; large answers draw their first rows until asked for all.
    const tableHost = h('div', {});
    const drawTable = (all) => {
      const shown = all ? a.rows : a.rows.slice(0, TABLE_ROWS);
      mount(
        tableHost,
        resultsTable(a, asked, shown),
        a.rows.length > shown.length
          ? h(
              'p',
              { class: 'muted' },
              `${num(shown.length)} of ${num(a.rows.length)} rows shown. `,
              h('button', { type: 'button', onclick: () => drawTable(true) }, `Show all ${num(a.rows.length)} rows`),
            )
          : null,
      );
    };
    drawTable(false);

    mount(
      results,
      sourceLine,
      range,
      totals,
      card('Chart', chartPicker, chartHost),
      card(`Rows (${num(a.rows.length)})`, tableHost),
    );
  }

  function resultsTable(a, asked, rows) {
    const dims = a.dimensions;
    const cols = [
      ...dims.map((d) => ({ label: DIMENSIONS.find((x) => x.id === d).label.replace(/ \(.*\)$/, ''), value: (r) => dimCell(r, d, a) })),
      ...asked.map((m) => ({ label: m.label, num: true, value: (r) => measureText(m, r.measures[m.field], a.currency) })),
      {
        label: 'SIMs',
        value: (r) => {
          const why = noDrill(r, dims);
          const title = rowTitle(r, a);
          return h(
            'button',
            {
              type: 'button',
              'data-testid': 'analytics-drill',
              disabled: Boolean(why),
              title: why || `The SIMs behind ${title}`,
              'aria-label': why ? `SIMs: ${why}` : `SIMs behind ${title}`,
              onclick: () => openDrill(r, a),
            },
            'SIMs',
          );
        },
      },
    ];
    return table(cols, rows, { testid: 'analytics-table', empty: 'No usage matches this request.' });
  }

  /// Columns over time buckets (stacked by the other dimensions) when grouped by time,
  /// else bars by the row's other dimension values.
  function chartOf(a, m) {
    const format = measureFormat(m, a.currency);
    const others = a.dimensions.filter((d) => d !== 'TIME');
    const keyOf = (r) => (others.length ? others.map((d) => dimText(r, d, a)).join(' · ') : 'All');
    const title = `${m.label}${others.length ? ` by ${others.map((d) => DIMENSIONS.find((x) => x.id === d).label.replace(/ \(.*\)$/, '').toLowerCase()).join(' and ')}` : ''}`;
    if (!a.rows.length) return h('p', { class: 'empty', 'data-testid': 'chart-analytics' }, 'No usage matches this request.');
    const value = (r) => r.measures[m.field];

    if (a.dimensions.includes('TIME') && a.granularity) {
      // Series: the largest few by the charted measure; the rest summed as "Other".
      const bySeries = new Map();
      for (const r of a.rows) {
        const k = keyOf(r);
        bySeries.set(k, (bySeries.get(k) || 0) + Number(value(r) || 0));
      }
      const ranked = [...bySeries.entries()].sort((x, y) => y[1] - x[1]).map((e) => e[0]);
      const top = ranked.slice(0, CHART_SERIES);
      const rest = ranked.length > CHART_SERIES;
      const series = top.map((k, i) => ({ key: `s${i}`, label: k }));
      if (rest) series.push({ key: 'other', label: `Other (${ranked.length - CHART_SERIES})` });
      const seriesOf = new Map(top.map((k, i) => [k, `s${i}`]));
      const buckets = new Map();
      for (const r of a.rows) {
        if (!buckets.has(r.time)) buckets.set(r.time, { time: r.time, parts: {} });
        const b = buckets.get(r.time);
        const s = seriesOf.get(keyOf(r)) || 'other';
        (b.parts[s] = b.parts[s] || []).push(value(r));
      }
      const rows = [...buckets.values()].sort((x, y) => new Date(x.time) - new Date(y.time));
      const sum = (vals) => (m.kind === 'money' ? decimalSum(vals) : vals.reduce((t, v) => t + Number(v || 0), 0));
      return columns(rows, {
        x: (b) => bucketShort(b.time, a.granularity, a.timeZone),
        series,
        value: (b, k) => (b.parts[k] ? sum(b.parts[k]) : 0),
        format,
        title: `${title} per ${a.granularity.toLowerCase()} (${a.timeZone})`,
        testid: 'chart-analytics',
        time: false,
      });
    }

    const rows = [...a.rows].sort((x, y) => Number(value(y) || 0) - Number(value(x) || 0));
    const shown = rows.slice(0, CHART_BARS);
    const fig = barsH(shown, {
      key: keyOf,
      value,
      format,
      title: rows.length > CHART_BARS ? `${title} — largest ${CHART_BARS} of ${num(rows.length)}` : title,
      testid: 'chart-analytics',
    });
    return fig;
  }

  // ---- Drill-down -------------------------------------------------------------------------------
  function openDrill(r, a) {
    const input = lastInput;
    const row = rowInput(r, a.dimensions);
    const asked = MEASURES.filter((m) => input.measures.includes(m.id) || m.id === 'BYTES_TOTAL');
    const heading = h('h2', { tabindex: '-1' }, `SIMs behind ${rowTitle(r, a)}`);
    const body = h('div', { 'aria-live': 'polite' });
    const close = h('button', { type: 'button', 'data-testid': 'drill-close', onclick: () => mount(drillHost) }, 'Close');
    mount(
      drillHost,
      h('section', { class: 'card', 'data-testid': 'drill' }, h('div', { class: 'actions drill-head' }, heading, close), h('p', { class: 'muted' }, 'Most bytes first.'), body),
    );
    heading.focus();
    let drillRun = 0;

    const page = async (after, offset) => {
      const id = (drillRun += 1);
      mount(body, loading('Finding the SIMs…'));
      try {
        const { usageAnalyticsSims: c } = await api.gql(DRILL, { tenantId: ctx.tenantId, input, row, first: DRILL_PAGE, after });
        if (left || id !== drillRun) return;
        if (c.unserved) {
          mount(body, h('div', { class: 'error', role: 'alert' }, `Not served (${c.unserved.reason}): ${c.unserved.message}`));
          return;
        }
        const cols = [
          { label: '#', num: true, value: (e) => num(offset + c.edges.indexOf(e) + 1) },
          { label: 'ICCID', value: (e) => link(`/sims/${encodeURIComponent(e.node.iccid)}`, e.node.iccid, { class: 'mono' }) },
          ...asked.map((m) => ({ label: m.label, num: true, value: (e) => measureText(m, e.node.measures[m.field], a.currency) })),
        ];
        mount(
          body,
          table(cols, c.edges, { testid: 'drill-table', empty: 'No SIM has usage in this row.' }),
          pager(c.pageInfo, {
            total: c.totalCount,
            shown: offset + c.edges.length,
            onNext: (cursor) => page(cursor, offset + c.edges.length),
            onFirst: after ? () => page(null, 0) : null,
          }),
          c.source ? h('p', { class: 'muted' }, `From ${c.source}.`) : null,
        );
      } catch (err) {
        if (left || id !== drillRun) return;
        mount(body, errorBox(err));
      }
    };
    page(null, 0);
  }

  // ---- Carrier breakdown ------------------------------------------------------------------------
  let carrierRun = 0;
  async function runCarriers() {
    const id = (carrierRun += 1);
    const { input, problems } = buildInput(state, tzName());
    if (problems.length || !input.timeRange) {
      mount(carrierHost, h('p', { class: 'muted' }, 'Correct the request above to see the carriers of its range.'));
      return;
    }
    mount(carrierHost, loading('Summing traffic and cost per network…'));
    const ask = (tz, timeRange) =>
      api.gql(CARRIERS, { tenantId: ctx.tenantId, subCustomerId: state.customer || null, timeRange, timeZone: tz }).then((d) => d.carrierBreakdown);
    let note = null;
    try {
      let b;
      try {
        b = await ask(tzName(), input.timeRange);
      } catch (err) {
        // Costs are kept per UTC day: a zone whose days are not UTC days is refused on timeZone.
        // Ask again over UTC days and say so.
        if (err.field !== 'timeZone' || tzName() === 'UTC') throw err;
        const utc = buildInput({ ...state, tz: 'UTC' }, 'UTC');
        b = await ask('UTC', utc.input.timeRange);
        note = `Costs are kept per UTC day, so this breakdown counts UTC days (${tzName()} days cannot split them).`;
      }
      if (left || id !== carrierRun) return;
      drawCarriers(b, note);
    } catch (err) {
      if (left || id !== carrierRun) return;
      mount(
        carrierHost,
        errorBox(err),
        err.field === 'timeZone' ? h('p', { class: 'muted' }, 'Costs are kept per UTC day: choose a range of whole days (not the last 24 hours).') : null,
      );
    }
  }

  function drawCarriers(b, note) {
    const withCost = b.currency !== null && b.currency !== undefined;
    const cols = [
      { label: 'Network', value: (c) => c.network.name || 'Unknown network' },
      { label: 'MCC-MNC', value: (c) => h('span', { class: 'mono' }, c.network.mccMnc) },
      { label: 'Country', value: (c) => c.network.country || c.network.countryCode || '—' },
      { label: 'Traffic', num: true, value: (c) => h('span', { title: `${num(c.bytes)} bytes` }, bytes(c.bytes)) },
      { label: 'Share of traffic', num: true, value: (c) => pct(c.shareOfBytes) },
    ];
    if (withCost) {
      cols.push({ label: `Cost (${b.currency})`, num: true, value: (c) => money(c.cost, b.currency) });
      cols.push({ label: 'Share of cost', num: true, value: (c) => pct(c.shareOfCost) });
    }
    const label = (c) => (c.network.name ? `${c.network.name} (${c.network.mccMnc})` : c.network.mccMnc);
    const byCost = withCost ? [...b.carriers].filter((c) => c.cost !== null).sort((x, y) => Number(y.cost) - Number(x.cost)) : [];
    mount(
      carrierHost,
      note ? h('p', { class: 'notice', 'data-testid': 'carrier-note' }, note) : null,
      h(
        'p',
        { 'data-testid': 'carrier-totals', dataset: { bytes: b.totalBytes, cost: b.totalCost ?? '' } },
        `${num(b.carriers.length)} network${b.carriers.length === 1 ? '' : 's'} · ${bytes(b.totalBytes)} in total`,
        withCost
          ? ` · ${money(b.totalCost, b.currency)} data cost (access fees not included)`
          : caps.readCosts
            ? ' · no rated cost (the tenant has no retail rate card)'
            : ' · costs are not shown to your role',
      ),
      b.carriers.length
        ? h(
            'div',
            { class: 'grid' },
            barsH(b.carriers.slice(0, CHART_BARS), { key: label, value: (c) => c.bytes, format: bytes, title: 'Traffic by network', testid: 'chart-carriers' }),
            byCost.length
              ? barsH(byCost.slice(0, CHART_BARS), {
                  key: label,
                  value: (c) => c.cost,
                  format: (v) => money(v, b.currency),
                  title: `Data cost by network (${b.currency})`,
                  testid: 'chart-carrier-cost',
                })
              : null,
          )
        : null,
      table(cols, b.carriers, { testid: 'carrier-table', empty: 'No network carried traffic in this range.' }),
    );
  }

  // ---- Reconciliation (staff) ---------------------------------------------------------------------
  let reconSection = null;
  let runRecon = () => {};
  if (caps.readBilling) {
    const rFrom = h('input', { type: 'date', name: 'rfrom', value: recon.from, required: true, 'data-testid': 'reconciliation-from' });
    const rTo = h('input', { type: 'date', name: 'rto', value: recon.to, required: true, 'data-testid': 'reconciliation-to' });
    const rIccid = h('input', { type: 'text', name: 'riccid', value: recon.iccid, inputmode: 'numeric', placeholder: 'any SIM' });
    const rDiff = h('input', { type: 'checkbox', name: 'rdiff', checked: recon.onlyDifferences, 'data-testid': 'reconciliation-only-differences' });
    const rCustomer = staff && Array.isArray(customers) ? select([['', 'Every sub-customer'], ...customerList.map((c) => [c.id, c.name])], recon.customer, { name: 'rcustomer' }) : null;
    const rButton = h('button', { type: 'submit', 'data-testid': 'reconciliation-run' }, 'Compare');
    let reconRun = 0;
    runRecon = async () => {
      const id = (reconRun += 1);
      if (!DAY_RE.test(recon.from) || !DAY_RE.test(recon.to) || recon.to < recon.from) {
        mount(reconHost, errorBox('Give a first and a last day, the last not before the first.'));
        return;
      }
      mount(reconHost, loading('Comparing session and CDR bytes…'));
      rButton.disabled = true;
      try {
        const { usageReconciliation: rows } = await api.gql(RECONCILIATION, {
          tenantId: ctx.tenantId,
          from: recon.from,
          to: recon.to,
          iccid: recon.iccid || null,
          customerId: recon.customer || null,
          onlyDifferences: recon.onlyDifferences,
          first: RECON_ROWS,
        });
        if (left || id !== reconRun) return;
        drawRecon(rows);
      } catch (err) {
        if (left || id !== reconRun) return;
        mount(reconHost, errorBox(err));
      } finally {
        if (id === reconRun) rButton.disabled = false;
      }
    };
    const rForm = h(
      'form',
      {
        class: 'toolbar',
        'data-testid': 'reconciliation-form',
        onsubmit: (ev) => {
          ev.preventDefault();
          recon = { from: rFrom.value, to: rTo.value, iccid: rIccid.value.trim(), onlyDifferences: rDiff.checked, customer: rCustomer ? rCustomer.value : '' };
          remember(false);
          runRecon();
        },
      },
      field('First UTC day', rFrom),
      field('Last UTC day (included)', rTo),
      field('ICCID', rIccid),
      rCustomer ? field('Sub-customer', rCustomer) : null,
      h('label', { class: 'recon-toggle' }, rDiff, ' Only differences'),
      rButton,
    );
    // The toggle answers at once.
    rDiff.addEventListener('change', () => rForm.requestSubmit());
    reconSection = card(
      'Reconciliation',
      h('p', { class: 'muted' }, 'Bytes counted from data sessions against bytes billed by CDRs, per SIM and UTC day.'),
      rForm,
      reconHost,
    );
    reconSection.dataset.testid = 'reconciliation';
  }

  function drawRecon(rows) {
    const counts = {};
    rows.forEach((r) => {
      counts[r.status] = (counts[r.status] || 0) + 1;
    });
    const cols = [
      { label: 'Day', value: (r) => r.day },
      { label: 'ICCID', value: (r) => link(`/sims/${encodeURIComponent(r.iccid)}`, r.iccid, { class: 'mono' }) },
      { label: 'Status', value: (r) => h('span', { class: `badge badge-${r.status}`, title: RECON_STATUS[r.status] || '' }, r.status) },
      { label: 'Sessions in', num: true, value: (r) => bytes(r.sessionBytesIn) },
      { label: 'Sessions out', num: true, value: (r) => bytes(r.sessionBytesOut) },
      { label: 'CDRs in', num: true, value: (r) => bytes(r.cdrBytesIn) },
      { label: 'CDRs out', num: true, value: (r) => bytes(r.cdrBytesOut) },
      {
        label: 'Difference (CDRs − sessions)',
        num: true,
        value: (r) => {
          const n = Number(r.difference);
          return h('span', { title: `${num(r.difference)} bytes`, class: n === 0 ? null : 'recon-diff' }, `${n > 0 ? '+' : n < 0 ? '−' : ''}${bytes(Math.abs(n))}`);
        },
      },
    ];
    mount(
      reconHost,
      rows.length
        ? h(
            'p',
            { class: 'actions', 'data-testid': 'reconciliation-summary' },
            Object.keys(RECON_STATUS)
              .filter((s) => counts[s])
              .map((s) => h('span', { class: `badge badge-${s}`, title: RECON_STATUS[s] }, `${s} ${num(counts[s])}`)),
          )
        : null,
      rows.length >= RECON_ROWS ? h('p', { class: 'notice' }, `The first ${num(RECON_ROWS)} SIM-days are shown; narrow the days or name an ICCID for the rest.`) : null,
      table(cols, rows, {
        testid: 'reconciliation-table',
        empty: recon.onlyDifferences ? 'Every SIM-day in this range matches: no differences.' : 'No SIM has usage on these days.',
      }),
    );
  }

  // ---- Layout, then the first answers -----------------------------------------------------------
  mount(
    main,
    h('h1', {}, 'Analytics'),
    form,
    results,
    drillHost,
    card('Carrier cost breakdown', h('p', { class: 'muted' }, 'Every network with traffic in the range of the request above, with its share of traffic and of data cost.'), carrierHost),
    reconSection,
  );
  runAll();
  runRecon();
}
