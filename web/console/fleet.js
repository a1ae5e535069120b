// The fleet lists: SIMs (#/sims) and devices (#/devices). Each is a filter bar over the API's
// filter input (SimFilter / DeviceFilter), sorting by the order fields the API offers, and
// cursor paging (`first`/`after`; the API pages forward only, so the page keeps the cursors it
// was given to go back). Filters and sorting live in the hash query (#/sims?state=ACTIVE&sort=
// STATE&dir=DESC) so a reload or a shared link shows the same list; the URL is rewritten with
// history.replaceState, which does not fire hashchange, so typing in a filter does not redraw
// the page. Rules behind the filters: docs/fleet.md ("Lists").

import { h, mount, num, dateTime, ago, table, errorBox, loading, field, select, link } from './ui.js';
import { fleetAdviceCard } from './advice-parts.js';

// ---- the operations ------------------------------------------------------------------------

const SIMS = `query ConsoleSims($tenantId: ID, $filter: SimFilter, $orderBy: SimOrder, $first: Int, $after: String) {
  sims(tenantId: $tenantId, filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      iccid msisdn state type tariffPlan lastNetwork lastActivityAt createdAt updatedAt
      customer { id name }
      device { id name imei state }
      labels { key value }
    }
  }
}`;
const DEVICES = `query ConsoleDevices($tenantId: ID, $filter: DeviceFilter, $orderBy: DeviceOrder, $first: Int, $after: String) {
  devices(tenantId: $tenantId, filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id imei name kind connectivity state lastActivityAt createdAt updatedAt
      customer { id name }
      sims { iccid state }
      labels { key value }
    }
  }
}`;
const CATALOGUE = `query ConsoleLabelCatalogue($tenantId: ID) {
  labelCatalogue(tenantId: $tenantId) { key values description }
}`;
const DEVICE_NAME = 'query ConsoleDeviceName($id: ID!) { device(id: $id) { id name imei } }';

// ---- vocabulary ----------------------------------------------------------------------------

export const SIM_STATES = ['INVENTORY', 'ACTIVE', 'SUSPENDED', 'LOST_STOLEN', 'TERMINATED'];
const SIM_TYPES = ['PREPAID', 'POSTPAID', 'DATA_ONLY'];
const SIM_ORDER = [
  ['ICCID', 'ICCID'],
  ['STATE', 'State'],
  ['CREATED_AT', 'Created'],
  ['UPDATED_AT', 'Last changed'],
  // Share of the data quota used this period; descending lists those closest to their limit
  // first, SIMs without a quota last.
  ['QUOTA_PERCENT', 'Quota used'],
];
export const DEVICE_STATES = ['REGISTERED', 'IN_SERVICE', 'MAINTENANCE', 'RETIRED'];
const DEVICE_KINDS = ['TRACKER', 'SENSOR', 'GATEWAY', 'METER', 'CAMERA', 'WEARABLE', 'VEHICLE', 'OTHER'];
const DEVICE_ORDER = [
  ['NAME', 'Name'],
  ['IMEI', 'IMEI'],
  ['STATE', 'State'],
  ['CREATED_AT', 'Created'],
  ['UPDATED_AT', 'Last changed'],
];
const PAGE_SIZES = ['25', '50', '100', '250'];

// ---- small shared pieces (sim.js uses them too) --------------------------------------------

/// A state as a coloured badge (console.css has .badge-<STATE>).
export function badge(state) {
  return h('span', { class: `badge badge-${state}` }, state);
}

/// Labels as read-only `key=value` chips.
export function labelChips(labels) {
  if (!labels || labels.length === 0) return h('span', { class: 'muted' }, '—');
  return h(
    'span',
    { class: 'chips' },
    labels.map((l) => h('span', { class: 'chip', dataset: { key: l.key } }, `${l.key}=${l.value}`)),
  );
}

/// A day and time, shortened to the day in tables (the full time in the tooltip).
export function shortDate(v) {
  if (!v) return h('span', { class: 'muted' }, '—');
  const d = new Date(v);
  return h('time', { datetime: v, title: dateTime(v) }, d.toLocaleDateString('en-GB', { dateStyle: 'medium' }));
}

/// "3 min ago" with the exact time in the tooltip.
export function agoTime(v) {
  if (!v) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: v, title: dateTime(v) }, ago(v));
}

/// Cursor paging that also goes back: the caller keeps a stack of the `after` cursors of the
/// pages it has shown (page 1 has none) and passes its depth as `page` (0-based).
export function cursorPager({ pageInfo, page, size, shown, total, noun = 'rows', onFirst, onPrevious, onNext, testid }) {
  const from = page * size + (shown ? 1 : 0);
  const to = page * size + shown;
  const Noun = noun.charAt(0).toUpperCase() + noun.slice(1);
  const where = shown
    ? `${Noun} ${num(from)}–${num(to)}${total !== undefined && total !== null ? ` of ${num(total)}` : ''}`
    : `No ${noun} on this page`;
  return h(
    'nav',
    { class: 'pager', 'aria-label': `${noun} pages`, 'data-testid': testid },
    h('span', { 'aria-live': 'polite' }, where),
    h('button', { type: 'button', disabled: page === 0, onclick: onFirst }, 'First page'),
    h('button', { type: 'button', disabled: page === 0, onclick: onPrevious }, 'Previous page'),
    h(
      'button',
      { type: 'button', disabled: !(pageInfo && pageInfo.hasNextPage), onclick: () => onNext(pageInfo.endCursor) },
      'Next page',
    ),
  );
}

/// Parses "key=value" (or "key") the way the label filters take them.
export function parseLabel(text) {
  const s = String(text).trim();
  const i = s.indexOf('=');
  if (i < 0) return { key: s };
  return { key: s.slice(0, i).trim(), value: s.slice(i + 1).trim() };
}

/// A <datalist> of label suggestions ("key" and "key=value") from the tenant's catalogue.
export function labelDatalist(id, catalogue, { withValues = true } = {}) {
  const options = [];
  for (const s of catalogue || []) {
    options.push(h('option', { value: s.key }, s.description || null));
    if (withValues) for (const v of s.values) options.push(h('option', { value: `${s.key}=${v}` }));
  }
  return h('datalist', { id }, options);
}

/// The tenant's label catalogue; suggestions only, so a failure just means no suggestions.
export async function loadCatalogue(ctx) {
  try {
    const data = await ctx.api.gql(CATALOGUE, { tenantId: ctx.tenantId });
    return data.labelCatalogue || [];
  } catch {
    return [];
  }
}

let uid = 0;
function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// ---- filter controls bound to the hash query -----------------------------------------------
//
// Every control reads its value from `params` (the hash query) and, when changed, writes it
// back and calls `apply()`, which rewrites the URL and reloads the list from its first page.

function checkGroup(params, key, legend, options, apply) {
  const chosen = new Set(params.getAll(key));
  return h(
    'fieldset',
    { class: 'checks', 'data-filter': key },
    h('legend', {}, legend),
    options.map((o) =>
      h(
        'label',
        {},
        h('input', {
          type: 'checkbox',
          name: key,
          value: o,
          checked: chosen.has(o),
          onchange: (ev) => {
            const all = new Set(params.getAll(key));
            if (ev.target.checked) all.add(o);
            else all.delete(o);
            params.delete(key);
            options.filter((x) => all.has(x)).forEach((x) => params.append(key, x));
            apply();
          },
        }),
        o.replace('_', ' '),
      ),
    ),
  );
}

/// A text filter: applied 400 ms after typing stops, or at once on Enter (the form's submit).
function textFilter(params, key, label, apply, { placeholder, hint, inputmode, normalise = (s) => s.trim() } = {}) {
  let timer = null;
  const input = h('input', {
    type: 'search',
    name: key,
    value: params.get(key) || '',
    placeholder,
    inputmode,
    autocomplete: 'off',
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(commit, 400);
    },
    onchange: () => commit(),
  });
  function commit() {
    clearTimeout(timer);
    const v = normalise(input.value);
    if ((params.get(key) || '') === v) return;
    if (v) params.set(key, v);
    else params.delete(key);
    apply();
  }
  input.commit = commit;
  return field(label, input, hint);
}

function selectFilter(params, key, label, options, apply) {
  const control = select(options, params.get(key) || '', {
    name: key,
    onchange: (ev) => {
      if (ev.target.value) params.set(key, ev.target.value);
      else params.delete(key);
      apply();
    },
  });
  return field(label, control);
}

function dateFilter(params, key, label, apply, hint) {
  const input = h('input', {
    type: 'date',
    name: key,
    value: params.get(key) || '',
    onchange: (ev) => {
      if (ev.target.value) params.set(key, ev.target.value);
      else params.delete(key);
      apply();
    },
  });
  return field(label, input, hint);
}

/// Label conditions as removable chips ("site=berlin": that value; "site": any value), plus an
/// input with the catalogue's keys and values as suggestions.
function labelFilter(params, catalogue, apply) {
  const listId = nextId('label-suggestions');
  const input = h('input', {
    type: 'text',
    name: 'label',
    list: listId,
    placeholder: 'key or key=value',
    autocomplete: 'off',
    onkeydown: (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        add();
      }
    },
  });
  function add() {
    const { key, value } = parseLabel(input.value);
    if (!key) return;
    const text = value === undefined ? key : `${key}=${value}`;
    if (!params.getAll('label').includes(text)) params.append('label', text);
    input.value = '';
    apply({ redraw: true });
  }
  const chips = params.getAll('label').map((text) =>
    h(
      'span',
      { class: 'chip', dataset: { label: text } },
      text,
      h(
        'button',
        {
          type: 'button',
          class: 'chip-remove',
          'aria-label': `Remove the label condition ${text}`,
          title: 'Remove',
          onclick: () => {
            const rest = params.getAll('label').filter((t) => t !== text);
            params.delete('label');
            rest.forEach((t) => params.append('label', t));
            apply({ redraw: true });
          },
        },
        '×',
      ),
    ),
  );
  return h(
    'div',
    { class: 'field label-filter' },
    h('label', { for: (input.id = nextId('label-input')) }, 'Has label'),
    h('div', { class: 'actions' }, input, h('button', { type: 'button', onclick: add }, 'Add')),
    labelDatalist(listId, catalogue),
    chips.length ? h('div', { class: 'chips' }, chips) : h('small', {}, 'Every label condition must hold.'),
  );
}

/// The sub-customers to filter by (loaded once per page); null when they cannot be read.
async function loadCustomers(ctx) {
  try {
    return { list: await ctx.api.customers(ctx.tenantId), error: null };
  } catch (err) {
    return { list: null, error: err };
  }
}

/// Sub-customer choice: any, held by the tenant itself ("none"), or one sub-customer.
function customerFilter(customers, params, apply) {
  if (!customers.list) return h('small', { class: 'muted' }, `Sub-customers unavailable: ${customers.error.message}`);
  const options = [['', 'Any'], ['none', 'Held by the tenant (no sub-customer)'], ...customers.list.map((c) => [c.id, c.name])];
  return selectFilter(params, 'customer', 'Sub-customer', options, apply);
}

/// Local midnight of a YYYY-MM-DD, as the API's DateTime; `end` gives the next midnight.
function dayStart(day, end = false) {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

function labelsFilter(params) {
  const list = params.getAll('label').map(parseLabel).filter((l) => l.key);
  return list.length ? list.map((l) => (l.value === undefined ? { key: l.key } : l)) : undefined;
}

function customerPart(params) {
  const c = params.get('customer');
  if (!c) return {};
  return c === 'none' ? { unassigned: true } : { customerId: c };
}

/// Drops the undefined conditions (the API reads a missing field as "no condition").
function compact(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)) out[k] = v;
  return out;
}

const FILTER_KEYS = {
  sims: ['state', 'type', 'customer', 'label', 'q', 'network', 'iccid', 'msisdn', 'from', 'to', 'device', 'bound'],
  devices: ['state', 'kind', 'customer', 'label', 'q', 'imei', 'name', 'from', 'to'],
};

function simFilter(p) {
  const bound = p.get('bound');
  return compact({
    states: p.getAll('state'),
    types: p.getAll('type'),
    ...customerPart(p),
    labels: labelsFilter(p),
    labelSearch: p.get('q') || undefined,
    networks: (p.get('network') || '').split(/[\s,;]+/).filter(Boolean),
    iccidPrefix: (p.get('iccid') || '').replace(/\s+/g, '') || undefined,
    msisdnPrefix: (p.get('msisdn') || '').replace(/\s+/g, '') || undefined,
    lastActivityFrom: dayStart(p.get('from')),
    lastActivityTo: dayStart(p.get('to'), true),
    deviceId: p.get('device') || undefined,
    bound: bound === 'yes' ? true : bound === 'no' ? false : undefined,
  });
}

function deviceFilter(p) {
  return compact({
    states: p.getAll('state'),
    kinds: p.getAll('kind'),
    ...customerPart(p),
    labels: labelsFilter(p),
    labelSearch: p.get('q') || undefined,
    imeiPrefix: (p.get('imei') || '').replace(/[\s-]+/g, '') || undefined,
    nameContains: p.get('name') || undefined,
    lastActivityFrom: dayStart(p.get('from')),
    lastActivityTo: dayStart(p.get('to'), true),
  });
}

// ---- the list page, shared by SIMs and devices ---------------------------------------------

/// Draws a filterable, sortable, paged list. `spec` names the page and says how to query, what
/// the filter bar holds and what the table shows; `spec.aside`, when given, is a card shown
/// above the filter bar (it loads on its own).
async function listPage(main, ctx, spec) {
  const params = new URLSearchParams(ctx.query);
  let alive = true;
  ctx.onLeave(() => {
    alive = false;
  });
  let cursors = [null]; // the `after` of each page shown so far; the last one is the current page
  let seq = 0; // answers to superseded requests are dropped
  let firstDraw = true;
  // Suggestions and choices for the filter bar; a customer user sees only its own sub-customer.
  const [catalogue, customers] = await Promise.all([
    loadCatalogue(ctx),
    ctx.me.customer ? Promise.resolve(null) : loadCustomers(ctx),
  ]);
  if (!alive) return;

  const filterHost = h('div', {});
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  mount(
    main,
    h('h1', {}, spec.title),
    spec.intro ? h('p', { class: 'muted' }, spec.intro) : null,
    spec.aside || null,
    h('section', { class: 'card' }, filterHost),
    h('section', { class: 'card' }, results),
  );

  const size = () => (PAGE_SIZES.includes(params.get('size')) ? Number(params.get('size')) : 50);
  const order = () => {
    const field = spec.order.some(([v]) => v === params.get('sort')) ? params.get('sort') : spec.order[0][0];
    return { field, direction: params.get('dir') === 'DESC' ? 'DESC' : 'ASC' };
  };

  // Writes the hash query and reloads from the first page; `redraw` re-creates the filter bar
  // (for changes made outside its inputs: chips, "Clear filters", sorting by a column).
  function apply({ redraw = false } = {}) {
    if (!alive) return; // a late debounce after the user left must not rewrite their URL
    const qs = params.toString();
    history.replaceState(null, '', `#${spec.path}${qs ? `?${qs}` : ''}`);
    if (redraw) drawFilters();
    cursors = [null];
    reload();
  }

  function drawFilters() {
    const primary = spec.filters(params, apply, catalogue);
    const more = spec.moreFilters(params, apply, catalogue);
    const moreSet = spec.moreKeys.some((k) => params.has(k));
    const customer = customers ? customerFilter(customers, params, apply) : null;
    const texts = () => form.querySelectorAll('input[type=search]');
    const form = h(
      'form',
      {
        class: 'filter-bar',
        'data-testid': `${spec.name}-filter`,
        role: 'search',
        'aria-label': `Filter ${spec.noun}`,
        onsubmit: (ev) => {
          ev.preventDefault();
          texts().forEach((i) => i.commit && i.commit());
        },
      },
      h('div', { class: 'toolbar' }, primary, customer),
      h(
        'details',
        { class: 'more-filters', open: moreSet ? true : null },
        h('summary', {}, 'More filters'),
        h('div', { class: 'toolbar' }, more),
      ),
      h(
        'div',
        { class: 'toolbar' },
        selectFilter(params, 'sort', 'Sort by', spec.order, apply),
        selectFilter(params, 'dir', 'Direction', [['ASC', 'Ascending'], ['DESC', 'Descending']], apply),
        selectFilter(params, 'size', 'Per page', PAGE_SIZES.map((s) => [s, s]), apply),
        h('button', { type: 'submit', class: 'primary' }, 'Apply'),
        h(
          'button',
          {
            type: 'button',
            onclick: () => {
              FILTER_KEYS[spec.name].forEach((k) => params.delete(k));
              apply({ redraw: true });
            },
          },
          'Clear filters',
        ),
      ),
    );
    // The order selects show the defaults when the URL names none.
    form.querySelector('select[name=sort]').value = order().field;
    form.querySelector('select[name=dir]').value = order().direction;
    form.querySelector('select[name=size]').value = String(size());
    mount(filterHost, form);
  }

  // A column header that sorts by its field (a second click flips the direction).
  function sortHeader(label, fieldName) {
    const o = order();
    const current = o.field === fieldName;
    return h(
      'button',
      {
        type: 'button',
        class: 'sort',
        dataset: { sort: fieldName },
        title: `Sort by ${label}`,
        onclick: () => {
          params.set('sort', fieldName);
          params.set('dir', current && o.direction === 'ASC' ? 'DESC' : 'ASC');
          apply({ redraw: true });
        },
      },
      label,
      current ? (o.direction === 'ASC' ? ' ▲' : ' ▼') : '',
    );
  }

  async function reload() {
    seq += 1;
    const mine = seq;
    results.setAttribute('aria-busy', 'true');
    if (!results.firstChild) mount(results, loading(`Loading ${spec.noun}…`));
    let conn;
    let failure = null;
    try {
      const data = await ctx.api.gql(spec.query, {
        tenantId: ctx.tenantId,
        filter: spec.toFilter(params),
        orderBy: order(),
        first: size(),
        after: cursors[cursors.length - 1],
      });
      conn = spec.connection(data);
    } catch (err) {
      failure = err;
    }
    if (!alive || mine !== seq) return;
    results.removeAttribute('aria-busy');
    if (failure) {
      mount(results, errorBox(failure), h('p', { class: 'muted' }, 'Change or clear the filters and try again.'));
    } else {
      drawResults(conn);
    }
    if (firstDraw) {
      firstDraw = false;
      main.dataset.ready = spec.name;
    }
  }

  function drawResults(conn) {
    const o = order();
    const columns = spec.columns.map((c) => {
      const label = c.sort ? sortHeader(c.label, c.sort) : c.label;
      return { ...c, label };
    });
    const tbl = table(columns, conn.nodes, {
      caption: `${spec.title}, sorted by ${spec.order.find(([v]) => v === o.field)[1].toLowerCase()} ${o.direction === 'ASC' ? 'ascending' : 'descending'}`,
      empty: cursors.length > 1 ? `No more ${spec.noun}.` : `No ${spec.noun} match these filters.`,
      testid: `${spec.name}-table`,
    });
    // Row identities and sort state for readers and tests.
    const tableEl = tbl.tagName === 'TABLE' ? tbl : tbl.querySelector('table');
    if (tableEl) {
      Array.from(tableEl.tBodies[0].rows).forEach((tr, i) => spec.rowData(tr, conn.nodes[i]));
      Array.from(tableEl.tHead.rows[0].cells).forEach((th, i) => {
        const c = spec.columns[i];
        if (c.sort) th.setAttribute('aria-sort', c.sort === o.field ? (o.direction === 'ASC' ? 'ascending' : 'descending') : 'none');
      });
    }
    const page = cursors.length - 1;
    mount(
      results,
      h(
        'p',
        { class: 'total', 'data-testid': `${spec.name}-total`, dataset: { value: String(conn.totalCount) } },
        h('strong', {}, num(conn.totalCount)),
        ` ${conn.totalCount === 1 ? spec.one : spec.noun} match${conn.totalCount === 1 ? 'es' : ''}`,
      ),
      tbl,
      cursorPager({
        pageInfo: conn.pageInfo,
        page,
        size: size(),
        shown: conn.nodes.length,
        total: conn.totalCount,
        noun: spec.noun,
        testid: `${spec.name}-pager`,
        onFirst: () => {
          cursors = [null];
          reload();
        },
        onPrevious: () => {
          if (cursors.length > 1) cursors.pop();
          reload();
        },
        onNext: (cursor) => {
          cursors.push(cursor);
          reload();
        },
      }),
    );
  }

  drawFilters();
  await reload();
}

// ---- SIMs ----------------------------------------------------------------------------------

/// #/sims — the SIM inventory.
export async function renderSims(main, ctx) {
  const params = new URLSearchParams(ctx.query);
  // A device named in the URL (from the device list) is a condition shown as a chip.
  let deviceChip = null;
  const deviceId = params.get('device');
  if (deviceId) {
    let name = deviceId;
    try {
      const d = (await ctx.api.gql(DEVICE_NAME, { id: deviceId })).device;
      if (d) name = `${d.name} (${d.imei})`;
    } catch {
      /* the list query reports a bad id */
    }
    deviceChip = (p, apply) =>
      p.get('device')
        ? h(
            'div',
            { class: 'field' },
            h('span', { class: 'field-label' }, 'In device'),
            h(
              'span',
              { class: 'chip' },
              name,
              h(
                'button',
                {
                  type: 'button',
                  class: 'chip-remove',
                  'aria-label': 'Remove the device condition',
                  onclick: () => {
                    p.delete('device');
                    apply({ redraw: true });
                  },
                },
                '×',
              ),
            ),
          )
        : null;
  }
  const seesCustomers = !ctx.me.customer;
  const columns = [
    { label: 'ICCID', sort: 'ICCID', value: (s) => link(`/sims/${encodeURIComponent(s.iccid)}`, s.iccid, { class: 'mono' }) },
    { label: 'MSISDN', value: (s) => s.msisdn || h('span', { class: 'muted' }, '—') },
    { label: 'State', sort: 'STATE', value: (s) => badge(s.state) },
    { label: 'Type', value: (s) => s.type },
    { label: 'Tariff plan', value: (s) => s.tariffPlan || h('span', { class: 'muted' }, '—') },
    seesCustomers ? { label: 'Sub-customer', value: (s) => (s.customer ? s.customer.name : h('span', { class: 'muted' }, 'tenant')) } : null,
    {
      label: 'Device',
      value: (s) =>
        s.device
          ? link(`/devices?imei=${encodeURIComponent(s.device.imei)}`, s.device.name, { title: `IMEI ${s.device.imei}, ${s.device.state}` })
          : h('span', { class: 'muted' }, '—'),
    },
    { label: 'Labels', value: (s) => labelChips(s.labels) },
    { label: 'Last network', value: (s) => s.lastNetwork || h('span', { class: 'muted' }, '—') },
    { label: 'Last activity', value: (s) => agoTime(s.lastActivityAt) },
    { label: 'Created', sort: 'CREATED_AT', value: (s) => shortDate(s.createdAt) },
    { label: 'Last changed', sort: 'UPDATED_AT', value: (s) => shortDate(s.updatedAt) },
  ].filter(Boolean);

  await listPage(main, ctx, {
    name: 'sims',
    path: '/sims',
    title: 'SIMs',
    noun: 'SIMs',
    one: 'SIM',
    intro: 'Every SIM you may see. Filters combine: a SIM is listed when it meets all of them.',
    // The fleet's quota and plan advice, the highest saving first (advice-parts.js); it does
    // not follow the filters.
    aside: fleetAdviceCard(ctx),
    query: SIMS,
    connection: (d) => d.sims,
    toFilter: simFilter,
    order: SIM_ORDER,
    columns,
    rowData: (tr, s) => {
      tr.dataset.iccid = s.iccid;
      tr.dataset.state = s.state;
    },
    filters: (p, apply, catalogue) => [
      checkGroup(p, 'state', 'State', SIM_STATES, apply),
      textFilter(p, 'iccid', 'ICCID starts with', apply, { placeholder: '8949…', inputmode: 'numeric' }),
      textFilter(p, 'msisdn', 'MSISDN starts with', apply, { placeholder: '+49…', inputmode: 'tel' }),
      textFilter(p, 'q', 'Label contains', apply, { placeholder: 'text in any label key or value' }),
      labelFilter(p, catalogue, apply),
      deviceChip ? deviceChip(p, apply) : null,
    ],
    moreKeys: ['type', 'network', 'bound', 'from', 'to'],
    moreFilters: (p, apply) => [
      checkGroup(p, 'type', 'Type', SIM_TYPES, apply),
      textFilter(p, 'network', 'Last network (MCC-MNC)', apply, { placeholder: '262-01, 208-10', hint: 'Several separated by commas.' }),
      selectFilter(p, 'bound', 'In a device', [['', 'Any'], ['yes', 'In a device'], ['no', 'Not in a device']], apply),
      dateFilter(p, 'from', 'Last activity from', apply),
      dateFilter(p, 'to', 'Last activity until', apply, 'Inclusive, in your time zone.'),
      h(
        'p',
        { class: 'muted filter-note' },
        'Tariff plans are shown in the list; the API filters SIMs by the conditions above (SimFilter has no tariff-plan condition).',
      ),
    ],
  });
}

// ---- devices -------------------------------------------------------------------------------

/// #/devices — the devices and the SIMs in them.
export async function renderDevices(main, ctx) {
  const seesCustomers = !ctx.me.customer;
  const simsCell = (d) => {
    if (!ctx.caps.readSims) return h('span', { class: 'muted', title: 'Your provider shares device data only.' }, 'not shared');
    if (!d.sims.length) return h('span', { class: 'muted' }, '—');
    return h(
      'span',
      { class: 'sim-list' },
      d.sims.map((s) =>
        h(
          'span',
          { class: 'chip', dataset: { iccid: s.iccid } },
          link(`/sims/${encodeURIComponent(s.iccid)}`, s.iccid, { class: 'mono' }),
          badge(s.state),
        ),
      ),
    );
  };
  const columns = [
    { label: 'Name', sort: 'NAME', value: (d) => d.name },
    { label: 'IMEI', sort: 'IMEI', value: (d) => h('span', { class: 'mono' }, d.imei) },
    { label: 'Kind', value: (d) => d.kind },
    { label: 'Connectivity', value: (d) => d.connectivity.join(', ') },
    { label: 'State', sort: 'STATE', value: (d) => badge(d.state) },
    seesCustomers ? { label: 'Sub-customer', value: (d) => (d.customer ? d.customer.name : h('span', { class: 'muted' }, 'tenant')) } : null,
    { label: 'SIMs', value: simsCell },
    { label: 'Labels', value: (d) => labelChips(d.labels) },
    { label: 'Last activity', value: (d) => agoTime(d.lastActivityAt) },
    { label: 'Created', sort: 'CREATED_AT', value: (d) => shortDate(d.createdAt) },
    { label: 'Last changed', sort: 'UPDATED_AT', value: (d) => shortDate(d.updatedAt) },
  ].filter(Boolean);

  await listPage(main, ctx, {
    name: 'devices',
    path: '/devices',
    title: 'Devices',
    noun: 'devices',
    one: 'device',
    intro: 'Devices have a lifecycle of their own; the SIMs in them are listed with their states.',
    query: DEVICES,
    connection: (d) => d.devices,
    toFilter: deviceFilter,
    order: DEVICE_ORDER,
    columns,
    rowData: (tr, d) => {
      tr.dataset.deviceId = d.id;
      tr.dataset.imei = d.imei;
      tr.dataset.state = d.state;
    },
    filters: (p, apply, catalogue) => [
      checkGroup(p, 'state', 'State', DEVICE_STATES, apply),
      textFilter(p, 'name', 'Name contains', apply),
      textFilter(p, 'imei', 'IMEI starts with', apply, { placeholder: '35…', inputmode: 'numeric' }),
      textFilter(p, 'q', 'Label contains', apply, { placeholder: 'text in any label key or value' }),
      labelFilter(p, catalogue, apply),
    ],
    moreKeys: ['kind', 'from', 'to'],
    moreFilters: (p, apply) => [
      checkGroup(p, 'kind', 'Kind', DEVICE_KINDS, apply),
      dateFilter(p, 'from', 'Last activity from', apply),
      dateFilter(p, 'to', 'Last activity until', apply, 'Inclusive, in your time zone.'),
    ],
  });
}
