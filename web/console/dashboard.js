// The dashboard: the front page of a fleet (or of one sub-customer) from the `dashboard` query,
// kept live by `liveSessions` and `simStateChanged`. Events only say "something changed"; the page
// then refetches the whole dashboard, at most once every two seconds however fast events arrive.
// The usage forecast (`Dashboard.forecast`, stored by the hourly forecast pass; docs/forecasts.md)
// comes in the same query: reading it is a lookup, so a fleet without one loads as before and a
// live refetch costs no second request; its card is redrawn only when the pass made a new one.

import { h, mount, num, bytes, money, moneyRounded, pct, table, errorBox, loading, stat, field, select, timeZone } from './ui.js';
import { donut, barsH, columns, bandChart } from './charts.js';
import { agoEl, tickAgo } from './alert-parts.js';
import { dailyMethod, hourlyMethod, withinWords } from './forecast-words.js';

const DASHBOARD = `query ConsoleDashboard($tenantId: ID, $subCustomerId: ID, $timeZone: String) {
  dashboard(tenantId: $tenantId, subCustomerId: $subCustomerId, timeZone: $timeZone) {
    periodFrom periodTo
    onlineNow activeSims bytesTotal averageBytesPerActiveSim
    costSoFar projectedCost currency
    simsByState { state count }
    topCarriersByTraffic { network { mccMnc name countryCode country } bytes cost shareOfBytes shareOfCost }
    topCarriersByCost { network { mccMnc name countryCode country } bytes cost shareOfBytes shareOfCost }
    trafficByDeviceKind { key value }
    activations { day count }
    simsByTariffPlan { key value }
    forecast(days: 7) {
      method backtestWape historyDays computedAt
      days { date bytes low80 high80 }
      projectedCost { currency costSoFar projected projectedHigh80 }
      hourly {
        method backtestMase backtestWape
        hours { at bytes low80 high80 low95 high95 }
        today { dayStart hoursSoFar soFarBytes bytes low80 high80 low95 high95 }
      }
    }
  }
}`;


// Only the fact that something happened matters here; ask for the smallest selection. A platform
// admin follows the tenant on screen only (`tenantId`), not every tenant's traffic.
const LIVE_SESSIONS = `subscription ConsoleDashboardSessions($customerId: ID, $tenantId: ID) {
  liveSessions(customerId: $customerId, tenantId: $tenantId) { iccid terminated }
}`;
const STATE_CHANGES = `subscription ConsoleDashboardStates($customerId: ID, $tenantId: ID) {
  simStateChanged(customerId: $customerId, tenantId: $tenantId) { iccid to }
}`;

/// At most one live refetch per this many milliseconds.
const THROTTLE_MS = 2000;

const STAFF = ['PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR', 'VIEWER'];

/// Every sub-customer of the tenant (read once per sign-in, see api.customers).
function allCustomers(api, tenantId) {
  return api.customers(tenantId);
}

/// YYYY-MM-DD of an instant in the browser's zone (the zone the dashboard was asked in).
function localDay(v) {
  const d = new Date(v);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function dayText(d) {
  return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });
}

function networkLabel(n) {
  const name = n.name || 'Unknown network';
  return n.country ? `${name} · ${n.country}` : name;
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/// "1.70–2.40 GB", or "900 MB – 1.20 GB" across units.
function bytesRange(low, high) {
  const [a, b] = [bytes(low), bytes(high)];
  const [an, au] = a.split(' ');
  const [bn, bu] = b.split(' ');
  return au === bu ? `${an}–${bn} ${bu}` : `${a} – ${b}`;
}

/// An amount of bytes in words, with the API's number beside it (`data-value`) for readers and tests.
function bytesEl(testid, v) {
  return h('strong', { 'data-testid': testid, 'data-value': String(v) }, bytes(v));
}

/// A method in words with a line on what it does, and its code in `data-value`.
function methodEl([words, how], code) {
  return h('span', { 'data-value': code }, words, how ? h('small', { class: 'block' }, how) : null);
}

export async function render(main, ctx) {
  const { api, caps, me } = ctx;
  const tz = timeZone();
  const staff = STAFF.includes(me.role);
  let customerId = staff ? ctx.query.get('customer') || null : null;

  // ---- live state -------------------------------------------------------------------------
  let stops = [];
  let left = false;
  let generation = 0; // bumps when the scope changes: late answers for the old scope are dropped
  let lastFetch = 0;
  let timer = null;
  let inFlight = false;
  let dirty = false;
  let events = 0;
  let updates = 0;
  let lastData = null;
  const drawn = new Map(); // chart testid → signature of the data it shows (skip identical redraws)

  // ---- skeleton -----------------------------------------------------------------------------
  const liveDot = h('span', { class: 'live-dot', 'aria-hidden': 'true' });
  const liveText = h('span', {}, 'Connecting to live updates…');
  const updatedText = h('span', { class: 'muted', 'data-testid': 'dash-updated' });
  const liveStatus = h('div', { class: 'dash-live', 'data-testid': 'dash-live' }, liveDot, liveText, ' ', updatedText);
  const liveError = h('div', { 'aria-live': 'polite' });
  const refreshButton = h('button', { type: 'button', onclick: () => refetch({ live: false }) }, 'Refresh now');

  const pickerHost = h('div', {});
  if (staff) {
    mount(pickerHost, loading('Loading sub-customers…'));
  } else if (me.customer) {
    mount(pickerHost, h('p', { class: 'muted', 'data-testid': 'dash-scope' }, `Sub-customer: ${me.customer.name}`));
  }

  const period = h('p', { class: 'muted', 'data-testid': 'dash-period' });
  const status = h('div', { 'aria-live': 'polite' });
  const stats = h('div', { class: 'stats', 'data-testid': 'dash-stats' });
  const forecastBody = h('div', {}, loading('Loading the forecast…'));
  const forecastCard = h(
    'section',
    { class: 'card dash-forecast', 'data-testid': 'dash-forecast', 'aria-labelledby': 'dash-forecast-title' },
    h('h2', { id: 'dash-forecast-title' }, 'Usage forecast'),
    forecastBody,
  );
  const charts = h('div', { class: 'grid dash-charts' });

  mount(
    main,
    h('h1', {}, 'Dashboard'),
    h('div', { class: 'toolbar' }, pickerHost, h('div', { class: 'actions' }, liveStatus, refreshButton)),
    liveError,
    period,
    status,
    stats,
    forecastCard,
    charts,
  );
  main.dataset.updates = '0';
  const stopTicking = tickAgo(forecastCard);

  // ---- sub-customer picker (staff roles) ------------------------------------------------------
  if (staff) {
    allCustomers(api, ctx.tenantId)
      .then((list) => {
        if (left) return;
        const options = [['', 'Whole fleet (every sub-customer)'], ...list.map((c) => [c.id, c.name])];
        if (customerId && !list.some((c) => c.id === customerId)) options.push([customerId, `Sub-customer ${customerId}`]);
        const picker = select(options, customerId || '', {
          'data-testid': 'dash-customer',
          onchange: (ev) => chooseCustomer(ev.target.value || null),
        });
        mount(pickerHost, field('Sub-customer', picker));
      })
      .catch((err) => {
        if (!left) mount(pickerHost, h('div', {}, h('p', { class: 'muted' }, 'The sub-customer list could not be loaded:'), errorBox(err)));
      });
  }

  function chooseCustomer(id) {
    customerId = id;
    // Keep the choice in the address so the view can be linked and reloaded, without re-routing.
    const q = new URLSearchParams(ctx.query);
    if (id) q.set('customer', id);
    else q.delete('customer');
    const qs = q.toString();
    history.replaceState(null, '', `#/dashboard${qs ? `?${qs}` : ''}`);
    generation += 1;
    drawn.clear();
    startLive();
    refetch({ live: false, reset: true });
  }

  // ---- drawing ----------------------------------------------------------------------------------
  function costStat(label, fieldName, d) {
    let value;
    let hint;
    if (!caps.readCosts) {
      value = 'Not shown';
      hint = 'Your role does not see costs (your provider does not share them).';
    } else if (d[fieldName] === null || d[fieldName] === undefined) {
      value = 'Not rated';
      hint = 'No rated usage for this period yet (no retail rate card, or no rating run so far).';
    } else {
      value = moneyRounded(d[fieldName], d.currency);
      const exactly = `Exactly ${money(d[fieldName], d.currency)}.`;
      hint = fieldName === 'projectedCost'
        ? `${exactly} Cost so far carried on at the same rate; access fees not included.`
        : `${exactly} Data cost; access fees not included.`;
    }
    const el = stat(label, value, { testid: `dash-${fieldName}`, hint });
    if (d.currency && caps.readCosts) el.dataset.currency = d.currency;
    return el;
  }

  function drawStats(d) {
    const old = new Map(Array.from(stats.querySelectorAll('[data-testid]')).map((el) => [el.dataset.testid, el.dataset.value]));
    const items = [
      [stat('SIMs online now', num(d.onlineNow), { testid: 'dash-onlineNow', hint: 'Session updated in the last 15 minutes' }), d.onlineNow],
      [stat('Active SIMs', num(d.activeSims), { testid: 'dash-activeSims', hint: 'With a session in the period' }), d.activeSims],
      [stat('Traffic in the period', bytes(d.bytesTotal), { testid: 'dash-bytesTotal', hint: `${num(d.bytesTotal)} bytes` }), d.bytesTotal],
      [
        stat('Average per active SIM', bytes(d.averageBytesPerActiveSim), { testid: 'dash-averageBytesPerActiveSim' }),
        d.averageBytesPerActiveSim,
      ],
      [costStat('Cost so far', 'costSoFar', d), caps.readCosts ? d.costSoFar : null],
      [costStat('Projected cost for the period', 'projectedCost', d), caps.readCosts ? d.projectedCost : null],
    ];
    for (const [el, raw] of items) {
      // data-value: the raw API value (absent when the value is not shown).
      if (raw !== null && raw !== undefined) el.dataset.value = String(raw);
      // A short highlight when a live refetch changed the number.
      if (lastData && old.get(el.dataset.testid) !== el.dataset.value) el.classList.add('flash');
    }
    mount(stats, items.map(([el]) => el));
  }

  function drawPeriod(d) {
    const from = new Date(d.periodFrom);
    const lastDay = new Date(new Date(d.periodTo).getTime() - 1);
    period.dataset.from = d.periodFrom;
    period.dataset.to = d.periodTo;
    mount(
      period,
      'Billing period ',
      h('time', { datetime: d.periodFrom }, dayText(from)),
      ' – ',
      h('time', { datetime: d.periodTo }, dayText(lastDay)),
      ` (the end is exclusive: ${new Date(d.periodTo).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' })}). Days counted in ${tz}.`,
    );
  }

  /// One chart card: redrawn only when its data changed, keeping its "Numbers" open if it was.
  function chartCard(slot, testid, signature, build, extra) {
    if (drawn.get(testid) === signature && slot.firstChild) return;
    drawn.set(testid, signature);
    const open = Array.from(slot.querySelectorAll('details')).map((d) => d.open);
    mount(slot, build(), extra ? extra() : null);
    slot.querySelectorAll('details').forEach((d, i) => {
      if (open[i]) d.open = true;
    });
  }

  const slots = {};
  function slot(name, title, className) {
    if (!slots[name]) slots[name] = h('div', {});
    return h('section', { class: `card ${className || ''}`.trim() }, h('h2', {}, title), slots[name]);
  }
  mount(
    charts,
    slot('states', 'SIMs by state'),
    slot('activations', 'Activations, last 30 days'),
    slot('carriers', 'Top carriers by traffic'),
    slot('carrierCost', 'Top carriers by cost'),
    slot('devices', 'Traffic by device kind'),
    slot('plans', 'SIMs by tariff plan'),
  );

  function carrierTable(rows, withCost, currency) {
    const cols = [
      { label: 'Network', value: (r) => networkLabel(r.network) },
      { label: 'MCC-MNC', value: (r) => h('span', { class: 'mono' }, r.network.mccMnc) },
      { label: 'Traffic', value: (r) => bytes(r.bytes), num: true },
      { label: 'Share of traffic', value: (r) => pct(r.shareOfBytes), num: true },
    ];
    if (withCost) {
      cols.push({ label: 'Cost', value: (r) => money(r.cost, currency), num: true });
      cols.push({ label: 'Share of cost', value: (r) => pct(r.shareOfCost), num: true });
    }
    return table(cols, rows);
  }

  function drawCharts(d) {
    chartCard(slots.states, 'chart-simsByState', JSON.stringify(d.simsByState), () =>
      donut(d.simsByState, { key: (r) => r.state, value: (r) => r.count, format: num, title: 'Every SIM by lifecycle state', testid: 'chart-simsByState' }),
    );

    chartCard(slots.activations, 'chart-activations', JSON.stringify(d.activations), () =>
      columns(d.activations, {
        // The day starts in the browser's zone; label it with that zone's date.
        x: (r) => localDay(r.day),
        series: [{ key: 'count', label: 'Activations' }],
        value: (r) => r.count,
        format: num,
        title: `Activations per day (${tz})`,
        testid: 'chart-activations',
        time: true,
      }),
    );

    const withCost = caps.readCosts && d.topCarriersByTraffic.some((r) => r.cost !== null && r.cost !== undefined);
    chartCard(
      slots.carriers,
      'chart-topCarriersByTraffic',
      JSON.stringify([d.topCarriersByTraffic, withCost, d.currency]),
      () =>
        barsH(d.topCarriersByTraffic, {
          key: (r) => r.network.mccMnc,
          value: (r) => r.bytes,
          format: bytes,
          title: 'Traffic by network (MCC-MNC), most first',
          testid: 'chart-topCarriersByTraffic',
        }),
      () =>
        d.topCarriersByTraffic.length
          ? h('details', { class: 'dash-carriers' }, h('summary', {}, 'Networks by name'), carrierTable(d.topCarriersByTraffic, withCost, d.currency))
          : null,
    );

    if (!caps.readCosts) {
      drawn.delete('chart-topCarriersByCost');
      mount(slots.carrierCost, h('p', { class: 'muted', 'data-testid': 'dash-cost-hidden' }, 'Costs are not shown: your role does not see them (your provider does not share costs).'));
    } else if (!d.topCarriersByCost.length) {
      drawn.delete('chart-topCarriersByCost');
      mount(
        slots.carrierCost,
        h('p', { class: 'muted', 'data-testid': 'dash-cost-hidden' }, 'No rated cost in this period yet (no retail rate card, or no rating run so far).'),
      );
    } else {
      chartCard(slots.carrierCost, 'chart-topCarriersByCost', JSON.stringify([d.topCarriersByCost, d.currency]), () =>
        barsH(d.topCarriersByCost, {
          key: (r) => r.network.mccMnc,
          value: (r) => r.cost,
          format: (v) => money(v, d.currency),
          title: `Data cost by network (${d.currency || 'no currency'}), highest first`,
          testid: 'chart-topCarriersByCost',
        }),
      );
    }

    chartCard(slots.devices, 'chart-trafficByDeviceKind', JSON.stringify(d.trafficByDeviceKind), () =>
      barsH(d.trafficByDeviceKind, {
        key: (r) => r.key ?? 'not in a device',
        value: (r) => r.value,
        format: bytes,
        title: 'Traffic in the period by device kind',
        testid: 'chart-trafficByDeviceKind',
      }),
    );

    chartCard(slots.plans, 'chart-simsByTariffPlan', JSON.stringify(d.simsByTariffPlan), () =>
      barsH(d.simsByTariffPlan, {
        key: (r) => r.key ?? 'no tariff plan',
        value: (r) => r.value,
        format: num,
        title: 'SIMs per tariff plan (SIMs without one apart)',
        testid: 'chart-simsByTariffPlan',
      }),
    );
  }

  // ---- the usage forecast ------------------------------------------------------------------------
  function todayPart(f) {
    const hourly = f.hourly;
    if (!hourly) {
      return h('p', { 'data-testid': 'dash-forecast-today-none' }, 'No hour-by-hour forecast yet: it needs a week of hourly usage within the last four weeks.');
    }
    const t = hourly.today;
    if (!t) return h('p', { 'data-testid': 'dash-forecast-today-none' }, 'Today’s total could not be projected from its hours so far.');
    const n = t.hoursSoFar;
    const how = n
      ? `From today’s first ${num(n)} hour${n === 1 ? '' : 's'} (to ${String(n).padStart(2, '0')}:00 UTC) and how the rest of a day usually goes.`
      : 'No hour of today is complete yet: the whole day is expected from the days before.';
    return [
      h(
        'p',
        { class: 'forecast-today', 'data-testid': 'dash-forecast-today', dataset: { hoursSoFar: String(n), dayStart: t.dayStart } },
        'Today (UTC): ',
        bytesEl('dash-today-sofar', t.soFarBytes),
        ' so far, about ',
        bytesEl('dash-today-expected', t.bytes),
        ' by midnight (80 %: ',
        h('span', { 'data-testid': 'dash-today-range80', dataset: { low: String(t.low80), high: String(t.high80) } }, bytesRange(t.low80, t.high80)),
        ')',
      ),
      h('p', { class: 'muted forecast-today-how' }, `${how} 95 %: ${bytesRange(t.low95, t.high95)}.`),
    ];
  }

  function hourlyChart(hourly) {
    if (!hourly) return null;
    if (!hourly.hours.length) return h('p', { class: 'muted' }, 'No hours ahead in this forecast.');
    const rows = hourly.hours.map((x) => ({
      at: new Date(x.at),
      expected: x.bytes,
      low80: x.low80,
      high80: x.high80,
      low95: x.low95,
      high95: x.high95,
    }));
    const busiest = rows.reduce((a, b) => (Number(b.expected) > Number(a.expected) ? b : a));
    const when = busiest.at.toLocaleString('en-GB', { weekday: 'short', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' });
    return bandChart(rows, {
      unit: 'hour',
      title: `Data per hour: the next ${rows.length} hours (UTC)`,
      testid: 'chart-dash-hourly',
      format: bytes,
      yLabel: 'Data per hour',
      summary: `about ${bytes(sum(rows.map((r) => Number(r.expected))))} expected in the next ${rows.length} hours; the busiest hour ${when} UTC with about ${bytes(busiest.expected)}`,
      bands: [
        { low: 'low95', high: 'high95', label: '95 % of hours within', level: 95 },
        { low: 'low80', high: 'high80', label: '80 % of hours within', level: 80 },
      ],
      series: [{ key: 'expected', label: 'Expected', kind: 'expected' }],
      // Where each day ends: the rest of today is left of the first line.
      marks: rows.slice(1).filter((r) => r.at.getUTCHours() === 0).map((r) => ({ at: r.at, label: 'midnight' })),
    });
  }

  function methodsPart(f) {
    const hourly = f.hourly;
    return h(
      'dl',
      { class: 'props forecast-methods' },
      hourly
        ? [
            h('dt', {}, 'Hour by hour'),
            h('dd', { 'data-testid': 'dash-forecast-hourly-method' }, methodEl(hourlyMethod(hourly.method), hourly.method)),
            h('dt', {}, 'Its accuracy'),
            h('dd', {}, withinWords(hourly.backtestWape, 'past days') || 'Not measured yet: too little history to test it on past days.'),
          ]
        : null,
      h('dt', {}, 'Day by day'),
      h('dd', { 'data-testid': 'dash-forecast-daily-method' }, methodEl(dailyMethod(f.method), f.method)),
      h('dt', {}, 'Its accuracy'),
      h(
        'dd',
        {},
        withinWords(f.backtestWape, 'past weeks') ||
          `Not measured yet: a forecast is tested on past weeks from 15 days of history (this one has ${num(f.historyDays)}).`,
      ),
      h('dt', {}, 'Made'),
      h('dd', {}, agoEl(f.computedAt), h('small', { class: 'block' }, 'By the forecast pass, every hour.')),
    );
  }

  /// The week ahead in bytes, and where costs are visible the rate card's period in money.
  function periodPart(f) {
    const days = f.days || [];
    const items = [];
    if (days.length) {
      const total = sum(days.map((d) => Number(d.bytes)));
      const range = bytesRange(sum(days.map((d) => Number(d.low80))), sum(days.map((d) => Number(d.high80))));
      const el = stat(`Next ${days.length} days (UTC, today included)`, `about ${bytes(total)}`, {
        testid: 'dash-forecast-days',
        hint: `Each day’s 80 % range added up: ${range}.`,
      });
      el.dataset.value = String(total);
      items.push(el);
    }
    let costNote = null;
    const p = f.projectedCost;
    if (!caps.readCosts) {
      costNote = h('p', { class: 'muted', 'data-testid': 'dash-forecast-cost-hidden' }, 'Costs are not shown: your role does not see them (your provider does not share costs).');
    } else if (!p) {
      costNote = h('p', { class: 'muted', 'data-testid': 'dash-forecast-cost-none' }, 'No projected cost: without a retail rate card in force there is no price to put on the usage.');
    } else {
      const costSoFar = stat('Cost so far, access fees included', moneyRounded(p.costSoFar, p.currency), {
        testid: 'dash-forecast-costSoFar',
        hint: `Exactly ${money(p.costSoFar, p.currency)}. The rate card’s period to yesterday at its retail prices; an estimate.`,
      });
      const projected = stat('Forecast cost for the period', moneyRounded(p.projected, p.currency), {
        testid: 'dash-forecast-projected',
        hint: `Exactly ${money(p.projected, p.currency)}; 9 times in 10 under ${moneyRounded(p.projectedHigh80, p.currency)}. So far, and the forecast to the period’s end at the average price per byte of the last 90 days.`,
      });
      costSoFar.dataset.value = String(p.costSoFar);
      projected.dataset.value = String(p.projected);
      for (const el of [costSoFar, projected]) el.dataset.currency = p.currency;
      items.push(costSoFar, projected);
    }
    return [h('div', { class: 'stats forecast-period' }, items), costNote];
  }

  function forecastParts(f) {
    if (!f) {
      return [
        h('p', { 'data-testid': 'dash-forecast-none' }, 'No forecast yet: the forecast pass runs hourly and needs usage history.'),
        h('p', { class: 'muted' }, 'A fleet gets a daily forecast once its SIMs have used data, and an hour-by-hour one after a week of usage.'),
      ];
    }
    return [
      todayPart(f),
      hourlyChart(f.hourly),
      h('h3', {}, 'This period and the week ahead'),
      periodPart(f),
      h('h3', {}, 'How it was made'),
      methodsPart(f),
    ];
  }

  function drawForecast(f) {
    forecastCard.dataset.state = !f ? 'none' : f.hourly ? 'hourly' : 'daily';
    // Redrawn when the pass made a new one (or the scope changed), not at every live refetch.
    chartCard(forecastBody, 'dash-forecast', JSON.stringify([f, caps.readCosts]), () => forecastParts(f));
  }

  function draw(d) {
    drawPeriod(d);
    drawStats(d);
    drawForecast(d.forecast);
    drawCharts(d);
    lastData = d;
    updatedText.textContent = `· updated ${new Date().toLocaleTimeString('en-GB')}`;
  }

  // ---- fetching ---------------------------------------------------------------------------------
  async function refetch({ live = true, reset = false } = {}) {
    if (left) return;
    const gen = generation;
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    inFlight = true;
    dirty = false;
    lastFetch = Date.now();
    if (reset) {
      lastData = null;
      mount(status, loading('Loading the dashboard…'));
    }
    refreshButton.disabled = true;
    try {
      const { dashboard } = await api.gql(DASHBOARD, { tenantId: ctx.tenantId, subCustomerId: customerId, timeZone: tz });
      if (left || gen !== generation) return;
      mount(status);
      draw(dashboard);
      if (live) {
        updates += 1;
        main.dataset.updates = String(updates);
      }
    } catch (err) {
      if (left || gen !== generation) return;
      // Keep the last numbers on screen when a live refetch fails; say so above them.
      mount(status, lastData ? h('p', { class: 'muted' }, 'The last refresh failed; the numbers below are older.') : null, errorBox(err));
      if (!lastData) {
        drawn.delete('dash-forecast');
        mount(forecastBody, h('p', { class: 'muted' }, 'Not shown: the dashboard could not be read (see above).'));
      }
    } finally {
      if (gen === generation) {
        inFlight = false;
        refreshButton.disabled = false;
        if (!main.dataset.ready) main.dataset.ready = 'dashboard';
        if (dirty && !left) poke();
      }
    }
  }

  /// An event arrived: refetch now if the last fetch is 2 s old, else once the 2 s are up.
  function poke() {
    if (left) return;
    if (inFlight) {
      dirty = true; // refetch again once the running request answers
      return;
    }
    if (timer) return; // a refetch is already due; it will include this event
    const wait = Math.max(0, lastFetch + THROTTLE_MS - Date.now());
    timer = setTimeout(() => {
      timer = null;
      refetch({ live: true });
    }, wait);
  }

  function onEvent() {
    events += 1;
    liveDot.classList.add('on');
    liveText.textContent = `Live · ${num(events)} event${events === 1 ? '' : 's'}`;
    poke();
  }

  function onSubError(err) {
    if (left) return;
    liveDot.classList.remove('on');
    liveText.textContent = 'Live updates stopped';
    mount(
      liveError,
      errorBox(err),
      h('button', { type: 'button', 'data-testid': 'dash-reconnect', onclick: () => startLive() }, 'Reconnect live updates'),
    );
  }

  function stopLive() {
    const s = stops;
    stops = [];
    s.forEach((stop) => {
      try {
        stop();
      } catch (e) {
        console.error(e);
      }
    });
  }

  function startLive() {
    stopLive();
    mount(liveError);
    const vars = { customerId: customerId || null, tenantId: ctx.tenantId || null };
    stops.push(api.subscribe(LIVE_SESSIONS, vars, onEvent, onSubError));
    stops.push(api.subscribe(STATE_CHANGES, vars, onEvent, onSubError));
    liveDot.classList.add('on');
    liveText.textContent = events ? `Live · ${num(events)} events` : 'Live: listening for changes';
  }

  ctx.onLeave(() => {
    left = true;
    if (timer) clearTimeout(timer);
    timer = null;
    stopLive();
    stopTicking();
  });

  startLive();
  await refetch({ live: false, reset: true });
}
