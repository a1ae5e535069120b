// The console's only way to the server: the public GraphQL API. Queries and mutations over HTTP
// (/graphql), subscriptions over graphql-transport-ws (/graphql/ws), uploads as GraphQL
// multipart requests. The access token and the session's refresh token live in session storage
// (never in a URL). The access token is short-lived: it is refreshed a minute before it expires,
// and once more when the server refuses it; when the refresh is refused too (the session was
// ended, or its refresh token used elsewhere), both are dropped and the console signs out.

const TOKEN_KEY = 'ioto.token';
const REFRESH_KEY = 'ioto.refresh';
const EXPIRES_KEY = 'ioto.expires';
const REFRESH = `mutation ConsoleRefresh($refreshToken: String!) {
  refreshSession(refreshToken: $refreshToken) { token expiresAt refreshToken }
}`;
let refreshTimer = null;
let refreshing = null;
// Counts sign-ins and sign-outs: a refresh answered after one belongs to a session that is gone.
let generation = 0;
const listeners = new Set();
const customerCache = new Map();
let wsClient = null;

export function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  customerCache.clear();
  generation += 1;
  if (t) window.sessionStorage.setItem(TOKEN_KEY, t);
  else {
    window.sessionStorage.removeItem(TOKEN_KEY);
    window.sessionStorage.removeItem(REFRESH_KEY);
    window.sessionStorage.removeItem(EXPIRES_KEY);
    clearTimeout(refreshTimer);
  }
  if (wsClient) {
    wsClient.dispose();
    wsClient = null;
  }
}

/// Keeps what `login` answered: the access token, the refresh token and when the access token
/// expires (refreshed a minute before).
export function setSession(login) {
  setToken(login.token);
  keepRefresh(login, login.token);
}

/// The token's lifetime in milliseconds, by its own claims (`exp` − `iat`): the browser's clock
/// may be off from the server's, the lifetime is not.
function lifetime(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    return (claims.exp - claims.iat) * 1000;
  } catch {
    return null;
  }
}

function keepRefresh(r, token) {
  window.sessionStorage.setItem(REFRESH_KEY, r.refreshToken);
  window.sessionStorage.setItem(EXPIRES_KEY, r.expiresAt);
  clearTimeout(refreshTimer);
  const life = token ? lifetime(token) : null;
  const ms = life !== null ? life - 60_000 : Date.parse(r.expiresAt) - Date.now() - 60_000;
  refreshTimer = setTimeout(() => refreshNow().catch(() => {}), Math.max(ms, 30_000));
}

/// Continues the session with its refresh token, once at a time; the open live connection keeps
/// going (the server holds it to the session, not to the token it started with).
export function refreshNow() {
  if (!refreshing) {
    const started = generation;
    refreshing = (async () => {
      const refreshToken = window.sessionStorage.getItem(REFRESH_KEY);
      if (!refreshToken) throw new ApiError([{ message: 'no session to continue' }]);
      const res = await fetch('/graphql', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ query: REFRESH, variables: { refreshToken } }),
      });
      let body;
      try {
        body = await res.json();
      } catch {
        throw new ApiError([{ message: `the server answered HTTP ${res.status} without JSON` }], res.status);
      }
      if (body.errors && body.errors.length) throw new ApiError(body.errors, res.status);
      // Signed out (or in again) meanwhile: this answer belongs to a session that is gone.
      if (generation !== started) throw new ApiError([{ message: 'signed out meanwhile' }]);
      const r = body.data.refreshSession;
      window.sessionStorage.setItem(TOKEN_KEY, r.token);
      keepRefresh(r, r.token);
      return r.token;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/// On start: a page reloaded in the same tab picks up its session's refresh schedule.
export function resumeSession() {
  const refreshToken = window.sessionStorage.getItem(REFRESH_KEY);
  const expiresAt = window.sessionStorage.getItem(EXPIRES_KEY);
  if (refreshToken && expiresAt) keepRefresh({ refreshToken, expiresAt }, null);
}

/// Ends the session on the server (best effort), then forgets it here.
export async function signOut(logoutMutation) {
  if (token() && window.sessionStorage.getItem(REFRESH_KEY)) {
    try {
      await gql(logoutMutation);
    } catch {
      // Already over on the server: nothing more to end.
    }
  }
  setToken(null);
}

/// Called with no arguments when the server refuses the token (expired, user deleted).
export function onUnauthenticated(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/// A GraphQL error answer, with the first error's message and code at hand.
export class ApiError extends Error {
  constructor(errors, status) {
    const first = (errors && errors[0]) || { message: `HTTP ${status}` };
    super(first.message);
    this.errors = errors || [];
    this.code = (first.extensions && first.extensions.code) || (status ? `HTTP_${status}` : 'ERROR');
    this.field = first.extensions && first.extensions.field;
  }
}

function checkAuth(errors) {
  if ((errors || []).some((e) => e.extensions && e.extensions.code === 'UNAUTHENTICATED')) {
    setToken(null);
    listeners.forEach((fn) => fn());
  }
}

/// Whether an answer refuses the token (so that a refresh may help).
function refusesToken(errors) {
  return (errors || []).some((e) => e.extensions && e.extensions.code === 'UNAUTHENTICATED');
}

async function answer(res, retry) {
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError([{ message: `the server answered HTTP ${res.status} without JSON` }], res.status);
  }
  if (body.errors && body.errors.length) {
    if (retry && refusesToken(body.errors) && window.sessionStorage.getItem(REFRESH_KEY)) {
      try {
        await refreshNow();
        return retry();
      } catch (err) {
        // Only a refused refresh ends the session here; a network or server failure leaves it
        // for the next try.
        if (!(err instanceof ApiError && err.code === 'UNAUTHENTICATED')) throw err;
      }
    }
    checkAuth(body.errors);
    throw new ApiError(body.errors, res.status);
  }
  if (!res.ok) throw new ApiError(null, res.status);
  return body.data;
}

function headers() {
  const h = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

/// Runs a query or mutation; resolves to `data`, rejects with an ApiError.
export async function gql(query, variables = {}, retried = false) {
  const res = await fetch('/graphql', {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ query, variables }),
  });
  return answer(res, retried ? null : () => gql(query, variables, true));
}

/// A GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec):
/// `files` maps variable paths ("input.file") to File objects.
export async function upload(query, variables, files) {
  const form = new FormData();
  const map = {};
  const vars = JSON.parse(JSON.stringify(variables));
  Object.keys(files).forEach((path, i) => {
    map[String(i)] = [`variables.${path}`];
    // Leave the variable null where the file goes.
    const parts = path.split('.');
    let obj = vars;
    for (const p of parts.slice(0, -1)) obj = obj[p];
    obj[parts[parts.length - 1]] = null;
  });
  form.append('operations', JSON.stringify({ query, variables: vars }));
  form.append('map', JSON.stringify(map));
  Object.values(files).forEach((file, i) => form.append(String(i), file, file.name));
  const h = {};
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  const res = await fetch('/graphql', { method: 'POST', headers: h, body: form });
  return answer(res, null);
}

function client() {
  if (!wsClient) {
    const url = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/graphql/ws`;
    wsClient = window.graphqlWs.createClient({
      url,
      lazy: true,
      retryAttempts: 1000,
      shouldRetry: () => true,
      connectionParams: () => ({ authorization: `Bearer ${token() || ''}` }),
    });
  }
  return wsClient;
}

/// Follows a subscription: `onData(data)` for every event, `onError(err)` once if it fails.
/// Returns the function that stops it.
export function subscribe(query, variables, onData, onError = () => {}) {
  return client().subscribe(
    { query, variables },
    {
      next: (msg) => {
        if (msg.errors && msg.errors.length) {
          checkAuth(msg.errors);
          onError(new ApiError(msg.errors));
        } else onData(msg.data);
      },
      error: (err) => {
        if (err instanceof Error) {
          onError(err);
          return;
        }
        // A close event: 4401 is the server ending a session it no longer accepts (revoked
        // token, changed role), which is a sign-out like an UNAUTHENTICATED answer.
        const code = err && typeof err.code === 'number' ? err.code : null;
        const reason = err && err.reason ? err.reason : '';
        const message = code !== null ? `live updates closed (${code}${reason ? `: ${reason}` : ''})` : String(reason || err);
        const errors = [{ message, extensions: code === 4401 ? { code: 'UNAUTHENTICATED' } : {} }];
        checkAuth(errors);
        onError(new ApiError(errors));
      },
      complete: () => {},
    },
  );
}

const CUSTOMERS = `query ConsoleCustomers($tenantId: ID, $after: String) {
  customers(tenantId: $tenantId, first: 200, after: $after) {
    nodes { id name }
    pageInfo { hasNextPage endCursor }
  }
}`;

/// The sub-customers of the tenant (`tenantId` null: the caller's), `{ id, name }` by name, for
/// pickers: read once per sign-in and tenant in pages of 200 (each page costs little against the
/// caller's rate budget), at most 5,000.
export function customers(tenantId = null) {
  const key = tenantId || '';
  if (!customerCache.has(key)) {
    const loading = (async () => {
      const out = [];
      let after = null;
      for (let page = 0; page < 25; page += 1) {
        const { customers: c } = await gql(CUSTOMERS, { tenantId, after });
        out.push(...c.nodes);
        if (!c.pageInfo.hasNextPage) break;
        after = c.pageInfo.endCursor;
      }
      return out;
    })();
    // A failed read is not kept: the next page asks again.
    loading.catch(() => customerCache.delete(key));
    customerCache.set(key, loading);
  }
  return customerCache.get(key);
}
