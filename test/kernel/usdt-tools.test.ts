// BCC's own USDT programs, taken from the mirror of BCC's repository at test time
// (never committed): libbpf-tools' javagc.bpf.c (SEC("usdt"), usdt.bpf.h) and the
// C that tools/lib's ucalls, uflow and ugc pass to BPF() for python at their
// default options, loaded and attached to Debian's /usr/bin/python3.
//
// The tools' C is captured by running the tool itself with a stand-in `bcc`
// Python module on PYTHONPATH whose BPF() writes the text and the USDT probes
// it was given to a file and exits: what the tool would have loaded, options and
// string substitutions included, without a copy of its code here.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Collection } from "../../src/collection.ts";
import { compile } from "../../src/compile/index.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ElfFile } from "../../src/elf/index.ts";
import { readUsdtProbes } from "../../src/elf/usdt.ts";
import { AttachError } from "../../src/link/errors.ts";
import { BPF, USDT } from "../../src/bcc/index.ts";
import { UsageError } from "../../src/errors.ts";

const MIRROR = "/work/.mirror/iovisor+bcc/repo";
const root = process.getuid?.() === 0;
const PYTHON = existsSync("/usr/bin/python3") ? realpathSync("/usr/bin/python3") : undefined;
const havePython = !!PYTHON && readUsdtProbes(ElfFile.open(PYTHON)).some((p) => p.name === "function__entry");

function fromMirror(path: string): string | undefined {
  if (!existsSync(MIRROR)) return undefined;
  try {
    return execFileSync("git", ["-C", MIRROR, "show", `HEAD:${path}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

const skip = !root ? "needs root" : !existsSync(MIRROR) ? `no mirror of BCC's repository at ${MIRROR} (fetch github:iovisor/bcc)` : !havePython ? "no /usr/bin/python3 with stapsdt probes" : false;
// Every wait below is bounded so that a test that cannot finish fails with a message well
// within a minute (an earlier version waited for python's exit with no bound, and hung).
const WAIT_MS = 20_000;
const TEST = { skip, timeout: 60_000 };

const scratch = mkdtempSync(join(tmpdir(), "tsbpf-usdt-tools-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** What the python workload does between its "ready" and "done" lines (the tests check their counts against these). */
const CALLS = 23; // calls of tsbpf_tool_fn, with a profile function set (see usdt.test.ts)
const BLOB = 777_776; // bytes of each of BLOBS allocations through libc's malloc (b"x" * BLOB)
const BLOBS = 7;
const CYCLES = 50; // self-referencing objects that gc.collect() frees

/** A python3 that waits for a line, runs the workload above, prints "done N" (N: what gc.collect() returned) and waits for stdin to close. */
function pythonWorkload() {
  const script = [
    "import sys, gc",
    "class Cyc: pass",
    "print('ready', flush=True); sys.stdin.readline()",
    "sys.setprofile(lambda *a: None)",
    "def tsbpf_tool_fn(x):",
    "  return x",
    `for i in range(${CALLS}): tsbpf_tool_fn(i)`,
    "sys.setprofile(None)",
    `blobs = [b'x' * ${BLOB} for _ in range(${BLOBS})]`,
    `for i in range(${CYCLES}):`,
    "  c = Cyc(); c.me = c",
    "del c",
    "n = gc.collect()",
    "print('done', n, flush=True); sys.stdin.read()",
  ].join("\n");
  const child = spawn("/usr/bin/python3", ["-c", script], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d: string) => {
    out += d;
    wake();
  });
  const exited = new Promise<void>((r) => child.on("exit", () => (wake(), r())));
  child.stdin.on("error", () => {}); // EPIPE when python is gone: its exit says more
  return {
    child,
    /** Resolves when python has printed a whole line holding `text` (a pipe may deliver a line in
     *  pieces); rejects when it exits first or WAIT_MS pass. */
    async waitFor(text: string): Promise<string> {
      const deadline = Date.now() + WAIT_MS;
      const printed = () => out.split("\n").slice(0, -1).some((line) => line.includes(text));
      while (!printed()) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`python exited (${child.exitCode ?? child.signalCode}) before printing "${text}"; it printed ${JSON.stringify(out)}`);
        if (Date.now() >= deadline) throw new Error(`python did not print "${text}" within ${WAIT_MS / 1000} s; it printed ${JSON.stringify(out)}`);
        await new Promise<void>((r) => {
          const done = () => (clearTimeout(timer), waiters.delete(done), r());
          const timer = setTimeout(done, deadline - Date.now());
          waiters.add(done);
        });
      }
      return out;
    },
    /** Runs the workload (once). */
    step: () => child.stdin.write("go\n"),
    /** Ends python whatever state it is in: stdin closed, then SIGKILL if it has not exited within 5 s. */
    async stop(): Promise<void> {
      child.stdin.end();
      if (child.exitCode !== null || child.signalCode !== null) return;
      const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(kill);
    },
  };
}

test("libbpf-tools' javagc.bpf.c loads; its JVM probes are not in python3 (a clear error), and its programs run on python's gc probes", TEST, async () => {
  const text = fromMirror("libbpf-tools/javagc.bpf.c");
  const header = fromMirror("libbpf-tools/javagc.h");
  if (!text || !header) return void assert.fail("javagc.bpf.c or javagc.h missing from the mirror");
  const dir = join(scratch, "javagc");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "javagc.h"), header);
  const { bytes } = await compile({ text, name: "javagc.bpf.c" }, { includeDirs: [dir] });
  const spec = ObjectSpec.fromBytes(bytes, "javagc.bpf.o");
  assert.deepEqual([...spec.programs.keys()].sort(), ["handle_gc_end", "handle_gc_start", "handle_mem_pool_gc_end", "handle_mem_pool_gc_start"]);
  using coll = Collection.load(spec);
  // javagc.c attaches to libjvm.so's hotspot:gc__begin; python3 has no such probe.
  assert.throws(() => coll.program("handle_gc_start").attachUsdt({ binary: "/usr/bin/python3", provider: "hotspot", name: "gc__begin" }), (e: unknown) =>
    e instanceof AttachError && e.hook === "usdt" && /no USDT probe hotspot:gc__begin in \/usr\/bin\/python3[.\d]*; it has python:/.test(e.message));
  const py = pythonWorkload();
  try {
    await py.waitFor("ready");
    using _start = coll.program("handle_gc_start").attachUsdt({ binary: "/usr/bin/python3", provider: "python", name: "gc__start", pid: py.child.pid! });
    py.step();
    await py.waitFor("done");
    // gc_start keys its record by the pid; gc_end is not attached, so it stays.
    const rec = coll.map<number, { cpu: number; pid: number; ts: bigint }>("data_map").lookup(py.child.pid!);
    assert.ok(rec && rec.pid === py.child.pid && rec.ts > 0n, JSON.stringify(rec, (_k, v) => (typeof v === "bigint" ? String(v) : v)));
  } finally {
    await py.stop();
  }
});

// The stand-in bcc module: BPF() records the text, the USDT probes and (with TSBPF_CAPTURE_ATTACH
// set) the first attach_uprobe call the tool makes after it, then exits.
const STUB = `import json, os, sys
class USDT:
    def __init__(self, pid=None, path=None):
        self.pid, self.path, self.probes = pid, path, []
    def enable_probe(self, probe, fn_name):
        self.probes.append([probe, fn_name])
    enable_probe_or_bail = enable_probe
    def get_text(self):
        return ""
class BPF:
    def __init__(self, text=None, usdt_contexts=[], **kw):
        self.capture = {"text": text, "usdt": [{"pid": u.pid, "path": u.path, "probes": u.probes} for u in usdt_contexts], "uprobes": []}
        self._dump()
        if not os.environ.get("TSBPF_CAPTURE_ATTACH"):
            sys.exit(0)
    def _dump(self):
        with open(os.environ["TSBPF_CAPTURE"], "w") as f:
            json.dump(self.capture, f)
    def attach_uprobe(self, name="", sym="", fn_name="", pid=-1, **kw):
        self.capture["uprobes"].append({"name": name, "sym": sym, "fn_name": fn_name, "pid": pid})
        self._dump()
        sys.exit(0)
    @staticmethod
    def get_syscall_fnname(name):
        return "__x64_sys_" + name
class _Utils:
    @staticmethod
    def detect_language(languages, pid):
        return "python"
utils = _Utils()
`;

interface Capture {
  text: string;
  usdt: { pid: number | null; path: string | null; probes: [string, string][] }[];
  uprobes: { name: string; sym: string; fn_name: string; pid: number }[];
}

/** The C and probes BCC's tool would give BPF() (and its first uprobe with `attach`), from running it against the stand-in module. */
function captureTool(tool: string, args: string[], attach = false): Capture {
  const source = fromMirror(`tools/lib/${tool}.py`);
  if (!source) throw new Error(`tools/lib/${tool}.py missing from the mirror`);
  const stub = join(scratch, "stub", "bcc");
  mkdirSync(stub, { recursive: true });
  writeFileSync(join(stub, "__init__.py"), STUB);
  // ucalls imports bcc.syscall for its -S output, which these runs never print.
  writeFileSync(join(stub, "syscall.py"), "def syscall_name(number):\n    return b'?'\n");
  const script = join(scratch, `${tool}.py`);
  writeFileSync(script, source);
  const capture = join(scratch, `${tool}.json`);
  rmSync(capture, { force: true });
  const env = { ...process.env, PYTHONPATH: join(scratch, "stub"), TSBPF_CAPTURE: capture, ...(attach ? { TSBPF_CAPTURE_ATTACH: "1" } : {}) };
  execFileSync("/usr/bin/python3", [script, ...args], { env, stdio: ["ignore", "ignore", "pipe"], timeout: WAIT_MS, killSignal: "SIGKILL" });
  return JSON.parse(readFileSync(capture, "utf8")) as Capture;
}

function contextsOf(c: Capture): USDT[] {
  return c.usdt.map((u) => {
    const ctx = new USDT(u.pid !== null ? { pid: u.pid } : { path: u.path! });
    for (const [probe, fn] of u.probes) ctx.enable_probe_or_bail(probe, fn);
    return ctx;
  });
}

/** Loads the captured tool against the workload: its USDT probes for python's pid; how long BPF.load took, and the probe sites it attached. */
async function loadCaptured(c: Capture, name: string, t?: { diagnostic(m: string): void }): Promise<{ b: BPF; ms: number }> {
  const contexts = contextsOf(c);
  const t0 = performance.now();
  const b = await BPF.load({ text: c.text, name }, { usdtContexts: contexts });
  const ms = performance.now() - t0;
  let sites = 0;
  for (const u of contexts) {
    const all = u.enumerateProbes();
    for (const { target } of u.targets()) if (target.hook === "usdt") sites += all.find((p) => p.binary === target.path && p.provider === target.provider && p.name === target.name)?.locations ?? 0;
  }
  t?.diagnostic(`${name}: BPF.load (compile, load, attach) ${ms.toFixed(0)} ms, ${sites} USDT probe sites`);
  return { b, ms };
}

/** Runs `body` with a fresh python workload that is always stopped, whatever happens. */
async function withPython(body: (py: ReturnType<typeof pythonWorkload>) => Promise<void>): Promise<void> {
  const py = pythonWorkload();
  try {
    await py.waitFor("ready");
    await body(py);
  } finally {
    await py.stop();
  }
}

// ucalls' text holds a TRACEPOINT_PROBE(raw_syscalls, sys_enter) under #ifdef SYSCALLS (its -S):
// before BPF.load skipped functions the preprocessor left out, its auto-attach failed with
// "no program named tracepoint__raw_syscalls__sys_enter", and the test's cleanup then waited
// for a python that was still reading stdin: the hang of the first run.
test("BCC's ucalls -l python PID: loads, attaches function__entry, and counts the workload's calls by file and function", TEST, (t) =>
  withPython(async (py) => {
    const c = captureTool("ucalls", ["-l", "python", String(py.child.pid)]);
    assert.deepEqual(c.usdt[0]?.probes, [["function__entry", "trace_entry"]]);
    assert.match(c.text, /#ifdef SYSCALLS\s+TRACEPOINT_PROBE\(raw_syscalls, sys_enter\)/);
    // What the tools print under -v (BCC's generated readers; tsbpf's one reader over usdt.bpf.h's spec map).
    assert.match(contextsOf(c)[0]!.get_text(), /__bpf_usdt_specs SEC\(".maps"\)/);
    const { b } = await loadCaptured(c, "ucalls.c", t);
    try {
      assert.equal(b.numOpenUprobes(), 1);
      assert.equal(b.numOpenTracepoints(), 0, "the TRACEPOINT_PROBE under #ifdef SYSCALLS is not compiled, so not attached");
      py.step();
      await py.waitFor("done");
      const counts = [...b.collection.map<{ clazz: string; method: string }, bigint>("counts").entries()];
      const mine = counts.find(([k]) => k.method === "tsbpf_tool_fn");
      assert.ok(mine, `counts has tsbpf_tool_fn: ${counts.map(([k]) => k.method).join(", ")}`);
      assert.deepEqual([mine[0].clazz, mine[1]], ["<string>", BigInt(CALLS)]);
    } finally {
      b.cleanup();
    }
  }));

// With -L -S the same text defines LATENCY and SYSCALLS: function__return joins, and the
// raw_syscalls TRACEPOINT_PROBEs (filtered to python's pid in the text) are compiled and attached.
test("BCC's ucalls -l python -L -S PID: latency per function (entry and return paired) and per syscall, from the raw_syscalls tracepoints", TEST, (t) =>
  withPython(async (py) => {
    const c = captureTool("ucalls", ["-l", "python", "-L", "-S", String(py.child.pid)]);
    assert.deepEqual(c.usdt[0]?.probes, [["function__entry", "trace_entry"], ["function__return", "trace_return"]]);
    const { b } = await loadCaptured(c, "ucalls-L-S.c", t);
    try {
      assert.equal(b.numOpenUprobes(), 2);
      assert.equal(b.numOpenTracepoints(), 2, "raw_syscalls:sys_enter and sys_exit");
      py.step();
      await py.waitFor("done");
      const times = b.get<{ clazz: string; method: string }, { num_calls: bigint; total_ns: bigint }>("times").items();
      const mine = times.find(([k]) => k.method === "tsbpf_tool_fn");
      assert.ok(mine, `times has tsbpf_tool_fn: ${times.map(([k]) => k.method).join(", ")}`);
      assert.equal(mine[1].num_calls, BigInt(CALLS));
      assert.ok(mine[1].total_ns > 0n);
      // python wrote "done" to its stdout: write(2) is syscall 1 on x86-64.
      const writes = b.get<bigint, { num_calls: bigint; total_ns: bigint }>("systimes").get(1n);
      assert.ok(writes && writes.num_calls >= 1n && writes.total_ns > 0n, String(writes?.num_calls));
    } finally {
      b.cleanup();
    }
  }));

test("BCC's uflow -l python PID: entries and returns of the workload's function arrive in its perf buffer, with depths", TEST, (t) =>
  withPython(async (py) => {
    const c = captureTool("uflow", ["-l", "python", String(py.child.pid)]);
    assert.deepEqual(c.usdt[0]?.probes, [["function__entry", "python_entry"], ["function__return", "python_return"]]);
    const { b } = await loadCaptured(c, "uflow.c", t);
    try {
      assert.equal(b.numOpenUprobes(), 2, "BCC counts USDT probes among its uprobes");
      const calls: { depth: bigint; pid: bigint; method: string; clazz: string }[] = [];
      b.get("calls").openPerfBuffer((_cpu, data) => {
        const e = b.get("calls").event(data);
        if (e.method === "tsbpf_tool_fn") calls.push(e);
      });
      py.step();
      await py.waitFor("done");
      const deadline = Date.now() + WAIT_MS;
      while (calls.length < 2 * CALLS && Date.now() < deadline) await b.perfBufferPoll(1000);
      const RET = 1n << 63n;
      const entries = calls.filter((e) => !(e.depth & RET));
      const returns = calls.filter((e) => e.depth & RET);
      assert.deepEqual([entries.length, returns.length], [CALLS, CALLS], "one entry and one return per call");
      // Python 3.11 fires function__entry only while a trace or profile function is set, and
      // function__return always (the profile lambda's own returns too), so uflow's depths drift:
      // the check is that each call's entry arrives, then its return, in order, from python's pid.
      const show = JSON.stringify(calls.slice(0, 4), (_k, v) => (typeof v === "bigint" ? String(v) : v));
      assert.ok(calls.every((e, i) => !(e.depth & RET) === (i % 2 === 0)), `entries and returns alternate: ${show}`);
      assert.ok(entries.every((e) => e.depth >= 1n), show);
      assert.ok(calls.every((e) => e.clazz === "<string>" && e.pid >> 32n === BigInt(py.child.pid!)), show);
    } finally {
      b.cleanup();
    }
  }));

test("BCC's ugc -l python PID: the workload's gc.collect() arrives as a generation-2 collection with the count python returned", TEST, (t) =>
  withPython(async (py) => {
    const c = captureTool("ugc", ["-l", "python", String(py.child.pid)]);
    assert.deepEqual(c.usdt[0]?.probes, [["gc__start", "trace_gc__start"], ["gc__done", "trace_gc__done"]]);
    const { b } = await loadCaptured(c, "ugc.c", t);
    try {
      assert.equal(b.numOpenUprobes(), 2);
      const gcs: { field1: bigint; field2: bigint; elapsed_ns: bigint }[] = [];
      b.get("gcs").openPerfBuffer((_cpu, data) => gcs.push(b.get("gcs").event(data)));
      py.step();
      const out = await py.waitFor("done");
      const collected = BigInt(/done (\d+)/.exec(out)?.[1] ?? "-1");
      assert.ok(collected >= BigInt(CYCLES), `gc.collect() freed the ${CYCLES} cycles: ${collected}; python printed ${JSON.stringify(out)}`);
      const deadline = Date.now() + WAIT_MS;
      const full = () => gcs.filter((g) => g.field1 === 2n);
      while (!full().length && Date.now() < deadline) await b.perfBufferPoll(1000);
      assert.deepEqual(full().map((g) => g.field2), [collected], "one generation-2 collection, with gc.collect()'s count");
      assert.ok(full()[0]!.elapsed_ns > 0n);
    } finally {
      b.cleanup();
    }
  }));

// uobjnew has no python mode (its languages: c, java, ruby, tcl); -l c attaches a uprobe to libc's
// malloc for the pid, which python's large allocations go through: b"x" * BLOB is malloc(BLOB + 33)
// (PyBytesObject's header and the trailing NUL).
test("BCC's uobjnew -l c PID on python: loads, attaches malloc for the pid, and counts the workload's allocations by size", TEST, (t) =>
  withPython(async (py) => {
    const c = captureTool("uobjnew", ["-l", "c", String(py.child.pid)], true);
    assert.deepEqual(c.uprobes, [{ name: "c", sym: "malloc", fn_name: "alloc_entry", pid: py.child.pid }]);
    const { b } = await loadCaptured(c, "uobjnew.c", t);
    try {
      for (const u of c.uprobes) b.attachUprobe({ name: u.name, sym: u.sym, fnName: u.fn_name, pid: u.pid });
      assert.equal(b.numOpenUprobes(), 1);
      py.step();
      await py.waitFor("done");
      const big = b.get<{ size: bigint }, { total_size: bigint; num_allocs: bigint }>("allocs").items().filter(([k]) => k.size >= BigInt(BLOB) && k.size < BigInt(BLOB + 64));
      assert.deepEqual(
        big.map(([k, v]) => [k.size, v.num_allocs, v.total_size]),
        [[BigInt(BLOB + 33), BigInt(BLOBS), BigInt(BLOBS * (BLOB + 33))]],
      );
    } finally {
      b.cleanup();
    }
  }));

// uthreads has no python mode either (c, java, none); in every mode it enables libc's or
// libpthread's pthread_start probe, which this host's glibc is built without: BCC's
// enable_probe_or_bail exits there, and tsbpf's says which probes the process has.
test("BCC's uthreads -l none PID on python: pthread_start is not in the process, a UsageError naming what it has", TEST, (t) =>
  withPython(async (py) => {
    if (new USDT({ pid: py.child.pid! }).enumerateProbes().some((p) => p.name === "pthread_start")) return void t.skip("this glibc has the pthread_start probe: the error path is not reachable here");
    const c = captureTool("uthreads", ["-l", "none", String(py.child.pid)]);
    assert.deepEqual(c.usdt[0]?.probes, [["pthread_start", "trace_pthread"]]);
    assert.throws(() => contextsOf(c), (e: unknown) => e instanceof UsageError && /no probe pthread_start in process \d+; it has python:/.test(e.message));
    // Its C still compiles and its function passes the verifier (as a uprobe program); only the probe is missing.
    const { b } = await loadCaptured({ ...c, usdt: [] }, "uthreads.c");
    try {
      assert.ok(b.loadFunc("trace_pthread", BPF.KPROBE).fd.value > 0);
    } finally {
      b.cleanup();
    }
  }));
