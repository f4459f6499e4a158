// The live monitor of a training run (cnnkit/views/live.py builds its data; ui.live_monitor mounts it).
// Streamlit calls this function on every poll with the new data and the same parentElement: the
// elements are built once and only their contents change. Every text is set as text, never as markup.

const PAD = { left: 46, right: 10, top: 22, bottom: 26 };  // px around a chart's plot area

function build(root) {
  const box = element("div", "live", root);
  const view = { box, chartViews: [] };
  // a chart is redrawn when its width changes (a phone turned, the sidebar opened)
  view.resize = new ResizeObserver(() => view.chartViews.forEach((chart) => chart.data && draw(chart)));
  return view;
}

function buildStatus(view) {
  const box = element("div", "status-box", view.box);
  view.caption = element("div", "caption", box);
  view.text = element("div", "status", box);
  view.track = element("div", "track", box);
  view.details = element("div", "caption", box);
  view.fill = element("div", "fill", view.track);
  view.track.setAttribute("role", "progressbar");
  view.track.setAttribute("aria-valuemin", "0");
  view.track.setAttribute("aria-valuemax", "100");
}

function buildCurves(view) {
  view.charts = element("div", "charts", view.box);
  view.empty = element("div", null, view.box);
  view.events = element("div", "events", view.box);
  view.note = element("div", "caption note", view.box);
}

// The bar: where the run is now, then a step on each second at the run's own pace until the next
// poll is due. Steps, not a CSS transition: a transition repaints 60 times a second, which cost the
// browser 5% of a core here (docs/PERFORMANCE.md §12); nothing moves while the tab is hidden.
function showProgress(view, status) {
  const now = Math.min(Math.max(status.fraction, 0), 1);
  const started = performance.now();
  const place = (fraction) => {
    view.fill.style.transform = `scaleX(${fraction})`;
    view.track.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  };
  place(now);
  clearInterval(view.glide);
  if (status.pace > 0) {
    view.glide = setInterval(() => {
      const seconds = Math.min((performance.now() - started) / 1000, status.poll);
      if (!document.hidden) place(Math.min(now + status.pace * seconds, 1));
    }, 1000);
  }
}

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = raw / power;
  return power * (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10);
}

function ticks(low, high, count) {
  const step = niceStep(high - low || 1, count);
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

// The values' span with a margin, never below 0 when none is (a loss), nor above 1 for a share.
function range(values, fallback, share) {
  let low = Infinity, high = -Infinity;
  values.forEach((v) => { if (v < low) low = v; if (v > high) high = v; });
  if (!isFinite(low)) return fallback;
  const pad = high - low < 1e-9 ? Math.max(Math.abs(high) * 0.1, 0.05) : (high - low) * 0.05;
  return [low >= 0 ? Math.max(low - pad, 0) : low - pad, share && high <= 1 ? Math.min(high + pad, 1) : high + pad];
}

function buildChart(parent) {
  const box = element("figure", "chart", parent);
  const chart = { box, title: element("figcaption", "title", box) };
  chart.canvas = element("canvas", null, box);
  chart.legend = element("div", "legend", box);
  return chart;
}

function draw(chart) {
  const { canvas, data } = chart;
  const width = Math.max(chart.box.clientWidth, 200), height = 260;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const ink = getComputedStyle(chart.box).color;
  const xs = data.series.flatMap((s) => s.x), ys = data.series.flatMap((s) => s.y);
  const [, xHigh] = range(xs.concat(data.marks.map((m) => m.x)), [0, 1]);
  const xRange = [0, Math.max(xHigh, 1)];
  const yRange = range(ys, [0, 1], data.percent);
  const plotW = width - PAD.left - PAD.right, plotH = height - PAD.top - PAD.bottom;
  const px = (x) => PAD.left + ((x - xRange[0]) / (xRange[1] - xRange[0])) * plotW;
  const py = (y) => PAD.top + (1 - (y - yRange[0]) / (yRange[1] - yRange[0])) * plotH;

  // grid and tick labels
  g.font = "11px sans-serif";
  g.lineWidth = 1;
  g.strokeStyle = "rgba(128,128,128,0.25)";
  g.fillStyle = ink;
  g.textAlign = "right";
  g.textBaseline = "middle";
  ticks(yRange[0], yRange[1], 5).forEach((v) => {
    g.beginPath(); g.moveTo(PAD.left, py(v)); g.lineTo(width - PAD.right, py(v)); g.stroke();
    g.fillText(data.percent ? `${+(v * 100).toFixed(2)}%` : String(+v.toPrecision(3)), PAD.left - 5, py(v));
  });
  g.textAlign = "center";
  g.textBaseline = "top";
  ticks(xRange[0], xRange[1], Math.max(2, Math.floor(plotW / 70))).forEach((v) => {
    g.fillText(String(v), px(v), height - PAD.bottom + 5);
  });
  g.textAlign = "right";
  g.fillText("epoch", width - PAD.right, height - 12);

  // the lines, then their dots
  data.series.forEach((s) => {
    g.save();
    g.globalAlpha = s.opacity;
    g.strokeStyle = s.color;
    g.lineWidth = s.width;
    g.setLineDash(s.dashed ? [6, 4] : []);
    g.beginPath();
    s.x.forEach((x, i) => (i ? g.lineTo(px(x), py(s.y[i])) : g.moveTo(px(x), py(s.y[i]))));
    g.stroke();
    g.setLineDash([]);
    if (!s.dots && s.x.length) {  // where a line is now: its newest point (and a line of one point shows)
      const last = s.x.length - 1;
      g.globalAlpha = 1;
      g.fillStyle = s.color;
      g.beginPath();
      g.arc(px(s.x[last]), py(s.y[last]), 2.5, 0, 2 * Math.PI);
      g.fill();
    }
    if (s.dots) {
      s.x.forEach((x, i) => {
        g.beginPath();
        g.arc(px(x), py(s.y[i]), 3.5, 0, 2 * Math.PI);
        if (s.dots === "hollow") { g.fillStyle = "#fff"; g.fill(); g.stroke(); } else { g.fillStyle = s.color; g.fill(); }
      });
    }
    g.restore();
  });

  // pauses, new learning rates, continuations: a vertical line and its label at the top
  data.marks.forEach((m) => {
    g.save();
    g.strokeStyle = g.fillStyle = m.color;
    g.lineWidth = 1.5;
    g.setLineDash(m.dash === "solid" ? [] : m.dash === "dot" ? [2, 3] : [6, 4]);
    g.beginPath(); g.moveTo(px(m.x), PAD.top); g.lineTo(px(m.x), height - PAD.bottom); g.stroke();
    g.font = "10px sans-serif";
    g.textAlign = px(m.x) > width / 2 ? "right" : "left";
    g.textBaseline = "bottom";
    g.fillText(m.label, px(m.x) + (g.textAlign === "left" ? 3 : -3), PAD.top - 3);
    g.restore();
  });
}

function showLegend(chart) {
  chart.legend.replaceChildren();
  chart.data.series.filter((s) => s.legend).forEach((s) => {
    const item = element("span", "item", chart.legend);
    const swatch = element("span", s.dashed ? "swatch dashed" : "swatch", item);
    swatch.style.borderColor = s.color;
    element("span", null, item).textContent = s.label;
  });
  chart.marks = chart.data.marks.map((m) => m.label);
  chart.box.dataset.marks = JSON.stringify(chart.marks);  // what the markers say, for a reader or a test
  // the chart in words for a screen reader: each line's newest value
  const value = (y) => (chart.data.percent ? `${(y * 100).toFixed(1)}%` : y.toPrecision(3));
  const newest = chart.data.series.filter((s) => s.x.length).map((s) =>
    `${s.label} ${value(s.y[s.y.length - 1])} at epoch ${+s.x[s.x.length - 1].toFixed(2)}`);
  chart.canvas.setAttribute("role", "img");
  chart.canvas.setAttribute("aria-label", `${chart.data.title}: ${newest.join("; ")}`);
}

function showCharts(view, data) {
  while (view.chartViews.length < data.charts.length) {
    const chart = buildChart(view.charts);
    view.resize.observe(chart.box);
    view.chartViews.push(chart);
  }
  view.chartViews.forEach((chart, i) => {
    chart.box.hidden = i >= data.charts.length;
    if (i >= data.charts.length) return;
    chart.data = data.charts[i];
    chart.title.textContent = chart.data.title;
    showLegend(chart);
    draw(chart);
  });
}

function showLines(parent, lines) {
  parent.replaceChildren(...lines.map((line) => { const div = element("div", "caption"); div.textContent = line; return div; }));
}

function showStatus(view, status) {
  if (!view.track) buildStatus(view);
  view.caption.textContent = status.caption;
  view.text.textContent = status.text;
  view.details.textContent = status.details;
  view.details.hidden = !status.details;
  showProgress(view, status);
}

function showCurves(view, curves) {
  if (!view.charts) buildCurves(view);
  showCharts(view, curves);
  showLines(view.empty, curves.empty);
  showLines(view.events, curves.events);
  view.note.textContent = curves.note;
}

export default function (component) {
  const { data, parentElement } = component;
  if (!data) return undefined;
  let view = parentElement.__cnnkitLive;
  if (!view) view = parentElement.__cnnkitLive = build(parentElement);
  if (data.status) showStatus(view, data.status);
  if (data.curves) showCurves(view, data.curves);
  return () => { view.resize.disconnect(); clearInterval(view.glide); };
}
