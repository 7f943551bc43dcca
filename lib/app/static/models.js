// The Models page: versions with aliases/metrics/lineage/gate, the served version, economics, the Test button.
"use strict";

const models = {
  selected: null,

  esc(text) {
    const span = document.createElement("span");
    span.textContent = text === null || text === undefined ? "" : String(text);
    return span.innerHTML;
  },

  async loadServer() {
    const box = document.getElementById("server-status");
    const data = await lab.getJSON("/api/models/server");
    if (!data.running) {
      box.className = "error";
      box.textContent = `No model server is running. ${data.message}`;
      return;
    }
    if (!data.version) {
      box.className = "error";
      box.textContent = data.message;
      return;
    }
    const v = data.version;
    box.className = "";
    box.innerHTML = `Running at <code>${this.esc(data.url)}</code> (pid ${data.pid}, since ${this.esc(data.started_at)}, ` +
      `auth ${data.auth ? "on" : "OFF"}): serves <b id="served-version">v${this.esc(v.model_version)}</b> of ` +
      `${this.esc(v.model_name)}, decision threshold ${lab.fmt(v.decision_threshold, 3)}, loaded ${this.esc(v.loaded_at)}.`;
  },

  async loadVersions() {
    const data = await lab.getJSON("/api/models/versions");
    document.getElementById("versions-hint").textContent = data.hint;
    const body = document.querySelector("#versions-table tbody");
    body.innerHTML = "";
    for (const row of data.versions) {
      const tr = document.createElement("tr");
      tr.dataset.version = row.version;
      const aliases = row.aliases.map((a) => `<span class="alias ${a}">${this.esc(a)}</span>`).join("");
      const metrics = Object.entries(row.metrics)
        .map(([k, v]) => `${k === row.selection_metric ? "<b>" : ""}${this.esc(k.replace(/^test_/, ""))} ${lab.fmt(v, 3)}${k === row.selection_metric ? "</b>" : ""}`)
        .join("<br>");
      const l = row.lineage;
      const lineage = `snapshot <code>${this.esc(l.snapshot_id || "–")}</code><br>data ${this.esc(l.data_mode || "–")}` +
        (l.rows_train ? `, ${this.esc(l.rows_train)} train rows` : "") +
        `<br>commit <code title="${this.esc(l.git_commit)}">${this.esc((l.git_commit || "–").slice(0, 10))}</code>` +
        (l.git_dirty === "true" ? " (dirty)" : "") + `<br>run <code>${this.esc(l.run_id.slice(0, 8))}</code>`;
      const g = row.gate;
      const gate = g
        ? `<span class="${g.passed ? "ok" : "failed"}">${g.passed ? "passed" : "REJECTED"}</span>: ${this.esc(g.metric)} ` +
          `${lab.fmt(g.challenger_value, 4)} vs v${this.esc(g.champion_version)} ${lab.fmt(g.champion_value, 4)} ` +
          `(Δ ${g.delta >= 0 ? "+" : ""}${lab.fmt(g.delta, 4)}, tolerance ${g.tolerance}) on ${g.rows} rows of snapshot ${this.esc(g.snapshot_id)}`
        : '<span class="muted">never gated</span>';
      const econ = row.economics.expected_profit ? `<br>expected profit ${this.esc(row.economics.expected_profit)}` : "";
      tr.innerHTML = `<td class="num">v${this.esc(row.version)}</td><td>${aliases}</td><td class="small">${metrics}</td>` +
        `<td class="small">${lineage}</td><td class="small">${gate}</td>` +
        `<td class="small">${lab.fmt(row.threshold, 3)} (${this.esc(row.threshold_source)})${econ}</td>`;
      tr.addEventListener("click", () => this.select(row.version).catch((err) => lab.flash(err.message)));
      body.appendChild(tr);
    }
    const start = data.aliases.champion || (data.versions[0] && data.versions[0].version);
    if (start && !this.selected) await this.select(start);
  },

  async select(version) {
    this.selected = version;
    for (const tr of document.querySelectorAll("#versions-table tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.version === version);
    }
    document.getElementById("economics-version").textContent = `v${version}`;
    const data = await lab.getJSON(`/api/models/economics?version=${encodeURIComponent(version)}`);
    const summary = document.getElementById("economics-summary");
    const chart = document.getElementById("gains-chart");
    if (!data.available) {
      summary.textContent = data.message;
      Plotly.purge(chart);
      chart.innerHTML = "";
      return;
    }
    const c = data.cutoff;
    summary.textContent = `cut-off ${lab.fmt(c.threshold, 3)}: call ${c.calls} of ${c.rows} held-out customers ` +
      `(${lab.fmt(100 * c.share_called, 1)}%), reach ${c.conversions} of ${c.positives} subscribers, profit ` +
      `${lab.fmt(c.profit, 0)} at cost ${data.cost_per_call}/call and value ${data.value_per_deposit}/deposit.`;
    this.drawEconomics(chart, data);
  },

  drawEconomics(chart, data) {
    const share = [0, ...data.lift.map((d) => 100 * d.cumulative_share)];
    const gain = [0, ...data.lift.map((d) => 100 * d.cumulative_gain)];
    const curve = data.profit_curve;
    const cut = 100 * data.cutoff.share_called;
    const traces = [
      { x: share, y: gain, mode: "lines+markers", name: "model", xaxis: "x", yaxis: "y" },
      { x: [0, 100], y: [0, 100], mode: "lines", name: "random", line: { dash: "dash", color: "grey" }, xaxis: "x", yaxis: "y" },
      { x: data.lift.map((d) => d.decile), y: data.lift.map((d) => d.lift), type: "bar", name: "lift", xaxis: "x2", yaxis: "y2" },
      { x: curve.map((d) => 100 * d.share_called), y: curve.map((d) => d.profit), mode: "lines", name: "profit", xaxis: "x3", yaxis: "y3" },
    ];
    const layout = {
      height: 320, margin: { l: 50, r: 10, t: 30, b: 45 }, showlegend: false,
      grid: { rows: 1, columns: 3, pattern: "independent" },
      xaxis: { title: { text: "called (%)" } }, yaxis: { title: { text: "subscribers reached (%)" } },
      xaxis2: { title: { text: "decile" }, dtick: 1 }, yaxis2: { title: { text: "lift" } },
      xaxis3: { title: { text: "called (%)" } }, yaxis3: { title: { text: "profit" } },
      shapes: [{ type: "line", xref: "x3", yref: "paper", x0: cut, x1: cut, y0: 0, y1: 1, line: { color: "#b3261e", dash: "dash" } }],
      annotations: [
        { text: "cumulative gains", xref: "x domain", yref: "paper", x: 0.5, y: 1.08, showarrow: false },
        { text: "lift by decile", xref: "x2 domain", yref: "paper", x: 0.5, y: 1.08, showarrow: false },
        { text: `profit, cut-off ${lab.fmt(data.cutoff.threshold, 3)}`, xref: "x3 domain", yref: "paper", x: 0.5, y: 1.08, showarrow: false },
      ],
    };
    Plotly.react(chart, traces, layout, { displayModeBar: false, responsive: true });
  },

  async loadSample() {
    const box = document.getElementById("test-body");
    if (box.value.trim()) return;
    const data = await lab.getJSON("/api/models/sample");
    box.value = JSON.stringify(data, null, 2);
  },

  async test() {
    const status = document.getElementById("test-status");
    const out = document.getElementById("test-response");
    let body;
    try {
      body = JSON.parse(document.getElementById("test-body").value);
    } catch (err) {
      throw new Error(`the body is not valid JSON: ${err.message}`);
    }
    status.textContent = "sending…";
    const answer = await lab.postJSON("/api/models/test", body);
    status.textContent = `HTTP ${answer.status} from ${answer.url} in ${lab.fmt(answer.elapsed_ms, 1)} ms`;
    status.className = answer.status < 400 ? "ok" : "error";
    out.textContent = JSON.stringify(answer.response, null, 2);
    out.hidden = false;
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const run = (action) => action().catch((err) => lab.flash(err.message));
  run(() => models.loadServer());
  run(() => models.loadVersions());
  run(() => models.loadSample());
  document.getElementById("test-send").addEventListener("click", () => run(async () => {
    lab.flash("");
    await models.test();
  }));
});
