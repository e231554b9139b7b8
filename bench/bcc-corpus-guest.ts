// BCC's tool corpus in the Debian guest kernels: tsbpf's figure beside BCC's own.
//   node --import tsx bench/bcc-corpus-guest.ts [6.1] [6.12]        (default: both)
// Needs Debian's python3-bpfcc/bpfcc-tools on the host, and BCC's repository for its tools when present (scripts/bcc-corpus.ts).
// For each kernel, two boots:
//   A. BCC 0.26, python3 and the kernel's headers staged in (bench/startup-guest.sh's staging):
//      each tool's Python runs up to BPF() with BCC's feature checks answered by the guest
//      kernel, and BCC compiles that text and loads every function (bench/bcc-corpus-guest.py):
//      BCC's own figure. The guest's text comes back to the host on a raw disk.
//   B. tsbpf loads every program of each tool, pre-compiled here for that kernel from the
//      guest's text (scripts/bcc-corpus.ts prepareGuestCorpus), and also from the host's text
//      (what test/guest/bcc-corpus.guest.ts counts).
// Prints a table per kernel. Each boot takes /tmp/tsbpf-kernel.lock; boot A runs for many minutes. The tools' text stays in temporary directories, never in the tree.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CORPUS, DRIVER, corpusSkipReason, corpusSource, extractionDir, loadGuestCorpus, prepareGuestCorpus, type Extracted } from "../scripts/bcc-corpus.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

interface Row {
  tool: string;
  ok: boolean;
  loaded: number;
  programs: number;
  stage?: string;
  reason?: string;
  ms?: number;
  same?: boolean;
}

/** In the guest (boot B): tsbpf's loads of each directory, "TSBPF-n {json}" lines. */
function inGuest(dirs: string[]): void {
  dirs.forEach((dir, n) => {
    const started = Date.now();
    const { results } = loadGuestCorpus(dir);
    for (const r of results) console.log(`TSBPF-${n} ${JSON.stringify(r)}`);
    console.log(`TSBPF-${n}-DONE ${Date.now() - started}`);
  });
}

function vmRun(args: string[], limitMs: number): Promise<{ status: number | null; stdout: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    // Each boot takes the kernel-test lock (as bench/tools-guest.sh does): guests cost both cores.
    const child = spawn("flock", ["/tmp/tsbpf-kernel.lock", process.execPath, join(ROOT, "bin", "tsbpf.js"), "vm", "run", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      for (const l of c.toString().split("\n")) if (/^(BCC|TSBPF-\d) \{/.test(l)) process.stderr.write(l[0] === "B" ? "b" : "t");
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), limitMs);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      process.stderr.write("\n");
      resolve({ status, stdout, ms: Date.now() - started });
    });
  });
}

const rowsOf = (stdout: string, prefix: string): Map<string, Row> =>
  new Map(stdout.split("\n").filter((l) => l.startsWith(`${prefix} {`)).map((l) => JSON.parse(l.slice(prefix.length + 1)) as Row).map((x) => [x.tool, x]));
const cell = (r: Row | undefined): string => (!r ? "–" : r.ok ? `ok ${r.loaded}/${r.programs}` : r.stage === "extract" ? "no text" : `FAIL ${r.loaded}/${r.programs}`);
const count = (m: Map<string, Row>): number => [...m.values()].filter((x) => x.ok && TOOLS.some((t) => t.tool === x.tool)).length;

// TSBPF_BCC_CORPUS_TOOLS=a,b,c: only those tools (BCC takes about half a minute of TCG per tool).
const TOOLS = process.env.TSBPF_BCC_CORPUS_TOOLS ? CORPUS.filter((t) => process.env.TSBPF_BCC_CORPUS_TOOLS!.split(",").includes(t.tool)) : CORPUS;

async function bench(series: string): Promise<void> {
  // bench/startup-guest.sh stages BCC's runtime and the kernel's headers (once per release) and says where.
  const stage = execFileSync("bash", [join(ROOT, "bench", "startup-guest.sh"), series], { env: { ...process.env, TSBPF_STAGE_ONLY: "1" }, encoding: "utf8" }).trim().split("\n").pop()!;
  const work = mkdtempSync(join(tmpdir(), "tsbpf-bcc-corpus-guest-"));
  try {
    // Boot A's directory: the corpus, the tools' Python and driver, the host's text and manifest.
    const a = join(work, "a");
    const [release] = await prepareGuestCorpus(join(work, "host-objects"), [series], { withText: true, log: (m) => console.error(m) });
    const hostDir = join(work, "host-objects", "bcc-corpus", release!);
    mkdirSync(join(a, "extract", "bcc-overlay"), { recursive: true });
    cpSync(hostDir, join(a, "host"), { recursive: true, filter: (p) => !p.endsWith(".o") });
    const ext = extractionDir(corpusSource()!);
    for (const f of readdirSync(ext)) if (f.endsWith(".py") && f !== "driver.py") copyFileSync(join(ext, f), join(a, "extract", f));
    cpSync(join(ext, "bcc-overlay"), join(a, "extract", "bcc-overlay"), { recursive: true });
    writeFileSync(join(a, "extract", "driver.py"), DRIVER);
    writeFileSync(join(a, "corpus.json"), JSON.stringify(TOOLS.map(({ tool, args }) => ({ tool, args: args ?? [] }))));
    const disk = join(work, "texts.img");
    execFileSync("truncate", ["-s", "64M", disk]);
    const bootA = await vmRun(["--kernel", series, "--mem", "4G", "--timeout", "3300", "--file", `${stage}/usr:/usr`, "--file", a, "--disk", disk, "--",
      "sh", "-c", `mount -t debugfs none /sys/kernel/debug 2>/dev/null; python3 bench/bcc-corpus-guest.py '${a}' /dev/vda`], 3_600_000);
    const bcc = rowsOf(bootA.stdout, "BCC");
    if (!bootA.stdout.includes("BCC-TAR-DONE")) console.error(`boot A did not finish (exit ${bootA.status}):\n${bootA.stdout.slice(-2000)}`);
    // The guest's text, back from the disk.
    const texts = join(work, "texts");
    mkdirSync(texts);
    execFileSync("tar", ["-xf", disk, "-C", texts]);
    const extracted: Extracted[] = CORPUS.map(({ tool }) => {
      const f = join(texts, "guest", `${tool}.json`);
      if (!existsSync(f)) return { tool, cflags: [], error: bcc.get(tool)?.reason ?? "not extracted in the guest" };
      const { text, cflags } = JSON.parse(readFileSync(f, "utf8")) as { text: string; cflags: string[] };
      return { tool, text, cflags };
    });
    await prepareGuestCorpus(join(work, "guest-objects"), [series], { extracted, extractedOn: `the ${release} guest`, log: (m) => console.error(m) });
    const guestDir = join(work, "guest-objects", "bcc-corpus", release!);
    const bootB = await vmRun(["--kernel", series, "--timeout", "900", "--file", guestDir, "--file", hostDir, "--", "node", "--import", "tsx", "bench/bcc-corpus-guest.ts", "--in-guest", guestDir, hostDir], 1_200_000);
    const ts = rowsOf(bootB.stdout, "TSBPF-0");
    const tsHost = rowsOf(bootB.stdout, "TSBPF-1");
    const tsMs = Number(/^TSBPF-0-DONE (\d+)/m.exec(bootB.stdout)?.[1] ?? NaN);
    const bccMs = [...bcc.values()].reduce((s, x) => s + (x.ms ?? 0), 0);

    console.log(`\n## ${release} (TCG; boot A ${(bootA.ms / 1000).toFixed(0)} s, boot B ${(bootB.ms / 1000).toFixed(0)} s)\n`);
    console.log("| tool | area | guest's text = host's | tsbpf | BCC 0.26 | tsbpf, host's text | why not (tsbpf / BCC) |");
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    for (const { tool, area } of TOOLS) {
      const t = ts.get(tool);
      const b = bcc.get(tool);
      const why = [t && !t.ok ? `tsbpf [${t.stage}] ${t.reason ?? ""}` : "", b && !b.ok ? `BCC [${b.stage}] ${b.reason ?? ""}` : ""].filter(Boolean).join(" / ");
      const same = b?.same === undefined ? "–" : b.same ? "yes" : "no";
      console.log(`| ${tool} | ${area} | ${same} | ${cell(t)} | ${cell(b)} | ${cell(tsHost.get(tool))} | ${why.replace(/\|/g, "\\|").replace(/\s+/g, " ").slice(0, 260)} |`);
    }
    const both = TOOLS.filter(({ tool }) => ts.get(tool)?.ok && bcc.get(tool)?.ok).length;
    const same = [...bcc.values()].filter((x) => x.same).length;
    console.log(`\n${release}: of ${TOOLS.length} tools, with the text each tool produces in this guest: tsbpf ${count(ts)} (all loaded in ${(tsMs / 1000).toFixed(1)} s), ` +
      `BCC ${count(bcc)} (compiled and loaded in ${(bccMs / 1000 / 60).toFixed(0)} min of tool time, 2 at a time); both ${both}. ` +
      `With the host's text (test/guest/bcc-corpus.guest.ts): tsbpf ${count(tsHost)}. Text identical to the host's: ${same}.`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--in-guest") {
  inGuest(process.argv.slice(3));
} else {
  const skip = corpusSkipReason();
  if (skip) {
    console.error(skip);
    process.exit(1);
  }
  const kernels = process.argv.slice(2);
  for (const series of kernels.length ? kernels : ["6.1", "6.12"]) await bench(series);
}
