// API keys: the tenant's credentials for services (docs/api-keys.md). Tenant administrators
// (and platform administrators, for the tenant they chose) list the keys with who made them and
// when they were last used, make a key (shown once, to copy), roll a key with an overlap, and
// revoke one. The API refuses the same to everyone else; the page is not offered to them.

import { h, mount, dateTime, ago, table, errorBox, loading, card, field, select, listPager } from './ui.js';

// ---- the operations ------------------------------------------------------------------------

const KEY_FIELDS = `id name role hint state createdAt expiresAt lastUsedAt lastUsedAddress revokedAt
  replacedBy customer { id name } createdBy { displayName email }`;
const KEYS = `query ConsoleApiKeys($tenantId: ID, $first: Int, $after: String) {
  apiKeys(tenantId: $tenantId, first: $first, after: $after) {
    nodes { ${KEY_FIELDS} }
    pageInfo { hasNextPage endCursor }
  }
}`;
const CREATE = `mutation ConsoleCreateApiKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { ${KEY_FIELDS} } }
}`;
const ROLL = `mutation ConsoleRollApiKey($id: ID!, $overlapHours: Int!) {
  rollApiKey(id: $id, overlapHours: $overlapHours) { secret apiKey { ${KEY_FIELDS} } }
}`;
const REVOKE = `mutation ConsoleRevokeApiKey($id: ID!) { revokeApiKey(id: $id) { ${KEY_FIELDS} } }`;
const CUSTOMERS = `query ConsoleKeyCustomers($tenantId: ID) {
  customers(tenantId: $tenantId, first: 1000) { nodes { id name } }
}`;

// ---- vocabulary ----------------------------------------------------------------------------

const ROLE_WORDS = {
  PLATFORM_ADMIN: 'Platform administrator',
  TENANT_ADMIN: 'Tenant administrator',
  OPERATOR: 'Operator',
  CUSTOMER_USER: 'Sub-customer',
  VIEWER: 'Viewer',
};
const STATE_WORDS = {
  ACTIVE: 'Works',
  ROLLING: 'Rolled — works until it expires',
  EXPIRED: 'Expired',
  REVOKED: 'Revoked',
};
const EXPIRY = [
  ['30', '30 days'],
  ['90', '90 days'],
  ['365', '1 year'],
  ['', 'Never (not recommended)'],
];
const OVERLAP = [
  ['0', 'Stop at once'],
  ['1', 'Keep it 1 hour'],
  ['24', 'Keep it 24 hours'],
  ['72', 'Keep it 3 days'],
  ['168', 'Keep it 7 days'],
];
const PAGE = 50;

/// The roles the caller may give a key: never above their own.
function grantable(role) {
  if (role === 'PLATFORM_ADMIN') return ['VIEWER', 'OPERATOR', 'CUSTOMER_USER', 'TENANT_ADMIN', 'PLATFORM_ADMIN'];
  return ['VIEWER', 'OPERATOR', 'CUSTOMER_USER', 'TENANT_ADMIN'];
}

const badge = (state) => h('span', { class: `badge badge-${state}` }, STATE_WORDS[state] || state);

/// The key just made, shown once with a copy button.
function secretBox(secret, what) {
  const input = h('input', { type: 'text', readonly: true, value: secret, class: 'secret', 'data-testid': 'api-key-secret', 'aria-label': 'The new key' });
  const copied = h('span', { 'aria-live': 'polite' });
  return h(
    'div',
    { class: 'notice', 'data-testid': 'api-key-created' },
    h('p', {}, h('strong', {}, what), ' Copy it now: it is shown only this once (Ioto keeps only its fingerprint).'),
    input,
    h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          input.select();
          try {
            await navigator.clipboard.writeText(secret);
            copied.textContent = ' Copied.';
          } catch {
            copied.textContent = ' Select the key and copy it.';
          }
        },
      },
      'Copy',
    ),
    copied,
    h('p', {}, 'Send it as ', h('code', {}, 'Authorization: Bearer <key>'), ' to /graphql, the REST routes and the WebSocket.'),
  );
}

export async function render(main, ctx) {
  const list = { after: null, pageNo: 1 };
  const shown = h('div', {});
  const keysBox = h('div', { 'aria-live': 'polite' });
  const customers = ctx.api
    .gql(CUSTOMERS, { tenantId: ctx.tenantId })
    .then((d) => d.customers.nodes)
    .catch(() => []);

  const columns = [
    { label: 'Name', value: (k) => h('strong', {}, k.name) },
    { label: 'Role', value: (k) => (k.customer ? `${ROLE_WORDS[k.role]} of ${k.customer.name}` : ROLE_WORDS[k.role] || k.role) },
    { label: 'Key', value: (k) => h('code', {}, k.hint) },
    { label: 'State', value: (k) => badge(k.state) },
    { label: 'Made', value: (k) => h('span', {}, dateTime(k.createdAt), h('br'), `by ${k.createdBy ? k.createdBy.displayName : 'a user since removed'}`) },
    { label: 'Expires', value: (k) => (k.revokedAt ? `revoked ${dateTime(k.revokedAt)}` : k.expiresAt ? dateTime(k.expiresAt) : 'never') },
    { label: 'Last used', value: (k) => (k.lastUsedAt ? `${ago(k.lastUsedAt)} from ${k.lastUsedAddress || 'an unknown address'}` : 'never') },
    { label: 'Actions', value: (k) => actions(k) },
  ];

  function actions(k) {
    if (k.state !== 'ACTIVE' && k.state !== 'ROLLING') return '—';
    const status = h('span', { role: 'status' });
    const overlap = select(OVERLAP, '24', { 'aria-label': `How long ${k.name}'s old key keeps working` });
    const roll =
      k.state === 'ACTIVE'
        ? h(
            'button',
            {
              type: 'button',
              'data-testid': 'api-key-roll',
              onclick: async () => {
                try {
                  const d = await ctx.api.gql(ROLL, { id: k.id, overlapHours: Number(overlap.value) });
                  mount(shown, secretBox(d.rollApiKey.secret, `The new key for “${k.name}”.`));
                  await loadKeys();
                } catch (err) {
                  mount(status, errorBox(err));
                }
              },
            },
            'Roll',
          )
        : null;
    const revoke = h(
      'button',
      {
        type: 'button',
        class: 'danger',
        'data-testid': 'api-key-revoke',
        onclick: async () => {
          if (!window.confirm(`Revoke “${k.name}”? Every service using it is refused from now on.`)) return;
          try {
            await ctx.api.gql(REVOKE, { id: k.id });
            mount(shown, h('p', { class: 'notice', role: 'status' }, `“${k.name}” is revoked.`));
            await loadKeys();
          } catch (err) {
            mount(status, errorBox(err));
          }
        },
      },
      'Revoke',
    );
    return h('div', { class: 'row-actions' }, roll ? [overlap, roll] : null, revoke, status);
  }

  async function loadKeys() {
    mount(keysBox, loading('Loading keys…'));
    try {
      const data = await ctx.api.gql(KEYS, { tenantId: ctx.tenantId, first: PAGE, after: list.after });
      const { nodes, pageInfo } = data.apiKeys;
      mount(
        keysBox,
        table(columns, nodes, { caption: `By name · page ${list.pageNo}`, empty: 'No API key yet.', testid: 'api-keys' }),
        listPager(pageInfo, list, loadKeys),
      );
    } catch (err) {
      mount(keysBox, errorBox(err));
    }
  }

  mount(
    main,
    h('h1', {}, 'API keys'),
    h('p', {}, 'Keys let services and scripts use the API without a person’s password. Each acts with the role you give it, never above your own, and can be rolled or revoked on its own.'),
    createCard(ctx, customers, shown, loadKeys),
    shown,
    card('Keys', keysBox),
  );
  await loadKeys();
  main.dataset.ready = 'api-keys';
}

function createCard(ctx, customers, shown, reload) {
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 200, placeholder: 'e.g. ERP sync', 'data-testid': 'api-key-name' });
  const role = select(
    grantable(ctx.me.role).map((r) => [r, ROLE_WORDS[r]]),
    'VIEWER',
    { name: 'role', 'data-testid': 'api-key-role' },
  );
  const customer = select([['', 'Choose the sub-customer']], '', { name: 'customer', 'data-testid': 'api-key-customer' });
  const customerField = field('Sub-customer', customer, 'A sub-customer key sees that sub-customer only.');
  customerField.hidden = true;
  customers.then((list) => mount(customer, [h('option', { value: '' }, 'Choose the sub-customer'), list.map((c) => h('option', { value: c.id }, c.name))]));
  role.addEventListener('change', () => {
    customerField.hidden = role.value !== 'CUSTOMER_USER';
  });
  const expiry = select(EXPIRY, '90', { name: 'expiry', 'data-testid': 'api-key-expiry' });
  const status = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'api-key-create' }, 'Create key');
  const form = h(
    'form',
    {
      class: 'grid',
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        mount(status);
        const input = { name: name.value.trim(), role: role.value };
        if (ctx.tenantId) input.tenantId = ctx.tenantId;
        if (role.value === 'CUSTOMER_USER') input.customerId = customer.value || null;
        if (expiry.value) input.expiresInDays = Number(expiry.value);
        if (!input.name) {
          mount(status, errorBox('Name: say what the key is for (1 to 200 characters).'));
          name.focus();
          return;
        }
        if (role.value === 'CUSTOMER_USER' && !customer.value) {
          mount(status, errorBox('Sub-customer: a sub-customer key needs its sub-customer.'));
          customer.focus();
          return;
        }
        submit.disabled = true;
        try {
          const d = await ctx.api.gql(CREATE, { input });
          mount(shown, secretBox(d.createApiKey.secret, `The key “${d.createApiKey.apiKey.name}”.`));
          name.value = '';
          await reload();
        } catch (err) {
          mount(status, errorBox(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    field('Name', name, 'What the key is for; services are told apart by it.'),
    field('Role', role, 'What requests with the key may do.'),
    customerField,
    field('Expires', expiry),
    h('div', { class: 'field' }, submit),
    status,
  );
  return card('New key', form);
}
