// moodwire's dashboard. Post texts and keywords are untrusted: they only ever reach
// the page through textContent or Chart.js's canvas, never as markup.
"use strict";

const EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"];
// The pie chart's colours (crates/server/src/plot.rs), so both views agree.
const COLOURS = {
  sadness: "#4c72b0", joy: "#f2b701", love: "#e15f99",
  anger: "#d62728", fear: "#7b4fa0", surprise: "#2ca08c",
};
const KEY_STORAGE = "moodwire.apiKey";

const $ = (id) => document.getElementById(id);
const charts = {};

/** A failed API call, with the server's message in plain words. */
class ApiProblem extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiProblem(0, "network", "The server cannot be reached. Is moodwire serve still running?");
  }
  const body = await response.json().catch(() => null);
  if (response.ok && body) return body;
  if (response.status === 401) $("key-form").hidden = false;
  throw problemOf(response, body);
}

function problemOf(response, body) {
  const error = body && body.error;
  const code = error ? error.code : "http_" + response.status;
  const retry = response.headers.get("Retry-After");
  const explained = {
    unauthorized: "This server requires an API key: enter it at the top of the page.",
    rate_limited: `Too many requests; try again in ${retry || "a few"} seconds.`,
    store_unavailable: "The history store is not reachable right now; the server keeps retrying.",
    overloaded: "The server is busy classifying other requests; try again in a moment.",
    timeout: "The analysis took too long; try fewer posts.",
    upstream_unavailable: "The post source (Reddit) is unavailable right now.",
    upstream_rate_limited: "The post source is rate limiting us; try again shortly.",
  }[code];
  const message = explained || sentence((error && error.message) || `the server answered ${response.status}`);
  return new ApiProblem(response.status, code, message);
}

/** "limit must be …" as a sentence: "Limit must be …." */
function sentence(text) {
  const capitalised = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : capitalised + ".";
}

function show(id, text) {
  const node = $(id);
  node.textContent = text || "";
  node.hidden = !text;
}

function replaceChart(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart($(id), config);
  return charts[id];
}

function swatch(label) {
  const box = document.createElement("span");
  box.className = "swatch";
  box.style.background = COLOURS[label];
  return box;
}

function cell(row, text, numeric) {
  const td = document.createElement("td");
  if (numeric) td.className = "num";
  td.textContent = text;
  row.appendChild(td);
  return td;
}

const percent = (value) => `${value.toFixed(1)} %`;
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const when = (iso) => new Date(iso).toLocaleString();

// ---- Ask: POST /analyze -------------------------------------------------------

async function analyze(event) {
  event.preventDefault();
  const keyword = $("keyword").value.trim();
  const limit = Number($("limit").value || 250);
  const examples = Number($("examples").value || 0);
  const subreddits = subredditNames($("subreddits").value);
  const timeWindow = $("window").value;
  show("ask-error", "");
  if (!keyword) {
    show("ask-error", "Type a keyword first.");
    return;
  }
  $("analyze").disabled = true;
  const started = performance.now();
  try {
    const result = await api("/analyze", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ keyword, limit, examples, subreddits, window: timeWindow, return_plot: false }),
    });
    renderResult(result, performance.now() - started);
  } catch (problem) {
    $("result").hidden = true;
    show("ask-error", problem.message);
  } finally {
    $("analyze").disabled = false;
  }
}

/** "stocks, r/WallStreetBets" or "stocks wallstreetbets" as a list of names. */
function subredditNames(text) {
  return text.split(/[\s,+]+/).map((name) => name.replace(/^\/?r\//i, "")).filter(Boolean);
}

/** "in r/stocks, r/wallstreetbets · from the last week", or "" for all of Reddit, all time. */
function scopeText(subreddits, timeWindow) {
  const parts = [];
  if (subreddits.length) parts.push("in " + subreddits.map((s) => `r/${s}`).join(", "));
  if (timeWindow !== "all") parts.push(`from the last ${timeWindow}`);
  return parts.join(" · ");
}

function renderResult(result, roundTripMs) {
  $("result").hidden = false;
  const served = result.source === "cache" ? "from the cache" : `freshly computed from ${result.posts_source} posts`;
  const scope = scopeText(result.subreddits, result.window);
  $("result-meta").textContent =
    `${plural(result.count, "post", "posts")} about “${result.keyword}”${scope ? " " + scope : ""} · ${served} · ` +
    `${(result.time * 1000).toFixed(1)} ms on the server, ${roundTripMs.toFixed(0)} ms round trip · ` +
    `model ${result.model} · analysed ${when(result.analyzed_at)}`;
  if (result.count === 0) {
    show("ask-error", `No posts mention “${result.keyword}”${scope ? " " + scope : ""}. Try a broader keyword or scope.`);
  }
  const shares = result.agg;
  replaceChart("mood-chart", {
    type: "doughnut",
    data: {
      labels: shares.map((s) => s.label),
      datasets: [{
        data: shares.map((s) => s.pct),
        backgroundColor: shares.map((s) => COLOURS[s.label]),
      }],
    },
    options: {
      maintainAspectRatio: false,
      plugins: {
        legend: { position: "bottom" },
        tooltip: { callbacks: { label: (item) => ` ${item.label}: ${percent(item.raw)}` } },
      },
    },
  });
  const body = $("mood-table").querySelector("tbody");
  body.replaceChildren();
  for (const share of shares) {
    const row = document.createElement("tr");
    row.dataset.emotion = share.label;
    const name = cell(row, "");
    name.append(swatch(share.label), share.label);
    cell(row, percent(share.pct), true);
    cell(row, String(share.count), true);
    cell(row, share.count ? share.avg_score.toFixed(3) : "–", true);
    body.appendChild(row);
  }
  renderExamples(shares);
}

/** Each emotion's example posts, grouped under its name, each linked to Reddit. */
function renderExamples(shares) {
  const box = $("example-posts");
  box.replaceChildren();
  for (const share of shares) {
    if (!share.examples || share.examples.length === 0) continue;
    const group = document.createElement("div");
    group.className = "example-group";
    group.dataset.emotion = share.label;
    const heading = document.createElement("h4");
    heading.append(swatch(share.label), share.label);
    const list = document.createElement("ul");
    for (const post of share.examples) list.appendChild(exampleItem(post));
    group.append(heading, list);
    box.appendChild(group);
  }
  $("examples-box").hidden = box.childElementCount === 0;
}

function exampleItem(post) {
  const item = document.createElement("li");
  const url = redditUrl(post.permalink);
  const title = document.createElement(url ? "a" : "span");
  title.className = "post-title";
  title.textContent = post.title || "(no title)";
  if (url) {
    title.href = url;
    title.target = "_blank";
    title.rel = "noopener noreferrer";
  }
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = ` r/${post.subreddit} · confidence ${post.score.toFixed(3)} · ${when(post.created_at)}`;
  item.append(title, meta);
  if (post.excerpt) {
    const excerpt = document.createElement("div");
    excerpt.className = "post-excerpt";
    excerpt.textContent = post.excerpt;
    item.appendChild(excerpt);
  }
  return item;
}

/** A post's page on Reddit, or null when its permalink is not a Reddit path. */
function redditUrl(permalink) {
  if (!permalink || !permalink.startsWith("/")) return null;
  const url = new URL(permalink, "https://www.reddit.com");
  return url.origin === "https://www.reddit.com" ? url.href : null;
}

// ---- Across keywords: GET /api/keywords --------------------------------------

// The page checks for newly stored analyses this often while "Live" is on and the
// tab is visible, and redraws only what changed.
const LIVE_SECONDS = 10;
let keywordsOnPage = null; // the /api/keywords answer drawn now, as JSON
let detailOnPage = ""; // the series whose detail is drawn, as of which analysis
let keywordsLoading = false;

async function loadKeywords() {
  if (keywordsLoading) return;
  keywordsLoading = true;
  try {
    const keywords = (await api("/api/keywords?limit=30")).keywords;
    show("compare-error", "");
    $("compare-checked").textContent =
      `Checked ${new Date().toLocaleTimeString()}; Live checks every ${LIVE_SECONDS} s.`;
    const answer = JSON.stringify(keywords);
    if (answer !== keywordsOnPage) {
      keywordsOnPage = answer;
      renderKeywords(keywords);
    }
    const selected = $("detail-keyword").value;
    if (selected && detailVersion(keywords, selected) !== detailOnPage) loadDetail(selected, keywords);
  } catch (problem) {
    show("compare-error", problem.message);
  } finally {
    keywordsLoading = false;
  }
}

/** A stored keyword in one scope: its key (the picker's value), its label and the
 * query that reads its history. Scoped analyses are series of their own. */
function series(k) {
  const scope = scopeText(k.subreddits, k.window);
  const query = new URLSearchParams();
  if (k.subreddits.length) query.set("subreddits", k.subreddits.join(","));
  if (k.window !== "all") query.set("window", k.window);
  return {
    key: [k.keyword, k.subreddits.join("+"), k.window].join("\n"),
    keyword: k.keyword,
    label: scope ? `${k.display} (${scope})` : k.display,
    query: query.toString(),
  };
}

const seriesByKey = (keywords, key) => keywords.map(series).find((s) => s.key === key);

/** Changes when a new analysis of the series `key` is stored. */
function detailVersion(keywords, key) {
  const stored = keywords.find((k) => series(k).key === key);
  return stored ? `${key}\n${stored.analyses}\n${stored.latest.analyzed_at}` : key;
}

function renderKeywords(keywords) {
  const empty = keywords.length === 0;
  show("compare-empty", empty
    ? "Nothing is stored yet. Analyse a keyword above: the worker stores results when the CPU is quiet, and they appear here."
    : "");
  // A keyword whose latest analysis found no posts has no shares to draw: it is named apart.
  const drawn = keywords.filter((k) => k.latest.count > 0);
  const noPosts = keywords.filter((k) => k.latest.count === 0).map((k) => `“${series(k).label}”`);
  show("compare-no-posts", noPosts.length ? `No posts found in the latest analysis of ${noPosts.join(", ")}.` : "");
  fillKeywordPicker(keywords, drawn);
  replaceChart("keywords-chart", {
    type: "bar",
    data: {
      labels: drawn.map((k) => series(k).label),
      datasets: EMOTIONS.map((emotion, i) => ({
        label: emotion,
        backgroundColor: COLOURS[emotion],
        data: drawn.map((k) => k.latest.emotions[i].pct),
      })),
    },
    options: {
      indexAxis: "y",
      maintainAspectRatio: false,
      scales: {
        x: { stacked: true, max: 100, title: { display: true, text: "share of posts (%)" } },
        y: { stacked: true },
      },
      plugins: {
        tooltip: {
          callbacks: {
            label: (item) => ` ${item.dataset.label}: ${percent(item.raw)}`,
            footer: (items) => items.length
              ? `${plural(drawn[items[0].dataIndex].latest.count, "post", "posts")}, ${when(drawn[items[0].dataIndex].latest.analyzed_at)}`
              : "",
          },
        },
      },
      onClick: (_event, elements) => {
        if (elements.length) selectSeries(series(drawn[elements[0].index]).key);
      },
    },
  });
}

/** Checks for new analyses every LIVE_SECONDS while "Live" is ticked, the page is in
 * view and no API key is being asked for, and at once when it comes back into view. */
function startLive() {
  const due = () => $("live").checked && document.visibilityState === "visible" && $("key-form").hidden;
  setInterval(() => { if (due()) loadKeywords(); }, LIVE_SECONDS * 1000);
  document.addEventListener("visibilitychange", () => { if (due()) loadKeywords(); });
  $("live").addEventListener("change", () => { if (due()) loadKeywords(); });
}

/** Every stored keyword and scope; the one picked stays, else the first one with posts. */
function fillKeywordPicker(keywords, withPosts) {
  const picker = $("detail-keyword");
  const current = picker.value;
  picker.replaceChildren();
  for (const k of keywords) {
    const option = document.createElement("option");
    const { key, label } = series(k);
    option.value = key;
    option.textContent = `${label}: ${plural(k.analyses, "analysis", "analyses")}`;
    picker.appendChild(option);
  }
  const first = withPosts[0] || keywords[0];
  if (keywords.some((k) => series(k).key === current)) picker.value = current;
  else if (first) picker.value = series(first).key;
  $("download-csv").disabled = keywords.length === 0;
}

// ---- One keyword: trend and confidence ---------------------------------------

function selectSeries(key) {
  $("detail-keyword").value = key;
  loadDetail(key);
}

/** The history route of a series, with its scope and `rows` more parameters. */
function historyPath(picked, route, rows) {
  const query = [rows, picked.query].filter(Boolean).join("&");
  return `/api/keywords/${encodeURIComponent(picked.keyword)}/${route}?${query}`;
}

async function loadDetail(key, keywords = JSON.parse(keywordsOnPage || "[]")) {
  show("detail-error", "");
  show("detail-empty", "");
  const picked = seriesByKey(keywords, key);
  if (!picked) return;
  detailOnPage = detailVersion(keywords, key);
  try {
    const [trend, posts] = await Promise.all([
      api(historyPath(picked, "trend", "points=100")),
      api(historyPath(picked, "posts", "limit=1000")),
    ]);
    if ($("detail-keyword").value !== key) return; // another series was picked meanwhile
    renderTrend(trend.points);
    renderConfidence(posts.analysis);
    if (!posts.analysis) {
      show("detail-empty", `No stored analysis of “${picked.label}” has its posts yet (analyses rebuilt from the cache have none).`);
    }
  } catch (problem) {
    detailOnPage = ""; // try again at the next check
    show("detail-error", problem.message);
  }
}

function renderTrend(points) {
  replaceChart("trend-chart", {
    type: "line",
    data: {
      labels: points.map((p) => when(p.analyzed_at)),
      datasets: EMOTIONS.map((emotion, i) => ({
        label: emotion,
        borderColor: COLOURS[emotion],
        backgroundColor: COLOURS[emotion],
        data: points.map((p) => p.emotions[i].pct),
        tension: 0.2,
      })),
    },
    options: {
      maintainAspectRatio: false,
      scales: { y: { min: 0, max: 100, title: { display: true, text: "share of posts (%)" } } },
      plugins: {
        tooltip: { callbacks: { label: (item) => ` ${item.dataset.label}: ${percent(item.raw)}` } },
      },
    },
  });
}

// A fixed pseudo-random spread per post, so dots do not sit on one line and do not
// jump around between reloads.
function jitter(id) {
  let hash = 0;
  for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return ((hash >>> 0) % 1000) / 1000 * 0.6 - 0.3;
}

function clip(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function renderConfidence(analysis) {
  const posts = analysis ? analysis.posts : [];
  replaceChart("confidence-chart", {
    type: "scatter",
    data: {
      datasets: EMOTIONS.map((emotion, i) => ({
        label: emotion,
        backgroundColor: COLOURS[emotion],
        data: posts
          .filter((p) => p.label === emotion)
          .map((p) => ({ x: i + jitter(p.post_id), y: p.score, post: p })),
      })),
    },
    options: {
      maintainAspectRatio: false,
      scales: {
        x: {
          min: -0.5, max: EMOTIONS.length - 0.5,
          // One tick per emotion, at the centre of its strip.
          afterBuildTicks: (axis) => { axis.ticks = EMOTIONS.map((_, i) => ({ value: i })); },
          ticks: { callback: (value) => EMOTIONS[value] || "" },
          grid: { display: false },
        },
        y: { min: 0, max: 1, title: { display: true, text: "confidence" } },
      },
      plugins: {
        tooltip: {
          callbacks: {
            title: (items) => items.length ? clip(items[0].raw.post.title, 90) : "",
            label: (item) => ` ${item.raw.post.label} ${item.raw.post.score.toFixed(3)} · r/${item.raw.post.subreddit}`,
            afterBody: (items) => items.length ? wrap(items[0].raw.post.excerpt, 70, 4) : [],
          },
        },
      },
    },
  });
  const body = $("uncertain-posts").querySelector("tbody");
  body.replaceChildren();
  for (const post of posts.slice(0, 10)) {
    const row = document.createElement("tr");
    const label = cell(row, "");
    label.append(swatch(post.label), post.label);
    cell(row, post.score.toFixed(3), true);
    const text = cell(row, "");
    const title = document.createElement("div");
    title.className = "post-title";
    title.textContent = post.title;
    const excerpt = document.createElement("div");
    excerpt.className = "post-excerpt";
    excerpt.textContent = post.excerpt;
    text.append(title, excerpt);
    body.appendChild(row);
  }
}

/** The picked series' stored analyses (the latest 500) as a CSV file: one row per
 * analysis, the share, count and mean confidence of every emotion. */
async function downloadCsv() {
  const picked = seriesByKey(JSON.parse(keywordsOnPage || "[]"), $("detail-keyword").value);
  if (!picked) return;
  show("detail-error", "");
  try {
    const trend = await api(historyPath(picked, "trend", "points=500"));
    const header = ["keyword", "subreddits", "window", "analysis_id", "analyzed_at", "posts",
      ...EMOTIONS.flatMap((e) => [`${e}_pct`, `${e}_posts`, `${e}_mean_confidence`])];
    const rows = trend.points.map((p) => [trend.keyword, trend.subreddits.join("+"), trend.window,
      p.analysis_id, p.analyzed_at, p.count,
      ...p.emotions.flatMap((share) => [share.pct, share.count, share.avg_score])]);
    const csv = [header, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
    const name = [picked.keyword, ...trend.subreddits, trend.window === "all" ? "" : trend.window].join(" ");
    link.download = `moodwire-${name.trim().replace(/[^\p{L}\p{N}]+/gu, "-")}-analyses.csv`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  } catch (problem) {
    show("detail-error", problem.message);
  }
}

/** A CSV field: quoted when it must be, and a text a spreadsheet would run as a
 * formula (=, +, -, @ first) kept as text. */
function csvField(value) {
  if (typeof value === "number") return String(value);
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Up to `lines` lines of at most `width` characters, for a tooltip. */
function wrap(text, width, lines) {
  const out = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if ((line + " " + word).trim().length > width) {
      out.push(line);
      line = word;
      if (out.length === lines) break;
    } else {
      line = (line + " " + word).trim();
    }
  }
  if (out.length < lines && line) out.push(line);
  return out;
}

// ---- Wiring -------------------------------------------------------------------

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  $("key-form").hidden = true;
  show("ask-error", "");
  loadKeywords();
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof Chart === "undefined") {
    show("ask-error", "The charting library did not load; reload the page.");
    return;
  }
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  if (matchMedia("(prefers-reduced-motion: reduce)").matches) Chart.defaults.animation = false;
  $("ask-form").addEventListener("submit", analyze);
  $("key-form").addEventListener("submit", useKey);
  $("reload-keywords").addEventListener("click", loadKeywords);
  $("detail-keyword").addEventListener("change", (e) => loadDetail(e.target.value));
  $("download-csv").addEventListener("click", downloadCsv);
  loadKeywords();
  startLive();
});
