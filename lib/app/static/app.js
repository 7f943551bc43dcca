// Shared helpers for the lab's pages: JSON calls that surface the server's one-line errors.
"use strict";

const lab = {
  async getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    return lab._answer(response);
  },

  async postJSON(url, body, headers = {}) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: JSON.stringify(body),
    });
    return lab._answer(response);
  },

  async _answer(response) {
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      throw new Error(`${response.status}: ${text.slice(0, 200)}`);
    }
    if (!response.ok) {
      const detail = data && data.detail !== undefined ? data.detail : data;
      const err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      err.status = response.status;
      err.data = data; // the whole answer, e.g. the `field` a 422 names
      throw err;
    }
    return data;
  },

  flash(message) {
    const box = document.getElementById("flash");
    box.textContent = message || "";
    box.hidden = !message;
  },

  // Call `load` now and every `seconds` while the page is visible; errors go to the flash box.
  every(seconds, load) {
    const run = async () => {
      if (document.hidden) return;
      try {
        await load();
        lab.flash("");
      } catch (err) {
        lab.flash(err.message);
      }
    };
    run();
    return setInterval(run, seconds * 1000);
  },

  fmt(value, digits = 3) {
    return value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(digits);
  },
};
