// The HTML report of `xfarm sim` (sim/report-html.ts): a short real run
// against a farm writes it with --html, `--report` renders the same from
// the JSON, and headless Chromium opens it from a file, without network
// access, and draws every chart without a script error. Text from the
// results is escaped, in the page and in the embedded data.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderHtmlReport } from "../sim/report-html.js";
import type { SimResults } from "../sim/results.js";
import { Farm } from "./harness/farm.js";
import { runCli } from "./sim-expect.js";

const USERS = 30;
/** The charts the report draws: sessions, rates, messages, latency, errors, memory. */
const CHARTS = 6;

const CHROMIUM = ["chromium", "chromium-browser"]
  .flatMap((name) => (process.env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, name)))
  .find((file) => fs.existsSync(file));
// CI installs Chromium: there a missing one fails the test rather than skipping it.
const browserIt = CHROMIUM || process.env.CI ? it : it.skip;

/** The page as Chromium has it once its scripts ran (their timers and animation frames included). */
async function renderedDom(htmlFile: string): Promise<string> {
  if (!CHROMIUM) throw new Error("chromium not found on PATH: the HTML report test needs it (apt-get install chromium)");
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-chromium-"));
  try {
    const { stdout } = await promisify(execFile)(
      CHROMIUM,
      ["--headless=new", "--no-sandbox", "--disable-gpu", `--user-data-dir=${profile}`, "--virtual-time-budget=5000", "--dump-dom", pathToFileURL(htmlFile).href],
      { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

function expectChartsDrawn(dom: string): void {
  expect(dom).toContain('<pre id="report-errors"></pre>');
  expect(dom).toContain(`data-charts="${CHARTS}"`);
  expect(dom.match(/<div class="uplot/g)).toHaveLength(CHARTS);
  expect(dom.match(/<canvas/g)).toHaveLength(CHARTS);
}

describe("the HTML report of xfarm sim", () => {
  let farm: Farm;
  let json: string;
  let html: string;
  let results: SimResults;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, logLevel: "info" });
    await farm.start();
    const accounts = await farm.cli("sim", "--create-accounts", "--users", String(USERS), "--iterations", "1024");
    expect(accounts.code, accounts.stderr).toBe(0);
    json = path.join(farm.dir, "sim.json");
    html = path.join(farm.dir, "sim.html");
    // About 4 s: arrivals over 1 s, 2 s of chat, 1 s held; a few seconds of every chart.
    const run = await runCli([
      "sim",
      "--port", String(farm.c2sPorts[0]!.port),
      "--ca", process.env.XFARM_TEST_CERT!,
      "--users", String(USERS),
      "--rate", "30",
      "--chat-rate", "2",
      "--chat-duration", "2",
      "--hold", "1",
      "--workers", "1",
      "--duration", "60",
      "-q",
      "--out", json,
      "--html", html,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`report: ${html}\n`);
    results = JSON.parse(fs.readFileSync(json, "utf8")) as SimResults;
  }, 120_000);

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("is written at the end of a run, and --report renders the same from its JSON", async () => {
    expect(results.totals.logged_in).toBe(USERS);
    expect(results.totals.msgs_received).toBeGreaterThan(0);
    const again = path.join(farm.dir, "again.html");
    const r = await runCli(["sim", "--report", json, "--html", again]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`report: ${again}\n`);
    expect(fs.readFileSync(again, "utf8")).toBe(fs.readFileSync(html, "utf8"));
  });

  it("lists --html and --report in the help; --report needs --html and results", async () => {
    const help = await runCli(["sim", "--help"]);
    expect(help.stdout).toMatch(/--html <file>/);
    expect(help.stdout).toMatch(/--report <results>/);
    const noHtml = await runCli(["sim", "--report", json]);
    expect(noHtml.code).toBe(1);
    expect(noHtml.stderr).toContain("--report needs --html FILE");
    const notResults = path.join(farm.dir, "other.json");
    fs.writeFileSync(notResults, JSON.stringify({ format: "something-else" }));
    const wrong = await runCli(["sim", "--report", notResults, "--html", path.join(farm.dir, "x.html")]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("not xfarm sim results");
  });

  it("holds the summary and tables, and needs nothing from the network", () => {
    const page = fs.readFileSync(html, "utf8");
    expect(page).toContain(`<h1>xfarm sim: ${results.target}</h1>`);
    for (const heading of ["Totals", "Latency, whole run (ms)", "Errors by kind", "Redirects by target", "Sync points", "Over time"]) {
      expect(page).toContain(`<h2>${heading}</h2>`);
    }
    expect(page).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
  });

  browserIt("draws every chart in headless Chromium, without a script error", { timeout: 90_000 }, async () => {
    expectChartsDrawn(await renderedDom(html));
  });

  browserIt("escapes text from the results, in the page and in the embedded data", { timeout: 90_000 }, async () => {
    const hostile: SimResults = structuredClone(results);
    hostile.target = "127.0.0.1:5222 <b>bold</b> & co";
    hostile.totals.errors_by_kind = { '<img src=x onerror="document.title=1">': 3 };
    hostile.totals.redirects_by_target = { "</script><script>document.body.dataset.charts='0'</script>": 2 };
    const page = renderHtmlReport(hostile);
    expect(page).toContain("127.0.0.1:5222 &lt;b&gt;bold&lt;/b&gt; &amp; co");
    expect(page).toContain("&lt;img src=x onerror=&quot;document.title=1&quot;&gt;");
    expect(page).not.toContain("<img");
    expect(page).not.toContain("<script>document");
    const data = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(page)![1]!;
    expect(JSON.parse(data)).toEqual(hostile);

    const file = path.join(farm.dir, "hostile.html");
    fs.writeFileSync(file, page);
    const dom = await renderedDom(file);
    expectChartsDrawn(dom);
    expect(dom).not.toContain("<img");
    expect(dom).not.toContain("<b>bold");
  });
});
