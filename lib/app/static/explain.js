// The Explain page: load customers, score the form with champion and previous, draw SHAP waterfalls.
"use strict";

const explain = {
  baseline: null, // the customer as loaded: deltas are measured from it
  customers: [],
  scoring: 0, // sequence number: an answer older than the latest request is dropped

  form() {
    return document.getElementById("customer-form");
  },

  readForm() {
    const record = {};
    for (const el of this.form().querySelectorAll("[name]")) {
      if (el.dataset.kind === "number") {
        const text = el.value.trim();
        record[el.name] = text === "" || Number.isNaN(Number(text)) ? text : Number(text);
      } else {
        record[el.name] = el.value;
      }
    }
    return record;
  },

  fillForm(record) {
    for (const el of this.form().querySelectorAll("[name]")) {
      if (record[el.name] !== undefined) el.value = String(record[el.name]);
      el.classList.remove("invalid");
    }
  },

  async loadCustomers(offset = 0) {
    const source = document.getElementById("source").value;
    const data = await lab.getJSON(`/api/explain/customers?source=${source}&offset=${offset}&limit=100`);
    document.getElementById("source-description").textContent = `${data.description} · ${data.total} rows`;
    document.getElementById("row").max = Math.max(0, data.total - 1);
    if (offset === 0) {
      this.customers = data.customers;
      const select = document.getElementById("customer");
      select.innerHTML = "";
      for (const c of data.customers) {
        const r = c.record;
        const option = document.createElement("option");
        option.value = String(c.row);
        option.textContent = `#${c.row} · ${r.age} ${r.job} ${r.marital}` + (c.label ? ` · ${c.label}` : "");
        select.appendChild(option);
      }
    }
    return data;
  },

  async useRow(row) {
    let found = this.customers.find((c) => c.row === row);
    if (!found) {
      const data = await this.loadCustomers(row);
      found = data.customers[0];
      if (!found) throw new Error(`no row ${row} in this source`);
    }
    document.getElementById("row").value = String(found.row);
    const select = document.getElementById("customer");
    if ([...select.options].some((o) => o.value === String(found.row))) select.value = String(found.row);
    this.baseline = found.record;
    this.fillForm(found.record);
    document.getElementById("true-label").textContent = found.label ? `what really happened: ${found.label}` : "";
    await this.score();
  },

  async score() {
    const seq = ++this.scoring;
    const body = { record: this.readForm(), baseline: this.baseline };
    let answer;
    try {
      answer = await lab.postJSON("/api/explain/score", body);
    } catch (err) {
      if (seq !== this.scoring) return;
      const field = err.data && err.data.field;
      const bad = field ? this.form().querySelector(`[name="${field}"]`) : null;
      if (bad) bad.classList.add("invalid");
      throw err;
    }
    if (seq !== this.scoring) return;
    for (const el of this.form().querySelectorAll(".invalid")) el.classList.remove("invalid");
    lab.flash("");
    this.show("champion", answer.champion, "");
    this.show("previous", answer.previous, answer.previous_note || "");
  },

  show(alias, result, note) {
    document.getElementById(`${alias}-note`).textContent = note;
    const card = document.getElementById(`${alias}-card`);
    if (!result) {
      card.classList.add("muted");
      return;
    }
    document.getElementById(`${alias}-version`).textContent = `v${result.version}`;
    document.getElementById(`${alias}-probability`).textContent = lab.fmt(result.probability, 3);
    const delta = document.getElementById(`${alias}-delta`);
    delta.textContent = result.delta === null ? "–" : `${result.delta >= 0 ? "+" : ""}${lab.fmt(result.delta, 3)}`;
    delta.className = "value" + (result.delta > 0.0005 ? " up" : result.delta < -0.0005 ? " down" : "");
    document.getElementById(`${alias}-decision`).textContent = result.decision ? "call" : "don't call";
    document.getElementById(`${alias}-threshold`).textContent =
      `threshold ${lab.fmt(result.threshold, 3)} (${result.threshold_source})`;
    this.waterfall(`waterfall-${alias}`, result);
  },

  waterfall(id, result) {
    const parts = result.contributions;
    const labels = ["bias", ...parts.map((c) => `${c.feature} = ${c.value}`), "log-odds"];
    const values = [result.base, ...parts.map((c) => c.contribution), 0];
    const measure = ["absolute", ...parts.map(() => "relative"), "total"];
    const text = values.map((v, i) => (i === values.length - 1 ? lab.fmt(result.logit, 3) : (v >= 0 && i ? "+" : "") + lab.fmt(v, 3)));
    const trace = {
      type: "waterfall", orientation: "h", y: labels, x: values, measure, text, textposition: "outside",
      connector: { line: { color: "#aab" } },
      increasing: { marker: { color: "#1e7b34" } }, decreasing: { marker: { color: "#b3261e" } },
      totals: { marker: { color: "#1f5fbf" } },
    };
    const layout = {
      height: 90 + 24 * labels.length, margin: { l: 170, r: 50, t: 30, b: 40 },
      title: { text: `p = ${lab.fmt(result.probability, 3)} = sigmoid(${lab.fmt(result.logit, 3)})`, font: { size: 13 } },
      yaxis: { autorange: "reversed", automargin: true }, xaxis: { title: { text: "SHAP contribution (log-odds)" } },
      showlegend: false,
    };
    Plotly.react(id, [trace], layout, { displayModeBar: false, responsive: true });
  },
};

async function guarded(action) {
  try {
    await action();
  } catch (err) {
    lab.flash(err.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("source");
  source.addEventListener("change", () => guarded(async () => {
    await explain.loadCustomers(0);
    await explain.useRow(explain.customers.length ? explain.customers[0].row : 0);
  }));
  document.getElementById("customer").addEventListener("change", (e) => guarded(() => explain.useRow(Number(e.target.value))));
  document.getElementById("load-row").addEventListener("click", () => guarded(() => explain.useRow(Number(document.getElementById("row").value))));
  document.getElementById("reset").addEventListener("click", () => guarded(async () => {
    if (explain.baseline) explain.fillForm(explain.baseline);
    await explain.score();
  }));
  explain.form().addEventListener("change", () => guarded(() => explain.score()));
  explain.form().addEventListener("submit", (e) => {
    e.preventDefault();
    guarded(() => explain.score());
  });
  guarded(async () => {
    await explain.loadCustomers(0);
    if (explain.customers.length) await explain.useRow(explain.customers[0].row);
  });
});
