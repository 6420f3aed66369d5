// The dashboard in a real browser: Debian's headless Chromium driven by
// playwright-core. Run by crates/cli/tests/dashboard.rs against a server it started
// and seeded (three analysed keywords, one of them markup), or by hand:
//   node e2e/dashboard.mjs http://127.0.0.1:8000 e2e/screenshots
// Exits non-zero, naming the step, when anything a user would see is wrong.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, shots = "e2e/screenshots"] = process.argv.slice(2);
assert.ok(base, "usage: node e2e/dashboard.mjs BASE_URL [SCREENSHOT_DIR]");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launchPersistentContext(
  join(tmpdir(), `moodwire-chromium-${process.pid}`),
  {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1200, height: 900 },
    // The dashboard then draws charts without animation: screenshots show final values.
    reducedMotion: "reduce",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  },
);
const page = browser.pages()[0] || (await browser.newPage());
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// Failed loads are judged by URL below; the deliberate 422 is expected.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
    problems.push(`console: ${m.text()}`);
  }
});
let expectedStatus = null;
page.on("response", (r) => {
  if (r.status() >= 400 && r.status() !== expectedStatus) problems.push(`${r.status()} for ${r.url()}`);
});
page.on("dialog", (d) => { problems.push(`a dialog opened: ${d.message()}`); d.dismiss(); });

async function step(name, body) {
  try {
    await body();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.error(`FAIL ${name}: ${e.message}`);
    await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
    await browser.close();
    process.exit(1);
  }
}

const markup = "<img src=x onerror=alert(1)>"; // the seeded keyword that finds no posts
const chartData = (id) => page.evaluate((canvas) => {
  const chart = Chart.getChart(canvas);
  return chart ? { labels: chart.data.labels, datasets: chart.data.datasets.map((d) => d.data) } : null;
}, id);

await step("the page loads with its charting library", async () => {
  await page.goto(base + "/");
  await page.waitForFunction(() => typeof Chart === "function");
  assert.equal(await page.title(), "moodwire");
});

await step("a keyword typed and submitted gives a chart and the six shares", async () => {
  await page.fill("#keyword", "AI");
  await page.fill("#limit", "120");
  await page.click("#analyze");
  await page.waitForSelector("#mood-table tbody tr:nth-child(6)");
  const rows = await page.$$eval("#mood-table tbody tr", (trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.deepEqual(rows.map((r) => r[0]).sort(), ["anger", "fear", "joy", "love", "sadness", "surprise"]);
  const shares = rows.map((r) => Number.parseFloat(r[1]));
  assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 100) <= 0.1, `shares sum to 100: ${shares}`);
  const counts = rows.map((r) => Number(r[2]));
  assert.equal(counts.reduce((a, b) => a + b, 0), 120, "the counts add up to the posts analysed");
  assert.ok(new Set(shares).size > 1, "the breakdown is not uniform");
  const pie = await chartData("mood-chart");
  assert.equal(pie.labels.length, 6);
  assert.match(await page.textContent("#result-meta"), /120 posts about “AI”/);
  await page.screenshot({ path: join(shots, "analyze.png"), fullPage: true });
});

await step("example posts are listed under the chart, by emotion, linked to Reddit", async () => {
  await page.waitForSelector("#examples-box:not([hidden])");
  const groups = await page.$$eval("#example-posts .example-group", (divs) => divs.map((d) => ({
    emotion: d.dataset.emotion,
    heading: d.querySelector("h4").textContent,
    links: [...d.querySelectorAll("li a.post-title")].map((a) => ({ href: a.href, text: a.textContent, target: a.target })),
    items: d.querySelectorAll("li").length,
  })));
  const counts = Object.fromEntries(await page.$$eval("#mood-table tbody tr", (trs) =>
    trs.map((tr) => [tr.dataset.emotion, Number(tr.children[2].textContent)])));
  assert.ok(groups.length > 0, "some emotion has examples");
  for (const group of groups) {
    assert.equal(group.heading, group.emotion);
    assert.equal(group.items, Math.min(3, counts[group.emotion]), `${group.emotion}: 3 examples, or all its posts`);
    for (const link of group.links) {
      assert.match(link.href, /^https:\/\/www\.reddit\.com\/r\//, link.href);
      assert.equal(link.target, "_blank");
      assert.ok(link.text.length > 0);
    }
  }
  const emotionsWithPosts = Object.entries(counts).filter(([, n]) => n > 0).map(([e]) => e).sort();
  assert.deepEqual(groups.map((g) => g.emotion).sort(), emotionsWithPosts, "a group for every emotion with posts");
});

await step("asking again is answered from the cache", async () => {
  await page.click("#analyze");
  await page.waitForFunction(() =>
    document.getElementById("result-meta").textContent.includes("from the cache"));
});

await step("an analysis stored after the page loaded appears by itself (Live)", async () => {
  assert.equal(await page.isChecked("#live"), true, "Live is on by default");
  // The idle sync stores the AI analysis above; the page must pick it up unprompted.
  await page.waitForFunction(() => {
    const chart = Chart.getChart("keywords-chart");
    return chart && chart.data.labels.includes("AI");
  }, null, { timeout: 45_000 });
  assert.match(await page.textContent("#compare-checked"), /^Checked .+; Live checks every 10 s\.$/);
});

await step("an error from the API is shown in plain words", async () => {
  expectedStatus = 422;
  await page.fill("#limit", "5000");
  await page.click("#analyze");
  await page.waitForSelector("#ask-error:not([hidden])");
  assert.match(await page.textContent("#ask-error"), /Limit must be between 1 and 1000 \(got 5000\)\./);
  await page.fill("#limit", "250");
  expectedStatus = null;
});

await step("the keyword comparison shows the stored keywords as stacked bars", async () => {
  await page.click("#reload-keywords");
  await page.waitForFunction(() => {
    const chart = Chart.getChart("keywords-chart");
    return chart && chart.data.labels.length >= 3;
  });
  const bars = await chartData("keywords-chart");
  for (const keyword of ["climate", "bitcoin"]) {
    assert.ok(bars.labels.includes(keyword), `${keyword} is compared: ${bars.labels}`);
  }
  assert.equal(bars.datasets.length, 6, "one stacked series per emotion");
  const climate = bars.labels.indexOf("climate");
  const total = bars.datasets.reduce((sum, series) => sum + series[climate], 0);
  assert.ok(Math.abs(total - 100) <= 0.1, `climate's bar is 100 %: ${total}`);
  assert.equal(await page.isVisible("#compare-empty"), false);
  // The markup keyword's analysis found no posts: named apart, not drawn as an empty bar.
  assert.ok(!bars.labels.includes(markup), `no empty bar: ${bars.labels}`);
  assert.match(await page.textContent("#compare-no-posts"), /^No posts found in the latest analysis of “.+”\.$/);
  const options = await page.$$eval("#detail-keyword option", (os) => os.map((o) => o.textContent));
  assert.ok(options.every((o) => /: (1 analysis|\d+ analyses)$/.test(o) && !/: 1 analyses$/.test(o)), `${options}`);
  // The detail opened on a keyword with posts, whatever the order.
  assert.notEqual(await page.inputValue("#detail-keyword"), markup);
});

await step("untrusted text stays text", async () => {
  assert.ok((await page.textContent("#compare-no-posts")).includes(markup), "the markup keyword is listed, as text");
  const options = await page.$$eval("#detail-keyword option", (os) => os.map((o) => o.textContent));
  assert.ok(options.some((o) => o.startsWith(markup)));
  assert.equal(await page.$$eval("img", (imgs) => imgs.length), 0, "no element was injected");
});

await step("a keyword's trend and per-post confidence are drawn", async () => {
  // A series' key: keyword, subreddits ("+"-joined) and window, a line each.
  await page.selectOption("#detail-keyword", "climate\n\nall");
  await page.waitForFunction(() => {
    const trend = Chart.getChart("trend-chart");
    const scatter = Chart.getChart("confidence-chart");
    return trend && trend.data.labels.length >= 2 && scatter &&
      scatter.data.datasets.some((d) => d.data.length > 0);
  });
  const trend = await chartData("trend-chart");
  assert.equal(trend.datasets.length, 6);
  const dots = await chartData("confidence-chart");
  const posts = dots.datasets.reduce((n, d) => n + d.length, 0);
  assert.ok(posts >= 100, `one dot per post of the latest analysis: ${posts}`);
  assert.ok(dots.datasets.flat().every((p) => p.y > 0 && p.y <= 1));
  const uncertain = await page.$$eval("#uncertain-posts tbody tr", (trs) => trs.length);
  assert.equal(uncertain, 10);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-csv")]);
  assert.match(download.suggestedFilename(), /^moodwire-climate-analyses\.csv$/);
  const csv = readFileSync(await download.path(), "utf8").trimEnd().split("\r\n");
  assert.equal(csv[0].split(",").length, 6 + 3 * 6, csv[0]);
  assert.ok(csv[0].startsWith("keyword,subreddits,window,analysis_id,analyzed_at,posts,sadness_pct,"), csv[0]);
  assert.equal(csv.length - 1, trend.labels.length, "one row per stored analysis");
  for (const row of csv.slice(1)) {
    const fields = row.split(",");
    assert.deepEqual(fields.slice(0, 3), ["climate", "", "all"]);
    const pcts = [6, 9, 12, 15, 18, 21].map((i) => Number(fields[i]));
    assert.ok(Math.abs(pcts.reduce((a, b) => a + b, 0) - 100) <= 0.1, row);
  }
  await page.hover("#confidence-chart", { position: { x: 100, y: 100 } });
  await page.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });
});

await step("subreddits and a window narrow the question and make a series of their own", async () => {
  await page.fill("#keyword", "work");
  await page.fill("#limit", "500");
  await page.fill("#subreddits", "r/jobs, RemoteWork");
  await page.selectOption("#window", "month");
  await page.click("#analyze");
  await page.waitForFunction(() =>
    document.getElementById("result-meta").textContent.includes("about “work” in r/jobs, r/remotework · from the last month"));
  const meta = await page.$$eval("#example-posts li .meta", (spans) => spans.map((s) => s.textContent));
  assert.ok(meta.length > 0, "the scoped answer has examples");
  for (const line of meta) assert.match(line, /^ r\/(jobs|remotework) ·/i, line);
  const scoped = "work (in r/jobs, r/remotework · from the last month)";
  await page.waitForFunction((label) => {
    const chart = Chart.getChart("keywords-chart");
    return chart && chart.data.labels.includes(label);
  }, scoped, { timeout: 45_000 });
  await page.selectOption("#detail-keyword", "work\njobs+remotework\nmonth");
  await page.waitForFunction(() => {
    const trend = Chart.getChart("trend-chart");
    return trend && trend.data.labels.length === 1;
  });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-csv")]);
  assert.equal(download.suggestedFilename(), "moodwire-work-jobs-remotework-month-analyses.csv");
  const csv = readFileSync(await download.path(), "utf8").trimEnd().split("\r\n");
  assert.equal(csv.length, 2, "the one scoped analysis, not another scope's");
  assert.deepEqual(csv[1].split(",").slice(0, 3), ["work", "jobs+remotework", "month"]);
  await page.fill("#subreddits", "");
  await page.selectOption("#window", "all");
});

await step("nothing went wrong in the page (errors, CSP violations, dialogs)", async () => {
  assert.deepEqual(problems, []);
});

await browser.close();
