// A self-contained, interactive flame graph, as an SVG file or an HTML page:
// no network, no external script or font. The design is flamegraph.pl's: the
// frames are drawn statically (so the file is a picture even where scripts do
// not run, with a native tooltip per frame), and a small script adds the rest:
// hover shows "name (N samples, P%)" on the details line, a click zooms into a
// frame (its ancestors stay, dimmed, to click back), search (a regular
// expression) paints the matching frames and tells what share they cover.
//
// Input: stacks root first with counts (parseFolded's shape), or StackSamples
// (leaf first, as stack maps give them: see stacks.ts).
import { foldedFrames, type StackSample, type StackFormatOptions } from "./stacks.ts";

export interface FoldedStack {
  /** Root first. */
  frames: readonly string[];
  count: number | bigint;
}

export interface FlameGraphOptions {
  /** The title above the graph. Default "Flame Graph". */
  title?: string;
  /** A line under the title (the command, the duration...). */
  subtitle?: string;
  /** What a sample is, in the details line: "samples" (default), "us" for off-CPU time... */
  countName?: string;
  /** Width of the drawing in SVG units (the HTML page scales it to the window). Default 1200. */
  width?: number;
  /** Frames narrower than this at full width are left out (their time stays in their parent). Default 0.1, as flamegraph.pl. */
  minWidth?: number;
  /** How StackSamples become folded frames (the "-" between user and kernel frames). */
  stackFormat?: StackFormatOptions;
}

interface Node {
  name: string;
  value: number;
  children: Map<string, Node>;
}

export interface FlameFrame {
  name: string;
  /** Samples before this frame among its siblings' subtrees (its x position, in samples). */
  start: number;
  value: number;
  /** 0 for the root ("all"). */
  depth: number;
}

function isFolded(s: FoldedStack | StackSample): s is FoldedStack {
  return Array.isArray((s as FoldedStack).frames) && !("kernel" in s) && !("user" in s) && !("comm" in s) && !("pid" in s);
}

/** Merges stacks into a tree and lays it out: frames in drawing order, siblings by name (as flamegraph.pl). */
export function flameFrames(stacks: Iterable<FoldedStack | StackSample>, opts: StackFormatOptions = {}): FlameFrame[] {
  const root: Node = { name: "all", value: 0, children: new Map() };
  for (const s of stacks) {
    const frames = isFolded(s) ? s.frames : foldedFrames(s, opts);
    const count = Number(s.count);
    if (!(count > 0)) continue;
    root.value += count;
    let node = root;
    for (const name of frames) {
      let child = node.children.get(name);
      if (!child) node.children.set(name, (child = { name, value: 0, children: new Map() }));
      child.value += count;
      node = child;
    }
  }
  const out: FlameFrame[] = [];
  const walk = (node: Node, start: number, depth: number) => {
    out.push({ name: node.name, start, value: node.value, depth });
    let at = start;
    for (const child of [...node.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      walk(child, at, depth + 1);
      at += child.value;
    }
  };
  walk(root, 0, 0);
  return out;
}

const xml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

// flamegraph.pl's "hot" palette, from a hash of the name so a frame keeps its colour between graphs.
function colour(name: string): string {
  if (name === "all" || name === "-" || name.startsWith("[Missed")) return "rgb(190,190,190)";
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  const v1 = ((h >>> 0) & 0xff) / 255;
  const v2 = ((h >>> 8) & 0xff) / 255;
  const v3 = ((h >>> 16) & 0xff) / 255;
  if (name.endsWith("_[k]")) return `rgb(${Math.round(200 + 55 * v3)},${Math.round(120 + 60 * v1)},${Math.round(30 * v2)})`;
  return `rgb(${Math.round(205 + 50 * v3)},${Math.round(230 * v1)},${Math.round(55 * v2)})`;
}

const FONT = 12;
const FRAME_H = 16;
const PAD_X = 10;
const CHAR_W = FONT * 0.59;

function label(name: string, width: number): string {
  const chars = Math.floor((width - 6) / CHAR_W);
  if (chars < 3) return "";
  return name.length <= chars ? name : name.slice(0, chars - 2) + "..";
}

// The script: plain ES5-level DOM code, the same in the SVG file and the HTML page.
const SCRIPT = String.raw`
(function () {
  var svg = document.getElementById("flamegraph");
  var W = +svg.getAttribute("data-width"), X = +svg.getAttribute("data-pad"), CW = +svg.getAttribute("data-char");
  var unit = svg.getAttribute("data-unit");
  var details = document.getElementById("details"), matched = document.getElementById("matched");
  var frames = [].slice.call(svg.querySelectorAll("g.frame")).map(function (g) {
    return { g: g, rect: g.querySelector("rect"), text: g.querySelector("text"), name: g.getAttribute("data-name"),
      s: +g.getAttribute("data-s"), v: +g.getAttribute("data-v"), d: +g.getAttribute("data-d"), fill: g.querySelector("rect").getAttribute("fill") };
  });
  var total = frames.length ? frames[0].v : 0, byG = new Map();
  frames.forEach(function (f) { byG.set(f.g, f); });
  function frameOf(t) { var g = t && t.closest ? t.closest("g.frame") : null; return g ? byG.get(g) : undefined; }
  function pct(v) { return total ? (100 * v / total).toFixed(2) : "0.00"; }
  function describe(f) { return f.name + " (" + f.v.toLocaleString("en-US") + " " + unit + ", " + pct(f.v) + "%)"; }
  function fit(f, w) {
    var n = Math.floor((w - 6) / CW);
    f.text.textContent = n < 3 ? "" : f.name.length <= n ? f.name : f.name.slice(0, n - 2) + "..";
  }
  function place(f, x, w) {
    f.rect.setAttribute("x", x.toFixed(2)); f.rect.setAttribute("width", w.toFixed(2));
    f.text.setAttribute("x", (x + 3).toFixed(2)); fit(f, w);
  }
  var zoomed = null;
  function zoom(z) {
    zoomed = z && z.d > 0 ? z : null;
    z = z || frames[0];
    frames.forEach(function (f) {
      var inside = f.d >= z.d && f.s >= z.s && f.s + f.v <= z.s + z.v;
      var above = f.d < z.d && f.s <= z.s && f.s + f.v >= z.s + z.v;
      if (inside) {
        var w = f.v / z.v * W;
        f.g.style.display = w < 0.1 ? "none" : "";
        f.g.classList.remove("parent");
        place(f, X + (f.s - z.s) / z.v * W, w);
      } else if (above) {
        f.g.style.display = ""; f.g.classList.add("parent"); place(f, X, W);
      } else {
        f.g.style.display = "none";
      }
    });
    document.getElementById("unzoom").classList.toggle("hide", !zoomed);
  }
  function search(term) {
    var re = null;
    if (term) { try { re = new RegExp(term); } catch (e) { re = new RegExp(term.replace(/[.*+?^$()|[\]\\{}]/g, "\\$&")); } }
    var hits = [];
    frames.forEach(function (f) {
      var hit = !!re && f.d > 0 && re.test(f.name);
      f.g.classList.toggle("match", hit);
      f.rect.setAttribute("fill", hit ? "rgb(230,0,230)" : f.fill);
      if (hit) hits.push(f);
    });
    // The share of samples under some match: nested matches count once.
    hits.sort(function (a, b) { return a.s - b.s || b.v - a.v; });
    var covered = 0, end = -1;
    hits.forEach(function (f) { if (f.s >= end) { covered += f.v; end = f.s + f.v; } else if (f.s + f.v > end) { covered += f.s + f.v - end; end = f.s + f.v; } });
    matched.textContent = re ? "Matched: " + pct(covered) + "% (" + hits.length + " frames)" : "";
    svg.setAttribute("data-search", term || "");
    var box = document.getElementById("search-input");
    if (box && box.value !== (term || "")) box.value = term || "";
  }
  svg.addEventListener("mouseover", function (e) { var f = frameOf(e.target); if (f) details.textContent = describe(f); });
  svg.addEventListener("mouseout", function (e) { if (frameOf(e.target)) details.textContent = " "; });
  svg.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#unzoom")) return zoom(null);
    if (e.target.closest && e.target.closest("#search-button")) {
      var term = window.prompt("Search for frames (a regular expression)", svg.getAttribute("data-search") || "");
      if (term !== null) search(term);
      return;
    }
    var f = frameOf(e.target);
    if (f) zoom(f.d === 0 ? null : f);
  });
  var box = document.getElementById("search-input");
  if (box) box.addEventListener("input", function () { search(box.value); });
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "f") {
      e.preventDefault();
      if (box) box.focus(); else { var t = window.prompt("Search for frames (a regular expression)", ""); if (t !== null) search(t); }
    } else if (e.key === "Escape") { zoom(null); search(""); }
  });
  window.flamegraph = { zoom: function (name) { var f = frames.filter(function (x) { return x.name === name; })[0]; zoom(f || null); }, search: search };
})();
`;

const STYLE = `
#flamegraph text { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: ${FONT}px; fill: rgb(0,0,0); }
#flamegraph .title { font-size: ${FONT + 5}px; }
#flamegraph g.frame { cursor: pointer; }
#flamegraph g.frame:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }
#flamegraph g.frame text { pointer-events: none; }
#flamegraph g.parent { opacity: 0.5; }
#flamegraph .button { cursor: pointer; fill: rgb(0,0,160); }
#flamegraph .hide { display: none; }
`;

function svgMarkup(stacks: Iterable<FoldedStack | StackSample>, opts: FlameGraphOptions, standalone: boolean): string {
  const width = opts.width ?? 1200;
  const inner = width - 2 * PAD_X;
  const all = flameFrames(stacks, opts.stackFormat);
  const total = all[0]!.value;
  const minWidth = opts.minWidth ?? 0.1;
  const shown = all.filter((f) => f.depth === 0 || (total > 0 && (f.value / total) * inner >= minWidth));
  const depth = shown.reduce((m, f) => Math.max(m, f.depth), 0);
  const top = FONT * 3 + (opts.subtitle ? FONT + 4 : 0);
  const bottom = FONT * 2 + 10;
  const height = top + (depth + 1) * FRAME_H + bottom;
  const unit = opts.countName ?? "samples";
  const out: string[] = [];
  out.push(
    `<svg id="flamegraph" version="1.1" width="${standalone ? width : "100%"}" ${standalone ? `height="${height}" ` : ""}viewBox="0 0 ${width} ${height}" ` +
      `xmlns="http://www.w3.org/2000/svg" data-width="${inner}" data-pad="${PAD_X}" data-char="${CHAR_W}" data-unit="${xml(unit)}">`,
  );
  if (standalone) out.push(`<style>${STYLE}</style>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="rgb(248,248,238)"/>`);
  out.push(`<text class="title" x="${width / 2}" y="${FONT * 2}" text-anchor="middle">${xml(opts.title ?? "Flame Graph")}</text>`);
  if (opts.subtitle) out.push(`<text x="${width / 2}" y="${FONT * 3 + 2}" text-anchor="middle" fill="rgb(160,160,160)">${xml(opts.subtitle)}</text>`);
  out.push(`<text id="unzoom" class="button hide" x="${PAD_X}" y="${FONT * 2}">Reset Zoom</text>`);
  out.push(`<text id="search-button" class="button" x="${width - PAD_X - 100}" y="${FONT * 2}">Search</text>`);
  out.push(`<text id="matched" x="${width - PAD_X - 100}" y="${height - 10}"></text>`);
  out.push(`<text id="details" x="${PAD_X}" y="${height - 10}"> </text>`);
  for (const f of shown) {
    const x = PAD_X + (total ? (f.start / total) * inner : 0);
    const w = total ? (f.value / total) * inner : inner;
    const y = height - bottom - (f.depth + 1) * FRAME_H;
    const pct = total ? ((100 * f.value) / total).toFixed(2) : "0.00";
    out.push(
      `<g class="frame" data-name="${xml(f.name)}" data-s="${f.start}" data-v="${f.value}" data-d="${f.depth}">` +
        `<title>${xml(f.name)} (${f.value.toLocaleString("en-US")} ${xml(unit)}, ${pct}%)</title>` +
        `<rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${FRAME_H - 1}" rx="2" ry="2" fill="${colour(f.name)}"/>` +
        `<text x="${(x + 3).toFixed(2)}" y="${y + FRAME_H - 4.5}">${xml(label(f.name, w))}</text></g>`,
    );
  }
  // In an SVG file the script must be CDATA; "]]>" cannot occur in it.
  if (standalone) out.push(`<script type="text/ecmascript"><![CDATA[${SCRIPT}]]></script>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** A flame graph as a standalone, interactive SVG document (flamegraph.pl's kind of file). */
export function flameGraphSvg(stacks: Iterable<FoldedStack | StackSample>, opts: FlameGraphOptions = {}): string {
  return `<?xml version="1.0" standalone="no"?>\n` + svgMarkup(stacks, opts, true);
}

/** A flame graph as one HTML page: the SVG inline, a search box, the same script; it fits the window's width. */
export function flameGraphHtml(stacks: Iterable<FoldedStack | StackSample>, opts: FlameGraphOptions = {}): string {
  const title = xml(opts.title ?? "Flame Graph");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
body { margin: 0; background: rgb(248,248,238); font-family: Verdana, "DejaVu Sans", sans-serif; }
#bar { display: flex; gap: 1em; align-items: center; padding: 6px 10px; font-size: 13px; }
#search-input { flex: 0 1 24em; font: inherit; padding: 2px 4px; }
${STYLE}
</style>
</head>
<body>
<div id="bar"><label for="search-input">Search</label><input id="search-input" type="search" placeholder="regular expression (Ctrl-F)" autocomplete="off"><span>Click a frame to zoom, Esc to reset.</span></div>
${svgMarkup(stacks, opts, false)}<script>${SCRIPT.replace(/<\//g, "<\\/")}</script>
</body>
</html>
`;
}
