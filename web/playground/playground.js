// The Ioto playground: GraphiQL against this server's /graphql (queries and mutations over
// HTTP) and /graphql/ws (subscriptions over graphql-transport-ws). Tokens come from the headers
// editor ({"Authorization": "Bearer <token>"}) or, when set, from sessionStorage 'ioto.token';
// they are never read from or written to the URL.
(function () {
  'use strict';

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

  var token = window.sessionStorage.getItem('ioto.token');
  var props = {
    fetcher: fetcher,
    defaultQuery: '# Sign in with the login mutation (or `ioto demo` prints tokens), then put\n' +
      '# {"Authorization": "Bearer <token>"} into the headers below.\n' +
      '{\n  me { email role tenant { name } }\n}\n',
    defaultHeaders: '{}',
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: false,
  };
  if (token) {
    props.headers = JSON.stringify({ Authorization: 'Bearer ' + token }, null, 2);
  }
  var query = new URLSearchParams(window.location.search).get('query');
  if (query) props.query = query;

  ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(GraphiQL, props));
})();
