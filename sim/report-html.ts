// The HTML report of a run (`xfarm sim --html`, `xfarm sim --report`): one
// file a browser opens without network access. The summary and tables are
// rendered here; the charts are drawn in the page by uPlot from the results
// embedded as JSON, with uPlot's script and styles inlined from
// node_modules.
import fs from "node:fs";
import { createRequire } from "node:module";
import { escapeXML } from "ltx";
import type { SimResults } from "./results.js";
import type { Action } from "./scenario.js";
import { COUNTERS, HISTOGRAMS, type SeriesRow } from "./stats.js";

/** A column of the time series a chart can draw (x is always `t`). */
type SeriesKey = Exclude<keyof SeriesRow, "t">;

interface ChartLine {
  key: SeriesKey;
  label: string;
  color: string;
  /** Canvas dash pattern, px; solid without. */
  dash?: number[];
}

interface ChartSpec {
  title: string;
  /** The y axis label. */
  unit: string;
  /** "count": from 0 with whole ticks; "log": log scale, as latencies span decades; "auto": uPlot's own range. */
  scale: "count" | "log" | "auto";
  lines: ChartLine[];
}

const BLUE = "#1f77b4";
const ORANGE = "#ff7f0e";
const GREEN = "#2ca02c";
const RED = "#d62728";
const PURPLE = "#9467bd";
// Medians: a lighter shade of their p99's colour, as the legend shows no dash.
const LIGHT_BLUE = "#7fb8e0";
const LIGHT_GREEN = "#8fd18f";
// For lines that often lie on another (open sockets on sessions, received on sent) and for medians.
const DASHED = [6, 4];

// Series rows hold per-second deltas of the counters (Merger.row), so the
// rate charts draw them as they are.
const CHARTS: ChartSpec[] = [
  {
    title: "Sessions, online users and open sockets",
    unit: "users / sockets",
    scale: "count",
    lines: [
      { key: "sessions", label: "sessions", color: BLUE },
      { key: "online", label: "online", color: GREEN },
      { key: "open", label: "open sockets", color: ORANGE, dash: DASHED },
    ],
  },
  {
    title: "Arrivals, logins and redirects per second",
    unit: "per second",
    scale: "count",
    lines: [
      { key: "arrived", label: "arrivals/s", color: ORANGE, dash: DASHED },
      { key: "logins", label: "logins/s", color: BLUE },
      { key: "redirects", label: "redirects/s", color: PURPLE },
    ],
  },
  {
    title: "Chat messages per second (to online and offline users; received live and delayed)",
    unit: "per second",
    scale: "count",
    lines: [
      { key: "msgs_sent", label: "sent/s", color: BLUE },
      { key: "msgs_received", label: "received/s", color: GREEN, dash: DASHED },
    ],
  },
  {
    title: "Latency percentiles of each second (ms, log scale)",
    unit: "ms",
    scale: "log",
    lines: [
      { key: "login_p50", label: "login p50", color: LIGHT_BLUE, dash: DASHED },
      { key: "login_p99", label: "login p99", color: BLUE },
      { key: "msg_p50", label: "message p50", color: LIGHT_GREEN, dash: DASHED },
      { key: "msg_p99", label: "message p99", color: GREEN },
      { key: "connect_p99", label: "connect p99", color: ORANGE },
    ],
  },
  {
    title: "Errors per second",
    unit: "per second",
    scale: "count",
    lines: [{ key: "errors", label: "errors/s", color: RED }],
  },
  {
    title: "Simulator memory (RSS of all workers)",
    unit: "MB",
    scale: "auto",
    lines: [{ key: "sim_rss_mb", label: "RSS MB", color: PURPLE }],
  },
];

const require = createRequire(import.meta.url);

/** A file of an installed package, as text (resolved like an import, so from dist/ and from the sources alike). */
function packageFile(spec: string): string {
  return fs.readFileSync(require.resolve(spec), "utf8");
}

const esc = (s: string | number): string => escapeXML(String(s));
const count = (n: number): string => esc(n.toLocaleString("en-US"));
const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** JSON inside <script>: "<" escaped, so no "</script>" in the data can end the element. */
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, "\\u003c");

export function renderHtmlReport(r: SimResults): string {
  // Inlined as a script element's text: only "</script" could end it early.
  const uplotJs = packageFile("uplot/dist/uPlot.iife.min.js").replace(/<\/script/gi, "<\\/script");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xfarm sim: ${esc(r.target)}, ${esc(r.started)}</title>
<style>${packageFile("uplot/dist/uPlot.min.css")}</style>
<style>${STYLE}</style>
</head>
<body>
<pre id="report-errors"></pre>
<script>${ERROR_HOOK}</script>
<h1>xfarm sim: ${esc(r.target)}</h1>
${summary(r)}
<h2>Totals</h2>
${totals(r)}
<h2>Latency, whole run (ms)</h2>
${latencyTable(r)}
<div class="side-by-side">
<section><h2>Errors by kind</h2>${countTable(r.totals.errors_by_kind, "kind")}</section>
<section><h2>Redirects by target</h2>${countTable(r.totals.redirects_by_target, "target")}</section>
</div>
<h2>Sync points</h2>
${syncTable(r)}
<h2>Over time</h2>
<p class="note">One point a second, at the end of the second; x: seconds since the start. Hover to read values; the cursor follows in every chart.</p>
<div id="charts"></div>
<script type="application/json" id="report-data">${scriptJson(r)}</script>
<script type="application/json" id="report-charts">${scriptJson(CHARTS)}</script>
<script>${uplotJs}</script>
<script>${DRAW_CHARTS}</script>
</body>
</html>
`;
}

// A duration limit or an interrupt may be intended; the counters (cut) tell what it left undone.
const ENDED_BY_CLASS: Record<SimResults["ended_by"], string> = { done: "ok", duration: "", interrupt: "", error: "bad" };

function summary(r: SimResults): string {
  const sc = r.scenario;
  const workers = sc.run.workers === 0 ? "none (in process)" : String(sc.run.workers);
  const rows: [string, string][] = [
    ["target", `${esc(r.target)}, domain ${esc(sc.server.domain)}`],
    ["security", `${esc(sc.server.security)}, ${esc(sc.server.mechanism)}`],
    ["users", `${count(r.planned_users)} planned (users.count ${count(sc.users.count)}), peak sessions ${count(r.totals.peak_sessions)}`],
    ["arrival", esc(sc.arrival.map((p) => `${p.rate}/s for ${p.duration} s`).join(", "))],
    ["actions", esc(sc.actions.map(describeAction).join(" → ") || "none")],
    ["workers", esc(workers)],
    ["started", esc(r.started)],
    ["finished", esc(r.finished)],
    ["elapsed", `${esc(r.elapsed_s.toFixed(1))} s`],
    ["ended by", `<span class="${ENDED_BY_CLASS[r.ended_by]}">${esc(r.ended_by)}</span>`],
    [
      "simulator",
      `peak RSS ${esc(r.sim.peak_rss_mb)} MB` + (r.sim.kb_per_session === null ? "" : `, ${esc(r.sim.kb_per_session)} KB per session`),
    ],
  ];
  return `<dl class="summary">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

function describeAction(a: Action): string {
  switch (a.type) {
    case "think":
      return `think ${a.seconds} s${a.random ? " (random)" : ""}`;
    case "chat":
      return `chat to ${a.to} ${a.total_rate ? `${a.total_rate}/s in all` : `${a.rate}/s each`}`;
    default:
      return a.type;
  }
}

/** Counters that show a problem when not zero. */
const BAD_WHEN_NONZERO = new Set(["login_failed", "dropped", "errors", "msgs_missing", "msgs_lost", "msgs_duplicated"]);

function totals(r: SimResults): string {
  const t = r.totals;
  const entries: [string, number][] = [...COUNTERS.map((c): [string, number] => [c, t[c]]), ["peak_sessions", t.peak_sessions], ["msgs_missing", t.msgs_missing], ["msgs_lost_in_flight", t.msgs_lost_in_flight], ["msgs_lost", t.msgs_lost]];
  const cells = entries.map(([k, v]) => `<div${BAD_WHEN_NONZERO.has(k) && v !== 0 ? ' class="bad"' : ""}><span>${esc(k)}</span><b>${count(v)}</b></div>`);
  return `<div class="counters">${cells.join("")}</div>`;
}

function latencyTable(r: SimResults): string {
  const cols = ["min", "mean", "p50", "p90", "p99", "p99.9", "max"] as const;
  const head = `<tr><th>histogram</th><th>count</th>${cols.map((c) => `<th>${c}</th>`).join("")}</tr>`;
  const rows = HISTOGRAMS.map((name) => {
    const p = r.latency_ms[name];
    const values = cols.map((c) => `<td>${p.count ? esc(ms(p[c])) : "–"}</td>`).join("");
    return `<tr><th>${name}</th><td>${count(p.count)}</td>${values}</tr>`;
  });
  return `<table class="numbers">${head}${rows.join("")}</table>`;
}

/** A name → count map as a table, largest first. */
function countTable(counts: Record<string, number>, what: string): string {
  const entries = Object.entries(counts).sort(([, a], [, b]) => b - a);
  if (!entries.length) return `<p class="none">none</p>`;
  const rows = entries.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${count(v)}</td></tr>`).join("");
  return `<table class="numbers"><tr><th>${what}</th><th>count</th></tr>${rows}</table>`;
}

function syncTable(r: SimResults): string {
  if (!r.syncs.length) return `<p class="none">none in this scenario</p>`;
  const rows = r.syncs.map(
    (s) =>
      `<tr><th>${esc(s.point)}</th><td>${s.released_s === null ? "never" : esc(s.released_s)}</td>` +
      `<td class="${s.complete ? "ok" : "bad"}">${s.complete ? "complete" : "timeout"}</td><td>${count(s.reached)}</td><td>${count(s.missed)}</td></tr>`,
  );
  return `<table class="numbers"><tr><th>point</th><th>released at (s)</th><th>outcome</th><th>reached</th><th>missed</th></tr>${rows.join("")}</table>`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 20px auto; max-width: 1300px; padding: 0 20px; color: #222; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 22px 0 8px; }
#report-errors { color: #b00; background: #fee; border: 1px solid #b00; padding: 8px; white-space: pre-wrap; }
#report-errors:empty { display: none; }
.summary { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
.summary dt { color: #666; }
.summary dd { margin: 0; }
.counters { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 2px 16px; }
.counters div { display: flex; justify-content: space-between; border-bottom: 1px solid #eee; padding: 2px 0; }
.counters span { color: #555; }
table.numbers { border-collapse: collapse; }
table.numbers th, table.numbers td { border-bottom: 1px solid #ddd; padding: 3px 10px; }
table.numbers td { text-align: right; font-variant-numeric: tabular-nums; }
table.numbers th { text-align: left; font-weight: 600; }
.side-by-side { display: flex; flex-wrap: wrap; gap: 0 48px; }
.ok { color: #1a7f37; }
.bad, .bad b { color: #c00; font-weight: 600; }
.none, .note { color: #666; }
#charts .chart { margin: 0 0 18px; }
.u-title { font-size: 15px; font-weight: 600; }
`;

// First in <body>, before any other script: an error anywhere after it,
// in uPlot or in drawing the charts, shows on the page.
const ERROR_HOOK = `window.onerror = function (message, source, line, column) {
  document.getElementById("report-errors").textContent += message + (source ? " (" + source + ":" + line + ":" + column + ")" : "") + "\\n";
};`;

// Draws every chart of #report-charts from the series of #report-data, and
// once each has been drawn sets body[data-charts] to their number (what a
// headless browser check waits for).
const DRAW_CHARTS = `(function () {
  var results = JSON.parse(document.getElementById("report-data").textContent);
  var specs = JSON.parse(document.getElementById("report-charts").textContent);
  var rows = results.series;
  var x = rows.map(function (r) { return r.t; });
  var box = document.getElementById("charts");
  var HEIGHT = 260;
  var width = function () { return Math.max(400, box.clientWidth); };
  // Whole steps for counts and seconds: 1, 2, 5, 10, 20, 50, ...
  var wholeIncrs = [];
  for (var m = 1; m <= 1e9; m *= 10) wholeIncrs.push(m, 2 * m, 5 * m);
  var drawn = 0;
  var charts = specs.map(function (spec) {
    var columns = spec.lines.map(function (l) { return rows.map(function (r) { return r[l.key]; }); });
    var y = spec.scale === "log" ? { distr: 3 } : spec.scale === "count" ? { range: function (u, min, max) { return [0, Math.max(1, max * 1.05)]; } } : {};
    var yAxis = { label: spec.unit, size: 70 };
    if (spec.scale === "count") yAxis.incrs = wholeIncrs;
    var el = document.createElement("div");
    el.className = "chart";
    box.appendChild(el);
    var counted = false;
    return new uPlot({
      title: spec.title,
      width: width(),
      height: HEIGHT,
      cursor: { sync: { key: "xfarm-sim" } },
      scales: { x: { time: false }, y: y },
      axes: [{ label: "seconds since start", incrs: wholeIncrs }, yAxis],
      series: [{ label: "second" }].concat(spec.lines.map(function (l) {
        var s = { label: l.label, stroke: l.color, width: 2 };
        if (l.dash) s.dash = l.dash;
        return s;
      })),
      hooks: {
        draw: [function () {
          if (counted) return;
          counted = true;
          if (++drawn === specs.length) document.body.dataset.charts = String(drawn);
        }],
      },
    }, [x].concat(columns), el);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.setSize({ width: width(), height: HEIGHT }); });
  });
})();`;
