// The alert rule editor (create and edit), as AlertRuleInput asks: name, description, on/off,
// severity, the SIMs watched, the condition (the threshold in its metric's unit: bytes as MB or
// GB, hours, sessions, a factor, percent; a SIM state; none for events), the channels, and the
// pacing under "Timing" with the API's defaults. The API checks every field and names the first
// it refuses (`extensions.field`, e.g. `condition.threshold`): the message goes next to that
// field. An edit sends the version it was read at, so a rule someone else changed meanwhile is
// not overwritten.

import { h, mount, errorBox, loading, select, duration } from './ui.js';
import { parseLabel } from './fleet.js';
import { SEVERITIES, METRICS, TARGET_KINDS, SIM_STATE_WORDS, TELEMETRY_FIELDS, ANOMALY_KINDS, ANOMALY_SEVERITIES, metricInfo, telemetryFieldInfo } from './alert-parts.js';

export const RULE_FIELDS = `id name description enabled severity metric threshold clearThreshold state field value clearValue anomalyKinds anomalyMinSeverity conditionText
  inApp webhook emails pendingSeconds groupWaitSeconds groupIntervalSeconds repeatSeconds resolveAfterSeconds
  createdAt updatedAt version
  target { kind customerId tariffPlan labels { key value } sim { iccid } }`;
const CREATE = `mutation ConsoleCreateAlertRule($tenantId: ID, $input: AlertRuleInput!) {
  createAlertRule(tenantId: $tenantId, input: $input) { ${RULE_FIELDS} }
}`;
const UPDATE = `mutation ConsoleUpdateAlertRule($id: ID!, $input: AlertRuleInput!, $version: BigInt) {
  updateAlertRule(id: $id, input: $input, version: $version) { ${RULE_FIELDS} }
}`;
const RULE = `query ConsoleAlertRule($id: ID!) { alertRule(id: $id) { ${RULE_FIELDS} } }`;

/// The API's defaults (AlertRuleInput), with what each means.
const TIMING = [
  ['pendingSeconds', 'Condition must hold for (seconds)', 0, 'Before the alert fires; 0 fires at once. Up to a day. Events fire at once.', 'at once'],
  ['groupWaitSeconds', 'First notice waits (seconds)', 30, 'For more alerts of the rule to tell of together; up to an hour.', 'no wait'],
  ['groupIntervalSeconds', 'At most one notice per (seconds)', 300, 'Of this rule; a resolved alert is told of once it stayed resolved this long. 10 s to a day.', '0 s'],
  ['repeatSeconds', 'Remind every (seconds)', 14400, 'Of alerts still firing and not acknowledged; 0 sends no reminders. 60 s to a week.', 'no reminders'],
  ['resolveAfterSeconds', 'An event resolves after (seconds)', 3600, 'Without another of the same event; 60 s to a week.', '0 s'],
];
export const BYTE_UNITS = [
  ['MB', 'MB', 1e6],
  ['GB', 'GB', 1e9],
];
const isBytes = (metric) => metric === 'DATA_IN_DAY' || metric === 'DATA_IN_PERIOD';

let uid = 0;
const nextId = (p) => `${p}-${(uid += 1)}`;

/// A number as typed (`1,5` too); NaN when it is not one, null when empty.
export function parseNumber(text) {
  const s = String(text).trim().replace(',', '.');
  if (s === '') return null;
  return /^-?\d*\.?\d+$/.test(s) ? Number(s) : NaN;
}

/// The API's message with the metric codes it names in words ("DATA_IN_DAY" → "“Data in a day”").
function inWords(message) {
  return String(message).replace(/\b[A-Z][A-Z_]+[A-Z]\b/g, (code) => {
    const m = METRICS.find((x) => x.metric === code);
    return m ? `“${m.word}”` : code;
  });
}

/// A local refusal, shaped like the API's (field and message).
export class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
    this.code = 'BAD_USER_INPUT';
  }
}

/// The API's refusals shown at the field they name (`extensions.field`, e.g.
/// `condition.threshold`, `channels.emails[1]`): a slot under each field takes the message, the
/// control is marked invalid and focused. Shared by the editors (rules here, the SIM page's
/// quota). `testid(key)` names a slot for tests; `alias(key)` is the slot that shows a field the
/// API names without one of its own; `words(message)` puts the API's codes in words.
export function fieldErrors({ idPrefix = 'field', testid = (key) => `error-${key}`, alias = () => null, words = String } = {}) {
  const slots = new Map(); // API field → { slot, control, open }

  /// A slot for the API's word on `key` about `control` (inside `open`, a <details>, if any).
  function slot(key, control, open) {
    const el = h('p', { class: 'field-error', id: nextId('err'), hidden: true, 'data-field': key, 'data-testid': testid(key) });
    slots.set(key, { slot: el, control, open });
    return el;
  }

  /// A labelled control with its hint and slot (`key`: the API's field name).
  function fieldFor(key, labelText, control, hint, { open, body } = {}) {
    control.id = control.id || nextId(idPrefix);
    const slotEl = slot(key, control, open);
    const hintEl = hint ? h('small', { id: nextId('hint') }, hint) : null;
    control.setAttribute('aria-describedby', [hintEl && hintEl.id, slotEl.id].filter(Boolean).join(' '));
    const label = h('label', { for: control.id }, labelText);
    return { el: h('div', { class: 'field' }, label, body || control, hintEl, slotEl), label, hint: hintEl };
  }

  function clear() {
    for (const { slot: el, control } of slots.values()) {
      el.hidden = true;
      el.textContent = '';
      control.removeAttribute('aria-invalid');
    }
  }

  /// The API's field (`channels.emails[1]`, `target.labels`, …) to the slot that shows it.
  function slotFor(fieldName) {
    if (!fieldName) return null;
    const key = String(fieldName).replace(/\[\d+\]$/, '');
    return slots.get(key) || slots.get(alias(key)) || null;
  }

  /// Shows `err` next to the field it names; false when it names none on show here.
  function show(err) {
    const s = slotFor(err && err.field);
    if (!s || s.slot.parentElement.closest('[hidden]')) return false;
    s.slot.textContent = words(err.message);
    s.slot.hidden = false;
    s.control.setAttribute('aria-invalid', 'true');
    if (s.open) s.open.open = true;
    s.control.focus();
    return true;
  }

  return { slot, fieldFor, clear, show };
}

/// The editor for `rule` (null: a new one). `customers` resolves to the sub-customers
/// ({ id, name }); `onSaved(rule)` gets the API's answer.
export function ruleForm(ctx, rule, customers, { onSaved, onCancel }) {
  const editing = Boolean(rule);
  let version = rule ? rule.version : null;
  const errors = fieldErrors({
    idPrefix: 'rule',
    words: inWords,
    // `condition` is the metric's; `iccid` is the Iccid scalar's own refusal.
    alias: (key) => (key === 'condition' ? 'condition.metric' : key === 'iccid' ? 'target.iccid' : key.startsWith('target.labels') ? 'target.labels' : null),
  });
  const fieldFor = errors.fieldFor;

  // ---- general ---------------------------------------------------------------------------
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '100', autocomplete: 'off', value: rule ? rule.name : '', 'data-testid': 'rule-name-input' });
  const description = h('textarea', { name: 'description', rows: '2', maxlength: '1000' });
  description.value = rule && rule.description ? rule.description : '';
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: rule ? rule.enabled : true, 'data-testid': 'rule-enabled' });
  const severity = select(SEVERITIES, rule ? rule.severity : 'WARNING', { name: 'severity', 'data-testid': 'rule-severity' });

  // ---- target ----------------------------------------------------------------------------
  const target = rule ? rule.target : { kind: 'ALL_SIMS', labels: [] };
  const kind = select(TARGET_KINDS, target.kind, { name: 'targetKind', 'data-testid': 'rule-target-kind' });
  const customer = h('select', { name: 'customerId', 'data-testid': 'rule-customer' }, h('option', { value: target.customerId || '' }, 'Loading sub-customers…'));
  customers
    .then((list) => {
      const options = [['', 'Choose a sub-customer'], ...list.map((c) => [c.id, c.name])];
      if (target.customerId && !list.some((c) => c.id === target.customerId)) options.push([target.customerId, 'A sub-customer not in the list']);
      mount(customer, options.map(([v, l]) => h('option', { value: v, selected: v === (target.customerId || '') }, l)));
    })
    .catch(() => mount(customer, h('option', { value: target.customerId || '' }, 'The sub-customers could not be loaded')));
  const labels = h('input', {
    type: 'text',
    name: 'labels',
    autocomplete: 'off',
    placeholder: 'env=prod, site',
    value: (target.labels || []).map((l) => (l.value ? `${l.key}=${l.value}` : l.key)).join(', '),
    'data-testid': 'rule-labels',
  });
  const tariff = h('input', { type: 'text', name: 'tariffPlan', maxlength: '64', autocomplete: 'off', value: target.tariffPlan || '', 'data-testid': 'rule-tariff' });
  const iccid = h('input', { type: 'text', name: 'iccid', inputmode: 'numeric', autocomplete: 'off', class: 'mono', value: target.sim ? target.sim.iccid : '', 'data-testid': 'rule-iccid' });
  const targetKind = fieldFor('target', 'Watch', kind);
  const targetParts = {
    CUSTOMER: fieldFor('target.customerId', 'Sub-customer', customer),
    LABELS: fieldFor('target.labels', 'Labels', labels, 'Comma-separated; every label must match. A key alone matches any value.'),
    TARIFF_PLAN: fieldFor('target.tariffPlan', 'Tariff plan', tariff, 'The plan’s name, as on the SIMs.'),
    SIM: fieldFor('target.iccid', 'ICCID', iccid, target.kind === 'SIM' && !target.sim ? 'The SIM this rule watches is not visible to you; name it again to save.' : '19 or 20 digits.'),
  };

  // ---- condition -------------------------------------------------------------------------
  // A metric the console does not offer stays chosen for a rule that has it (never changed
  // behind the editor's back).
  const offered = METRICS.filter((m) => m.offer !== false || (rule && rule.metric === m.metric));
  if (rule && !offered.some((m) => m.metric === rule.metric)) offered.push(metricInfo(rule.metric));
  const metric = select(
    offered.map((m) => [m.metric, m.word]),
    rule ? rule.metric : 'DATA_IN_DAY',
    { name: 'metric', 'data-testid': 'rule-metric' },
  );
  const metricHint = h('small', {});
  const metricField = fieldFor('condition.metric', 'When', metric);
  metricField.el.appendChild(metricHint);

  let startUnit = 'MB';
  let startThreshold = '';
  if (rule && rule.threshold !== null && rule.threshold !== undefined) {
    const t = Number(rule.threshold);
    if (isBytes(rule.metric)) {
      startUnit = t >= 1e9 ? 'GB' : 'MB';
      startThreshold = String(Number((t / (startUnit === 'GB' ? 1e9 : 1e6)).toFixed(6)));
    } else startThreshold = String(t);
  }
  const threshold = h('input', { type: 'text', inputmode: 'decimal', name: 'threshold', autocomplete: 'off', value: startThreshold, 'data-testid': 'rule-threshold' });
  const unit = select(BYTE_UNITS.map(([v, l]) => [v, l]), startUnit, { name: 'unit', 'aria-label': 'Unit of the threshold', 'data-testid': 'rule-threshold-unit' });
  // The unit picker sits beside the number (bytes only).
  const thresholdField = fieldFor('condition.threshold', 'Threshold', threshold, null, { body: h('div', { class: 'with-unit' }, threshold, unit) });
  const clear = h('input', { type: 'text', inputmode: 'numeric', name: 'clearThreshold', autocomplete: 'off', value: rule && rule.clearThreshold !== null && rule.clearThreshold !== undefined ? String(rule.clearThreshold) : '', 'data-testid': 'rule-clear-threshold' });
  const clearField = fieldFor('condition.clearThreshold', 'Clears under (hours, optional)', clear, 'Without it, the alert resolves as soon as the SIM is seen again; with it, once it was seen within that many hours.');
  const stateSel = select([['', 'Any state'], ...SIM_STATE_WORDS], rule && rule.state ? rule.state : '', { name: 'state', 'data-testid': 'rule-state' });
  const stateField = fieldFor('condition.state', 'Into state', stateSel);
  // A device's reading (TELEMETRY_ABOVE, TELEMETRY_BELOW): the sensor, the value (decimals, below
  // zero for temperatures) and the optional clear value, in the sensor's unit.
  const hasNumber = (v) => v !== null && v !== undefined;
  const telemetryField = select(
    TELEMETRY_FIELDS.map((f) => [f.field, f.word]),
    rule && rule.field ? rule.field : 'TEMPERATURE',
    { name: 'field', 'data-testid': 'rule-telemetry-field' },
  );
  const telemetryFieldField = fieldFor('condition.field', 'Sensor', telemetryField);
  const telemetryValue = h('input', { type: 'text', inputmode: 'decimal', name: 'value', autocomplete: 'off', value: rule && hasNumber(rule.value) ? String(rule.value) : '', 'data-testid': 'rule-telemetry-value' });
  const telemetryValueField = fieldFor('condition.value', 'Value', telemetryValue, ' ');
  const telemetryClear = h('input', { type: 'text', inputmode: 'decimal', name: 'clearValue', autocomplete: 'off', value: rule && hasNumber(rule.clearValue) ? String(rule.clearValue) : '', 'data-testid': 'rule-telemetry-clear' });
  const telemetryClearField = fieldFor('condition.clearValue', 'Clears at (optional)', telemetryClear, ' ');
  // An anomaly (ANOMALY): the kinds heard of (none ticked: every kind) and the least severity.
  const chosenKinds = new Set(rule && rule.anomalyKinds ? rule.anomalyKinds : []);
  const anomalyBoxes = ANOMALY_KINDS.map(([v, word]) => {
    const box = h('input', { type: 'checkbox', name: 'anomalyKinds', value: v, checked: chosenKinds.has(v), 'data-testid': `rule-anomaly-kind-${v}` });
    return { v, box, el: h('label', { class: 'check' }, box, ` ${word}`) };
  });
  const anomalyKindsSet = h('fieldset', { class: 'field anomaly-kinds', 'data-testid': 'rule-anomaly-kinds' }, h('legend', {}, 'Anomaly kinds'), ...anomalyBoxes.map((b) => b.el), h('small', {}, 'None ticked: every kind.'));
  const anomalyKindsSlot = errors.slot('condition.anomalyKinds', anomalyBoxes[0].box);
  anomalyKindsSet.appendChild(anomalyKindsSlot);
  const anomalySeverity = select(ANOMALY_SEVERITIES, rule && rule.anomalyMinSeverity ? rule.anomalyMinSeverity : 'MEDIUM', { name: 'anomalyMinSeverity', 'data-testid': 'rule-anomaly-severity' });
  const anomalySeverityField = fieldFor('condition.anomalyMinSeverity', 'Severity', anomalySeverity, 'High: every new country, and scores from 20; medium from 10.');
  const eventNote = h('p', { class: 'muted' });

  // ---- channels --------------------------------------------------------------------------
  const inApp = h('input', { type: 'checkbox', name: 'inApp', checked: rule ? rule.inApp : true, 'data-testid': 'rule-inapp' });
  const webhook = h('input', { type: 'checkbox', name: 'webhook', checked: rule ? rule.webhook : false, 'data-testid': 'rule-webhook' });
  const emails = h('input', { type: 'text', name: 'emails', autocomplete: 'off', placeholder: 'noc@example.com, ops@example.com', value: rule ? rule.emails.join(', ') : '', 'data-testid': 'rule-emails' });
  const channelSlot = errors.slot('channels', inApp);
  const emailsField = fieldFor('channels.emails', 'E-mail addresses', emails, 'Comma-separated, up to 10; sent when the server has e-mail configured.');

  // ---- timing ----------------------------------------------------------------------------
  const timing = h('details', { class: 'rule-timing', 'data-testid': 'rule-timing' }, h('summary', {}, 'Timing'));
  const timingInputs = {};
  const timingFields = TIMING.map(([key, labelText, def, hint, zero]) => {
    const value = rule ? rule[key] : def;
    const input = h('input', { type: 'number', name: key, min: '0', step: '1', inputmode: 'numeric', value: String(value), 'data-testid': `rule-${key}` });
    const words = h('span', { class: 'muted duration-words' });
    const say = () => {
      const n = parseNumber(input.value);
      words.textContent = n === null || Number.isNaN(n) || n < 0 ? '' : ` = ${n === 0 ? zero : duration(n)}`;
    };
    input.addEventListener('input', say);
    say();
    timingInputs[key] = input;
    const f = fieldFor(key, labelText, input, hint, { open: timing });
    f.label.appendChild(words);
    return f.el;
  });
  timing.append(h('p', { class: 'muted' }, 'How long a condition must hold and how often people are told. The defaults suit most rules.'), h('div', { class: 'grid rule-grid' }, timingFields));
  if (rule && TIMING.some(([k, , def]) => rule[k] !== def)) timing.open = true;

  // ---- what depends on the metric and the target kind ------------------------------------
  function showMetric() {
    const m = metricInfo(metric.value);
    metricHint.textContent = m.hint || '';
    const bytes = isBytes(m.metric);
    unit.hidden = !bytes;
    thresholdField.el.hidden = !m.unit;
    thresholdField.label.textContent = bytes ? `Threshold (${unit.value})` : `Threshold (${m.unit})`;
    thresholdField.label.dataset.unit = bytes ? unit.value : m.unit || '';
    clearField.el.hidden = m.metric !== 'OFFLINE_HOURS';
    stateField.el.hidden = m.metric !== 'STATE_CHANGED';
    for (const f of [telemetryFieldField, telemetryValueField, telemetryClearField]) f.el.hidden = !m.telemetry;
    anomalyKindsSet.hidden = !m.anomaly;
    anomalySeverityField.el.hidden = !m.anomaly;
    if (m.telemetry) {
      const f = telemetryFieldInfo(telemetryField.value);
      const back = m.above ? 'at or below' : 'at or above';
      telemetryValueField.label.textContent = `Fires ${m.above ? 'above' : 'below'} (${f.unit})`;
      telemetryValueField.label.dataset.unit = f.unit;
      telemetryValueField.hint.textContent = `${f.word} as devices report it: ${f.min} to ${f.max} ${f.unit}; up to two decimals${f.min < 0 ? ', below zero with a minus' : ''}.`;
      telemetryClearField.label.textContent = `Clears ${back} (${f.unit}, optional)`;
      telemetryClearField.label.dataset.unit = f.unit;
      telemetryClearField.hint.textContent = `Without it, the alert resolves once the reading is ${back} the value; with it, only once it is ${back} this (${m.above ? 'below' : 'above'} the value).`;
    }
    eventNote.textContent = m.event
      ? 'An event: its alert opens at once, counts repeats, and resolves after the time under Timing without another.'
      : '';
    eventNote.hidden = !m.event;
    timingInputs.pendingSeconds.disabled = Boolean(m.event);
    if (m.event) timingInputs.pendingSeconds.value = '0';
    const bulk = m.metric === 'BULK_JOB_FINISHED';
    if (bulk) kind.value = 'ALL_SIMS';
    kind.disabled = bulk;
    showTarget();
  }
  function showTarget() {
    for (const [k, f] of Object.entries(targetParts)) f.el.hidden = kind.value !== k;
  }
  telemetryField.addEventListener('change', showMetric);
  metric.addEventListener('change', () => {
    threshold.value = '';
    clear.value = '';
    showMetric();
  });
  unit.addEventListener('change', showMetric);
  kind.addEventListener('change', showTarget);

  // ---- errors ----------------------------------------------------------------------------
  const status = h('div', { 'aria-live': 'assertive', 'data-testid': 'rule-status' });

  function clearErrors() {
    mount(status);
    errors.clear();
  }

  function showError(err) {
    if (errors.show(err)) {
      mount(status, h('p', { class: 'error', role: 'alert' }, 'The rule was not saved: see the message next to the field.'));
      return;
    }
    if (err.code === 'CONFLICT' && editing) {
      const reload = h(
        'button',
        {
          type: 'button',
          'data-testid': 'rule-reload',
          onclick: async () => {
            mount(status, loading('Reading the rule again…'));
            try {
              const fresh = (await ctx.api.gql(RULE, { id: rule.id })).alertRule;
              if (!fresh) {
                mount(status, errorBox('The rule was deleted meanwhile.'));
                return;
              }
              form.replaceWith(ruleForm(ctx, fresh, customers, { onSaved, onCancel }));
            } catch (e) {
              mount(status, errorBox(e));
            }
          },
        },
        'Reload the rule',
      );
      mount(
        status,
        h(
          'div',
          { class: 'error', role: 'alert', 'data-testid': 'rule-conflict' },
          h('p', {}, h('strong', {}, 'Someone else changed this rule after you opened it; your changes were not saved.')),
          h('p', {}, `${err.message}. Reload the rule to see what it is now (the form then shows their version, and your edits are lost), and make your change again.`),
          reload,
        ),
      );
      reload.focus();
      return;
    }
    mount(status, errorBox(err));
  }

  // ---- the input -------------------------------------------------------------------------
  function input() {
    const m = metricInfo(metric.value);
    const condition = { metric: m.metric };
    if (m.unit) {
      const n = parseNumber(threshold.value);
      if (Number.isNaN(n)) throw new FieldError('condition.threshold', `“${threshold.value.trim()}” is not a number.`);
      if (n !== null) {
        if (isBytes(m.metric)) condition.threshold = String(Math.round(n * BYTE_UNITS.find(([v]) => v === unit.value)[2]));
        else if (!Number.isInteger(n)) throw new FieldError('condition.threshold', `Enter a whole number of ${m.unit}.`);
        else condition.threshold = String(n);
      }
    }
    if (m.metric === 'OFFLINE_HOURS') {
      const c = parseNumber(clear.value);
      if (Number.isNaN(c) || (c !== null && !Number.isInteger(c))) throw new FieldError('condition.clearThreshold', 'Enter a whole number of hours, or leave it empty.');
      if (c !== null) condition.clearThreshold = String(c);
    }
    if (m.metric === 'STATE_CHANGED' && stateSel.value) condition.state = stateSel.value;
    if (m.anomaly) {
      condition.anomalyKinds = anomalyBoxes.filter((b) => b.box.checked).map((b) => b.v);
      condition.anomalyMinSeverity = anomalySeverity.value;
    }
    if (m.telemetry) {
      condition.field = telemetryField.value;
      // An empty value is sent as none: the API says what it needs.
      const v = parseNumber(telemetryValue.value);
      if (Number.isNaN(v)) throw new FieldError('condition.value', `“${telemetryValue.value.trim()}” is not a number.`);
      if (v !== null) condition.value = v;
      const c = parseNumber(telemetryClear.value);
      if (Number.isNaN(c)) throw new FieldError('condition.clearValue', `“${telemetryClear.value.trim()}” is not a number; leave it empty for none.`);
      if (c !== null) condition.clearValue = c;
    }

    const t = { kind: kind.value };
    if (t.kind === 'CUSTOMER') t.customerId = customer.value || null;
    if (t.kind === 'LABELS') {
      t.labels = labels.value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((s) => {
          const l = parseLabel(s);
          return l.value ? { key: l.key, value: l.value } : { key: l.key };
        });
    }
    if (t.kind === 'TARIFF_PLAN') t.tariffPlan = tariff.value.trim() || null;
    if (t.kind === 'SIM') {
      const v = iccid.value.replace(/\s+/g, '');
      if (!v) throw new FieldError('target.iccid', 'Name the SIM by its ICCID.');
      t.iccid = v;
    }

    const pacing = {};
    for (const [key] of TIMING) {
      const n = parseNumber(timingInputs[key].value);
      if (n === null || Number.isNaN(n) || !Number.isInteger(n)) throw new FieldError(key, 'Enter a whole number of seconds.');
      pacing[key] = n;
    }
    return {
      name: name.value.trim(),
      description: description.value.trim() || null,
      enabled: enabled.checked,
      severity: severity.value,
      target: t,
      condition,
      channels: {
        inApp: inApp.checked,
        webhook: webhook.checked,
        emails: emails.value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      },
      ...pacing,
    };
  }

  const save = h('button', { type: 'submit', class: 'primary', 'data-testid': 'rule-save' }, editing ? 'Save changes' : 'Create rule');
  const cancel = h('button', { type: 'button', onclick: () => onCancel() }, 'Cancel');
  const general = fieldFor('name', 'Name', name, '1 to 100 characters, unique among the tenant’s rules.');
  const descriptionField = fieldFor('description', 'Description (optional)', description);
  const severityField = fieldFor('severity', 'Severity', severity);

  const form = h(
    'form',
    {
      class: 'card rule-form',
      novalidate: true, // checked by the server, which names the field
      'data-testid': 'rule-form',
      'aria-labelledby': 'rule-form-title',
      onsubmit: async (ev) => {
        ev.preventDefault();
        clearErrors();
        let value;
        try {
          value = input();
        } catch (err) {
          showError(err);
          return;
        }
        save.disabled = true;
        mount(status, loading(editing ? 'Saving…' : 'Creating…'));
        try {
          const data = editing
            ? await ctx.api.gql(UPDATE, { id: rule.id, input: value, version })
            : await ctx.api.gql(CREATE, { tenantId: ctx.tenantId, input: value });
          const saved = editing ? data.updateAlertRule : data.createAlertRule;
          version = saved.version;
          mount(status);
          await onSaved(saved);
        } catch (err) {
          mount(status);
          showError(err);
        } finally {
          save.disabled = false;
        }
      },
    },
    h('h2', { id: 'rule-form-title', tabindex: '-1' }, editing ? `Edit the rule “${rule.name}”` : 'New rule'),
    editing ? h('p', { class: 'muted' }, `Version ${version}; saving checks that no one changed it since.`) : null,
    h(
      'div',
      { class: 'grid rule-grid' },
      general.el,
      severityField.el,
      descriptionField.el,
      h('label', { class: 'inline rule-enabled' }, enabled, ' Enabled: evaluate this rule (turning it off resolves its open alerts quietly)'),
    ),
    h('fieldset', { class: 'group' }, h('legend', {}, 'Which SIMs'), h('div', { class: 'grid rule-grid' }, targetKind.el, Object.values(targetParts).map((f) => f.el))),
    h(
      'fieldset',
      { class: 'group' },
      h('legend', {}, 'Condition'),
      h('div', { class: 'grid rule-grid' }, metricField.el, thresholdField.el, clearField.el, stateField.el, telemetryFieldField.el, telemetryValueField.el, telemetryClearField.el, anomalySeverityField.el),
      anomalyKindsSet,
      eventNote,
    ),
    h(
      'fieldset',
      { class: 'group' },
      h('legend', {}, 'Tell people by'),
      h('div', { class: 'checks' }, h('label', {}, inApp, ' In-app (the tenant’s inbox)'), h('label', {}, webhook, ' Webhook (every enabled endpoint)')),
      channelSlot,
      emailsField.el,
    ),
    timing,
    h('div', { class: 'actions' }, save, cancel),
    status,
  );
  showMetric();
  return form;
}
