/* ganforge play: the browser side of the websocket protocol in docs/play.md.
   Frames are stored as they arrive and drawn on requestAnimationFrame from the latest one only. */
(function () {
  "use strict";

  var MAX_POINTS = 2000;          // per chart series
  var MAX_DRAWN = 2000;           // the protocol's limit on drawn points
  var COLORS = {real: "#1a9850", fake: "#7b3294", drawn: "#e66101", arrow: "rgba(84, 24, 110, 0.8)",
                manifold: "rgba(123, 50, 148, 0.75)", grid: "rgba(0, 0, 0, 0.07)", axis: "#6b7280"};
  // Diverging palette for D: 0 (fake, purple) -> 0.5 (neutral) -> 1 (real, green).
  var STOPS = [[0, [171, 130, 196]], [0.5, [246, 246, 246]], [1, [120, 193, 128]]];
  var SERIES = ["loss_D", "loss_G", "d_real", "d_fake", "c_real", "c_fake", "jsd", "w1"];
  var PROBABILITY_LOSSES = {};   // the losses whose D outputs a probability: the server says which

  var $ = function (id) { return document.getElementById(id); };
  var token = new URLSearchParams(location.search).get("token") || "";

  var state = {
    ws: null, retry: 0, settings: {}, running: false,
    frame: null, dirty: true, raf: 0, lastStep: -1, lastDivStep: null,
    historyId: undefined, pendingClear: false, history: {}, frameError: null,
    chartsDirty: false, chartsAt: 0, drawTimes: [],
    drawOn: false, drawing: [], lastDrawPx: null,
    view: null, heatmapSum: 0, manifoldAlpha: null, image: null, scoreKeys: "",
  };

  window.gfPlay = {
    framesReceived: 0,
    lastFrame: null,
    heatmapChecksum: function () { return state.heatmapSum; },
  };

  // ---------------------------------------------------------------- connection

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/ws" +
                           (token ? "?token=" + encodeURIComponent(token) : ""));
    state.ws = ws;
    ws.onopen = function () { state.retry = 0; };
    ws.onmessage = function (event) { onMessage(event.data); };
    ws.onclose = function (event) {
      document.body.dataset.connected = "0";
      if (event.code === 1008) {   // the token gate: retrying cannot help
        setStatus("refused: open the page with the full URL the server printed (?token=...)", true);
        return;
      }
      setStatus("disconnected from the server; reconnecting…", true);
      setTimeout(connect, Math.min(5000, 500 * Math.pow(2, state.retry++)));
    };
  }

  function send(message) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      setStatus("not connected to the server", true);
      return false;
    }
    state.ws.send(JSON.stringify(message));
    return true;
  }

  function configure(settings) { return send({type: "configure", settings: settings}); }

  var handlers = {
    hello: onHello,
    settings: onSettings,
    frame: onFrame,
    runs: onRuns,
    saved: function (msg) {
      setText($("saved-path"), msg.path);
      setStatus("saved to " + msg.path);
      send({type: "list_runs"});
    },
    error: function (msg) {
      setStatus(msg.message || "error", true);
      state.pendingClear = false;
      applySettings(state.settings, true);   // undo the rejected edit in the controls
    },
  };

  function onMessage(text) {
    var msg;
    try { msg = JSON.parse(text); } catch (err) { return setStatus("unreadable message from the server", true); }
    var handler = msg && handlers[msg.type];
    if (handler) handler(msg);
  }

  function onHello(msg) {
    clearHistory();   // the first frame resends the server's history
    state.historyId = undefined;
    state.lastStep = -1;
    fillChoices(msg.choices || {});
    PROBABILITY_LOSSES = {};
    (msg.probability_losses || []).forEach(function (name) { PROBABILITY_LOSSES[name] = true; });
    applyLimits(msg.limits || {});
    state.settings = {};
    applySettings(msg.settings || {}, true);
    var points = state.settings.points;
    if (!state.drawing.length && Array.isArray(points) && points.length) {   // the distribution drawn so far
      state.drawing = points.slice(0, MAX_DRAWN);
      updateDrawCount();
    }
    if (typeof msg.running === "boolean") setRunning(msg.running);
    document.body.dataset.connected = "1";
    setStatus("connected");
    send({type: "list_runs"});
  }

  function onSettings(msg) {
    // The reply to our reset / load. A server that numbers its histories (frame.history_id)
    // is followed by the frame instead, which may arrive before or after this reply.
    if (state.pendingClear && state.historyId === undefined) {
      state.pendingClear = false;
      clearHistory();
    }
    applySettings(msg.settings || {}, false);
    if ($("status").classList.contains("error")) setStatus("");   // an accepted change clears an old error
  }

  function onFrame(frame) {
    window.gfPlay.framesReceived++;
    if (typeof frame.step === "number") {
      if (frame.step < state.lastStep) clearHistory();   // a reset or load happened
      state.lastStep = frame.step;
    }
    if (frame.history_id !== undefined && frame.history_id !== state.historyId) {
      if (state.historyId !== undefined) newHistory(frame);
      state.historyId = frame.history_id;
    }
    if (frame.error && frame.error !== state.frameError) setStatus(frame.error, true);
    else if (!frame.error && state.frameError) setStatus("");   // the next success clears it
    state.frameError = frame.error || null;
    accumulate(frame);
    state.running = !!frame.running;
    state.frame = window.gfPlay.lastFrame = frame;
    state.dirty = true;
    schedule();
  }

  function onRuns(msg) {
    var select = $("runs"), keep = select.value, runs = msg.runs || [];
    select.textContent = "";
    runs.forEach(function (run) {
      var label = [run.name, run.data, run.loss, run.step != null ? "step " + run.step : null]
        .filter(function (part) { return part != null && part !== ""; }).join(" · ");
      select.appendChild(new Option(label, run.name));
    });
    if (!runs.length) select.appendChild(new Option("no saved runs yet", ""));
    if (runs.some(function (run) { return run.name === keep; })) select.value = keep;
    $("load").disabled = !runs.length;
  }

  // ---------------------------------------------------------------- controls

  function control(key) { return document.querySelector('[data-setting="' + key + '"]'); }

  function fillChoices(choices) {
    Object.keys(choices).forEach(function (key) {
      var select = control(key), values = choices[key];
      if (!select || select.tagName !== "SELECT" || !Array.isArray(values)) return;
      select.textContent = "";
      values.forEach(function (v) { select.appendChild(new Option(String(v), String(v))); });
    });
  }

  // Limits may come as [min, max] or {min, max}; either end may be missing.
  function applyLimits(limits) {
    Object.keys(limits).forEach(function (key) {
      var input = control(key), lim = limits[key];
      if (!input || input.tagName !== "INPUT" || lim == null) return;
      var lo = Array.isArray(lim) ? lim[0] : lim.min, hi = Array.isArray(lim) ? lim[1] : lim.max;
      if (typeof lo === "number" && isFinite(lo)) input.min = lo;
      if (typeof hi === "number" && isFinite(hi)) input.max = hi;
    });
  }

  // force: also overwrite the control that has focus (normally the user may be typing in it).
  function applySettings(settings, force) {
    Object.assign(state.settings, settings);
    Object.keys(settings).forEach(function (key) {
      var el = control(key), value = settings[key];
      if (!el || value == null) return;
      if (!force && el === document.activeElement && el.type !== "checkbox" && el.tagName === "INPUT") return;
      if (el.type === "checkbox") { el.checked = !!value; return; }
      if (el.tagName === "SELECT" && !Array.prototype.some.call(el.options, function (o) { return o.value === String(value); })) {
        el.appendChild(new Option(String(value), String(value)));
      }
      el.value = String(value);
    });
    setText($("speed-value"), $("speed").value);
    if (settings.mode) showMode(settings.mode);
  }

  function readControl(el) {
    if (el.type === "checkbox") return el.checked;
    if (el.tagName === "SELECT") return el.value;
    var n = Number(el.value);
    return el.value.trim() === "" || !isFinite(n) ? null : n;
  }

  function onControlChange(el) {
    var key = el.dataset.setting, value = readControl(el);
    if (value === null) {
      setStatus(key + ": enter a number", true);
      return applySettings(state.settings, true);
    }
    if (key === "data" && value === "drawn") return useDrawing();
    var change = {};
    change[key] = value;
    configure(change);
  }

  function wireControls() {
    document.querySelectorAll("[data-setting]").forEach(function (el) {
      el.addEventListener("change", function () { onControlChange(el); });
    });
    $("speed").addEventListener("input", function () { setText($("speed-value"), $("speed").value); });

    $("play").addEventListener("click", function () {
      if (send({type: state.running ? "pause" : "play"})) setRunning(!state.running);
    });
    [["step-both", "both"], ["step-d", "D"], ["step-g", "G"]].forEach(function (pair) {
      $(pair[0]).addEventListener("click", function () { send({type: "step", which: pair[1]}); });
    });
    $("reset").addEventListener("click", function () {
      if (send({type: "reset"})) state.pendingClear = true;
    });
    $("save").addEventListener("click", save);
    $("save-name").addEventListener("keydown", function (e) { if (e.key === "Enter") save(); });
    $("refresh-runs").addEventListener("click", function () { send({type: "list_runs"}); });
    $("load").addEventListener("click", function () {
      var run = $("runs").value;
      if (!run) return setStatus("no run selected: save one first, or refresh the list", true);
      if (send({type: "load", run: run})) state.pendingClear = true;
    });
    ["layer-heatmap", "layer-real", "layer-fake", "layer-arrows", "layer-manifold"].forEach(function (id) {
      $(id).addEventListener("change", redraw);
    });
    window.addEventListener("resize", function () { state.chartsDirty = true; redraw(); });
  }

  function save() {
    var name = $("save-name").value.trim();
    if (!name) return setStatus("enter a name for the run to save", true);
    send({type: "save", name: name});
  }

  function setRunning(running) {
    state.running = running;
    setText($("play"), running ? "Pause" : "Play");
    $("play").classList.toggle("running", running);
    ["step-both", "step-d", "step-g"].forEach(function (id) { $(id).disabled = running; });
  }

  function showMode(mode) {
    var image = mode === "image";
    if ($("image-panel").hidden === !image) return;
    $("image-panel").hidden = !image;
    $("field-panel").hidden = image;
    document.body.dataset.mode = image ? "image" : "2d";
    ["data", "draw", "use-drawing", "clear-drawing"].forEach(function (id) { $(id).disabled = image; });
    if (image) setDrawTool(false);
    redraw();
  }

  // ---------------------------------------------------------------- drawing tool

  function wireDrawing() {
    var canvas = $("field"), down = false;
    canvas.addEventListener("pointerdown", function (e) {
      if (!state.drawOn || e.button !== 0) return;
      down = true;
      state.lastDrawPx = null;
      canvas.setPointerCapture(e.pointerId);
      addDrawnPoint(e);
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", function (e) { if (down) addDrawnPoint(e); });
    ["pointerup", "pointercancel"].forEach(function (type) {
      canvas.addEventListener(type, function () { down = false; });
    });
    $("draw").addEventListener("click", function () { setDrawTool(!state.drawOn); });
    $("use-drawing").addEventListener("click", useDrawing);
    $("clear-drawing").addEventListener("click", function () { state.drawing = []; updateDrawCount(); redraw(); });
  }

  function setDrawTool(on) {
    state.drawOn = on;
    $("draw").setAttribute("aria-pressed", String(on));
    $("draw").classList.toggle("active", on);
    $("field").classList.toggle("drawing", on);
    redraw();
  }

  function addDrawnPoint(e) {
    var canvas = $("field"), rect = canvas.getBoundingClientRect(), view = state.view;
    if (!view || !rect.width) return;
    var px = (e.clientX - rect.left) * canvas.width / rect.width;
    var py = (e.clientY - rect.top) * canvas.height / rect.height;
    var last = state.lastDrawPx, minGap = 4 * (window.devicePixelRatio || 1);
    if (last && Math.hypot(px - last[0], py - last[1]) < minGap) return;
    if (state.drawing.length >= MAX_DRAWN) return setStatus("at most " + MAX_DRAWN + " drawn points", true);
    state.lastDrawPx = [px, py];
    var x = clamp(view.x(px), -10, 10), y = clamp(view.y(py), -10, 10);
    state.drawing.push([round4(x), round4(y)]);
    updateDrawCount();
    redraw();
  }

  function useDrawing() {
    if (state.drawing.length < 2) {
      setStatus("draw at least 2 points first: press Draw, then drag on the field", true);
      setDrawTool(true);
      if (state.settings.data) $("data").value = state.settings.data;
      return;
    }
    if (configure({points: state.drawing.slice()})) setDrawTool(false);
  }

  function updateDrawCount() {
    var n = state.drawing.length;
    setText($("draw-count"), n + (n === 1 ? " point drawn" : " points drawn"));
  }

  // ---------------------------------------------------------------- history and charts

  function clearHistory() {
    SERIES.forEach(function (key) { state.history[key] = []; });
    state.lastDivStep = null;
    state.chartsDirty = true;
  }

  // The server restarted its metrics history: after our reset or load, or (overlapping rows)
  // when it trimmed a long history; keep our points before the first resent row.
  function newHistory(frame) {
    var rows = frame.metrics || [], first = rows.length ? rows[0].step : frame.step;
    var loss = state.history.loss_D, overlaps = loss.length && first >= loss[0][0] && first <= loss[loss.length - 1][0] + 1;
    if (state.pendingClear || !overlaps) {
      state.pendingClear = false;
      return clearHistory();
    }
    ["loss_D", "loss_G", "d_real", "d_fake"].forEach(function (key) {
      state.history[key] = state.history[key].filter(function (p) { return p[0] < first; });
    });
  }

  function pushPoint(key, x, y) {
    if (typeof x !== "number" || typeof y !== "number" || !isFinite(y)) return;
    var series = state.history[key];
    series.push([x, y]);
    if (series.length > MAX_POINTS + 100) series.splice(0, series.length - MAX_POINTS);
  }

  function accumulate(frame) {
    (frame.metrics || []).forEach(function (row) {
      var x = row.step != null ? row.step : frame.step;
      ["loss_D", "loss_G", "d_real", "d_fake", "c_real", "c_fake"].forEach(function (key) {
        pushPoint(key, x, row[key]);
      });
    });
    var div = frame.divergence;
    if (div && div.step !== state.lastDivStep) {
      state.lastDivStep = div.step;
      pushPoint("jsd", div.step, div.jsd);
      pushPoint("w1", div.step, div.w1);
    }
    state.chartsDirty = true;
  }

  function paletteColor(i) {
    var list = window.GF && Array.isArray(window.GF.palette) ? window.GF.palette : [];
    return list.length ? list[i % list.length] : ["#1f77b4", "#ff7f0e", "#17becf", "#d62728"][i % 4];
  }

  function drawCharts() {
    state.chartsDirty = false;
    state.chartsAt = performance.now();
    if (!window.GF || typeof window.GF.lineChart !== "function") return;
    var h = state.history, heat = state.frame && state.frame.heatmap;
    var prob = heat ? heat.kind !== "critic" : !!PROBABILITY_LOSSES[state.settings.loss];
    chart("chart-loss", "Losses", [["loss D", h.loss_D, paletteColor(0)], ["loss G", h.loss_G, paletteColor(1)]]);
    // probabilities and critic values never share an axis: the chart shows the current loss's kind
    chart("chart-scores", prob ? "D(x) and D(G(z))" : "Critic on real and fake",
          prob ? [["D(x)", h.d_real, COLORS.real], ["D(G(z))", h.d_fake, COLORS.fake]]
               : [["critic(x)", h.c_real, COLORS.real], ["critic(G(z))", h.c_fake, COLORS.fake]]);
    chart("chart-divergence", "Divergence estimates",
          [["JSD", h.jsd, paletteColor(9)], ["W1", h.w1, paletteColor(3)]]);
  }

  function chart(id, title, series) {
    window.GF.lineChart($(id), {
      title: title, xlabel: "step", ylog: false, robust: true,
      series: series.map(function (s) { return {name: s[0], points: s[1], color: s[2]}; }),
    });
  }

  // ---------------------------------------------------------------- rendering loop

  function schedule() { if (!state.raf) state.raf = requestAnimationFrame(render); }
  function redraw() { state.dirty = true; schedule(); }

  function render(now) {
    state.raf = 0;
    if (state.dirty) {
      state.dirty = false;
      drawFrame(state.frame);
      state.drawTimes.push(now);
    }
    if (state.chartsDirty) {   // charts at most 10 times a second: they hold thousands of points
      if (now - state.chartsAt >= 100) drawCharts();
      else schedule();
    }
  }

  function drawFrame(frame) {
    if (frame) {
      setText($("step-count"), String(frame.step));
      setText($("sps"), typeof frame.steps_per_second === "number" ? frame.steps_per_second.toFixed(0) : "–");
      setRunning(!!frame.running);
      if (frame.mode) showMode(frame.mode);
    }
    if (frame && frame.mode === "image") drawImageMode(frame);
    else drawField(frame);
  }

  function updateRates() {
    var now = performance.now();
    while (state.drawTimes.length && state.drawTimes[0] < now - 1000) state.drawTimes.shift();
    setText($("fps"), String(state.drawTimes.length));
  }

  // ---------------------------------------------------------------- the 2D field

  // Keeps the aspect ratio of the bounds and centres them in the canvas.
  function makeView(bounds, width, height) {
    var x0 = bounds[0], x1 = bounds[1], y0 = bounds[2], y1 = bounds[3];
    var pad = 6 * (window.devicePixelRatio || 1);
    var s = Math.min((width - 2 * pad) / (x1 - x0 || 1), (height - 2 * pad) / (y1 - y0 || 1));
    var ox = (width - s * (x1 - x0)) / 2, oy = (height - s * (y1 - y0)) / 2;
    return {
      bounds: bounds, s: s,
      px: function (x) { return ox + (x - x0) * s; },
      py: function (y) { return oy + (y1 - y) * s; },
      x: function (px) { return x0 + (px - ox) / s; },
      y: function (py) { return y1 - (py - oy) / s; },
    };
  }

  function drawField(frame) {
    var canvas = $("field"), ctx = canvas.getContext("2d"), dpr = window.devicePixelRatio || 1;
    fitCanvas(canvas, dpr);
    var bounds = frame && frame.bounds && frame.bounds.length === 4 ? frame.bounds
               : state.view ? state.view.bounds : [-3, 3, -3, 3];
    var view = state.view = makeView(bounds, canvas.width, canvas.height);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(view.px(bounds[0]), view.py(bounds[3]), view.s * (bounds[1] - bounds[0]), view.s * (bounds[3] - bounds[2]));

    if (frame && frame.heatmap) {
      state.heatmapSum = checksum(frame.heatmap.values || []);
      if (on("layer-heatmap")) drawHeatmap(ctx, view, frame.heatmap);
      updateLegend(frame.heatmap);
    }
    drawAxes(ctx, view, dpr);
    state.manifoldAlpha = null;
    if (frame && frame.manifold && on("layer-manifold")) drawManifold(ctx, view, frame.manifold, dpr);
    drawNoise(frame && frame.manifold);
    if (frame && frame.real && on("layer-real")) drawPoints(ctx, view, frame.real, COLORS.real, 2.6 * dpr);
    if (frame && frame.fake && on("layer-fake")) drawPoints(ctx, view, frame.fake, COLORS.fake, 2.6 * dpr);
    if (frame && frame.arrows && on("layer-arrows")) drawArrows(ctx, view, frame.arrows, dpr);
    if (state.drawOn || (state.drawing.length && !frame)) drawPoints(ctx, view, state.drawing, COLORS.drawn, 2.2 * dpr);
  }

  function on(id) { return $(id).checked; }

  function checksum(values) {
    var sum = 0;
    for (var i = 0; i < values.length; i++) sum += values[i] * (1 + (i % 13));
    return sum;
  }

  function heatRange(heatmap) {
    if (heatmap.kind !== "critic") return [0, 1];
    var lo = heatmap.min, hi = heatmap.max, v = heatmap.values || [];
    if (typeof lo !== "number" || typeof hi !== "number") {
      v = v.filter(function (x) { return typeof x === "number"; });
      lo = Math.min.apply(null, v); hi = Math.max.apply(null, v);
    }
    return [lo, hi > lo ? hi : lo + 1];
  }

  function colorAt(t) {
    if (!isFinite(t)) return [200, 200, 200];   // a diverged D sends null
    t = clamp(t, 0, 1);
    var a = t < 0.5 ? STOPS[0] : STOPS[1], b = t < 0.5 ? STOPS[1] : STOPS[2], u = (t - a[0]) / (b[0] - a[0]);
    return [0, 1, 2].map(function (k) { return Math.round(a[1][k] + u * (b[1][k] - a[1][k])); });
  }

  var heatCanvas = document.createElement("canvas");

  // Values are samples at nx x ny grid points spanning the bounds (row 0 at ymin); each is drawn
  // as a cell centred on its grid point, clipped to the bounds.
  function drawHeatmap(ctx, view, heatmap) {
    var nx = heatmap.nx, ny = heatmap.ny, values = heatmap.values || [];
    if (!(nx > 0 && ny > 0) || values.length < nx * ny) return;
    var range = heatRange(heatmap), span = range[1] - range[0];
    heatCanvas.width = nx; heatCanvas.height = ny;
    var hctx = heatCanvas.getContext("2d"), img = hctx.createImageData(nx, ny);
    for (var j = 0; j < ny; j++) {
      for (var i = 0; i < nx; i++) {
        var v = values[j * nx + i], o = ((ny - 1 - j) * nx + i) * 4;
        var rgb = typeof v === "number" ? colorAt((v - range[0]) / span) : colorAt(NaN);
        img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
      }
    }
    hctx.putImageData(img, 0, 0);
    var b = view.bounds, dx = (b[1] - b[0]) / Math.max(nx - 1, 1), dy = (b[3] - b[2]) / Math.max(ny - 1, 1);
    ctx.save();
    ctx.beginPath();
    ctx.rect(view.px(b[0]), view.py(b[3]), view.s * (b[1] - b[0]), view.s * (b[3] - b[2]));
    ctx.clip();
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(heatCanvas, view.px(b[0] - dx / 2), view.py(b[3] + dy / 2), view.s * dx * nx, view.s * dy * ny);
    ctx.restore();
  }

  function updateLegend(heatmap) {
    var canvas = $("legend"), ctx = canvas.getContext("2d");
    if (!canvas.dataset.drawn) {
      for (var x = 0; x < canvas.width; x++) {
        ctx.fillStyle = "rgb(" + colorAt(x / (canvas.width - 1)).join(",") + ")";
        ctx.fillRect(x, 0, 1, canvas.height);
      }
      canvas.dataset.drawn = "1";
    }
    var critic = heatmap.kind === "critic", range = heatRange(heatmap);
    setText($("legend-low"), critic ? "critic " + fmt(range[0]) : "D = 0 (fake)");
    setText($("legend-high"), critic ? fmt(range[1]) : "D = 1 (real)");
  }

  function niceStep(span) {
    var raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
  }

  function drawAxes(ctx, view, dpr) {
    var b = view.bounds, step = niceStep(Math.max(b[1] - b[0], b[3] - b[2]));
    ctx.beginPath();
    for (var x = Math.ceil(b[0] / step) * step; x <= b[1] + 1e-9; x += step) {
      ctx.moveTo(Math.round(view.px(x)) + 0.5, view.py(b[3])); ctx.lineTo(Math.round(view.px(x)) + 0.5, view.py(b[2]));
    }
    for (var y = Math.ceil(b[2] / step) * step; y <= b[3] + 1e-9; y += step) {
      ctx.moveTo(view.px(b[0]), Math.round(view.py(y)) + 0.5); ctx.lineTo(view.px(b[1]), Math.round(view.py(y)) + 0.5);
    }
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    ctx.stroke();
    ctx.fillStyle = COLORS.axis;
    ctx.font = Math.round(10 * dpr) + "px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    ctx.fillText(fmt(b[0]) + " … " + fmt(b[1]), view.px(b[0]) + 4 * dpr, view.py(b[2]) - 3 * dpr);
  }

  function drawPoints(ctx, view, points, color, r) {
    ctx.beginPath();
    for (var i = 0; i < points.length; i++) {
      var x = view.px(points[i][0]), y = view.py(points[i][1]);
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
    ctx.fillStyle = color;
    ctx.fill();
  }

  function drawArrows(ctx, view, arrows, dpr) {
    var head = 4 * dpr;
    ctx.beginPath();
    for (var i = 0; i < arrows.length; i++) {
      var a = arrows[i], x0 = view.px(a[0]), y0 = view.py(a[1]), x1 = view.px(a[0] + a[2]), y1 = view.py(a[1] + a[3]);
      var len = Math.hypot(x1 - x0, y1 - y0);
      if (len < 0.5) continue;
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y1);
      if (len > 2 * head) {
        var ux = (x1 - x0) / len, uy = (y1 - y0) / len;
        ctx.moveTo(x1 - head * (ux - 0.5 * uy), y1 - head * (uy + 0.5 * ux));
        ctx.lineTo(x1, y1);
        ctx.lineTo(x1 - head * (ux + 0.5 * uy), y1 - head * (uy - 0.5 * ux));
      }
    }
    ctx.strokeStyle = COLORS.arrow;
    ctx.lineWidth = dpr;
    ctx.stroke();
  }

  // G's image of the noise grid: each cell shaded by how much G compresses it (small warped
  // area = many fake samples there), then the warped grid lines.
  function drawManifold(ctx, view, manifold, dpr) {
    var nx = manifold.nx, ny = manifold.ny, pts = manifold.points || [];
    if (!(nx > 1 && ny > 1) || pts.length < nx * ny) return;
    var p = pts.map(function (q) { return [view.px(q[0]), view.py(q[1])]; });
    var areas = [];
    for (var j = 0; j < ny - 1; j++) {
      for (var i = 0; i < nx - 1; i++) areas.push(quadArea(p, nx, i, j));
    }
    var typical = areas.slice().sort(function (a, b) { return a - b; })[areas.length >> 1] || 1;
    var alpha = state.manifoldAlpha = areas.map(function (area) {
      return clamp(0.12 * typical / Math.max(area, 1e-6), 0.02, 0.45);
    });
    for (j = 0; j < ny - 1; j++) {
      for (i = 0; i < nx - 1; i++) {
        var a = p[j * nx + i], b = p[j * nx + i + 1], c = p[(j + 1) * nx + i + 1], d = p[(j + 1) * nx + i];
        ctx.beginPath();
        ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.lineTo(c[0], c[1]); ctx.lineTo(d[0], d[1]);
        ctx.fillStyle = "rgba(123, 50, 148, " + alpha[j * (nx - 1) + i].toFixed(3) + ")";
        ctx.fill();
      }
    }
    ctx.beginPath();
    for (j = 0; j < ny; j++) polyline(ctx, p, j * nx, 1, nx);
    for (i = 0; i < nx; i++) polyline(ctx, p, i, nx, ny);
    ctx.strokeStyle = COLORS.manifold;
    ctx.lineWidth = dpr;
    ctx.stroke();
  }

  function quadArea(p, nx, i, j) {
    var q = [p[j * nx + i], p[j * nx + i + 1], p[(j + 1) * nx + i + 1], p[(j + 1) * nx + i]], s = 0;
    for (var k = 0; k < 4; k++) s += q[k][0] * q[(k + 1) % 4][1] - q[(k + 1) % 4][0] * q[k][1];
    return Math.abs(s) / 2;
  }

  function polyline(ctx, p, start, stride, count) {
    ctx.moveTo(p[start][0], p[start][1]);
    for (var k = 1; k < count; k++) ctx.lineTo(p[start + k * stride][0], p[start + k * stride][1]);
  }

  // The noise plane (z1, z2) with the same grid, its cells shaded like their images in the field.
  function drawNoise(manifold) {
    var canvas = $("noise"), ctx = canvas.getContext("2d");
    fitCanvas(canvas, window.devicePixelRatio || 1);
    var w = canvas.width, h = canvas.height, nx = manifold ? manifold.nx : 16, ny = manifold ? manifold.ny : 16;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    var cw = w / (nx - 1), ch = h / (ny - 1), alpha = state.manifoldAlpha;
    for (var j = 0; alpha && j < ny - 1; j++) {
      for (var i = 0; i < nx - 1; i++) {
        ctx.fillStyle = "rgba(123, 50, 148, " + alpha[j * (nx - 1) + i].toFixed(3) + ")";
        ctx.fillRect(i * cw, h - (j + 1) * ch, cw, ch);
      }
    }
    ctx.beginPath();
    for (i = 0; i < nx; i++) { ctx.moveTo(Math.round(i * cw) + 0.5, 0); ctx.lineTo(Math.round(i * cw) + 0.5, h); }
    for (j = 0; j < ny; j++) { ctx.moveTo(0, Math.round(j * ch) + 0.5); ctx.lineTo(w, Math.round(j * ch) + 0.5); }
    ctx.strokeStyle = alpha ? "rgba(123, 50, 148, 0.3)" : "rgba(0, 0, 0, 0.12)";
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  // ---------------------------------------------------------------- image mode

  function drawImageMode(frame) {
    if (frame.image && frame.image !== state.image) {
      state.image = frame.image;
      $("samples").src = frame.image;
    }
    if (frame.scores) renderScores(frame.scores);
  }

  // Rebuilds the rows only when the set of scores changes; otherwise updates the cells.
  function renderScores(scores) {
    var keys = Object.keys(scores), body = $("scores").tBodies[0];
    if (keys.join("\n") !== state.scoreKeys) {
      state.scoreKeys = keys.join("\n");
      body.textContent = "";
      keys.forEach(function (key) {
        var row = body.insertRow();
        row.insertCell().textContent = key;
        row.insertCell().className = "num";
      });
    }
    keys.forEach(function (key, i) {
      var v = scores[key];
      setText(body.rows[i].cells[1], typeof v === "number" ? fmt(v) : String(v));
    });
  }

  // ---------------------------------------------------------------- helpers

  // Matches the canvas's pixel size to its displayed size (times the device pixel ratio).
  function fitCanvas(canvas, ratio) {
    var w = Math.round(canvas.clientWidth * ratio), h = Math.round(canvas.clientHeight * ratio);
    if (w > 0 && h > 0 && (canvas.width !== w || canvas.height !== h)) { canvas.width = w; canvas.height = h; }
  }

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

  function setStatus(text, isError) {
    var el = $("status");
    setText(el, text);
    el.title = text;   // the full line when it is cut short
    el.classList.toggle("error", !!isError);
  }

  function fmt(v) {
    if (!isFinite(v)) return String(v);
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  function clamp(v, lo, hi) { return v < lo ? lo : v > hi ? hi : v; }
  function round4(v) { return Math.round(v * 1e4) / 1e4; }

  // ---------------------------------------------------------------- start

  clearHistory();
  wireControls();
  wireDrawing();
  updateDrawCount();
  setRunning(false);
  setInterval(updateRates, 500);
  schedule();
  connect();
})();
