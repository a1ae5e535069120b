// The Ioto playground: GraphiQL against this server's /graphql (queries and mutations over
// HTTP) and /graphql/ws (subscriptions over graphql-transport-ws), with a slim bar above it:
// sign in (the `login` mutation; the token goes into sessionStorage 'ioto.token' and into the
// Authorization header), the example operations of /playground/operations.graphql, and a link
// to the console. Tokens come from the headers editor ({"Authorization": "Bearer <token>"}) or
// from sessionStorage; they are never read from or written to the URL.
(function () {
  'use strict';

  var TOKEN_KEY = 'ioto.token';
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql/ws';
  var current = { auth: null, fetcher: null, client: null };

  function authorizationOf(headers) {
    if (!headers) return '';
    for (var key in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, key) && key.toLowerCase() === 'authorization') {
        return String(headers[key]);
      }
    }
    return '';
  }

  // The server reads the token from connection_init, once per socket: a changed Authorization
  // header gets a new socket.
  function fetcherFor(auth) {
    if (current.fetcher && current.auth === auth) return current.fetcher;
    if (current.client) current.client.dispose();
    current.auth = auth;
    current.client = graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      connectionParams: { authorization: auth },
    });
    current.fetcher = GraphiQL.createFetcher({ url: '/graphql', wsClient: current.client });
    return current.fetcher;
  }

  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    return fetcherFor(authorizationOf(headers))(params, options);
  }

  // ---- GraphiQL, re-rendered with new `headers` / `query` / `variables` props when the bar
  // changes them (GraphiQL copies a changed prop into its editor; the other editors, the tabs
  // and the fetched schema stay as they are).

  var token = window.sessionStorage.getItem(TOKEN_KEY);
  var props = {
    fetcher: fetcher,
    defaultQuery: '# Sign in above (or use the login mutation, or a token from `ioto demo`), or put\n' +
      '# {"Authorization": "Bearer <token>"} into the headers below.\n' +
      '# "Example operations" above loads any of the documented operations.\n' +
      '{\n  me { email role tenant { name } }\n}\n',
    defaultHeaders: '{}',
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: false,
    // What the user typed into the headers editor, so signing in or out keeps their other headers.
    onEditHeaders: function (value) {
      editedHeaders = value;
    },
  };
  var editedHeaders = null;
  if (token) {
    props.headers = JSON.stringify({ Authorization: 'Bearer ' + token }, null, 2);
  }
  var query = new URLSearchParams(window.location.search).get('query');
  if (query) props.query = query;

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  function draw() {
    root.render(React.createElement(GraphiQL, Object.assign({}, props)));
  }

  // GraphiQL copies a prop into its editor only when the prop changes: a value equal to the last
  // one given (the user has edited the editor since) is made different by a trailing newline.
  function setProp(name, value) {
    if (props[name] === value) value = value.endsWith('\n') ? value.replace(/\n+$/, '') : value + '\n';
    props[name] = value;
  }

  // The headers editor's JSON with the Authorization header set (or removed when `auth` is
  // null); other headers are kept.
  function applyAuthorization(auth) {
    var text = editedHeaders !== null ? editedHeaders : props.headers || '{}';
    var obj;
    try {
      obj = JSON.parse(text || '{}');
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) obj = {};
    } catch (e) {
      obj = {};
    }
    Object.keys(obj).forEach(function (k) {
      if (k.toLowerCase() === 'authorization') delete obj[k];
    });
    if (auth) obj.Authorization = auth;
    var next = JSON.stringify(obj, null, 2);
    editedHeaders = next;
    setProp('headers', next);
    draw();
  }

  draw();

  // ---- the bar: sign in and out -------------------------------------------------------------

  var $ = function (id) {
    return document.getElementById(id);
  };
  var form = $('pg-login');
  var email = $('pg-email');
  var password = $('pg-password');
  var submit = $('pg-login-submit');
  var session = $('pg-session');
  var who = $('pg-who');
  var message = $('pg-message');

  function say(text, isError) {
    message.textContent = text || '';
    message.className = 'pg-message' + (isError ? ' pg-error' : '');
    message.setAttribute('role', isError ? 'alert' : 'status');
  }

  function errorText(errors, status) {
    var first = (errors && errors[0]) || { message: 'HTTP ' + status };
    var code = first.extensions && first.extensions.code;
    return first.message + (code ? ' (' + code + ')' : '');
  }

  // A query or mutation over HTTP; resolves to `data`, rejects with an Error carrying `.code`.
  function gql(q, variables, bearer) {
    var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (bearer) headers.Authorization = 'Bearer ' + bearer;
    return fetch('/graphql', { method: 'POST', headers: headers, body: JSON.stringify({ query: q, variables: variables || {} }) })
      .then(function (res) {
        return res.json().then(
          function (body) {
            return { res: res, body: body };
          },
          function () {
            return { res: res, body: null };
          },
        );
      })
      .then(function (r) {
        if (!r.body) throw Object.assign(new Error('the server answered HTTP ' + r.res.status + ' without JSON'), { code: 'HTTP_' + r.res.status });
        if (r.body.errors && r.body.errors.length) {
          var first = r.body.errors[0];
          throw Object.assign(new Error(errorText(r.body.errors, r.res.status)), { code: first.extensions && first.extensions.code });
        }
        if (!r.res.ok) throw Object.assign(new Error('HTTP ' + r.res.status), { code: 'HTTP_' + r.res.status });
        return r.body.data;
      });
  }

  var LOGIN = 'mutation PlaygroundLogin($email: String!, $password: String!) {\n' +
    '  login(email: $email, password: $password) { token expiresAt user { email role } }\n}';
  var ME = 'query PlaygroundMe { me { email displayName subject role tenant { name } customer { name } } }';

  function showSignedIn(me) {
    var name = me.email || me.subject || 'service token';
    var where = me.customer ? me.customer.name : me.tenant ? me.tenant.name : null;
    who.textContent = name + ' · ' + me.role + (where ? ' · ' + where : '');
    form.hidden = true;
    session.hidden = false;
  }

  function showSignedOut() {
    who.textContent = '';
    session.hidden = true;
    form.hidden = false;
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (!email.value.trim() || !password.value) {
      say('Enter your e-mail and password.', true);
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    say('Signing in…');
    gql(LOGIN, { email: email.value.trim(), password: password.value })
      .then(function (data) {
        var t = data.login.token;
        window.sessionStorage.setItem(TOKEN_KEY, t);
        password.value = '';
        applyAuthorization('Bearer ' + t);
        showSignedIn({ email: data.login.user.email, role: data.login.user.role });
        say('Signed in; the Authorization header is set. The token is kept for this tab only.');
        $('pg-logout').focus();
        // The tenant's name, for the bar.
        return gql(ME, {}, t).then(function (d) {
          showSignedIn(d.me);
        }, function () {});
      })
      .catch(function (err) {
        say('Sign-in failed: ' + err.message, true);
        password.focus();
      })
      .then(function () {
        submit.disabled = false;
      });
  });

  $('pg-logout').addEventListener('click', function () {
    window.sessionStorage.removeItem(TOKEN_KEY);
    applyAuthorization(null);
    showSignedOut();
    say('Signed out; the Authorization header is removed.');
    email.focus();
  });

  // A token from an earlier sign-in in this tab: who it is, or that it no longer works.
  if (token) {
    gql(ME, {}, token).then(function (d) {
      showSignedIn(d.me);
    }, function (err) {
      if (err.code === 'UNAUTHENTICATED') {
        window.sessionStorage.removeItem(TOKEN_KEY);
        applyAuthorization(null);
        showSignedOut();
        say('Your saved session has ended; sign in again.', true);
      } else {
        say('Could not check the saved token: ' + err.message, true);
      }
    });
  }

  // ---- the bar: example operations ---------------------------------------------------------

  var NAME = /[_A-Za-z][_0-9A-Za-z]*/;

  /// Splits a GraphQL document into its top-level definitions, each with the comment lines
  /// right above it: [{ kind, name, text, comment }]. Strings, block strings and comments are
  /// skipped when counting braces.
  function splitDocument(src) {
    var defs = [];
    var depth = 0;
    var start = -1;
    var i = 0;
    var n = src.length;
    while (i < n) {
      var c = src[i];
      if (c === '#') {
        while (i < n && src[i] !== '\n') i++;
        continue;
      }
      if (src.startsWith('"""', i)) {
        i += 3;
        while (i < n && !src.startsWith('"""', i)) i += src[i] === '\\' && src.startsWith('"""', i + 1) ? 4 : 1;
        i += 3;
        continue;
      }
      if (c === '"') {
        i++;
        while (i < n && src[i] !== '"' && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
        i++;
        continue;
      }
      if (depth === 0 && start < 0 && /[{_A-Za-z]/.test(c)) start = i;
      if (c === '{' || c === '(' || c === '[') depth++;
      else if (c === ')' || c === ']') depth--;
      else if (c === '}') {
        depth--;
        if (depth === 0 && start >= 0) {
          defs.push(definition(src, start, i + 1));
          start = -1;
        }
      }
      i++;
    }
    return defs;
  }

  function definition(src, start, end) {
    var body = src.slice(start, end);
    // The comment lines directly above (no blank line between).
    var lines = src.slice(0, start).split('\n');
    lines.pop(); // the definition's own line, up to its start
    var comment = [];
    for (var k = lines.length - 1; k >= 0 && /^\s*#/.test(lines[k]); k--) comment.unshift(lines[k].trim());
    var head = /^(query|mutation|subscription|fragment)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/.exec(body);
    return {
      kind: head ? head[1] : 'query',
      name: head && head[2] ? head[2] : null,
      body: body,
      comment: comment,
    };
  }

  /// The fragments an operation spreads, transitively, in document order.
  function fragmentsOf(body, fragments) {
    var seen = {};
    var todo = [body];
    while (todo.length) {
      var re = /\.\.\.\s*([_A-Za-z][_0-9A-Za-z]*)/g;
      var m;
      var text = todo.pop();
      while ((m = re.exec(text))) {
        var name = m[1];
        if (name !== 'on' && fragments[name] && !seen[name]) {
          seen[name] = true;
          todo.push(fragments[name].body);
        }
      }
    }
    return Object.keys(fragments).filter(function (f) {
      return seen[f];
    }).map(function (f) {
      return fragments[f].body;
    });
  }

  /// A variables template for an operation's variable definitions: required ones get a value
  /// of their type to edit, optional ones null, ones with a default are left to it.
  function variablesTemplate(body) {
    var open = body.indexOf('(');
    var brace = body.indexOf('{');
    if (open < 0 || (brace >= 0 && brace < open)) return '';
    var depth = 0;
    var close = -1;
    for (var i = open; i < body.length; i++) {
      if (body[i] === '(') depth++;
      else if (body[i] === ')' && --depth === 0) {
        close = i;
        break;
      }
    }
    if (close < 0) return '';
    var defs = body.slice(open + 1, close);
    var re = /\$([_A-Za-z][_0-9A-Za-z]*)\s*:\s*(\[?\s*([_A-Za-z][_0-9A-Za-z]*)\s*!?\s*\]?\s*(!?))\s*(=)?/g;
    var vars = {};
    var m;
    var now = Date.now();
    while ((m = re.exec(defs))) {
      var name = m[1];
      var type = m[2].replace(/\s+/g, '');
      var base = m[3];
      if (m[5]) continue; // a default value
      if (!/!$/.test(type)) {
        vars[name] = null;
        continue;
      }
      if (type.charAt(0) === '[') vars[name] = [];
      else if (base === 'Int' || base === 'Float') vars[name] = 0;
      else if (base === 'Boolean') vars[name] = false;
      else if (base === 'DateTime') {
        var at = name === 'from' ? now - 7 * 86400000 : name === 'at' ? now + 86400000 : now;
        vars[name] = new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
      } else if (base === 'Date') vars[name] = new Date(now).toISOString().slice(0, 10);
      else vars[name] = '';
    }
    return Object.keys(vars).length ? JSON.stringify(vars, null, 2) : '';
  }

  var select = $('pg-operations');
  var operations = [];

  function loadOperations() {
    fetch('/playground/operations.graphql', { headers: { Accept: 'application/graphql, text/plain' } })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.text();
      })
      .then(function (src) {
        var defs = splitDocument(src);
        var fragments = {};
        defs.forEach(function (d) {
          if (d.kind === 'fragment' && d.name) fragments[d.name] = d;
        });
        operations = defs.filter(function (d) {
          return d.kind !== 'fragment';
        }).map(function (d, i) {
          var parts = d.comment.length ? [d.comment.join('\n')] : [];
          parts.push(d.body);
          fragmentsOf(d.body, fragments).forEach(function (f) {
            parts.push(f);
          });
          return {
            kind: d.kind,
            name: d.name || 'Anonymous ' + d.kind + ' ' + (i + 1),
            text: parts.join('\n') + '\n',
            comment: d.comment.map(function (l) {
              return l.replace(/^#\s?/, '');
            }).join(' '),
            variables: variablesTemplate(d.body),
          };
        });
        var groups = { query: 'Queries', mutation: 'Mutations', subscription: 'Subscriptions' };
        select.replaceChildren();
        var placeholder = document.createElement('option');
        placeholder.value = '';
        placeholder.textContent = 'Choose one (' + operations.length + ')…';
        select.appendChild(placeholder);
        Object.keys(groups).forEach(function (kind) {
          var group = document.createElement('optgroup');
          group.label = groups[kind];
          operations.forEach(function (op, i) {
            if (op.kind !== kind) return;
            var opt = document.createElement('option');
            opt.value = String(i);
            opt.textContent = op.name;
            if (op.comment) opt.title = op.comment;
            opt.dataset.kind = op.kind;
            group.appendChild(opt);
          });
          if (group.children.length) select.appendChild(group);
        });
        select.disabled = operations.length === 0;
      })
      .catch(function (err) {
        select.replaceChildren();
        var opt = document.createElement('option');
        opt.value = '';
        opt.textContent = 'Examples unavailable';
        select.appendChild(opt);
        say('Could not load the example operations: ' + err.message, true);
      });
  }

  select.addEventListener('change', function () {
    var op = operations[Number(select.value)];
    if (select.value === '' || !op) return;
    setProp('query', op.text);
    setProp('variables', op.variables);
    draw();
    say('Loaded ' + op.kind + ' ' + op.name + (op.variables ? '; fill in its variables below' : '') + ', then run it (Ctrl-Enter).');
  });

  loadOperations();
})();
