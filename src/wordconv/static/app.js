// wordconv's web page: reads /metadata to learn the task, then posts to /predict (and /explain for text
// classifiers) and draws the result.  User and model text only ever enters the page as text nodes
// (textContent, append(string)) or attribute values: never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const ENTITY_COLORS = ["#f4b740", "#67c587", "#6fa8f7", "#f27a7a", "#b48ef0", "#4fc6c6", "#f29bd0", "#a3b86c"];
let meta = null;

// ---------------------------------------------------------------------------------------------- DOM helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);  // CSSOM: allowed by the page's CSP
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);  // strings: text nodes
  return node;
}

const pct = (p) => `${(100 * p).toFixed(1)}%`;
const fixed = (x, d = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "–");

// The server's offsets count Unicode code points (Python strings); JavaScript strings count UTF-16 units.
function codeUnitIndex(text) {
  const index = [0];
  let at = 0;
  for (const ch of text) { at += ch.length; index.push(at); }
  return index;
}

// The text as text nodes, with the given [start, end) character spans (code points) as elements made by
// span.make(textOfSpan); overlapping or out-of-range spans are skipped.
function renderSpans(container, text, spans) {
  const units = codeUnitIndex(text);
  const n = units.length - 1;
  let at = 0;
  for (const span of [...spans].sort((a, b) => a.start - b.start || b.end - a.end)) {
    if (!(Number.isInteger(span.start) && Number.isInteger(span.end)) || span.start < at || span.end > n
        || span.end <= span.start) continue;
    if (span.start > at) container.append(text.slice(units[at], units[span.start]));
    container.append(span.make(text.slice(units[span.start], units[span.end])));
    at = span.end;
  }
  if (at < n) container.append(text.slice(units[at]));
  return container;
}

// ---------------------------------------------------------------------------------------------- API

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON: reported below */ }
  if (!response.ok) {
    const error = new Error(data && data.error ? data.error : `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setBusy(busy, note = "") {
  $("submit").disabled = busy;
  $("status").textContent = note;
}

// ---------------------------------------------------------------------------------------------- text classifiers

function bars(rows, { top = null, chosen = null, onPick = null } = {}) {
  const box = el("div", { class: "bars", id: "bars" });
  for (const [label, p] of rows) {
    const width = pct(Math.max(0, Math.min(1, p)));
    const row = el("div", { class: "bar-row", dataset: { label, probability: String(p) },
                            title: `${label}: ${pct(p)}` },
      el("span", { class: "bar-label", text: label }),
      el("div", { class: "bar-track" }, el("div", { class: "bar-fill", style: { width } })),
      el("span", { class: "bar-value", text: pct(p) }));
    if (label === top) row.classList.add("top");
    if (chosen && chosen.includes(label)) row.classList.add("chosen");
    if (onPick) { row.classList.add("clickable"); row.addEventListener("click", () => onPick(label, row)); }
    box.append(row);
  }
  return box;
}

function tokenColor(score, scale) {
  const strength = scale > 0 ? Math.min(1, Math.abs(score) / scale) : 0;
  const alpha = (0.08 + 0.72 * strength).toFixed(3);
  return score >= 0 ? `rgba(22, 163, 74, ${alpha})` : `rgba(220, 38, 38, ${alpha})`;
}

// The text with each token colored by its score for `label` (green: for it, red: against), and the
// n-grams (filter windows) that scored highest; hovering an n-gram outlines its words.
function drawExplanation(box, text, exp, label) {
  box.replaceChildren();
  const tokens = Array.isArray(exp.tokens) ? exp.tokens : [];
  const scale = Math.max(0, ...tokens.map((t) => Math.abs(Number(t.score) || 0)));
  const view = el("div", { class: "text-view", id: "highlighted" });
  renderSpans(view, text, tokens.map((t) => ({
    start: t.start, end: t.end,
    make: (s) => el("span", { class: "tok", title: `${t.text}: ${fixed(t.score)}`,
                              dataset: { score: String(t.score), start: String(t.start), end: String(t.end) },
                              style: { backgroundColor: tokenColor(Number(t.score) || 0, scale) } }, s),
  })));
  box.append(el("h2", { text: `Words that drove “${label}”` }), view,
    el("div", { class: "scale muted" },
      el("span", {}, el("span", { class: "swatch for" }), `for ${label}`),
      el("span", {}, el("span", { class: "swatch against" }), `against ${label}`),
      exp.method ? el("span", { text: `method: ${exp.method}` }) : null));
  const ngrams = (Array.isArray(exp.ngrams) ? exp.ngrams : []).slice()
    .sort((a, b) => (Number(b.score) || 0) - (Number(a.score) || 0)).slice(0, 8);
  if (ngrams.length) {
    const list = el("ol", { class: "ngrams", id: "ngrams" });
    for (const g of ngrams) {
      const item = el("li", { dataset: { start: String(g.start), end: String(g.end), score: String(g.score) } },
        el("span", { class: "ngram-text", text: `“${g.text}”` }),
        ` ${fixed(g.score)}`,
        g.filter !== undefined && g.filter !== null
          ? el("span", { class: "muted", text: ` (filter ${g.filter})` }) : null);
      const hot = (on) => view.querySelectorAll(".tok").forEach((t) => {
        const s = Number(t.dataset.start), e = Number(t.dataset.end);
        t.classList.toggle("hot", on && s < g.end && e > g.start);
      });
      item.addEventListener("mouseenter", () => hot(true));
      item.addEventListener("mouseleave", () => hot(false));
      list.append(item);
    }
    box.append(el("h2", { text: "Strongest n-grams" }), list);
  }
}

// A class's token scores when the explanation gives only its n-grams (per_class): each n-gram's score
// spread evenly over the words it covers, as the exact method spreads a window's contribution.
function tokensFromNgrams(tokens, ngrams) {
  const scores = tokens.map(() => 0);
  for (const g of ngrams) {
    const covered = tokens.map((t, i) => (t.start < g.end && t.end > g.start ? i : -1)).filter((i) => i >= 0);
    for (const i of covered) scores[i] += (Number(g.score) || 0) / covered.length;
  }
  return tokens.map((t, i) => ({ ...t, score: scores[i] }));
}

async function runClassifier(text) {
  const { predictions } = await api("predict", { text });
  const p = predictions[0];
  const result = $("result");
  result.replaceChildren();
  if (meta.task === "regression") {
    result.append(el("div", { class: "summary" }, "Predicted value: ",
      el("span", { class: "label", id: "label", text: fixed(p.value) })));
    return;
  }
  const rows = meta.labels.map((label) => [label, p.probabilities[label]]).sort((a, b) => b[1] - a[1]);
  const explanation = el("div", { id: "explanation" });
  let exp = null;
  const pick = (label, row) => {  // a click on a label's bar: the words for (and against) that label
    const view = exp && exp.per_class && exp.per_class[label];
    if (!view) return;
    result.querySelectorAll(".bar-row").forEach((r) => r.classList.toggle("selected", r === row));
    const ngrams = Array.isArray(view.ngrams) ? view.ngrams : [];
    const tokens = Array.isArray(view.tokens) ? view.tokens : tokensFromNgrams(exp.tokens || [], ngrams);
    drawExplanation(explanation, text, { ...view, tokens, ngrams, method: exp.method }, label);
  };
  if (meta.task === "multilabel") {
    result.append(el("div", { class: "summary" }, "Labels: ",
      el("span", { class: "label", id: "label", text: p.labels.length ? p.labels.join(", ") : "none" })),
      bars(rows, { chosen: p.labels, onPick: pick }), explanation);
  } else {
    result.append(el("div", { class: "summary" }, el("span", { class: "label", id: "label", text: p.label }), " ",
      el("span", { class: "muted", id: "score", text: `(${pct(p.score)})` })),
      bars(rows, { top: p.label, onPick: pick }), explanation);
  }
  if (!meta.explain) return;
  setBusy(true, "explaining…");
  try {
    const { explanations } = await api("explain", { text });
    exp = explanations[0];
    drawExplanation(explanation, text, exp, exp.label || p.label);
  } catch (error) {
    explanation.append(el("p", { class: "muted", text: `No explanation: ${error.message}` }));
  }
}

// ---------------------------------------------------------------------------------------------- NER and QA

function entityColor(type) {
  let i = meta.labels.indexOf(type);
  if (i < 0) i = [...type].reduce((h, c) => (h * 31 + c.codePointAt(0)) >>> 0, 7);
  return ENTITY_COLORS[i % ENTITY_COLORS.length];
}

async function runTagger(text) {
  const { predictions: [p] } = await api("predict", { text });
  const result = $("result");
  result.replaceChildren();
  const types = [...new Set(p.entities.map((e) => e.type))];
  result.append(el("div", { class: "summary" }, el("span", { class: "label", id: "label",
    text: `${p.entities.length} ${p.entities.length === 1 ? "entity" : "entities"}` })));
  if (types.length) {
    result.append(el("div", { class: "legend" },
      ...types.map((t) => el("span", { text: t, style: { backgroundColor: entityColor(t) } }))));
  }
  result.append(renderSpans(el("div", { class: "text-view", id: "entity-view" }), text, p.entities.map((e) => ({
    start: e.start, end: e.end,
    make: (s) => el("mark", { class: "ent", title: `${e.type} ${pct(e.score)}`,
                              style: { backgroundColor: entityColor(e.type) },
                              dataset: { type: e.type, score: String(e.score) } }, s),
  }))));
  if (p.entities.length) {
    const body = el("tbody", {}, ...p.entities.map((e) => el("tr", {},
      el("td", { text: e.type }), el("td", { text: e.text }), el("td", { class: "num", text: pct(e.score) }),
      el("td", { class: "num", text: `${e.start}–${e.end}` }))));
    result.append(el("table", { id: "entities" }, el("thead", {}, el("tr", {},
      ...["type", "text", "score", "characters"].map((name) => el("th", { text: name })))),
    body));
  }
}

async function runReader(question, context) {
  const { predictions: [a] } = await api("predict", { question, context });
  const result = $("result");
  result.replaceChildren();
  const found = a.answer && a.end > a.start;
  result.append(el("div", { class: "summary" }, "Answer: ",
    el("span", { class: "answer-text", id: "answer", text: found ? a.answer : "(none found)" }), " ",
    el("span", { class: "muted", id: "score", text: `(${pct(a.score)})` })));
  const view = el("div", { class: "text-view", id: "answer-view" });
  renderSpans(view, context, found ? [{ start: a.start, end: a.end,
    make: (s) => el("mark", { class: "answer", dataset: { start: String(a.start), end: String(a.end) } }, s) }] : []);
  result.append(el("h2", { text: "Context" }), view);
  const mark = view.querySelector("mark.answer");
  if (mark) mark.scrollIntoView({ block: "nearest" });
}

// ---------------------------------------------------------------------------------------------- wiring

async function submit(event) {
  if (event) event.preventDefault();
  if (!meta || $("submit").disabled) return;
  showError("");
  setBusy(true, "predicting…");
  try {
    if (meta.task === "qa") await runReader($("question").value, $("context").value);
    else if (meta.task === "ner") await runTagger($("text").value);
    else await runClassifier($("text").value);
    $("result").hidden = false;
  } catch (error) {
    showError(error.message);
  } finally {
    setBusy(false);
  }
}

async function start() {
  try {
    meta = await api("metadata");
  } catch (error) {
    showError(`Cannot read the model's metadata: ${error.message}`);
    return;
  }
  const info = $("model-info");
  info.replaceChildren(
    el("strong", { text: meta.model && meta.model.type ? meta.model.type : "model" }),
    ` · task ${meta.task}`,
    meta.labels.length && meta.task !== "qa" && meta.task !== "regression"
      ? ` · ${meta.task === "ner" ? "types" : "labels"}: ${meta.labels.join(", ")}` : "");
  document.body.dataset.task = meta.task;
  $("qa-input").hidden = meta.task !== "qa";
  $("text-input").hidden = meta.task === "qa";
  $("submit").textContent = meta.task === "qa" ? "Answer" : meta.task === "ner" ? "Tag" : "Predict";
  $("submit").disabled = false;
  (meta.task === "qa" ? $("question") : $("text")).focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", submit);
  $("form").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit(event);
  });
  start();
});
