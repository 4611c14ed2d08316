// The netfeat operator console: plain JavaScript, no build step. Every
// name that comes from the service (device, interface, model, table, SQL
// value) reaches the page through textContent or an attribute set by the
// DOM, never through HTML, so it renders as text whatever it holds.
"use strict";

// ---- DOM ----------------------------------------------------------------

// el builds an element: attrs are properties or attributes (on* are
// listeners), children are nodes or strings (text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function setStatus(text, isError) {
  const s = document.getElementById("status");
  s.textContent = text || "";
  s.className = isError ? "error" : "";
}

function fmtTime(v) {
  if (v === null || v === undefined || v === "") return "";
  const d = typeof v === "number" ? new Date(v) : new Date(v);
  if (isNaN(d) || d.getFullYear() < 1971) return "";
  return d.toLocaleTimeString([], { hour12: false }) + (Date.now() - d > 86400e3 ? " " + d.toLocaleDateString() : "");
}

function fmtNum(v) {
  if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e7) ? v.toExponential(3) : String(+v.toFixed(4));
}

// fmtAxis writes an axis value in at most a few characters (1.5k, 20M).
function fmtAxis(v) {
  const a = Math.abs(v);
  for (const [d, u] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (a >= d) return +(v / d).toPrecision(4) + u;
  }
  return String(+v.toFixed(3));
}

// ---- API ------------------------------------------------------------------

const TOKEN_KEY = "netfeat.token";
let tokenPrompt = null;

// askToken shows the token dialog once for every caller waiting on a 401.
function askToken(message) {
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve) => {
    const dlg = document.getElementById("token-dialog");
    const input = document.getElementById("token-input");
    document.getElementById("token-error").textContent = message || "";
    input.value = "";
    const done = () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      dlg.close();
      tokenPrompt = null;
      resolve();
    };
    document.getElementById("token-ok").onclick = done;
    input.onkeydown = (ev) => { if (ev.key === "Enter") done(); };
    dlg.showModal();
    input.focus();
  });
  return tokenPrompt;
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

// api fetches a path of the service with the token; on 401 it asks for a
// token and tries again. It returns the Response (any status but 401).
async function api(path, opts) {
  opts = opts || {};
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, Object.assign({}, opts, { headers: authHeaders(opts.headers) }));
    if (res.status !== 401) return res;
    await askToken(attempt > 0 || sessionStorage.getItem(TOKEN_KEY) ? "That token was refused." : "");
  }
}

async function errorOf(res) {
  const text = await res.text();
  try {
    const j = JSON.parse(text);
    if (j && j.error) return j.error;
  } catch (_) { /* not JSON */ }
  return text.trim() || res.status + " " + res.statusText;
}

async function getJSON(path) {
  const res = await api(path);
  if (!res.ok) throw new Error(await errorOf(res));
  return res.json();
}

// sql runs one SELECT through POST /v1/query and returns {columns, rows};
// a failed query throws DuckDB's message.
async function sql(query, extra) {
  const res = await api("/v1/query", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(Object.assign({ sql: query }, extra || {})),
  });
  if (!res.ok) throw new Error(await errorOf(res));
  const j = await res.json();
  if (j.error) throw new Error(j.error);
  return j;
}

// lit quotes a string as an SQL literal; ident as an identifier.
function lit(s) { return "'" + String(s).replace(/'/g, "''") + "'"; }
function ident(s) { return '"' + String(s).replace(/"/g, '""') + '"'; }

// objects turns a query result into one object per row.
function objects(r) {
  const names = r.columns.map((c) => c.name);
  return r.rows.map((row) => Object.fromEntries(names.map((n, i) => [n, row[i]])));
}

// tables returns [{name, description, columns: [{name, type}]}]: from
// GET /v1/tables, or from information_schema where the service has none.
let tablesCache = null;
async function tables() {
  if (tablesCache) return tablesCache;
  const res = await api("/v1/tables");
  if (res.ok) {
    tablesCache = (await res.json()).tables || [];
    return tablesCache;
  }
  if (res.status !== 404) throw new Error(await errorOf(res));
  // information_schema lists only the tables a query has used on the
  // engine's database that answers, so the tables every netfeat has and
  // the feature views its models read are probed as well.
  const r = await sql("SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY table_name, ordinal_position");
  const by = new Map();
  for (const [t, c, ty] of r.rows) {
    if (!by.has(t)) by.set(t, { name: t, description: "", columns: [] });
    by.get(t).columns.push({ name: c, type: ty });
  }
  const models = await getJSON("/v1/models").catch(() => []);
  const known = ["samples", "series", "devices", "unmapped", "decisions", "actions", "metrics"];
  for (const m of models) if (m.view) known.push(m.view, "latest_" + m.view);
  const probe = [...new Set(known)].filter((t) => !by.has(t));
  const found = await Promise.all(probe.map((t) => sql(`SELECT * FROM ${ident(t)} LIMIT 0`).catch(() => null)));
  probe.forEach((t, i) => {
    if (found[i]) by.set(t, { name: t, description: "", columns: found[i].columns.map((c) => ({ name: c.name, type: c.type })) });
  });
  tablesCache = [...by.values()].sort((a, b) => a.name.localeCompare(b.name));
  return tablesCache;
}

// ---- entity links ----------------------------------------------------------

function entityHref(device, component) {
  return "#/entity/" + encodeURIComponent(device) + "/" + encodeURIComponent(component || "");
}
function deviceHref(device) { return "#/device/" + encodeURIComponent(device); }

function entityLink(device, component) {
  return el("a", { href: entityHref(device, component) }, component ? component : "(device)");
}

function stateCell(state) {
  return el("td", { class: "state state-" + String(state).replace(/[^a-z_]/g, "") }, state);
}

function featureList(features) {
  const entries = Object.entries(features || {}).sort((a, b) => a[0].localeCompare(b[0]));
  return el("div", { class: "features" }, entries.map(([k, v]) => el("span", {}, k + "=" + fmtNum(v))));
}

// table renders columns (names) and rows (arrays of cells: nodes or values).
function table(columns, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows.map((r) => r instanceof Node ? r : el("tr", {}, r.map((c) =>
      c instanceof Node ? c : el("td", { class: typeof c === "number" ? "num" : "" }, fmtNum(c)))))));
}

// ---- pages ----------------------------------------------------------------

const main = () => document.getElementById("main");

// every is a page's polling loop: fn now, then every ms until stopped.
function every(ms, fn) {
  let stopped = false, timer = null;
  const run = async () => {
    try {
      await fn();
      setStatus("updated " + fmtTime(Date.now()));
    } catch (e) {
      setStatus(e.message, true);
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

// maxRows bounds the rows a live table renders.
const maxRows = 200;

// Actions: the live feed (GET /v1/actions/stream, server-sent events read
// through fetch so that it carries the token).
function actionsPage(root) {
  const actions = new Map(); // fingerprint → ActionEvent
  const active = el("div", {}, el("p", { class: "muted" }, "Waiting for the feed…"));
  const resolved = el("div");
  const feedState = el("span", { class: "muted" });
  const filter = el("input", { id: "actions-filter", type: "search", placeholder: "filter: model, device, interface, action", size: 40 });
  const counts = el("span", { class: "muted" });
  root.append(el("h1", {}, "Actions ", feedState), el("div", { class: "toolbar" }, filter, counts),
    el("h2", {}, "Firing and pending"), active, el("h2", {}, "Recently resolved"), resolved);
  let pending = false;
  const render = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const needle = filter.value.trim().toLowerCase();
      const all = [...actions.values()].filter((a) => !needle ||
        [a.model, a.entity.device, a.entity.component, a.action, a.state].some((x) => String(x || "").toLowerCase().includes(needle)));
      counts.textContent = `${all.length} of ${actions.size} actions`;
      const row = (a) => el("tr", { dataset: { state: a.state, model: a.model, device: a.entity.device, component: a.entity.component || "" } },
        stateCell(a.state), el("td", {}, a.model, el("span", { class: "muted" }, " " + (a.model_version || ""))),
        el("td", {}, el("a", { href: deviceHref(a.entity.device) }, a.entity.device)),
        el("td", {}, entityLink(a.entity.device, a.entity.component)),
        el("td", {}, a.action), el("td", { class: "num" }, fmtNum(a.score)),
        el("td", {}, fmtTime(a.since)), el("td", {}, a.reason), el("td", {}, featureList(a.features)));
      const cols = ["state", "model", "device", "entity", "action", "score", "since", "reason", "features"];
      const byTime = (a, b) => String(b.since).localeCompare(String(a.since));
      const act = all.filter((a) => a.state === "firing" || a.state === "pending").sort(byTime);
      const res = all.filter((a) => a.state === "resolved").sort(byTime);
      // The newest maxRows of each: a fleet-wide incident can fire
      // thousands, and the filter narrows them.
      const more = (n) => n > maxRows ? el("p", { class: "muted" }, `and ${n - maxRows} more: filter to narrow`) : null;
      active.replaceChildren(act.length ? table(cols, act.slice(0, maxRows).map(row), { id: "actions-active" }) : el("p", { class: "muted" }, "No action is firing."), more(act.length) || "");
      resolved.replaceChildren(res.length ? table(cols, res.slice(0, maxRows).map(row), { id: "actions-resolved" }) : el("p", { class: "muted" }, "None."), more(res.length) || "");
    });
  };
  filter.addEventListener("input", render);
  const ctrl = new AbortController();
  let poll = null;
  const apply = (ev) => {
    const cur = actions.get(ev.fingerprint);
    if (cur && String(cur.last_decision) > String(ev.last_decision)) return;
    if (ev.state === "inactive") actions.delete(ev.fingerprint);
    else actions.set(ev.fingerprint, Object.assign({}, ev, { features: ev.features || (cur && cur.features) }));
  };
  const handle = (event, data) => {
    const v = JSON.parse(data);
    if (event === "snapshot") {
      const old = new Map(actions);
      actions.clear();
      for (const a of v) {
        const prev = old.get(a.fingerprint);
        actions.set(a.fingerprint, Object.assign({}, a, { features: a.features || (prev && prev.features) }));
      }
    } else if (event === "action") {
      apply(v);
    }
    render();
  };
  const stream = async () => {
    while (!ctrl.signal.aborted) {
      try {
        const res = await api("/v1/actions/stream", { signal: ctrl.signal, headers: { Accept: "text/event-stream" } });
        if (res.status === 404) { // an older service: poll instead
          feedState.textContent = "(polling)";
          poll = every(2000, async () => handle("snapshot", JSON.stringify(await getJSON("/v1/actions"))));
          return;
        }
        if (!res.ok) throw new Error(await errorOf(res));
        feedState.textContent = "● live";
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = "message", data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (data) handle(event, data);
          }
        }
      } catch (e) {
        if (ctrl.signal.aborted) return;
        setStatus("action feed: " + e.message, true);
      }
      feedState.textContent = "(reconnecting)";
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  stream();
  return () => { ctrl.abort(); if (poll) poll(); };
}

// Devices: inventory with reachability, profile, last sample and unmapped
// counts. The inventory shows first; the per-device sample figures, an
// aggregate over every series, fill in when they come.
function devicesPage(root) {
  const body = el("div", {}, el("p", { class: "muted" }, "Loading…"));
  const filter = el("input", { id: "devices-filter", type: "search", placeholder: "filter: device, state, protocol, profile, address", size: 40 });
  const counts = el("span", { class: "muted" });
  root.append(el("h1", {}, "Devices"), el("div", { class: "toolbar" }, filter, counts), body);
  let series = new Map(); // device → {last_sample, series}
  let devices = [];
  const render = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = devices.filter((d) => !needle ||
      [d.device, d.state, d.protocol, d.profile, d.address].some((x) => String(x || "").toLowerCase().includes(needle)));
    counts.textContent = `${shown.length} of ${devices.length} devices`;
    // Devices that are not up first, then by name; the first maxRows:
    // a thousand rows take the browser longer to lay out than the
    // service takes to answer, and the filter narrows them.
    const rank = (d) => (d.state === "up" ? 1 : 0);
    shown.sort((a, b) => rank(a) - rank(b) || String(a.device).localeCompare(String(b.device)));
    const rows = shown.slice(0, maxRows).map((d) => {
      const s = series.get(d.device) || {};
      return el("tr", { dataset: { device: d.device } },
        el("td", {}, el("a", { href: deviceHref(d.device) }, d.device)), stateCell(d.state), el("td", {}, d.protocol),
        el("td", {}, d.profile), el("td", {}, d.address), el("td", {}, fmtTime(s.last_sample)),
        el("td", { class: "num" }, fmtNum(s.series)), el("td", { class: "num" }, fmtNum(d.unmapped)), el("td", { class: "error" }, d.last_error));
    });
    const more = shown.length > maxRows ? el("p", { class: "muted" }, `and ${shown.length - maxRows} more: filter to narrow`) : "";
    body.replaceChildren(el("div", { class: "scroll" },
      table(["device", "reachability", "protocol", "profile", "address", "last sample", "series", "unmapped", "last error"], rows, { id: "devices" })), more);
  };
  filter.addEventListener("input", render);
  return every(5000, async () => {
    // The inventory first: the per-device series aggregate reads every
    // series and fills its columns in once it is in.
    const inv = sql(`SELECT d.device, d.protocol, d.profile, d.state, d.address, d.last_error, coalesce(u.unmapped, 0) AS unmapped
      FROM devices d LEFT JOIN (SELECT device, sum("count") AS unmapped FROM unmapped GROUP BY device) u ON u.device = d.device
      ORDER BY d.device`);
    const counted = sql(`SELECT device, max(last_ts) AS last_sample, count(*) AS series FROM series GROUP BY device`);
    counted.catch(() => {}); // reported below, once the inventory is shown
    devices = objects(await inv);
    render();
    series = new Map(objects(await counted).map((x) => [x.device, x]));
    render();
  });
}

// Device: one device's components, unmapped paths and actions.
function devicePage(root, device) {
  const body = el("div", {}, el("p", { class: "muted" }, "Loading…"));
  root.append(el("h1", {}, "Device ", el("span", { class: "device-name" }, device)), body);
  return every(5000, async () => {
    const d = lit(device);
    const [state, comps, unmapped, acts] = await Promise.all([
      sql(`SELECT state, protocol, profile, address, last_success, last_error, observations, errors FROM devices WHERE device = ${d}`),
      sql(`SELECT component, count(*) AS metrics, max(last_ts) AS last_sample, sum(samples) AS samples FROM series WHERE device = ${d} GROUP BY component ORDER BY component`),
      sql(`SELECT path, reason, "count" FROM unmapped WHERE device = ${d} ORDER BY "count" DESC LIMIT 100`),
      sql(`SELECT model, component, state, action, score, since, reason FROM actions WHERE device = ${d} ORDER BY since DESC`),
    ]);
    const st = objects(state)[0];
    body.replaceChildren(
      st ? table(["reachability", "protocol", "profile", "address", "last success", "observations", "errors", "last error"],
        [[stateCell(st.state), st.protocol, st.profile, st.address, fmtTime(st.last_success), st.observations, st.errors, st.last_error]])
        : el("p", { class: "muted" }, "Not a configured target (no collector health)."),
      el("h2", {}, "Components"),
      table(["component", "metrics", "samples", "last sample"], objects(comps).map((c) =>
        [el("td", {}, entityLink(device, c.component)), c.metrics, c.samples, fmtTime(c.last_sample)]), { id: "components" }),
      el("h2", {}, "Actions"),
      acts.row_count ? table(["model", "entity", "state", "action", "score", "since", "reason"], objects(acts).map((a) =>
        [a.model, el("td", {}, entityLink(device, a.component)), stateCell(a.state), a.action, a.score, fmtTime(a.since), a.reason])) : el("p", { class: "muted" }, "None."),
      el("h2", {}, "Unmapped"),
      unmapped.row_count ? table(["path", "reason", "count"], unmapped.rows) : el("p", { class: "muted" }, "Nothing unmapped."));
  });
}

// ---- charts ---------------------------------------------------------------

const palette = ["#1f6feb", "#d1242f", "#1a7f37", "#bf8700", "#8250df", "#0a7ea4", "#cf222e", "#57606a"];
const markColor = { firing: "#d1242f", pending: "#bf8700", resolved: "#1a7f37", inactive: "#57606a" };

// marksPlugin draws the entity's decisions as vertical lines at their time.
function marksPlugin(getMarks) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.lineWidth = 2 * devicePixelRatio;
        for (const m of getMarks()) {
          const x = u.valToPos(m.t / 1000, "x", true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = markColor[m.state] || "#57606a";
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };
}

// Chart is one uPlot of aligned series: xs in seconds, ys one array each.
class Chart {
  constructor(parent, title, names, getMarks) {
    this.names = names;
    this.box = el("div", { class: "chart", dataset: { chart: title } }, el("div", { class: "title" }, title));
    parent.append(this.box);
    const width = Math.max(400, this.box.clientWidth - 12);
    this.plot = new uPlot({
      width, height: 160,
      plugins: getMarks ? [marksPlugin(getMarks)] : [],
      scales: { x: { time: true } },
      legend: { show: names.length > 1 },
      series: [{}].concat(names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 1.5, spanGaps: true }))),
      axes: [{}, { size: 56, values: (u, vals) => vals.map(fmtAxis) }],
    }, [[]].concat(names.map(() => [])), this.box);
    this.points = 0;
  }
  set(data, range) {
    this.points = data[0].length;
    this.box.dataset.points = String(this.points);
    this.plot.setData(data, false);
    this.plot.setScale("x", range);
  }
  destroy() { this.plot.destroy(); }
}

// Entity: live charts of one interface's or device's raw metrics and
// features over the hot tier, its decisions marked on the time axis.
function entityPage(root, device, component) {
  let minutes = 15;
  const range = el("select", { id: "range", onchange: () => { minutes = +range.value; reload(); } },
    el("option", { value: "15" }, "last 15 minutes"), el("option", { value: "60" }, "last hour"));
  const info = el("span", { class: "muted" });
  const featureBox = el("div", { class: "charts", id: "feature-charts" });
  const metricBox = el("div", { class: "charts", id: "metric-charts" });
  const decisionBox = el("div");
  root.append(
    el("h1", {}, el("a", { href: deviceHref(device) }, device), " / ", el("span", { class: "entity-name" }, component || "(device)")),
    el("div", { class: "toolbar" }, range, info),
    el("div", { class: "legend-marks" }, "decisions: ", ["pending", "firing", "resolved"].map((s) =>
      el("span", { class: "state state-" + s }, "| " + s))),
    el("h2", {}, "Features"), featureBox, el("h2", {}, "Raw metrics"), metricBox, el("h2", {}, "Decisions"), decisionBox);
  const where = `device = ${lit(device)} AND component = ${lit(component)}`;
  let metrics = new Map(); // metric → {t: [], v: []} (t in ms)
  let charts = new Map(); // key → Chart
  let marks = [];
  let lastT = 0;
  let views = null;
  let gen = 0;

  // The charts show the range, or less while the hot tier holds less (a
  // service just started).
  let oldest = Infinity; // s, the oldest sample shown
  const span = () => { const now = Date.now() / 1000; return { min: Math.max(now - minutes * 60, Math.min(oldest, now) - 1), max: now }; };
  const trim = (s, cutoff) => { let i = 0; while (i < s.t.length && s.t[i] < cutoff) i++; if (i) { s.t.splice(0, i); s.v.splice(0, i); } };
  const chartFor = (key, parent, names) => {
    let c = charts.get(key);
    if (!c) { c = new Chart(parent, key, names, () => marks); charts.set(key, c); }
    return c;
  };

  // samples loads the raw metrics newer than lastT (all of the window at
  // first) in one request: one row per metric with its times and values.
  const samples = async (g) => {
    const since = lastT ? `ts > to_timestamp(${lastT / 1000})` : `ts >= now() - INTERVAL ${minutes} MINUTE`;
    const r = await sql(`SELECT metric, list(epoch_ms(ts) ORDER BY ts) AS t, list(value ORDER BY ts) AS v
      FROM samples WHERE ${where} AND ${since} GROUP BY metric ORDER BY metric`);
    if (g !== gen) return;
    for (const [metric, t, v] of r.rows) {
      let s = metrics.get(metric);
      if (!s) { s = { t: [], v: [] }; metrics.set(metric, s); }
      for (let i = 0; i < t.length; i++) {
        if (s.t.length && t[i] <= s.t[s.t.length - 1]) continue;
        s.t.push(t[i]); s.v.push(v[i]);
        if (t[i] > lastT) lastT = t[i];
      }
    }
    const cutoff = Date.now() - minutes * 60e3;
    oldest = Infinity;
    for (const s of metrics.values()) {
      trim(s, cutoff);
      if (s.t.length) oldest = Math.min(oldest, s.t[0] / 1000);
    }
    const w = span();
    let n = 0;
    for (const [metric, s] of [...metrics.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
      n += s.t.length;
      chartFor(metric, metricBox, [metric]).set([s.t.map((x) => x / 1000), s.v], w);
    }
    info.textContent = `${metrics.size} metrics, ${n} samples`;
    if (!metrics.size) metricBox.replaceChildren(el("p", { class: "muted" }, "No samples for this entity in the hot tier."));
  };

  // features loads every feature view's windows of the entity.
  const features = async (g) => {
    if (!views) {
      // Feature views: the entity and window columns, then only numbers.
      const entityCols = ["window_start", "window_end", "device", "component"];
      views = (await tables()).filter((t) => !t.name.startsWith("latest_") &&
        entityCols.every((c) => t.columns.some((x) => x.name === c)) &&
        t.columns.every((x) => entityCols.includes(x.name) || /^(double|float)/i.test(x.type)));
    }
    const w = span();
    const results = await Promise.all(views.map((v) => sql(`SELECT epoch_ms(window_end) AS t, * EXCLUDE (window_start, window_end, device, component)
      FROM ${ident(v.name)} WHERE ${where} AND window_end >= now() - INTERVAL ${minutes} MINUTE ORDER BY window_end`).catch(() => null)));
    if (g !== gen) return;
    views.forEach((v, i) => {
      const r = results[i];
      if (!r || !r.row_count) return;
      const names = r.columns.slice(1).map((c) => c.name);
      const data = [r.rows.map((row) => row[0] / 1000)].concat(names.map((_, j) => r.rows.map((row) => row[j + 1])));
      chartFor(v.name, featureBox, names).set(data, w);
    });
  };

  const decisions = async (g) => {
    const r = await sql(`SELECT epoch_ms(ts) AS t, model, model_version, state, action, score, reason, transition
      FROM decisions WHERE ${where} AND NOT shadow AND ts >= now() - INTERVAL ${minutes} MINUTE
        AND (transition OR action <> 'none') ORDER BY ts DESC LIMIT 500`);
    if (g !== gen) return;
    const ds = objects(r);
    marks = ds.filter((d) => d.transition);
    decisionBox.replaceChildren(ds.length ? table(["time", "model", "state", "action", "score", "reason"], ds.slice(0, 50).map((d) =>
      [fmtTime(d.t), d.model + " " + d.model_version, stateCell(d.state), d.action, d.score, d.reason]), { id: "decisions" })
      : el("p", { class: "muted" }, "No decision with an action in this range."));
    for (const c of charts.values()) c.plot.redraw(false);
  };

  let stops = [];
  const reload = () => {
    stops.forEach((s) => s());
    for (const c of charts.values()) c.destroy();
    charts = new Map(); metrics = new Map(); marks = []; lastT = 0; oldest = Infinity;
    featureBox.replaceChildren(); metricBox.replaceChildren();
    const g = ++gen;
    stops = [every(1000, () => samples(g)), every(5000, () => features(g)), every(2000, () => decisions(g))];
  };
  reload();
  return () => { gen++; stops.forEach((s) => s()); for (const c of charts.values()) c.destroy(); };
}

// SQL: an editor beside the table list; results as a table, as a chart
// when they are a time series, and as CSV.
function sqlPage(root) {
  const editor = el("textarea", { id: "sql-editor", spellcheck: "false" });
  editor.value = sessionStorage.getItem("netfeat.sql") ||
    "SELECT device, component, metric, last_value, last_ts\nFROM series\nORDER BY last_ts DESC\nLIMIT 100";
  const out = el("div", { id: "sql-result" });
  const list = el("div", { class: "tables card" }, el("p", { class: "muted" }, "Loading tables…"));
  const run = async () => {
    sessionStorage.setItem("netfeat.sql", editor.value);
    out.replaceChildren(el("p", { class: "muted" }, "Running…"));
    const t0 = performance.now();
    try {
      const r = await sql(editor.value);
      out.replaceChildren(...resultView(r, performance.now() - t0));
    } catch (e) {
      out.replaceChildren(el("div", { class: "error card", id: "sql-error" }, e.message));
    }
  };
  const exportCSV = async () => {
    try {
      const res = await api("/v1/query", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sql: editor.value, format: "csv" }) });
      if (!res.ok) throw new Error(await errorOf(res));
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: "netfeat-query.csv" });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      out.replaceChildren(el("div", { class: "error card", id: "sql-error" }, e.message));
    }
  };
  editor.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); } });
  root.append(el("h1", {}, "SQL"), el("div", { class: "sql" }, list, el("div", {},
    editor, el("div", { class: "toolbar" }, el("button", { id: "sql-run", onclick: run }, "Run (Ctrl+Enter)"),
      el("button", { id: "sql-csv", onclick: exportCSV }, "Export CSV"),
      el("span", { class: "muted" }, "DuckDB SQL over the hot tier; one SELECT.")), out)));
  tables().then((ts) => {
    list.replaceChildren(el("div", { class: "muted" }, ts.length + " tables"), ...ts.map((t) => el("details", { dataset: { table: t.name } },
      el("summary", {}, t.name),
      t.description ? el("div", { class: "desc" }, t.description) : null,
      el("ul", {}, t.columns.map((c) => el("li", {}, c.name + " ", el("span", { class: "type" }, c.type)))),
      el("button", { onclick: () => { editor.value = `SELECT * FROM ${ident(t.name)} LIMIT 100`; run(); } }, "query"))));
  }).catch((e) => list.replaceChildren(el("div", { class: "error" }, e.message)));
  return () => {};
}

const isTime = (type) => /^(timestamp|date)/i.test(type);
const isNum = (type) => /^(u?int|float|double|decimal|bigint|real)/i.test(type);

function resultView(r, ms) {
  const views = [el("p", { class: "muted", id: "sql-count" }, `${r.row_count} rows${r.truncated ? " (truncated)" : ""} in ${Math.round(ms)} ms`)];
  const ti = r.columns.findIndex((c) => isTime(c.type));
  const nums = r.columns.map((c, i) => i).filter((i) => isNum(r.columns[i].type));
  if (ti >= 0 && nums.length && r.rows.length > 1) {
    const order = r.rows.map((row) => [Date.parse(row[ti]) / 1000, row]).filter((x) => !isNaN(x[0])).sort((a, b) => a[0] - b[0]);
    const box = el("div", { class: "charts", id: "sql-chart" });
    views.push(box);
    requestAnimationFrame(() => {
      const c = new Chart(box, r.columns[ti].name, nums.slice(0, 8).map((i) => r.columns[i].name));
      const xs = order.map((x) => x[0]);
      c.set([xs].concat(nums.slice(0, 8).map((i) => order.map((x) => x[1][i]))), { min: xs[0], max: xs[xs.length - 1] });
    });
  }
  const shown = r.rows.slice(0, 1000);
  views.push(el("div", { class: "scroll" }, table(r.columns.map((c) => c.name), shown.map((row) => row.map((v, i) =>
    isTime(r.columns[i].type) ? v : (v !== null && typeof v === "object" ? JSON.stringify(v) : v))), { id: "sql-table" })));
  if (r.rows.length > shown.length) views.push(el("p", { class: "muted" }, `first ${shown.length} rows shown; Export CSV has them all`));
  return views;
}

// Models: the registry with live and shadow versions, their scores and
// action counts.
function modelsPage(root) {
  const body = el("div", {}, el("p", { class: "muted" }, "Loading…"));
  root.append(el("h1", {}, "Models"), body);
  return every(5000, async () => {
    // The registry shows first; the counts and scores, aggregates over the
    // recent decisions, fill in when they come.
    const rest = Promise.all([
      sql(`SELECT model, model_version, shadow, count(*) AS decisions, avg(score) FILTER (WHERE NOT isnan(score)) AS mean_score, max(score) FILTER (WHERE NOT isnan(score)) AS max_score,
          count(*) FILTER (WHERE action <> 'none') AS with_action FROM decisions GROUP BY ALL ORDER BY ALL`),
      sql(`SELECT model, state, count(*) AS n FROM actions GROUP BY ALL`),
    ]);
    rest.catch(() => {}); // reported below, once the registry is shown
    const models = await getJSON("/v1/models");
    render(models, null, null);
    const [scores, acts] = await rest;
    render(models, scores, acts);
  });
  function render(models, scores, acts) {
    const counts = {};
    for (const a of acts ? objects(acts) : []) (counts[a.model] = counts[a.model] || {})[a.state] = a.n;
    const count = (m, s) => acts ? String((counts[m] || {})[s] || 0) : "";
    body.replaceChildren(
      table(["model", "kind", "view", "live", "shadow", "history", "versions", "firing", "pending", "resolved", "failed"],
        models.map((m) => el("tr", { dataset: { model: m.name } }, el("td", { class: "model-name" }, m.name), el("td", {}, m.kind), el("td", {}, m.view),
          el("td", {}, m.live), el("td", {}, m.shadow || ""), el("td", {}, (m.history || []).join(", ")),
          el("td", { class: "num" }, String((m.versions || []).length)),
          ...["firing", "pending", "resolved"].map((s) => el("td", { class: "num" }, count(m.name, s))),
          el("td", { class: "error" }, Object.entries(m.failed || {}).map(([v, why]) => v + ": " + why).join("; ")))), { id: "models" }),
      el("h2", {}, "Scores (recent decisions)"),
      scores ? table(["model", "version", "shadow", "decisions", "mean score", "max score", "with action"], scores.rows, { id: "scores" })
        : el("p", { class: "muted" }, "Loading…"));
  }
}

// ---- router -----------------------------------------------------------------

let stopPage = null;

function route() {
  if (stopPage) stopPage();
  const parts = (location.hash.replace(/^#\/?/, "") || "actions").split("/").map(decodeURIComponent);
  const page = parts[0];
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.dataset.page === page || (a.dataset.page === "devices" && (page === "device" || page === "entity")));
  }
  const root = main();
  root.replaceChildren();
  setStatus("");
  switch (page) {
    case "devices": stopPage = devicesPage(root); break;
    case "device": stopPage = devicePage(root, parts[1] || ""); break;
    case "entity": stopPage = entityPage(root, parts[1] || "", parts.slice(2).join("/")); break;
    case "sql": stopPage = sqlPage(root); break;
    case "models": stopPage = modelsPage(root); break;
    default: stopPage = actionsPage(root);
  }
}

window.addEventListener("hashchange", route);
route();
