// The cost each event tool adds to its workload, tsbpf's tool beside BCC's, and the events
// each received and lost. Runs inside a guest (bench/tools-guest.sh stages BCC, attaches a
// scratch disk and starts this) or on the host without BCC:
//   node --import tsx bench/tools-guest.ts [--rounds 5] [--disk /dev/vda | --file PATH]
//        [--bcc] [--objects DIR] [--only biosnoop,tcpconnect,opensnoop] [--json FILE]
// After one uncounted warm-up run of each workload, per round and tool (none, tsbpf, bcc:
// interleaved so that drift hits all alike):
//   biosnoop    dd of 4 KiB blocks with O_DIRECT to the disk (or file): MB/s
//   tcpconnect  a Python loop connecting to a listener on 127.0.0.1 and closing: connects/s
//   opensnoop   a Python loop opening and closing one file: opens/s
// The workload reports its own rate (its loop only, not its start). A tool is started,
// its header awaited, the workload run, then the tool stopped with SIGINT after its
// output has settled; "events" counts the tool's lines for the workload, "lost" what it
// said it lost (tsbpf: "N events lost"; BCC: "Possibly lost N samples").
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";

const root = join(import.meta.dirname, "..");
const { values: o } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    disk: { type: "string" },
    file: { type: "string" },
    bcc: { type: "boolean", default: false },
    objects: { type: "string" },
    only: { type: "string" },
    json: { type: "string" },
    "dd-count": { type: "string", default: "4000" },
    connects: { type: "string", default: "4000" },
    opens: { type: "string", default: "50000" },
  },
});
const ROUNDS = Number(o.rounds);
const PORT = 47123;
const OPEN_PATH = `/tmp/tsbpf-bench-open-${process.pid}`;
writeFileSync(OPEN_PATH, "x");

interface Bench {
  name: string;
  tsbpf: string[];
  bcc: string;
  /** The workload: argv, and how to read its rate from its stdout. */
  workload: () => string[];
  unit: string;
  /** Lines of the tool's output that are the workload's events. */
  ours: (line: string) => boolean;
  expected: number;
}

const ddTarget = o.disk ?? o.file ?? "/tmp/tsbpf-bench-dd";
const ddCount = Number(o["dd-count"]);
const PY_CONNECT = `
import socket, time, sys
n = int(sys.argv[1]); port = int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(4096)
t = time.perf_counter()
for i in range(n):
    c = socket.socket(); c.connect(("127.0.0.1", port)); a, _ = srv.accept(); a.close(); c.close()
print(n / (time.perf_counter() - t))
`;
const PY_OPEN = `
import os, time, sys
n = int(sys.argv[1]); path = sys.argv[2]
t = time.perf_counter()
for i in range(n):
    os.close(os.open(path, os.O_RDONLY))
print(n / (time.perf_counter() - t))
`;

const BENCHES: Bench[] = [
  {
    name: "biosnoop",
    tsbpf: ["biosnoop"],
    bcc: "/usr/sbin/biosnoop-bpfcc",
    // busybox or GNU dd; the rate is computed here from the bytes and the elapsed time
    workload: () => ["dd", "if=/dev/zero", `of=${ddTarget}`, "bs=4096", `count=${ddCount}`, "oflag=direct", ...(o.disk ? [] : ["conv=notrunc"])],
    unit: "MB/s",
    ours: (l) => / dd +\d+ /.test(l),
    expected: ddCount,
  },
  {
    name: "tcpconnect",
    tsbpf: ["tcpconnect"],
    bcc: "/usr/sbin/tcpconnect-bpfcc",
    workload: () => ["python3", "-c", PY_CONNECT, o.connects!, String(PORT)],
    unit: "connects/s",
    ours: (l) => new RegExp(`\\b${PORT}\\b`).test(l),
    expected: Number(o.connects),
  },
  {
    name: "opensnoop",
    tsbpf: ["opensnoop"],
    bcc: "/usr/sbin/opensnoop-bpfcc",
    workload: () => ["python3", "-c", PY_OPEN, o.opens!, OPEN_PATH],
    unit: "opens/s",
    ours: (l) => l.includes(OPEN_PATH),
    expected: Number(o.opens),
  },
].filter((b) => !o.only || o.only.split(",").includes(b.name));

interface Started {
  lines: () => string[];
  stop: () => Promise<{ out: string; err: string; code: number | null }>;
}

/** Starts a tool and resolves once it printed its first line (its header: attached). */
function startTool(argv: string[], env: NodeJS.ProcessEnv): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let ready = false;
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    const timer = setTimeout(() => reject(new Error(`${argv.join(" ")}: no header in 300 s\n${err}`)), 300_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!ready && out.includes("\n")) {
        ready = true;
        clearTimeout(timer);
        resolve({
          lines: () => out.split("\n"),
          stop: async () => {
            child.kill("SIGINT");
            const code = await exited;
            return { out, err, code };
          },
        });
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (c) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${argv.join(" ")} exited ${c} before its header:\n${err.slice(-2000)}`));
      }
    });
  });
}

function runWorkload(argv: string[]): Promise<{ out: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (c) => (c === 0 ? resolve({ out, ms: performance.now() - t }) : reject(new Error(`${argv[0]} exited ${c}: ${err}`))));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the count of the tool's lines for the workload stops growing (1 s unchanged, 30 s at most). */
async function settle(s: Started, b: Bench): Promise<void> {
  let last = -1;
  for (let i = 0; i < 30; i++) {
    const n = s.lines().filter(b.ours).length;
    if (n === last || n >= b.expected) return;
    last = n;
    await sleep(1000);
  }
}

function lostOf(text: string): number {
  let lost = 0;
  for (const m of text.matchAll(/(\d+) events? lost/g)) lost += Number(m[1]);
  for (const m of text.matchAll(/[Pp]ossibly lost (\d+) samples/g)) lost += Number(m[1]);
  return lost;
}

type Mode = "none" | "tsbpf" | "bcc";
interface Sample {
  bench: string;
  mode: Mode;
  round: number;
  rate: number;
  events?: number;
  lost?: number;
  error?: string;
}

const modes: Mode[] = ["none", "tsbpf", ...(o.bcc ? (["bcc"] as const) : [])];
const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1", ...(o.objects ? { TSBPF_TOOL_OBJECTS: o.objects } : {}) };
const samples: Sample[] = [];
const broken = new Set<string>();

for (const b of BENCHES) {
  // One run first, not counted: the dd file allocated, caches and the workload's binaries warm.
  await runWorkload(b.workload());
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of modes) {
      if (broken.has(`${b.name}/${mode}`)) continue;
      let tool: Started | undefined;
      try {
        if (mode !== "none") tool = await startTool(mode === "tsbpf" ? [process.execPath, join(root, "bin", "tsbpf.js"), ...b.tsbpf] : ["python3", b.bcc], env);
        const w = await runWorkload(b.workload());
        const rate = b.name === "biosnoop" ? (ddCount * 4096) / 1e6 / (w.ms / 1000) : Number(w.out.trim());
        const s: Sample = { bench: b.name, mode, round, rate };
        if (tool) {
          await settle(tool, b);
          const r = await tool.stop();
          tool = undefined;
          s.events = r.out.split("\n").filter(b.ours).length;
          s.lost = lostOf(r.out + r.err);
        }
        samples.push(s);
        console.error(`${b.name} ${mode} round ${round + 1}: ${rate.toFixed(1)} ${b.unit}${s.events !== undefined ? `, ${s.events}/${b.expected} events, ${s.lost} lost` : ""}`);
      } catch (err) {
        await tool?.stop();
        // BCC's reason: clang's first error and the exception's last line.
        const lines = (err as Error).message.split("\n").filter((l) => l.trim());
        const msg = [...lines.filter((l) => /error:/.test(l)).slice(0, 1), ...lines.slice(-1)].join(" | ");
        samples.push({ bench: b.name, mode, round, rate: NaN, error: msg });
        broken.add(`${b.name}/${mode}`);
        console.error(`${b.name} ${mode}: FAILED: ${msg}`);
      }
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
console.log(`| tool | workload | mode | median | rounds | cost vs none | events received (min-max of ${BENCHES.map((b) => b.expected).join("/")}) | lost (total) |`);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
const summary: Record<string, unknown>[] = [];
for (const b of BENCHES) {
  const base = median(samples.filter((s) => s.bench === b.name && s.mode === "none" && !s.error).map((s) => s.rate));
  for (const mode of modes) {
    const ss = samples.filter((s) => s.bench === b.name && s.mode === mode);
    const ok = ss.filter((s) => !s.error);
    if (!ok.length) {
      console.log(`| ${b.name} | ${b.unit} | ${mode} | failed: ${ss[0]?.error ?? "not run"} | | | | |`);
      summary.push({ bench: b.name, mode, error: ss[0]?.error });
      continue;
    }
    const m = median(ok.map((s) => s.rate));
    const ev = ok.filter((s) => s.events !== undefined).map((s) => s.events!);
    const lost = ok.reduce((a, s) => a + (s.lost ?? 0), 0);
    const cost = mode === "none" ? "" : `${(((base - m) / base) * 100).toFixed(1)}%`;
    console.log(`| ${b.name} | ${b.unit} | ${mode} | ${m.toFixed(1)} | ${ok.length} | ${cost} | ${ev.length ? `${Math.min(...ev)}-${Math.max(...ev)}` : ""} | ${mode === "none" ? "" : lost} |`);
    summary.push({ bench: b.name, mode, unit: b.unit, median: m, rounds: ok.length, rates: ok.map((s) => s.rate), events: ev, lost });
  }
}
if (o.json) mkdirSync(dirname(o.json), { recursive: true });
if (o.json) writeFileSync(o.json, JSON.stringify({ kernel: existsSync("/proc/sys/kernel/osrelease") ? (await import("node:fs")).readFileSync("/proc/sys/kernel/osrelease", "utf8").trim() : "", samples, summary }, null, 2));
