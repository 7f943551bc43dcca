// The Monitoring page: one call to /api/monitoring/overview, drawn with plotly, every few seconds.
"use strict";

const monitoring = {
  palette: ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"],

  color(data, version) {
    const order = data.versions.map((v) => v.version);
    return monitoring.palette[Math.max(order.indexOf(version), 0) % monitoring.palette.length];
  },

  // Dashed vertical lines where a new version served its first request, labelled with the version.
  redeploys(data) {
    const shapes = data.redeploys.map((r) => ({
      type: "line", xref: "x", yref: "paper", x0: r.t, x1: r.t, y0: 0, y1: 1,
      line: { color: monitoring.color(data, r.version), dash: "dash", width: 1.5 },
    }));
    const annotations = data.redeploys.map((r) => ({
      x: r.t, xref: "x", y: 1, yref: "paper", yanchor: "bottom", showarrow: false,
      text: `redeploy v${r.version}`, font: { size: 10, color: monitoring.color(data, r.version) },
    }));
    return { shapes, annotations };
  },

  layout(data, title, yTitle, extra = {}) {
    const marks = monitoring.redeploys(data);
    return {
      title: { text: title, font: { size: 14 } },
      margin: { l: 50, r: 10, t: 40, b: 30 },
      height: 320,
      xaxis: { type: "date", range: [data.range.start, data.range.end], title: { text: "event time (UTC)", standoff: 8 }, automargin: true },
      yaxis: { title: { text: yTitle }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.25 },
      shapes: [...marks.shapes, ...(extra.shapes || [])],
      annotations: marks.annotations,
      barmode: extra.barmode,
    };
  },

  threshold(value, color = "#b3261e") {
    return { type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: value, y1: value, line: { color, width: 1 } };
  },

  draw(id, traces, layout) {
    Plotly.react(id, traces, layout, { displaylogo: false, responsive: true });
  },

  render(data) {
    const total = data.totals.reduce((n, t) => n + (t.requests || 0), 0);
    const champ = data.totals.find((t) => t.version === data.champion) || {};
    document.getElementById("champion").textContent = `v${data.champion}`;
    document.getElementById("requests").textContent = total.toLocaleString("en");
    document.getElementById("logged").textContent = data.logged.toLocaleString("en");
    document.getElementById("accuracy").textContent = lab.fmt(champ.accuracy);
    const p95 = data.alerts.find((a) => a.rule === "p95_latency_ms") || {};
    document.getElementById("p95").textContent = lab.fmt(p95.value, 1);
    document.getElementById("updated").textContent = new Date().toLocaleTimeString("en-GB");
    const w = data.window;
    document.getElementById("window-note").textContent = w.requests
      ? `judged on v${data.champion}'s last ${w.hours} h: ${w.requests.toLocaleString("en")} requests, ${w.start} .. ${w.end} UTC`
      : w.message;

    const body = document.querySelector("#alerts tbody");
    body.replaceChildren(...data.alerts.map((a) => {
      const tr = document.createElement("tr");
      tr.dataset.rule = a.rule;
      const cells = [a.rule, a.status, lab.fmt(a.value, 4), lab.fmt(a.threshold, 4), a.detail];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 1) td.className = a.status === "firing" ? "firing" : a.status === "ok" ? "ok" : "muted";
        if (i === 2 || i === 3) td.className = "num";
        tr.appendChild(td);
      });
      return tr;
    }));

    const byVersion = (key, extra = {}) => data.series.map((s) => ({
      x: s.t, y: s[key], name: `v${s.version}${extra.suffix || ""}`, type: extra.type || "scatter",
      mode: "lines+markers", marker: { color: monitoring.color(data, s.version), size: 4 },
      line: { color: monitoring.color(data, s.version), dash: extra.dash }, connectgaps: false,
      customdata: s.labeled, hovertemplate: extra.hover,
      // a bar spans its time bucket (plotly would widen bars to the gap between sparse points)
      width: extra.type === "bar" ? s.t.map(() => data.range.bucket_seconds * 900) : undefined,
      offset: extra.type === "bar" ? 0 : undefined,
    }));
    monitoring.draw("chart-traffic", byVersion("requests", { type: "bar" }),
      monitoring.layout(data, `Requests per ${data.range.bucket_seconds / 60} min`, "requests", { barmode: "stack" }));
    const t = data.thresholds;
    monitoring.draw("chart-latency",
      [...byVersion("latency_p50_ms", { suffix: " p50", dash: "dot" }), ...byVersion("latency_p95_ms", { suffix: " p95" })],
      monitoring.layout(data, "Server latency p50 / p95", "ms", { shapes: [monitoring.threshold(t.max_p95_latency_ms)] }));
    monitoring.draw("chart-quality",
      byVersion("accuracy", { hover: "%{y:.3f} on %{customdata} labelled<extra>%{fullData.name}</extra>" }),
      monitoring.layout(data, "Accuracy at 0.5 on labelled requests (labels arrive late)", "accuracy",
        { shapes: [monitoring.threshold(t.min_accuracy)] }));

    const drift = [...data.drift].filter((d) => d.psi !== null).reverse();
    monitoring.draw("chart-drift", [{
      type: "bar", orientation: "h", x: drift.map((d) => d.psi), y: drift.map((d) => `${d.feature} (${d.kind})`),
      marker: { color: drift.map((d) => (d.drifted ? "#b3261e" : "#1f5fbf")) },
    }], {
      title: { text: `PSI vs training profile, v${data.champion}'s window`, font: { size: 14 } },
      margin: { l: 150, r: 10, t: 40, b: 40 }, height: Math.max(300, 18 * drift.length + 80),
      xaxis: { title: { text: "PSI" }, rangemode: "tozero" },
      shapes: [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: t.max_psi, x1: t.max_psi, line: { color: "#b3261e", dash: "dash" } }],
      annotations: drift.length ? [] : [{ text: w.message || "no drift data", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
    });
    document.body.dataset.hours = String(data.hours);
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  },

  start(seconds) {
    const select = document.getElementById("window-hours");
    const load = async () => monitoring.render(await lab.getJSON(`/api/monitoring/overview?hours=${select.value}`));
    select.addEventListener("change", () => load().catch((err) => lab.flash(err.message)));
    lab.every(seconds, load);
  },
};
