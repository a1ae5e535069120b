// Quota and plan advice (docs/forecasts.md, "Advice"): what the hourly forecast pass advises
// from each SIM's last 90 days — a cheaper tariff plan, or a data limit that fits (set one,
// raise one that keeps stopping the SIM, lower one that would catch a runaway late) — for SIMs
// and quota pools. The fleet page (fleet.js) shows it in a card: the fleet's advice with the
// highest saving first, a few at a time (`advice(tenantId, first, after)`; "Show more" reads the
// next page under the rows shown). The API hides the amounts from callers who may not see costs
// (their sentences come without them); the card then has no saving column either.

import { h, mount, bytes, moneyRounded, errorBox, loading, link } from './ui.js';
import { agoEl, words } from './alert-parts.js';

/// The fields an advice view reads.
export const ADVICE_FIELDS = `id kind action iccid poolId currentPlan recommendedPlan currentLimitBytes
  recommendedLimitBytes currentCost recommendedCost saving currency sentence computedAt
  sim { iccid device { name } customer { name } } pool { name }`;

const FLEET_ADVICE = `query ConsoleFleetAdvice($tenantId: ID, $first: Int, $after: String) {
  advice(tenantId: $tenantId, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { ${ADVICE_FIELDS} }
  }
}`;

/// How many the card shows at first, and how many more each "Show more" reads.
const PAGE = 5;

// ---- vocabulary ------------------------------------------------------------------------------

/// What an advice says to do (`AdviceAction`), in words.
const ACTIONS = {
  SWITCH_PLAN: 'Switch the tariff plan',
  SET: 'Set a data limit',
  RAISE: 'Raise the data limit',
  LOWER: 'Lower the data limit',
};
export const actionWord = (action) => ACTIONS[action] || words(action);

const given = (v) => v !== null && v !== undefined;
const capital = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const planWords = (plan) => (plan ? `plan ${plan}` : 'base prices');

/// The advice as now → advised: "Base prices → plan heavy", "No limit → 250 MB",
/// "100 MB → 500 MB".
export function changeText(a) {
  if (a.action === 'SWITCH_PLAN') return capital(`${planWords(a.currentPlan)} → ${planWords(a.recommendedPlan)}`);
  const now = given(a.currentLimitBytes) ? bytes(a.currentLimitBytes) : 'no limit';
  return capital(`${now} → ${bytes(a.recommendedLimitBytes)}`);
}

/// What following the advice would have saved over the 90 days, with its currency; in words
/// where it saves nothing (a raised limit avoids interruptions rather than costs).
export function savingEl(a) {
  if (!given(a.saving)) {
    return h('span', { class: 'muted', title: 'No retail rate card prices this traffic.' }, 'Not priced');
  }
  if (Number(a.saving) > 0) {
    return h('strong', { 'data-testid': 'advice-saving', dataset: { currency: a.currency || '' } }, moneyRounded(a.saving, a.currency));
  }
  return h(
    'span',
    { class: 'muted' },
    'None',
    h('small', { class: 'block' }, a.action === 'RAISE' ? 'it avoids interruptions' : 'it catches a runaway early'),
  );
}

/// The SIM (a link to its page, with its device and sub-customer) or the pool an advice is about.
export function subjectEl(a) {
  if (a.iccid) {
    const s = a.sim;
    return h(
      'span',
      { class: 'advice-subject' },
      link(`/sims/${encodeURIComponent(a.iccid)}`, a.iccid, { class: 'mono', 'data-testid': 'advice-sim' }),
      s && s.device ? h('small', { class: 'block' }, `in ${s.device.name}`) : null,
      s && s.customer ? h('small', { class: 'block' }, s.customer.name) : null,
    );
  }
  return h(
    'span',
    { class: 'advice-subject', 'data-testid': 'advice-pool' },
    'Pool ',
    h('strong', {}, a.pool ? a.pool.name : 'not visible to you'),
    h('small', { class: 'block' }, 'its SIMs’ usage together'),
  );
}

// ---- the fleet page's card -------------------------------------------------------------------

/// The fleet page's advice card, loading on its own; null for a caller who may not read advice
/// (whoever reads SIMs reads advice, as anomalies).
export function fleetAdviceCard(ctx) {
  if (!ctx.caps.readSims) return null;
  const card = h('section', {
    class: 'card fleet-advice',
    'data-testid': 'fleet-advice',
    'aria-labelledby': 'fleet-advice-title',
    dataset: { state: 'loading' },
  });
  loadFleetAdvice(ctx, card);
  return card;
}

async function loadFleetAdvice(ctx, card) {
  const alive = () => ctx.alive();
  const money = Boolean(ctx.caps.readCosts);
  const head = h('h2', { id: 'fleet-advice-title' }, 'Quota and plan advice');
  const notice = h('div', { 'aria-live': 'polite', 'data-testid': 'fleet-advice-message' });
  mount(card, head, loading('Loading advice…'));

  const read = async (after) =>
    (await ctx.api.gql(FLEET_ADVICE, { tenantId: ctx.tenantId, first: PAGE, after })).advice;

  let page;
  try {
    page = await read(null);
  } catch (err) {
    if (!alive()) return;
    // Advice the caller may not read is no news to them: the card goes, without an error.
    if (err && err.code === 'FORBIDDEN') {
      card.hidden = true;
      card.dataset.state = 'hidden';
      return;
    }
    card.dataset.state = 'error';
    mount(card, head, errorBox(err));
    return;
  }
  if (!alive()) return;

  const how = 'From each SIM’s last 90 days of usage, the hourly forecast pass advises a cheaper tariff plan or a data limit that fits';
  if (!page.nodes.length) {
    card.dataset.state = 'none';
    mount(
      card,
      head,
      h('p', { 'data-testid': 'fleet-advice-none' }, 'No advice: every SIM’s tariff plan and data limit fit its last 90 days.'),
      h('p', { class: 'muted' }, `${how}.`),
    );
    return;
  }

  const COLUMNS = [
    { label: 'SIM or pool', cell: subjectEl },
    {
      label: 'Advice',
      wrap: true,
      cell: (a) =>
        h(
          'div',
          { class: 'advice-what' },
          h('strong', { 'data-testid': 'advice-action' }, actionWord(a.action)),
          h('p', { class: 'advice-sentence', 'data-testid': 'advice-sentence' }, a.sentence),
        ),
    },
    {
      label: 'Now → advised',
      cell: (a) =>
        h(
          'span',
          { class: 'advice-change', 'data-testid': 'advice-change' },
          changeText(a),
          money && a.action === 'SWITCH_PLAN' && given(a.currentCost) && given(a.recommendedCost)
            ? h('small', { class: 'block' }, `${moneyRounded(a.currentCost, a.currency)} → ${moneyRounded(a.recommendedCost, a.currency)}`)
            : null,
        ),
    },
    money ? { label: 'Saving over 90 days', num: true, cell: savingEl } : null,
  ].filter(Boolean);

  const shown = new Set();
  const tbody = h('tbody', {});
  function add(a) {
    shown.add(a.id);
    const row = h(
      'tr',
      {
        'data-testid': 'advice-row',
        dataset: { id: a.id, kind: a.kind, action: a.action, iccid: a.iccid || '', pool: a.poolId || '' },
      },
      COLUMNS.map((c) =>
        h('td', { class: [c.wrap ? 'wrap' : null, c.num ? 'num' : null].filter(Boolean).join(' ') || null, dataset: { label: c.label } }, c.cell(a)),
      ),
    );
    tbody.appendChild(row);
    return row;
  }
  page.nodes.forEach(add);

  const pagerHost = h('div', {});
  let pageInfo = page.pageInfo;
  function drawPager() {
    if (!(pageInfo && pageInfo.hasNextPage)) {
      mount(pagerHost, h('p', { class: 'muted', 'data-testid': 'fleet-advice-end' }, shown.size === 1 ? 'That is all the advice.' : `All ${shown.size} shown.`));
      return;
    }
    const more = h(
      'button',
      {
        type: 'button',
        'data-testid': 'fleet-advice-more',
        onclick: async () => {
          more.disabled = true;
          mount(notice);
          let next;
          try {
            next = await read(pageInfo.endCursor);
          } catch (err) {
            if (!alive()) return;
            more.disabled = false;
            mount(notice, errorBox(err));
            return;
          }
          if (!alive()) return;
          const rows = next.nodes.filter((a) => !shown.has(a.id)).map(add);
          pageInfo = next.pageInfo;
          drawPager();
          // The first new row takes the focus, so keyboard users read on where they were.
          const first = rows.length ? rows[0].querySelector('a, button') : null;
          if (first) first.focus();
        },
      },
      'Show more advice',
    );
    mount(
      pagerHost,
      h('nav', { class: 'pager', 'aria-label': 'more advice' }, h('span', { 'aria-live': 'polite' }, `${shown.size} shown${money ? ', highest saving first' : ''}`), more),
    );
  }
  drawPager();

  card.dataset.state = 'list';
  mount(
    card,
    head,
    h(
      'p',
      { class: 'muted' },
      how,
      money ? ', the highest saving first.' : '. Amounts are not shown: your provider does not share costs.',
      ' Made ',
      agoEl(page.nodes[0].computedAt),
      '.',
    ),
    notice,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'stack-table advice-table', 'data-testid': 'fleet-advice-table' },
        h('caption', {}, money ? 'Advice, the highest saving first' : 'Advice'),
        h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
        tbody,
      ),
    ),
    pagerHost,
  );
}
