// Bad input never shows a stack trace: every bad invocation of every command
// gets one sentence on stderr naming the problem, and exit 2 (usage) or 1
// (runtime). Non-root cases run as uid 65534 (nobody) through setpriv.
import { after, before, mock, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, chownSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ToolRun } from "../../src/cli/tool.ts";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "bin", "tsbpf.js");
const NOBODY = 65534;
const STACK_FRAME = /^\s+at /m;

interface Case {
  args: string[];
  code: number;
  /** What stderr must say (stdout for "stdout" cases: usage texts printed on purpose). */
  says: RegExp;
  stream?: "stdout";
  /** Run as uid/gid 65534, with no capabilities. */
  nobody?: boolean;
}

let dir = "";
const f = (name: string) => join(dir, name);

const PROGRAM = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct event { int pid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_openat")
int handle(void *ctx) { struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0); if (e) bpf_ringbuf_submit(e, 0); return 0; }
char LICENSE[] SEC("license") = "GPL";
`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "tsbpf-cli-errors-"));
  chmodSync(dir, 0o755); // nobody must reach the files it is meant to read
  writeFileSync(f("p.bpf.c"), PROGRAM);
  const built = spawnSync(process.execPath, [bin, "gen", "skeleton", f("p.bpf.c"), "-o", f("p.skel.ts")], { encoding: "utf8" });
  assert.equal(built.status, 0, built.stderr);
  const object = readFileSync(f("p.bpf.o"));
  writeFileSync(f("head.o"), object.subarray(0, 100)); // the ELF header and a little more
  writeFileSync(f("half.o"), object.subarray(0, object.length >> 1)); // no section headers
  writeFileSync(f("empty.o"), "");
  writeFileSync(f("text.o"), "this is not an ELF file\n");
  writeFileSync(f("broken.bpf.c"), `${PROGRAM}\nint broken( {\n`);
  copyFileSync(f("p.bpf.o"), f("secret.o"));
  chmodSync(f("secret.o"), 0o600); // root's: nobody cannot read it
  chownSync(f("secret.o"), 0, 0);
  mkdirSync(f("adir"));
});

after(() => rmSync(dir, { recursive: true, force: true }));

const PROBE = `t:syscalls:sys_enter_openat "%s", args->filename`;

function cases(): Case[] {
  const pid = /expects a process ID from 1 to 4194303/;
  const uid = /expects a user ID from 0 to 4294967294/;
  const c = (code: number, says: RegExp, ...args: string[]): Case => ({ args, code, says });
  const asNobody = (code: number, says: RegExp, ...args: string[]): Case => ({ args, code, says, nobody: true });
  return [
    // tsbpf itself
    { args: [], code: 2, says: /usage: tsbpf COMMAND/, stream: "stdout" },
    c(2, /unknown command "nosuch"/, "nosuch"),
    c(2, /unknown command "--pid"/, "--pid"),

    // opensnoop: numbers
    c(2, /-p\/--pid expects a process ID from 1 to 4194303, got "4294967296"/, "opensnoop", "-p", "4294967296"),
    c(2, pid, "opensnoop", "-p", "0"),
    c(2, /-p\/--pid expects a process ID .*got "-1"/, "opensnoop", "-p", "-1"),
    c(2, pid, "opensnoop", "-p", "abc"),
    c(2, pid, "opensnoop", "-p", "1.5"),
    c(2, pid, "opensnoop", "-p", "1e3"),
    c(2, pid, "opensnoop", "-p", ""),
    c(2, pid, "opensnoop", "--pid=4294967296"),
    c(2, pid, "opensnoop", "-p4294967296"),
    c(2, /-t\/--tid expects a process ID/, "opensnoop", "-t", "4294967296"),
    c(2, /-u\/--uid expects a user ID from 0 to 4294967294, got "4294967296"/, "opensnoop", "-u", "4294967296"),
    c(2, uid, "opensnoop", "-u", "4294967295"),
    c(2, uid, "opensnoop", "-u", "-5"),
    c(2, /-d\/--duration expects a number of seconds from 1 to 4294967295/, "opensnoop", "-d", "0"),
    c(2, /-d\/--duration expects a number of seconds/, "opensnoop", "-d", "-1"),
    c(2, /-d\/--duration expects a number of seconds/, "opensnoop", "-d", "99999999999999"),
    c(2, /-d\/--duration expects a number of seconds/, "opensnoop", "-d", "1.5"),
    // opensnoop: option syntax
    c(2, /-p\/--pid needs a value$/m, "opensnoop", "-p"),
    c(2, /-n\/--name needs a value$/m, "opensnoop", "-n"),
    c(2, /-n\/--name needs a value, but the option -x follows it .*--name=-x/, "opensnoop", "-n", "-x"),
    c(2, /unknown option --bogus/, "opensnoop", "--bogus"),
    c(2, /unknown option -Z$/m, "opensnoop", "-Z"),
    c(2, /unknown option -Z \(in "-xZ"\)/, "opensnoop", "-xZ"),
    c(2, /--json takes no value/, "opensnoop", "--json=yes"),
    c(2, /unexpected argument "extra"/, "opensnoop", "extra"),
    c(2, /-f\/--flag-filter: unknown flag "O_NOPE"/, "opensnoop", "-f", "O_NOPE"),
    c(2, /-f\/--flag-filter: unknown flag ""/, "opensnoop", "-f", ""),
    c(2, /-n\/--name: a command name has at most 15 bytes/, "opensnoop", "-n", "sixteen_chars_xx"),

    // execsnoop
    c(2, /-P\/--ppid expects a process ID from 1 to 4194303, got "99999999999"/, "execsnoop", "-P", "99999999999"),
    c(2, /-P\/--ppid expects a process ID .*got "-1"/, "execsnoop", "-P", "-1"),
    c(2, /-u\/--uid expects a user ID/, "execsnoop", "-u", "4294967296"),
    c(2, /--max-args expects an integer from 1 to 60, got "0"/, "execsnoop", "--max-args", "0"),
    c(2, /--max-args expects an integer from 1 to 60, got "61"/, "execsnoop", "--max-args", "61"),
    c(2, /--max-args expects an integer from 1 to 60/, "execsnoop", "--max-args", "99999999999999999999"),
    c(2, /-l\/--line: Invalid regular expression/, "execsnoop", "-l", "("),
    c(2, /-d\/--duration expects a number of seconds/, "execsnoop", "-d", "4294967296"),
    c(2, /unknown option --nope/, "execsnoop", "--nope"),
    c(2, /--max-args needs a value/, "execsnoop", "--max-args"),
    c(2, /unexpected argument "x"/, "execsnoop", "x"),

    // trace: options
    c(2, /give at least one probe/, "trace"),
    c(2, /-p\/--pid expects a process ID from 1 to 4194303, got "4294967296"/, "trace", "-p", "4294967296", PROBE),
    c(2, /-p\/--pid expects a process ID .*got "-7"/, "trace", "-p", "-7", PROBE),
    c(2, /-L\/--tid expects a process ID/, "trace", "-L", "4294967296", PROBE),
    c(2, /only one of -p\/--pid and -L\/--tid/, "trace", "-p", "1", "-L", "1", PROBE),
    c(2, /--uid expects a user ID/, "trace", "--uid", "4294967296", PROBE),
    c(2, /-Z\/--string-size expects an integer from 1 to 4096, got "0"/, "trace", "-Z", "0", PROBE),
    c(2, /-Z\/--string-size expects an integer from 1 to 4096, got "4097"/, "trace", "-Z", "4097", PROBE),
    c(2, /-b\/--buffer-pages expects a power of two, got 3/, "trace", "-b", "3", PROBE),
    c(2, /-b\/--buffer-pages expects an integer from 1 to 65536/, "trace", "-b", "131072", PROBE),
    c(2, /-M\/--max-events expects an integer >= 1, got "0"/, "trace", "-M", "0", PROBE),
    c(2, /-M\/--max-events expects an integer >= 1, got "-3"/, "trace", "-M", "-3", PROBE),
    c(2, /-d\/--duration expects a number of seconds/, "trace", "-d", "2147483648000", PROBE),
    c(2, /-u\/--unix-timestamp goes with -t\/--timestamp/, "trace", "-u", PROBE),
    c(2, /-M\/--max-events should be specified with -A\/--aggregate/, "trace", "-A", PROBE),
    c(2, /-I\/--include: cannot find x\.h: it is not a kernel header/, "trace", "-I", "x.h", PROBE),
    c(2, /unknown option --bogus/, "trace", "--bogus", PROBE),
    // trace: probes
    c(2, /an empty probe/, "trace", ""),
    c(2, /probe 'r:syscalls:sys_enter_openat': "syscalls" is a tracepoint category, not a library: a tracepoint has no return probe; a syscall's return is the tracepoint t:syscalls:sys_exit_openat/, "trace", "r:syscalls:sys_enter_openat"),
    c(2, /"syscalls" is a tracepoint category, not a library: .* t:syscalls:sys_exit_read/, "trace", 'r:syscalls:sys_exit_read "%d", retval'),
    c(2, /a syscall's return is the tracepoint t:syscalls:sys_exit_openat /, "trace", "r:syscalls:openat"),
    c(2, /"syscalls" is a tracepoint category, not a library: p: is a function's entry; write t:syscalls:sys_enter_openat/, "trace", "p:syscalls:sys_enter_openat"),
    c(2, /"sched" is a tracepoint category, not a library: a tracepoint has no return probe; write t:sched:sched_switch/, "trace", "r:sched:sched_switch"),
    c(1, /tracepoint syscalls:sys_enter_nosuch does not exist on this kernel/, "trace", "t:syscalls:sys_enter_nosuch"),
    c(2, /a tracepoint is t:CATEGORY:EVENT/, "trace", "t:syscalls"),
    c(2, /unknown probe type "x"/, "trace", "x:y:z:w"),
    c(2, /there is no tracepoint nosuch:thing, nor a library or program "nosuch"/, "trace", "nosuch:thing"),
    c(2, /the filter has no closing "\)"/, "trace", "t:syscalls:sys_enter_openat (args->flags"),
    c(2, /the conversion %q is not supported/, "trace", 't:syscalls:sys_enter_openat "%q", args->flags'),
    c(2, /the format has 2 conversions \(%d %d\) but 1 argument follows it/, "trace", 't:syscalls:sys_enter_openat "%d %d", args->flags'),
    c(2, /has no field "nofield"/, "trace", 't:syscalls:sys_enter_openat "%d", args->nofield'),
    c(2, /the binary \/nonexistent\/bin does not exist/, "trace", "p:/nonexistent/bin:main"),
    c(2, /probe 'p:\/etc\/passwd:main': .*not an ELF file/, "trace", "p:/etc/passwd:main"),
    c(2, /probe 'p:\/tmp:main': cannot read \/tmp: EISDIR/, "trace", "p:/tmp:main"),
    c(2, /symbol 'no_such_function' not found in /, "trace", "p:/bin/true:no_such_function"),
    c(2, /has no USDT probe probe; /, "trace", "u:c:probe"),
    c(2, /-s\/--sym_file_list \(symbol files for stacks\) is not supported/, "trace", "-s", "/tmp/syms", PROBE),
    // A syscall's own function falls back to its tracepoint (same arguments); an inner function only names what is missing.
    c(1, /probe 'p::__x64_sys_openat2': .*this kernel has no kprobes.*'t:syscalls:sys_enter_openat2', whose values are .*args->filename/, "trace", "p::__x64_sys_openat2"),
    c(1, /probe 'p::do_sys_openat2': cannot attach kprobe to do_sys_openat2: this kernel has no kprobes/, "trace", "p::do_sys_openat2"),

    // hello
    c(2, /unexpected argument "extra"/, "hello", "extra"),
    c(2, /unknown option --nope/, "hello", "--nope"),

    // gen
    c(2, /say what to generate: tsbpf gen skeleton INPUT or tsbpf gen types INPUT/, "gen"),
    c(2, /unknown kind "nope"/, "gen", "nope", f("p.bpf.o")),
    c(2, /gen types takes one INPUT .*got 0/, "gen", "types"),
    c(2, /gen types takes one INPUT .*got 2/, "gen", "types", f("p.bpf.o"), f("p.bpf.o")),
    c(2, /INPUT is an empty file name/, "gen", "types", ""),
    c(2, /\/nonexistent\.o: no such file/, "gen", "types", "/nonexistent.o"),
    c(2, /\/missing\.bpf\.c: no such file/, "gen", "types", f("missing.bpf.c")),
    c(2, /adir is a directory/, "gen", "types", f("adir")),
    c(2, /\/dev\/null is not a regular file/, "gen", "types", "/dev/null"),
    c(1, /text\.o: bad magic .*not an ELF file/, "gen", "types", f("text.o")),
    c(1, /empty\.o/, "gen", "types", f("empty.o")),
    c(1, /head\.o/, "gen", "types", f("head.o")),
    c(1, /half\.o/, "gen", "skeleton", f("half.o")),
    c(1, /true is not a BPF object \(ELF machine 62\)/, "gen", "types", "/bin/true"),
    c(1, /no struct, union or enum named "nope"/, "gen", "types", f("p.bpf.o"), "--type", "nope"),
    c(1, /broken\.bpf\.c/, "gen", "types", f("broken.bpf.c")),
    c(2, /--embed and --import are for skeletons/, "gen", "types", f("p.bpf.o"), "--embed"),
    c(2, /unknown option --bogus/, "gen", "types", f("p.bpf.o"), "--bogus"),
    c(2, /-o\/--output needs a value/, "gen", "types", f("p.bpf.o"), "-o"),
    c(1, /cannot write .*adir: EISDIR/, "gen", "types", f("p.bpf.o"), "-o", f("adir")),
    // (node 20's mkdirSync({ recursive: true }) spun forever on this one)
    c(1, /cannot write \/proc\/nonexistent\/x\.ts: ENOENT/, "gen", "types", f("p.bpf.o"), "-o", "/proc/nonexistent/x.ts"),
    c(1, /cannot write \/etc\/passwd\/x\.ts: ENOTDIR/, "gen", "types", f("p.bpf.o"), "-o", "/etc/passwd/x.ts"),

    // vm (what fails before a guest boots)
    { args: ["vm"], code: 2, says: /usage: tsbpf vm run/, stream: "stdout" },
    c(2, /unknown subcommand "nope"/, "vm", "nope"),
    c(2, /no command given/, "vm", "run"),
    c(2, /--cpus x: expected a positive number/, "vm", "run", "--cpus", "x", "--", "true"),
    c(2, /--timeout -1: expected a number of seconds/, "vm", "run", "--timeout", "-1", "--", "true"),
    c(2, /unknown option --bogus/, "vm", "run", "--bogus", "--", "true"),
    c(2, /--kernel needs a value/, "vm", "run", "--kernel"),
    c(2, /--env X: expected NAME=VALUE/, "vm", "run", "--env", "X", "--", "true"),

    // Without privileges: one sentence, and checked before anything reads tracefs or the kernel.
    asNobody(1, /^tsbpf opensnoop: tsbpf needs root, or the capabilities CAP_BPF and CAP_PERFMON/, "opensnoop"),
    asNobody(1, /^tsbpf execsnoop: tsbpf needs root/, "execsnoop"),
    asNobody(1, /^tsbpf hello: tsbpf needs root/, "hello"),
    asNobody(1, /^tsbpf trace: tsbpf needs root/, "trace", PROBE),
    asNobody(1, /^tsbpf trace: tsbpf needs root/, "trace", "r:syscalls:sys_enter_openat"),
    asNobody(1, /^tsbpf trace: tsbpf needs root/, "trace", "p:c:malloc"),
    asNobody(2, /-p\/--pid expects a process ID/, "opensnoop", "-p", "4294967296"),
    asNobody(2, /the filter has no closing "\)"/, "trace", "t:syscalls:sys_enter_openat (args->flags"),
    asNobody(1, /cannot read .*secret\.o: EACCES/, "gen", "types", f("secret.o")),
    asNobody(0, /^$/, "gen", "types", f("p.bpf.o")),
  ];
}

function runCase(k: Case): Promise<{ code: number | null; out: string; err: string }> {
  const argv = k.nobody
    ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, bin, ...k.args]
    : [process.execPath, bin, ...k.args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    // A hung command fails its case (exit null) instead of hanging the suite.
    const guard = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve({ code, out, err });
    });
  });
}

test("60+ bad invocations across every command: one sentence naming the problem, exit 2 or 1, never a stack frame", async () => {
  const all = cases();
  assert.ok(all.length >= 60, `${all.length} cases`);
  const failures: string[] = [];
  // Two at a time: the machine has two cores, shared.
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const k = all[next++]!;
      const r = await runCase(k);
      const name = `tsbpf ${k.args.map((a) => JSON.stringify(a)).join(" ")}${k.nobody ? " (as nobody)" : ""}`;
      const problems: string[] = [];
      if (r.code !== k.code) problems.push(`exit ${r.code}, expected ${k.code}`);
      if (STACK_FRAME.test(r.out) || STACK_FRAME.test(r.err)) problems.push("a stack frame was printed");
      if (/this is a bug in tsbpf/.test(r.err)) problems.push("reported as a bug");
      const text = k.stream === "stdout" ? r.out : r.err;
      if (!k.says.test(text)) problems.push(`${k.stream ?? "stderr"} does not match ${k.says}`);
      if (k.code !== 0 && k.stream === undefined && !/^tsbpf[ :]/.test(r.err)) problems.push("stderr does not start with \"tsbpf\"");
      if (problems.length) failures.push(`${name}: ${problems.join("; ")}\n--- stderr:\n${r.err.slice(0, 1500)}`);
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepEqual(failures, [], failures.join("\n\n"));
});

test("-d beyond setTimeout's 2^31-1 ms waits in steps instead of stopping at once (TimeoutOverflowWarning)", () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on("warning", onWarning);
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const durationMs = 2_147_484 * 1000; // the issue's -d 2147484
    using run = new ToolRun({ durationSec: 2_147_484 });
    mock.timers.tick(2 ** 31 - 1);
    assert.equal(run.signal.aborted, false, "stopped after the first 2^31-1 ms step");
    mock.timers.tick(durationMs - (2 ** 31 - 1) - 1);
    assert.equal(run.signal.aborted, false, "stopped 1 ms early");
    mock.timers.tick(1);
    assert.equal(run.signal.aborted, true, "did not stop at the duration");
    assert.equal(run.signal.reason, "duration");
  } finally {
    mock.timers.reset();
    process.off("warning", onWarning);
  }
  assert.deepEqual(warnings, []);
});

test("a long -d runs the tool (it used to exit at once with a TimeoutOverflowWarning)", async () => {
  const child = spawn(process.execPath, [bin, "opensnoop", "-d", "2147484", "-n", "no_such_comm"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  while (!out.includes("PATH") && !exitedEarly) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!exitedEarly, `exited before its header: ${err}`);
  // Running and attached: a SIGINT now is what stops it, not the duration.
  child.kill("SIGINT");
  assert.equal(await exited, 0, err);
  assert.doesNotMatch(err, /TimeoutOverflowWarning/);
  assert.doesNotMatch(err, STACK_FRAME);
});

test("main: a TsbpfError is one line and exit 1, a UsageError exit 2, anything else keeps its stack, says 'this is a bug in tsbpf' once, exit 1", async () => {
  const { command, main } = await import("../../src/cli/main.ts");
  const { NotSupportedError, UsageError } = await import("../../src/errors.ts");
  const thrower = (err: unknown) => async () => ({ run: async (): Promise<number> => { throw err; } });
  command("test-usage", "", thrower(new UsageError("bad option")));
  command("test-runtime", "", thrower(new NotSupportedError("kprobes", "tsbpf: this kernel has no kprobes")));
  command("test-bug", "", thrower(new TypeError("undefined is not a function")));
  const lines: string[] = [];
  const spy = mock.method(console, "error", (...args: unknown[]) => lines.push(args.map((a) => (a instanceof Error ? a.stack : String(a))).join(" ")));
  try {
    assert.equal(await main(["test-usage"]), 2);
    assert.deepEqual(lines.splice(0), ['tsbpf test-usage: bad option\nRun "tsbpf test-usage --help" for its options.']);
    assert.equal(await main(["test-runtime"]), 1);
    assert.deepEqual(lines.splice(0), ["tsbpf test-runtime: this kernel has no kprobes"]);
    assert.equal(await main(["test-bug"]), 1);
    const text = lines.join("\n");
    assert.match(text, /TypeError: undefined is not a function\n\s+at /, "the bug's stack is kept");
    assert.equal(text.match(/this is a bug in tsbpf/g)?.length, 1);
  } finally {
    spy.mock.restore();
  }
});
