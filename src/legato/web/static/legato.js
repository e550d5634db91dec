// Legato's own script for its server-rendered pages: action buttons and forms that call the
// JSON API, the run page's live updates and the load-errors banner (server-sent events), the
// graphs' zoom, long lists that load more as they scroll, the partitions grid selection and
// the run launcher. No framework: every page works from its HTML
// and this file.
"use strict";

function flash(message) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = message;
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

// A browser session's changes carry its CSRF token (the page has it in a meta tag).
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function callApi(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Accept": "application/json",
      "X-CSRF-Token": csrfToken(),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const err = new Error((data && data.error) || `${res.status} ${res.statusText}`);
    err.field = data && data.field;
    err.status = res.status;
    throw err;
  }
  return data;
}

// -- buttons: <button data-post="/api/v1/..." data-body='{}' data-confirm="..." data-then="reload|run">

document.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button[data-post]");
  if (!button) return;
  ev.preventDefault();
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    const data = await callApi(button.dataset.post, body);
    const then = button.dataset.then || "reload";
    if (then === "run" && data && data.id) {
      window.location.assign(`/runs/${data.id}`);
    } else if (then === "reload") {
      if (document.getElementById("live")) { await Live.refresh(); } else { window.location.reload(); }
    }
  } catch (err) {
    flash(err.message);
  } finally {
    button.disabled = false;
  }
});

// -- the pipelines overview: schedule on/off toggles

document.addEventListener("change", async (ev) => {
  const box = ev.target.closest("input.pause-toggle");
  if (!box) return;
  const url = box.checked ? box.dataset.on : box.dataset.off;
  try {
    await callApi(url);
    const label = box.parentElement.querySelector("span");
    if (label) label.textContent = box.checked ? "on" : "paused";
  } catch (err) {
    box.checked = !box.checked;
    flash(err.message);
  }
});

// -- the run page: redraw the live part on every event of the run

const Live = {
  root: null,
  source: null,
  pending: null,
  busy: false,
  again: false,
  tick: false,
  logSource: null,

  start() {
    this.root = document.getElementById("live");
    if (!this.root) return;
    this.followLog();
    if (this.root.dataset.finished === "true") return;
    const run = this.root.dataset.run;
    const after = this.root.dataset.lastEvent || "0";
    this.source = new EventSource(`/api/v1/runs/${run}/events/stream?after=${after}`);
    this.source.addEventListener("event", () => this.soon());
    this.source.addEventListener("end", () => { this.source.close(); this.refresh(); });
    // Ticking durations of running tasks and the Gantt's "now".
    this.clock = setInterval(() => {
      if (this.root.dataset.finished !== "true") { this.tick = true; this.soon(); }
    }, 5000);
  },

  soon() {
    if (this.pending) return;
    this.pending = setTimeout(() => { this.pending = null; this.refresh(); }, 150);
  },

  // Ask for what changed since the event the page is drawn as of, and patch those parts:
  // a 10,000-task run sends the rows of the tasks that changed, not its whole page.
  // One request at a time: events that come meanwhile are asked for once it is answered
  // (a big run's change takes the server a while, and its events come by the thousand).
  async refresh() {
    if (this.busy) { this.again = true; return; }
    this.busy = true;
    try {
      await this.fetchChanges();
    } finally {
      this.busy = false;
      if (this.again) { this.again = false; this.soon(); }
    }
  },

  async fetchChanges() {
    const root = this.root;
    const params = new URLSearchParams(window.location.search);
    params.delete("offset");
    params.set("after", root.dataset.lastEvent || "0");
    if (this.tick) { params.set("tick", "1"); this.tick = false; }
    let change;
    try {
      const res = await fetch(`/runs/${root.dataset.run}/changes?${params.toString()}`);
      if (!res.ok) return;
      change = await res.json();
    } catch (err) {
      return;  // the server is away for a moment: the next event or tick tries again
    }
    this.apply(change);
  },

  apply(change) {
    const root = this.root;
    root.dataset.lastEvent = String(change.version);
    root.querySelector("#run-head").innerHTML = change.head;
    root.querySelector("#graph").innerHTML = change.graph;
    Zoom.restore();
    if (change.timeline !== null) this.timeline(change.timeline);
    const table = root.querySelector("table.tasks");
    if (change.tasks !== null) {
      table.querySelectorAll("tbody").forEach((b) => b.remove());
      table.insertAdjacentHTML("beforeend", change.tasks);
    }
    if (change.rows) {
      const fresh = document.createElement("template");
      fresh.innerHTML = `<table>${change.rows}</table>`;
      for (const body of fresh.content.querySelectorAll("tbody.task")) {
        const key = CSS.escape(body.dataset.task);
        const old = table.querySelector(`tbody.task[data-task="${key}"]`);
        if (old) old.replaceWith(body);
      }
    }
    if (change.log !== null) this.log(change.log);
    Pager.watch();
    root.dataset.finished = change.finished ? "true" : "false";
    if (change.finished) {
      clearInterval(this.clock);
      if (this.source) this.source.close();
    }
  },

  // The timeline's first page is redrawn (its axis grows with the run); pages the user has
  // loaded below it stay as they are.
  timeline(html) {
    const box = this.root.querySelector("#timeline .gantt-box");
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    const first = box.querySelector('.gantt-page[data-offset="0"]');
    if (!first || box.children.length <= 2) { box.innerHTML = html; return; }
    first.replaceWith(fresh.content.querySelector(".gantt-page"));
  },

  log(html) {
    const box = this.root.querySelector("#run-log");
    const oldLog = box.querySelector("pre.log");
    box.innerHTML = html;
    const newLog = box.querySelector("pre.log");
    // Keep the log already streaming: its text is newer than the redraw's.
    if (oldLog && newLog && oldLog.dataset.key === newLog.dataset.key && this.logSource) {
      newLog.replaceWith(oldLog);
      if (!newLog.dataset.stream) oldLog.removeAttribute("data-stream");
    } else {
      this.followLog();
    }
  },

  followLog() {
    const pre = this.root.querySelector("pre.log[data-stream]");
    if (this.logSource) { this.logSource.close(); this.logSource = null; }
    if (!pre) return;
    const src = new EventSource(pre.dataset.stream);
    this.logSource = src;
    src.addEventListener("log", (ev) => {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(JSON.parse(ev.data).text);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    src.addEventListener("end", () => { src.close(); if (this.logSource === src) this.logSource = null; });
  },
};

// -- big graphs: zoom buttons scale the drawing; "fit" gives it the page's width again

const Zoom = {
  scale: null,  // null: fit the width (the page's CSS)

  start() {
    document.addEventListener("click", (ev) => {
      const button = ev.target.closest("button[data-zoom]");
      if (!button) return;
      const svg = button.closest("section").querySelector(".dag-box svg");
      if (!svg) return;
      const how = button.dataset.zoom;
      const now = this.scale || svg.getBoundingClientRect().width / svg.width.baseVal.value;
      this.scale = how === "fit" ? null : how === "in" ? now * 1.5 : now / 1.5;
      this.apply(svg);
    });
  },

  apply(svg) {
    if (this.scale === null) {
      svg.style.removeProperty("width");
      svg.style.removeProperty("max-width");
    } else {
      svg.style.width = `${svg.width.baseVal.value * this.scale}px`;
      svg.style.maxWidth = "none";
    }
  },

  // After a live redraw of the graph, at the scale the user chose.
  restore() {
    const svg = document.querySelector("#graph .dag-box svg");
    if (svg) this.apply(svg);
  },
};

// -- long lists: a "more" link (<a data-more="fragment URL">) loads the next page in its place
// once it scrolls into view; without the script it is a link to the next page

const Pager = {
  observer: null,

  start() {
    if (!window.IntersectionObserver) return;
    this.observer = new IntersectionObserver((seen) => {
      for (const e of seen) if (e.isIntersecting) this.load(e.target);
    }, { rootMargin: "400px" });
    document.addEventListener("click", (ev) => {
      const link = ev.target.closest("a[data-more]");
      if (!link) return;
      ev.preventDefault();
      this.load(link);
    });
    this.watch();
  },

  watch() {
    if (!this.observer) return;
    document.querySelectorAll("a[data-more]:not([data-watched])").forEach((a) => {
      a.dataset.watched = "true";
      this.observer.observe(a);
    });
  },

  async load(link) {
    if (link.dataset.loading) return;
    link.dataset.loading = "true";
    this.observer.unobserve(link);
    // The row or paragraph holding the link is replaced by the page it loads.
    const holder = link.closest("tbody.more, p.more");
    try {
      const res = await fetch(link.dataset.more);
      if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
      holder.insertAdjacentHTML("afterend", await res.text());
      holder.remove();
      this.watch();
    } catch (err) {
      delete link.dataset.loading;
      flash(err.message);
    }
  },
};

// -- the partitions map and list: drag (or shift-click) across cells to select them; then
// backfill. A cell is one partition (data-key) or a bucket of them (data-first … data-last,
// data-n of them); in one dimension cells are ordered by data-i, in two they are a grid of
// data-r by data-c and a selection is the rectangle between two cells. A plain click on a
// bucket follows its link (the zoom into it).

const Grid = {
  start() {
    const section = document.getElementById("partitions");
    if (!section) return;
    this.form = section.querySelector("form.backfill-form");
    this.group = null;   // the svg or table the selection is in
    this.anchor = null;
    this.dragging = false;
    this.moved = false;
    this.chosen = [];
    section.addEventListener("mousedown", (ev) => this.down(ev));
    section.addEventListener("mouseover", (ev) => this.over(ev));
    section.addEventListener("click", (ev) => {
      const cell = ev.target.closest(".cell[data-key], .cell[data-first]");
      // A drag or a shift-click selected: it is not a click on the zoom link.
      if (cell && (this.moved || ev.shiftKey)) ev.preventDefault();
      this.moved = false;
    });
    document.addEventListener("mouseup", () => { this.dragging = false; });
    // Keyboard: Space selects the focused cell (Enter still follows a bucket's zoom link),
    // Shift+Space selects from the last cell chosen to it.
    section.addEventListener("keydown", (ev) => {
      const cell = ev.target.closest(".cell[data-key], .cell[data-first]");
      if (!cell || !(ev.key === " " || (ev.key === "Enter" && !cell.hasAttribute("href")))) return;
      ev.preventDefault();
      const same = ev.shiftKey && this.anchor && this.groupOf(this.anchor) === this.groupOf(cell);
      if (!same) this.anchor = cell;
      this.select(same ? this.between(this.anchor, cell) : [cell]);
    });
    this.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.submit(); });
    section.querySelector(".clear-selection").addEventListener("click", () => this.select([]));
    this.update();
  },

  cells(group) { return Array.from(group.querySelectorAll(".cell[data-key], .cell[data-first]")); },

  groupOf(cell) { return cell.closest("svg, table"); },

  between(a, b) {
    const cells = this.cells(this.groupOf(a));
    if (a.dataset.r !== undefined) {
      const [r1, r2] = [+a.dataset.r, +b.dataset.r].sort((x, y) => x - y);
      const [c1, c2] = [+a.dataset.c, +b.dataset.c].sort((x, y) => x - y);
      return cells.filter((c) => +c.dataset.r >= r1 && +c.dataset.r <= r2 &&
        +c.dataset.c >= c1 && +c.dataset.c <= c2);
    }
    const [i1, i2] = [+a.dataset.i, +b.dataset.i].sort((x, y) => x - y);
    return cells.filter((c) => +c.dataset.i >= i1 && +c.dataset.i <= i2);
  },

  down(ev) {
    const cell = ev.target.closest(".cell[data-key], .cell[data-first]");
    if (!cell || ev.button !== 0) return;
    ev.preventDefault();
    this.moved = false;
    if (ev.shiftKey) {  // the first shift-click picks a cell, the next one a range to it
      const same = this.anchor && this.groupOf(this.anchor) === this.groupOf(cell);
      if (!same) this.anchor = cell;
      this.select(same ? this.between(this.anchor, cell) : [cell]);
      return;
    }
    this.dragging = true;
    this.anchor = cell;
    if (!cell.hasAttribute("href")) {  // a partition alone: a click selects it
      const on = !cell.classList.contains("selected");
      this.select(on ? [cell] : []);
    }
  },

  over(ev) {
    if (!this.dragging) return;
    const cell = ev.target.closest(".cell[data-key], .cell[data-first]");
    if (!cell || this.groupOf(cell) !== this.groupOf(this.anchor)) return;
    if (cell !== this.anchor) this.moved = true;
    if (this.moved) this.select(this.between(this.anchor, cell));
  },

  select(cells) {
    document.querySelectorAll("#partitions .cell.selected").forEach((c) => {
      c.classList.remove("selected");
      c.setAttribute("aria-selected", "false");
    });
    cells.forEach((c) => { c.classList.add("selected"); c.setAttribute("aria-selected", "true"); });
    this.chosen = cells;
    this.update();
  },

  // What to backfill: single partitions by key; buckets as the range from the first cell's
  // first key to the last cell's last key (in two dimensions, the rectangle's corners).
  body() {
    const cells = this.chosen;
    if (cells.length === 0) return null;
    if (cells.every((c) => c.dataset.key !== undefined)) {
      return { partitions: cells.map((c) => c.dataset.key) };
    }
    return { start: this.first(cells[0]), end: this.last(cells[cells.length - 1]) };
  },

  first(cell) { return cell.dataset.first || cell.dataset.key; },

  last(cell) { return cell.dataset.last || cell.dataset.key; },

  update() {
    const cells = this.chosen;
    const n = cells.reduce((sum, c) => sum + parseInt(c.dataset.n || "1", 10), 0);
    const label = this.form.querySelector(".selected-count");
    const first = cells.length ? this.first(cells[0]) : "";
    const last = cells.length ? this.last(cells[cells.length - 1]) : "";
    if (n === 0) label.textContent = "No partition selected";
    else if (n === 1) label.textContent = `1 partition selected: ${first}`;
    else label.textContent = `${n} partitions selected: ${first} … ${last}`;
    const submit = this.form.querySelector("button[type=submit]");
    submit.disabled = n === 0;
    submit.textContent = n ? `Backfill ${n} partition${n > 1 ? "s" : ""}` : "Backfill";
  },

  async submit() {
    const f = this.form;
    const body = {
      pipeline: f.dataset.pipeline,
      ...this.body(),
      all: f.elements.all.checked,
      max_concurrent: parseInt(f.elements.max_concurrent.value || "2", 10),
    };
    try {
      const b = await callApi("/api/v1/backfills", body);
      window.location.assign(`/backfills/${b.id}`);
    } catch (err) {
      flash(err.message);
    }
  },
};

// -- forms: <form data-post="/api/v1/..." data-then="run|reload">; its fields are the body

document.addEventListener("submit", async (ev) => {
  const form = ev.target.closest("form[data-post]");
  if (!form) return;
  ev.preventDefault();
  const body = {};
  for (const [name, value] of new FormData(form)) { if (value !== "") body[name] = value; }
  const box = form.querySelector(".form-error");
  if (box) box.hidden = true;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const data = await callApi(form.dataset.post, body);
    if (form.dataset.then === "run" && data && data.id) {
      window.location.assign(`/runs/${data.id}`);
    } else {
      window.location.reload();
    }
  } catch (err) {
    if (box) { box.textContent = err.message; box.hidden = false; } else { flash(err.message); }
  } finally {
    button.disabled = false;
  }
});

// -- the run launcher: typed values from the generated form, errors shown at their field

const Launcher = {
  start() {
    this.form = document.getElementById("launch");
    if (!this.form) return;
    this.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.submit(); });
  },

  value(field) {
    const widget = field.dataset.widget;
    const input = field.querySelector("input, select, textarea");
    if (widget === "checkbox") return input.checked;
    const raw = input.value;
    if (raw === "") return undefined;
    if (widget === "number" || widget === "integer") return Number(raw);
    if (widget === "json") return JSON.parse(raw);
    return raw;
  },

  async submit() {
    const f = this.form;
    f.querySelectorAll(".field-error, .form-error").forEach((e) => { e.hidden = true; });
    const body = { params: {} };
    for (const field of f.querySelectorAll(".field[data-field]")) {
      const name = field.dataset.field;
      let v;
      try {
        v = name === "partition" ? field.querySelector("input").value || undefined : this.value(field);
      } catch (e) {
        this.show(name, `not valid JSON: ${e.message}`);
        return;
      }
      if (v === undefined) continue;
      if (name === "partition") body.partition = v; else body.params[name] = v;
    }
    const button = f.querySelector("button[type=submit]");
    button.disabled = true;
    // The same form materializes an asset with this pipeline when the page says which.
    const asset = f.dataset.materialize;
    if (asset) body.pipeline = f.dataset.pipeline;
    const target = asset
      ? `/api/v1/assets/${encodeURIComponent(asset)}/materialize`
      : `/api/v1/pipelines/${encodeURIComponent(f.dataset.pipeline)}/runs`;
    try {
      const run = await callApi(target, body);
      window.location.assign(`/runs/${run.id}`);
    } catch (err) {
      this.show(err.field, err.message);
    } finally {
      button.disabled = false;
    }
  },

  show(fieldName, message) {
    const field = fieldName && this.form.querySelector(`.field[data-field="${CSS.escape(fieldName)}"] .field-error`);
    const box = field || this.form.querySelector(".form-error");
    box.textContent = message;
    box.hidden = false;
  },
};

// -- every page: the banner of modules that failed to load follows the code as it reloads

const CodeWatch = {
  start() {
    const box = document.getElementById("load-errors");
    if (!box || !window.EventSource) return;
    this.follow(box.dataset.key || "");
  },

  // A stream says one change and ends: ask again with the key of the code now shown. (Were
  // the server away, the browser reconnects with the old key and hears the state at once.)
  follow(key) {
    const source = new EventSource(`/api/v1/code/stream?seen=${encodeURIComponent(key)}`);
    source.addEventListener("code", (ev) => {
      source.close();
      const state = JSON.parse(ev.data);
      this.changed(state);
      this.follow(state.key);
    });
  },

  async changed(state) {
    const box = document.getElementById("load-errors");
    if (!box || box.dataset.key === state.key) return;
    // The pipelines list is made from the code: show the reloaded one.
    if (document.querySelector("[data-follow-code]")) { window.location.reload(); return; }
    try {
      const res = await fetch("/load-errors");
      if (!res.ok) return;
      box.outerHTML = await res.text();
    } catch (err) {
      // The server is away for a moment: the stream reconnects and says the state again.
    }
  },
};

document.addEventListener("DOMContentLoaded", () => {
  Live.start();
  Zoom.start();
  Pager.start();
  CodeWatch.start();
  Grid.start();
  Launcher.start();
});
