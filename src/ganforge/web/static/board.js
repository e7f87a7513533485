/* ganforge board: a sortable table of runs, the open run's curves, sample timeline and config,
 * and one metric overlaid across the ticked runs. Polls /api/changes every 2 s and re-reads only
 * what changed, so a training run's curves grow live. Needs GF (charts.js). */
"use strict";

const POLL_MS = 2000;
const TOKEN = new URLSearchParams(location.search).get("token");
const POSITION = ["step", "epoch", "images_seen"];
const state = {
  runs: [],              // rows of /api/runs
  mtimes: {},            // id -> mtime last seen
  sort: {key: "id", dir: 1},
  selected: [],          // ids ticked for the overlay, in ticking order
  metrics: {},           // id -> /api/run/ID/metrics body (open and ticked runs)
  open: null,            // id of the run shown in detail
  samples: [],
  follow: true,          // the timeline stays on the newest snapshot while it is at the end
  busy: false,
};

const $ = (id) => document.getElementById(id);

function withToken(url) {
  return TOKEN ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN) : url;
}

function runUrl(id, what) {
  const enc = (path) => path.split("/").map(encodeURIComponent).join("/");
  return withToken("api/run/" + enc(id) + "/" + enc(what));
}

async function getJSON(url) {
  const response = await fetch(withToken(url), {cache: "no-store"});
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
  return body;
}

function fmt(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v !== "number") return String(v);
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/* ---- the runs table ---------------------------------------------------------------------- */

function tableColumns() {
  const keys = (pick) => [...new Set(state.runs.flatMap((r) => Object.keys(pick(r) || {})))];
  const losses = keys((r) => r.last).filter((k) => k.startsWith("loss"));
  const evals = keys((r) => r.eval).filter((k) => !k.includes("_std_"));
  return [
    {key: "pick", label: "", sortable: false},
    {key: "id", label: "run", get: (r) => r.id},
    {key: "description", label: "description",
     get: (r) => r.description || [r.data, r.model].filter(Boolean).join(" + ")},
    {key: "data", label: "data", get: (r) => r.data},
    {key: "model", label: "model", get: (r) => r.model},
    {key: "algorithm", label: "algorithm", get: (r) => r.algorithm},
    {key: "step", label: "steps", get: (r) => r.step,
     show: (r) => r.step + " / " + (r.steps === null ? "?" : r.steps)},
    ...losses.map((k) => ({key: "last:" + k, label: k, get: (r) => r.last[k]})),
    ...evals.map((k) => ({key: "eval:" + k, label: k, get: (r) => r.eval[k],
                          title: "last evaluation (eval.json when present)"})),
    {key: "mtime", label: "modified", get: (r) => r.mtime,
     show: (r) => new Date(r.mtime * 1000).toLocaleString()},
  ];
}

function compare(a, b) {
  const missing = (v) => v === null || v === undefined || v === "";
  if (missing(a) || missing(b)) return missing(a) - missing(b);  // blanks last either way
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, {numeric: true});
}

function renderTable() {
  const cols = tableColumns();
  const col = cols.find((c) => c.key === state.sort.key) || cols[1];
  const rows = [...state.runs].sort((a, b) => {
    const va = col.get(a), vb = col.get(b), blank = (v) => v === null || v === undefined || v === "";
    if (blank(va) || blank(vb)) return compare(va, vb);
    return state.sort.dir * compare(va, vb);
  });
  const head = $("runs-table").tHead.rows[0];
  head.replaceChildren(...cols.map((c) => {
    const th = document.createElement("th");
    th.textContent = c.label + (c.key === col.key ? (state.sort.dir > 0 ? " \u25B2" : " \u25BC") : "");
    if (c.title) th.title = c.title;
    if (c.sortable !== false) {
      th.dataset.key = c.key;
      th.classList.add("sortable");
      th.addEventListener("click", () => {
        state.sort = {key: c.key, dir: state.sort.key === c.key ? -state.sort.dir : 1};
        renderTable();
      });
    }
    return th;
  }));
  $("runs-table").tBodies[0].replaceChildren(...rows.map((r) => tableRow(r, cols)));
  $("no-runs").hidden = state.runs.length > 0;
}

function tableRow(run, cols) {
  const tr = document.createElement("tr");
  tr.dataset.run = run.id;
  tr.classList.toggle("open", run.id === state.open);
  for (const c of cols) {
    const td = document.createElement("td");
    if (c.key === "pick") {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.className = "pick";
      box.title = "overlay this run";
      box.checked = state.selected.includes(run.id);
      box.addEventListener("change", () => toggleSelected(run.id, box.checked));
      td.appendChild(box);
    } else {
      td.textContent = c.show ? c.show(run) : fmt(c.get(run));
      if (c.key === "description") td.title = td.textContent;
      if (c.key === "id" && run.error) {
        const warn = document.createElement("span");
        warn.className = "error";
        warn.textContent = " \u26A0";
        warn.title = run.error;
        td.appendChild(warn);
      }
    }
    td.className = c.key.replace(/[^a-z]/gi, "-");
    tr.appendChild(td);
  }
  tr.addEventListener("click", (event) => {
    if (!event.target.classList.contains("pick")) openRun(run.id);
  });
  return tr;
}

async function loadRuns() {
  const body = await getJSON("api/runs");
  state.runs = body.runs;
  state.mtimes = Object.fromEntries(body.runs.map((r) => [r.id, r.mtime]));
  $("root").textContent = body.root;
  renderTable();
}

/* ---- charts ------------------------------------------------------------------------------ */

function points(m, column) {
  const steps = m.columns.step || [], values = m.columns[column] || [];
  return values.map((v, i) => [steps[i], v]);  // GF.lineChart skips the nulls
}

function draw(canvas, opts) {
  canvas._gf = opts;  // kept for redrawing on resize
  GF.lineChart(canvas, opts);
}

function renderCurves(m) {
  const box = $("curves");
  const titles = m.groups.map((g) => g.title).join("\n");
  if (box.dataset.titles !== titles) {  // same charts as before: redraw in place, no flicker
    box.dataset.titles = titles;
    box.replaceChildren(...m.groups.map(() => document.createElement("canvas")));
  }
  m.groups.forEach((g, k) => {
    const series = g.columns.map((c, i) => ({name: c, color: GF.palette[i % 10], points: points(m, c)}));
    const floor = g.columns.length === 1 ? m.baseline[g.columns[0]] : undefined;
    const steps = (m.columns.step || []).filter(Number.isFinite);
    if (Number.isFinite(floor) && steps.length) {
      series.push({name: "real vs real", color: "#444",
                   points: [[Math.min(...steps), floor], [Math.max(...steps), floor]]});
    }
    draw(box.children[k], {title: g.title, xlabel: "step", ylog: g.ylog, series});
  });
}

function renderSamples() {
  const n = state.samples.length, slider = $("timeline");
  slider.max = Math.max(0, n - 1);
  slider.disabled = n === 0;
  if (state.follow || Number(slider.value) > n - 1) slider.value = Math.max(0, n - 1);
  $("no-samples").hidden = n > 0;
  $("snapshot").hidden = n === 0;
  showSnapshot();
}

function showSnapshot() {
  const i = Number($("timeline").value), sample = state.samples[i];
  $("timeline-step").textContent = sample ? "step " + sample.step : "";
  if (sample) {
    const src = runUrl(state.open, "file/" + sample.file);
    if ($("snapshot").getAttribute("src") !== src) $("snapshot").src = src;
  }
}

/* ---- the open run ------------------------------------------------------------------------ */

async function openRun(id) {
  if (state.open !== id) {
    state.open = id;
    state.follow = true;
    $("curves").replaceChildren();
    $("curves").dataset.titles = "";
    history.replaceState(null, "", location.search + "#run=" + encodeURIComponent(id));
  }
  $("detail").hidden = false;
  $("detail-title").textContent = id;
  for (const tr of $("runs-table").tBodies[0].rows) tr.classList.toggle("open", tr.dataset.run === id);
  await refreshOpen(true);
}

async function refreshOpen(withConfig) {
  const id = state.open;
  try {
    const [m, s, c] = await Promise.all([getJSON(runUrl(id, "metrics")), getJSON(runUrl(id, "samples")),
                                         withConfig ? getJSON(runUrl(id, "config")) : null]);
    if (id !== state.open) return;  // another run was opened meanwhile
    state.metrics[id] = m;
    state.samples = s.samples;
    $("detail-error").hidden = !m.error;
    $("detail-error").textContent = m.error || "";
    renderCurves(m);
    renderSamples();
    if (c) $("config").textContent = c.text;
  } catch (err) {
    $("detail-error").hidden = false;
    $("detail-error").textContent = "cannot read this run: " + err.message;
  }
}

/* ---- the overlay ------------------------------------------------------------------------- */

async function toggleSelected(id, on) {
  state.selected = state.selected.filter((x) => x !== id);
  if (on) {
    state.selected.push(id);
    await fetchMetrics([id]);
  }
  renderOverlay();
}

async function fetchMetrics(ids) {
  await Promise.all(ids.map(async (id) => {
    try { state.metrics[id] = await getJSON(runUrl(id, "metrics")); } catch (err) { delete state.metrics[id]; }
  }));
}

function renderOverlay() {
  const chosen = state.selected.filter((id) => state.metrics[id]);
  const names = [...new Set(chosen.flatMap((id) => Object.keys(state.metrics[id].columns)))]
    .filter((c) => !POSITION.includes(c));
  const select = $("overlay-metric"), current = select.value;
  if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
    select.replaceChildren(...names.map((n) => new Option(n, n)));
  }
  select.value = names.includes(current) ? current : (names.includes("loss_G") ? "loss_G" : names[0] || "");
  $("overlay-hint").hidden = chosen.length > 0;
  const metric = select.value;
  draw($("overlay-chart"), {
    title: metric || "no run ticked", xlabel: "step", ylog: $("overlay-log").checked,
    series: chosen.map((id, i) => ({name: id, color: GF.palette[i % 10], points: points(state.metrics[id], metric)})),
  });
}

/* ---- live refresh ------------------------------------------------------------------------ */

async function poll() {
  if (state.busy || document.hidden) return;
  state.busy = true;
  try {
    const {runs} = await getJSON("api/changes");
    const ids = new Set([...Object.keys(runs), ...Object.keys(state.mtimes)]);
    const changed = [...ids].filter((id) => runs[id] !== state.mtimes[id]);
    if (changed.length) {
      await loadRuns();
      if (changed.includes(state.open)) await refreshOpen(false);
      const stale = state.selected.filter((id) => changed.includes(id));
      if (stale.length) { await fetchMetrics(stale); renderOverlay(); }
    }
    $("status").textContent = "live \u00B7 checked " + new Date().toLocaleTimeString();
    $("status").classList.remove("error");
  } catch (err) {
    $("status").textContent = "server unreachable (" + err.message + ")";
    $("status").classList.add("error");
  } finally {
    state.busy = false;
  }
}

function redrawAll() {
  for (const canvas of document.querySelectorAll("canvas")) if (canvas._gf) GF.lineChart(canvas, canvas._gf);
}

async function main() {
  $("timeline").addEventListener("input", () => {
    state.follow = Number($("timeline").value) === state.samples.length - 1;
    showSnapshot();
  });
  $("overlay-metric").addEventListener("change", renderOverlay);
  $("overlay-log").addEventListener("change", renderOverlay);
  let resizing = null;
  window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(redrawAll, 150); });
  try {
    await loadRuns();
  } catch (err) {
    $("status").textContent = "cannot list runs: " + err.message;
    $("status").classList.add("error");
  }
  renderOverlay();
  const wanted = decodeURIComponent((location.hash.match(/^#run=(.+)$/) || [])[1] || "");
  if (wanted && state.runs.some((r) => r.id === wanted)) await openRun(wanted);
  setInterval(poll, POLL_MS);
}

main();
