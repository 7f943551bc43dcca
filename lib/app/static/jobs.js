// The Jobs page: the spec, the history (polled), a run's log, and starting a chain with the access key.
"use strict";

const jobs = {
  selectedRun: null,
  launch: null, // {chain: [names], after_run_id}

  cell(tr, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  },

  duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    return seconds < 90 ? `${seconds.toFixed(0)} s` : `${(seconds / 60).toFixed(1)} min`;
  },

  async loadSpec() {
    const spec = await lab.getJSON("/api/jobs/spec");
    document.getElementById("spec-path").textContent = spec.path;
    const body = document.querySelector("#spec tbody");
    body.replaceChildren(...spec.jobs.map((j) => {
      const tr = document.createElement("tr");
      jobs.cell(tr, j.name);
      jobs.cell(tr, j.command).style.fontFamily = "ui-monospace, monospace";
      jobs.cell(tr, j.depends_on.join(", ") || "–");
      jobs.cell(tr, jobs.duration(j.timeout), "num");
      jobs.cell(tr, j.schedule || "manual");
      jobs.cell(tr, j.description, "muted");
      return tr;
    }));
    const select = document.getElementById("start-job");
    select.replaceChildren(...spec.jobs.map((j) => {
      const option = document.createElement("option");
      option.value = j.name;
      option.textContent = `${j.name} → ${spec.chains[j.name].length} job(s)`;
      return option;
    }));
  },

  async loadRuns() {
    const data = await lab.getJSON("/api/jobs/runs?limit=50");
    const body = document.querySelector("#runs tbody");
    body.replaceChildren(...data.runs.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.runId = r.run_id;
      tr.style.cursor = "pointer";
      jobs.cell(tr, r.run_id, "num");
      jobs.cell(tr, r.job);
      jobs.cell(tr, r.trigger);
      jobs.cell(tr, r.started_at);
      jobs.cell(tr, jobs.duration(r.seconds), "num");
      jobs.cell(tr, r.status, r.status);
      jobs.cell(tr, r.exit_code, "num");
      tr.addEventListener("click", () => { jobs.selectedRun = r.run_id; jobs.loadLog().catch((e) => lab.flash(e.message)); });
      return tr;
    }));
    if (jobs.selectedRun === null && data.runs.length) jobs.selectedRun = data.runs[0].run_id;
    if (jobs.launch) jobs.showProgress(data.runs);
    if (jobs.selectedRun !== null) await jobs.loadLog();
  },

  async loadLog() {
    const data = await lab.getJSON(`/api/jobs/runs/${jobs.selectedRun}/log?tail=200`);
    document.getElementById("log-title").textContent =
      `run ${data.run.run_id} · ${data.run.job} · ${data.run.status} · ${data.path}`;
    document.getElementById("log").textContent = data.missing ? "(the log file no longer exists)" : data.lines.join("\n");
  },

  showProgress(runs) {
    const mine = runs.filter((r) => r.run_id > jobs.launch.after_run_id && jobs.launch.chain.includes(r.job));
    const byJob = Object.fromEntries(mine.map((r) => [r.job, r]));
    const done = mine.filter((r) => r.status === "succeeded").length;
    const failed = mine.find((r) => r.status === "failed" || r.status === "timeout");
    const total = jobs.launch.chain.length;
    document.getElementById("progress-bar").max = total;
    document.getElementById("progress-bar").value = done;
    let state = `${done}/${total} jobs done`;
    if (failed) state = `stopped: ${failed.job} ${failed.status}`;
    else if (done === total) state = `succeeded (${total}/${total} jobs done)`;
    document.getElementById("progress-state").textContent = state;
    document.getElementById("progress").dataset.state = failed ? "failed" : done === total ? "succeeded" : "running";
    document.getElementById("progress-jobs").replaceChildren(...jobs.launch.chain.map((name) => {
      const li = document.createElement("li");
      const r = byJob[name];
      li.textContent = r ? `${name}: ${r.status} (${jobs.duration(r.seconds)})` : `${name}: waiting`;
      if (r) li.className = r.status;
      return li;
    }));
  },

  async startChain(event) {
    event.preventDefault();
    const job = document.getElementById("start-job").value;
    const key = document.getElementById("access-key").value;
    const button = document.getElementById("start-button");
    button.disabled = true;
    try {
      const headers = key ? { Authorization: `Bearer ${key}` } : {};
      const launched = await lab.postJSON("/api/jobs/start", { job }, headers);
      jobs.launch = launched;
      jobs.selectedRun = null;
      document.getElementById("progress").hidden = false;
      document.getElementById("progress-title").textContent = `${launched.job}: ${launched.chain.join(" → ")}`;
      document.getElementById("start-status").textContent = `started (pid ${launched.pid})`;
      document.getElementById("start-status").className = "ok";
      await jobs.loadRuns();
    } catch (err) {
      document.getElementById("start-status").textContent = err.message;
      document.getElementById("start-status").className = "error";
    } finally {
      button.disabled = false;
    }
  },

  start(seconds) {
    document.getElementById("start-form").addEventListener("submit", jobs.startChain);
    jobs.loadSpec().catch((err) => lab.flash(err.message));
    lab.every(seconds, jobs.loadRuns);
  },
};
