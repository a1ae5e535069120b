// The Ioto console: login, role-aware navigation and hash routing. Every page is an ES module
// exporting a render function `(main, ctx)`; it reads and writes only through the public GraphQL
// API (api.js). What the navigation offers follows the API's role matrix (docs/roles.md) and the
// tenant's fleet settings; the server enforces it either way.

import * as api from './api.js';
import { h, mount, errorBox, field, select, loading } from './ui.js';

const ME = `query ConsoleMe {
  me { email displayName role subject tenant { id name slug } customer { id name } }
}`;
const SETTINGS = `query ConsoleSettings($tenantId: ID) {
  fleetSettings(tenantId: $tenantId) { customersSeeSims customersSeeCosts operatorBulkLimit }
}`;
const TENANTS = 'query ConsoleTenants { tenants { id name slug } }';
const OPEN_ALERTS = `query ConsoleOpenAlerts($tenantId: ID) {
  openAlerts(tenantId: $tenantId) { severity firing pending }
}`;
// Only the fact that an alert changed matters to the bell; it then reads the counts again.
const ALERT_CHANGES = 'subscription ConsoleAlertBell { alerts { id state } }';
const LOGIN = `mutation ConsoleLogin($email: String!, $password: String!) {
  login(email: $email, password: $password) { token expiresAt refreshToken mfa { challenge enrol expiresAt } user { email role } }
}`;
const VERIFY = `mutation ConsoleVerifyMfa($challenge: String!, $code: String!) {
  verifyMfa(challenge: $challenge, code: $code) { token expiresAt refreshToken }
}`;
const START_TOTP = `mutation ConsoleStartTotpAtSignIn($challenge: String!) {
  startTotpEnrolment(challenge: $challenge) { secret otpauthUri }
}`;
const CONFIRM_TOTP = `mutation ConsoleConfirmTotpAtSignIn($challenge: String!, $code: String!) {
  confirmTotpEnrolment(challenge: $challenge, code: $code) { recoveryCodes login { token expiresAt refreshToken } }
}`;
const LOGOUT = 'mutation ConsoleLogout { logout }';

/// What the role (and, for customer users, the tenant's settings) lets the caller see and do.
export function capabilities(role, settings) {
  const staff = ['PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR', 'VIEWER'].includes(role);
  const managers = ['PLATFORM_ADMIN', 'TENANT_ADMIN', 'OPERATOR'].includes(role);
  const seesSims = staff || Boolean(settings && settings.customersSeeSims);
  return {
    readSims: seesSims,
    readDevices: true,
    manageFleet: managers,
    readAudit: staff,
    readBilling: staff,
    analytics: seesSims,
    // Alerts follow SIM visibility (docs/roles.md): staff, and customers' users where SIM data
    // is shared; rules are the tenant staff's. Acknowledging and writing rules is manageFleet.
    readAlerts: seesSims,
    readAlertRules: staff,
    // Anomalies too are read by whoever reads SIMs (docs/forecasts.md); fleet managers decide
    // about them (manageFleet).
    readAnomalies: seesSims,
    readCosts: staff || Boolean(settings && settings.customersSeeSims && settings.customersSeeCosts),
    readSupplierCosts: role === 'PLATFORM_ADMIN',
    bulkRead: staff,
    bulkRun:
      role === 'PLATFORM_ADMIN' || role === 'TENANT_ADMIN' || (role === 'OPERATOR' && Number(settings && settings.operatorBulkLimit) > 0),
    bulkLimit: role === 'OPERATOR' ? Number(settings && settings.operatorBulkLimit) : null,
    exports: true,
    account: true,
    // API keys are managed by tenant and platform administrators (docs/api-keys.md).
    manageApiKeys: role === 'PLATFORM_ADMIN' || role === 'TENANT_ADMIN',
    platform: role === 'PLATFORM_ADMIN',
  };
}

/// The pages: hash path pattern, the module and export that draws it, the nav entry (if any)
/// and the capability it needs.
const ROUTES = [
  { path: '/dashboard', module: './dashboard.js', fn: 'render', nav: 'Dashboard', cap: 'analytics' },
  { path: '/sims', module: './fleet.js', fn: 'renderSims', nav: 'SIMs', cap: 'readSims' },
  { path: '/sims/:iccid', module: './sim.js', fn: 'render', cap: 'readSims' },
  { path: '/devices', module: './fleet.js', fn: 'renderDevices', nav: 'Devices', cap: 'readDevices' },
  { path: '/analytics', module: './analytics.js', fn: 'render', nav: 'Analytics', cap: 'analytics' },
  { path: '/alerts', module: './alerts.js', fn: 'render', nav: 'Alerts', cap: 'readAlerts' },
  { path: '/alerts/rules', module: './alert-rules.js', fn: 'render', cap: 'readAlertRules' },
  { path: '/anomalies', module: './anomalies.js', fn: 'render', nav: 'Anomalies', cap: 'readAnomalies' },
  { path: '/bulk', module: './bulk.js', fn: 'render', nav: 'Bulk jobs', cap: 'bulkRead' },
  { path: '/bulk/:id', module: './bulk.js', fn: 'renderJob', cap: 'bulkRead' },
  { path: '/exports', module: './exports.js', fn: 'render', nav: 'Exports', cap: 'exports' },
  { path: '/api-keys', module: './api-keys.js', fn: 'render', nav: 'API keys', cap: 'manageApiKeys' },
  { path: '/account', module: './account.js', fn: 'render', nav: 'Your account', cap: 'account' },
];

const state = {
  me: null,
  caps: null,
  tenants: [],
  tenantId: null, // a platform admin's chosen tenant; null: their own
  leave: [],
  nav: 0, // navigations so far: a page drawn for an older one is stale
};

function match(pattern, path) {
  const p = pattern.split('/');
  const a = path.split('/');
  if (p.length !== a.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i += 1) {
    if (p[i].startsWith(':')) {
      try {
        params[p[i].slice(1)] = decodeURIComponent(a[i]);
      } catch {
        return null; // a malformed address (`%E0`): no such page
      }
    } else if (p[i] !== a[i]) return null;
  }
  return params;
}

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  return { path: path || '/', query: new URLSearchParams(qs || '') };
}

export function navigate(path) {
  window.location.hash = `#${path}`;
}

function runLeave() {
  const fns = state.leave;
  state.leave = [];
  for (const fn of fns) {
    try {
      fn();
    } catch (e) {
      console.error(e);
    }
  }
}

async function logout() {
  runLeave();
  stopBell();
  await api.signOut(LOGOUT);
  Object.assign(state, { me: null, caps: null, tenants: [], tenantId: null });
  window.sessionStorage.removeItem('ioto.tenant');
  if (window.location.hash) history.replaceState(null, '', window.location.pathname);
  start();
}

function loginView(message) {
  runLeave();
  stopBell();
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const status = h('div', { 'aria-live': 'assertive' }, message ? errorBox(message) : null);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'login card',
      'data-testid': 'login',
      onsubmit: async (ev) => {
        ev.preventDefault();
        button.disabled = true;
        mount(status, loading('Signing in…'));
        try {
          const data = await api.gql(LOGIN, { email: email.value.trim(), password: password.value });
          password.value = '';
          if (data.login.mfa) {
            await secondStep(data.login.mfa);
            return;
          }
          api.setSession(data.login);
          password.value = '';
          await start();
        } catch (err) {
          mount(status, errorBox(err));
          button.disabled = false;
        }
      },
    },
    h('h1', {}, 'Ioto console'),
    h('p', {}, 'Sign in with your Ioto account.'),
    field('E-mail', email),
    field('Password', password),
    button,
    status,
  );
  mount(document.getElementById('app'), h('main', { id: 'main', class: 'login-page' }, form));
  email.focus();
}

/// The sign-in's second step: the code of the user's authenticator app, or (where the tenant
/// requires a second factor the user has not set up) setting one up.
async function secondStep(mfa) {
  const { enrolment, recoveryBox } = await import('./account.js');
  const status = h('div', { 'aria-live': 'assertive' });
  const box = h('div', { class: 'login card', 'data-testid': 'mfa-step' });
  mount(document.getElementById('app'), h('main', { id: 'main', class: 'login-page' }, box));
  if (mfa.enrol) {
    mount(
      box,
      h('h1', {}, 'Set up a second factor'),
      h('p', {}, 'Your organisation asks for a code from an authenticator app at every sign-in. Set one up to finish signing in.'),
      enrolment(
        () => api.gql(START_TOTP, { challenge: mfa.challenge }).then((d) => d.startTotpEnrolment),
        (code) => api.gql(CONFIRM_TOTP, { challenge: mfa.challenge, code }).then((d) => d.confirmTotpEnrolment),
        (done) => {
          const go = h('button', { type: 'button', class: 'primary', 'data-testid': 'mfa-continue', onclick: () => { api.setSession(done.login); start(); } }, 'I have kept them — continue');
          mount(box, h('h1', {}, 'Second factor on'), recoveryBox(done.recoveryCodes), go);
          go.focus();
        },
      ),
      status,
    );
    return;
  }
  const code = h('input', { type: 'text', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true, 'data-testid': 'mfa-code' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  mount(
    box,
    h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        button.disabled = true;
        mount(status, loading('Checking…'));
        try {
          const data = await api.gql(VERIFY, { challenge: mfa.challenge, code: code.value.trim() });
          api.setSession(data.verifyMfa);
          await start();
        } catch (err) {
          mount(status, errorBox(err));
          button.disabled = false;
          code.value = '';
          code.focus();
        }
      },
    },
    h('h1', {}, 'Your code'),
    h('p', {}, 'Enter the 6 digits your authenticator app shows for Ioto, or one of your recovery codes.'),
    field('Code', code),
    button,
    status),
  );
  code.focus();
}

// The playground's link, shown once the server says it serves the playground
// (`graphql.playground` may be off).
function playgroundLink() {
  const item = h(
    'li',
    { hidden: true, 'data-testid': 'playground-link' },
    h('a', { href: '/playground', target: '_blank', rel: 'noopener' }, 'Playground'),
  );
  fetch('/playground', { method: 'HEAD', cache: 'no-store' })
    .then((r) => {
      item.hidden = !r.ok;
    })
    .catch(() => {})
    .finally(() => {
      item.dataset.checked = 'yes';
    });
  return item;
}

function shell() {
  const { me, caps } = state;
  const nav = h(
    'nav',
    { class: 'nav', 'aria-label': 'console', 'data-testid': 'nav' },
    h(
      'ul',
      {},
      ROUTES.filter((r) => r.nav && caps[r.cap]).map((r) =>
        h('li', {}, h('a', { href: `#${r.path}`, dataset: { route: r.path } }, r.nav)),
      ),
      playgroundLink(),
    ),
  );
  const tenantPicker = caps.platform
    ? field(
        'Tenant',
        select(
          state.tenants.map((t) => [t.id, t.name]),
          state.tenantId || me.tenant.id,
          {
            'data-testid': 'tenant-picker',
            onchange: (ev) => {
              state.tenantId = ev.target.value === me.tenant.id ? null : ev.target.value;
              if (state.tenantId) window.sessionStorage.setItem('ioto.tenant', state.tenantId);
              else window.sessionStorage.removeItem('ioto.tenant');
              refreshBell();
              route();
            },
          },
        ),
      )
    : null;
  const who = h(
    'div',
    { class: 'who' },
    h('span', { 'data-testid': 'who' }, `${me.displayName || me.email || me.subject} · ${me.role.replace('_', ' ').toLowerCase()}`),
    h('span', { class: 'muted' }, me.customer ? ` · ${me.customer.name}` : ` · ${me.tenant.name}`),
    tenantPicker,
    h('button', { type: 'button', 'data-testid': 'logout', onclick: logout }, 'Sign out'),
  );
  const menu = h(
    'button',
    {
      type: 'button',
      class: 'menu-toggle',
      'aria-expanded': 'false',
      'aria-controls': 'nav',
      onclick: (ev) => {
        const open = document.body.classList.toggle('nav-open');
        ev.currentTarget.setAttribute('aria-expanded', String(open));
      },
    },
    'Menu',
  );
  nav.id = 'nav';
  stopBell();
  const bellLink = caps.readAlerts ? startBell() : null;
  mount(
    document.getElementById('app'),
    h('header', { class: 'top' }, h('a', { class: 'brand', href: '#/' }, 'Ioto'), menu, bellLink, who),
    nav,
    h('main', { id: 'main', tabindex: '-1' }),
  );
}

// ---- the alert bell: open alerts (pending or firing) of the tenant on screen ----------------

const bell = { el: null, stop: null, timer: null, busy: false, again: false, last: 0, seq: 0 };
/// At most one read of the counts per this many milliseconds, however fast alerts change.
const BELL_THROTTLE_MS = 1000;

function bellIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: '18', height: '18', 'aria-hidden': 'true', focusable: 'false' })) {
    svg.setAttribute(k, v);
  }
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('fill', 'currentColor');
  path.setAttribute(
    'd',
    'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6v-5a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1z',
  );
  svg.appendChild(path);
  return svg;
}

function drawBell(counts) {
  const el = bell.el;
  if (!el) return;
  const firing = counts.reduce((n, c) => n + c.firing, 0);
  const pending = counts.reduce((n, c) => n + c.pending, 0);
  const open = firing + pending;
  // The most severe open alert colours the count (the counts come most severe first).
  const worst = counts.find((c) => c.firing + c.pending > 0);
  const label = `${open} open alert${open === 1 ? '' : 's'}`;
  el.setAttribute('aria-label', label);
  el.title = open ? `${label}: ${firing} firing, ${pending} pending` : 'No open alerts';
  el.dataset.count = String(open);
  const count = el.querySelector('.bell-count');
  count.textContent = open > 99 ? '99+' : String(open);
  count.className = `bell-count${worst ? ` sev-${worst.severity}` : ''}`;
  count.hidden = open === 0;
}

async function refreshBell() {
  if (!bell.el) return;
  const wait = bell.last + BELL_THROTTLE_MS - Date.now();
  if (bell.busy || wait > 0) {
    bell.again = true;
    if (!bell.busy && !bell.timer) {
      bell.timer = setTimeout(() => {
        bell.timer = null;
        refreshBell();
      }, wait);
    }
    return;
  }
  const seq = bell.seq;
  bell.busy = true;
  bell.again = false;
  bell.last = Date.now();
  try {
    const data = await api.gql(OPEN_ALERTS, { tenantId: state.tenantId });
    if (seq === bell.seq) drawBell(data.openAlerts);
  } catch (err) {
    if (seq === bell.seq && bell.el) bell.el.title = `The open alerts could not be counted: ${err.message || err}`;
  } finally {
    if (seq === bell.seq) {
      bell.busy = false;
      if (bell.again) refreshBell();
    }
  }
}

/// The bell's link, counting now and following the `alerts` subscription from here on.
function startBell() {
  bell.seq += 1;
  Object.assign(bell, { busy: false, again: false, last: 0 });
  bell.el = h(
    'a',
    { class: 'bell', href: '#/alerts', 'data-testid': 'alert-bell', 'aria-label': 'Open alerts', dataset: { count: '' } },
    bellIcon(),
    h('span', { class: 'bell-count', hidden: true, 'aria-hidden': 'true' }),
  );
  bell.stop = api.subscribe(
    ALERT_CHANGES,
    {},
    () => refreshBell(),
    () => {},
  );
  refreshBell();
  return bell.el;
}

function stopBell() {
  bell.seq += 1;
  clearTimeout(bell.timer);
  bell.timer = null;
  bell.el = null;
  const stop = bell.stop;
  bell.stop = null;
  if (stop) {
    try {
      stop();
    } catch (e) {
      console.error(e);
    }
  }
}

async function route() {
  if (!state.me) return;
  const seq = (state.nav += 1);
  const alive = () => seq === state.nav;
  runLeave();
  document.body.classList.remove('nav-open');
  const toggle = document.querySelector('.menu-toggle');
  if (toggle) toggle.setAttribute('aria-expanded', 'false');
  const { path, query } = parseHash();
  // The bell follows the caller's own tenant live; another tenant's count is read again on
  // every navigation.
  if (state.tenantId) refreshBell();
  // A fresh <main> per navigation: nothing of the previous page's markers (`data-ready` and the
  // like) is left, and a page still drawing for an older navigation draws into the detached one.
  const main = h('main', { id: 'main', tabindex: '-1' });
  document.getElementById('main').replaceWith(main);
  const allowed = ROUTES.filter((r) => state.caps[r.cap]);
  if (path === '/' || path === '') {
    const first = allowed.find((r) => r.nav);
    navigate(first ? first.path : '/exports');
    return;
  }
  let found = null;
  let params = null;
  for (const r of ROUTES) {
    params = match(r.path, path);
    if (params) {
      found = r;
      break;
    }
  }
  document.querySelectorAll('.nav a[data-route]').forEach((a) => {
    const current = found && (found.path === a.dataset.route || found.path.startsWith(`${a.dataset.route}/`));
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (!found) {
    mount(main, h('h1', {}, 'Not found'), h('p', {}, `There is no page ${path} in the console.`));
    return;
  }
  if (!state.caps[found.cap]) {
    mount(main, h('h1', {}, 'Not available'), h('p', { 'data-testid': 'forbidden' }, 'Your role does not have access to this page.'));
    return;
  }
  mount(main, loading());
  const ctx = {
    me: state.me,
    caps: state.caps,
    tenantId: state.tenantId,
    params,
    query,
    api,
    navigate,
    alive,
    // What a stale page registers (its navigation was overtaken while it loaded) ends at once.
    onLeave: (fn) => {
      if (alive()) state.leave.push(fn);
      else fn();
    },
  };
  try {
    const mod = await import(found.module);
    if (!alive()) return;
    await mod[found.fn](main, ctx);
    if (!alive()) return;
    // When the page's first data is drawn, relative to the navigation (the first-load figure).
    performance.mark(`console:${found.path}`);
  } catch (err) {
    console.error(err);
    if (!alive()) return;
    mount(main, errorBox(err));
  }
  main.focus({ preventScroll: true });
}

async function start() {
  if (!api.token()) {
    loginView();
    return;
  }
  mount(document.getElementById('app'), loading('Loading your account…'));
  try {
    const { me } = await api.gql(ME);
    const [settings, tenants] = await Promise.all([
      api.gql(SETTINGS, { tenantId: null }).then((d) => d.fleetSettings),
      me.role === 'PLATFORM_ADMIN' ? api.gql(TENANTS).then((d) => d.tenants) : Promise.resolve([]),
    ]);
    state.me = me;
    state.caps = capabilities(me.role, settings);
    state.tenants = tenants;
    const saved = window.sessionStorage.getItem('ioto.tenant');
    state.tenantId = me.role === 'PLATFORM_ADMIN' && tenants.some((t) => t.id === saved) ? saved : null;
    shell();
    await route();
  } catch (err) {
    if (!api.token()) loginView(err);
    else mount(document.getElementById('app'), errorBox(err), h('button', { type: 'button', onclick: logout }, 'Sign out'));
  }
}

// A page that breaks the Content-Security-Policy is a bug: count it where tests and people see it.
let violations = 0;
document.addEventListener('securitypolicyviolation', (e) => {
  violations += 1;
  document.documentElement.dataset.cspViolations = String(violations);
  console.error(`Content-Security-Policy violation: ${e.violatedDirective} ${e.blockedURI}`);
});

// The skip link moves the focus to the page; it must not change the address (the router's).
document.querySelector('a.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  const main = document.getElementById('main');
  if (main) main.focus();
});

api.onUnauthenticated(() => {
  state.me = null;
  loginView({ message: 'Your session has ended; sign in again.' });
});
window.addEventListener('hashchange', route);
api.resumeSession();
start();
