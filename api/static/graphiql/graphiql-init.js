// Starts the vendored GraphiQL (graphiql.min.js, React UMD builds: see VERSIONS.md)
// against this server's /graphql, over HTTP for queries and mutations and over
// WebSocket (graphql-transport-ws) for subscriptions. The token goes in the Headers
// tab: {"Authorization": "Bearer <token>"}; it is sent with connection_init too.
(function () {
  "use strict";
  var endpoint = new URL("/graphql", window.location.href);
  var socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  var fetcher = GraphiQL.createFetcher({
    url: endpoint.href,
    subscriptionUrl: socket.href,
    headers: { Accept: "application/graphql-response+json, application/json;q=0.9" },
  });

  var defaultQuery = [
    "# Loyalty API. Put a token in Headers below:",
    '#   {"Authorization": "Bearer <token>"}',
    "# (`loyalty token --role admin`, or one printed by `make run`).",
    "",
    "query Tiers {",
    "  tierRules { rules { tier } }",
    "}",
    "",
  ].join("\n");

  var root = document.getElementById("graphiql");
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: '{\n  "Authorization": "Bearer "\n}',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    })
  );
})();
