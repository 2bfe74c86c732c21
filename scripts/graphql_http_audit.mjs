// The GraphQL-over-HTTP audit of graphql-http (its auditServer, from the npm registry)
// against a running server:
//
//   node scripts/graphql_http_audit.mjs http://127.0.0.1:8000/graphql
//
// graphql-http is resolved from NODE_PATH (tests/api/test_graphql_http_audit.py
// installs it into a gitignored directory and sets NODE_PATH). Prints one line per
// audit and a JSON summary as the last line; exits 1 when a MUST or SHOULD fails,
// except the SHOULDs listed in DECLINED (each with the README's reason).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH || process.cwd(), "noop.js"));
const { auditServer } = require("graphql-http");

// Audit ids declined on purpose, with why (README, "GraphQL over HTTP").
const DECLINED = new Map([]);

const url = process.argv[2];
if (!url) {
  console.error("usage: node scripts/graphql_http_audit.mjs URL");
  process.exit(2);
}

const results = await auditServer({ url });
let failed = 0;
const summary = { ok: 0, notice: 0, warn: 0, error: 0, declined: [] };
for (const result of results) {
  const declined = result.status !== "ok" && DECLINED.has(result.id);
  summary[result.status] += 1;
  let line = `${result.status.toUpperCase().padEnd(5)} ${result.id} ${result.name}`;
  if (result.status !== "ok") {
    line += ` -- ${result.reason}`;
    if (declined) {
      line += ` (declined: ${DECLINED.get(result.id)})`;
      summary.declined.push(result.id);
    } else if (!result.name.startsWith("MAY")) {
      failed += 1;
    }
  }
  console.log(line);
}
summary.failed = failed;
console.log(JSON.stringify(summary));
process.exit(failed ? 1 : 0);
