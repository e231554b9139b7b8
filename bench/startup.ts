// npm run bench:startup: how long `tsbpf opensnoop` takes to start tracing, measured
// from outside: from spawn() to its header line on stdout (printed right after the
// programs are attached), then SIGINT and the time to exit. Each mode N times:
//   baseline     `node -e ""` and `node bin/tsbpf.js opensnoop --help` (node and the CLI's modules, no BPF)
//   cold         empty TSBPF_CACHE_DIR (a fresh one per run): vmlinux.h by bpftool, then clang
//   warm         the same cache dir again: the cached object (clang --version still runs)
//   precompiled  TSBPF_TOOL_OBJECTS = objects from buildToolObjects(), TSBPF_CLANG=/nonexistent
//   phases       the same work in-process, each step timed with performance.now()
//   bcc          BCC's opensnoop (opensnoop-bpfcc), PYTHONUNBUFFERED=1, if it runs here
//
//   npm run bench:startup [-- --runs N] [--modes cold,warm,...] [--objects DIR] [--bcc CMD] [--bin PATH] [--json FILE|-]
// In a guest (`bench/startup-guest.sh`) there is no clang: give --objects and leave out cold/warm.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const root = join(import.meta.dirname, "..");
const HEADER = /^PID\s+COMM\s+FD\s+ERR\s+PATH/m;

// ---------------------------------------------------------------------------------
// In-process phases (a child process per run, so that each starts as a tool does).
if (process.argv[2] === "--phases-child") {
  await phasesChild(process.argv[3] as "cold" | "warm" | "precompiled", process.argv[4]!, process.argv[5]!);
  process.exit(0);
}

async function phasesChild(kind: "cold" | "warm" | "precompiled", cacheDir: string, objectsDir: string): Promise<void> {
  const t: Record<string, number> = { processToScript: performance.now() };
  let mark = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    t[name] = now - mark;
    mark = now;
  };
  const { compile, vmlinuxHeader } = await import("../src/compile/index.ts");
  const { ObjectSpec } = await import("../src/object/spec.ts");
  const { Collection } = await import("../src/collection.ts");
  const { chooseEventTransport, openEvents } = await import("../src/events/channel.ts");
  const { tracepointExists } = await import("../src/link/tracepoint.ts");
  const { toolSourceDir } = await import("../src/cli/tool.ts");
  lap("imports");
  const source = join(toolSourceDir, "opensnoop.bpf.c");
  let bytes: Uint8Array;
  if (kind === "precompiled") {
    bytes = readFileSync(join(objectsDir, "opensnoop.bpf.o"));
    lap("readObject");
  } else {
    if (kind === "cold") {
      await vmlinuxHeader({ cacheDir });
      lap("vmlinuxH");
    }
    const object = await compile({ file: source }, { cacheDir });
    if (object.cached !== (kind === "warm")) throw new Error(`expected cached=${kind === "warm"}, got ${object.cached}`);
    bytes = object.bytes;
    lap(kind === "cold" ? "clang" : "cacheHit");
  }
  const spec = ObjectSpec.fromBytes(bytes);
  lap("fromBytes");
  chooseEventTransport(spec, "events");
  const programs = ["open", "openat", "openat2"]
    .filter((s) => tracepointExists("syscalls", `sys_enter_${s}`))
    .flatMap((s) => [`enter_${s}`, `exit_${s}`]);
  lap("transport+tracepoints");
  const coll = Collection.load(spec, {
    programs,
    constants: { targ_pid: 0, targ_tid: 0, targ_uid: 0xffffffff, targ_failed: false, targ_comm: "" },
  });
  lap("load");
  coll.attachAll();
  lap("attach");
  const reader = openEvents(coll, "events", { decode: coll.type("event") });
  lap("reader");
  t.total = performance.now();
  reader.close();
  coll.close();
  lap("close");
  process.stdout.write(`${JSON.stringify(t)}\n`);
}

// ---------------------------------------------------------------------------------
const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    modes: { type: "string" },
    objects: { type: "string" },
    bcc: { type: "string", default: "opensnoop-bpfcc" },
    json: { type: "string" },
    bin: { type: "string" },
  },
});
// --bin: another tsbpf, such as an installed package's node_modules/tsbpf/bin/tsbpf.js.
const tsbpf = opts.bin ?? join(root, "bin", "tsbpf.js");
const N = Number(opts.runs);
const inVm = process.env.TSBPF_IN_VM === "1";
const modes = new Set((opts.modes ?? (inVm ? "baseline,precompiled,phases-precompiled,bcc" : "baseline,cold,warm,precompiled,phases,bcc")).split(","));

interface Timing {
  headerMs: number;
  stopMs: number;
}

/** Spawns, waits for the header on stdout, sends SIGINT, waits for the exit. */
function timeToHeader(cmd: string, args: string[], env: NodeJS.ProcessEnv, header = HEADER, timeoutMs = 600_000): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let headerMs: number | undefined;
    let signalled = 0;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      if (headerMs === undefined && header.test(out)) {
        headerMs = performance.now() - t0;
        signalled = performance.now();
        child.kill("SIGINT");
      }
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    child.on("error", reject);
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      if (headerMs === undefined) {
        reject(new Error(`${cmd} ${args.join(" ")} exited (${sig ?? code}) before its header:\n${(err || out).trim()}`));
      } else resolve({ headerMs, stopMs: performance.now() - signalled });
    });
  });
}

/** Spawns and waits for the exit (the baselines). */
function timeToExit(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(" ")}: exit ${code}: ${err.trim()}`))));
  });
}

function runChild(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(" ")}: exit ${code}: ${err.trim()}`))));
  });
}

interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

function summary(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: Math.round(median), min: Math.round(s[0]!), max: Math.round(s.at(-1)!), runs: xs.map(Math.round) };
}

const fmt = (s: Summary): string => `median ${s.median} ms (min ${s.min}, max ${s.max}; runs ${s.runs.join(", ")})`;

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  kernel: release(),
  inVm,
  cpus: (await import("node:os")).availableParallelism(),
  node: process.version,
  runs: N,
};
const scratch = mkdtempSync(join(tmpdir(), "tsbpf-startup-"));
const noObjects = join(scratch, "no-objects"); // TSBPF_TOOL_OBJECTS for cold/warm: dist/bpf must not be used
mkdirSync(noObjects);

async function series(name: string, fn: (i: number) => Promise<Timing>): Promise<void> {
  const timings: Timing[] = [];
  try {
    for (let i = 0; i < N; i++) timings.push(await fn(i));
  } catch (err) {
    results[name] = { error: (err as Error).message };
    console.log(`${name}: FAILED: ${(err as Error).message}`);
    return;
  }
  const header = summary(timings.map((t) => t.headerMs));
  const stop = summary(timings.map((t) => t.stopMs));
  results[name] = { header, stop };
  console.log(`${name}: to header ${fmt(header)}; SIGINT to exit median ${stop.median} ms`);
}

try {
  // One untimed run first: the page cache holds the CLI's files (and tsx's cache, in a stale checkout), as after any first use.
  await timeToExit(process.execPath, [tsbpf, "opensnoop", "--help"]);

  if (modes.has("baseline")) {
    const bare: number[] = [];
    const help: number[] = [];
    for (let i = 0; i < N; i++) bare.push(await timeToExit(process.execPath, ["-e", ""]));
    for (let i = 0; i < N; i++) help.push(await timeToExit(process.execPath, [tsbpf, "opensnoop", "--help"]));
    results.nodeBare = summary(bare);
    results.help = summary(help);
    console.log(`node -e "": ${fmt(results.nodeBare as Summary)}`);
    console.log(`tsbpf opensnoop --help: ${fmt(results.help as Summary)}`);
  }

  if (modes.has("cold")) {
    await series("cold", (i) =>
      timeToHeader(process.execPath, [tsbpf, "opensnoop"], { TSBPF_CACHE_DIR: join(scratch, `cold-${i}`), TSBPF_TOOL_OBJECTS: noObjects }),
    );
  }

  if (modes.has("warm")) {
    const cache = join(scratch, "warm");
    await timeToHeader(process.execPath, [tsbpf, "opensnoop"], { TSBPF_CACHE_DIR: cache, TSBPF_TOOL_OBJECTS: noObjects }); // fills the cache
    await series("warm", () => timeToHeader(process.execPath, [tsbpf, "opensnoop"], { TSBPF_CACHE_DIR: cache, TSBPF_TOOL_OBJECTS: noObjects }));
  }

  let objects = opts.objects;
  if (!objects && (modes.has("precompiled") || modes.has("phases") || modes.has("phases-precompiled"))) {
    objects = join(scratch, "objects");
    const { buildToolObjects } = await import("../src/cli/tool.ts");
    await buildToolObjects(objects);
  }
  const precompiledEnv = { TSBPF_TOOL_OBJECTS: objects!, TSBPF_CLANG: "/nonexistent", TSBPF_CACHE_DIR: join(scratch, "unused-cache") };

  if (modes.has("precompiled")) {
    await series("precompiled", () => timeToHeader(process.execPath, [tsbpf, "opensnoop"], precompiledEnv));
    if (existsSync(join(scratch, "unused-cache", "objects"))) throw new Error("the pre-compiled runs wrote to the compile cache");
  }

  const phaseKinds = modes.has("phases") ? (["cold", "warm", "precompiled"] as const) : modes.has("phases-precompiled") ? (["precompiled"] as const) : [];
  for (const kind of phaseKinds) {
    const runs: Record<string, number>[] = [];
    const cache = join(scratch, `phases-${kind}`);
    const child = (k: string, dir: string): Promise<string> =>
      runChild(["--import", "tsx", join(import.meta.dirname, "startup.ts"), "--phases-child", k, dir, objects!], k === "precompiled" ? precompiledEnv : {});
    if (kind === "warm") await child("cold", cache); // fills the cache
    for (let i = 0; i < N; i++) runs.push(JSON.parse(await child(kind, kind === "cold" ? `${cache}-${i}` : cache)) as Record<string, number>);
    const phases: Record<string, Summary> = {};
    for (const key of Object.keys(runs[0]!)) phases[key] = summary(runs.map((r) => r[key]!));
    results[`phases-${kind}`] = phases;
    console.log(`in-process, ${kind}:`);
    for (const [k, s] of Object.entries(phases)) console.log(`  ${k.padEnd(22)} ${fmt(s)}`);
  }

  if (modes.has("bcc")) {
    // Python buffers stdout into a pipe: unbuffered, the header leaves when it is printed.
    await series("bcc", () => timeToHeader(opts.bcc, [], { PYTHONUNBUFFERED: "1" }));
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

if (opts.json === "-") console.log(JSON.stringify(results));
else if (opts.json) writeFileSync(opts.json, `${JSON.stringify(results, null, 1)}\n`);
