// The tenant's alert rules (#/alerts/rules): the list (name, condition and threshold in words,
// target, severity, whether on, channels) and, for fleet managers, the editor (alert-rule-form.js)
// and deletion. Only the tenant's staff read rules (docs/roles.md); the API refuses the rest.

import { h, mount, errorBox, loading, link } from './ui.js';
import { severityBadge, metricInfo, amountText, simStateWord, telemetryLimitText, ANOMALY_KINDS, words } from './alert-parts.js';
import { RULE_FIELDS, ruleForm } from './alert-rule-form.js';

const RULES = `query ConsoleAlertRules($tenantId: ID) { alertRules(tenantId: $tenantId) { ${RULE_FIELDS} } }`;
const DELETE = 'mutation ConsoleDeleteAlertRule($id: ID!) { deleteAlertRule(id: $id) }';

/// The SIMs a rule watches, in words (`names`: sub-customer id → name).
export function targetText(target, names) {
  switch (target.kind) {
    case 'ALL_SIMS':
      return 'Every SIM';
    case 'CUSTOMER':
      return `SIMs of ${names.get(target.customerId) || 'a sub-customer'}`;
    case 'LABELS':
      return `SIMs labelled ${target.labels.map((l) => (l.value ? `${l.key}=${l.value}` : `${l.key} (any value)`)).join(' and ')}`;
    case 'TARIFF_PLAN':
      return `SIMs on tariff plan ${target.tariffPlan}`;
    case 'SIM':
      return target.sim ? null : 'One SIM (not visible to you)';
    default:
      return target.kind;
  }
}

function targetCell(ctx, target, names) {
  if (target.kind === 'SIM' && target.sim) {
    return h('span', {}, 'SIM ', ctx.caps.readSims ? link(`/sims/${encodeURIComponent(target.sim.iccid)}`, target.sim.iccid, { class: 'mono' }) : h('span', { class: 'mono' }, target.sim.iccid));
  }
  return targetText(target, names);
}

function thresholdText(rule) {
  const amount = amountText(rule.metric, rule.threshold);
  switch (rule.metric) {
    case 'STATE_CHANGED':
      return rule.state ? `into ${simStateWord(rule.state)}` : 'into any state';
    case 'OFFLINE_HOURS':
      return rule.clearThreshold !== null && rule.clearThreshold !== undefined
        ? `${amount} or more; clears under ${amountText(rule.metric, rule.clearThreshold)}`
        : `${amount} or more`;
    case 'QUOTA_STAGE':
      return `${amount} or more`;
    case 'QUOTA_EXHAUSTION_FORECAST':
      return `within ${amount}`;
    case 'ANOMALY': {
      const kinds = (rule.anomalyKinds || []).map((k) => (ANOMALY_KINDS.find(([v]) => v === k) || [k, words(k)])[1].toLowerCase());
      const least = rule.anomalyMinSeverity && rule.anomalyMinSeverity !== 'LOW' ? `, ${rule.anomalyMinSeverity.toLowerCase()} severity or more` : '';
      return `${kinds.length ? kinds.join(', ') : 'every kind'}${least}`;
    }
    case 'TELEMETRY_ABOVE':
    case 'TELEMETRY_BELOW':
      return telemetryLimitText(rule);
    default:
      return metricInfo(rule.metric).event || amount === null ? h('span', { class: 'muted' }, 'an event: none') : `over ${amount}`;
  }
}

function channelsText(rule) {
  const parts = [];
  if (rule.inApp) parts.push('In-app');
  if (rule.webhook) parts.push('Webhook');
  if (rule.emails.length) parts.push(`${rule.emails.length} e-mail address${rule.emails.length === 1 ? '' : 'es'}`);
  return h('span', { title: rule.emails.join(', ') || null }, parts.join(', ') || '—');
}

export async function render(main, ctx) {
  const manage = Boolean(ctx.caps.manageFleet);
  let left = false;
  ctx.onLeave(() => {
    left = true;
  });

  const message = h('div', { 'aria-live': 'polite', 'data-testid': 'rules-message' });
  const editorBox = h('div', {});
  const listBox = h('section', { class: 'card', 'data-testid': 'rules' });
  const newButton = manage
    ? h('button', { type: 'button', class: 'primary', 'data-testid': 'rule-new', onclick: () => openEditor(null) }, 'New rule')
    : null;

  mount(
    main,
    h('p', {}, link('/alerts', '← Alerts')),
    h('h1', {}, 'Alert rules'),
    h(
      'div',
      { class: 'toolbar' },
      newButton,
      h('p', { class: 'muted' }, manage ? 'A tenant keeps up to 200 rules. Each tells people when something happens to the SIMs it watches.' : 'Only operators and admins create or change rules.'),
    ),
    message,
    editorBox,
    listBox,
  );

  // Sub-customer names, for the targets; a failure only means less precise words.
  const names = new Map();
  const customers = ctx.api.customers(ctx.tenantId).catch(() => []);

  let rules = [];

  function say(what, isError = false) {
    mount(message, isError ? errorBox(what) : h('p', { class: 'notice', role: 'status' }, what));
  }

  // ---- the editor ------------------------------------------------------------------------

  function closeEditor(focusId) {
    mount(editorBox);
    const back = focusId ? listBox.querySelector(`tr[data-id="${focusId}"] [data-testid=rule-edit]`) : newButton;
    if (back) back.focus();
  }

  function openEditor(rule) {
    mount(message);
    const form = ruleForm(ctx, rule, customers, {
      onSaved: async (saved) => {
        say(`${rule ? 'Saved' : 'Created'} the rule “${saved.name}”.`);
        await loadRules();
        closeEditor(saved.id);
      },
      onCancel: () => closeEditor(rule && rule.id),
    });
    mount(editorBox, form);
    const first = form.querySelector('input[name=name]');
    if (first) first.focus();
    form.scrollIntoView({ block: 'start' });
  }

  // ---- deleting --------------------------------------------------------------------------

  function confirmDelete(rule, row) {
    const go = h('button', { type: 'button', class: 'primary danger-confirm', 'data-testid': 'rule-delete-confirm' }, 'Delete the rule');
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const status = h('div', { 'aria-live': 'assertive' });
    const panel = h(
      'div',
      { class: 'confirm notice', role: 'group', 'aria-label': `Delete the rule ${rule.name}`, 'data-testid': 'rule-delete-panel' },
      h('p', {}, h('strong', {}, `Delete the rule “${rule.name}”?`)),
      h('p', { class: 'warning' }, 'Its alerts, open and past, are deleted with it. This cannot be undone; to keep them, turn the rule off instead.'),
      h('div', { class: 'actions' }, go, cancel),
      status,
    );
    cancel.addEventListener('click', () => {
      mount(message);
      const back = row.querySelector('[data-testid=rule-delete]');
      if (back) back.focus();
    });
    go.addEventListener('click', async () => {
      go.disabled = true;
      cancel.disabled = true;
      mount(status, loading('Deleting…'));
      try {
        await ctx.api.gql(DELETE, { id: rule.id });
        if (left) return;
        say(`Deleted the rule “${rule.name}” and its alerts.`);
        await loadRules();
        if (newButton) newButton.focus();
      } catch (err) {
        mount(status, errorBox(err));
        go.disabled = false;
        cancel.disabled = false;
      }
    });
    mount(message, panel);
    cancel.focus();
  }

  // ---- the list --------------------------------------------------------------------------

  function drawList() {
    if (rules.length === 0) {
      mount(listBox, h('h2', {}, 'Rules'), h('p', { class: 'empty', 'data-testid': 'rules-empty' }, manage ? 'No rules yet. Create one with “New rule”.' : 'No rules yet.'));
      return;
    }
    const columns = [
      ['Name', (r) => h('span', {}, h('strong', { 'data-testid': 'rule-name' }, r.name), r.description ? [h('br'), h('small', {}, r.description)] : null), true],
      [
        'Condition',
        (r) =>
          h(
            'span',
            { title: r.conditionText },
            h('span', { 'data-testid': 'rule-metric' }, metricInfo(r.metric).word),
            h('br'),
            h('small', { 'data-testid': 'rule-threshold' }, thresholdText(r)),
          ),
        true,
      ],
      ['Watches', (r) => targetCell(ctx, r.target, names), true],
      ['Severity', (r) => severityBadge(r.severity)],
      ['Enabled', (r) => h('span', { class: `badge ${r.enabled ? 'badge-ACTIVE' : 'badge-TERMINATED'}` }, r.enabled ? 'On' : 'Off')],
      ['Channels', channelsText, true],
      manage
        ? [
            'Actions',
            (r) =>
              h(
                'span',
                { class: 'actions rule-actions' },
                h('button', { type: 'button', 'data-testid': 'rule-edit', 'aria-label': `Edit the rule ${r.name}`, onclick: () => openEditor(r) }, 'Edit'),
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'danger',
                    'data-testid': 'rule-delete',
                    'aria-label': `Delete the rule ${r.name}`,
                    onclick: (ev) => confirmDelete(r, ev.currentTarget.closest('tr')),
                  },
                  'Delete',
                ),
              ),
          ]
        : null,
    ].filter(Boolean);
    mount(
      listBox,
      h('h2', {}, 'Rules'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'stack-table', 'data-testid': 'rules-table' },
          h('caption', {}, `${rules.length} rule${rules.length === 1 ? '' : 's'}, by name`),
          h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', { scope: 'col' }, label)))),
          h(
            'tbody',
            {},
            rules.map((r) =>
              h(
                'tr',
                { 'data-testid': 'rule-row', dataset: { id: r.id, enabled: String(r.enabled) } },
                columns.map(([label, cell, wrap]) => h('td', { class: wrap ? 'wrap' : null, dataset: { label } }, cell(r))),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function loadRules() {
    if (!listBox.firstChild) mount(listBox, h('h2', {}, 'Rules'), loading('Loading the rules…'));
    try {
      const [data, list] = await Promise.all([ctx.api.gql(RULES, { tenantId: ctx.tenantId }), customers]);
      if (left) return;
      for (const c of list) names.set(c.id, c.name);
      rules = data.alertRules;
      drawList();
    } catch (err) {
      if (!left) mount(listBox, h('h2', {}, 'Rules'), errorBox(err));
    }
  }

  await loadRules();
  if (!left) main.dataset.ready = 'alert-rules';
}
