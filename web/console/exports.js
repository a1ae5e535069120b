// Exports: request a file (CSV, XLSX or Parquet) of one of the kinds the caller's role may read,
// follow the jobs live, download through the job's short-lived signed link, cancel what is still
// queued or running. The flow is the API's (docs/exports.md): requestExport → exportJobProgress
// (or exportJob) → downloadUrl, a same-origin link that works without a token for 5 minutes.

import { h, mount, num, bytes, dateTime, duration, isoDay, timeZone, table, errorBox, loading, field, select, listPager, PERIOD_PRESETS } from './ui.js';

// ---- the operations ------------------------------------------------------------------------

const JOB_FIELDS = `id kind format status filter rows bytes expectedRows etaSeconds fileName sha256 failure
  requestedBy createdAt startedAt finishedAt expiresAt downloadUrl`;
const REQUEST = `mutation ConsoleRequestExport($kind: ExportKind!, $format: ExportFormat!, $filter: ExportFilterInput) {
  requestExport(kind: $kind, format: $format, filter: $filter) { ${JOB_FIELDS} }
}`;
const CANCEL = `mutation ConsoleCancelExport($id: ID!) { cancelExport(id: $id) { ${JOB_FIELDS} } }`;
const JOBS = `query ConsoleExportJobs($tenantId: ID, $statuses: [ExportStatus!], $first: Int, $after: String) {
  exportJobs(tenantId: $tenantId, statuses: $statuses, first: $first, after: $after) {
    nodes { ${JOB_FIELDS} }
    pageInfo { hasNextPage endCursor }
  }
}`;
const JOB = `query ConsoleExportJob($id: ID!) { exportJob(id: $id) { ${JOB_FIELDS} } }`;
const PROGRESS = `subscription ConsoleExportProgress($id: ID!) {
  exportJobProgress(id: $id) { jobId status rows bytes expectedRows etaSeconds at }
}`;
const TENANTS = 'query ConsoleExportTenants { tenants { id name slug } }';

// ---- vocabulary ----------------------------------------------------------------------------

const STATUSES = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];
const OPEN = ['QUEUED', 'RUNNING'];
const FORMATS = [
  ['CSV', 'CSV — UTF-8, header row (spreadsheets, ERP imports)'],
  ['XLSX', 'XLSX — typed cells, frozen header (Excel)'],
  ['PARQUET', 'Parquet — typed columns, zstd (Polars, DuckDB, pandas, Spark)'],
];
const SIM_STATES = ['INVENTORY', 'ACTIVE', 'SUSPENDED', 'LOST_STOLEN', 'TERMINATED'];
const SIM_TYPES = ['PREPAID', 'POSTPAID', 'DATA_ONLY'];
const DEVICE_STATES = ['REGISTERED', 'IN_SERVICE', 'MAINTENANCE', 'RETIRED'];
const DEVICE_KINDS = ['TRACKER', 'SENSOR', 'GATEWAY', 'METER', 'CAMERA', 'WEARABLE', 'VEHICLE', 'OTHER'];
const AUDIT_ACTIONS = ['CREATED', 'IMPORTED', 'UPDATED', 'STATE_CHANGED', 'ASSIGNED', 'LABELS_CHANGED', 'BOUND', 'UNBOUND', 'SWAPPED',
  'TRANSITION_SCHEDULED', 'TRANSITION_CANCELLED', 'NETWORK_FAILED', 'LOCATION_UPDATED'];
const PRESETS = PERIOD_PRESETS;
const PAGE = 20;
const MAX_LIVE = 10;
// A download link works 5 minutes after it was read; older ones are read again first.
const LINK_FRESH_MS = 4 * 60 * 1000;

const badge = (s) => h('span', { class: `badge badge-${s}` }, s);

/// The kinds, who may request them (ctx.caps, after docs/roles.md: the kind's query's
/// permission) and the filter form of each.
const KINDS = [
  { kind: 'CUSTOMER_BILLING', label: 'Customer billing', cap: 'readCosts', form: billingForm,
    hint: 'Usage and cost per sub-customer of a billing period: the file you bill your customers from.' },
  { kind: 'SIM_INVENTORY', label: 'SIM inventory', cap: 'readSims', form: simsForm,
    hint: 'SIMs with state, sub-customer, labels and device, ordered by ICCID.' },
  { kind: 'DEVICES', label: 'Devices', cap: 'readDevices', form: devicesForm,
    hint: 'Devices with their SIMs, ordered by IMEI.' },
  { kind: 'USAGE_ANALYTICS', label: 'Usage analytics', cap: 'analytics', form: analyticsForm,
    hint: 'Any usage analytics request’s rows: one column per dimension, then one per measure.' },
  { kind: 'RATED_USAGE', label: 'Rated usage', cap: 'readCosts', form: ratedForm,
    hint: 'The rating engine’s rows of a billing period, per SIM, day and network.' },
  { kind: 'SESSION_HISTORY', label: 'Session history (one SIM)', cap: 'readSims', form: sessionsForm,
    hint: 'One SIM’s session updates, newest first (updates are kept 7 days).' },
  { kind: 'USAGE_RECONCILIATION', label: 'Usage reconciliation', cap: 'readAudit', form: reconciliationForm,
    hint: 'Session-counted against CDR bytes per SIM and UTC day.' },
  { kind: 'AUDIT_LOG', label: 'Audit log', cap: 'readAudit', form: auditForm,
    hint: 'The audit trail, newest first.' },
  { kind: 'INVOICE_LINES', label: 'Invoice lines (platform)', cap: 'platform', form: invoiceForm,
    hint: 'A tenant’s invoice lines of a billing period (platform administrators).' },
];
const KIND_LABEL = Object.fromEntries(KINDS.map((k) => [k.kind, k.label]));

/// A form error naming the field, shown like the API's (message and code).
function invalid(field, message) {
  const err = new Error(`${field}: ${message}`);
  err.code = 'BAD_USER_INPUT';
  return err;
}

// ---- small controls ------------------------------------------------------------------------

/// A group of checkboxes; `values()` → the checked ones (null when none).
function checks(legend, options, checked = [], name = legend) {
  const boxes = options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return { v, el: h('input', { type: 'checkbox', name, value: v, checked: checked.includes(v) }), label };
  });
  const el = h('fieldset', { class: 'checks' }, h('legend', {}, legend), boxes.map((b) => h('label', {}, b.el, b.label)));
  return {
    el,
    values: () => {
      const v = boxes.filter((b) => b.el.checked).map((b) => b.v);
      return v.length ? v : null;
    },
  };
}

const text = (attrs = {}) => h('input', { type: 'text', ...attrs });
const trimmed = (input) => input.value.trim() || null;
/// A datetime-local control's value as an ISO instant (the browser's zone), or null.
const instant = (input) => (input.value ? new Date(input.value).toISOString() : null);

/// The sub-customer picker (not for customer users: they export their own only). `none`
/// offers "the tenant's own" (SIMs/devices held by no sub-customer).
function customerPicker(env, { none }) {
  if (env.ctx.me.role === 'CUSTOMER_USER') return { el: null, value: () => ({}) };
  const sel = select([['', 'Any sub-customer']], '', { name: 'customer' });
  const box = field('Sub-customer', sel);
  env.customers().then(
    (list) => {
      const opts = [['', 'Any sub-customer']];
      if (none) opts.push(['__none', 'The tenant’s own (no sub-customer)']);
      list.forEach((c) => opts.push([c.id, c.name]));
      mount(sel, opts.map(([v, l]) => h('option', { value: v }, l)));
    },
    () => box.remove(),
  );
  return {
    el: box,
    value: () => (sel.value === '__none' ? { unassigned: true } : sel.value ? { customerId: sel.value } : {}),
  };
}

// ---- the filter form of each kind: { el, filter() → ExportFilterInput (tenantId aside) } ----

function simsForm(env) {
  const states = checks('States', SIM_STATES, [], 'sim-states');
  const types = checks('Types', SIM_TYPES, [], 'sim-types');
  const customer = customerPicker(env, { none: true });
  const iccidPrefix = text({ name: 'iccidPrefix', inputmode: 'numeric', placeholder: 'e.g. 898822806600' });
  const labelSearch = text({ name: 'labelSearch', placeholder: 'e.g. berlin' });
  const bound = select([['', 'Any'], ['true', 'Only SIMs in a device'], ['false', 'Only loose SIMs']], '', { name: 'bound' });
  return {
    el: [states.el, types.el, h('div', { class: 'grid' }, customer.el, field('ICCID starts with', iccidPrefix), field('Label text', labelSearch, 'Found in any label key or value.'), field('Device', bound))],
    filter: () => {
      const sims = { states: states.values(), types: types.values(), iccidPrefix: trimmed(iccidPrefix), labelSearch: trimmed(labelSearch), ...customer.value() };
      if (bound.value) sims.bound = bound.value === 'true';
      return { sims: compact(sims) };
    },
  };
}

function devicesForm(env) {
  const states = checks('States', DEVICE_STATES, [], 'device-states');
  const kinds = checks('Kinds', DEVICE_KINDS, [], 'device-kinds');
  const customer = customerPicker(env, { none: true });
  const nameContains = text({ name: 'nameContains' });
  const imeiPrefix = text({ name: 'imeiPrefix', inputmode: 'numeric' });
  const labelSearch = text({ name: 'labelSearch' });
  return {
    el: [states.el, kinds.el, h('div', { class: 'grid' }, customer.el, field('Name contains', nameContains), field('IMEI starts with', imeiPrefix), field('Label text', labelSearch))],
    filter: () => ({
      devices: compact({ states: states.values(), kinds: kinds.values(), nameContains: trimmed(nameContains), imeiPrefix: trimmed(imeiPrefix), labelSearch: trimmed(labelSearch), ...customer.value() }),
    }),
  };
}

function auditForm() {
  const entity = select([['', 'SIMs and devices'], ['SIM', 'SIMs'], ['DEVICE', 'Devices']], '', { name: 'entityKind' });
  const actions = checks('Actions', AUDIT_ACTIONS, [], 'audit-actions');
  const actor = text({ name: 'actor', placeholder: 'user id or service name' });
  const from = h('input', { type: 'datetime-local', name: 'from' });
  const to = h('input', { type: 'datetime-local', name: 'to' });
  return {
    el: [h('div', { class: 'grid' }, field('Entity', entity), field('Actor', actor, 'The token subject.'), field('From', from), field('To', to)), actions.el],
    filter: () => ({ audit: compact({ entityKind: entity.value || null, actions: actions.values(), actor: trimmed(actor), from: instant(from), to: instant(to) }) }),
  };
}

function sessionsForm() {
  const iccid = text({ name: 'iccid', inputmode: 'numeric', required: true, placeholder: '19 or 20 digits', 'data-testid': 'export-iccid' });
  const mccMnc = text({ name: 'mccMnc', placeholder: 'e.g. 262-01' });
  const from = h('input', { type: 'datetime-local', name: 'from' });
  const to = h('input', { type: 'datetime-local', name: 'to' });
  return {
    el: h('div', { class: 'grid' }, field('ICCID (required)', iccid), field('Network (MCC-MNC)', mccMnc), field('From', from, 'Default: 7 days before the request.'), field('To', to, 'Default: now.')),
    filter: () => {
      const v = iccid.value.replace(/\s+/g, '');
      if (!v) throw invalid('ICCID', 'a session history export is of one SIM: enter its ICCID');
      return { sessionHistory: compact({ iccid: v, mccMnc: trimmed(mccMnc), from: instant(from), to: instant(to) }) };
    },
  };
}

function reconciliationForm(env) {
  const today = new Date();
  const first = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1));
  const from = h('input', { type: 'date', name: 'from', required: true, value: isoDay(first) });
  const to = h('input', { type: 'date', name: 'to', required: true, value: isoDay(today) });
  const iccid = text({ name: 'iccid', inputmode: 'numeric' });
  const customer = customerPicker(env, { none: false });
  const only = h('input', { type: 'checkbox', name: 'onlyDifferences', checked: true });
  return {
    el: [
      h('div', { class: 'grid' }, field('First day (UTC)', from), field('Last day (UTC)', to, 'At most 366 days.'), field('ICCID (optional)', iccid), customer.el),
      h('label', { class: 'inline' }, only, ' Only SIM-days whose totals differ'),
    ],
    filter: () => {
      if (!from.value || !to.value) throw invalid('Days', 'give the first and the last day');
      if (from.value > to.value) throw invalid('Days', 'the first day is after the last');
      return {
        reconciliation: compact({ from: from.value, to: to.value, iccid: trimmed(iccid), customerId: customer.value().customerId || null, onlyDifferences: only.checked }),
      };
    },
  };
}

function dayField() {
  const day = h('input', { type: 'date', name: 'day', value: isoDay(new Date()) });
  return { day, el: field('Billing period holding the day', day, 'Default: today’s period. Refused when that period has not been rated yet.') };
}

function billingForm() {
  const d = dayField();
  return { el: h('div', { class: 'grid' }, d.el), filter: () => compact({ day: d.day.value || null }) };
}

function ratedForm(env) {
  const d = dayField();
  const kinds = [['RETAIL', 'Retail (what the tenant pays)']];
  if (env.ctx.caps.readSupplierCosts) kinds.push(['SUPPLIER', 'Supplier (what the platform pays)']);
  const kind = select(kinds, 'RETAIL', { name: 'rateCardKind' });
  return { el: h('div', { class: 'grid' }, d.el, field('Rating', kind)), filter: () => compact({ day: d.day.value || null, rateCardKind: kind.value }) };
}

function invoiceForm(env) {
  const d = dayField();
  const current = env.ctx.tenantId || env.ctx.me.tenant.id;
  const tenant = select([[current, current === env.ctx.me.tenant.id ? env.ctx.me.tenant.name : current]], current, { name: 'tenantId' });
  env.tenants().then((list) => {
    mount(tenant, list.map((t) => h('option', { value: t.id, selected: t.id === current }, t.name)));
  }, () => {});
  return {
    el: h('div', { class: 'grid' }, field('Tenant', tenant), d.el),
    filter: () => compact({ tenantId: tenant.value, day: d.day.value || null }),
    ownTenant: true,
  };
}

function analyticsForm(env) {
  const { caps, me } = env.ctx;
  const measureOpts = [
    ['BYTES_IN', 'Bytes in'], ['BYTES_OUT', 'Bytes out'], ['BYTES_TOTAL', 'Bytes total'], ['ACTIVE_SIMS', 'Active SIMs'], ['SESSIONS', 'Sessions'],
  ];
  if (caps.readCosts) measureOpts.push(['RATED_BYTES', 'Rated bytes'], ['COST', 'Cost']);
  const dimOpts = [['TIME', 'Time'], ['NETWORK', 'Network'], ['COUNTRY', 'Country']];
  if (me.role !== 'CUSTOMER_USER') dimOpts.push(['SUB_CUSTOMER', 'Sub-customer']);
  dimOpts.push(['SIM', 'SIM'], ['LABEL', 'Label'], ['TARIFF_PLAN', 'Tariff plan'], ['RAT', 'Radio access type']);
  const measures = checks('Measures', measureOpts, ['BYTES_IN', 'BYTES_OUT'], 'measures');
  const dimensions = checks('Dimensions (in this order of columns)', dimOpts, ['TIME'], 'dimensions');
  const labelKey = text({ name: 'labelKey', placeholder: 'e.g. site' });
  const preset = select(PRESETS, 'LAST_30_DAYS', { name: 'preset' });
  const from = h('input', { type: 'datetime-local', name: 'from' });
  const to = h('input', { type: 'datetime-local', name: 'to' });
  const custom = h('div', { class: 'grid', hidden: true }, field('From', from), field('To (exclusive)', to));
  preset.addEventListener('change', () => { custom.hidden = preset.value !== 'CUSTOM'; });
  const granularity = select([['', 'The range’s own'], ['HOUR', 'Hour'], ['DAY', 'Day'], ['MONTH', 'Month'], ['YEAR', 'Year']], '', { name: 'granularity' });
  const customer = customerPicker(env, { none: false });
  const zone = timeZone();
  return {
    el: [
      measures.el,
      dimensions.el,
      h('div', { class: 'grid' }, field('Label key', labelKey, 'For the Label dimension.'), field('Time range', preset), field('Granularity', granularity, `Days and months counted in ${zone}.`), customer.el),
      custom,
    ],
    filter: () => {
      const m = measures.values();
      if (!m) throw invalid('Measures', 'choose at least one');
      const dims = dimensions.values() || [];
      if (dims.includes('LABEL') && !trimmed(labelKey)) throw invalid('Label key', 'name the label the Label dimension groups by');
      let timeRange;
      if (preset.value === 'CUSTOM') {
        if (!from.value || !to.value) throw invalid('Time range', 'give both ends of a custom range');
        timeRange = { from: instant(from), to: instant(to) };
      } else timeRange = { preset: preset.value };
      const sub = customer.value().customerId;
      return {
        analytics: compact({
          measures: m,
          dimensions: dims,
          labelKey: dims.includes('LABEL') ? trimmed(labelKey) : null,
          timeRange,
          granularity: granularity.value || null,
          timeZone: zone,
          filter: sub ? { subCustomerId: sub } : null,
        }),
      };
    },
  };
}

/// Drops null/undefined members (the API takes an omitted field as "no condition").
function compact(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

// ---- #/exports -----------------------------------------------------------------------------

export async function render(main, ctx) {
  const { caps } = ctx;
  const stops = new Map(); // job id → stop function
  let leaving = false;
  ctx.onLeave(() => {
    leaving = true;
    stops.forEach((stop) => stop());
    stops.clear();
  });

  // Lists the pickers need, read once and only when a form asks.
  let customersP = null;
  let tenantsP = null;
  const env = {
    ctx,
    customers: () => {
      customersP = customersP || ctx.api.customers(ctx.tenantId);
      return customersP;
    },
    tenants: () => {
      tenantsP = tenantsP || ctx.api.gql(TENANTS).then((d) => d.tenants);
      return tenantsP;
    },
  };

  // ---- the request form ----
  const kinds = KINDS.filter((k) => caps[k.cap]);
  const kindSel = select(kinds.map((k) => [k.kind, k.label]), kinds[0] && kinds[0].kind, { name: 'kind', 'data-testid': 'export-kind' });
  const formatSel = select(FORMATS, 'CSV', { name: 'format', 'data-testid': 'export-format' });
  const kindHint = h('p', { class: 'muted' });
  const filterBox = h('div', { class: 'export-filter' });
  const requestBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'export-request' }, 'Request export');
  const formStatus = h('div', { 'aria-live': 'polite' });
  let current = null; // the chosen kind's form

  function drawFilter() {
    const k = kinds.find((x) => x.kind === kindSel.value);
    if (!k) return;
    current = k.form(env);
    kindHint.textContent = k.hint;
    mount(filterBox, h('h3', {}, 'Filter'), h('p', { class: 'muted' }, 'Every condition given must hold; leave one empty to take all.'), current.el);
  }
  kindSel.addEventListener('change', () => {
    mount(formStatus);
    drawFilter();
  });

  const form = h(
    'form',
    {
      class: 'card',
      'data-testid': 'export-form',
      novalidate: true, // checked here (naming the field) and by the server
      onsubmit: async (ev) => {
        ev.preventDefault();
        let filter;
        try {
          filter = current.filter();
        } catch (err) {
          mount(formStatus, errorBox(err));
          return;
        }
        // A platform admin's chosen tenant; a SIM's history names its tenant through the ICCID,
        // invoice lines name theirs in the form.
        if (ctx.tenantId && !current.ownTenant && kindSel.value !== 'SESSION_HISTORY') filter.tenantId = ctx.tenantId;
        requestBtn.disabled = true;
        mount(formStatus, loading('Checking the request…'));
        try {
          const data = await ctx.api.gql(REQUEST, { kind: kindSel.value, format: formatSel.value, filter: Object.keys(filter).length ? filter : null });
          const job = data.requestExport;
          mount(
            formStatus,
            h('p', { class: 'notice', role: 'status', 'data-testid': 'export-queued' },
              `Export queued: ${job.fileName}${job.expectedRows !== null && job.expectedRows !== undefined ? ` (${num(job.expectedRows)} rows expected)` : ''}. It appears below; download it when it completes.`),
          );
          list.after = null;
          list.pageNo = 1;
          await loadJobs();
        } catch (err) {
          const hint = err.code === 'CONFLICT' ? h('p', { class: 'muted' }, 'Wait for one of your exports to finish, or cancel one below.') : null;
          mount(formStatus, errorBox(err), hint);
        } finally {
          requestBtn.disabled = false;
        }
      },
    },
    h('h2', {}, 'Request an export'),
    h(
      'div',
      { class: 'grid' },
      field('What', kindSel),
      field('Format', formatSel, 'CSV and XLSX neutralise formula-like text; Parquet keeps exact decimals and UTC timestamps.'),
    ),
    kindHint,
    filterBox,
    h('div', { class: 'actions' }, requestBtn, h('span', { class: 'muted' }, 'At most 5 of your exports may be queued or running at once. Files are kept for a day.')),
    formStatus,
  );

  // ---- the jobs ----
  const list = { statuses: null, after: null, pageNo: 1 };
  const jobs = new Map(); // id → { job, readAt }
  const jobsBox = h('div', {});
  const listStatus = h('div', { 'aria-live': 'polite' });
  const statusSel = select([['', 'All statuses'], ['OPEN', 'Queued or running'], ...STATUSES.map((s) => [s, s])], '', {
    'data-testid': 'export-status-filter',
    onchange: (ev) => {
      const v = ev.target.value;
      list.statuses = v === '' ? null : v === 'OPEN' ? OPEN : [v];
      list.after = null;
      list.pageNo = 1;
      loadJobs();
    },
  });

  // Admins see the tenant's exports, so who asked matters; everyone else sees their own.
  const seesOthers = ['PLATFORM_ADMIN', 'TENANT_ADMIN'].includes(ctx.me.role);
  const columns = [
    { label: 'Export', value: (j) => h('span', { title: `filter: ${JSON.stringify(j.filter)}` }, KIND_LABEL[j.kind] || j.kind, h('br'), h('small', { class: 'mono' }, j.fileName)) },
    { label: 'Format', value: (j) => j.format },
    { label: 'Status', value: (j) => badge(j.status) },
    { label: 'Progress', value: progressCell },
    { label: 'Rows', num: true, value: (j) => num(j.rows) },
    { label: 'Size', num: true, value: (j) => bytes(j.bytes) },
    seesOthers ? { label: 'Requested by', value: (j) => j.requestedBy } : null,
    { label: 'Created', value: (j) => dateTime(j.createdAt) },
    {
      label: 'Finished',
      value: (j) => [dateTime(j.finishedAt), j.expiresAt && j.status === 'COMPLETED' ? [h('br'), h('small', {}, `file kept until ${dateTime(j.expiresAt)}`)] : null],
    },
    { label: 'Actions', value: actionsCell },
  ].filter(Boolean);

  function progressCell(j) {
    if (j.status === 'COMPLETED') return h('progress', { max: 1, value: 1, 'aria-label': 'complete' });
    if (j.status === 'RUNNING') {
      const expected = Number(j.expectedRows);
      // Without a known total the bar is indeterminate (no value).
      return expected > 0
        ? h(
            'span',
            {},
            h('progress', { max: expected, value: Math.min(Number(j.rows), expected), 'aria-label': `${j.rows} of ${j.expectedRows} rows` }),
            h('br'),
            h('small', {}, `${num(j.rows)} of ${num(j.expectedRows)}${j.etaSeconds !== null && j.etaSeconds !== undefined ? ` · ${duration(j.etaSeconds)} left` : ''}`),
          )
        : h('progress', { 'aria-label': `${j.rows} rows so far` });
    }
    return j.status === 'QUEUED' ? h('span', { class: 'muted' }, 'waiting for a worker') : '—';
  }

  function actionsCell(j) {
    const parts = [];
    if (j.status === 'COMPLETED' && j.downloadUrl) {
      parts.push(
        h('a', {
          class: 'button primary',
          href: j.downloadUrl,
          download: j.fileName,
          'data-testid': 'export-download',
          title: j.sha256 ? `SHA-256 ${j.sha256}` : null,
          onclick: (ev) => download(ev, j.id),
        }, 'Download'),
      );
    } else if (j.status === 'COMPLETED') {
      parts.push(h('span', { class: 'muted' }, 'file no longer available'));
    }
    if (OPEN.includes(j.status)) {
      parts.push(h('button', { type: 'button', class: 'danger', 'data-testid': 'export-cancel', onclick: (ev) => cancel(ev.currentTarget, j.id) }, 'Cancel'));
    }
    if (j.status === 'FAILED' && j.failure) parts.push(h('span', { class: 'export-failure' }, j.failure));
    if (j.status === 'EXPIRED') parts.push(h('span', { class: 'muted' }, 'file deleted; request it again'));
    return h('div', { class: 'actions' }, parts);
  }

  // The signed link is good for 5 minutes from when the job was read: an older one is read
  // again just before it is followed.
  async function download(ev, id) {
    const entry = jobs.get(id);
    const a = ev.currentTarget;
    if (!entry || Date.now() - entry.readAt < LINK_FRESH_MS || a.dataset.fresh === '1') {
      delete a.dataset.fresh;
      return;
    }
    ev.preventDefault();
    mount(listStatus, loading('Getting a fresh download link…'));
    try {
      const job = (await ctx.api.gql(JOB, { id })).exportJob;
      mount(listStatus);
      if (!job) throw new Error('This export no longer exists.');
      const tr = redraw(job);
      const link = tr && tr.querySelector('[data-testid="export-download"]');
      if (link) {
        link.dataset.fresh = '1';
        link.click();
        link.focus();
      } else mount(listStatus, errorBox({ message: `The file of ${job.fileName} is no longer available (${job.status}).` }));
    } catch (err) {
      mount(listStatus, errorBox(err));
    }
  }

  async function cancel(button, id) {
    button.disabled = true;
    mount(listStatus, loading('Cancelling…'));
    try {
      const job = (await ctx.api.gql(CANCEL, { id })).cancelExport;
      mount(listStatus, h('p', { class: 'notice', role: 'status' }, `Cancelled ${job.fileName}; no file is kept.`));
      redraw(job);
    } catch (err) {
      mount(listStatus, errorBox(err));
      button.disabled = false;
    }
  }

  /// Draws one job's row anew (in place); returns it.
  function rowOf(job) {
    const t = table(columns, [job], {});
    const tr = t.querySelector('tbody tr');
    tr.setAttribute('data-id', job.id);
    tr.setAttribute('data-status', job.status);
    return tr;
  }

  function redraw(job, readAt = Date.now()) {
    const before = jobs.get(job.id);
    jobs.set(job.id, { job, readAt: job.downloadUrl && before && before.job.downloadUrl === job.downloadUrl ? before.readAt : readAt });
    const tr = jobsBox.querySelector(`tr[data-id="${CSS.escape(job.id)}"]`);
    if (!tr) return null;
    const focusedTestid = tr.contains(document.activeElement) ? document.activeElement.getAttribute('data-testid') : null;
    const next = rowOf(job);
    tr.replaceWith(next);
    if (focusedTestid) {
      const el = next.querySelector(`[data-testid="${focusedTestid}"]`);
      if (el) el.focus();
    }
    return next;
  }

  // Follows a queued or running job until its final status, then reads it once more for its
  // download link and checksum.
  function follow(id) {
    if (stops.has(id) || stops.size >= MAX_LIVE) return;
    const stop = ctx.api.subscribe(
      PROGRESS,
      { id },
      async (data) => {
        const p = data.exportJobProgress;
        const entry = jobs.get(id);
        if (!entry) return;
        const { jobId, at, ...fields } = p;
        redraw({ ...entry.job, ...fields });
        if (!OPEN.includes(p.status)) {
          stop();
          stops.delete(id);
          try {
            const job = (await ctx.api.gql(JOB, { id })).exportJob;
            if (job && !leaving) redraw(job);
          } catch (err) {
            if (!leaving) mount(listStatus, errorBox(err));
          }
        }
      },
      () => stops.delete(id),
    );
    stops.set(id, stop);
  }

  async function loadJobs() {
    stops.forEach((stop) => stop());
    stops.clear();
    mount(jobsBox, loading('Loading exports…'));
    try {
      const data = await ctx.api.gql(JOBS, { tenantId: ctx.tenantId, statuses: list.statuses, first: PAGE, after: list.after });
      if (leaving) return;
      const { nodes, pageInfo } = data.exportJobs;
      const readAt = Date.now();
      jobs.clear();
      nodes.forEach((j) => jobs.set(j.id, { job: j, readAt }));
      const t = table(columns, nodes, {
        caption: `Newest first · page ${list.pageNo}`,
        empty: list.statuses ? 'No export has this status.' : 'No export yet: request one above.',
        testid: 'export-jobs',
      });
      if (t.querySelectorAll) {
        t.querySelectorAll('tbody tr').forEach((tr, i) => {
          tr.setAttribute('data-id', nodes[i].id);
          tr.setAttribute('data-status', nodes[i].status);
        });
      }
      mount(
        jobsBox,
        t,
        listPager(pageInfo, list, loadJobs),
      );
      nodes.filter((j) => OPEN.includes(j.status)).forEach((j) => follow(j.id));
    } catch (err) {
      mount(jobsBox, errorBox(err));
    }
  }

  const intro = h(
    'p',
    { class: 'muted' },
    'Files for spreadsheets, ERPs and analysts. Every export is a job: it runs on the server, and its file can be downloaded for a day through a link that works for 5 minutes each time it is read.',
  );
  mount(
    main,
    h('h1', {}, 'Exports'),
    intro,
    kinds.length ? form : h('p', { class: 'notice' }, 'Your role may not request any export.'),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, ['PLATFORM_ADMIN', 'TENANT_ADMIN'].includes(ctx.me.role) ? 'The tenant’s exports' : 'Your exports'),
      h('div', { class: 'toolbar' }, field('Status', statusSel), h('button', { type: 'button', onclick: () => loadJobs() }, 'Refresh')),
      listStatus,
      jobsBox,
    ),
  );
  drawFilter();
  await loadJobs();
  main.dataset.ready = 'exports';
}
