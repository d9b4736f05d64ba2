/*
 * app.js - the web UI: state in the URL's fragment, the API calls (docs/ui.md), and the
 * views: flame graph, top functions, sandwich, executables/containers/threads, diff, and the
 * live tail of requests. flame.js draws the trees.
 *
 * Every string from a profile is shown with textContent or fillText, never as HTML; nothing
 * here builds markup from data, sets a URL from data, or evaluates anything.
 */
"use strict";

const $ = (id) => document.getElementById(id);
const FILTER_KEYS = ["from", "to", "sample_type", "frame_type", "container", "executable", "thread", "attr"];

/* ---------- state: the URL fragment (#view=flame&from=...), so a view can be shared ---------- */

function readState() {
  const p = new URLSearchParams(location.hash.slice(1));
  const s = { view: p.get("view") || "flame", frame_type: p.getAll("frame_type") };
  for (const k of ["from", "to", "sample_type", "container", "executable", "thread", "attr",
                   "search", "fn", "sort", "q", "base", "focus"]) {
    if (p.get(k)) s[k] = p.get(k);
  }
  s.icicle = p.get("icicle") === "1";
  return s;
}

let state = readState();

function writeState(changes, refetch = true) {
  Object.assign(state, changes);
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else p.set(k, v === true ? "1" : v);
  }
  history.replaceState(null, "", "#" + p.toString());
  if (refetch) render();
}

/* The API query for the current filters (without the time window when `noWindow`). */
function filterQuery(extra, noWindow, override) {
  const src = Object.assign({}, state, override || {});
  const p = new URLSearchParams();
  for (const k of FILTER_KEYS) {
    if (noWindow && (k === "from" || k === "to")) continue;
    const v = src[k];
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else if (v) p.set(k, v);
  }
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

async function api(path, query) {
  const r = await fetch(path + (query ? "?" + query : ""), { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: "not JSON (" + r.status + ")" }));
  if (!r.ok) throw new Error(body.error || "HTTP " + r.status);
  return body;
}

function status(text, error) {
  const s = $("status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

const fmt = (n) => n.toLocaleString("en-US");
const pct = (n, total) => (total ? (100 * n / total).toFixed(2) + "%" : "-");
const timeText = (sec) => new Date(sec * 1000).toISOString().replace(".000Z", "Z").replace("T", " ");

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

/* ---------- the flame graph data: nodes from /api/flame as a tree ---------- */

function buildTree(data) {
  const nodes = [];
  const n = data.nodes.length / 4;
  for (let i = 0; i < n; i++) {
    const parent = data.nodes[4 * i], f = data.nodes[4 * i + 1];
    const fr = f >= 0 ? data.frames[f] : { name: "all", type: "root" };
    const node = { name: fr.name, type: fr.type, frame: fr, self: data.nodes[4 * i + 2],
                   total: data.nodes[4 * i + 3], children: [], parent: null };
    if (parent >= 0) {
      node.parent = nodes[parent];
      nodes[parent].children.push(node);
    }
    nodes.push(node);
  }
  return nodes[0] || { name: "all", type: "root", frame: {}, self: 0, total: 0, children: [], parent: null };
}

function frameLines(n, total) {
  const f = n.frame || {};
  const lines = [n.name || "(no name)",
    "type: " + n.type,
    "total: " + fmt(n.total) + " (" + pct(n.total, total) + ")",
    "self: " + fmt(n.self) + " (" + pct(n.self, total) + ")"];
  if (f.file) lines.push("file: " + f.file + (f.line ? ":" + f.line : ""));
  if (f.mapping) lines.push("mapping: " + f.mapping);
  if (f.build_id) lines.push("build id: " + f.build_id);
  return lines;
}

function pathOf(node) {
  const names = [];
  for (let n = node; n && n.parent; n = n.parent) names.unshift(n.name);
  return names;
}

function findPath(root, names) {
  let n = root;
  for (const name of names) {
    const next = n.children.find((c) => c.name === name);
    if (!next) break;
    n = next;
  }
  return n;
}

/* ---------- flame graph view ---------- */

const flame = new FlameGraph.View($("flame"), {
  onClick: (n) => {
    writeState({ focus: n.parent ? JSON.stringify(pathOf(n)) : "" }, false);
    flameZoom(n);
  },
  tooltip: (n) => frameLines(n, flame.root ? flame.root.total : 0),
  colorOf: (n) => (state.search && matches(n) ? "#e040fb" : (n.color = n.color || FlameGraph.color(n.type, n.name))),
});

function matches(n) {
  return state.search && n.name && n.name.toLowerCase().includes(state.search.toLowerCase());
}

function flameZoom(n) {
  crumbs(n);   /* first: the breadcrumb's lines decide the room left for the drawing */
  flame.zoom(n);
}

function crumbs(node) {
  const box = $("crumbs");
  box.replaceChildren();
  for (const n of flame.ancestors(node)) {
    const b = el("button", n.name);
    b.title = n.name;
    b.addEventListener("click", () => {
      writeState({ focus: n.parent ? JSON.stringify(pathOf(n)) : "" }, false);
      flameZoom(n);
    });
    box.append(b);
  }
}

/* The share of the weight in frames matching the search (a match inside a match counted once). */
function searchShare(root) {
  let w = 0;
  const stack = [root];
  while (stack.length) {
    const n = stack.pop();
    if (n.parent && matches(n)) w += n.total;
    else stack.push(...n.children);
  }
  return w;
}

function legend(root) {
  const types = new Set();
  const stack = [root];
  while (stack.length) {
    const n = stack.pop();
    if (n.parent) types.add(n.type);
    stack.push(...n.children);
  }
  const box = $("legend");
  box.replaceChildren();
  for (const t of [...types].sort()) {
    const k = el("span", null, "key");
    const sw = el("span", null, "sw");
    sw.style.background = FlameGraph.typeColor(t);
    k.append(sw, document.createTextNode(t));
    box.append(k);
  }
}

async function showFlame() {
  const data = await api("/api/flame", filterQuery());
  const root = buildTree(data);
  flame.icicle = state.icicle;
  flame.setTree(root);
  legend(root);
  const focus = state.focus ? findPath(root, JSON.parse(state.focus)) : root;
  flameZoom(focus);
  updateSearchInfo(root);
  status(fmt(data.total) + " total weight" + (data.truncated ? ", " + fmt(data.truncated) + " tiny nodes left out" : ""));
}

function updateSearchInfo(root) {
  const info = $("search-info");
  if (!state.search) {
    info.textContent = "";
    return;
  }
  const w = searchShare(root);
  info.textContent = "matched: " + fmt(w) + " (" + pct(w, root.total) + ")";
}

/* ---------- top functions ---------- */

async function showTop() {
  const sort = state.sort === "total" ? "total" : "self";
  const q = { by: "function", sort, limit: 500 };
  if (state.q) q.q = state.q;
  const data = await api("/api/top", filterQuery(q));
  const body = $("top-table").tBodies[0];
  body.replaceChildren();
  for (const r of data.rows) {
    const tr = el("tr", null, "clickable");
    tr.append(el("td", fmt(r.self), "num"), el("td", pct(r.self, data.total), "num"),
              el("td", fmt(r.total), "num"), el("td", pct(r.total, data.total), "num"),
              el("td", r.type), el("td", r.name, "fn"));
    const sw = el("button", "sandwich");
    sw.addEventListener("click", (e) => {
      e.stopPropagation();
      writeState({ view: "sandwich", fn: r.name });
    });
    const td = el("td");
    td.append(sw);
    tr.append(td);
    tr.addEventListener("click", () => writeState({ view: "flame", search: r.name, focus: "" }));
    body.append(tr);
  }
  for (const th of document.querySelectorAll("#top-table th[data-sort]"))
    th.classList.toggle("sorted", th.dataset.sort === sort);
  $("top-info").textContent = fmt(data.matched) + " functions" + (data.matched > data.rows.length ? ", first " + data.rows.length + " shown" : "");
  status(fmt(data.total) + " total weight");
}

/* ---------- sandwich: callers and callees of one function ---------- */

async function showSandwich() {
  const data = await api("/api/flame", filterQuery());
  const root = buildTree(data);
  const fn = state.fn || "";
  $("sandwich-title").textContent = fn ? "Function: " + fn : "Pick a function in Top functions (sandwich).";
  const mk = (n) => ({ name: n.name, type: n.type, frame: n.frame, self: 0, total: 0, children: [], parent: null });
  const callers = { name: fn, type: "root", frame: {}, self: 0, total: 0, children: [], parent: null };
  const callees = { name: fn, type: "root", frame: {}, self: 0, total: 0, children: [], parent: null };
  const child = (p, n) => {
    let c = p.children.find((x) => x.name === n.name && x.type === n.type);
    if (!c) {
      c = mk(n);
      c.parent = p;
      p.children.push(c);
    }
    return c;
  };
  const addSubtree = (dst, n) => {
    for (const ch of n.children) {
      const d = child(dst, ch);
      d.total += ch.total;
      d.self += ch.self;
      addSubtree(d, ch);
    }
  };
  const stack = [root];
  while (fn && stack.length) {
    const n = stack.pop();
    if (n.parent && n.name === fn) {   /* outermost occurrence: counted once */
      callees.total += n.total;
      callees.self += n.self;
      addSubtree(callees, n);
      callers.total += n.total;
      let c = callers;
      for (let a = n.parent; a && a.parent; a = a.parent) {
        c = child(c, a);
        c.total += n.total;
      }
      continue;
    }
    stack.push(...n.children);
  }
  callers.type = callees.type = (root.children.length && findType(root, fn)) || "unknown";
  for (const [id, tree] of [["callers", callers], ["callees", callees]]) {
    const v = sandwichViews[id];
    v.setTree(tree);
    v.draw();
  }
  status("sandwich of " + fmt(callers.total) + " weight");
}

function findType(root, fn) {
  const stack = [root];
  while (stack.length) {
    const n = stack.pop();
    if (n.name === fn && n.parent) return n.type;
    stack.push(...n.children);
  }
  return null;
}

const sandwichViews = {
  callers: new FlameGraph.View($("callers"), { tooltip: (n) => frameLines(n, sandwichViews.callers.root.total) }),
  callees: new FlameGraph.View($("callees"), { tooltip: (n) => frameLines(n, sandwichViews.callees.root.total) }),
};
sandwichViews.callers.icicle = true;   /* the function on top, its callers below it */
for (const v of Object.values(sandwichViews)) v.opts.onClick = (n) => v.zoom(n);

/* ---------- executables, mappings, containers, threads ---------- */

const GROUP_FILTER = { executable: "executable", container: "container", thread: "thread" };

async function showGroups() {
  /* A table the store cannot fill (mappings over ClickHouse: 501) says why in its place; the
   * others still show. Only when every table failed is it the view's error. */
  const all = await Promise.all(["executable", "mapping", "container", "thread"].map((by) =>
    api("/api/top", filterQuery({ by, sort: "total", limit: 200 })).then((d) => [by, d],
      (err) => [by, { rows: [], total: 0, error: err.message }])));
  const failed = all.filter(([, data]) => data.error);
  if (failed.length === all.length) throw new Error(failed[0][1].error);
  for (const [by, data] of all) {
    const body = $("g-" + by).tBodies[0];
    body.replaceChildren();
    if (data.error) {
      const td = el("td", data.error, "error");
      td.colSpan = 4;
      const tr = el("tr");
      tr.append(td);
      body.append(tr);
      continue;
    }
    const max = data.rows.length ? Math.max(...data.rows.map((r) => r.total)) : 1;
    for (const r of data.rows) {
      const tr = el("tr", null, GROUP_FILTER[by] ? "clickable" : "");
      const name = el("td", r.name === "" ? "[unknown]" : r.name);
      if (r.build_id) name.append(el("div", "build id " + r.build_id, "sub"));
      const bar = el("td", null, "bar");
      const fill = el("div", null, "fill");
      fill.style.width = (100 * Math.abs(r.total) / (max || 1)).toFixed(1) + "%";
      bar.append(fill);
      tr.append(name, el("td", fmt(r.total), "num"), el("td", pct(r.total, data.total), "num"), bar);
      const f = GROUP_FILTER[by];
      if (f && state[f] === r.name) tr.classList.add("selected");
      if (f)
        tr.addEventListener("click", () => writeState({ [f]: state[f] === r.name ? "" : r.name }));
      body.append(tr);
    }
  }
  status(failed.length ? failed.map(([by, data]) => by + ": " + data.error).join("; ")
    : "samples per executable, mapping, container and thread", failed.length > 0);
}

/* ---------- diff: the current window and filters against a baseline (another window, other
 * filters, or both), kept in the URL as the baseline's own query ---------- */

function describe(query) {
  const p = new URLSearchParams(query);
  const parts = [p.get("from") && p.get("to") ? timeText(+p.get("from")) + " to " + timeText(+p.get("to")) : "the whole range"];
  for (const [k, v] of p) if (k !== "from" && k !== "to") parts.push(k + "=" + v);
  return parts.join(", ");
}

const diffView = new FlameGraph.View($("diff"), {
  tooltip: (n) => [n.name, "type: " + n.type,
    "baseline: " + pct(n.a, diffView.totals[0]) + " (" + fmt(n.a) + ")",
    "now: " + pct(n.b, diffView.totals[1]) + " (" + fmt(n.b) + ")"],
  colorOf: (n) => {
    const [ta, tb] = diffView.totals;
    const d = (tb ? n.b / tb : 0) - (ta ? n.a / ta : 0);
    const m = Math.min(1, Math.abs(d) * 10);
    if (Math.abs(d) < 1e-9) return "#d8d8d8";
    const light = 92 - 40 * m;
    return d > 0 ? `hsl(2, 75%, ${light}%)` : `hsl(222, 75%, ${light}%)`;
  },
});
diffView.opts.onClick = (n) => diffView.zoom(n);

async function showDiff() {
  const info = $("diff-info");
  if (!state.base) {
    info.textContent = "No baseline yet: pick a time window or filters, use them as the baseline, then change them.";
    diffView.setTree(null);
    diffView.draw();
    return;
  }
  const [a, b] = await Promise.all([
    api("/api/flame", state.base),
    api("/api/flame", filterQuery())]);
  const ta = buildTree(a), tb = buildTree(b);
  const merged = { name: "all", type: "root", frame: {}, self: 0, total: 0, a: ta.total, b: tb.total, children: [], parent: null };
  const add = (dst, src, side) => {
    for (const ch of src.children) {
      let d = dst.children.find((x) => x.name === ch.name && x.type === ch.type);
      if (!d) {
        d = { name: ch.name, type: ch.type, frame: ch.frame, self: 0, total: 0, a: 0, b: 0, children: [], parent: dst };
        dst.children.push(d);
      }
      d[side] += ch.total;
      add(d, ch, side);
    }
  };
  add(merged, ta, "a");
  add(merged, tb, "b");
  /* widths: the larger share of either side, so what vanished stays visible */
  const widen = (n) => {
    n.total = Math.max(ta.total ? n.a / ta.total : 0, tb.total ? n.b / tb.total : 0) * 1e6;
    n.children.forEach(widen);
  };
  widen(merged);
  merged.total = Math.max(merged.total, merged.children.reduce((s, c) => s + c.total, 0));
  diffView.totals = [ta.total, tb.total];
  diffView.setTree(merged);
  diffView.draw();
  info.textContent = "baseline " + describe(state.base) + " (" + fmt(ta.total) + ") against " +
    describe(filterQuery()) + " (" + fmt(tb.total) + ")";
  status("red: a larger share than in the baseline, blue: smaller");
}

/* ---------- requests: what the store holds, then the live tail ---------- */

let live = null;

function requestRow(r, fresh) {
  const tr = el("tr", null, fresh ? "fresh" : "");
  const when = r.received_unix_nano ? timeText(Math.floor(r.received_unix_nano / 1e9)) : "";
  tr.append(el("td", when), el("td", r.transport), el("td", r.peer), el("td", r.resource || ""),
            el("td", r.layout), el("td", fmt(r.samples), "num"),
            el("td", r.outcome + (r.message ? ": " + r.message : ""), "outcome-" + r.outcome));
  return tr;
}

async function showLive() {
  const body = $("live-table").tBodies[0];
  const data = await api("/api/requests", "limit=200");
  body.replaceChildren(...data.requests.map((r) => requestRow(r, false)));
  if (!live) {
    live = new EventSource("/api/live");
    live.addEventListener("open", () => ($("live-state").textContent = "live: new requests appear at the top"));
    live.addEventListener("error", () => ($("live-state").textContent = "live: reconnecting..."));
    live.addEventListener("request", (e) => {
      const r = JSON.parse(e.data);
      body.prepend(requestRow(r, true));
      while (body.rows.length > 500) body.deleteRow(-1);
    });
  }
  status(fmt(data.requests.length) + " stored requests shown");
}

/* ---------- timeline: weight per minute; drag to pick the time window ---------- */

const timeline = { points: [], first: 0, last: 0, step: 60, drag: null };

async function loadTimeline() {
  const d = await api("/api/timeline", filterQuery({}, true));
  Object.assign(timeline, { points: d.points, step: d.step, first: d.first || 0, last: d.last || 0 });
  drawTimeline();
}

function tlX(t, w) {
  const span = Math.max(timeline.last - timeline.first, timeline.step);
  return ((t - timeline.first) / span) * w;
}

function drawTimeline() {
  const c = $("timeline");
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = 56;
  c.width = Math.floor(w * dpr);
  c.height = Math.floor(h * dpr);
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const max = timeline.points.reduce((m, p) => Math.max(m, p[1]), 0) || 1;
  const bw = Math.max(1, tlX(timeline.first + timeline.step, w) - tlX(timeline.first, w) - 1);
  ctx.fillStyle = "#7d93c9";
  for (const [t, v] of timeline.points) {
    const bh = Math.max(1, (h - 14) * v / max);
    ctx.fillRect(tlX(t, w), h - 12 - bh, bw, bh);
  }
  const sel = timeline.drag || (state.from && state.to ? [+state.from, +state.to] : null);
  if (sel) {
    ctx.fillStyle = "rgba(255, 190, 0, 0.3)";
    const x0 = tlX(Math.min(sel[0], sel[1]), w), x1 = tlX(Math.max(sel[0], sel[1]), w);
    ctx.fillRect(x0, 0, Math.max(2, x1 - x0), h - 12);
  }
  ctx.fillStyle = "#4a5368";
  ctx.font = "10px system-ui, sans-serif";
  if (timeline.first) {
    ctx.fillText(timeText(timeline.first), 2, h - 2);
    const t = timeText(timeline.last);
    ctx.fillText(t, w - ctx.measureText(t).width - 2, h - 2);
  }
  $("window-text").textContent = state.from && state.to
    ? "Time window: " + timeText(+state.from) + " to " + timeText(+state.to)
    : "Time window: everything stored";
}

function timeAt(e) {
  const c = $("timeline"), r = c.getBoundingClientRect();
  const span = Math.max(timeline.last - timeline.first, timeline.step);
  const t = timeline.first + ((e.clientX - r.left) / r.width) * span;
  return Math.min(Math.max(t, timeline.first), timeline.last);
}

$("timeline").addEventListener("mousedown", (e) => {
  if (!timeline.first) return;
  const t = timeAt(e);
  timeline.drag = [t, t];
});
window.addEventListener("mousemove", (e) => {
  if (!timeline.drag) return;
  timeline.drag[1] = timeAt(e);
  drawTimeline();
});
window.addEventListener("mouseup", () => {
  if (!timeline.drag) return;
  const [a, b] = timeline.drag;
  timeline.drag = null;
  const step = timeline.step;
  let from = Math.floor(Math.min(a, b) / step) * step, to = Math.ceil(Math.max(a, b) / step) * step;
  if (to <= from) to = from + step;
  writeState({ from: String(from), to: String(to), focus: "" });
  loadTimeline().catch((err) => status(err.message, true));
});
$("window-reset").addEventListener("click", () => {
  writeState({ from: "", to: "", focus: "" });
  loadTimeline().catch((err) => status(err.message, true));
});

/* ---------- filters ---------- */

async function loadMeta() {
  const m = await api("/api/meta");
  const sel = $("f-sample-type");
  sel.replaceChildren(el("option", "all types"));
  sel.options[0].value = "";
  for (const t of m.sample_types) {
    const o = el("option", t.type + (t.unit ? " (" + t.unit + ")" : ""));
    o.value = t.type;
    sel.append(o);
  }
  sel.value = state.sample_type || "";
  const box = $("f-frame-types");
  box.replaceChildren();
  for (const t of m.frame_types) {
    const label = el("label");
    const cb = el("input");
    cb.type = "checkbox";
    cb.value = t;
    cb.checked = state.frame_type.includes(t);
    cb.addEventListener("change", () => {
      const on = [...box.querySelectorAll("input:checked")].map((x) => x.value);
      writeState({ frame_type: on, focus: "" });
      loadTimeline().catch((err) => status(err.message, true));
    });
    label.append(cb, document.createTextNode(" " + t));
    box.append(label);
  }
}

function bindInput(id, key, after) {
  const input = $(id);
  input.value = state[key] || "";
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      writeState({ [key]: input.value, focus: key === "search" ? state.focus : "" });
      if (after) after();
    }, 300);
  });
}

const refreshTimeline = () => loadTimeline().catch((err) => status(err.message, true));
bindInput("f-container", "container", refreshTimeline);
bindInput("f-executable", "executable", refreshTimeline);
bindInput("f-thread", "thread", refreshTimeline);
bindInput("f-attr", "attr", refreshTimeline);
bindInput("top-filter", "q");
$("search").value = state.search || "";
$("search").addEventListener("input", () => {
  writeState({ search: $("search").value }, false);
  if (flame.root) {
    flame.draw();
    updateSearchInfo(flame.root);
  }
});
$("f-sample-type").addEventListener("change", (e) => {
  writeState({ sample_type: e.target.value, focus: "" });
  refreshTimeline();
});
$("f-clear").addEventListener("click", () => {
  for (const id of ["f-container", "f-executable", "f-thread", "f-attr"]) $(id).value = "";
  for (const cb of $("f-frame-types").querySelectorAll("input")) cb.checked = false;
  $("f-sample-type").value = "";
  writeState({ sample_type: "", frame_type: [], container: "", executable: "", thread: "", attr: "", focus: "" });
  refreshTimeline();
});
$("icicle").checked = state.icicle;
$("icicle").addEventListener("change", (e) => {
  writeState({ icicle: e.target.checked }, false);
  flame.icicle = e.target.checked;
  flame.draw();
});
for (const th of document.querySelectorAll("#top-table th[data-sort]"))
  th.addEventListener("click", () => writeState({ sort: th.dataset.sort }));
$("diff-set").addEventListener("click", () => writeState({ base: filterQuery() }));
for (const b of document.querySelectorAll("#tabs button"))
  b.addEventListener("click", () => writeState({ view: b.dataset.view }));

/* ---------- rendering the current view ---------- */

const VIEWS = { flame: showFlame, top: showTop, sandwich: showSandwich, groups: showGroups, diff: showDiff, live: showLive };
let renderSeq = 0;

/* The controls show the state (it may come from a link or the back button). */
function syncInputs() {
  const pairs = [["f-container", "container"], ["f-executable", "executable"], ["f-thread", "thread"],
                 ["f-attr", "attr"], ["top-filter", "q"], ["search", "search"]];
  for (const [id, key] of pairs) if (document.activeElement !== $(id)) $(id).value = state[key] || "";
  $("f-sample-type").value = state.sample_type || "";
  for (const cb of $("f-frame-types").querySelectorAll("input")) cb.checked = state.frame_type.includes(cb.value);
  $("icicle").checked = state.icicle;
}

async function render() {
  const view = VIEWS[state.view] ? state.view : "flame";
  syncInputs();
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.classList.toggle("active", s.id === "view-" + view);
  drawTimeline();
  const seq = ++renderSeq;
  delete document.body.dataset.ready;   /* set again when this render's data is shown */
  status("loading...");
  try {
    await VIEWS[view]();
    if (seq === renderSeq) document.body.dataset.ready = view;
  } catch (err) {
    if (seq === renderSeq) status(err.message, true);
  }
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    drawTimeline();
    for (const v of [flame, diffView, sandwichViews.callers, sandwichViews.callees]) if (v.root) v.draw();
  }, 100);
});
window.addEventListener("hashchange", () => {
  state = readState();
  render();
  refreshTimeline();
});

Promise.all([loadMeta(), loadTimeline()]).catch((err) => status(err.message, true)).then(render);
