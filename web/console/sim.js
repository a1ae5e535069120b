// One SIM (#/sims/<iccid>): what it is, what may be done with it, and what it is doing.
// - overview and state actions: the lifecycle of docs/fleet.md ("SIM states"); a change goes to
//   the network first and is recorded only once the network confirms, so the page redraws from
//   the mutation's answer and shows the API's refusals (CONFLICT, UNAVAILABLE) as they come;
// - the live session, kept current by the `liveSessions(iccid)` subscription;
// - the session history of the last 7 days (troubleshooting), the usage of the last 30 days by
//   day and network (charts.columns), the audit trail;
// - its usage forecast against its quota, and its anomalies (sim-forecast.js);
// - the device it sits in (bind / unbind) and its labels.
// Every part loads on its own, so one failing (say, the usage store) leaves the others usable.

import { h, mount, num, bytes, dateTime, ago, table, errorBox, loading, field, link } from './ui.js';
import { columns as columnsChart } from './charts.js';
import { badge, cursorPager, agoTime, parseLabel, labelDatalist, loadCatalogue } from './fleet.js';
import { loadQuota, startAlerts } from './sim-alerts.js';
import { loadForecast, loadSimAnomalies } from './sim-forecast.js';
import { tickAgo } from './alert-parts.js';

// ---- the operations ------------------------------------------------------------------------

const SIM_FIELDS = `id iccid imsi msisdn type tariffPlan state version activationCode lastNetwork
  lastActivityAt createdAt updatedAt
  customer { id name }
  device { id name imei kind state customer { id name } }
  labels { key value }
  scheduledTransitions { id targetState effectiveAt status requestedBy note createdAt finishedAt outcome }`;
const SIM = `query ConsoleSim($iccid: Iccid!) { sim(iccid: $iccid) { ${SIM_FIELDS} } }`;
const SECRETS = 'query ConsoleSimSecrets($iccid: Iccid!) { sim(iccid: $iccid) { iccid pin puk } }';

const LIVE_FIELDS = `online network { mccMnc name countryCode country } radioAccessType ipAddress
  bytesIn bytesOut startedAt lastUpdateAt`;
const LIVE = `query ConsoleSimLive($iccid: Iccid!) { sim(iccid: $iccid) { iccid liveSession { ${LIVE_FIELDS} } } }`;
const LIVE_SUB = `subscription ConsoleSimLiveSessions($iccid: Iccid!) {
  liveSessions(iccid: $iccid) { iccid addedBytesIn addedBytesOut terminated session { ${LIVE_FIELDS} } }
}`;
const STATE_SUB = `subscription ConsoleSimStateChanged($iccid: Iccid!) {
  simStateChanged(iccid: $iccid) { iccid from to actor at }
}`;
const USAGE = `query ConsoleSimUsage($iccid: Iccid!, $from: DateTime!, $to: DateTime!) {
  sim(iccid: $iccid) { iccid usage(from: $from, to: $to, granularity: DAY) { period network { mccMnc name country } bytesIn bytesOut } }
}`;
const EVENTS = `query ConsoleSimEvents($iccid: Iccid!, $first: Int) {
  sim(iccid: $iccid) { iccid events(first: $first) { id at action actor note oldValue newValue } }
}`;
const HISTORY = `query ConsoleSimSessionHistory($iccid: Iccid!, $mccMnc: MccMnc, $from: DateTime, $first: Int, $after: String) {
  sessionHistory(iccid: $iccid, mccMnc: $mccMnc, from: $from, first: $first, after: $after) {
    nodes {
      at network { mccMnc name country } radioAccessType ipAddress cellId bytesIn bytesOut
      sessionBytesIn sessionBytesOut sessionStartedAt ended
    }
    pageInfo { hasNextPage endCursor }
  }
}`;
const DEVICE_SEARCH = `query ConsoleBindableDevices($tenantId: ID, $filter: DeviceFilter) {
  devices(tenantId: $tenantId, filter: $filter, first: 10) {
    totalCount
    nodes { id name imei kind state customer { id name } sims { iccid } }
  }
}`;

const EFFECTS = 'effects { entityKind reference action }';
const CHANGE_STATE = `mutation ConsoleChangeSimState($iccid: Iccid!, $state: SimState!, $expectedVersion: Int, $effectiveAt: DateTime, $note: String) {
  changeSimState(iccid: $iccid, state: $state, expectedVersion: $expectedVersion, effectiveAt: $effectiveAt, note: $note) {
    sim { iccid state version }
    scheduled { id targetState effectiveAt status }
    ${EFFECTS}
  }
}`;
const LOCATION_UPDATE = `mutation ConsoleRequestLocationUpdate($iccid: Iccid!, $note: String) {
  requestLocationUpdate(iccid: $iccid, note: $note) { iccid state version }
}`;
const CANCEL_SCHEDULE = `mutation ConsoleCancelScheduledTransition($id: ID!, $note: String) {
  cancelScheduledTransition(id: $id, note: $note) { id status outcome }
}`;
const BIND = `mutation ConsoleBindSim($iccid: Iccid!, $deviceId: ID!, $note: String) {
  bindSim(iccid: $iccid, deviceId: $deviceId, note: $note) { sim { iccid version } device { id name } ${EFFECTS} }
}`;
const UNBIND = `mutation ConsoleUnbindSim($iccid: Iccid!, $note: String) {
  unbindSim(iccid: $iccid, note: $note) { sim { iccid version } ${EFFECTS} }
}`;
const LABELS = `mutation ConsoleChangeSimLabels($iccid: Iccid!, $change: LabelChangeInput!, $expectedVersion: Int, $note: String) {
  changeSimLabels(iccid: $iccid, change: $change, expectedVersion: $expectedVersion, note: $note) {
    sim { iccid version labels { key value } }
    ${EFFECTS}
  }
}`;

// ---- the lifecycle (docs/fleet.md, "SIM states"; the API has no field listing the moves) ---

const NEXT = {
  INVENTORY: ['ACTIVE', 'TERMINATED'],
  ACTIVE: ['SUSPENDED', 'LOST_STOLEN', 'TERMINATED'],
  SUSPENDED: ['ACTIVE', 'LOST_STOLEN', 'TERMINATED'],
  LOST_STOLEN: ['SUSPENDED', 'TERMINATED'],
  TERMINATED: [],
};
const TARGETS = ['ACTIVE', 'SUSPENDED', 'LOST_STOLEN', 'TERMINATED'];
const ROLE_REASON = 'only operators and admins change states';

function verb(from, to) {
  if (to === 'ACTIVE') return from === 'SUSPENDED' ? 'Resume' : 'Activate';
  if (to === 'SUSPENDED') return from === 'LOST_STOLEN' ? 'Found: suspend' : 'Suspend';
  if (to === 'LOST_STOLEN') return 'Report lost or stolen';
  return 'Terminate';
}

/// What the network is asked to do for a move (docs/fleet.md, "The network confirms first").
function networkAction(from, to) {
  if (to === 'ACTIVE') return from === 'SUSPENDED' ? 'RESUME' : 'ACTIVATE';
  if (to === 'SUSPENDED') return 'SUSPEND';
  if (to === 'LOST_STOLEN') return 'REPORT_LOST_STOLEN';
  return 'TERMINATE';
}

/// Why a move cannot be made from here (null when it can).
function moveRefusal(from, to) {
  if (from === to) return `The SIM is already ${to}.`;
  if (NEXT[from] && NEXT[from].includes(to)) return null;
  const allowed = (NEXT[from] || []).join(', ') || 'none (TERMINATED is final)';
  return `${from} → ${to} is not allowed; from ${from}: ${allowed}.`;
}

// ---- small helpers -------------------------------------------------------------------------

const dash = () => h('span', { class: 'muted' }, '—');

/// The exact sum of two BigInt scalars (they arrive as numbers or strings).
function addBig(a, b) {
  try {
    return (BigInt(String(a ?? 0)) + BigInt(String(b ?? 0))).toString();
  } catch {
    return String(Number(a || 0) + Number(b || 0));
  }
}

function networkText(n) {
  if (!n) return '—';
  return [n.mccMnc, n.name, n.country || n.countryCode].filter(Boolean).join(' · ');
}

function effectsText(effects) {
  if (!effects || !effects.length) return '';
  return ` Effects: ${effects.map((e) => `${e.action} ${e.reference}`).join(', ')}.`;
}

function valueText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 119)}…` : s;
}

/// An audit entry's change in one line: the keys that differ, old → new.
function changeText(oldV, newV) {
  const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
  if (isObj(oldV) && isObj(newV)) {
    const keys = [...new Set([...Object.keys(oldV), ...Object.keys(newV)])];
    const parts = keys
      .filter((k) => JSON.stringify(oldV[k]) !== JSON.stringify(newV[k]))
      .map((k) => `${k}: ${valueText(oldV[k])} → ${valueText(newV[k])}`);
    if (parts.length) return parts.join('; ');
    return Object.keys(newV).length ? valueText(newV) : '—';
  }
  if (isObj(newV) && (oldV === null || oldV === undefined)) return valueText(newV);
  return `${valueText(oldV)} → ${valueText(newV)}`;
}

function dl(pairs) {
  return h(
    'dl',
    { class: 'props' },
    pairs.filter(Boolean).map(([k, v, attrs]) => [h('dt', {}, k), h('dd', attrs || {}, v === null || v === undefined || v === '' ? dash() : v)]),
  );
}

let uid = 0;
const nextId = (p) => `${p}-${(uid += 1)}`;

/// An inline confirmation: what will happen, an optional note (and time), Confirm / Cancel.
/// `run(note, effectiveAt)` does the work and throws the API's error, shown in the panel.
function confirmPanel({ title, detail, warning, confirmLabel, danger, withWhen, run, onClose, testid }) {
  const note = h('input', { type: 'text', name: 'note', maxlength: '500', autocomplete: 'off', placeholder: 'why (kept in the audit trail)' });
  const when = withWhen ? h('input', { type: 'datetime-local', name: 'effectiveAt' }) : null;
  const status = h('div', { 'aria-live': 'assertive' });
  const go = h('button', { type: 'submit', class: danger ? 'primary danger-confirm' : 'primary' }, confirmLabel);
  const cancel = h('button', { type: 'button', onclick: () => onClose() }, 'Cancel');
  const form = h(
    'form',
    {
      class: 'confirm notice',
      'data-testid': testid,
      'aria-label': title,
      onsubmit: async (ev) => {
        ev.preventDefault();
        go.disabled = true;
        cancel.disabled = true;
        mount(status, loading('Asking the network…'));
        let at = null;
        if (when && when.value) {
          const d = new Date(when.value);
          if (Number.isNaN(d.getTime())) {
            mount(status, errorBox('That time is not valid.'));
            go.disabled = false;
            cancel.disabled = false;
            return;
          }
          at = d.toISOString();
        }
        try {
          await run(note.value.trim() || null, at);
        } catch (err) {
          mount(status, errorBox(err));
          go.disabled = false;
          cancel.disabled = false;
        }
      },
    },
    h('p', {}, h('strong', {}, title)),
    detail ? h('p', {}, detail) : null,
    warning ? h('p', { class: 'warning' }, warning) : null,
    field('Note (optional)', note),
    when ? field('When (optional)', when, 'Leave empty to change now; a later time schedules the change.') : null,
    h('div', { class: 'actions' }, go, cancel),
    status,
  );
  setTimeout(() => note.focus(), 0);
  return form;
}

// ---- the page ------------------------------------------------------------------------------

export async function render(main, ctx) {
  const iccid = ctx.params.iccid;
  const manage = Boolean(ctx.caps.manageFleet);
  let alive = true;
  const stops = [];
  ctx.onLeave(() => {
    alive = false;
    stops.forEach((fn) => fn());
  });

  mount(main, h('p', {}, link('/sims', '← All SIMs')), h('h1', {}, 'SIM ', h('span', { class: 'mono' }, iccid)), loading('Loading the SIM…'));

  let sim;
  try {
    sim = (await ctx.api.gql(SIM, { iccid })).sim;
  } catch (err) {
    if (!alive) return;
    mount(main, h('p', {}, link('/sims', '← All SIMs')), h('h1', {}, 'SIM ', h('span', { class: 'mono' }, iccid)), errorBox(err));
    main.dataset.ready = 'sim';
    return;
  }
  if (!alive) return;
  if (!sim) {
    mount(
      main,
      h('p', {}, link('/sims', '← All SIMs')),
      h('h1', {}, 'SIM not found'),
      h('p', { 'data-testid': 'sim-missing' }, `No SIM ${iccid} is visible to you.`),
      h('p', { class: 'muted' }, 'It may not exist, belong to another tenant or sub-customer, or SIM data may not be shared with you.'),
    );
    main.dataset.ready = 'sim';
    return;
  }

  const catalogue = manage ? await loadCatalogue(ctx) : [];
  if (!alive) return;

  // The parts of the page, each redrawn on its own.
  const overview = h('section', { class: 'card', 'data-testid': 'sim-header' });
  const actions = h('section', { class: 'card', 'data-testid': 'sim-actions' });
  const message = h('div', { 'aria-live': 'polite', 'data-testid': 'sim-message' });
  const live = h('section', { class: 'card live-session', 'data-testid': 'live-session', dataset: { online: 'false', updates: '0' } });
  const deviceCard = h('section', { class: 'card', 'data-testid': 'sim-device' });
  const labelsCard = h('section', { class: 'card', 'data-testid': 'sim-labels' });
  const quotaCard = h('section', { class: 'card', 'data-testid': 'sim-quota' });
  const alertsCard = ctx.caps.readAlerts ? h('section', { class: 'card', 'data-testid': 'sim-alerts-card' }) : null;
  const forecastCard = h('section', { class: 'card', 'data-testid': 'sim-forecast' });
  const anomaliesCard = h('section', { class: 'card', 'data-testid': 'sim-anomalies-card' });
  const usageCard = h('section', { class: 'card', 'data-testid': 'sim-usage' });
  const historyCard = h('section', { class: 'card', 'data-testid': 'sim-history' });
  const auditCard = h('section', { class: 'card', 'data-testid': 'sim-audit' });

  mount(
    main,
    h('p', {}, link('/sims', '← All SIMs')),
    h('h1', {}, 'SIM ', h('span', { class: 'mono' }, sim.iccid)),
    message,
    h('div', { class: 'grid' }, overview, actions),
    live,
    h('div', { class: 'grid' }, quotaCard, alertsCard),
    forecastCard,
    anomaliesCard,
    h('div', { class: 'grid' }, deviceCard, labelsCard),
    usageCard,
    historyCard,
    auditCard,
  );

  // ---- overview --------------------------------------------------------------------------

  function drawOverview() {
    const secrets = h('div', {});
    mount(
      secrets,
      h(
        'button',
        {
          type: 'button',
          onclick: async () => {
            mount(secrets, loading());
            try {
              const s = (await ctx.api.gql(SECRETS, { iccid })).sim;
              if (!alive) return;
              mount(
                secrets,
                dl([
                  ['PIN', s && s.pin ? h('span', { class: 'mono' }, s.pin) : null],
                  ['PUK', s && s.puk ? h('span', { class: 'mono' }, s.puk) : null],
                ]),
                h('small', {}, 'In clear for tenant admins only; masked for everyone else.'),
              );
            } catch (err) {
              mount(secrets, errorBox(err));
            }
          },
        },
        'Show PIN and PUK',
      ),
    );
    mount(
      overview,
      h('h2', {}, 'Overview'),
      dl([
        ['ICCID', h('span', { class: 'mono' }, sim.iccid), { 'data-testid': 'sim-iccid' }],
        ['MSISDN', sim.msisdn, { 'data-testid': 'sim-msisdn' }],
        ['State', badge(sim.state), { 'data-testid': 'sim-state', 'data-value': sim.state }],
        ['Type', sim.type, { 'data-testid': 'sim-type' }],
        ['Tariff plan', sim.tariffPlan, { 'data-testid': 'sim-tariff' }],
        ['Sub-customer', sim.customer ? sim.customer.name : h('span', { class: 'muted' }, 'none (held by the tenant)'), { 'data-testid': 'sim-customer' }],
        ['Version', String(sim.version), { 'data-testid': 'sim-version', 'data-value': String(sim.version) }],
        ['IMSI', h('span', { class: 'mono' }, sim.imsi)],
        ['Activation code', sim.activationCode],
        ['Last network', sim.lastNetwork],
        ['Last activity', agoTime(sim.lastActivityAt)],
        ['Created', dateTime(sim.createdAt)],
        ['Last changed', dateTime(sim.updatedAt)],
      ]),
      h('details', { class: 'secrets' }, h('summary', {}, 'PIN and PUK'), secrets),
    );
  }

  // ---- state actions ---------------------------------------------------------------------

  let panel = null; // the open confirmation, if any
  let ownMove = null; // the state this page just asked for (its event is not news)

  function drawActions() {
    const from = sim.state;
    const buttons = TARGETS.map((to) => {
      const refusal = moveRefusal(from, to);
      const reason = refusal || (manage ? null : `Not available: ${ROLE_REASON}.`);
      const hintId = nextId('why');
      const button = h(
        'button',
        {
          type: 'button',
          class: to === 'TERMINATED' || to === 'LOST_STOLEN' ? 'danger' : null,
          disabled: Boolean(reason),
          title: reason || `${from} → ${to}; the network is asked to ${networkAction(from, to)}`,
          'aria-describedby': reason ? hintId : null,
          'data-testid': `state-action-${to}`,
          dataset: { state: to },
          onclick: () => openStateConfirm(to),
        },
        verb(from, to),
      );
      return h('div', { class: 'state-action' }, button, reason ? h('small', { id: hintId, class: 'why' }, reason) : null);
    });

    const locReason = !manage
      ? `Not available: only operators and admins request location updates.`
      : ['ACTIVE', 'SUSPENDED'].includes(from)
        ? null
        : `Only ACTIVE or SUSPENDED SIMs can be asked to attach again; this one is ${from}.`;
    const locHint = nextId('why');
    const location = h(
      'div',
      { class: 'state-action' },
      h(
        'button',
        {
          type: 'button',
          disabled: Boolean(locReason),
          title: locReason || 'The network cancels the SIM’s location, so its device attaches again',
          'aria-describedby': locReason ? locHint : null,
          'data-testid': 'location-update',
          onclick: openLocationConfirm,
        },
        'Request location update',
      ),
      locReason ? h('small', { id: locHint, class: 'why' }, locReason) : null,
    );

    const pending = sim.scheduledTransitions.filter((t) => t.status === 'PENDING');
    const done = sim.scheduledTransitions.filter((t) => t.status !== 'PENDING');
    const panelHost = h('div', { class: 'confirm-host' });
    mount(
      actions,
      h('h2', {}, 'State'),
      h('p', {}, 'Now ', badge(from), from === 'TERMINATED' ? ' — final; nothing more can be done with this SIM.' : null),
      manage ? null : h('p', { class: 'muted', 'data-testid': 'actions-role-hint' }, `You may look but not change: ${ROLE_REASON}.`),
      h('div', { class: 'state-actions' }, buttons, location),
      panelHost,
      pending.length
        ? h(
            'div',
            { 'data-testid': 'scheduled-transitions' },
            h('h3', {}, 'Scheduled'),
            h(
              'ul',
              { class: 'plain' },
              pending.map((t) =>
                h(
                  'li',
                  { dataset: { scheduleId: t.id } },
                  badge(t.targetState),
                  ` on ${dateTime(t.effectiveAt)} (asked by ${t.requestedBy}${t.note ? `: ${t.note}` : ''}) `,
                  manage
                    ? h(
                        'button',
                        {
                          type: 'button',
                          onclick: async (ev) => {
                            const button = ev.currentTarget;
                            button.disabled = true;
                            try {
                              await ctx.api.gql(CANCEL_SCHEDULE, { id: t.id, note: null });
                              say(`The scheduled move to ${t.targetState} is cancelled.`);
                              await refreshAll();
                            } catch (err) {
                              say(err, true);
                              button.disabled = false;
                            }
                          },
                        },
                        'Cancel schedule',
                      )
                    : null,
                ),
              ),
            ),
          )
        : null,
      done.length
        ? h(
            'details',
            {},
            h('summary', {}, `Earlier schedules (${done.length})`),
            table(
              [
                { label: 'To', value: (t) => badge(t.targetState) },
                { label: 'For', value: (t) => dateTime(t.effectiveAt) },
                { label: 'Status', value: (t) => badge(t.status) },
                { label: 'Outcome', value: (t) => t.outcome || dash() },
                { label: 'Asked by', value: (t) => t.requestedBy },
              ],
              done,
            ),
          )
        : null,
    );
    if (panel) panelHost.append(panel);
    actions.panelHost = panelHost;
  }

  function openPanel(p) {
    panel = p;
    mount(actions.panelHost, p);
  }
  function closePanel() {
    panel = null;
    if (actions.panelHost) mount(actions.panelHost);
  }

  function openStateConfirm(to) {
    const from = sim.state;
    const version = sim.version;
    openPanel(
      confirmPanel({
        testid: 'state-confirm',
        title: `${verb(from, to)} SIM ${sim.iccid}?`,
        detail: `${from} → ${to}. The network is asked to ${networkAction(from, to)} first; the SIM changes only when it confirms.`,
        warning:
          to === 'TERMINATED'
            ? 'Terminating is final: the SIM can never be used again and is taken out of its device.'
            : to === 'LOST_STOLEN'
              ? 'The SIM is barred until it is found (then it comes back suspended).'
              : null,
        confirmLabel: `Confirm: ${verb(from, to)}`,
        danger: to === 'TERMINATED',
        withWhen: true,
        onClose: closePanel,
        run: async (note, effectiveAt) => {
          // A move made now is ours when its event arrives; a scheduled one is the scheduler's.
          ownMove = effectiveAt ? null : to;
          let r;
          try {
            r = (await ctx.api.gql(CHANGE_STATE, { iccid, state: to, expectedVersion: version, effectiveAt, note })).changeSimState;
          } catch (err) {
            ownMove = null;
            throw err;
          }
          if (r.scheduled) ownMove = null;
          closePanel();
          if (r.scheduled) say(`Scheduled: ${to} on ${dateTime(r.scheduled.effectiveAt)}. It can be cancelled until then.`);
          else say(`The network confirmed: the SIM is now ${r.sim.state}.${effectsText(r.effects)}`);
          await refreshAll();
        },
      }),
    );
  }

  function openLocationConfirm() {
    openPanel(
      confirmPanel({
        testid: 'location-confirm',
        title: `Request a location update for SIM ${sim.iccid}?`,
        detail: 'The network cancels the SIM’s current location so its device attaches again — a remedy for a device stuck on a network.',
        confirmLabel: 'Confirm: request location update',
        onClose: closePanel,
        run: async (note) => {
          await ctx.api.gql(LOCATION_UPDATE, { iccid, note });
          closePanel();
          say('The network accepted the location update; the device should attach again shortly.');
          await refreshAll();
        },
      }),
    );
  }

  /// A message above the page's parts: what an action did, or the API's error.
  function say(what, isError = false) {
    if (!alive) return;
    if (isError) mount(message, errorBox(what));
    else mount(message, h('div', { class: 'notice', role: 'status' }, what));
  }

  // ---- device binding --------------------------------------------------------------------

  function drawDevice() {
    const d = sim.device;
    const parts = [h('h2', {}, 'Device')];
    if (d) {
      parts.push(
        dl([
          ['Name', link(`/devices?imei=${encodeURIComponent(d.imei)}`, d.name), { 'data-testid': 'device-name' }],
          ['IMEI', h('span', { class: 'mono' }, d.imei)],
          ['Kind', d.kind],
          ['State', badge(d.state)],
          ['Sub-customer', d.customer ? d.customer.name : h('span', { class: 'muted' }, 'none')],
        ]),
        h('p', {}, link(`/sims?device=${encodeURIComponent(d.id)}`, 'All SIMs in this device')),
      );
      if (manage) {
        const host = h('div', {});
        parts.push(
          h(
            'button',
            {
              type: 'button',
              'data-testid': 'unbind',
              onclick: () =>
                mount(
                  host,
                  confirmPanel({
                    testid: 'unbind-confirm',
                    title: `Take SIM ${sim.iccid} out of ${d.name}?`,
                    detail: 'The SIM keeps its state; only the binding is removed.',
                    confirmLabel: 'Confirm: unbind',
                    onClose: () => mount(host),
                    run: async (note) => {
                      const r = (await ctx.api.gql(UNBIND, { iccid, note })).unbindSim;
                      say(`The SIM is no longer in ${d.name}.${effectsText(r.effects)}`);
                      await refreshAll();
                    },
                  }),
                ),
            },
            'Unbind from this device',
          ),
          host,
        );
      } else {
        parts.push(h('small', {}, 'Only operators and admins bind and unbind SIMs.'));
      }
    } else {
      parts.push(h('p', { 'data-testid': 'device-none' }, 'Not in a device.'));
      if (!manage) parts.push(h('small', {}, 'Only operators and admins bind and unbind SIMs.'));
      else if (sim.state === 'TERMINATED') parts.push(h('small', {}, 'A terminated SIM cannot be put into a device.'));
      else parts.push(bindForm());
    }
    mount(deviceCard, ...parts);
  }

  /// Finds a device by name or IMEI and binds the SIM to it.
  function bindForm() {
    const q = h('input', { type: 'search', name: 'device', autocomplete: 'off', placeholder: 'name or IMEI', 'data-testid': 'bind-search' });
    const note = h('input', { type: 'text', name: 'note', autocomplete: 'off', placeholder: 'optional' });
    const found = h('div', { 'aria-live': 'polite' });
    const search = async () => {
      const text = q.value.trim();
      const digits = text.replace(/[\s-]/g, '');
      const filter = { states: ['REGISTERED', 'IN_SERVICE', 'MAINTENANCE'] };
      if (/^\d+$/.test(digits)) filter.imeiPrefix = digits;
      else if (text) filter.nameContains = text;
      mount(found, loading('Looking for devices…'));
      try {
        const conn = (await ctx.api.gql(DEVICE_SEARCH, { tenantId: ctx.tenantId, filter })).devices;
        if (!alive) return;
        mount(
          found,
          table(
            [
              { label: 'Name', value: (d) => d.name },
              { label: 'IMEI', value: (d) => h('span', { class: 'mono' }, d.imei) },
              { label: 'State', value: (d) => badge(d.state) },
              { label: 'Sub-customer', value: (d) => (d.customer ? d.customer.name : h('span', { class: 'muted' }, 'none')) },
              { label: 'SIMs', value: (d) => num(d.sims.length), num: true },
              {
                label: 'Action',
                value: (d) => {
                  // A device of a sub-customer takes only that sub-customer's SIMs.
                  const clash = d.customer && (!sim.customer || sim.customer.id !== d.customer.id);
                  const why = clash ? `${d.name} belongs to ${d.customer.name} and takes only its SIMs.` : null;
                  return h(
                    'button',
                    {
                      type: 'button',
                      disabled: Boolean(why),
                      title: why || `Put SIM ${sim.iccid} into ${d.name}`,
                      dataset: { deviceId: d.id },
                      onclick: async (ev) => {
                        const button = ev.currentTarget;
                        button.disabled = true;
                        try {
                          const r = (await ctx.api.gql(BIND, { iccid, deviceId: d.id, note: note.value.trim() || null })).bindSim;
                          say(`The SIM is now in ${r.device.name}.${effectsText(r.effects)}`);
                          await refreshAll();
                        } catch (err) {
                          say(err, true);
                          button.disabled = false;
                        }
                      },
                    },
                    why ? 'Not possible' : 'Bind',
                  );
                },
              },
            ],
            conn.nodes,
            {
              caption: `${num(conn.totalCount)} device${conn.totalCount === 1 ? '' : 's'} found${conn.totalCount > conn.nodes.length ? `, the first ${conn.nodes.length} shown: narrow the search` : ''}; retired devices take no SIM and are not listed`,
              empty: 'No device matches.',
              testid: 'bind-results',
            },
          ),
        );
      } catch (err) {
        mount(found, errorBox(err));
      }
    };
    return h(
      'form',
      {
        class: 'bind-form',
        'aria-label': 'Find a device to bind the SIM to',
        onsubmit: (ev) => {
          ev.preventDefault();
          search();
        },
      },
      h('div', { class: 'toolbar' }, field('Find a device', q), field('Note', note), h('button', { type: 'submit' }, 'Search')),
      found,
    );
  }

  // ---- labels ----------------------------------------------------------------------------

  function drawLabels() {
    const status = h('div', { 'aria-live': 'polite' });
    const change = async (changeInput, done) => {
      mount(status, loading('Saving…'));
      try {
        const r = (await ctx.api.gql(LABELS, { iccid, change: changeInput, expectedVersion: sim.version, note: null })).changeSimLabels;
        sim.labels = r.sim.labels;
        sim.version = r.sim.version;
        done();
        await refreshAll();
      } catch (err) {
        mount(status, errorBox(err));
      }
    };
    const chips = sim.labels.map((l) =>
      h(
        'span',
        { class: 'chip', dataset: { key: l.key, value: l.value } },
        `${l.key}=${l.value}`,
        manage
          ? h(
              'button',
              {
                type: 'button',
                class: 'chip-remove',
                'aria-label': `Remove label ${l.key}`,
                title: `Remove label ${l.key}`,
                onclick: (ev) => {
                  ev.currentTarget.disabled = true;
                  change({ remove: [l.key] }, () => {});
                },
              },
              '×',
            )
          : null,
      ),
    );
    let form = null;
    if (manage) {
      const keysId = nextId('label-keys');
      const valuesId = nextId('label-values');
      const values = h('datalist', { id: valuesId });
      const key = h('input', {
        type: 'text',
        name: 'key',
        list: keysId,
        required: true,
        maxlength: '63',
        pattern: '[A-Za-z0-9_.\\/\\-]{1,63}',
        autocomplete: 'off',
        'data-testid': 'label-key',
        oninput: () => {
          // Offer the catalogue's values of the key typed, or a "key=value" pasted whole.
          const s = catalogue.find((c) => c.key === key.value.trim());
          mount(values, (s ? s.values : []).map((v) => h('option', { value: v })));
        },
      });
      const value = h('input', { type: 'text', name: 'value', list: valuesId, maxlength: '255', autocomplete: 'off', 'data-testid': 'label-value' });
      form = h(
        'form',
        {
          class: 'label-form',
          'aria-label': 'Add or change a label',
          onsubmit: (ev) => {
            ev.preventDefault();
            let k = key.value.trim();
            let v = value.value.trim();
            if (k.includes('=') && !v) ({ key: k, value: v = '' } = parseLabel(k));
            if (!k) return;
            change({ set: [{ key: k, value: v }] }, () => {
              key.value = '';
              value.value = '';
            });
          },
        },
        h(
          'div',
          { class: 'toolbar' },
          field('Key', key),
          field('Value', value),
          h('button', { type: 'submit', class: 'primary' }, 'Set label'),
        ),
        labelDatalist(keysId, catalogue, { withValues: false }),
        values,
        h('small', {}, 'Keys: 1–63 letters, digits, _ - . /; setting an existing key changes its value. Suggestions come from the label catalogue.'),
      );
    }
    mount(
      labelsCard,
      h('h2', {}, 'Labels'),
      chips.length ? h('div', { class: 'chips', 'data-testid': 'label-chips' }, chips) : h('p', { class: 'empty', 'data-testid': 'label-chips' }, 'No labels.'),
      form || h('small', {}, 'Only operators and admins change labels.'),
      status,
    );
  }

  // ---- live session ----------------------------------------------------------------------

  let liveSession = null;
  let liveUpdates = 0;
  const liveStatus = h('small', { class: 'live-status', 'aria-live': 'polite' }, 'Connecting to live updates…');

  function drawLive(s) {
    liveSession = s;
    const online = Boolean(s && s.online);
    live.dataset.online = String(online);
    const total = s ? addBig(s.bytesIn, s.bytesOut) : '0';
    mount(
      live,
      h('h2', {}, h('span', { class: `live-dot${online ? ' on' : ''}`, 'aria-hidden': 'true' }), 'Live session ', h('span', { class: `badge ${online ? 'badge-ONLINE' : ''}` }, online ? 'online' : 'offline')),
      s ? null : h('p', { class: 'muted' }, 'No data session in the last 7 days.'),
      dl([
        ['Network', s ? networkText(s.network) : null, { 'data-testid': 'live-network', 'data-value': s ? s.network.mccMnc : '' }],
        ['Radio access', s ? s.radioAccessType : null, { 'data-testid': 'live-rat' }],
        ['IP address', s && s.ipAddress ? h('span', { class: 'mono' }, s.ipAddress) : null, { 'data-testid': 'live-ip' }],
        [
          'Data this session',
          s ? `${bytes(total)} (from the device ${bytes(s.bytesIn)}, to it ${bytes(s.bytesOut)})` : null,
          { 'data-testid': 'live-bytes', 'data-value': total },
        ],
        ['Started', s ? dateTime(s.startedAt) : null, { 'data-testid': 'live-started', 'data-value': s ? s.startedAt : '' }],
        [
          'Last update',
          s ? h('span', {}, dateTime(s.lastUpdateAt), ' (', h('span', { class: 'live-ago' }, ago(s.lastUpdateAt)), ')') : null,
          { 'data-testid': 'live-updated', 'data-value': s ? s.lastUpdateAt : '' },
        ],
      ]),
      liveStatus,
    );
  }

  function flashLive() {
    live.classList.remove('flash');
    void live.offsetWidth; // restart the animation
    live.classList.add('flash');
  }
  live.addEventListener('animationend', () => live.classList.remove('flash'));

  // New traffic moves the quota: read it again a moment later (the quota is evaluated shortly
  // after the count), at most once per two seconds.
  let quotaTimer = null;
  function quotaSoon() {
    if (quotaTimer) return;
    quotaTimer = setTimeout(() => {
      quotaTimer = null;
      loadQuota(ctx, iccid, quotaCard, () => alive);
    }, 2000);
  }
  stops.push(() => clearTimeout(quotaTimer));

  function startLive() {
    drawLive(null);
    mount(live, loading('Loading the live session…'));
    // Subscribe first, then read the current session, so no update falls between the two; an
    // update that beats the read wins (it is newer).
    const stop = ctx.api.subscribe(
      LIVE_SUB,
      { iccid },
      (data) => {
        if (!alive || !data || !data.liveSessions) return;
        liveUpdates += 1;
        live.dataset.updates = String(liveUpdates);
        liveStatus.textContent = `Following live updates: ${liveUpdates} received, the last ${new Date().toLocaleTimeString('en-GB')}.`;
        drawLive(data.liveSessions.session);
        flashLive();
        quotaSoon();
      },
      (err) => {
        if (alive) liveStatus.textContent = `Live updates stopped: ${err.message || err}${err.code ? ` (${err.code})` : ''}. Reload the page to try again.`;
      },
    );
    stops.push(stop);
    liveStatus.textContent = 'Following live updates.';
    ctx.api
      .gql(LIVE, { iccid })
      .then((data) => {
        if (!alive || liveUpdates > 0) return;
        drawLive(data.sim ? data.sim.liveSession : null);
      })
      .catch((err) => {
        if (!alive || liveUpdates > 0) return;
        mount(live, h('h2', {}, 'Live session'), errorBox(err), liveStatus);
      });
    // Keep "… ago" honest while the page is open.
    const timer = setInterval(() => {
      const el = live.querySelector('.live-ago');
      if (el && liveSession) el.textContent = ago(liveSession.lastUpdateAt);
    }, 10000);
    stops.push(() => clearInterval(timer));
  }

  // ---- session history -------------------------------------------------------------------

  function startHistory() {
    const input = h('input', {
      type: 'text',
      name: 'mccMnc',
      placeholder: '262-01',
      autocomplete: 'off',
      inputmode: 'numeric',
      'data-testid': 'history-mccmnc',
    });
    const results = h('div', { 'aria-live': 'polite' });
    let cursors = [null];
    let seq = 0;
    let from = null;
    let network = null;
    const size = 25;

    async function load() {
      seq += 1;
      const mine = seq;
      results.setAttribute('aria-busy', 'true');
      if (!results.firstChild) mount(results, loading('Loading session updates…'));
      let conn;
      try {
        conn = (await ctx.api.gql(HISTORY, { iccid, mccMnc: network, from, first: size, after: cursors[cursors.length - 1] })).sessionHistory;
      } catch (err) {
        if (!alive || mine !== seq) return;
        results.removeAttribute('aria-busy');
        mount(results, errorBox(err));
        return;
      }
      if (!alive || mine !== seq) return;
      results.removeAttribute('aria-busy');
      mount(
        results,
        table(
          [
            { label: 'Time', value: (r) => dateTime(r.at) },
            { label: 'Network', value: (r) => networkText(r.network) },
            { label: 'RAT', value: (r) => r.radioAccessType },
            { label: 'IP address', value: (r) => (r.ipAddress ? h('span', { class: 'mono' }, r.ipAddress) : dash()) },
            { label: 'Cell', value: (r) => r.cellId || dash() },
            { label: 'From device', value: (r) => bytes(r.bytesIn), num: true },
            { label: 'To device', value: (r) => bytes(r.bytesOut), num: true },
            { label: 'Session so far', value: (r) => bytes(addBig(r.sessionBytesIn, r.sessionBytesOut)), num: true },
            { label: 'Session started', value: (r) => dateTime(r.sessionStartedAt) },
            { label: 'Ended', value: (r) => (r.ended ? 'ended' : '') },
          ],
          conn.nodes,
          {
            caption: `Session updates of the last 7 days${network ? ` on ${network}` : ''}, newest first`,
            empty: network ? `No session updates on ${network} in the last 7 days.` : 'No session updates in the last 7 days.',
            testid: 'history-table',
          },
        ),
        cursorPager({
          pageInfo: conn.pageInfo,
          page: cursors.length - 1,
          size,
          shown: conn.nodes.length,
          noun: 'session updates',
          testid: 'history-pager',
          onFirst: () => {
            cursors = [null];
            load();
          },
          onPrevious: () => {
            if (cursors.length > 1) cursors.pop();
            load();
          },
          onNext: (c) => {
            cursors.push(c);
            load();
          },
        }),
      );
    }

    function apply() {
      network = input.value.trim() || null;
      from = new Date(Date.now() - 7 * 86400000).toISOString();
      cursors = [null];
      load();
    }

    mount(
      historyCard,
      h('h2', {}, 'Session history'),
      h('p', { class: 'muted' }, 'Every update the network reported in the last 7 days, for troubleshooting (usage for billing is the chart above).'),
      h(
        'form',
        {
          class: 'toolbar',
          'aria-label': 'Filter the session history',
          onsubmit: (ev) => {
            ev.preventDefault();
            apply();
          },
        },
        field('Network (MCC-MNC)', input, 'e.g. 262-01; empty for every network'),
        h('button', { type: 'submit', class: 'primary' }, 'Show'),
        h(
          'button',
          {
            type: 'button',
            onclick: () => {
              input.value = '';
              apply();
            },
          },
          'All networks',
        ),
      ),
      results,
    );
    apply();
  }

  // ---- usage chart -----------------------------------------------------------------------

  async function loadUsage() {
    // 30 whole UTC days up to and including today (sim.usage periods are UTC).
    const now = new Date();
    const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    const from = new Date(to.getTime() - 30 * 86400000);
    const title = 'Data per day and network, last 30 days (UTC)';
    mount(usageCard, h('h2', {}, 'Usage'), loading('Loading usage…'));
    let points;
    try {
      points = (await ctx.api.gql(USAGE, { iccid, from: from.toISOString(), to: to.toISOString() })).sim;
      points = points ? points.usage : [];
    } catch (err) {
      if (alive) mount(usageCard, h('h2', {}, 'Usage'), errorBox(err));
      return;
    }
    if (!alive) return;
    // One row per day (days without traffic stay at zero), one series per network.
    const totals = new Map();
    const names = new Map();
    const byDay = new Map();
    for (const p of points) {
      const k = p.network.mccMnc;
      const b = Number(p.bytesIn) + Number(p.bytesOut);
      totals.set(k, (totals.get(k) || 0) + b);
      names.set(k, p.network.name ? `${p.network.name} (${k})` : k);
      const day = new Date(p.period).toISOString().slice(0, 10);
      if (!byDay.has(day)) byDay.set(day, {});
      const row = byDay.get(day);
      row[k] = (row[k] || 0) + b;
    }
    const series = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a)).map((k) => ({ key: k, label: names.get(k) }));
    const rows = [];
    if (points.length) {
      for (let t = from.getTime(); t < to.getTime(); t += 86400000) {
        const day = new Date(t).toISOString().slice(0, 10);
        rows.push({ day: new Date(t), v: byDay.get(day) || {} });
      }
    }
    const sum = [...totals.values()].reduce((a, b) => a + b, 0);
    mount(
      usageCard,
      h('h2', {}, 'Usage'),
      h(
        'p',
        { class: 'muted' },
        points.length
          ? `${bytes(sum)} in 30 days on ${series.length} network${series.length === 1 ? '' : 's'} (session bytes in + out).`
          : 'No data in the last 30 days.',
      ),
      columnsChart(rows, {
        x: (r) => r.day,
        series,
        value: (r, k) => r.v[k] || 0,
        format: bytes,
        title,
        testid: 'chart-sim-usage',
        time: true,
      }),
    );
  }

  // ---- audit trail -----------------------------------------------------------------------

  let auditSize = 25;
  async function loadAudit() {
    if (!auditCard.firstChild) mount(auditCard, h('h2', {}, 'Audit trail'), loading('Loading the audit trail…'));
    let entries;
    try {
      const data = await ctx.api.gql(EVENTS, { iccid, first: auditSize });
      entries = data.sim ? data.sim.events : [];
    } catch (err) {
      if (alive) mount(auditCard, h('h2', {}, 'Audit trail'), errorBox(err));
      return;
    }
    if (!alive) return;
    const more = entries.length >= auditSize && auditSize < 1000;
    const tbl = table(
      [
        { label: 'Time', value: (e) => dateTime(e.at) },
        { label: 'Action', value: (e) => e.action },
        { label: 'By', value: (e) => e.actor },
        { label: 'Change', value: (e) => h('span', { title: `${JSON.stringify(e.oldValue)} → ${JSON.stringify(e.newValue)}` }, changeText(e.oldValue, e.newValue)) },
        { label: 'Note', value: (e) => e.note || dash() },
      ],
      entries,
      { caption: 'Every change to this SIM, newest first', empty: 'No audit entries.', testid: 'audit-table' },
    );
    const tableEl = tbl.querySelector && tbl.querySelector('tbody');
    if (tableEl) Array.from(tableEl.rows).forEach((tr, i) => (tr.dataset.action = entries[i].action));
    mount(
      auditCard,
      h('h2', {}, 'Audit trail'),
      tbl,
      h(
        'nav',
        { class: 'pager', 'aria-label': 'audit entries' },
        h('span', {}, `${num(entries.length)} newest entries shown`),
        more
          ? h(
              'button',
              {
                type: 'button',
                onclick: () => {
                  auditSize = Math.min(1000, auditSize + 50);
                  loadAudit();
                },
              },
              'Show older entries',
            )
          : null,
      ),
    );
  }

  // ---- refresh after a change ------------------------------------------------------------

  let refreshing = null;
  async function refreshAll() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const fresh = (await ctx.api.gql(SIM, { iccid })).sim;
        if (!alive) return;
        if (!fresh) {
          say(`No SIM ${iccid} is visible to you any more.`, true);
          return;
        }
        sim = fresh;
        drawOverview();
        drawActions();
        drawDevice();
        drawLabels();
        loadAudit();
      } catch (err) {
        say(err, true);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  // Someone else (or the scheduler) changing the state shows here at once.
  let stateTimer = null;
  stops.push(
    ctx.api.subscribe(
      STATE_SUB,
      { iccid },
      (data) => {
        if (!alive || !data || !data.simStateChanged) return;
        const e = data.simStateChanged;
        if (e.to === sim.state) return; // already drawn
        if (e.to === ownMove) {
          ownMove = null; // our own change: the mutation's answer redraws the page
          return;
        }
        clearTimeout(stateTimer);
        stateTimer = setTimeout(() => {
          say(`The SIM went from ${e.from} to ${e.to} (by ${e.actor}, ${dateTime(e.at)}).`);
          refreshAll();
        }, 300);
      },
      (err) => {
        if (alive) say(`Live state changes stopped: ${err.message || err}. Reload the page to follow them again.`, true);
      },
    ),
  );
  stops.push(() => clearTimeout(stateTimer));

  drawOverview();
  drawActions();
  drawDevice();
  drawLabels();
  main.dataset.ready = 'sim';

  startLive();
  loadQuota(ctx, iccid, quotaCard, () => alive);
  if (alertsCard) stops.push(startAlerts(ctx, iccid, alertsCard, () => alive));
  loadForecast(ctx, iccid, forecastCard, () => alive);
  loadSimAnomalies(ctx, iccid, anomaliesCard, () => alive);
  stops.push(tickAgo(main));
  startHistory();
  loadUsage();
  loadAudit();
}
