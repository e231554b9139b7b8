// tsbpf trace against workloads whose every open and call the test knows: a
// shell opening its own paths, and a small C program built here.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertDetached } from "../support/kernel.ts";
import { runTool, runToolIntoHead, tempDir, Workload, type ToolResult } from "../support/tools.ts";
import { probesAvailable } from "../../src/link/probe.ts";
import { cgroup2Root } from "../../src/link/cgroup.ts";
import { which } from "../../src/internal/which.ts";
import { formatMessage, formatValue, parseFormat } from "../../src/cli/trace/format.ts";
import { parseProbe, programName } from "../../src/cli/trace/probe.ts";

const dir = tempDir("tsbpf-trace-");
const plainA = join(dir.path, "a-plain");
const createdA = join(dir.path, "a-created");
const plainB = join(dir.path, "b-plain");
const createdB = join(dir.path, "b-created");
const binary = join(dir.path, "tsbpftraceprog");
let a: Workload;
let b: Workload;
let prog: ChildProcess;

const PROGRAM = String.raw`
#include <string.h>
#include <unistd.h>
__attribute__((noinline)) int tsbpf_add(int a, int b) { __asm__ volatile(""); return a + b; }
__attribute__((noinline)) int tsbpf_greet(const char *name) { return (int)strlen(name); }
int main(void) {
	for (;;) {
		char name[32];
		/* On the stack, so paged in when the probe reads it (a probe cannot fault pages in), and
		 * read by tsbpf_greet, so that no compiler drops the copy. */
		strcpy(name, "hello from tsbpf");
		tsbpf_add(40, 2);
		tsbpf_add(-5, 3);
		volatile int n = tsbpf_greet(name);
		(void)n;
		usleep(100000);
	}
}
`;

before(() => {
  writeFileSync(plainA, "a\n");
  writeFileSync(plainB, "b\n");
  // Each shell opens one path read-only and creates another (O_CREAT), every 0.1 s.
  a = new Workload(dir.path, "tsbpftra", `read x < ${plainA}; echo y > ${createdA}`);
  b = new Workload(dir.path, "tsbpftrb", `read x < ${plainB}; echo y > ${createdB}`);
  const cc = which("cc") ?? which("gcc") ?? which("clang");
  assert.ok(cc, "a C compiler (cc, gcc or clang) is needed to build the uprobe workload");
  writeFileSync(join(dir.path, "prog.c"), PROGRAM);
  execFileSync(cc, ["-O0", "-o", binary, join(dir.path, "prog.c")]);
  prog = spawn(binary, [], { stdio: "ignore" });
});

after(() => {
  a[Symbol.dispose]();
  b[Symbol.dispose]();
  prog.kill("SIGKILL");
  dir[Symbol.dispose]();
});

const OPENAT = `t:syscalls:sys_enter_openat "%s", args->filename`;

/** A clear one-line answer: "tsbpf trace: ..." first, and no stack trace. */
function assertClearError(r: ToolResult, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit code of: ${r.err}`);
  const first = r.err.split("\n")[0];
  assert.match(first, /^tsbpf trace: /, r.err);
  assert.match(first, message);
  assert.doesNotMatch(r.err, /\n\s+at /, "a stack trace was printed");
}

test("a tracepoint probe prints PID, TID, COMM and the %s string; a filter keeps only what it matches; Ctrl-C detaches", async () => {
  const r = await runTool(
    ["trace", OPENAT, `syscalls:sys_enter_openat (args->flags & 0100) "created %s flags=%#o", args->filename, args->flags`],
    { until: (o) => o.includes(`created ${createdA}`) && o.includes(` ${plainA}\n`) },
  );
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0], /^PID\s+TID\s+COMM\s+FUNC\s+-$/);
  const line = (text: string) => new RegExp(`^${a.pid}\\s+${a.pid}\\s+tsbpftra\\s+sys_enter_openat\\s+${text}$`);
  // Probe 1 prints both opens; probe 2 only the one with O_CREAT (0100).
  assert.ok(r.lines.some((l) => line(plainA).test(l)), r.out);
  assert.ok(r.lines.some((l) => line(createdA).test(l)), r.out);
  assert.ok(r.lines.some((l) => line(`created ${createdA} flags=01101`).test(l)), r.out);
  assert.ok(!r.out.includes(`created ${plainA}`), "the filter let a read-only open through");
  await assertDetached(...([[0, "sys_enter_openat"], [1, "sys_enter_openat"]] as [number, string][]).map(([i, d]) => programName(i, d)));
});

test("STRCMP in a filter keeps the strings that start with its literal, as BCC's trace compares them (tracepoint and uprobe)", async () => {
  const r = await runTool(
    [
      "trace",
      `t:syscalls:sys_enter_openat (STRCMP("${plainA}", args->filename)) "%s", args->filename`,
      `p:${binary}:tsbpf_greet (STRCMP("hello", arg1) && !STRCMP("hellx", arg1)) "greet %s", arg1`,
    ],
    { until: (o) => o.includes(` ${plainA}\n`) && o.includes("greet hello from tsbpf") },
  );
  assert.equal(r.code, 0, r.err);
  const opens = r.lines.filter((l) => l.includes("sys_enter_openat"));
  assert.ok(opens.length > 0 && opens.every((l) => l.endsWith(` ${plainA}`)), `only ${plainA} passes:\n${opens.slice(0, 5).join("\n")}`);
  assert.ok(r.lines.some((l) => /\stsbpf_greet\s+greet hello from tsbpf$/.test(l)), r.out);
  // -B: the quotes hold bytes, as BCC's --bin_cmp takes them ("he" and a last byte BCC leaves out).
  const bytes = await runTool(["trace", "-B", `p:${binary}:tsbpf_greet (STRCMP("{'h', 'e', 0}", arg1)) "greet %s", arg1`], { until: (o) => o.includes("greet hello") });
  assert.equal(bytes.code, 0, bytes.err);
  assert.ok(bytes.lines.some((l) => l.endsWith("greet hello from tsbpf")), bytes.out);
  const bad = await runTool(["trace", `t:syscalls:sys_enter_openat (STRCMP(args->filename)) "%s", args->filename`], { timeoutMs: 30_000 });
  assertClearError(bad, 2, /STRCMP in the filter takes a string literal and an expression: STRCMP\("text", arg1\)/);
  await assertDetached(programName(0, "sys_enter_openat"), programName(1, "tsbpf_greet"));
});

test("-c keeps the tasks of one cgroup v2 and its children, as BCC's trace -c does; a path that is no cgroup is refused", async () => {
  const cg = join(cgroup2Root(), `tsbpf-trace-${process.pid}`);
  mkdirSync(cg);
  const inside = join(dir.path, "c-inside");
  writeFileSync(inside, "c\n");
  const c = new Workload(dir.path, "tsbpftrc", `read x < ${inside}`);
  try {
    writeFileSync(join(cg, "cgroup.procs"), String(c.pid));
    const r = await runTool(["trace", "-c", cg, OPENAT], { until: (o) => o.includes(` ${inside}\n`) });
    assert.equal(r.code, 0, r.err);
    const rows = r.lines.slice(1).map((l) => l.trim().split(/\s+/));
    assert.ok(rows.some(([pid]) => Number(pid) === c.pid), r.out);
    // The shell in the cgroup and the sleeps it forks; not the workloads outside it.
    assert.deepEqual([...new Set(rows.map(([, , comm]) => comm))].filter((comm) => comm !== "tsbpftrc" && comm !== "sleep"), [], r.out);
    assert.ok(!rows.some(([pid]) => Number(pid) === a.pid || Number(pid) === b.pid), r.out);
    const notCgroup = await runTool(["trace", "-c", dir.path, OPENAT], { timeoutMs: 30_000 });
    assertClearError(notCgroup, 2, /-c\/--cgroup-path: .* is not on a cgroup v2 file system/);
    await assertDetached(programName(0, "sys_enter_openat"));
  } finally {
    c[Symbol.dispose]();
    // The cgroup can go once the shell and its last sleep have left it.
    for (let i = 0; i < 100 && readFileSync(join(cg, "cgroup.procs"), "utf8").trim(); i++) await new Promise((r) => setTimeout(r, 50));
    rmdirSync(cg);
  }
});

const USDT_PROGRAM = String.raw`
#include <sys/sdt.h>
#include <string.h>
#include <unistd.h>
int main(void) {
	for (long i = 0;; i++) {
		char name[32];
		strcpy(name, "hello usdt"); /* on the stack: paged in when the probe reads it */
		DTRACE_PROBE2(tsbpf, tick, i, name);
		usleep(50000);
	}
}
`;

test("u:LIBRARY:[PROVIDER:]PROBE: a USDT probe's arguments where its notes place them, with a filter and -p; unknown probes and arguments are named", async () => {
  const bin = join(dir.path, "tsbpfusdt");
  writeFileSync(`${bin}.c`, USDT_PROGRAM);
  execFileSync(which("cc") ?? "gcc", ["-O1", "-o", bin, `${bin}.c`]);
  const child = spawn(bin, [], { stdio: "ignore" });
  try {
    const ticks = (out: string) => out.split("\n").filter((l) => /\stick\s+tick /.test(l));
    const r = await runTool(["trace", "-p", String(child.pid), `u:${bin}:tsbpf:tick (arg1 % 2 == 0) "tick %d %s", arg1, arg2`], { until: (o) => ticks(o).length >= 3 });
    assert.equal(r.code, 0, r.err);
    for (const l of ticks(r.out)) {
      const m = /^(\d+)\s.* tick (\d+) hello usdt$/.exec(l);
      assert.ok(m && Number(m[1]) === child.pid && Number(m[2]) % 2 === 0, l);
    }
    await assertDetached(programName(0, "tick"));
    const [nosuch, arg] = await Promise.all([
      runTool(["trace", `u:${bin}:nosuch`], { timeoutMs: 30_000 }),
      runTool(["trace", `u:${bin}:tick "%d", arg3`], { timeoutMs: 30_000 }),
    ]);
    assertClearError(nosuch, 2, /has no USDT probe nosuch; its probes: tsbpf:tick$/);
    assertClearError(arg, 2, /"arg3" in the argument "arg3": the USDT probe tsbpf:tick has 2 arguments$/);
  } finally {
    child.kill("SIGKILL");
  }
});

test("-I: a header of the user's is included by path, a kernel header is left to vmlinux.h, an unknown one is named", async () => {
  const header = join(dir.path, "tsbpf-trace.h");
  writeFileSync(header, "#define TSBPF_TRACE_WANTED(flags) (((flags) & 0100) != 0)\n");
  const r = await runTool(
    ["trace", "-I", "linux/fs.h", "-I", header, `t:syscalls:sys_enter_openat (TSBPF_TRACE_WANTED(args->flags)) "%s", args->filename`],
    { until: (o) => o.includes(` ${createdA}\n`) },
  );
  assert.equal(r.code, 0, r.err);
  assert.ok(!r.out.includes(` ${plainA}\n`), "the header's filter let a read-only open through");
  const missing = await runTool(["trace", "-I", "nosuch/tsbpf.h", OPENAT], { timeoutMs: 60_000 });
  assertClearError(missing, 2, /-I\/--include: cannot find nosuch\/tsbpf\.h: it is not a kernel header/);
});

test("-p keeps one process in the kernel, --json gives the fields, -M stops after N events", async () => {
  const r = await runTool(["trace", "--json", "-t", "-M", "6", "-p", String(a.pid), OPENAT], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.signal, null);
  assert.equal(r.json.length, 6, r.out);
  for (const e of r.json) {
    assert.equal(e.pid, a.pid, JSON.stringify(e));
    assert.equal(e.tid, a.pid);
    assert.equal(e.comm, "tsbpftra");
    assert.equal(e.func, "sys_enter_openat");
    assert.equal(typeof e.time, "number");
    assert.ok([plainA, createdA].includes(e.message), JSON.stringify(e));
    assert.deepEqual(e.values, [e.message]);
  }
  assert.ok(!r.out.includes(plainB) && !r.out.includes(createdB), "-p let another process through");
  await assertDetached(...([[0, "sys_enter_openat"]] as [number, string][]).map(([i, d]) => programName(i, d)));
});

test("-A counts identical events up to -M and prints each once with its count, most frequent first, as BCC's trace -A", async () => {
  const r = await runTool(["trace", "-A", "-M", "10", "-p", String(prog.pid), `p:${binary}:tsbpf_add "%d+%d", arg1, arg2`], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.err);
  // The workload calls tsbpf_add(40, 2) then tsbpf_add(-5, 3) every 0.1 s: two events, 5 of each in 10.
  const counts = [...r.out.matchAll(/ tsbpf_add +(\S+)\n-->COUNT (\d+)\n/g)].map(([, msg, n]) => [msg, Number(n)] as const);
  assert.deepEqual(new Set(counts.map(([msg]) => msg)), new Set(["40+2", "-5+3"]), r.out);
  assert.equal(counts.reduce((n, [, c]) => n + c, 0), 10, r.out);
  assert.ok(counts[0]![1] >= counts[1]![1], "the most frequent first");
  const refused = await runTool(["trace", "-A", OPENAT], { timeoutMs: 30_000 });
  assertClearError(refused, 2, /-M\/--max-events should be specified with -A\/--aggregate/);
});

test("uprobes and uretprobes on a binary's functions and on libc: arg1, arg2, %s of a user string, retval with a filter", async () => {
  const probes = [
    `p:${binary}:tsbpf_add "%d+%d", arg1, arg2`,
    `r:${binary}:tsbpf_add ((int)retval < 0) "negative sum %d", retval`,
    `uprobe:${binary}:tsbpf_greet "[%-18s] [%5.3s]", arg1, arg1`,
    `c:usleep "usleep(%u)", arg1`,
  ];
  const wanted = ["40+2", "-5+3", "negative sum -2", "[hello from tsbpf  ] [  hel]", "usleep(100000)"];
  const r = await runTool(["trace", "-p", String(prog.pid), ...probes], { until: (o) => wanted.every((w) => o.includes(w)) });
  assert.equal(r.code, 0, r.err);
  for (const w of wanted) {
    const func = w.startsWith("[") ? "tsbpf_greet" : w.startsWith("usleep") ? "usleep" : "tsbpf_add";
    assert.ok(
      r.lines.some((l) => l === `${String(prog.pid).padEnd(7)} ${String(prog.pid).padEnd(7)} ${"tsbpftraceprog".padEnd(15)} ${func.padEnd(16)} ${w}`),
      `no line for ${w}:\n${r.out}`,
    );
  }
  assert.ok(!r.out.includes("negative sum 42"), "the retval filter let a positive sum through");
  await assertDetached(...([[0, "tsbpf_add"], [1, "tsbpf_add"], [2, "tsbpf_greet"], [3, "usleep"]] as [number, string][]).map(([i, d]) => programName(i, d)));
});

test("-K and -U print the kernel and user stacks after each event, as BCC's trace does; -a adds addresses", async () => {
  const probes = [`p:${binary}:tsbpf_greet`, "t:syscalls:sys_enter_clock_nanosleep"];
  const r = await runTool(["trace", "-K", "-U", "-M", "4", "-p", String(prog.pid), ...probes], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.err);
  const events = r.out.split("\n\n").filter((e) => e.trim() && !e.startsWith("PID"));
  const greet = events.find((e) => e.includes(" tsbpf_greet "));
  assert.ok(greet, r.out);
  // A uprobe fires in user mode: no kernel stack (-EFAULT, printed as BCC prints it), then the user frames.
  assert.match(greet, /\n        -14\n        tsbpf_greet\+0x0 \[tsbpftraceprog\]\n(?:        .*\n)*?        main\+0x[0-9a-f]+ \[tsbpftraceprog\]/);
  const sleep = events.find((e) => e.includes(" sys_enter_clock_nanosleep"));
  assert.ok(sleep, r.out);
  // The syscall's kernel frames, then usleep's in libc.
  assert.match(sleep, /\n        do_syscall_64\+0x[0-9a-f]+ \[kernel\]\n(?:        .*\n)*        .*\[libc\.so\.6\]/);

  const a = await runTool(["trace", "-U", "-a", "-M", "1", "-p", String(prog.pid), `p:${binary}:tsbpf_greet`], { timeoutMs: 30_000 });
  assert.match(a.out, /\n         *[0-9a-f]+ tsbpf_greet\+0x0 \[tsbpftraceprog\]\n/);
  const j = await runTool(["trace", "--json", "-U", "-M", "1", "-p", String(prog.pid), `p:${binary}:tsbpf_greet`], { timeoutMs: 30_000 });
  assert.equal(j.json[0]!.user_stack[0], "tsbpf_greet+0x0 [tsbpftraceprog]");
  await assertDetached(...([[0, "tsbpf_greet"], [1, "sys_enter_clock_nanosleep"]] as [number, string][]).map(([i, d]) => programName(i, d)));
});

test("tsbpf trace | head -n 2 ends the tool, leaving nothing attached", async () => {
  const { code, out } = await runToolIntoHead(["trace", OPENAT], 2, 30_000);
  assert.equal(code, 0);
  assert.equal(out.trim().split("\n").length, 2, out);
  assert.match(out, /^PID\s+TID\s+COMM\s+FUNC\s+-\n\d+\s+\d+\s+\S.*sys_enter_openat /);
  await assertDetached(...([[0, "sys_enter_openat"]] as [number, string][]).map(([i, d]) => programName(i, d)));
});

test("mistakes and what tsbpf trace cannot do get a clear one-line answer", async () => {
  const run = (...args: string[]) => runTool(["trace", ...args], { timeoutMs: 30_000 });
  const [kprobe, field, tracepoint, filter, conversion, usdt, stack, compileError, symbol, help] = await Promise.all([
    run(`__x64_sys_openat "%s", arg2@user`),
    run(`t:syscalls:sys_enter_openat "%s", args->filenam`),
    run(`t:syscalls:sys_enter_nosuch "%d", args->x`),
    run(`t:syscalls:sys_enter_openat (args->flags & 1 "%s", args->filename`),
    run(`t:syscalls:sys_enter_openat "%q", args->filename`),
    run("u:pthread:pthread_create"),
    run("-s", "/tmp/syms", OPENAT),
    run(`t:syscalls:sys_enter_openat (nosuchvar > 1)`),
    run(`p:${binary}:no_such_function`),
    run("--help"),
  ]);
  if (!probesAvailable("kprobe")) {
    // The library's answer, with the tracepoint to use in tsbpf trace's own terms.
    assertClearError(kprobe, 1, /no kprobes.*Use the tracepoint syscalls:sys_enter_openat.*'t:syscalls:sys_enter_openat'.*args->filename/);
    await assertDetached(...([[0, "__x64_sys_openat"]] as [number, string][]).map(([i, d]) => programName(i, d)));
  }
  assertClearError(field, 2, /has no field "filenam"; its fields are: __syscall_nr, dfd, filename, flags, mode$/);
  assertClearError(tracepoint, 1, /tracepoint syscalls:sys_enter_nosuch does not exist on this kernel/);
  assertClearError(filter, 2, /the filter has no closing "\)"/);
  assertClearError(conversion, 2, /"%q": the conversion %q is not supported\. Supported: %d/);
  assertClearError(usdt, 2, /has no USDT probe pthread_create/);
  assertClearError(stack, 2, /-s\/--sym_file_list \(symbol files for stacks\) is not supported/);
  assertClearError(compileError, 2, /the C of the probes does not compile/);
  assert.match(compileError.err, /probe 1 filter:1:\d+: error: use of undeclared identifier 'nosuchvar'/);
  assertClearError(symbol, 2, /symbol 'no_such_function' not found in /);
  assert.equal(help.code, 0);
  assert.match(help.out, /usage: tsbpf trace/);
  assert.match(help.out, /-M, --max-events N/);
});

test("probe text is split as BCC's trace splits it", () => {
  const t = parseProbe(`t:syscalls:sys_enter_openat (args->flags & 0100) "%s %d\\n", args->filename, f(a, b)`);
  assert.equal(t.type, "t");
  assert.deepEqual(t.parts, ["syscalls", "sys_enter_openat"]);
  assert.equal(t.filter, "args->flags & 0100");
  assert.equal(t.format, "%s %d\\n");
  assert.deepEqual(t.args, ["args->filename", "f(a, b)"]);
  const r = parseProbe(`r:c:malloc ((void *)retval == 0) "failed"`);
  assert.deepEqual([r.type, r.parts, r.filter, r.format, r.args], ["r", ["c", "malloc"], "(void *)retval == 0", "failed", []]);
  assert.deepEqual(parseProbe("tracepoint:sched:sched_switch").parts, ["sched", "sched_switch"]);
  assert.deepEqual([parseProbe("do_sys_open").type, parseProbe("do_sys_open").where], ["p", "kernel"]);
  assert.deepEqual(parseProbe("r::vfs_read").parts, ["", "vfs_read"]);
  assert.deepEqual(parseProbe("uretprobe:/bin/bash:readline").parts, ["/bin/bash", "readline"]);
  assert.equal(parseProbe("sched:sched_switch").type, undefined); // a tracepoint if it exists, else LIBRARY:FUNCTION
  const sig = parseProbe(`p:c:write(int fd, const char *buf, size_t n) (fd == 1) "%d", n`);
  assert.deepEqual(sig.signature, [{ type: "int", name: "fd" }, { type: "const char *", name: "buf" }, { type: "size_t", name: "n" }]);
  assert.equal(parseProbe("p:c:malloc+0x10").offset, 16);
  assert.throws(() => parseProbe(`t:a:b "x`), /no closing double quote/);
  assert.throws(() => parseProbe(`t:a:b (x) y`), /expected a format string in double quotes/);
  assert.throws(() => parseProbe(`q:a:b`), /unknown probe type "q"/);
});

test("the %-formatter prints as C's printf does", () => {
  const f = (fmt: string, ...values: (string | bigint)[]) => formatMessage(parseFormat(fmt), values);
  assert.equal(f("%d|%5d|%-5d|%05d|%+d|% d", 42n, 42n, 42n, -42n, 7n, 7n), "42|   42|42   |-0042|+7| 7");
  assert.equal(f("%x %X %#x %08lx %o %#o", 255n, 255n, 255n, 0xbeefn, 8n, 8n), "ff FF 0xff 0000beef 10 010");
  assert.equal(f("%s|%10s|%-6s|%.2s|%c|%%", "abc", "abc", "abc", "abc", 65n), "abc|       abc|abc   |ab|A|%");
  assert.equal(f("%p %p %.3d", 0x1000n, 0n, 5n), "0x1000 (nil) 005");
  assert.equal(formatValue(parseFormat("%llu").conversions[0], 18446744073709551615n), "18446744073709551615");
  const convs = parseFormat("%hhd %hu %lld %s %c").conversions;
  assert.deepEqual(convs.map((c) => [c.storage, c.ctype]), [
    ["signed", "signed char"], ["unsigned", "unsigned short"], ["signed", "long long"], ["string", "char *"], ["signed", "char"],
  ]);
  assert.throws(() => parseFormat("%*d"), /width or precision from an argument/);
  assert.throws(() => parseFormat("%f"), /%f is not supported/);
});
