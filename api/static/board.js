// VIP board: tier counts, the care-call worklist (paged, a call logged from its row),
// region figures (per office for a branch) and live tier changes for the region of an
// office, branch or admin token. Plain script, no build step; loaded from /board under
// a CSP that allows scripts from this origin only, after board-format.js.
"use strict";

(() => {
  const { displayName, number, percent, decimal } = globalThis.BoardFormat;
  const TOKEN_KEY = "loyalty.board.token";
  const STAFF_ROLES = ["office", "branch", "admin"];
  const TIERS = [
    { key: "standard", name: "STANDARD", label: "Standard", card: "普通知音卡" },
    { key: "silver", name: "SILVER", label: "Silver", card: "银卡" },
    { key: "gold", name: "GOLD", label: "Gold", card: "金卡" },
    { key: "platinum", name: "PLATINUM", label: "Platinum", card: "白金卡" },
  ];
  const MAX_CHANGES = 50;
  const WORKLIST_PAGE_SIZE = 10;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  /** A problem to show to the person at the screen, as it is. */
  class BoardError extends Error {}

  // ---- the token ------------------------------------------------------------------

  function base64UrlDecode(part) {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }

  /** The JWT's claims, read without verifying the signature (the server does that). */
  function readClaims(token) {
    const parts = token.split(".");
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
      throw new BoardError("That is not a token: a JWT is three base64url parts separated by dots (eyJ...).");
    }
    let claims;
    try {
      claims = JSON.parse(base64UrlDecode(parts[1]));
    } catch {
      throw new BoardError("That is not a token: its middle part is not base64url-encoded JSON.");
    }
    if (!claims || typeof claims !== "object") {
      throw new BoardError("That is not a token: its claims are not a JSON object.");
    }
    if (!STAFF_ROLES.includes(claims.role)) {
      throw new BoardError(
        `This board is for office, branch and admin staff; this token's role is ${JSON.stringify(claims.role ?? null)}.`,
      );
    }
    if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) {
      throw new BoardError(`This token expired at ${new Date(claims.exp * 1000).toLocaleString()}. Ask for a new one.`);
    }
    return claims;
  }

  // ---- GraphQL over HTTP ----------------------------------------------------------

  const state = {
    token: null, claims: null, live: null, refreshTimer: null,
    // The worklist's keyset pages: the `after` cursor of each page seen, the first null.
    pages: [null],
    nextCursor: null, // the next page's cursor, if there is one
    worklistLoad: 0, // the latest worklist request: an older answer is dropped
    // Calls logged from this page: member id -> outcome, shown on rows still due.
    logged: new Map(),
  };

  async function gql(query, variables = {}) {
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new BoardError(`The server cannot be reached (${error.message}).`);
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new BoardError(`The server answered ${response.status} ${response.statusText} instead of GraphQL.`);
    }
    return body;
  }

  function errorCode(error) {
    return (error.extensions && error.extensions.code) || "";
  }

  /** Data of a result; a refused token signs out, other errors become a BoardError. */
  function dataOf(body) {
    const errors = body.errors || [];
    const refusal = errors.find((e) => ["UNAUTHENTICATED", "FORBIDDEN"].includes(errorCode(e)));
    if (refusal) {
      signOut(`The server refused this token: ${refusal.message}`);
      throw new BoardError(refusal.message);
    }
    if (errors.length) {
      throw new BoardError(errors.map((e) => e.message).join("; "));
    }
    return body.data;
  }

  /** Whether the server's schema has no such query field (not deployed yet). */
  function isUnknownField(body, field) {
    return (body.errors || []).some((e) => new RegExp(`Cannot query field ['"]${field}['"]`).test(e.message));
  }

  // ---- rendering helpers ----------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    node.append(...children);
    return node;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function setLiveStatus(stateName, text) {
    const badge = $("live-status");
    badge.dataset.state = stateName;
    badge.textContent = text;
  }

  function memberName(member) {
    return displayName(member.familyName, member.givenName);
  }

  // ---- panels ---------------------------------------------------------------------

  async function loadRegion() {
    const { role, scope } = state.claims;
    if (role === "office") {
      const data = dataOf(await gql(
        "query BoardOffice($code: String!) { office(code: $code) { code name city branch { code name } } }",
        { code: scope },
      ));
      if (!data.office) throw new BoardError(`Office ${scope} is not visible to this token.`);
      const { office } = data;
      $("region").textContent = `${office.name} (${office.code}) · ${office.city} · ${office.branch.name}`;
    } else if (role === "branch") {
      const data = dataOf(await gql("query BoardBranches { branches { code name offices { code } } }"));
      const branch = data.branches.find((b) => b.code === scope);
      if (!branch) throw new BoardError(`Branch ${scope} is not visible to this token.`);
      $("region").textContent = `${branch.name} (${branch.code}) · ${branch.offices.length} offices`;
    } else {
      $("region").textContent = "All branches and offices";
    }
  }

  function drawCounts(counts) {
    const width = 560;
    const barHeight = 34;
    const gap = 14;
    const labelWidth = 130;
    const numberWidth = 70;
    const max = Math.max(1, ...TIERS.map((t) => counts[t.key]));
    const height = TIERS.length * (barHeight + gap) - gap;
    const summary = TIERS.map((t) => `${t.name} ${number(counts[t.key])}`).join(", ");
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Members by tier: ${summary}`, class: "bars",
    });
    TIERS.forEach((tier, i) => {
      const y = i * (barHeight + gap);
      const value = counts[tier.key];
      const barWidth = Math.round(((width - labelWidth - numberWidth) * value) / max);
      chart.append(svg("g", { class: `bar bar-${tier.key}`, "data-tier": tier.name },
        svg("title", {}, `${tier.label} (${tier.card}): ${number(value)}`),
        svg("text", { x: 0, y: y + barHeight / 2, class: "label", "dominant-baseline": "middle" }, tier.label),
        svg("rect", { x: labelWidth, y, width: Math.max(barWidth, 2), height: barHeight, rx: 4, class: "fill" }),
        svg("text", { x: labelWidth + barWidth + 8, y: y + barHeight / 2, class: "count", "dominant-baseline": "middle" },
          number(value)),
      ));
    });
    $("counts-chart").replaceChildren(chart);
    const total = TIERS.reduce((sum, t) => sum + counts[t.key], 0);
    const vips = total - counts.standard;
    $("counts-total").textContent = `${number(total)} members, ${number(vips)} VIPs (silver and above)`;
  }

  async function loadCounts() {
    const data = dataOf(await gql("query BoardCounts { tierCounts { standard silver gold platinum } }"));
    drawCounts(data.tierCounts);
  }

  const STATS_FIELDS = [
    ["vips", "VIPs"],
    ["upgradesLast30Days", "Upgrades, last 30 days"],
    ["downgradesLast30Days", "Downgrades, last 30 days"],
    ["atRiskVips", "VIPs at risk of downgrade"],
    ["careCallCoverage", "Contacted within their call interval"],
    ["openComplaints", "Open complaints"],
    ["overdueComplaints", "Overdue complaints"],
  ];

  // Per office, for a branch: [column, cell text of a RegionStats row].
  const OFFICE_COLUMNS = [
    ["members", (o) => number(TIERS.reduce((sum, t) => sum + o.tierCounts[t.key], 0))],
    ["vips", (o) => number(o.vips)],
    ["upgradesLast30Days", (o) => number(o.upgradesLast30Days)],
    ["atRiskVips", (o) => number(o.atRiskVips)],
    ["careCallCoverage", (o) => percent(o.careCallCoverage)],
    ["openComplaints", (o) => number(o.openComplaints)],
    ["overdueComplaints", (o) => number(o.overdueComplaints)],
    ["averageSatisfaction", (o) => decimal(o.averageSatisfaction)],
  ];
  const OFFICE_FIELDS = `officeCode name tierCounts { standard silver gold platinum } vips upgradesLast30Days
    atRiskVips careCallCoverage openComplaints overdueComplaints averageSatisfaction`;

  function drawOffices(offices) {
    $("offices").replaceChildren(...offices.map((office) => el("tr", { "data-office": office.officeCode },
      el("th", { scope: "row" }, `${office.name} (${office.officeCode})`),
      ...OFFICE_COLUMNS.map(([column, text]) => el("td", { class: "num", "data-stat": column }, text(office))),
    )));
    $("offices-panel").hidden = false;
  }

  /** The region's figures and, for a branch, each of its offices' (officeStats), in one request. */
  async function loadStats() {
    const fields = STATS_FIELDS.map(([f]) => f).join(" ");
    const branch = state.claims.role === "branch";
    const body = branch
      ? await gql(`query BoardStats($branch: String!) {
          regionStats { ${fields} }
          officeStats(branchCode: $branch) { ${OFFICE_FIELDS} }
        }`, { branch: state.claims.scope })
      : await gql(`query BoardStats { regionStats { ${fields} } }`);
    const list = $("stats");
    if (isUnknownField(body, "regionStats") || isUnknownField(body, "officeStats")) {
      list.replaceChildren();
      $("stats-note").textContent = "Region figures not available on this server.";
      $("stats-note").hidden = false;
      return;
    }
    const data = dataOf(body);
    const stats = data.regionStats;
    list.replaceChildren(...STATS_FIELDS.flatMap(([field, label]) => {
      const value = field === "careCallCoverage" ? percent(stats[field]) : number(stats[field]);
      return [el("dt", {}, label), el("dd", { "data-stat": field }, value)];
    }));
    $("stats-note").hidden = true;
    if (branch) drawOffices(data.officeStats);
  }

  const REASONS = {
    FOLLOW_UP_DUE: "follow-up due",
    AT_RISK: "at risk of downgrade",
    JUST_UPGRADED: "just upgraded",
    DECLINING: "declining: churn warning",
    DORMANT: "dormant: churn warning",
    NEVER_CALLED: "never called",
    INTERVAL_PASSED: "call interval passed",
  };
  const OUTCOMES = {
    REACHED: "reached",
    NO_ANSWER: "no answer",
    DECLINED: "declined to talk",
    WRONG_NUMBER: "wrong number",
  };
  const SATISFACTION = { "": "not asked", 1: "1 very unhappy", 2: "2 unhappy", 3: "3 neither", 4: "4 happy", 5: "5 very happy" };

  const WORKLIST = `query BoardWorklist($first: Int!, $after: String) {
    careCallsDue(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { reason dueSince member { id cardNumber familyName givenName tier phone } } }
    }
  }`;
  const CALL_LOG = `mutation BoardCallLog($input: CareCallLogInput!) {
    careCallLog(input: $input) { careCall { id outcome } userErrors { code field message } }
  }`;

  function worklistRow({ member, reason, dueSince }) {
    const outcome = state.logged.get(member.id);
    const phone = member.phone
      ? el("a", { href: `tel:${member.phone.replace(/[^\d+]/g, "")}` }, member.phone)
      : "–";
    return el("tr", { "data-card": member.cardNumber, "data-member": member.id, "data-name": memberName(member) },
      el("td", { class: "card" }, member.cardNumber),
      el("td", { class: "name" }, memberName(member)),
      el("td", { class: "phone" }, phone),
      el("td", { class: `tier tier-${member.tier.toLowerCase()}` }, member.tier),
      el("td", { class: "reason", "data-reason": reason }, REASONS[reason] || reason),
      el("td", {}, dueSince),
      el("td", { class: "action" },
        outcome ? el("span", { class: "logged" }, `logged: ${OUTCOMES[outcome]}`) : "",
        el("button", { type: "button", class: "log-call" }, outcome ? "Log again" : "Log call")),
    );
  }

  /** The page of the worklist that state.pages ends with (the first page at sign-in). */
  async function loadWorklist() {
    const load = ++state.worklistLoad;
    const page = state.pages.length - 1;
    const body = await gql(WORKLIST, { first: WORKLIST_PAGE_SIZE, after: state.pages[page] });
    if (load !== state.worklistLoad) return; // a later load (paging, refresh) answers instead
    const table = $("worklist-table");
    const note = $("worklist-note");
    if (isUnknownField(body, "careCallsDue")) {
      table.hidden = true;
      $("worklist-pager").hidden = true;
      $("worklist-count").textContent = "";
      note.textContent = "Worklist not available on this server.";
      note.hidden = false;
      return;
    }
    const due = dataOf(body).careCallsDue;
    if (due.edges.length === 0 && page > 0) { // calls emptied the last page: show the one before
      state.pages.pop();
      await loadWorklist();
      return;
    }
    const openForm = $("worklist").querySelector("tr.call-form-row"); // kept across reloads, with what was typed
    $("worklist").replaceChildren(...due.edges.map(({ node }) => worklistRow(node)));
    const formRow = openForm && $("worklist").querySelector(`tr[data-member="${openForm.dataset.member}"]`);
    if (formRow) formRow.after(openForm);
    $("worklist-count").textContent = number(due.totalCount);
    table.hidden = due.edges.length === 0;
    note.textContent = due.totalCount === 0 ? "No call due. Every VIP has been looked after." : "";
    note.hidden = !note.textContent;
    state.nextCursor = due.pageInfo.hasNextPage ? due.pageInfo.endCursor : null;
    const pages = Math.max(1, Math.ceil(due.totalCount / WORKLIST_PAGE_SIZE));
    $("worklist-page").textContent = `Page ${number(page + 1)} of ${number(Math.max(pages, page + 1))}`;
    $("worklist-previous").disabled = page === 0;
    $("worklist-next").disabled = !state.nextCursor;
    $("worklist-pager").hidden = page === 0 && !state.nextCursor;
  }

  async function turnPage(forward) {
    if (forward && state.nextCursor) state.pages.push(state.nextCursor);
    else if (!forward && state.pages.length > 1) state.pages.pop();
    else return;
    try {
      await loadWorklist();
    } catch (error) {
      if (state.token) showError(error.message);
    }
  }

  // ---- logging a call from a worklist row -----------------------------------------

  /** An idempotency key for one call: a retry after a lost answer replays it. */
  function newCallKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return `board-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  function choices(name, options) {
    return el("select", { name }, ...Object.entries(options).map(([value, label]) => el("option", { value }, label)));
  }

  function openCallForm(row) {
    const open = $("worklist").querySelector("tr.call-form-row");
    if (open) open.remove();
    if (open && open.dataset.member === row.dataset.member) return; // the button again closes it
    const form = el("form", { class: "call-form", "data-key": newCallKey(), "aria-label": `Call to ${row.dataset.name}` },
      el("label", {}, "Outcome ", choices("outcome", OUTCOMES)),
      el("label", {}, "Satisfaction ", choices("satisfaction", SATISFACTION)),
      el("label", { class: "notes" }, "Note ", el("textarea", { name: "notes", rows: "2", maxlength: "2000" })),
      el("span", { class: "form-buttons" },
        el("button", { type: "submit" }, "Save call"),
        el("button", { type: "button", class: "secondary cancel" }, "Cancel")),
      el("ul", { class: "form-errors", role: "alert", hidden: "" }),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      saveCall(form, row.dataset.member, row.dataset.name);
    });
    form.querySelector(".cancel").addEventListener("click", () => form.closest("tr").remove());
    row.after(el("tr", { class: "call-form-row", "data-member": row.dataset.member }, el("td", { colspan: "7" }, form)));
    form.elements.outcome.focus();
  }

  function showFormErrors(form, messages) {
    const list = form.querySelector(".form-errors");
    list.replaceChildren(...messages.map((m) => el("li", {}, m)));
    list.hidden = messages.length === 0;
  }

  async function saveCall(form, memberId, name) {
    const { outcome, satisfaction, notes } = form.elements;
    const input = { memberId, outcome: outcome.value, idempotencyKey: form.dataset.key };
    if (satisfaction.value) input.satisfaction = Number(satisfaction.value);
    if (notes.value.trim()) input.notes = notes.value.trim();
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    showFormErrors(form, []);
    try {
      const payload = dataOf(await gql(CALL_LOG, { input })).careCallLog;
      if (payload.userErrors.length) {
        form.dataset.key = newCallKey(); // nothing was logged: the next try is another call
        showFormErrors(form, payload.userErrors.map((e) => e.message));
        return;
      }
      state.logged.set(memberId, payload.careCall.outcome);
      form.closest("tr").remove();
      $("worklist-status").textContent = `Call to ${name} logged: ${OUTCOMES[payload.careCall.outcome]}.`;
      $("worklist-status").hidden = false;
      await refreshAll(); // a contact leaves the worklist and moves the figures
    } catch (error) {
      showFormErrors(form, [error.message]); // same key kept: a retry replays a call that did get logged
    } finally {
      submit.disabled = false;
    }
  }

  /** Reload every panel that a tier change can move; errors show in the error box. */
  async function refreshAll() {
    const results = await Promise.allSettled([loadCounts(), loadStats(), loadWorklist()]);
    const failed = results.find((r) => r.status === "rejected");
    if (failed && state.token) showError(failed.reason.message);
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshAll, 250); // one reload for a burst of changes
  }

  function showChange(change) {
    const time = new Date(change.effectiveAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const item = el("li", { "data-card": change.cardNumber, "data-to": change.toTier, class: `change to-${change.toTier.toLowerCase()}` },
      el("span", { class: "card" }, change.cardNumber),
      el("span", { class: "name" }, memberName(change.member)),
      el("span", { class: "move" }, `${change.fromTier} → ${change.toTier}`),
      el("span", { class: "why" }, change.reason.toLowerCase()),
      el("time", { datetime: change.effectiveAt }, time),
    );
    const list = $("changes");
    list.prepend(item);
    while (list.children.length > MAX_CHANGES) list.lastElementChild.remove();
    $("changes-empty").hidden = true;
  }

  // ---- tierChanged over graphql-transport-ws --------------------------------------

  const TIER_CHANGED = `subscription BoardTierChanged($after: String) {
    tierChanged(after: $after) {
      cursor cardNumber fromTier toTier reason effectiveAt officeCode
      member { familyName givenName }
    }
  }`;

  /** One subscription that reconnects after a dropped connection and resumes after
   *  the last event it saw (the server replays from its log: no gap, no duplicate).
   *  `onResume` runs on each reconnection, to reload what may have moved meanwhile. */
  class LiveChanges {
    constructor(token, onChange, onResume) {
      this.token = token;
      this.onChange = onChange;
      this.onResume = onResume;
      this.connectedBefore = false;
      this.cursor = null;
      this.attempts = 0;
      this.stopped = false;
      this.socket = null;
      this.timer = null;
    }

    start() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/graphql`, "graphql-transport-ws");
      this.socket = socket;
      setLiveStatus("connecting", "connecting…");
      socket.addEventListener("open", () => {
        this.send({ type: "connection_init", payload: { Authorization: `Bearer ${this.token}` } });
      });
      socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
      socket.addEventListener("close", (event) => this.closed(event));
    }

    send(message) {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
    }

    receive(message) {
      switch (message.type) {
        case "connection_ack":
          this.attempts = 0;
          this.send({ id: "tier-changes", type: "subscribe", payload: { query: TIER_CHANGED, variables: { after: this.cursor } } });
          setLiveStatus("live", "live");
          if (this.connectedBefore) this.onResume();
          this.connectedBefore = true;
          break;
        case "next": {
          const { data, errors } = message.payload;
          if (errors && errors.length) {
            showError(`Live tier changes: ${errors.map((e) => e.message).join("; ")}`);
          } else {
            this.cursor = data.tierChanged.cursor;
            this.onChange(data.tierChanged);
          }
          break;
        }
        case "error":
          setLiveStatus("error", "live updates stopped");
          showError(`Live tier changes refused: ${(message.payload || []).map((e) => e.message).join("; ")}`);
          break;
        case "ping":
          this.send({ type: "pong" });
          break;
        default:
          break;
      }
    }

    closed(event) {
      if (this.stopped) return;
      if (event.code === 4403 || event.code === 4401) {
        setLiveStatus("error", "live updates refused");
        showError(`The server refused this token for live updates (${event.code} ${event.reason}). Sign in again with a valid token.`);
        return;
      }
      const delay = Math.min(30_000, 1_000 * 2 ** this.attempts);
      this.attempts += 1;
      setLiveStatus("reconnecting", `reconnecting in ${Math.round(delay / 1000)} s…`);
      this.timer = setTimeout(() => this.start(), delay);
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.socket) this.socket.close(1000, "signed out");
      setLiveStatus("off", "offline");
    }
  }

  // ---- signing in and out ---------------------------------------------------------

  function showBoard(signedIn) {
    $("sign-in").hidden = signedIn;
    $("board").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
  }

  function signOut(message = "") {
    if (state.live) state.live.stop();
    clearTimeout(state.refreshTimer);
    Object.assign(state, { token: null, claims: null, live: null, pages: [null], nextCursor: null });
    state.logged.clear();
    sessionStorage.removeItem(TOKEN_KEY);
    $("region").textContent = "";
    $("worklist").replaceChildren();
    $("worklist-status").hidden = true;
    $("offices").replaceChildren();
    $("offices-panel").hidden = true;
    $("changes").replaceChildren();
    $("changes-empty").hidden = false;
    showBoard(false);
    showError(message);
  }

  async function signIn(token) {
    showError("");
    let claims;
    try {
      claims = readClaims(token);
    } catch (error) {
      signOut(error.message);
      return;
    }
    Object.assign(state, { token, claims });
    try {
      await loadRegion(); // checks the token with the server before anything is shown
    } catch (error) {
      if (state.token) signOut(error.message); // (a refusal has signed out already)
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    showBoard(true);
    state.live = new LiveChanges(token, (change) => {
      showChange(change);
      scheduleRefresh();
    }, scheduleRefresh);
    state.live.start();
    await refreshAll();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
      $("token").value = "";
      signIn(token);
    });
    $("sign-out").addEventListener("click", () => signOut());
    $("worklist").addEventListener("click", (event) => {
      const button = event.target.closest("button.log-call");
      if (button) openCallForm(button.closest("tr"));
    });
    $("worklist-next").addEventListener("click", () => turnPage(true));
    $("worklist-previous").addEventListener("click", () => turnPage(false));
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    else showBoard(false);
  });
})();
