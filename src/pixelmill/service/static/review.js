// The review screen: judge items with the keyboard; look at source and output side by side or
// under a slider, zoomed and panned to 1:1 on images of any size. The server cuts each view's
// region from the images' pyramids, scaled to the screen: the browser never loads a whole image.
"use strict";

(() => {
  const state = JSON.parse(document.getElementById("state").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const base = `/review/${encodeURIComponent(state.queue)}`;
  const $ = (id) => document.getElementById(id);
  const stage = $("stage"), viewer = stage.parentElement;
  const images = { source: $("img-source"), output: $("img-output") };
  const panes = { source: $("pane-source"), output: $("pane-output") };
  const note = $("note"), split = $("split"), divider = $("divider");
  const MAX_ZOOM = 8; // times past 1:1
  let item = null, labels = new Set(), shown = 0, view = { cx: 0.5, cy: 0.5, z: 1 };
  let mode = "side", fraction = 0.5, timer = null, busy = false, drag = null;

  // ---- geometry: the view is a centre (fractions of the image) and a zoom over "fit"

  function size() {
    const s = item && (item.sizes.source || item.sizes.output);
    return s || [1, 1];
  }

  function paneBox() {
    const box = panes.source.getBoundingClientRect();
    return [Math.max(1, box.width), Math.max(1, box.height)];
  }

  function scale() {
    const [w, h] = size(), [pw, ph] = paneBox();
    return Math.min(pw / w, ph / h) * view.z;
  }

  function region() {
    // the part of the image in view, as fractions, and the view's top-left in image pixels
    const [w, h] = size(), [pw, ph] = paneBox(), s = scale();
    const left = view.cx * w - pw / s / 2, top = view.cy * h - ph / s / 2;
    const l = Math.max(0, left / w), t = Math.max(0, top / h);
    const r = Math.min(1, (left + pw / s) / w), b = Math.min(1, (top + ph / s) / h);
    return { l, t, w: Math.max(r - l, 1e-6), h: Math.max(b - t, 1e-6), left, top };
  }

  function place(img) {
    // position an image whose pixels cover its own region, for the current view
    if (!img.dataset.region) return;
    const [l, t, rw, rh] = img.dataset.region.split(",").map(Number);
    const [w, h] = size(), s = scale(), here = region();
    img.style.left = `${(l * w - here.left) * s}px`;
    img.style.top = `${(t * h - here.top) * s}px`;
    img.style.width = `${rw * w * s}px`;
    img.style.height = `${rh * h * s}px`;
  }

  function render() {
    for (const img of Object.values(images)) place(img);
    const [w] = size();
    const percent = Math.round(scale() * window.devicePixelRatio * 100);
    $("zoom").textContent = item ? `${percent} % of ${w} px` : "";
    if (mode === "slider") {
      const [pw] = paneBox();
      panes.output.style.clipPath = `inset(0 0 0 ${fraction * 100}%)`;
      divider.style.left = `${fraction * pw}px`;
    } else {
      panes.output.style.clipPath = "";
    }
    clearTimeout(timer);
    timer = setTimeout(fetchRegion, 80);
  }

  function fetchRegion() {
    if (!item) return;
    const here = region(), [w, h] = size(), s = scale();
    const side = Math.ceil(Math.max(here.w * w, here.h * h) * s * window.devicePixelRatio);
    const wanted = Math.min(state.max_side, Math.max(16, side));
    for (const which of ["source", "output"]) {
      const img = images[which];
      if (which === "output" && !item.output) { img.hidden = true; continue; }
      img.hidden = false;
      const key = [here.l, here.t, here.w, here.h].map((v) => v.toFixed(5)).join(",");
      const url = `${base}/items/${item.id}/image/${which}?left=${here.l.toFixed(6)}`
        + `&top=${here.t.toFixed(6)}&width=${here.w.toFixed(6)}&height=${here.h.toFixed(6)}`
        + `&size=${wanted}`;
      if (img.dataset.want === url) continue;
      img.dataset.want = url;
      const next = new Image(), id = item.id;
      next.onload = () => {
        if (img.dataset.want !== url || !item || item.id !== id) return;
        img.src = next.src;
        img.dataset.region = key;
        img.dataset.item = String(id);
        img.dataset.complete = url;
        place(img);
      };
      next.src = url;
    }
  }

  function zoomBy(factor, x, y) {
    // zoom around a point of the stage (default: its centre)
    const [w, h] = size(), [pw, ph] = paneBox(), before = scale();
    const limit = MAX_ZOOM / (window.devicePixelRatio * Math.min(pw / w, ph / h));
    const z = Math.min(Math.max(view.z * factor, 0.5), Math.max(limit, 1));
    const px = x === undefined ? pw / 2 : x, py = y === undefined ? ph / 2 : y;
    const here = region();
    const ix = here.left + px / before, iy = here.top + py / before; // image point under it
    view.z = z;
    const after = scale();
    view.cx = (ix - px / after + pw / after / 2) / w;
    view.cy = (iy - py / after + ph / after / 2) / h;
    render();
  }

  function pan(dx, dy) {
    // move by screen pixels
    const [w, h] = size(), s = scale();
    view.cx = Math.min(1, Math.max(0, view.cx - dx / s / w));
    view.cy = Math.min(1, Math.max(0, view.cy - dy / s / h));
    render();
  }

  function fit() { view = { cx: 0.5, cy: 0.5, z: 1 }; render(); }

  function actualSize() {
    const [w, h] = size(), [pw, ph] = paneBox();
    view.z = 1 / (window.devicePixelRatio * Math.min(pw / w, ph / h));
    render();
  }

  function setMode(next) {
    mode = next;
    stage.classList.toggle("slider", mode === "slider");
    stage.classList.toggle("side", mode === "side");
    viewer.classList.toggle("slider-mode", mode === "slider");
    render();
  }

  function setSplit(value) {
    fraction = Math.min(1, Math.max(0, value));
    split.value = String(Math.round(fraction * 100));
    render();
  }

  // ---- the item

  function text(id, value) { $(id).textContent = value || ""; }

  function count(counts) {
    if (!counts) return;
    const { waiting, in_review: inReview, done } = counts;
    text("counts", `${waiting} waiting · ${inReview} in review · ${done} done`);
  }

  function show(next) {
    item = next;
    labels = new Set();
    note.value = "";
    shown = performance.now();
    for (const img of Object.values(images)) {
      img.removeAttribute("src");
      delete img.dataset.region; delete img.dataset.want; delete img.dataset.complete;
    }
    $("empty").hidden = !!item;
    stage.hidden = !item;
    document.body.dataset.item = item ? String(item.id) : "";
    if (!item) { renderLabels(); return; }
    text("reason", `${item.origin}${item.held ? " (held)" : ""}: ${item.reason || "—"}`);
    text("pipeline", item.pipeline || "—");
    const gates = $("gates").tBodies[0];
    gates.replaceChildren(...item.gates.map((g) => {
      const row = document.createElement("tr");
      row.className = g.failed ? "failed" : "";
      const value = g.value === null ? "—" : Number(g.value).toPrecision(4);
      const gate = g.threshold === null ? "" : `${g.op} ${g.threshold}${g.failed ? " ✗" : " ✓"}`;
      for (const cell of [g.metric, value, gate]) {
        const td = document.createElement("td"); td.textContent = cell; row.append(td);
      }
      return row;
    }));
    const history = [...item.verdicts.map(verdictLine), ...item.history.map(eventLine)];
    $("history").replaceChildren(...history.map((line) => {
      const li = document.createElement("li"); li.textContent = line; return li;
    }));
    renderLabels();
    view = { cx: 0.5, cy: 0.5, z: 1 };
    render();
    fetchRegion();
  }

  function verdictLine(v) {
    const labelled = v.labels.length ? ` [${v.labels.join(", ")}]` : "";
    return `${v.reviewer}: ${v.verdict}${labelled}${v.note ? ` — ${v.note}` : ""}`;
  }

  function eventLine(e) {
    return `${e.kind}${e.verdict ? ` ${e.verdict}` : ""}${e.by ? ` by ${e.by}` : ""}`
      + `${e.pipeline ? ` (${e.pipeline})` : ""}`;
  }

  function renderLabels() {
    $("labels").replaceChildren(...state.labels.map((label, i) => {
      const li = document.createElement("li"), button = document.createElement("button");
      button.type = "button";
      button.textContent = `${i + 1} ${label}`;
      button.setAttribute("aria-pressed", String(labels.has(label)));
      button.addEventListener("click", () => toggle(i));
      li.append(button);
      return li;
    }));
  }

  function toggle(index) {
    const label = state.labels[index];
    if (label === undefined || !item) return;
    if (labels.has(label)) labels.delete(label); else labels.add(label);
    renderLabels();
  }

  async function send(path, body) {
    const answer = await fetch(`${base}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (answer.status === 204) return {};
    const found = await answer.json();
    if (!answer.ok) throw new Error(found.detail ? found.detail.message : answer.statusText);
    return found;
  }

  async function judge(verdict) {
    if (!item || busy) return;
    busy = true;
    const id = item.id;
    try {
      const seconds = (performance.now() - shown) / 1000;
      const found = await send(`/items/${id}/verdict`,
        { verdict, labels: [...labels], note: note.value, seconds });
      const decided = found.decided ? ` — decided: ${found.decided}` : "";
      const rerun = found.rerun ? `, rerun as job ${found.rerun}` : "";
      text("status", `#${id} ${verdict}${decided}${rerun}`);
      count(found.counts);
      show(found.item || null);
    } catch (error) {
      text("status", `#${id}: ${error.message}`);
    } finally {
      busy = false;
    }
  }

  async function undo() {
    if (busy) return;
    busy = true;
    try {
      const found = await send("/undo", {});
      if (found.item) {
        text("status", `#${found.item.id} is back: your verdict was taken back`);
        count(found.counts);
        show(found.item);
      } else {
        text("status", "nothing to undo");
      }
    } catch (error) {
      text("status", error.message);
    } finally {
      busy = false;
    }
  }

  // ---- keys, buttons and the pointer

  const KEYS = {
    a: () => judge("approved"), r: () => judge("rejected"), s: () => judge("skipped"), u: undo,
    n: () => note.focus(), v: () => setMode(mode === "side" ? "slider" : "side"),
    "+": () => zoomBy(1.5), "=": () => zoomBy(1.5), "-": () => zoomBy(1 / 1.5),
    0: fit, z: actualSize, "?": () => { $("help").hidden = !$("help").hidden; },
    "[": () => setSplit(fraction - 0.05), "]": () => setSplit(fraction + 0.05),
    arrowleft: () => pan(80, 0), arrowright: () => pan(-80, 0),
    arrowup: () => pan(0, 80), arrowdown: () => pan(0, -80),
  };

  document.addEventListener("keydown", (event) => {
    // keys do not fire while she types; on the slider's range input its own arrows move it
    const target = event.target;
    const typing = target instanceof HTMLTextAreaElement
      || (target instanceof HTMLInputElement && target.type !== "range");
    if (typing || (target === split && event.key.startsWith("Arrow"))) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === "escape") { $("help").hidden = true; return; }
    if (/^[1-9]$/.test(key)) { toggle(Number(key) - 1); event.preventDefault(); return; }
    const action = KEYS[key];
    if (action) { action(); event.preventDefault(); }
  });

  for (const button of document.querySelectorAll("[data-key]")) {
    button.addEventListener("click", () => KEYS[button.dataset.key]());
  }

  split.addEventListener("input", () => setSplit(Number(split.value) / 100));

  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = panes.source.getBoundingClientRect();
    const x = (event.clientX - box.left) % box.width, y = event.clientY - box.top;
    zoomBy(event.deltaY < 0 ? 1.25 : 1 / 1.25, x, y);
  }, { passive: false });

  stage.addEventListener("pointerdown", (event) => {
    const onDivider = event.target === divider;
    drag = { x: event.clientX, y: event.clientY, divider: onDivider };
    stage.setPointerCapture(event.pointerId);
    stage.classList.add("dragging");
  });
  stage.addEventListener("pointermove", (event) => {
    if (!drag) return;
    if (drag.divider) {
      const box = stage.getBoundingClientRect();
      setSplit((event.clientX - box.left) / box.width);
    } else {
      pan(event.clientX - drag.x, event.clientY - drag.y);
      drag.x = event.clientX; drag.y = event.clientY;
    }
  });
  const stop = () => { drag = null; stage.classList.remove("dragging"); };
  stage.addEventListener("pointerup", stop);
  stage.addEventListener("pointercancel", stop);
  window.addEventListener("resize", render);

  // keep the claim while she looks (the lease is ten minutes)
  setInterval(() => { if (item && !busy) send("/next").catch(() => {}); }, 120000);

  show(state.item);
})();
