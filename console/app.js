/*
 * enrichd console: plain JavaScript, no build step, no library.
 *
 * The admin key is typed once and kept in this tab's sessionStorage only; every
 * call sends it in the Authorization header (never in a URL, never in a cookie).
 * Pages are built with DOM methods and textContent, never from HTML strings, so
 * nothing the API returns can run as markup; charts are SVG elements.
 */
"use strict";

const KEY_SLOT = "enrichd.adminKey";
const POLL_MS = { pool: 5000, jobs: 2000, alerts: 10000, audit: 0, usage: 0 };
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
let current = null;      // the view shown
let timer = null;        // its refresh timer
let auditCursor = null;  // next page of the audit log

/* ---- small DOM helpers ------------------------------------------------------ */

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const kid of kids) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
}

function stateBadge(state) {
  return el("span", { class: "state state-" + state, text: state });
}

/* A table that turns into labelled cards at phone width. */
function table(cols, rows, opts = {}) {
  const head = el("tr", {}, cols.map((c) => el("th", { class: c.num ? "num" : null, text: c.label })));
  const body = rows.map((r) => {
    const tr = el("tr", { class: r._class || null, "data-id": r._id || null });
    cols.forEach((c) => {
      const v = c.cell ? c.cell(r) : r[c.key];
      const td = el("td", { class: [c.num ? "num" : "", c.cls || ""].join(" ").trim() || null,
                            "data-label": c.label });
      if (v instanceof Node) td.append(v);
      else if (Array.isArray(v)) td.append(...v.filter((x) => x !== null && x !== undefined));
      else if (v === null || v === undefined || v === "") td.textContent = c.cls === "actions" ? "" : "–";
      else td.textContent = String(v);
      tr.append(td);
    });
    return tr;
  });
  const t = el("table", { class: "cards", id: opts.id || null }, el("thead", {}, head), el("tbody", {}, body));
  return t;
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/:\d\dZ$/, "Z");
}

function fmtIn(iso) {
  if (!iso) return "";
  const s = Math.round((new Date(iso) - Date.now()) / 1000);
  if (s <= 0) return fmtTime(iso);
  return fmtTime(iso) + " (in " + fmtDuration(s) + ")";
}

function fmtDuration(s) {
  if (s === null || s === undefined) return "";
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}

const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

function notice(text) {
  const n = $("notice");
  n.textContent = text || "";
  n.hidden = !text;
}

/* ---- the API ------------------------------------------------------------------ */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, key) {
  const headers = { Authorization: "Bearer " + (key || sessionStorage.getItem(KEY_SLOT) || "") };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (!r.ok) {
    let code = "http_" + r.status, message = r.statusText;
    try {
      const j = await r.json();
      if (j && j.error) ({ code, message } = j.error);
    } catch (e) { /* not JSON: keep the status */ }
    if (r.status === 401 && !key) signOut("The key was refused (revoked, expired or unknown): sign in again.");
    throw new ApiError(r.status, code, message);
  }
  return r;
}

async function apiJson(method, path, body) {
  return (await api(method, path, body)).json();
}

/* ---- sign in ------------------------------------------------------------------- */

async function signIn(ev) {
  ev.preventDefault();
  const input = $("key"), err = $("signin-error");
  const key = input.value.trim();
  err.hidden = true;
  try {
    await api("GET", "/admin/keys", undefined, key);
  } catch (e) {
    err.textContent = e.status === 401 ? "This key was refused: it is unknown, revoked or expired."
      : e.status === 403 ? "This key has no admin scope."
      : "enrichd could not be asked (" + e.message + ").";
    err.hidden = false;
    input.select();
    return;
  }
  sessionStorage.setItem(KEY_SLOT, key);
  input.value = "";
  showApp();
}

function signOut(why) {
  sessionStorage.removeItem(KEY_SLOT);
  stopTimer();
  document.querySelectorAll(".view").forEach((v) => { v.hidden = true; });
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  const err = $("signin-error");
  err.textContent = why || "";
  err.hidden = !why;
  notice("");
  $("key").focus();
}

function showApp() {
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
  route();
}

/* ---- routing and refresh --------------------------------------------------------- */

const views = { pool: loadPool, usage: loadUsage, jobs: loadJobs, alerts: loadAlerts, audit: loadAudit };

function stopTimer() {
  if (timer) clearTimeout(timer);
  timer = null;
}

function route() {
  if (!sessionStorage.getItem(KEY_SLOT)) return signOut();
  const name = (location.hash || "#pool").slice(1);
  const view = views[name] ? name : "pool";
  stopTimer();
  notice("");
  current = view;
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== "view-" + view; });
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  if (view === "jobs") jobsPages = 1;
  if (view === "audit") auditCursor = null;
  refresh(view);
}

async function refresh(view) {
  try {
    await views[view]();
    if (current === view) notice("");
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) notice("Could not load this view: " + e.message);
  }
  if (current === view && POLL_MS[view] && sessionStorage.getItem(KEY_SLOT)) {
    stopTimer();
    timer = setTimeout(() => refresh(view), POLL_MS[view]);
  }
}

function stamp(id) {
  $(id).textContent = "updated " + new Date().toISOString().slice(11, 19) + "Z";
}

/* ---- confirmation ----------------------------------------------------------------- */

function confirmAction(title, text, okLabel) {
  const d = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel || "Confirm";
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = "";
    d.showModal();
  });
}

/* ---- key pool -------------------------------------------------------------------- */

async function revive(k) {
  const ok = await confirmAction("Revive " + k.id + "?",
    "Key " + k.id + " (…" + k.last4 + ") of " + k.provider + " is " + k.state +
    ". Reviving puts it back in service now; do it once its secret or credits are right.", "Revive");
  if (!ok) return;
  try {
    await api("POST", "/admin/keys/" + encodeURIComponent(k.id) + "/revive");
    notice("Revived " + k.id + ".");
  } catch (e) {
    notice("Revive failed: " + e.message);
  }
  await loadPool();
}

/* A key's credits spent, and under them what is left of its credit budgets
 * (its own, its upstream account's), in words as well as numbers so it
 * reads without colour. */
function creditsCell(k) {
  const budgets = k.budgets || [];
  if (budgets.length === 0) return num(k.credits);
  return el("span", {}, num(k.credits), budgets.map((b) => el("span", {
    class: "budget-line" + (b.left === 0 ? " spent" : "") }, el("br"),
    num(b.left) + " of " + num(b.limit) + " left", el("br"),
    el("span", { class: "meta", text: (b.budget.startsWith("key:") ? "key" : "account") + "/" + b.period +
                                      (b.left === 0 ? ", spent" : "") }))));
}

async function loadPool() {
  const { keys } = await apiJson("GET", "/admin/keys");
  const body = $("pool-body");
  const byProvider = new Map();
  keys.forEach((k) => {
    if (!byProvider.has(k.provider)) byProvider.set(k.provider, []);
    byProvider.get(k.provider).push(k);
  });
  const out = [];
  const budgets = keys.some((k) => (k.budgets || []).length > 0);
  const counts = {};
  keys.forEach((k) => { counts[k.state] = (counts[k.state] || 0) + 1; });
  $("pool-summary").textContent = keys.length + " keys: " +
    Object.entries(counts).map(([s, n]) => n + " " + s).join(", ");
  if (keys.length === 0) out.push(el("p", { class: "empty", text: "No upstream keys are configured." }));
  for (const [provider, list] of byProvider) {
    const usable = list.filter((k) => k.state === "active").length;
    out.push(el("h3", {}, provider + " ", el("span", { class: "meta", text: usable + " of " + list.length + " usable" })));
    const cols = [
      { label: "Key", cls: "key", cell: (k) => el("span", {}, k.id, el("br"), el("code", { text: "…" + k.last4 })) },
      { label: "Account", key: "account" },
      { label: "State", cell: (k) => stateBadge(k.state) },
      { label: "Why", cls: "why", key: "why" },
      { label: "Until", cell: (k) => (k.until ? fmtIn(k.until) : k.state === "active" ? "" : "until revived") },
      { label: "Calls", num: true, cell: (k) => num(k.calls) },
      { label: "Hits", num: true, cell: (k) => num(k.hits) },
      { label: "Misses", num: true, cell: (k) => num(k.misses) },
      { label: "Errors", num: true, cell: (k) => num(k.errors) },
      { label: budgets ? "Credits, budget" : "Credits", num: true, cls: budgets ? "budget" : null, cell: creditsCell },
    ];
    if (keys.some((k) => k.requests_left !== undefined && k.requests_left !== null))
      cols.push({ label: "Requests left", num: true, cell: (k) => (k.requests_left === null || k.requests_left === undefined ? "" : num(k.requests_left)) });
    if (keys.some((k) => k.credits_left !== undefined && k.credits_left !== null))
      cols.push({ label: "Credits left", num: true, cell: (k) => (k.credits_left === null || k.credits_left === undefined ? "" : num(k.credits_left)) });
    cols.push({ label: "Last used", cell: (k) => fmtTime(k.last_used) });
    cols.push({ label: "", cls: "actions", cell: (k) => (k.state === "invalid" || k.state === "exhausted")
      ? el("button", { type: "button", class: "quiet", "data-revive": k.id, onclick: () => revive(k) }, "Revive")
      : "" });
    out.push(table(cols, list.map((k) => Object.assign({ _id: k.id }, k)), { id: "pool-" + provider }));
  }
  body.replaceChildren(...out);
  stamp("pool-refreshed");
}

/* ---- usage ------------------------------------------------------------------------ */

function barChart(title, days, values, cls) {
  /* Drawn for the width it gets, so its text stays readable on a phone. */
  const W = window.innerWidth < 700 ? 340 : 600, H = W < 600 ? 150 : 180, L = 44, B = 26, T = 10;
  const max = Math.max(1, ...values);
  const n = days.length, step = (W - L - 8) / Math.max(1, n), bw = Math.max(2, step * 0.7);
  const g = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
                         "aria-label": title + ": " + values.reduce((a, b) => a + b, 0) + " in all" });
  g.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }));
  g.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  g.append(svg("text", { x: L - 6, y: T + 8, "text-anchor": "end" }, String(max)));
  g.append(svg("text", { x: L - 6, y: H - B, "text-anchor": "end" }, "0"));
  days.forEach((d, i) => {
    const h = (values[i] / max) * (H - B - T);
    const x = L + 4 + i * step;
    const r = svg("rect", { class: "bar " + cls, x: x.toFixed(1), y: (H - B - h).toFixed(1),
                            width: bw.toFixed(1), height: Math.max(0, h).toFixed(1) });
    r.append(svg("title", {}, d + ": " + values[i]));
    g.append(r);
    const every = Math.ceil(n / (W < 600 ? 4 : 8));
    /* Every few days, and the last one, never two labels on top of each other. */
    if (i === n - 1 || (i % every === 0 && n - 1 - i >= every / 2))
      g.append(svg("text", { x: (i === n - 1 ? Math.min(x + bw, W - 1) : x + bw / 2).toFixed(1), y: H - 8,
                             "text-anchor": i === n - 1 ? "end" : "middle" }, d.slice(5)));
  });
  return g;
}

/* Each account's credit budgets now: used, held by calls in flight, left. */
function budgetTable(accounts) {
  const rows = [];
  accounts.forEach((a) => (a.budgets || []).forEach((b) => rows.push({
    _id: a.name + "-" + b.period, account: a.name, period: "per " + b.period, limit: b.limit,
    spent: b.spent, held: b.held, left: b.left, resets: b.resets })));
  if (rows.length === 0) return el("p", { class: "empty", text: "No account has a credit budget." });
  return table([{ label: "Account", key: "account" },
                { label: "Budget", key: "period" },
                { label: "Credits", num: true, cell: (r) => num(r.limit) },
                { label: "Used", num: true, cell: (r) => num(r.spent) },
                { label: "Held", num: true, cell: (r) => num(r.held) },
                { label: "Left", num: true, cell: (r) => num(r.left) + (r.left === 0 ? " (spent)" : "") },
                { label: "Resets", cls: "nowrap", cell: (r) => fmtIn(r.resets) }], rows, { id: "usage-budgets" });
}

async function loadUsage() {
  const days = Number($("usage-days").value);
  const [{ usage, from }, { accounts: accountList }] = await Promise.all([
    apiJson("GET", "/admin/usage?days=" + days), apiJson("GET", "/admin/accounts")]);
  const dayList = [];
  for (let t = Date.parse(from + "T00:00:00Z"); dayList.length < days; t += 86400000)
    dayList.push(new Date(t).toISOString().slice(0, 10));
  const accounts = new Map();
  usage.forEach((u) => {
    if (!accounts.has(u.account)) accounts.set(u.account, new Map());
    accounts.get(u.account).set(u.day, u);
  });
  const out = [];
  const totals = [];
  const all = { account: "all accounts", requests: 0, records: 0, credits: 0, rejections: 0, _class: "total" };
  if (accounts.size === 0) out.push(el("p", { class: "empty", text: "No usage recorded since " + from + "." }));
  for (const [name, perDay] of accounts) {
    const pick = (f) => dayList.map((d) => (perDay.get(d) || {})[f] || 0);
    const sum = (f) => pick(f).reduce((a, b) => a + b, 0);
    const t = { account: name, requests: sum("requests"), records: sum("records"),
                credits: sum("credits"), rejections: sum("rejections") };
    ["requests", "records", "credits", "rejections"].forEach((f) => { all[f] += t[f]; });
    totals.push(t);
    out.push(el("h3", { text: name }));
    out.push(el("div", { class: "charts" },
      el("figure", {}, el("figcaption", {}, "Requests per day", el("span", { class: "total", text: "total " + num(t.requests) })),
         barChart(name + " requests", dayList, pick("requests"), "bar-requests")),
      el("figure", {}, el("figcaption", {}, "Credits per day", el("span", { class: "total", text: "total " + num(t.credits) })),
         barChart(name + " credits", dayList, pick("credits"), "bar-credits"))));
  }
  if (totals.length) {
    if (totals.length > 1) totals.push(all);
    out.unshift(el("h3", { text: "Totals since " + from }),
      table([{ label: "Account", key: "account" },
             { label: "Requests", num: true, cell: (r) => num(r.requests) },
             { label: "Records", num: true, cell: (r) => num(r.records) },
             { label: "Credits", num: true, cell: (r) => num(r.credits) },
             { label: "Rejections", num: true, cell: (r) => num(r.rejections) }], totals, { id: "usage-totals" }));
  }
  const budgetAt = totals.length ? 2 : out.length;
  out.splice(budgetAt, 0, el("h3", { text: "Credit budgets" }), budgetTable(accountList));
  $("usage-body").replaceChildren(...out);
}

/* ---- jobs -------------------------------------------------------------------------- */

async function download(job, format) {
  try {
    const r = await api("GET", "/enrich/jobs/" + encodeURIComponent(job.job_id) + "/results?format=" + format);
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: job.job_id + (format === "csv" ? ".csv" : ".ndjson") });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    notice("Download failed: " + e.message);
  }
}

async function jobAction(job, what) {
  const cancel = what === "cancel";
  const ok = await confirmAction((cancel ? "Cancel " : "Retry ") + job.job_id + "?",
    cancel ? "Pending rows will not run; finished rows stay downloadable."
           : job.failed + " failed rows go back in the queue.", cancel ? "Cancel the job" : "Retry");
  if (!ok) return;
  try {
    await api(cancel ? "DELETE" : "POST", "/enrich/jobs/" + encodeURIComponent(job.job_id) + (cancel ? "" : "/retry"));
    notice((cancel ? "Cancelled " : "Retried ") + job.job_id + ".");
  } catch (e) {
    notice((cancel ? "Cancel" : "Retry") + " failed: " + e.message);
  }
  await loadJobs();
}

function jobRows(jobs) {
  const cols = [
    { label: "Job", cls: "id", cell: (j) => el("code", { text: j.job_id }) },
    { label: "Account", key: "account" },
    { label: "State", cell: (j) => stateBadge(j.status) },
    { label: "Progress", cls: "nowrap", cell: (j) => [el("progress", { max: 1000, value: Math.round(j.progress * 1000),
                                                         "aria-label": "progress of " + j.job_id }),
                                        el("span", { class: "pct", text: (j.progress * 100).toFixed(1) + "%" })] },
    { label: "Rows", num: true, cell: (j) => num(j.done + j.failed + j.rejected) + " / " + num(j.total) },
    { label: "Failed", num: true, cell: (j) => num(j.failed) },
    { label: "Rate", num: true, cell: (j) => (j.rate_per_min ? j.rate_per_min + "/min" : "") },
    { label: "ETA", num: true, cell: (j) => (j.status === "running" && j.eta_seconds !== null ? fmtDuration(j.eta_seconds) : "") },
    { label: "Credits", num: true, cell: (j) => num(j.credits_used) },
    { label: "Created", cell: (j) => fmtTime(j.created_at) },
    { label: "", cls: "actions", cell: (j) => [
      el("button", { type: "button", class: "quiet", "data-download": "csv", onclick: () => download(j, "csv") }, "CSV"),
      el("button", { type: "button", class: "quiet", "data-download": "ndjson", onclick: () => download(j, "ndjson") }, "NDJSON"),
      j.failed > 0 && j.status !== "cancelled"
        ? el("button", { type: "button", class: "quiet", "data-action": "retry", onclick: () => jobAction(j, "retry") }, "Retry") : null,
      j.status === "queued" || j.status === "running"
        ? el("button", { type: "button", class: "danger", "data-action": "cancel", onclick: () => jobAction(j, "cancel") }, "Cancel") : null,
    ] },
  ];
  return table(cols, jobs.map((j) => Object.assign({ _id: j.job_id }, j)), { id: "jobs-table" });
}

let jobsShown = [];
let jobsPages = 1;

/* A refresh reads as many of the newest jobs as the pages shown hold. */
async function loadJobs(more) {
  if (more === true) jobsPages++;
  const limit = Math.min(100, 20 * jobsPages);
  const page = await apiJson("GET", "/enrich/jobs?limit=" + limit);
  jobsShown = page.jobs;
  $("jobs-more").hidden = !page.next_cursor || limit >= 100;
  $("jobs-body").replaceChildren(jobsShown.length ? jobRows(jobsShown)
    : el("p", { class: "empty", text: "No jobs yet (POST /enrich/enqueue submits one)." }));
  stamp("jobs-refreshed");
}

/* ---- alerts and audit ---------------------------------------------------------------- */

async function loadAlerts() {
  const { alerts } = await apiJson("GET", "/admin/alerts?limit=50");
  $("alerts-body").replaceChildren(alerts.length ? table([
    { label: "When", cls: "nowrap", cell: (a) => fmtTime(a.at) },
    { label: "Event", cell: (a) => stateBadge(a.state || a.event) },
    { label: "Provider", key: "provider" },
    { label: "Key", cell: (a) => (a.key ? a.key + " (…" + a.last4 + ")" : "") },
    { label: "What happened", cls: "why", key: "message" },
  ], alerts, { id: "alerts-table" }) : el("p", { class: "empty", text: "No alerts: no key has died and no pool has run dry." }));
}

function auditRows(entries) {
  return table([
    { label: "When", cls: "nowrap", cell: (a) => fmtTime(a.at) },
    { label: "Who", key: "who" },
    { label: "Action", cell: (a) => el("code", { text: a.action }) },
    { label: "Target", key: "target" },
    { label: "From", key: "from" },
    { label: "Details", cls: "why", cell: (a) => (a.details ? Object.entries(a.details).map(([k, v]) => k + "=" + (v === null ? "null" : String(v))).join(", ") : "") },
  ], entries, { id: "audit-table" });
}

let auditShown = [];

async function loadAudit(more) {
  const q = "/admin/audit?limit=50" + (more && auditCursor ? "&cursor=" + encodeURIComponent(auditCursor) : "");
  const page = await apiJson("GET", q);
  auditShown = more ? auditShown.concat(page.entries) : page.entries;
  auditCursor = page.next_cursor;
  $("audit-more").hidden = !auditCursor;
  $("audit-body").replaceChildren(auditShown.length ? auditRows(auditShown)
    : el("p", { class: "empty", text: "No admin action recorded yet." }));
}

/* ---- start ------------------------------------------------------------------------------ */

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut());
  $("usage-days").addEventListener("change", () => refresh("usage"));
  $("jobs-more").addEventListener("click", () => loadJobs(true).catch((e) => notice(e.message)));
  $("audit-more").addEventListener("click", () => loadAudit(true).catch((e) => notice(e.message)));
  window.addEventListener("hashchange", route);
  let resized = null;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(() => { if (current === "usage") refresh("usage"); }, 150);
  });
  if (sessionStorage.getItem(KEY_SLOT)) showApp();
  else signOut();
});
