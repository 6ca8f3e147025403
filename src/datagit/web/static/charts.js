// Draws every <div class="chart" data-chart="{...}"> with the vendored uPlot.
// data-chart: {"title", "labels": [x tick text], "summaries": [hover text],
//              "series": [{"name", "values": [y or null], "dash"?: 1}]}
"use strict";
(function () {
  const COLORS = ["#2563eb", "#9ca3af", "#dc2626", "#059669", "#d97706"];

  function draw(el) {
    let spec;
    try { spec = JSON.parse(el.dataset.chart); } catch (e) { return; }
    const xs = spec.labels.map((_, i) => i);
    const data = [xs, ...spec.series.map((s) => s.values)];
    const width = Math.max(320, Math.min(el.clientWidth || 720, 960));
    const opts = {
      title: spec.title, width: width, height: 260,
      scales: { x: { time: false } },
      axes: [
        { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (spec.labels[t] || "") : "")) },
        {},
      ],
      series: [
        { label: "commit", value: (u, i) => (i == null ? "" : spec.labels[i] + " " + (spec.summaries[i] || "")) },
        ...spec.series.map((s, k) => ({
          label: s.name, stroke: COLORS[k % COLORS.length], width: 2,
          dash: s.dash ? [4, 4] : undefined, points: { show: true, size: 7 },
        })),
      ],
    };
    el.textContent = "";
    new uPlot(opts, data, el);
    el.dataset.drawn = String(xs.length);
  }

  function drawAll() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("div.chart[data-chart]").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
