// The incident map (index.html): the floor as tiles grouped by row and
// cooling loop, coloured by the tighter of power and thermal headroom,
// marked with flags, failing checks, time to the supply limit and missing
// evidence; a rack's detail view (?rack=R, or a click) with its checks,
// series with sparklines, devices, flags, reservations and decisions.
// One request for the whole floor every REFRESH_MS (FLOOR_URL), one
// round of requests for the open rack. No inline code: the page is served
// with a Content-Security-Policy that allows scripts from this origin only.
"use strict";

// The floor: {"racks": [{rack, row, loop, decision, power_headroom_kw,
// thermal_headroom_kw, supply_temp, delta_t, flags, failing, missing, age_s,
// and, when present, power_limit_kw, thermal_capacity_kw, supply_limit,
// supply_slope_per_min, time_to_limit_min}], evaluated_at_ms, now_ms}
// (aggregator/floor.c): the upkeep pass's summaries, up to ~1 s old.
const FLOOR_URL = "v1/floor";
// One rack with its "checks" (values and limits) for the detail view.
const DETAIL_URL = "v1/floor?rack=";
const REFRESH_MS = 2000;
const LIST_MAX = 60; // entries per board list; the rest is counted
const SPARK_POINTS = 90;

const $ = (id) => document.getElementById(id);
let selected = new URLSearchParams(location.search).get("rack");
const history_ = new Map(); // series key -> [{v, p95}], for the open rack's sparklines
let historyRack = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function fmt(v, digits) {
  if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) return "–";
  return v.toFixed(digits === undefined ? 1 : digits);
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(url + ": " + (body.error || r.status));
  return body;
}

// The tighter headroom as a fraction of its limit, or null without data.
function headroomFraction(r) {
  const f = [];
  if (typeof r.power_headroom_kw === "number" && r.power_limit_kw > 0)
    f.push(r.power_headroom_kw / r.power_limit_kw);
  if (typeof r.thermal_headroom_kw === "number" && r.thermal_capacity_kw > 0)
    f.push(r.thermal_headroom_kw / r.thermal_capacity_kw);
  if (f.length === 0) return null;
  return Math.min.apply(null, f);
}

function headroomClass(r) {
  const f = headroomFraction(r);
  if (f === null) {
    // Without limits in the answer: the tighter headroom in kW.
    const kw = tighterKw(r);
    if (kw === null) return "h-none";
    return kw < 2 ? "h-crit" : kw < 5 ? "h-low" : kw < 15 ? "h-mid" : "h-ok";
  }
  if (f < 0.05) return "h-crit";
  if (f < 0.15) return "h-low";
  if (f < 0.3) return "h-mid";
  return "h-ok";
}

function tighterKw(r) {
  const p = r.power_headroom_kw, t = r.thermal_headroom_kw;
  if (typeof p === "number" && typeof t === "number") return Math.min(p, t);
  return typeof p === "number" ? p : typeof t === "number" ? t : null;
}

function ttlText(r) {
  return "~" + fmt(r.time_to_limit_min, 0) + " min to " + fmt(r.supply_limit, 0) + " °C";
}

function tile(r) {
  const a = el("a", "rack " + headroomClass(r));
  a.href = "?rack=" + encodeURIComponent(r.rack);
  a.dataset.rack = r.rack;
  a.dataset.decision = r.decision;
  const flags = r.flags || [], failing = r.failing || [], missing = r.missing || [];
  if (r.decision !== "allow") a.classList.add("deny");
  if (flags.length) a.classList.add("flagged");
  if (missing.length) a.classList.add("missing");
  if (r.rack === selected) a.classList.add("selected");
  a.dataset.flags = flags.join(" ");
  a.appendChild(el("span", "id", r.rack));
  a.appendChild(el("span", "marks", fmt(tighterKw(r)) + " kW " + fmt(r.supply_temp) + " °C"));
  const marks = el("span", "marks");
  for (const f of flags) marks.appendChild(el("span", "flag", f));
  for (const c of failing)
    if (c.check !== "flags") marks.appendChild(el("span", "fail", c.check + " "));
  if (typeof r.time_to_limit_min === "number") marks.appendChild(el("span", "ttl", ttlText(r)));
  if (missing.length) marks.appendChild(el("span", "miss", "⚠" + missing.length));
  a.appendChild(marks);
  return a;
}

const tiles_ = new Map(); // rack -> {sig, el}: the tiles on screen
const latest = new Map(); // rack -> its newest floor entry (for tooltips)

// A tile's tooltip, written when the pointer reaches it (so refreshes need
// not rewrite a thousand of them).
function tooltip(r) {
  return [r.rack + ": " + r.decision + ", age " + fmt(r.age_s) + " s"]
    .concat((r.flags || []).map((f) => "flag " + f))
    .concat((r.failing || []).map((c) => c.check + ": " + c.reason))
    .concat((r.missing || []).map((m) => "missing: " + m))
    .join("\n");
}
let lastLayout = null;

// What a tile shows, as a string: equal strings, equal tiles.
function tileSig(r) {
  return JSON.stringify([r.decision, headroomClass(r), fmt(tighterKw(r)), fmt(r.supply_temp),
    fmt(r.time_to_limit_min, 0), fmt(r.supply_limit, 0), r.flags,
    (r.failing || []).map((c) => c.check), (r.missing || []).length, r.rack === selected]);
}

function listItem(rack, text, cls) {
  const li = el("li", cls);
  li.dataset.rack = rack;
  const a = el("a", null, rack);
  a.href = "?rack=" + encodeURIComponent(rack);
  a.dataset.rack = rack;
  li.appendChild(a);
  li.appendChild(document.createTextNode(": " + text));
  return li;
}

function fillList(ul, items) {
  const frag = document.createDocumentFragment();
  for (const it of items.slice(0, LIST_MAX)) frag.appendChild(it);
  if (items.length > LIST_MAX) frag.appendChild(el("li", "more", "… and " + (items.length - LIST_MAX) + " more"));
  if (items.length === 0) frag.appendChild(el("li", "none", "nothing"));
  ul.replaceChildren(frag);
}

function renderFloor(floor) {
  const racks = floor.racks || [];
  const rows = new Map(); // row -> loop -> [rack]
  const failing = [], next = [], missing = [];
  let denied = 0, flagged = 0, lacking = 0;
  latest.clear();
  for (const r of racks) {
    latest.set(r.rack, r);
    const row = r.row || "(no row)", loop = r.loop || "(no loop)";
    if (!rows.has(row)) rows.set(row, new Map());
    const loops = rows.get(row);
    if (!loops.has(loop)) loops.set(loop, []);
    loops.get(loop).push(r);
    if (r.decision !== "allow") denied++;
    if ((r.flags || []).length) flagged++;
    if ((r.missing || []).length) lacking++;
    for (const f of r.flags || []) failing.push(listItem(r.rack, "flag " + f, "flag-item"));
    for (const c of r.failing || [])
      if (c.check !== "flags") failing.push(listItem(r.rack, c.check + ": " + c.reason, "fail-item"));
    if (typeof r.time_to_limit_min === "number")
      next.push([r.time_to_limit_min, listItem(r.rack, ttlText(r) + " at +" + fmt(r.supply_slope_per_min, 2) + " °C/min", "ttl-item")]);
    for (const m of r.missing || []) missing.push(listItem(r.rack, m, "missing-item"));
  }
  next.sort((x, y) => x[0] - y[0]);
  // Tiles are rebuilt only when what they show changed; the grid only when
  // the set of racks, rows or loops did.
  const byName = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  const layout = [];
  for (const row of Array.from(rows.keys()).sort(byName)) {
    const loops = rows.get(row);
    for (const loop of Array.from(loops.keys()).sort(byName)) {
      loops.get(loop).sort((x, y) => byName(x.rack, y.rack));
      layout.push(row + "/" + loop + ":" + loops.get(loop).map((r) => r.rack).join(","));
    }
  }
  const layoutKey = layout.join("|");
  if (layoutKey !== lastLayout) {
    tiles_.clear();
    const frag = document.createDocumentFragment();
    for (const row of Array.from(rows.keys()).sort(byName)) {
      const sec = el("section", "row");
      sec.dataset.row = row;
      sec.appendChild(el("h2", null, "row " + row));
      const loopsDiv = el("div", "loops");
      const loops = rows.get(row);
      for (const loop of Array.from(loops.keys()).sort(byName)) {
        const box = el("div", "loop");
        box.dataset.loop = loop;
        const list = loops.get(loop);
        box.appendChild(el("h3", null, "loop " + loop + " · " + list.length));
        const tiles = el("div", "tiles");
        for (const r of list) {
          const sig = tileSig(r), t = tile(r);
          tiles_.set(r.rack, { sig: sig, el: t });
          tiles.appendChild(t);
        }
        box.appendChild(tiles);
        loopsDiv.appendChild(box);
      }
      sec.appendChild(loopsDiv);
      frag.appendChild(sec);
    }
    $("floor").replaceChildren(frag);
    lastLayout = layoutKey;
  } else {
    for (const r of racks) {
      const old = tiles_.get(r.rack), sig = tileSig(r);
      if (old && old.sig === sig) continue;
      const t = tile(r);
      if (old) old.el.replaceWith(t);
      tiles_.set(r.rack, { sig: sig, el: t });
    }
  }
  fillList($("failing"), failing);
  fillList($("next"), next.map((x) => x[1]));
  fillList($("missing"), missing);
  $("count").dataset.count = String(racks.length);
  $("count").textContent = racks.length + " racks";
  $("summary").textContent = denied + " denied · " + flagged + " flagged · " + lacking + " missing evidence";
  $("updated").textContent = "updated " + new Date().toLocaleTimeString() +
    (floor.policy_version ? " · policy " + floor.policy_version : "");
}

// --- the detail view -------------------------------------------------------

function cells(tr, values) {
  for (const v of values) {
    const td = el("td", typeof v === "number" ? "num" : null, typeof v === "number" ? fmt(v, 2) : v);
    if (typeof v === "number") td.dataset.value = String(v);
    tr.appendChild(td);
  }
}

function sparkline(points) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 120 22");
  const vals = [];
  for (const p of points) for (const k of ["v", "p95"]) if (typeof p[k] === "number") vals.push(p[k]);
  if (vals.length === 0) return svg;
  let lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  for (const k of ["v", "p95"]) {
    const xs = [];
    points.forEach((p, i) => {
      if (typeof p[k] !== "number") return;
      const x = points.length > 1 ? (i * 118) / (points.length - 1) + 1 : 60;
      xs.push(x.toFixed(1) + "," + (21 - ((p[k] - lo) * 20) / (hi - lo)).toFixed(1));
    });
    if (xs.length === 1) xs.push("119," + xs[0].split(",")[1]);
    const pl = document.createElementNS(NS, "polyline");
    pl.setAttribute("class", k);
    pl.setAttribute("points", xs.join(" "));
    svg.appendChild(pl);
  }
  return svg;
}

function windowsText(byWindow) {
  if (!byWindow) return "";
  return Object.keys(byWindow).sort((a, b) => Number(a) - Number(b)).map((w) => {
    const s = byWindow[w];
    return w + " s: " + fmt(s.min) + " · " + fmt(s.p50) + " · " + fmt(s.p95) + " · " + fmt(s.max) +
      (typeof s.slope_per_min === "number" ? " · " + (s.slope_per_min >= 0 ? "+" : "") + fmt(s.slope_per_min, 2) : "");
  }).join("  |  ");
}

// "cdu.supply_temp{device=cdu1}" style keys: stats are keyed the same way.
function renderDetail(rack, floorEntry, state, audit, reservations, flags) {
  $("detail").hidden = false;
  $("detail").dataset.rack = rack;
  $("detail-title").textContent = "rack " + rack;
  const f = floorEntry || {};
  $("detail-summary").textContent = "row " + (f.row || "–") + " · loop " + (f.loop || "–") +
    " · decision for 0 kW: " + (f.decision || "–") + " · power headroom " + fmt(f.power_headroom_kw) +
    " kW · thermal headroom " + fmt(f.thermal_headroom_kw) + " kW · age " + fmt(f.age_s) + " s";

  const checks = $("checks").tBodies[0], cf = document.createDocumentFragment();
  for (const c of f.checks || []) {
    const tr = el("tr", c.pass ? null : "bad");
    tr.dataset.check = c.name;
    cells(tr, [c.name, c.observed === null ? "–" : c.observed, c.limit === undefined ? "–" : c.limit,
      c.unit || "", c.pass ? "pass" : "FAIL", c.reason || ""]);
    cf.appendChild(tr);
  }
  checks.replaceChildren(cf);

  if (historyRack !== rack) { history_.clear(); historyRack = rack; }
  const series = (state && state.series) || {}, stats = (state && state.stats) || {};
  const sf = document.createDocumentFragment();
  for (const key of Object.keys(series).sort()) {
    const s = series[key], byWindow = stats[key];
    const ws = byWindow ? Object.keys(byWindow).sort((a, b) => Number(a) - Number(b)) : [];
    const h = history_.get(key) || [];
    const last = h[h.length - 1];
    if (!last || last.ts !== s.ts_ms)
      h.push({ ts: s.ts_ms, v: s.value, p95: ws.length ? byWindow[ws[0]].p95 : null });
    while (h.length > SPARK_POINTS) h.shift();
    history_.set(key, h);
    const tr = el("tr", s.status === "ok" ? null : "bad");
    tr.dataset.series = key;
    cells(tr, [key, s.value === null ? "–" : s.value, s.unit, s.status + (s.detail ? ": " + s.detail : "")]);
    const td = el("td");
    td.appendChild(sparkline(h));
    tr.appendChild(td);
    tr.appendChild(el("td", "windows", windowsText(byWindow)));
    sf.appendChild(tr);
  }
  $("series").tBodies[0].replaceChildren(sf);

  const df = document.createDocumentFragment();
  const devices = (state && state.devices) || {};
  for (const name of Object.keys(devices).sort()) {
    const d = devices[name];
    const tr = el("tr", d.up ? null : "bad");
    tr.dataset.device = name;
    cells(tr, [name, d.kind, d.up ? "up" : "DOWN", d.last_error || "",
      d.last_ok_ms ? new Date(d.last_ok_ms).toLocaleTimeString() : "–"]);
    df.appendChild(tr);
  }
  $("devices").tBodies[0].replaceChildren(df);

  const fl = (flags && flags.flags) || [];
  fillList($("detail-flags"), fl.map((x) => el("li", "flag-item", x.flag + " by " + x.owner +
    (x.reason ? " (" + x.reason + ")" : "") + ", until " + new Date(x.expires_ms).toLocaleString())));
  const rs = (reservations && reservations.reservations) || [];
  fillList($("detail-reservations"), rs.map((x) => el("li", null, (x.id || "") + ": " + fmt(x.kw) +
    " kW for " + (x.owner || "?") + " · " + (x.state || "") + (x.end ? " until " + new Date(x.end).toLocaleString() : ""))));
  const ds = ((audit && audit.decisions) || []).slice(-10).reverse();
  fillList($("detail-decisions"), ds.map((x) => {
    const failed = (x.checks || []).filter((c) => !c.pass).map((c) => c.name);
    return el("li", null, new Date(x.evaluated_at_ms).toLocaleTimeString() + " " + (x.decision || x.action || "?") +
      (typeof x.kw === "number" ? " " + fmt(x.kw) + " kW" : "") + (failed.length ? " (" + failed.join(", ") + ")" : ""));
  }));
}

// The rack's newest decisions. The audit log answers oldest first, at most
// `limit`: widen the window (server time) until it holds 10, stopping
// before one so full that the newest would be cut off.
async function recentDecisions(q, nowMs) {
  const LIMIT = 2000;
  let best = null;
  for (const span of [60e3, 3600e3, 86400e3]) {
    const got = await getJSON("v1/audit?rack=" + q + "&since=" + (nowMs - span) + "&limit=" + LIMIT);
    if ((got.decisions || []).length >= LIMIT) return best || got;
    best = got;
    if (got.decisions.length >= 10) break;
  }
  return best;
}

async function refreshDetail(rack) {
  const q = encodeURIComponent(rack);
  const [one, state, reservations, flags] = await Promise.all([
    getJSON(DETAIL_URL + q),
    getJSON("v1/racks/" + q).catch(() => null), // 404 until its first frame
    getJSON("v1/reservations?rack=" + q),
    getJSON("v1/flags?rack=" + q),
  ]);
  const audit = await recentDecisions(q, one.now_ms || Date.now());
  if (rack !== selected) return;
  renderDetail(rack, (one.racks || [])[0], state, audit, reservations, flags);
}

function select(rack) {
  selected = rack;
  history.replaceState(null, "", rack ? "?rack=" + encodeURIComponent(rack) : "./");
  for (const t of document.querySelectorAll(".rack.selected")) t.classList.remove("selected");
  for (const v of tiles_.values()) v.sig = null; // redrawn at the next refresh
  if (!rack) { $("detail").hidden = true; return; }
  const t = tiles_.get(rack);
  if (t) t.el.classList.add("selected");
  refreshDetail(rack).catch(showError);
}

function showError(e) {
  $("error").hidden = false;
  $("error").textContent = "cannot reach the aggregator: " + e.message + " (retrying)";
}

let timer = null;
const perfMax = { fetch: 0, render: 0, refreshes: 0 };
async function refresh() {
  clearTimeout(timer);
  const t0 = performance.now();
  try {
    const floor = await getJSON(FLOOR_URL);
    const t1 = performance.now();
    renderFloor(floor);
    void $("floor").offsetHeight; // style and layout count as rendering
    const t2 = performance.now();
    if (selected) await refreshDetail(selected);
    $("error").hidden = true;
    const perf = $("perf");
    perf.dataset.racks = String((floor.racks || []).length);
    perfMax.fetch = Math.max(perfMax.fetch, t1 - t0);
    perfMax.render = Math.max(perfMax.render, t2 - t1);
    perfMax.refreshes++;
    perf.dataset.fetchMs = (t1 - t0).toFixed(1);
    perf.dataset.renderMs = (t2 - t1).toFixed(1);
    perf.dataset.fetchMaxMs = perfMax.fetch.toFixed(1);
    perf.dataset.renderMaxMs = perfMax.render.toFixed(1);
    perf.dataset.refreshes = String(perfMax.refreshes);
    perf.textContent = (floor.racks || []).length + " racks: fetch " + (t1 - t0).toFixed(0) +
      " ms, render " + (t2 - t1).toFixed(0) + " ms; refreshes every " + REFRESH_MS / 1000 + " s";
  } catch (e) {
    showError(e);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  document.body.addEventListener("click", (ev) => {
    if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    const a = ev.target.closest("a[data-rack]");
    if (a) { ev.preventDefault(); select(a.dataset.rack); return; }
    if (ev.target.id === "detail-close") { ev.preventDefault(); select(null); }
  });
  $("floor").addEventListener("mouseover", (ev) => {
    const a = ev.target.closest("a.rack");
    const r = a && latest.get(a.dataset.rack);
    if (r) a.title = tooltip(r);
  });
  refresh();
});
