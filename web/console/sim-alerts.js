// Two cards of the SIM page (sim.js): its data quota (`Sim.quota`: used of the limit, the stage
// reached, what happens at the limit, when the period ends, where the quota comes from;
// docs/fleet.md "Data quotas"), which fleet managers set, change and remove here, and its
// alerts, open ones first then the latest resolved, kept current by the `alerts` subscription,
// with a link to all of them on the Alerts page. Each loads on its own.

import { h, mount, bytes, dateTime, errorBox, loading, link, select } from './ui.js';
import { BYTE_UNITS, FieldError, fieldErrors, parseNumber } from './alert-rule-form.js';
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

const QUOTA_FIELDS = `limitBytes usedBytes remainingBytes overshootBytes percent state stages stageReached
  action resumeNextPeriod actionState actionReason periodStart periodEnd source setBy updatedAt`;
const QUOTA = `query ConsoleSimQuota($iccid: Iccid!) {
  sim(iccid: $iccid) { iccid tariffPlan quota { ${QUOTA_FIELDS} } }
}`;
const SET_QUOTA = `mutation ConsoleSetSimQuota($iccid: Iccid!, $input: SimQuotaInput!) {
  setSimQuota(iccid: $iccid, input: $input) { ${QUOTA_FIELDS} }
}`;
const REMOVE_QUOTA = 'mutation ConsoleRemoveSimQuota($iccid: Iccid!) { removeSimQuota(iccid: $iccid) }';
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
/// The actions at the limit (`QuotaAction`), as the editor offers them.
const QUOTA_ACTIONS = [
  ['NOTIFY', 'Notify only'],
  ['SUSPEND', 'Suspend the SIM'],
];
const QUOTA_ACTION = {
  NOTIFY: 'Notify only: the SIM keeps its service',
  SUSPEND: 'Suspend the SIM',
};
const ACTION_STATE = {
  PENDING: 'Suspension pending: sent to the network within a minute',
  REQUESTED: 'Suspension sent to the network',
  DONE: 'Suspended for this period',
  FAILED: 'Suspension failed',
};
/// The warning stages a new quota starts with (the API's default).
const DEFAULT_STAGES = [80, 90];
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

/// Where the quota comes from (`SimQuota.source`), in words; null when the API does not say.
function sourceText(q, tariffPlan) {
  switch (q.source) {
    case 'SIM':
      return 'Set on this SIM';
    case 'TARIFF_PLAN':
      return tariffPlan ? `Default for tariff plan ${tariffPlan}` : 'Default for the SIM’s tariff plan';
    case 'TENANT':
      return 'The tenant’s default';
    default:
      return null;
  }
}

/// A quota of this SIM's own (not a default it inherits): only these can be removed here.
const ownQuota = (q) => !q.source || q.source === 'SIM';

/// The API's refusal as a person reads it next to its field: without the field's name in front
/// ("stages: must be ascending" → "Must be ascending"), actions in words.
function quotaWords(message) {
  const s = String(message)
    .replace(/^[A-Za-z.]+(\[\d+\])?: /, '')
    .replace(/\b(NOTIFY|SUSPEND)\b/g, (code) => `“${QUOTA_ACTIONS.find(([v]) => v === code)[1]}”`);
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/// The card's body for `q` (null: no quota). `extra` goes under it (the buttons, a panel).
function drawQuota(ctx, card, q, { tariffPlan, note, extra, manage }) {
  const noteEl = note ? h('p', { class: 'notice', role: 'status', 'data-testid': 'sim-quota-message' }, note) : null;
  if (!q) {
    mount(
      card,
      h('h2', { tabindex: '-1' }, 'Quota'),
      noteEl,
      h('p', { 'data-testid': 'sim-quota-none' }, 'No quota.'),
      h('p', { class: 'muted' }, manage ? 'This SIM has no data limit per period.' : 'This SIM has no data limit per period; operators and admins set one.'),
      extra,
    );
    card.dataset.state = 'NONE';
    card.dataset.source = '';
    return;
  }
  const limit = Number(q.limitBytes);
  const used = Number(q.usedBytes);
  const percent = Number(q.percent);
  const percentText = `${percent.toFixed(1)} %`;
  const source = sourceText(q, tariffPlan);
  card.dataset.state = q.state;
  card.dataset.source = q.source || '';
  mount(
    card,
    h('h2', { tabindex: '-1' }, 'Quota ', h('span', { class: `badge quota-${q.state}`, 'data-testid': 'sim-quota-state' }, QUOTA_STATE[q.state] || q.state)),
    noteEl,
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
      ['Limit', `${bytes(q.limitBytes)} per period`, { 'data-testid': 'sim-quota-limit-text' }],
      source ? ['Comes from', source, { 'data-testid': 'sim-quota-source' }] : null,
      ['Left', Number(q.remainingBytes) > 0 ? bytes(q.remainingBytes) : 'nothing'],
      Number(q.overshootBytes) > 0 ? ['Past the limit', `${bytes(q.overshootBytes)} (counted before the SIM was stopped)`] : null,
      ['Warnings at', q.stages.length ? q.stages.map((s) => `${s} %`).join(', ') : 'none', { 'data-testid': 'sim-quota-stages-text' }],
      ['Reached', q.stageReached ? `${q.stageReached} %${q.stageReached >= 100 ? ' (the limit)' : ''}` : 'no stage yet'],
      ['At the limit', QUOTA_ACTION[q.action] || q.action, { 'data-testid': 'sim-quota-action' }],
      q.action === 'SUSPEND'
        ? ['Next period', q.resumeNextPeriod ? 'Resumed when the next period starts' : 'Stays suspended until someone resumes it', { 'data-testid': 'sim-quota-resume-text' }]
        : null,
      q.actionState && q.actionState !== 'NONE'
        ? ['Action', [ACTION_STATE[q.actionState] || q.actionState, q.actionReason ? `: ${q.actionReason}` : ''], { 'data-testid': 'sim-quota-action-state' }]
        : null,
      ['Period started', dateTime(q.periodStart)],
      ['Period ends', h('span', {}, agoIn(q.periodEnd), h('br'), h('small', {}, 'The usage counts from zero again then.')), { 'data-testid': 'sim-quota-period-end' }],
      ['Set by', h('span', {}, personEl(ctx, q.setBy), ', ', agoEl(q.updatedAt))],
    ]),
    extra,
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

/// The quota editor, as SimQuotaInput asks: the limit in MB or GB (decimal, as the console shows
/// bytes), the warning stages in percent, the action at the limit and, for a suspension, whether
/// the SIM is resumed when the next period starts. Starts from `q` (the SIM's quota or the
/// default it inherits; null: the API's defaults). The API checks every field and names the one
/// it refuses: the message goes next to that field. `onSaved(quota)` gets the API's answer.
function quotaForm(ctx, iccid, q, { title, alive, onSaved, onCancel }) {
  const errors = fieldErrors({
    idPrefix: 'quota',
    testid: (key) => `sim-quota-error-${key}`,
    words: quotaWords,
    alias: (key) => (key.startsWith('input.') ? key.slice('input.'.length) : null),
  });

  let startUnit = 'MB';
  let startLimit = '';
  if (q) {
    const t = Number(q.limitBytes);
    startUnit = t >= 1e9 ? 'GB' : 'MB';
    startLimit = String(Number((t / BYTE_UNITS.find(([v]) => v === startUnit)[2]).toFixed(6)));
  }
  const limit = h('input', { type: 'text', inputmode: 'decimal', name: 'limit', autocomplete: 'off', value: startLimit, 'data-testid': 'sim-quota-limit' });
  const unit = select(BYTE_UNITS.map(([v, l]) => [v, l]), startUnit, { name: 'unit', 'aria-label': 'Unit of the limit', 'data-testid': 'sim-quota-unit' });
  const limitField = errors.fieldFor('limitBytes', 'Limit per period', limit, 'Bytes up and down in each billing period (the tenant’s calendar month). 1 GB = 1,000 MB.', {
    body: h('div', { class: 'with-unit' }, limit, unit),
  });

  const stages = h('input', {
    type: 'text',
    inputmode: 'numeric',
    name: 'stages',
    autocomplete: 'off',
    placeholder: '80, 90',
    value: (q ? q.stages : DEFAULT_STAGES).join(', '),
    'data-testid': 'sim-quota-stages',
  });
  const stagesField = errors.fieldFor('stages', 'Warn at (% of the limit)', stages, 'Up to 5 percentages, ascending, each 1 to 99, comma-separated; empty for no warnings.');

  const action = select(QUOTA_ACTIONS, q ? q.action : 'NOTIFY', { name: 'action', 'data-testid': 'sim-quota-action-input' });
  const actionField = errors.fieldFor('action', 'At the limit', action, 'Notify only: people are told and the SIM keeps its service. Suspend: the SIM is suspended through the network.');

  const resume = h('input', { type: 'checkbox', name: 'resumeNextPeriod', id: `quota-resume-${iccid}`, checked: Boolean(q && q.resumeNextPeriod), 'data-testid': 'sim-quota-resume' });
  const resumeHint = h('small', { id: `quota-resume-hint-${iccid}` }, 'Only for a quota that suspends the SIM.');
  const resumeSlot = errors.slot('resumeNextPeriod', resume);
  resume.setAttribute('aria-describedby', `${resumeHint.id} ${resumeSlot.id}`);
  const resumeField = h('div', { class: 'field' }, h('label', { class: 'inline', for: resume.id }, resume, ' Resume at the start of the next period'), resumeHint, resumeSlot);

  // Resuming only follows a suspension: the box is off and out of reach otherwise.
  function showAction() {
    const suspends = action.value === 'SUSPEND';
    resume.disabled = !suspends;
    if (!suspends) resume.checked = false;
  }
  action.addEventListener('change', showAction);
  showAction();

  const status = h('div', { 'aria-live': 'assertive', 'data-testid': 'sim-quota-status' });

  function showError(err) {
    if (errors.show(err)) {
      mount(status, h('p', { class: 'error', role: 'alert' }, 'The quota was not saved: see the message next to the field.'));
      return;
    }
    mount(status, errorBox(err));
  }

  /// SimQuotaInput from the form; only what cannot be sent is refused here (the API checks the
  /// rest and names the field).
  function input() {
    const n = parseNumber(limit.value);
    if (n === null) throw new FieldError('limitBytes', 'Enter the limit.');
    if (Number.isNaN(n)) throw new FieldError('limitBytes', `“${limit.value.trim()}” is not a number.`);
    const factor = BYTE_UNITS.find(([v]) => v === unit.value)[2];
    const list = stages.value
      .split(/[,;\s]+/)
      .map((s) => s.replace(/%$/, ''))
      .filter(Boolean)
      .map((s) => {
        if (!/^\d{1,9}$/.test(s)) throw new FieldError('stages', `“${s}” is not a whole percentage.`);
        return Number(s);
      });
    return {
      // A BigInt scalar, sent as a string of digits (exact, whatever its size).
      limitBytes: String(Math.round(n * factor)),
      stages: list,
      action: action.value,
      resumeNextPeriod: action.value === 'SUSPEND' && resume.checked,
    };
  }

  const save = h('button', { type: 'submit', class: 'primary', 'data-testid': 'sim-quota-save' }, 'Save quota');
  const cancel = h('button', { type: 'button', 'data-testid': 'sim-quota-cancel', onclick: () => onCancel() }, 'Cancel');
  const titleId = `quota-form-title-${iccid}`;
  const form = h(
    'form',
    {
      class: 'quota-form',
      novalidate: true, // checked by the server, which names the field
      'data-testid': 'sim-quota-form',
      'aria-labelledby': titleId,
      onsubmit: async (ev) => {
        ev.preventDefault();
        errors.clear();
        mount(status);
        let value;
        try {
          value = input();
        } catch (err) {
          showError(err);
          return;
        }
        save.disabled = true;
        cancel.disabled = true;
        mount(status, loading('Saving the quota…'));
        try {
          const data = await ctx.api.gql(SET_QUOTA, { iccid, input: value });
          if (!alive()) return;
          onSaved(data.setSimQuota);
        } catch (err) {
          if (!alive()) return;
          mount(status);
          showError(err);
        } finally {
          save.disabled = false;
          cancel.disabled = false;
        }
      },
    },
    h('h3', { id: titleId }, title),
    h('p', { class: 'muted' }, 'The limit applies to what the SIM used already this period: a SIM past it is acted on at once.'),
    limitField.el,
    stagesField.el,
    actionField.el,
    resumeField,
    h('div', { class: 'actions' }, save, cancel),
    status,
  );
  setTimeout(() => limit.focus(), 0);
  return form;
}

/// The quota card: loads the SIM's quota and, for fleet managers, offers to set, change or
/// remove it (a default inherited from the tariff plan or the tenant is overridden, not removed).
export async function loadQuota(ctx, iccid, card, alive) {
  const manage = Boolean(ctx.caps.manageFleet);
  let quota = null;
  let tariffPlan = null;

  /// Draws the card; `focus` names the button (its test id) to put the focus on, if any.
  function show(note, focus) {
    const buttons = manage ? actionsFor(quota) : null;
    drawQuota(ctx, card, quota, { tariffPlan, note, manage, extra: buttons });
    if (focus) {
      const el = card.querySelector(`[data-testid=${focus}]`) || card.querySelector('h2');
      el.focus();
    }
  }

  function actionsFor(q) {
    const panelHost = h('div', { class: 'confirm-host' });
    const own = q && ownQuota(q);
    const setLabel = !q ? 'Set quota' : own ? 'Edit' : 'Set a quota for this SIM';
    const setButton = h(
      'button',
      {
        type: 'button',
        class: q ? null : 'primary',
        'data-testid': q && own ? 'sim-quota-edit' : 'sim-quota-set',
        'aria-label': q && own ? 'Edit the quota' : null,
        onclick: () => openForm(q),
      },
      setLabel,
    );
    const removeButton = own
      ? h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-testid': 'sim-quota-remove',
            'aria-label': 'Remove the quota',
            'aria-expanded': 'false',
            onclick: (ev) => confirmRemove(panelHost, ev.currentTarget),
          },
          'Remove',
        )
      : null;
    return h(
      'div',
      { class: 'quota-actions' },
      h('div', { class: 'actions' }, setButton, removeButton),
      q && !own ? h('small', { class: 'muted' }, 'A quota set on this SIM overrides the default for this SIM only.') : null,
      panelHost,
    );
  }

  function openForm(q) {
    const title = !q ? 'Set a quota' : ownQuota(q) ? 'Edit the quota' : 'Set a quota for this SIM';
    const back = q && ownQuota(q) ? 'sim-quota-edit' : 'sim-quota-set';
    mount(
      card,
      h('h2', {}, 'Quota'),
      quotaForm(ctx, iccid, q, {
        title,
        alive,
        onSaved: (saved) => {
          quota = saved;
          show('Saved the quota.', 'sim-quota-edit');
        },
        onCancel: () => show(null, back),
      }),
    );
    card.dataset.state = 'EDITING';
  }

  function confirmRemove(host, opener) {
    const go = h('button', { type: 'button', class: 'primary danger-confirm', 'data-testid': 'sim-quota-remove-confirm' }, 'Remove the quota');
    const cancel = h('button', { type: 'button', 'data-testid': 'sim-quota-remove-cancel' }, 'Cancel');
    const status = h('div', { 'aria-live': 'assertive' });
    cancel.addEventListener('click', () => {
      mount(host);
      opener.setAttribute('aria-expanded', 'false');
      opener.focus();
    });
    go.addEventListener('click', async () => {
      go.disabled = true;
      cancel.disabled = true;
      mount(status, loading('Removing…'));
      try {
        const had = (await ctx.api.gql(REMOVE_QUOTA, { iccid })).removeSimQuota;
        if (!alive()) return;
        // Read again: a default of the tariff plan or the tenant may apply now.
        await read(had ? 'Removed the quota.' : 'The SIM had no quota of its own any more (removed meanwhile).', 'sim-quota-set');
      } catch (err) {
        if (!alive()) return;
        mount(status, errorBox(err));
        go.disabled = false;
        cancel.disabled = false;
      }
    });
    mount(
      host,
      h(
        'div',
        { class: 'confirm notice', role: 'group', 'aria-label': 'Remove the quota', 'data-testid': 'sim-quota-remove-panel' },
        h('p', {}, h('strong', {}, 'Remove this SIM’s quota?')),
        h('p', {}, 'Its warnings and the action at the limit stop. A default of the tariff plan or the tenant, if there is one, applies instead.'),
        h('div', { class: 'actions' }, go, cancel),
        status,
      ),
    );
    opener.setAttribute('aria-expanded', 'true');
    cancel.focus();
  }

  async function read(note, focus) {
    if (!card.firstChild) mount(card, h('h2', {}, 'Quota'), loading('Loading the quota…'));
    try {
      const data = await ctx.api.gql(QUOTA, { iccid });
      if (!alive()) return;
      tariffPlan = data.sim ? data.sim.tariffPlan : null;
      quota = data.sim ? data.sim.quota : null;
      show(note, focus);
    } catch (err) {
      if (alive()) mount(card, h('h2', {}, 'Quota'), errorBox(err));
    }
  }

  await read();
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
