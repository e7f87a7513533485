/* A small dependency-free canvas line chart, shared by the board and the play page.
 *
 *   GF.lineChart(canvas, {title, xlabel, ylog, robust, series: [{name, color, points: [[x, y], ...]}]})
 *
 * Draws axes with tick labels, a legend and one polyline per series, autoscaled to the finite
 * points (non-finite x or y, and y <= 0 on a log axis, are skipped). `robust`: the y scale spans
 * the central 96% of the values (widened by half that span each side), so that one outlier does
 * not flatten the rest; the clipped ones run off the plot and the title says so. The canvas keeps its CSS
 * size; its backing store is scaled by devicePixelRatio so lines stay sharp. Returns nothing.
 */
(function (global) {
  "use strict";

  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const FONT = "11px system-ui, sans-serif";
  const PAD = {left: 56, right: 12, top: 24, bottom: 34};

  /* Size the backing store to CSS pixels x devicePixelRatio; returns [ctx, width, height] in CSS px. */
  function setup(canvas) {
    const dpr = global.devicePixelRatio || 1;
    const rect = canvas.getBoundingClientRect();
    let w = rect.width, h = rect.height;
    if (!w || !h) {  // hidden (display: none): reuse the last known size
      w = Number(canvas.dataset.gfW) || canvas.width;
      h = Number(canvas.dataset.gfH) || canvas.height;
    } else if (!canvas.style.width && canvas.width === Math.round(w) && canvas.height === Math.round(h)) {
      // no CSS size: the layout follows the attributes, so pin it before scaling them
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
    }
    canvas.dataset.gfW = w;
    canvas.dataset.gfH = h;
    canvas.width = Math.max(1, Math.round(w * dpr));
    canvas.height = Math.max(1, Math.round(h * dpr));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return [ctx, w, h];
  }

  /* About `count` round tick values (1, 2, 5 x 10^k) covering [lo, hi]; at least two. */
  function niceTicks(lo, hi, count) {
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const steps = [0.5, 1, 2, 5, 10].map((m) => m * mag);
    const ticksFor = (step) => {
      const ticks = [], first = Math.ceil(lo / step);
      for (let i = 0; i < 50; i++) {  // bounded: at huge magnitudes v + step can equal v
        const v = (first + i) * step;
        if (v > hi + step * 1e-9) break;
        ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
      }
      return ticks;
    };
    const k = Math.max(1, steps.findIndex((s) => s >= raw));
    const ticks = ticksFor(steps[k]);
    return ticks.length >= 2 ? ticks : ticksFor(steps[k - 1]);
  }

  /* Ticks for a log axis ([lo, hi] in log10 units): powers of ten, then 1-2-5 steps, then round
   * values, whichever first gives at least three; thinned to at most eight. */
  function logTicks(lo, hi) {
    const pick = (mults) => {
      const out = [];
      for (let e = Math.floor(lo); e <= Math.ceil(hi) && out.length < 400; e++) {
        for (const m of mults) { const v = e + Math.log10(m); if (v >= lo && v <= hi) out.push(v); }
      }
      return out;
    };
    let ticks = pick([1]);
    if (ticks.length < 3) ticks = pick([1, 2, 5]);
    if (ticks.length < 3) ticks = niceTicks(Math.pow(10, lo), Math.pow(10, hi), 4).filter((v) => v > 0).map(Math.log10);
    const k = Math.ceil(ticks.length / 8);
    return ticks.filter((_, i) => i % k === 0);
  }

  function fmt(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace(".0e", "e").replace("e+", "e");
    return String(Number(v.toPrecision(4)));
  }

  /* [min, max] of the values, widened when empty or flat so the scale is never degenerate. */
  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (lo > hi) return [0, 1];
    if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
    return [lo, hi];
  }

  /* [lo, hi] of the central values: the 2nd..98th percentiles widened by half their span. */
  function robustExtent(values, lo, hi) {
    if (values.length < 20) return [lo, hi];
    const v = values.slice().sort((a, b) => a - b), q = (f) => v[Math.floor(f * (v.length - 1))];
    const a = q(0.02), b = q(0.98), pad = (b - a) * 0.5 || Math.abs(b) * 0.1 || 1;
    return [Math.max(lo, a - pad), Math.min(hi, b + pad)];
  }

  function lineChart(canvas, opts) {
    const [ctx, W, H] = setup(canvas);
    const ylog = Boolean(opts.ylog);
    const series = (opts.series || []).map((s, i) => ({
      name: String(s.name == null ? "" : s.name),
      color: s.color || palette[i % palette.length],
      points: (s.points || []).filter((p) => p && Number.isFinite(p[0]) && Number.isFinite(p[1])
                                            && (!ylog || p[1] > 0))
        .map((p) => [p[0], ylog ? Math.log10(p[1]) : p[1]]),
    }));
    const all = series.flatMap((s) => s.points);
    const [x0, x1] = extent(all.map((p) => p[0]));
    const ys = all.map((p) => p[1]);
    let [y0, y1] = extent(ys);
    const full = [y0, y1];
    if (opts.robust) [y0, y1] = robustExtent(ys, y0, y1);
    const clipped = y0 > full[0] || y1 < full[1];
    const margin = (y1 - y0) * 0.05;
    y0 -= margin; y1 += margin;
    const left = PAD.left, right = W - PAD.right, top = PAD.top, bottom = H - PAD.bottom;
    const sx = (x) => left + (x - x0) / (x1 - x0) * (right - left);
    const sy = (y) => Math.min(H + 10, Math.max(-10, bottom - (y - y0) / (y1 - y0) * (bottom - top)));

    ctx.clearRect(0, 0, W, H);
    ctx.font = FONT;
    ctx.lineWidth = 1;
    // title and x label
    ctx.fillStyle = "#222";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const note = (ylog ? " (log)" : "") + (clipped ? " (outliers clipped)" : "");
    if (opts.title) ctx.fillText(opts.title + note, (left + right) / 2, 5);
    ctx.textBaseline = "bottom";
    if (opts.xlabel) ctx.fillText(opts.xlabel, (left + right) / 2, H - 2);
    // grid and tick labels
    ctx.strokeStyle = "#e4e4e4";
    ctx.fillStyle = "#555";
    ctx.textBaseline = "top";
    for (const t of niceTicks(x0, x1, Math.max(2, Math.floor((right - left) / 80)))) {
      const x = sx(t);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.fillText(fmt(t), x, bottom + 4);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const yt = ylog ? logTicks(y0, y1) : niceTicks(y0, y1, Math.max(2, Math.floor((bottom - top) / 40)));
    for (const t of yt) {
      const y = sy(t);
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
      ctx.fillText(fmt(ylog ? Math.pow(10, t) : t), left - 4, y);
    }
    ctx.strokeStyle = "#888";
    ctx.strokeRect(left, top, right - left, bottom - top);
    if (!all.length) {
      ctx.textAlign = "center";
      ctx.fillStyle = "#999";
      ctx.fillText("no data yet", (left + right) / 2, (top + bottom) / 2);
    }
    // the series, clipped to the plot area
    ctx.save();
    ctx.beginPath(); ctx.rect(left, top, right - left, bottom - top); ctx.clip();
    ctx.lineWidth = 1.5;
    for (const s of series) {
      ctx.strokeStyle = ctx.fillStyle = s.color;
      ctx.beginPath();
      s.points.forEach((p, i) => (i ? ctx.lineTo(sx(p[0]), sy(p[1])) : ctx.moveTo(sx(p[0]), sy(p[1]))));
      ctx.stroke();
      if (s.points.length <= 40) {  // few points: mark them, so a single one is visible at all
        for (const p of s.points) { ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[1]), 2.5, 0, 2 * Math.PI); ctx.fill(); }
      }
    }
    ctx.restore();
    // legend, top right inside the plot
    const named = series.filter((s) => s.name);
    if (named.length) {
      const width = Math.max(...named.map((s) => ctx.measureText(s.name).width)) + 26;
      const lx = right - width - 4;
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(lx, top + 4, width, named.length * 15 + 4);
      ctx.textAlign = "left";
      named.forEach((s, i) => {
        const y = top + 13 + i * 15;
        ctx.fillStyle = s.color;
        ctx.fillRect(lx + 4, y - 2, 14, 4);
        ctx.fillStyle = "#222";
        ctx.fillText(s.name, lx + 22, y);
      });
    }
  }

  global.GF = Object.assign(global.GF || {}, {lineChart, palette});
})(window);
