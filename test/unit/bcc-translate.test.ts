// Split from test/kernel/bcc-dialect.test.ts: the BCC dialect's translation to
// libbpf C, its tracepoint structs and histogram printing, without the kernel.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BPF, BccError, CompileError, VerifierError, AttachError } from "../../src/index.ts";
import { translate, log2HistLines, linearHistLines } from "../../src/bcc/index.ts";
import { parseFormat, tracepointStruct } from "../../src/bcc/tracepoint.ts";

describe("the translation itself", () => {
  test("keeps the user's line numbers, and frames tracepoint twins with #line", () => {
    const text = `#include <uapi/linux/ptrace.h>
BPF_PERF_OUTPUT(events);
BPF_HASH(h,
         u32,
         u64);
int syscall__openat(struct pt_regs *ctx,
                    int dfd,
                    const char __user *filename)
{
    u32 k = 0;
    u64 v = 1;
    h.update(&k,
             &v);
    events.perf_submit(ctx, &v, sizeof(v));
    return 0; // line 15
}
int after(void *ctx) { return 17; }
`;
    const t = translate(text, { file: "lines.c", kprobes: false, tracepointFormat: () => undefined });
    const body = t.code.slice(t.code.indexOf('#line 1 "lines.c"\n') + '#line 1 "lines.c"\n'.length);
    const lines = body.split("\n");
    // Without #line directives inside, physical line n is user line n until the twin.
    assert.match(lines[14]!, /return 0; \/\/ line 15/);
    assert.match(lines[5]!, /^SEC\("kprobe"\) int syscall__openat\(struct pt_regs \* ctx\)$/);
    assert.match(lines[8]!, /^\{ int dfd = .*const char __user \* filename = /);
    const twinAt = lines.indexOf('#line 6 "lines.c"');
    assert.ok(twinAt > 15, "the twin follows the function, renumbered from its first line");
    assert.match(lines[twinAt + 1]!, /^SEC\("tracepoint"\) int syscall__openat__tp\(struct pt_regs \* ctx\)$/);
    assert.match(lines[twinAt + 10]!, /return 0; \/\/ line 15/);
    assert.equal(lines[twinAt + 12], '#line 16 "lines.c"');
    assert.match(lines[twinAt + 14]!, /return 17/);
    assert.equal(t.functions.get("syscall__openat")?.tracepointVariant, "syscall__openat__tp");
    assert.deepEqual(t.tables.get("h"), { name: "h", kind: "hash", keyType: "u32", leafType: "u64", line: 3 });
  });

  test("tracepoint args structs follow the format file's offsets", () => {
    const format = `name: sys_enter_openat
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:int __syscall_nr;	offset:8;	size:4;	signed:1;
	field:int dfd;	offset:16;	size:8;	signed:0;
	field:const char * filename;	offset:24;	size:8;	signed:0;
	field:__data_loc char[] name;	offset:32;	size:4;	signed:0;
	field:char comm[16];	offset:36;	size:16;	signed:0;
	field:pid_t pid;	offset:52;	size:4;	signed:1;
`;
    assert.equal(
      tracepointStruct("tracepoint__syscalls__sys_enter_openat", parseFormat(format)),
      "struct tracepoint__syscalls__sys_enter_openat { u64 __do_not_use__; int __syscall_nr; char __pad_0[4]; u64 dfd; const char * filename; int data_loc_name; char comm[16]; s32 pid; };",
    );
  });

  test("histograms print as BCC prints them", () => {
    assert.deepEqual(log2HistLines([0, 1, 3, 10], "usecs", false), [
      "     usecs               : count     distribution",
      "         0 -> 1          : 1        |****                                    |",
      "         2 -> 3          : 3        |************                            |",
      "         4 -> 7          : 10       |****************************************|",
    ]);
    assert.deepEqual(log2HistLines([0, 0], "x", false), []);
    const wide = new Array(65).fill(0);
    wide[40] = 2;
    const lines = log2HistLines(wide, "bytes", true);
    assert.equal(lines[0], `               ${"bytes".padEnd(29)} : count     distribution`);
    assert.equal(lines[1], `${"549755813888".padStart(20)} -> ${"1099511627775".padEnd(20)} : 2        |${"*".repeat(20)}|`);
    assert.deepEqual(linearHistLines([2, 0, 1], "ms"), [
      "     ms            : count     distribution",
      `        0          : 2        |${"*".repeat(40)}|`,
      `        1          : 0        |${" ".repeat(40)}|`,
      `        2          : 1        |${"*".repeat(20)}${" ".repeat(20)}|`,
    ]);
  });
});

describe("static helpers, kernel-private structs (BCC's inlining, dcsnoop, mountsnoop)", () => {
  const tr = (text: string, kernelStructs: string[] = []) =>
    translate(text, { file: "p.c", tracepointFormat: () => undefined, kernelHasStruct: (n) => kernelStructs.includes(n) });

  test("helpers are inlined as BCC inlines them: a struct passed by value, a string literal through a parameter", () => {
    const text = `struct start_key { u32 dev; u64 sector; };
BPF_HASH(start, struct start_key);
static int __start(struct start_key key, const char *op)
{
    u64 ts = 0;
    __builtin_memcpy(&ts, op, sizeof(ts));
    start.update(&key, &ts);
    return 0;
}
static __noinline int kept(int x) { return x; }
static inline int already(int x) { return x; }
int trace_start(struct pt_regs *ctx) { struct start_key key = {}; return __start(key, "fsync") + kept(1) + already(2); }
`;
    const t = tr(text);
    const lines = t.code.slice(t.code.indexOf('#line 1 "p.c"\n')).split("\n").slice(1);
    assert.match(lines[2]!, /^__attribute__\(\(always_inline\)\) static int __start\(struct start_key key, const char \*op\)$/);
    assert.match(lines[9]!, /^static __noinline int kept/);
    assert.match(lines[10]!, /^static inline int already/);
    assert.match(lines[11]!, /^SEC\("kprobe"\) int trace_start/, "programs are not inlined, and lines hold");
  });

  test("a struct the kernel defines too is renamed in the user's text, keeping the tool's layout", () => {
    const text = `struct nameidata { struct path path; struct qstr last; };
struct mine { int x; };
int f(struct pt_regs *ctx, struct nameidata *nd) { struct nameidata2 { int y; } z = {}; return nd->last.len + z.y; }
`;
    const t = tr(text, ["nameidata", "path", "qstr", "nameidata2"]);
    const head = t.code.slice(0, t.code.indexOf('#line 1 "p.c"'));
    assert.match(head, /^#define nameidata nameidata___bcc$/m);
    assert.doesNotMatch(head, /#define (mine|path|qstr|nameidata2)\b/, "only structs the user defines at top level that the kernel has");
    assert.equal(tr(text, []).code.includes("___bcc"), false);
  });
});

describe("table and program kinds (item 8)", () => {
  const tr = (text: string) => translate(text, { file: "k.c", tracepointFormat: () => undefined, kernelHasStruct: () => false });

  test("perf arrays, build-id stacks, prog arrays, LPM tries and their methods", () => {
    const t = tr(`BPF_PERF_ARRAY(cycles, 8);
BPF_STACK_TRACE_BUILDID(stacks, 64);
BPF_PROG_ARRAY(jump, 4);
BPF_LPM_TRIE(trie, struct k4, u32);
int f(struct pt_regs *ctx) { u64 c = cycles.perf_read(CUR_CPU_IDENTIFIER); jump.call(ctx, 1); return stacks.get_stackid(ctx, BPF_F_USER_STACK) + c; }
`);
    assert.deepEqual([...t.tables.values()].map((x) => x.kind), ["perf_array", "stacktrace_buildid", "prog", "lpm_trie"]);
    assert.match(t.code, /struct \{ __uint\(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY\); __uint\(max_entries, 8\); __uint\(key_size, sizeof\(u32\)\); __uint\(value_size, sizeof\(u32\)\); \} cycles SEC\(".maps"\)/);
    assert.match(t.code, /value_size, sizeof\(struct bpf_stacktrace_buildid\)\); __uint\(map_flags, BPF_F_STACK_BUILD_ID\); \} stacks/);
    assert.match(t.code, /BPF_MAP_TYPE_PROG_ARRAY\); __uint\(max_entries, 4\);/);
    assert.match(t.code, /BPF_MAP_TYPE_LPM_TRIE\); __uint\(max_entries, 10240\); __type\(key, struct k4\); __type\(value, u32\); __uint\(map_flags, BPF_F_NO_PREALLOC\); \} trie/);
    assert.match(t.code, /u64 c = bpf_perf_event_read\(&cycles, CUR_CPU_IDENTIFIER\); bpf_tail_call\(ctx, &jump, 1\); return bpf_get_stackid\(ctx, &stacks, BPF_F_USER_STACK\)/);
    assert.equal(tr('BPF_F_TABLE("stacktrace", int, struct bpf_stacktrace_buildid, s, 8, BPF_F_STACK_BUILD_ID);').tables.get("s")?.kind, "stacktrace_buildid");
  });

  test("KFUNC_PROBE, KRETFUNC_PROBE, LSM_PROBE, KMOD_RET become libbpf's BPF_PROG in fentry/fexit/lsm/fmod_ret sections; perf_event functions", () => {
    const t = tr(`KFUNC_PROBE(do_unlinkat, int dfd,
            struct filename *name)
{ return 0; }
KRETFUNC_PROBE(tcp_sendmsg, struct sock *sk, struct msghdr *msg, size_t size, int ret) { return 0; }
LSM_PROBE(bpf, int cmd) { return 0; }
KMOD_RET(do_sys_open) { return 0; }
int on_sample(struct bpf_perf_event_data *ctx) { return 0; }
`);
    const lines = t.code.slice(t.code.indexOf('#line 1 "k.c"\n')).split("\n").slice(1);
    assert.equal(lines[0], 'SEC("fentry/do_unlinkat") int BPF_PROG(kfunc__vmlinux__do_unlinkat, int dfd, struct filename * name)');
    assert.equal(lines[2], "{ return 0; }", "the header keeps its lines");
    assert.match(lines[3]!, /^SEC\("fexit\/tcp_sendmsg"\) int BPF_PROG\(kretfunc__vmlinux__tcp_sendmsg, struct sock \* sk, .*int ret\)/);
    assert.match(lines[4]!, /^SEC\("lsm\/bpf"\) int BPF_PROG\(lsm__bpf, int cmd\)/);
    assert.match(lines[5]!, /^SEC\("fmod_ret\/do_sys_open"\) int BPF_PROG\(kmod_ret__do_sys_open\)/);
    assert.match(lines[6]!, /^SEC\("perf_event"\) int on_sample/);
    assert.deepEqual(t.functions.get("kretfunc__vmlinux__tcp_sendmsg")?.autoAttach, { type: "tracing", section: "fexit/tcp_sendmsg" });
    assert.equal(t.functions.get("on_sample")?.kind, "perf_event");
  });
});
