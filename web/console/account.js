// Your account: the second factor (set up an authenticator app, recovery codes, turn it off)
// and your sign-in sessions (where you are signed in; end one, or all). See docs/accounts.md.

import { h, mount, dateTime, ago, table, errorBox, loading, card, field } from './ui.js';

const STATUS = 'query ConsoleAccount { me { email mfa { enabled recoveryCodesLeft required } } }';
const SESSIONS = `query ConsoleSessions { me { sessions { id current createdAt refreshedAt expiresAt clientAddress userAgent } } }`;
const START = 'mutation ConsoleStartTotp { startTotpEnrolment { secret otpauthUri } }';
const CONFIRM = 'mutation ConsoleConfirmTotp($code: String!) { confirmTotpEnrolment(code: $code) { recoveryCodes } }';
const RENEW = 'mutation ConsoleRenewCodes($code: String!) { renewRecoveryCodes(code: $code) }';
const DISABLE = 'mutation ConsoleDisableTotp($code: String!) { disableTotp(code: $code) }';
const END = 'mutation ConsoleEndSession($id: ID!) { endSession(id: $id) }';
const EVERYWHERE = 'mutation ConsoleLogoutEverywhere { logoutEverywhere }';

/// A browser's or program's name from its user agent, in words.
export function browserName(ua) {
  if (!ua) return 'an unknown browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : null;
  const name = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : /curl\//.test(ua) ? 'curl' : ua.split(/[\s/]/)[0];
  return os ? `${name} on ${os}` : name;
}

/// The recovery codes, shown once with a way to keep them.
export function recoveryBox(codes) {
  const text = codes.join('\n');
  const url = URL.createObjectURL(new Blob([`Ioto recovery codes — each works once\n\n${text}\n`], { type: 'text/plain' }));
  return h(
    'div',
    { class: 'notice', 'data-testid': 'recovery-codes' },
    h('p', {}, h('strong', {}, 'Your recovery codes.'), ' Each works once instead of a code from the app, if the phone is lost. Keep them somewhere safe: they are shown only now.'),
    h('ul', { class: 'codes' }, codes.map((c) => h('li', {}, h('code', {}, c)))),
    h('a', { href: url, download: 'ioto-recovery-codes.txt' }, 'Download as a text file'),
  );
}

/// The set-up of an authenticator app: the secret and its link, then the first code.
/// `start()` → { secret, otpauthUri }; `confirm(code)` → whatever `done` takes.
export function enrolment(start, confirm, done) {
  const box = h('div', { 'data-testid': 'totp-enrolment' }, loading('Preparing…'));
  start().then(
    (s) => {
      const code = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 7, name: 'code', 'data-testid': 'totp-code' });
      const status = h('div', { 'aria-live': 'assertive' });
      const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'totp-confirm' }, 'Turn on');
      mount(
        box,
        h('ol', {},
          h('li', {}, 'Open your authenticator app (Google Authenticator, 1Password, Authy…) and add an account: ', h('a', { href: s.otpauthUri, 'data-testid': 'totp-link' }, 'open it on this device'), ', or type this key:'),
        ),
        h('p', {}, h('code', { class: 'secret', 'data-testid': 'totp-secret' }, s.secret.replace(/(.{4})/g, '$1 ').trim())),
        h('form', {
          onsubmit: async (ev) => {
            ev.preventDefault();
            submit.disabled = true;
            mount(status);
            try {
              done(await confirm(code.value));
            } catch (err) {
              mount(status, errorBox(err));
              submit.disabled = false;
            }
          },
        }, field('The 6 digits the app shows', code), submit, status),
      );
      code.focus();
    },
    (err) => mount(box, errorBox(err)),
  );
  return box;
}

function codeForm(label, action, button, testid) {
  const code = h('input', { type: 'text', name: 'code', autocomplete: 'one-time-code', 'data-testid': `${testid}-code` });
  const status = h('div', { 'aria-live': 'assertive' });
  return h(
    'form',
    {
      class: 'inline-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        mount(status);
        try {
          await action(code.value.trim());
        } catch (err) {
          mount(status, errorBox(err));
        }
      },
    },
    field(label, code, 'A code from the app or a recovery code.'),
    h('button', { type: 'submit', 'data-testid': testid }, button),
    status,
  );
}

export async function render(main, ctx) {
  const factorBox = h('div', { 'aria-live': 'polite' });
  const sessionsBox = h('div', { 'aria-live': 'polite' });

  async function loadFactor() {
    mount(factorBox, loading());
    try {
      const { me } = await ctx.api.gql(STATUS);
      const m = me.mfa;
      if (!m.enabled) {
        const begin = h('button', {
          type: 'button',
          class: 'primary',
          'data-testid': 'totp-start',
          onclick: () =>
            mount(
              factorBox,
              enrolment(
                () => ctx.api.gql(START).then((d) => d.startTotpEnrolment),
                (code) => ctx.api.gql(CONFIRM, { code }).then((d) => d.confirmTotpEnrolment.recoveryCodes),
                (codes) => mount(factorBox, h('p', { role: 'status' }, 'Your second factor is on: signing in asks for a code.'), recoveryBox(codes)),
              ),
            ),
        }, 'Set up an authenticator app');
        mount(
          factorBox,
          h('p', { 'data-testid': 'mfa-state' }, m.required ? 'Your organisation requires a second factor.' : 'Off: signing in asks for your password only.'),
          begin,
        );
        return;
      }
      const renewed = h('div', {});
      mount(
        factorBox,
        h('p', { 'data-testid': 'mfa-state' }, `On: signing in asks for a code from your app. ${m.recoveryCodesLeft} of 10 recovery codes left.`),
        codeForm('New recovery codes', async (code) => {
          const d = await ctx.api.gql(RENEW, { code });
          mount(renewed, recoveryBox(d.renewRecoveryCodes));
        }, 'Make new recovery codes', 'renew-codes'),
        renewed,
        m.required
          ? h('p', {}, 'Your organisation requires a second factor: it cannot be turned off (an administrator can reset it for a lost phone).')
          : codeForm('Turn off', async (code) => {
              await ctx.api.gql(DISABLE, { code });
              await loadFactor();
            }, 'Turn the second factor off', 'totp-disable'),
      );
    } catch (err) {
      mount(factorBox, errorBox(err));
    }
  }

  async function loadSessions() {
    mount(sessionsBox, loading());
    try {
      const { me } = await ctx.api.gql(SESSIONS);
      const rows = me.sessions;
      mount(
        sessionsBox,
        table(
          [
            { label: 'Where', value: (s) => h('span', {}, browserName(s.userAgent), s.current ? h('strong', {}, ' (this browser)') : null) },
            { label: 'From', value: (s) => s.clientAddress || 'an unknown address' },
            { label: 'Signed in', value: (s) => dateTime(s.createdAt) },
            { label: 'Last active', value: (s) => ago(s.refreshedAt) },
            {
              label: '',
              value: (s) =>
                s.current
                  ? '—'
                  : h('button', {
                      type: 'button',
                      'data-testid': 'session-end',
                      onclick: async () => {
                        await ctx.api.gql(END, { id: s.id });
                        await loadSessions();
                      },
                    }, 'Sign out there'),
            },
          ],
          rows,
          { caption: 'Where you are signed in', empty: 'No session.', testid: 'sessions' },
        ),
        h('button', {
          type: 'button',
          class: 'danger',
          'data-testid': 'logout-everywhere',
          onclick: async () => {
            if (!window.confirm('Sign out everywhere, this browser included?')) return;
            await ctx.api.gql(EVERYWHERE);
            ctx.api.setToken(null);
            window.location.reload();
          },
        }, 'Sign out everywhere'),
      );
    } catch (err) {
      mount(sessionsBox, errorBox(err));
    }
  }

  mount(
    main,
    h('h1', {}, 'Your account'),
    card('Second factor', factorBox),
    card('Sessions', sessionsBox),
  );
  await Promise.all([loadFactor(), loadSessions()]);
  main.dataset.ready = 'account';
}
