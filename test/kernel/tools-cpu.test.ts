// The stack and CPU tools (profile, offcputime, stackcount, funccount,
// funclatency) against workloads whose functions and call counts the test knows.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { linksOfProgram, programsNamed } from "../support/kernel.ts";
import { root, runTool, tempDir, tsbpf } from "../support/tools.ts";

const dir = tempDir("tsbpf-cputools-");
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  dir[Symbol.dispose]();
});

/** Compiles `source` with frame pointers (user stacks are walked through them) and returns the binary. */
function build(name: string, source: string): string {
  const bin = join(dir.path, name);
  writeFileSync(`${bin}.c`, source);
  execFileSync("cc", ["-O0", "-g", "-fno-omit-frame-pointer", "-o", bin, `${bin}.c`]);
  return bin;
}

function start(bin: string, args: string[] = []): ChildProcess {
  const child = spawn(bin, args, { stdio: "ignore" });
  children.push(child);
  return child;
}

// main -> tsbpf_outer -> tsbpf_inner, spinning.
const BUSY = `
volatile unsigned long sink;
__attribute__((noinline)) void tsbpf_inner(void) { for (int i = 0; i < 1000000; i++) sink += i; }
__attribute__((noinline)) void tsbpf_outer(void) { tsbpf_inner(); }
int main(void) { for (;;) tsbpf_outer(); }
`;

// Sleeps 20 ms at a time in tsbpf_nap, which makes the nanosleep syscall itself
// (libc's wrapper has no frame pointer: the walk would skip tsbpf_nap's frame).
const SLEEPER = `
#include <time.h>
__attribute__((noinline)) void tsbpf_nap(void) {
  struct timespec t = { 0, 20000000 };
  long r;
  __asm__ volatile ("syscall" : "=a"(r) : "a"(35 /* SYS_nanosleep */), "D"(&t), "S"(0) : "rcx", "r11", "memory");
}
int main(void) { for (;;) tsbpf_nap(); }
`;

// Waits for a line on stdin, then calls tsbpf_target N times from tsbpf_caller
// (each call makes one getppid() syscall), prints "done" and waits to be killed
// (alive, so that its stacks can be symbolized).
const CALLS = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) int tsbpf_target(int x) { getppid(); return x * 2; }
__attribute__((noinline)) void tsbpf_caller(int n) { for (int i = 0; i < n; i++) tsbpf_target(i); }
int main(int argc, char **argv) {
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 1;
  tsbpf_caller(atoi(argv[1]));
  printf("done\\n");
  fflush(stdout);
  pause();
  return 0;
}
`;

/**
 * Runs a tool next to the CALLS workload: the workload starts first (its pid can
 * be a filter), is told to go once the tool prints `ready`, and the tool is
 * stopped once the workload has made its calls.
 */
async function withCalls(n: number, args: (pid: number) => string[]) {
  const bin = existsSync(join(dir.path, "calls")) ? join(dir.path, "calls") : build("calls", CALLS);
  const child = spawn(bin, [String(n)], { stdio: ["pipe", "pipe", "ignore"] });
  children.push(child);
  let done = false;
  let told = false;
  child.stdout!.on("data", (d) => (done ||= String(d).includes("done")));
  // The tool says it is tracing on stdout, or on stderr with -f and --json.
  const tool = spawn(process.execPath, [tsbpf, ...args(child.pid!)], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  tool.stdout!.on("data", (d) => (out += d));
  tool.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => tool.on("exit", (c) => resolve(c)));
  const deadline = Date.now() + 60_000;
  while (!done && tool.exitCode === null && Date.now() < deadline) {
    if (!told && (out + err).includes("Tracing")) {
      told = true;
      child.stdin!.write("go\n");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  tool.kill("SIGINT");
  const code = await exited;
  child.kill("SIGKILL");
  const lines = out.split("\n").filter((l) => l !== "");
  const r = { out, err, code, lines, json: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)) };
  assert.ok(done, `the workload ran: ${r.out}${r.err}`);
  return { ...r, pid: child.pid! };
}

describe("profile", () => {
  test("a busy C program's frames show with their names, in the multi-line, folded and JSON forms", async () => {
    const busy = start(build("busy", BUSY));
    const multi = await runTool(["profile", "-F", "99", "-p", String(busy.pid), "2"]);
    assert.equal(multi.code, 0, multi.err);
    assert.match(multi.lines[0]!, new RegExp(`^Sampling at 99 Hertz of PID ${busy.pid} by user \\+ kernel stack for 2 secs\\.$`));
    // Current BCC names each frame with its offset and module in this form.
    assert.match(multi.out, /\n    tsbpf_inner\+0x[0-9a-f]+ \[busy\]\n    tsbpf_outer\+0x[0-9a-f]+ \[busy\]\n    main\+0x[0-9a-f]+ \[busy\]\n/);
    assert.match(multi.out, new RegExp(`\\n    -                busy \\(${busy.pid}\\)\\n        \\d+\\n`));

    const folded = await runTool(["profile", "-f", "-U", "-p", String(busy.pid), "2"]);
    assert.equal(folded.code, 0, folded.err);
    const lines = folded.lines.map((l) => /^(.*) (\d+)$/.exec(l)!);
    assert.ok(lines.length > 0 && lines.every(Boolean), folded.out);
    const inInner = lines.filter((m) => /^busy;.*main;tsbpf_outer;tsbpf_inner$/.test(m[1]!));
    const total = lines.reduce((n, m) => n + Number(m[2]), 0);
    const inner = inInner.reduce((n, m) => n + Number(m[2]), 0);
    // 49 Hz for 2 s on a process that always runs: about 98 samples, nearly all in tsbpf_inner.
    assert.ok(total >= 20 && inner >= total * 0.8, `${inner} of ${total} samples in tsbpf_inner:\n${folded.out}`);

    const json = await runTool(["profile", "--json", "-K", "-p", String(busy.pid), "1"]);
    assert.equal(json.code, 0, json.err);
    assert.ok(json.json.length > 0);
    assert.deepEqual(linksOfProgram("do_perf_event"), [], "the perf events are detached");
    assert.deepEqual(programsNamed("do_perf_event"), []);
    for (const r of json.json) {
      assert.equal(r.pid, busy.pid);
      assert.equal(r.comm, "busy");
      assert.equal(r.user, undefined, "-K collects no user stacks");
    }
  });

  test("a Node workload run with --perf-basic-prof shows its JavaScript function names", async () => {
    const script = join(dir.path, "hot.js");
    writeFileSync(
      script,
      "function tsbpfHotLoop() { let s = 0; for (let i = 0; i < 1e6; i++) s += i % 7; return s; }\n" +
        "function tsbpfCaller() { let t = 0; for (let j = 0; j < 50; j++) t += tsbpfHotLoop(); return t; }\n" +
        "for (;;) tsbpfCaller();\n",
    );
    // In the test's directory: V8 writes an isolate-*.log next to itself with these flags.
    const node = spawn(process.execPath, ["--perf-basic-prof", "--no-turbo-inlining", script], { stdio: "ignore", cwd: dir.path });
    children.push(node);
    const map = `/tmp/perf-${node.pid}.map`;
    for (let i = 0; i < 100 && !(existsSync(map) && readFileSync(map, "utf8").includes("tsbpfHotLoop")); i++) await new Promise((r) => setTimeout(r, 50));
    const r = await runTool(["profile", "-f", "-U", "-p", String(node.pid), "2"]);
    node.kill("SIGKILL");
    rmSync(map, { force: true });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /tsbpfHotLoop/, `no JavaScript frame in:\n${r.out.slice(0, 3000)}`);
    assert.match(r.out, /^node;/m);
  });
});

describe("offcputime", () => {
  test("a process sleeping in nanosleep shows its wait, by kernel and user stack, in microseconds", async () => {
    const sleeper = start(build("sleeper", SLEEPER));
    const r = await runTool(["offcputime", "-p", String(sleeper.pid), "2"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.lines[0]!, new RegExp(`^Tracing off-CPU time \\(us\\) of PID ${sleeper.pid} by user \\+ kernel stack for 2 secs\\.$`));
    // The wait: the kernel's sleep, then the user frames that called it (other stacks of the
    // process, preemptions while it ran, may come with it).
    const stacks = [...r.out.matchAll(new RegExp(`\\n((?:    .*\\n)*?)    tsbpf_nap\\n    main\\n(?:    .*\\n)*?    -                sleeper \\(${sleeper.pid}\\)\\n        (\\d+)\\n`, "g"))];
    const m = stacks.find((x) => /nanosleep/.test(x[1]!));
    assert.ok(m, r.out);
    assert.doesNotMatch(m[1]!, /bpf_prog_|__traceiter_/, "the tracepoint's own frames are dropped");
    // About 100 naps of 20 ms in 2 s: most of the 2 s are off CPU.
    assert.ok(Number(m[2]) > 500_000 && Number(m[2]) <= 2_100_000, `${m[2]} us`);

    const folded = await runTool(["offcputime", "-f", "-d", "-p", String(sleeper.pid), "1"]);
    assert.equal(folded.code, 0, folded.err);
    assert.match(folded.out, /^sleeper;.*main;tsbpf_nap;-;.*nanosleep.* \d+$/m);
  });
});

describe("funccount, stackcount, funclatency", () => {
  const N = 1234;

  test("funccount counts each matched function's calls exactly (uprobes, a glob)", async () => {
    const calls = join(dir.path, "calls");
    if (!existsSync(calls)) build("calls", CALLS);
    const r = await withCalls(N, (pid) => ["funccount", "-p", String(pid), `${calls}:tsbpf_*`]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.lines[0], `Tracing 2 functions for "${calls}:tsbpf_*"... Hit Ctrl-C to end.`);
    assert.deepEqual(r.lines.slice(1), [
      `${"FUNC".padEnd(36)} ${"COUNT".padStart(8)}`,
      `${"tsbpf_caller".padEnd(36)} ${"1".padStart(8)}`,
      `${"tsbpf_target".padEnd(36)} ${String(N).padStart(8)}`,
      "Detaching...",
    ]);
    // Ctrl-C left nothing behind: no link, no program.
    assert.deepEqual(linksOfProgram("count_probe"), []);
    assert.deepEqual(programsNamed("count_probe"), []);
  });

  test("funccount on tracepoints (a glob) and libc (c:), as JSON", async () => {
    const r = await withCalls(N, (pid) => ["funccount", "--json", "-p", String(pid), "t:syscalls:sys_enter_getppi*"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.json.at(-1)!.counts, [{ func: "syscalls:sys_enter_getppid", count: N }]);
    const libc = await withCalls(N, (pid) => ["funccount", "-p", String(pid), "c:getppid"]);
    assert.match(libc.out, new RegExp(`^getppid +${N}$`, "m"));
  });

  test("stackcount counts the stacks that reach a uprobe and a tracepoint", async () => {
    const calls = join(dir.path, "calls");
    const r = await withCalls(N, (pid) => ["stackcount", "-p", String(pid), `${calls}:tsbpf_target`]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`\\n  tsbpf_target\\n  tsbpf_caller\\n  main\\n(?:  .*\\n)*    ${N}\\n`), r.out);
    const tp = await withCalls(N, (pid) => ["stackcount", "-P", "-p", String(pid), "t:syscalls:sys_enter_getppid"]);
    assert.equal(tp.code, 0, tp.err);
    // Kernel frames, then user ones: the syscall's wrapper, then tsbpf_caller (the wrapper keeps no frame pointer).
    assert.match(tp.out, new RegExp(`\\n(?:  .*\\n)*  .*getppid.*\\n  tsbpf_caller\\n  main\\n(?:  .*\\n)*    ${N}\\n`), tp.out);
    const folded = await withCalls(N, (pid) => ["stackcount", "-f", "-U", "-p", String(pid), `${calls}:tsbpf_target`]);
    assert.match(folded.out, new RegExp(`^calls;.*main;tsbpf_caller;tsbpf_target ${N}$`, "m"), folded.out);
  });

  test("funclatency times every call: one histogram, and one per function with -F", async () => {
    const calls = join(dir.path, "calls");
    const r = await withCalls(N, (pid) => ["funclatency", "-u", "-p", String(pid), `${calls}:tsbpf_target`]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^     usecs {15}: count     distribution$/m);
    const counts = [...r.out.matchAll(/^ +\d+ -> \d+ +: (\d+) +\|/gm)].map((m) => Number(m[1]));
    assert.equal(counts.reduce((a, b) => a + b, 0), N, r.out);
    assert.match(r.out, new RegExp(`^avg = \\d+ usecs, total: \\d+ usecs, count: ${N}$`, "m"));

    const f = await withCalls(N, (pid) => ["funclatency", "-F", "-p", String(pid), `${calls}:tsbpf_*`]);
    assert.equal(f.code, 0, f.err);
    assert.match(f.out, /^Function = tsbpf_target$/m);
    assert.match(f.out, /^Function = tsbpf_caller$/m);
    assert.match(f.out, new RegExp(`count: ${N + 1}$`, "m"));
  });
});

describe("what every tool does", () => {
  test("a kernel function on a kernel without kprobes: one sentence naming what is missing and what to use; exit 1", async (t) => {
    const { probesAvailable } = await import("../../src/link/probe.ts");
    if (probesAvailable("kprobe")) return t.skip("this kernel has kprobes");
    for (const tool of ["funccount", "stackcount", "funclatency"]) {
      const r = await runTool([tool, "vfs_read"], { timeoutMs: 30_000 });
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, new RegExp(`^tsbpf ${tool}: .*no kprobes.*use a tracepoint instead`));
      assert.equal(r.err.trim().split("\n").length, 1, r.err);
    }
  });

  test("funccount -i 1 | head -n 3 ends the tool", async () => {
    const { runToolIntoHead } = await import("../support/tools.ts");
    const r = await runToolIntoHead(["funccount", "-i", "1", "t:sched:sched_switch"], 3, 30_000);
    assert.notEqual(r.code, null, "the tool was killed: it did not notice the closed pipe");
    assert.match(r.out, /^Tracing 1 functions for "t:sched:sched_switch"\.\.\. Hit Ctrl-C to end\.\n\nFUNC +COUNT\n$/);
  });
});

// ---- the flame graph of a real profile, in a real browser ----

function findChromium(): string | undefined {
  return ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
}

describe("profile --html in headless chromium", { skip: !findChromium() && "chromium is not installed (test/flamegraph.test.ts installs it)" }, () => {
  test("the workload's frames are drawn; a click zooms; search highlights", async () => {
    const busy = start(build("busyfg", BUSY));
    const html = join(dir.path, "profile.html");
    const r = await runTool(["profile", "-F", "99", "-p", String(busy.pid), "--html", html, "-f", "2"]);
    assert.equal(r.code, 0, r.err);
    assert.match(readFileSync(html, "utf8"), /tsbpf_inner/);
    const puppeteer = (await import("puppeteer-core")).default;
    const browser = await puppeteer.launch({ executablePath: findChromium()!, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1300, height: 600 });
      await page.goto(`file://${html}`, { waitUntil: "load" });
      const names = await page.$$eval("g.frame", (gs) => gs.map((g) => g.getAttribute("data-name")));
      for (const n of ["busyfg", "main", "tsbpf_outer", "tsbpf_inner"]) assert.ok(names.includes(n), `frame ${n} drawn: ${names.join(",")}`);
      const width = (name: string) => page.$eval(`g.frame[data-name="${name}"] rect`, (rect) => Number(rect.getAttribute("width")));
      const all = await width("all");
      await page.click('g.frame[data-name="tsbpf_outer"] rect');
      assert.equal(await width("tsbpf_outer"), all, "the clicked frame fills the width");
      await page.type("#search-input", "tsbpf_");
      const hits = await page.$$eval("g.frame.match", (gs) => gs.map((g) => g.getAttribute("data-name")));
      assert.ok(hits.includes("tsbpf_inner") && hits.includes("tsbpf_outer"), hits.join(","));
    } finally {
      await browser.close();
    }
  });
});

test("kernel frames resolve when kallsyms lists per-CPU symbols at low addresses, as Debian's kernels do", async () => {
  const { Kallsyms } = await import("../../src/internal/kallsyms.ts");
  // Offsets from a base of 0 lost the low 11 bits in a double: frames were named after a neighbour (__pfx_...).
  const k = new Kallsyms(
    "0000000000000000 A fixed_percpu_data\n0000000000001000 A cpu_debug_store\nffffffff81000000 T _stext\n" +
      "ffffffff81000010 T __pfx_vfs_read\nffffffff81000020 T vfs_read\nffffffff81000800 T __pfx_kernel_read\nffffffff81000810 T kernel_read\n",
  );
  assert.deepEqual([k.lookup(0xffffffff81000025n)?.name, k.lookup(0xffffffff81000025n)?.offset], ["vfs_read", 5]);
  assert.equal(k.lookup(0xffffffff81000815n)?.name, "kernel_read");
  assert.equal(k.lookup(0x1000n), undefined);
});
