// onlstm viewer: the page's behaviour. Everything comes from the JSON API under api/;
// trees arrive as SVG drawn by the server (onlstm.tree_svg). No library, no network fetch.
"use strict";

const $ = (id) => document.getElementById(id);
const EXAMPLES = {
  en: "The man who sold the house moved to New York last year.\nStock prices rose sharply in early trading after the report.",
  zh: "我们在北京的大学学习中文。\n这个城市的经济发展得很快。",
};
const state = { models: [], treebanks: [], summary: null, rows: [], sortKey: "index", sortDir: 1, selected: null,
  compare: { fit: true, stacked: false } };

// ---------------------------------------------------------------- helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "html") node.innerHTML = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const pct = (v) => (100 * v).toFixed(1);

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}
let busyCount = 0;
async function busy(text, work) {
  busyCount += 1;
  const status = $("status");
  status.textContent = text;
  status.classList.add("busy");
  document.querySelectorAll("button.primary").forEach((b) => { b.disabled = true; });
  try { return await work(); } finally {
    busyCount -= 1;
    if (busyCount === 0) {
      status.textContent = "";
      status.classList.remove("busy");
      document.querySelectorAll("button.primary").forEach((b) => { b.disabled = false; });
    }
  }
}
function showError(message) { const box = $("error"); box.textContent = message; box.hidden = false; }
function clearError() { $("error").hidden = true; }
async function guarded(text, work) {
  clearError();
  try { return await busy(text, work); } catch (err) { showError(err.message); return null; }
}
async function copy(text, button) {
  try { await navigator.clipboard.writeText(text); } catch (e) {
    const area = el("textarea", {}, text); document.body.append(area); area.select();
    document.execCommand("copy"); area.remove();
  }
  const old = button.textContent; button.textContent = "copied"; setTimeout(() => { button.textContent = old; }, 1200);
}
function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name }); document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
function fillLayers(select, model, keep) {
  const info = state.models.find((m) => m.name === model);
  const old = keep ? select.value : "";
  select.replaceChildren(el("option", { value: "" }, `default (layer ${info ? info.default_layer : "?"})`));
  for (let k = 1; info && k <= info.layers; k++) select.append(el("option", { value: String(k) }, `layer ${k}`));
  select.append(el("option", { value: "mean" }, "mean of layers"));
  if ([...select.options].some((o) => o.value === old)) select.value = old;
}
function isChinese(model) {
  const info = state.models.find((m) => m.name === model);
  return !!info && (info.char_level || info.tokenizer === "jieba");
}
function formLine(label, text, extra) {
  const button = el("button", { type: "button", class: "small", onclick: (e) => copy(text, e.target) }, "copy");
  return el("div", { class: "form-line" }, el("pre", { "aria-label": label }, text), button, extra || null);
}
function legend() {
  const swatch = (color, dash) => el("span", {
    html: `<svg width="30" height="10" aria-hidden="true"><line x1="1" y1="5" x2="29" y2="5" stroke="${color}" ` +
      `stroke-width="2.6"${dash ? ` stroke-dasharray="${dash}"` : ""}/></svg>` });
  return el("div", { class: "legend" },
    el("span", {}, swatch("#15803d"), "matching: in both trees"),
    el("span", {}, swatch("#dc2626", "6 3"), "missing: gold only"),
    el("span", {}, swatch("#d97706", "2 3"), "extra: predicted only"),
    el("span", {}, swatch("#94a3b8"), "not scored (whole sentence)"));
}

// ---------------------------------------------------------------- parse view
function parseSettings() {
  return { model: $("model").value, layer: $("layer").value || null, distance: $("distance").value,
    decoder: $("decoder").value };
}
async function parseText() {
  const sentences = $("text").value.split("\n").filter((line) => line.trim());
  const body = Object.assign({ sentences }, parseSettings());
  const result = await guarded("parsing…", () => api("api/parse", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
  if (result) renderParsed(result);
}
function renderParsed(result) {
  const box = $("parse-results");
  box.replaceChildren();
  result.sentences.forEach((s, i) => {
    const tags = [el("span", { class: "tag" }, `${s.words.length} word${s.words.length === 1 ? "" : "s"}`),
      el("span", { class: "tag" }, `${s.layer} · ${result.decoder} · ${result.distance === "forget" ? "d_f" : "d_i"}`)];
    if (s.oov) tags.push(el("span", { class: "tag warn", title: "read as <unk>" }, `${s.oov} unknown word${s.oov === 1 ? "" : "s"}`));
    if (s.dropped.length) tags.push(el("span", { class: "tag", title: "dropped before parsing, as the evaluation does" },
      `punctuation dropped: ${s.dropped.join(" ")}`));
    const json = JSON.stringify({ words: s.words, tree: s.tree, layer: s.layer, distance: s.distance,
      distances: s.distances, input_distances: s.input_distances }, null, 1);
    const svgButton = el("button", { type: "button", class: "small",
      onclick: () => download(`tree-${i + 1}.svg`, s.svg, "image/svg+xml") }, "SVG");
    box.append(el("article", { class: "panel card fit", "data-sentence": String(i) },
      el("div", { class: "card-head" }, el("h3", {}, el("span", { class: "n" }, `${i + 1}.`), s.words.join(" ")), tags),
      el("div", { class: "svg-box", html: s.svg }),
      el("div", { class: "forms" }, formLine("bracketed", s.bracketed, svgButton),
        el("details", {}, el("summary", {}, "JSON (words, tree, d_f and d_i of every layer)"), formLine("JSON", json)))));
  });
}

// ---------------------------------------------------------------- treebank view
function tbSettings() {
  const p = new URLSearchParams({ model: $("tb-model").value, decoder: $("tb-decoder").value,
    distance: $("tb-distance").value });
  if ($("tb-layer").value) p.set("layer", $("tb-layer").value);
  return p;
}
async function loadSummary() {
  const name = $("tb-name").value;
  const note = state.treebanks.find((t) => t.name === name);
  const fresh = note && !(note.computed || []).includes($("tb-model").value);
  const result = await guarded(fresh ? `parsing treebank ${name} with ${$("tb-model").value} (once)…` : "scoring…",
    () => api(`api/treebank/${encodeURIComponent(name)}/summary?${tbSettings()}`));
  if (!result) return;
  if (note) note.computed = Array.from(new Set([...(note.computed || []), result.model]));
  state.summary = result;
  renderSummary(result);
  renderList();
  $("tb-main").hidden = false;
  if (state.selected !== null && state.selected < result.sentences.length) openSentence(state.selected);
  else $("tb-detail").replaceChildren(el("p", { class: "muted" }, "Click a sentence to compare its gold and predicted trees."));
}
function renderSummary(s) {
  const systems = s.report.systems;
  const names = Object.keys(systems);
  const cols = [["sentence_f1", "sent-F1"], ["corpus_f1", "F1"], ["corpus_precision", "prec"], ["corpus_recall", "recall"],
    ["corpus_f1_with_sentence", "F1"], ["corpus_precision_with_sentence", "prec"], ["corpus_recall_with_sentence", "recall"]];
  const best = Math.max(...names.map((n) => systems[n].sentence_f1));
  const head = el("thead", {},
    el("tr", { class: "group" }, el("th"), el("th"), el("th", { colspan: 3 }, "corpus, whole sentence left out"),
      el("th", { colspan: 3 }, "EVALB: whole sentence counted"), el("th", { colspan: 2 }, "depth")),
    el("tr", {}, el("th", {}, "system"), cols.map(([, t]) => el("th", {}, t)), el("th", {}, "word"), el("th", {}, "height")));
  const body = el("tbody");
  let firstBaseline = true;
  for (const name of names) {
    const r = systems[name];
    const isModel = name.startsWith("layer ") || name === "mean";
    const cls = [isModel ? "model" : "baseline", name === s.system ? "chosen" : ""];
    if (!isModel && firstBaseline) { cls.push("first-baseline"); firstBaseline = false; }
    const row = el("tr", { class: cls.join(" "), "data-system": name,
      title: isModel ? "click: show this system's trees" : null },
      el("td", {}, name), cols.map(([k], j) => el("td", { class: j === 0 && r[k] === best ? "best" : null }, pct(r[k]))),
      el("td", {}, r.word_depth.toFixed(2)), el("td", {}, r.tree_height.toFixed(2)));
    if (isModel) row.addEventListener("click", () => {
      $("tb-layer").value = name === "mean" ? "mean" : name.slice(6);
      loadSummary();
    });
    body.append(row);
  }
  const rep = s.report;
  const meta = `${rep.sentences.toLocaleString()} sentences, ${rep.words.toLocaleString()} words` +
    (rep.max_length ? ` (at most ${rep.max_length} words)` : "") +
    ` · model ${s.model}, ${s.decoder} decoder over ${s.distance === "forget" ? "d_f" : "d_i"} · baselines: random seed ${rep.seed}`;
  $("tb-summary").replaceChildren(el("div", { class: "panel summary" },
    el("h2", {}, `${s.treebank}: ${s.description}`), el("div", { class: "meta" }, meta),
    el("table", { class: "scores" }, head, body),
    el("details", {}, el("summary", {}, "the same as text (onlstm parse-eval)"), formLine("table", s.table))));
}
function renderList() {
  const s = state.summary;
  const words = $("tb-filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const short = $("tb-short").checked;
  let rows = s.sentences.filter((r) => (!short || r.length <= 10) &&
    words.every((w) => r.text.toLowerCase().includes(w)));
  const key = state.sortKey, dir = state.sortDir;
  rows = rows.slice().sort((a, b) => (a[key] < b[key] ? -dir : a[key] > b[key] ? dir : a.index - b.index));
  state.rows = rows;
  document.querySelectorAll("#tb-table th").forEach((th) => {
    th.classList.toggle("sorted-asc", th.dataset.key === key && dir > 0);
    th.classList.toggle("sorted-desc", th.dataset.key === key && dir < 0);
  });
  const body = document.createDocumentFragment();
  for (const r of rows) {
    const level = r.f1 < 0.34 ? "low" : r.f1 < 0.67 ? "mid" : "";
    body.append(el("tr", { "data-index": String(r.index), class: r.index === state.selected ? "selected" : null },
      el("td", { class: "num" }, String(r.index + 1)), el("td", { class: "num" }, String(r.length)),
      el("td", { class: "num" }, el("span", { class: "f1cell" }, pct(r.f1),
        el("span", { class: `f1bar ${level}`, html: `<i style="width:${Math.round(100 * r.f1)}%"></i>` }))),
      el("td", { class: "text", title: r.text }, r.text)));
  }
  $("tb-table").tBodies[0].replaceChildren(body);
  $("tb-count").textContent = `${rows.length.toLocaleString()} of ${s.sentences.length.toLocaleString()}`;
}
async function openSentence(index) {
  const name = $("tb-name").value;
  const d = await guarded("drawing…", () => api(`api/treebank/${encodeURIComponent(name)}/sentence/${index}?${tbSettings()}`));
  if (!d) return;
  state.selected = index;
  document.querySelectorAll("#tb-table tbody tr").forEach((tr) => {
    tr.classList.toggle("selected", Number(tr.dataset.index) === index);
    if (Number(tr.dataset.index) === index) tr.scrollIntoView({ block: "nearest" });
  });
  const pos = state.rows.findIndex((r) => r.index === index);
  const step = (k) => { const r = state.rows[pos + k]; if (r) openSentence(r.index); };
  const sc = d.score;
  const chips = Object.entries(d.scores).map(([n, f]) => el("span", { class: `chip${n === d.system ? " chosen" : ""}` },
    `${n} ${pct(f)}`));
  const fit = el("input", { type: "checkbox", checked: state.compare.fit, onchange: (e) => {
    state.compare.fit = e.target.checked; compare.classList.toggle("fit", e.target.checked); } });
  const stacked = el("input", { type: "checkbox", checked: state.compare.stacked, onchange: (e) => {
    state.compare.stacked = e.target.checked; compare.classList.toggle("stacked", e.target.checked); } });
  const compare = el("div", { class: `compare${state.compare.fit ? " fit" : ""}${state.compare.stacked ? " stacked" : ""}` },
    el("div", { class: "side gold" }, el("h3", {}, "Gold ", el("span", { class: "muted", title: d.source }, `(${(d.source || d.treebank).split("/").pop()})`)),
      el("div", { class: "svg-box", html: d.svg.gold })),
    el("div", { class: "side predicted" }, el("h3", {}, `Predicted: ${d.system} `,
      el("span", { class: "muted" }, `(${d.model}, ${d.decoder}, ${d.distance === "forget" ? "d_f" : "d_i"})`)),
      el("div", { class: "svg-box", html: d.svg.predicted })));
  $("tb-detail").replaceChildren(
    el("div", { class: "detail-head" },
      el("h2", {}, `Sentence ${d.index + 1} of ${d.total.toLocaleString()}`),
      el("span", { class: "prf" }, `${d.system}: P ${pct(sc.precision)} · R ${pct(sc.recall)} · F1 ${pct(sc.f1)}`),
      el("span", { class: "muted" }, `${sc.matched} of ${sc.gold} gold constituents found, ${sc.predicted - sc.matched} extra`),
      el("div", { class: "pager" },
        el("button", { type: "button", class: "small", id: "prev", disabled: pos <= 0, onclick: () => step(-1) }, "◀ previous"),
        el("button", { type: "button", class: "small", id: "next", disabled: pos < 0 || pos >= state.rows.length - 1,
          onclick: () => step(1) }, "next ▶"))),
    el("div", { class: "sentence-text" }, d.words.join(" ")),
    el("div", { class: "chips" }, chips),
    legend(),
    el("div", { class: "view-tools" }, el("label", { class: "check" }, fit, "fit to width"),
      el("label", { class: "check" }, stacked, "one above the other (words aligned)")),
    compare,
    el("div", { class: "forms" }, formLine("gold, bracketed", d.bracketed.gold),
      formLine("predicted, bracketed", d.bracketed.predicted)));
}

// ---------------------------------------------------------------- start
function showView(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === name));
  $("view-parse").hidden = name !== "parse";
  $("view-treebank").hidden = name !== "treebank";
  if (name === "treebank" && !state.summary && $("tb-name").value) loadSummary();
}
function treebankChanged() {
  const tb = state.treebanks.find((t) => t.name === $("tb-name").value);
  if (tb && tb.default_model) $("tb-model").value = tb.default_model;
  fillLayers($("tb-layer"), $("tb-model").value, false);
  state.selected = null;
}
async function start() {
  const [models, treebanks] = await Promise.all([api("api/models"), api("api/treebanks")]);
  state.models = models.models;
  state.treebanks = treebanks.treebanks;
  for (const id of ["model", "tb-model"]) {
    $(id).replaceChildren(...state.models.map((m) => el("option", { value: m.name },
      `${m.name} (${m.layers} layers${m.char_level ? ", characters" : ""})`)));
  }
  $("tb-name").replaceChildren(...state.treebanks.map((t) => el("option", { value: t.name, title: t.description },
    t.name + (t.sentences ? ` (${t.sentences.toLocaleString()})` : ""))));
  fillLayers($("layer"), $("model").value, false);
  treebankChanged();
  $("text").value = EXAMPLES[isChinese($("model").value) ? "zh" : "en"];
  $("model").addEventListener("change", () => {
    fillLayers($("layer"), $("model").value, true);
    const text = $("text").value.trim();
    if (!text || Object.values(EXAMPLES).includes(text)) $("text").value = EXAMPLES[isChinese($("model").value) ? "zh" : "en"];
  });
  $("tb-name").addEventListener("change", () => { treebankChanged(); loadSummary(); });
  $("tb-model").addEventListener("change", () => { fillLayers($("tb-layer"), $("tb-model").value, true); loadSummary(); });
  for (const id of ["tb-layer", "tb-decoder", "tb-distance"]) $(id).addEventListener("change", loadSummary);
  $("parse-form").addEventListener("submit", (e) => { e.preventDefault(); parseText(); });
  $("tb-form").addEventListener("submit", (e) => { e.preventDefault(); loadSummary(); });
  $("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); parseText(); } });
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => showView(t.dataset.view)));
  $("tb-filter").addEventListener("input", renderList);
  $("tb-short").addEventListener("change", renderList);
  document.querySelectorAll("#tb-table th").forEach((th) => th.addEventListener("click", () => {
    state.sortDir = state.sortKey === th.dataset.key ? -state.sortDir : (th.dataset.key === "index" ? 1 : th.dataset.key === "f1" ? 1 : -1);
    state.sortKey = th.dataset.key;
    renderList();
  }));
  $("tb-table").tBodies[0].addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (tr) openSentence(Number(tr.dataset.index));
  });
  document.addEventListener("keydown", (e) => {
    if ($("view-treebank").hidden || state.selected === null || ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName)) return;
    const pos = state.rows.findIndex((r) => r.index === state.selected);
    const k = e.key === "ArrowDown" || e.key === "j" ? 1 : e.key === "ArrowUp" || e.key === "k" ? -1 : 0;
    if (k && state.rows[pos + k]) { e.preventDefault(); openSentence(state.rows[pos + k].index); }
  });
  document.body.dataset.ready = "1";
  await parseText();
}
start().catch((err) => showError(`cannot start: ${err.message}`));
