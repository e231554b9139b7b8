// Stack output (BCC's multi-line and folded forms) and the flame graph, which
// is opened in a real headless browser (Debian's chromium through
// puppeteer-core): frames drawn, hover details, click to zoom, search.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { flameFrames, flameGraphHtml, flameGraphSvg } from "../../src/report/flamegraph.ts";
import { formatFolded, formatStacks, parseFolded, type StackSample } from "../../src/report/stacks.ts";

// A workload's stacks as a profiler gives them: leaf first, kernel and user apart.
const SAMPLES: StackSample[] = [
  { user: ["inner_loop", "compute_a", "main", "__libc_start_main", "_start"], count: 600, comm: "busy", pid: 4242 },
  { user: ["compute_b", "main", "__libc_start_main", "_start"], count: 300, comm: "busy", pid: 4242 },
  { user: ["compute_a", "main", "__libc_start_main", "_start"], count: 50, comm: "busy", pid: 4242 },
  { kernel: ["do_nanosleep", "hrtimer_nanosleep", "entry_SYSCALL_64"], user: ["clock_nanosleep", "main", "_start"], count: 40, comm: "sleeper", pid: 77 },
  { kernel: "missed", user: ["<script> & \"quotes\"", "main", "_start"], count: 10, comm: "sleeper", pid: 77 },
];

describe("stack output", () => {
  test("BCC's multi-line form: kernel frames, -- when delimited, user frames, comm (pid), count; smallest count first", () => {
    const text = formatStacks(SAMPLES.slice(2, 4), { delimited: true });
    // The sort puts 40 before 50.
    assert.equal(
      text,
      [
        "    do_nanosleep", "    hrtimer_nanosleep", "    entry_SYSCALL_64", "    --", "    clock_nanosleep", "    main", "    _start",
        "    -                sleeper (77)", "        40", "",
        "    compute_a", "    main", "    __libc_start_main", "    _start",
        "    -                busy (4242)", "        50", "", "",
      ].join("\n"),
    );
    assert.match(formatStacks([SAMPLES[4]!]), /^    \[Missed Kernel Stack\]\n    <script>/);
    assert.doesNotMatch(formatStacks([SAMPLES[3]!]), /--/);
  });

  test("BCC's folded form: comm, user frames root first, - when delimited, kernel frames", () => {
    assert.equal(
      formatFolded(SAMPLES, { delimited: true, sort: "none" }).split("\n")[3],
      "sleeper;_start;main;clock_nanosleep;-;entry_SYSCALL_64;hrtimer_nanosleep;do_nanosleep 40",
    );
    const folded = formatFolded(SAMPLES);
    assert.equal(folded.split("\n")[0], "sleeper;_start;main;<script> & \"quotes\";[Missed Kernel Stack] 10");
    assert.deepEqual(parseFolded(folded).map((s) => s.count), [10, 40, 50, 300, 600]);
    assert.deepEqual(parseFolded("# comment\na;b 3\n\nbad\n")[0], { frames: ["a", "b"], count: 3 });
  });

  test("the flame graph's tree merges common prefixes and sums counts", () => {
    const frames = flameFrames(SAMPLES);
    const byName = (n: string) => frames.filter((f) => f.name === n);
    assert.equal(frames[0]!.value, 1000);
    assert.deepEqual(byName("busy").map((f) => [f.value, f.depth]), [[950, 1]]);
    assert.deepEqual(byName("compute_a").map((f) => f.value), [650]);
    assert.deepEqual(byName("main").map((f) => f.value).sort((a, b) => a - b), [50, 950]);
  });
});

// ---- the browser ----

function findChromium(): string | undefined {
  const candidates = ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"];
  const found = () => candidates.find((p) => existsSync(p));
  if (found()) return found();
  // The test installs the browser when it can (as root, Debian's package).
  if (process.getuid?.() === 0) {
    spawnSync("apt-get", ["install", "-y", "-q", "chromium"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  }
  return found();
}

const chromium = findChromium();

describe("the flame graph in headless chromium", { skip: !chromium && "chromium is not installed and could not be (apt-get install chromium)" }, () => {
  let dir: string;
  let browser: import("puppeteer-core").Browser;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tsbpf-flame-"));
    writeFileSync(join(dir, "flame.html"), flameGraphHtml(SAMPLES, { title: "busy & sleeper", subtitle: "profile -F 99" }));
    writeFileSync(join(dir, "flame.svg"), flameGraphSvg(SAMPLES, { stackFormat: { delimited: true } }));
    const puppeteer = (await import("puppeteer-core")).default;
    browser = await puppeteer.launch({ executablePath: chromium!, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  });
  after(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens a file and records every request that is not that file (there must be none). */
  async function open(file: string) {
    const page = await browser.newPage();
    await page.setViewport({ width: 1300, height: 600 });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`file://${join(dir, file)}`, { waitUntil: "load" });
    return { page, requests, errors };
  }

  const width = (page: import("puppeteer-core").Page, name: string) =>
    page.$eval(`g.frame[data-name="${name}"] rect`, (r) => Number(r.getAttribute("width")));
  const visible = (page: import("puppeteer-core").Page, name: string) =>
    page.$eval(`g.frame[data-name="${name}"]`, (g) => (globalThis as any).getComputedStyle(g).display !== "none");

  test("HTML: frames drawn, hover shows name, samples and share, a click zooms, search highlights", async () => {
    const { page, requests, errors } = await open("flame.html");
    try {
      assert.deepEqual(requests, [`file://${join(dir, "flame.html")}`], "the page loads nothing but itself");
      const names = await page.$$eval("g.frame", (gs) => gs.map((g) => g.getAttribute("data-name")));
      for (const n of ["all", "busy", "main", "compute_a", "compute_b", "inner_loop", "do_nanosleep", '<script> & "quotes"']) assert.ok(names.includes(n), `frame ${n} drawn`);
      assert.equal(await page.$eval('g.frame[data-name="inner_loop"] text', (t) => t.textContent), "inner_loop");
      assert.equal(await page.$$eval("script", (s) => s.filter((x) => x.src).length), 0);

      await page.hover('g.frame[data-name="compute_b"] rect');
      assert.equal(await page.$eval("#details", (d) => d.textContent), "compute_b (300 samples, 30.00%)");

      const before = { a: await width(page, "compute_a"), b: await width(page, "compute_b"), all: await width(page, "all") };
      assert.ok(before.a > 500 && before.a < before.all, `compute_a is ${before.a} wide of ${before.all}`);
      await page.click('g.frame[data-name="compute_a"] rect');
      assert.equal(await width(page, "compute_a"), before.all, "the clicked frame fills the width");
      assert.ok((await width(page, "inner_loop")) > 1000);
      assert.equal(await visible(page, "compute_b"), false, "a sibling is hidden");
      assert.equal(await page.$eval('g.frame[data-name="busy"]', (g) => g.classList.contains("parent")), true, "ancestors stay, dimmed");
      await page.click("#unzoom");
      assert.equal(await width(page, "compute_a"), before.a);
      assert.equal(await visible(page, "compute_b"), true);

      await page.type("#search-input", "compute");
      const hits = await page.$$eval("g.frame.match", (gs) => gs.map((g) => [g.getAttribute("data-name"), g.querySelector("rect")!.getAttribute("fill")]));
      assert.deepEqual(hits.map((h) => h[0]).sort(), ["compute_a", "compute_b"]);
      assert.ok(hits.every((h) => h[1] === "rgb(230,0,230)"));
      assert.equal(await page.$eval("#matched", (m) => m.textContent), "Matched: 95.00% (2 frames)");
      await page.keyboard.press("Escape");
      assert.equal(await page.$$eval("g.frame.match", (gs) => gs.length), 0);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  test("SVG: the same frames, zoom, and search through its Search button", async () => {
    const { page, requests, errors } = await open("flame.svg");
    try {
      assert.equal(requests.length, 1);
      assert.ok((await page.$$("g.frame")).length >= 15);
      assert.equal(await page.$$eval(`g.frame[data-name="-"]`, (gs) => gs.length), 1, "the user/kernel delimiter frame");
      const all = await width(page, "all");
      await page.click('g.frame[data-name="compute_b"] rect');
      assert.equal(await width(page, "compute_b"), all);
      assert.equal(await visible(page, "inner_loop"), false);
      await page.click('g.frame[data-name="all"] rect');
      assert.equal(await visible(page, "inner_loop"), true);
      page.once("dialog", (d) => void d.accept("nano"));
      await page.click("#search-button");
      await page.waitForSelector("g.frame.match");
      assert.deepEqual((await page.$$eval("g.frame.match", (gs) => gs.map((g) => g.getAttribute("data-name")))).sort(), ["clock_nanosleep", "do_nanosleep", "hrtimer_nanosleep"]);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
});
