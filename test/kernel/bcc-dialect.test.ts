// BCC's C dialect, construct by construct: each program is written as BCC's
// tools write them, compiled, loaded and run in this kernel, and the tables or
// events it produces are checked. Programs filter on this process's pid
// (-DTARGET_PID, as BCC tools substitute their filters into the text).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BPF, BccError, CompileError, VerifierError, AttachError } from "../../src/index.ts";
import { translate, log2HistLines, linearHistLines } from "../../src/bcc/index.ts";
import { kernelVersionCode, translateBcc } from "../../src/bcc/dialect.ts";
import { compile } from "../../src/compile/index.ts";
import { Collection } from "../../src/collection.ts";
import { readFormat } from "../../src/bcc/tracepoint.ts";
import { parseFormat, tracepointStruct } from "../../src/bcc/tracepoint.ts";
import { buildExecutable } from "../support/clang.ts";
import { linkIds } from "../support/kernel.ts";

const O_CLOEXEC = 0o2000000;
const cflags = [`-DTARGET_PID=${process.pid}`];

/** Opens (and fails to open) `path` n times: each is an openat() with O_RDONLY|O_CLOEXEC. */
function openMissing(path: string, n: number): void {
  for (let i = 0; i < n; i++) {
    try {
      closeSync(openSync(path, "r"));
    } catch {
      // ENOENT: the syscall happened, which is the point
    }
  }
}

const TABLES = `
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>
#include <linux/fs.h>
#include <net/sock.h>

struct key_t {
    u32 pid;
    char comm[TASK_COMM_LEN];
};
struct val_t {
    u64 count;
    u64 flags;
};

BPF_HASH(counts, struct key_t, struct val_t, 128);
BPF_HASH(plain);
BPF_ARRAY(arr, u64, 4);
BPF_PERCPU_ARRAY(pcpu, u64, 2);
BPF_PERCPU_HASH(pch, u32, u64);
BPF_HISTOGRAM(hist);
BPF_TABLE("lru_hash", u32, u64, lru, 16);
BPF_F_TABLE("hash", u32, u64, fh, 16, BPF_F_NO_PREALLOC);
BPF_QUEUE(q, u32, 8);
BPF_HASH(rawids, u64, u64);
BPF_HASH(exitret, u32, s64);
BPF_HASH(inflight, u32, u64);
BPF_HASH(parent, u32, u32);

TRACEPOINT_PROBE(syscalls, sys_enter_openat) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID)
        return 0;
    char name[16] = {};
    bpf_probe_read_user_str(&name, sizeof(name), args->filename);
    if (name[0] != '/' || name[1] != 'n' || name[2] != 'o' || name[3] != 'n')
        return 0; // only this test's "/nonexistent/..." opens
    u32 tid = bpf_get_current_pid_tgid();
    u64 yes = 1;
    inflight.update(&tid, &yes);
    struct key_t key = {};
    key.pid = pid;
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    struct val_t zero = {}, *val;
    val = counts.lookup_or_try_init(&key, &zero);
    if (val) {
        val->count++;
        val->flags = args->flags;
    }
    u64 k = 7, one = 1, *p = plain.lookup(&k);
    if (p)
        (*p)++;
    else
        plain.insert(&k, &one);
    u64 k2 = 8, k3 = 9;
    plain.update(&k2, &one);
    plain.update(&k3, &one);
    plain.delete(&k3);
    arr.increment(1);
    arr.atomic_increment(2, 5);
    pcpu.increment(0);
    pch.increment(pid, 2);
    hist.increment(bpf_log2l(args->flags + 1));
    lru.increment(pid);
    fh.atomic_increment(pid);
    u32 v = pid;
    q.push(&v, BPF_EXIST);
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 ppid = task->real_parent->tgid;
    parent.update(&pid, &ppid);
    return 0;
}

RAW_TRACEPOINT_PROBE(sys_enter) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID)
        return 0;
    u64 id = ctx->args[1];
    rawids.increment(id);
    return 0;
}

int tracepoint__syscalls__sys_exit_openat(struct tracepoint__syscalls__sys_exit_openat *args) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u32 tid = bpf_get_current_pid_tgid();
    if (pid != TARGET_PID || !inflight.lookup(&tid))
        return 0;
    inflight.delete(&tid);
    s64 ret = args->ret;
    exitret.update(&pid, &ret);
    return 0;
}
`;

describe("BCC tables and TRACEPOINT_PROBE", () => {
  test("every table kind and method, filled by auto-attached tracepoint programs", async () => {
    const before = new Set(linkIds());
    const b = await BPF.load({ text: TABLES, name: "tables.c" }, { cflags });
    try {
      assert.equal(b.numOpenTracepoints(), 3, "TRACEPOINT_PROBE, RAW_TRACEPOINT_PROBE and tracepoint__ are attached on load");
      openMissing("/nonexistent/tsbpf-bcc-tables", 5);

      const counts = b.get("counts").items();
      assert.equal(counts.length, 1);
      const [key, val] = counts[0]!;
      assert.equal(key.pid, process.pid);
      assert.equal(typeof key.comm, "string");
      assert.deepEqual(val, { count: 5n, flags: BigInt(O_CLOEXEC) });

      const plain = b.get("plain");
      assert.equal(plain.get(7n), 5n);
      assert.equal(plain.get(8n), 1n);
      assert.equal(plain.get(9n), undefined);
      assert.deepEqual(b.get("arr").values(), [0n, 5n, 25n, 0n]);
      assert.equal(b.get("pcpu").sum(0), 5n);
      assert.equal(b.get("pch").sum(process.pid), 10n);
      assert.equal(b.get("lru").get(process.pid), 5n);
      assert.equal(b.get("fh").get(process.pid), 5n);
      const q = b.get("q");
      const popped = [q.pop(), q.pop(), q.pop(), q.pop(), q.pop(), q.pop()];
      assert.deepEqual(popped, [process.pid, process.pid, process.pid, process.pid, process.pid, undefined]);
      assert.ok((b.get("rawids").get(257n) ?? 0n) >= 5n, "raw tracepoint saw the openat syscalls (x86_64 nr 257)");
      assert.equal(b.get("exitret").get(process.pid), -2n, "sys_exit_openat's ret is -ENOENT");
      assert.equal(b.get("parent").get(process.pid), process.ppid, "task->real_parent->tgid from bpf_get_current_task()");

      // bpf_log2l(O_CLOEXEC + 1) = 20: the slot of 2^19 .. 2^20-1.
      const hist = b.get("hist");
      assert.equal(hist.get(20), 5n);
      assert.deepEqual(hist.formatLog2Hist("flags"), [
        "     flags               : count     distribution",
        ...Array.from({ length: 19 }, (_, i) => {
          const slot = i + 1;
          const low = slot === 1 ? 0 : 2 ** (slot - 1);
          return `${String(low).padStart(10)} -> ${String(2 ** slot - 1).padEnd(10)} : 0        |${" ".repeat(40)}|`;
        }),
        `    524288 -> 1048575    : 5        |${"*".repeat(40)}|`,
      ]);
      assert.deepEqual(hist.formatLog2Hist("flags", { stripLeadingZero: true }).slice(1), [`    524288 -> 1048575    : 5        |${"*".repeat(40)}|`]);

      b.get("arr").clear();
      assert.deepEqual(b.get("arr").values(), [0n, 0n, 0n, 0n]);
      b.get("plain").clear();
      assert.deepEqual(b.get("plain").items(), []);
      assert.throws(() => b.get("nope"), /no table "nope" \(its tables: counts, plain/);
    } finally {
      b.cleanup();
    }
    assert.deepEqual(linkIds().filter((id) => !before.has(id)), [], "cleanup() detached everything");
  });
});

const EVENTS = `
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

struct event_t {
    u32 pid;
    int flags;
    char comm[TASK_COMM_LEN];
    char fname[64];
};
struct ret_t {
    u32 pid;
    long ret;
};

BPF_PERF_OUTPUT(events);
BPF_RINGBUF_OUTPUT(ring, 8);
BPF_RINGBUF_OUTPUT(rets, 8);
BPF_STACK_TRACE(stacks, 64);
BPF_HASH(stackids, u32, int);
BPF_HASH(params, u32, u64);

int syscall__openat(struct pt_regs *ctx, int dfd, const char __user *filename, int flags)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID)
        return 0;
    struct event_t e = {};
    e.pid = pid;
    e.flags = flags;
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    bpf_probe_read_user_str(&e.fname, sizeof(e.fname), (void *)filename);
    events.perf_submit(ctx, &e, sizeof(e));
    ring.ringbuf_output(&e, sizeof(e), 0);
    int id = stacks.get_stackid(ctx, 0);
    stackids.update(&pid, &id);
    bpf_trace_printk("tsbpf-bcc pid=%d flags=%d\\n", pid, flags);
    return 0;
}

int on_open_regs(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID)
        return 0;
    u64 flags = PT_REGS_PARM3(ctx);
    params.update(&pid, &flags);
    return 0;
}

int ret_openat(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID)
        return 0;
    struct ret_t *r = rets.ringbuf_reserve(sizeof(struct ret_t));
    if (!r)
        return 0;
    r->pid = pid;
    r->ret = PT_REGS_RC(ctx);
    rets.ringbuf_submit(r, 0);
    return 0;
}
`;

describe("kprobe functions, event buffers, trace_pipe", () => {
  test("syscall__ arguments, PT_REGS_PARMn, PT_REGS_RC, perf and ring buffers decoded from BTF, stacks, printk", async () => {
    const b = await BPF.load({ text: EVENTS, name: "events.c" }, { cflags });
    try {
      const openat = b.getSyscallFnname("openat");
      assert.equal(openat, `${b.getSyscallPrefix()}openat`);
      b.attachKprobe({ event: openat, fnName: "syscall__openat" });
      b.attachKprobe({ event: openat, fnName: "on_open_regs" });
      b.attachKretprobe({ event: openat, fnName: "ret_openat" });
      assert.equal(b.numOpenKprobes(), 3);

      // This process opens other files too (reading /sys for the CPU list...): keep ours.
      const path = `/nonexistent/tsbpf-bcc-${process.pid}`;
      const perf: { cpu: number; e: any; size: number }[] = [];
      b.get("events").openPerfBuffer((cpu, data, size) => {
        const e = b.get("events").event(data);
        if (e.fname === path) perf.push({ cpu, e, size });
      });
      const ring: any[] = [];
      b.get("ring").openRingBuffer((_ctx, data) => {
        const e = b.get("ring").event(data);
        if (e.fname === path) ring.push(e);
      });
      const rets: any[] = [];
      b.get("rets").openRingBuffer((_ctx, data) => rets.push(b.get("rets").event(data)));

      const fields = b.traceFields(); // trace_pipe opens now; the printk lines come below
      fields.catch(() => {});
      openMissing(path, 3);
      while (perf.length < 3) assert.ok((await b.perfBufferPoll(5000)) > 0, "perf records arrive");
      while (ring.length < 3) assert.ok((await b.ringBufferPoll(5000)) > 0, "ring records arrive");

      for (const { cpu, e, size } of perf) {
        assert.ok(cpu >= 0);
        assert.ok(size >= 4 + 4 + 16 + 64);
        assert.deepEqual(e, { pid: process.pid, flags: O_CLOEXEC, comm: e.comm, fname: path });
      }
      assert.deepEqual(ring, perf.map((p) => p.e));
      assert.ok(rets.length >= 3);
      assert.equal(rets.filter((r) => r.ret === -2n).length, 3, "the return value is the syscall's: -ENOENT");
      assert.ok(rets.every((r) => r.pid === process.pid));
      assert.equal(b.get("params").get(process.pid), BigInt(O_CLOEXEC), "PT_REGS_PARM3 is openat's flags argument");

      const stackId = b.get("stackids").get(process.pid);
      assert.ok(stackId >= 0, `get_stackid returned ${stackId}`);
      const frames = b.get("stacks").walk(stackId);
      assert.ok(frames.length > 0);
      assert.match(b.ksym(frames[0]!), /^[\w.]+$/);
      assert.notEqual(b.ksym(frames[0]!), "[unknown]");
      assert.match(BPF.ksym(frames[0]!, { showOffset: true, showModule: true }), /^[\w.]+\+0x[0-9a-f]+ \[kernel\]$/);

      let [task, pid, cpu, flags, ts, msg] = await fields;
      while (!msg.startsWith(`tsbpf-bcc pid=${process.pid}`)) [task, pid, cpu, flags, ts, msg] = await b.traceFields();
      assert.equal(msg, `tsbpf-bcc pid=${process.pid} flags=${O_CLOEXEC}`);
      assert.equal(pid, process.pid);
      assert.ok(task.length > 0 && cpu >= 0 && ts > 0 && typeof flags === "string");

      b.detachKprobe({ event: openat, fnName: "on_open_regs" });
      b.detachKretprobe({ event: openat });
      assert.equal(b.numOpenKprobes(), 1);
    } finally {
      b.cleanup();
    }
    assert.equal(b.numOpenKprobes(), 0);
  });

  test("kprobe__/kretprobe__ functions attach on load; kprobes on other functions say why they cannot", async () => {
    const b = await BPF.load(
      {
        text: `
BPF_HASH(seen, u32, u64);
int kprobe__sys_openat(struct pt_regs *ctx, int dfd, const char __user *filename, int flags) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID) return 0;
    u64 f = flags;
    seen.update(&pid, &f);
    return 0;
}
int kretprobe__sys_openat(struct pt_regs *ctx) {
    u32 key = 0;
    u64 ret = PT_REGS_RC(ctx);
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET_PID) seen.update(&key, &ret);
    return 0;
}
int other(struct pt_regs *ctx) { return 0; }
`,
        name: "auto.c",
      },
      { cflags },
    );
    try {
      assert.equal(b.numOpenKprobes(), 2);
      openMissing("/nonexistent/tsbpf-bcc-auto", 1);
      assert.equal(b.get("seen").get(process.pid), BigInt(O_CLOEXEC));
      assert.equal(b.get("seen").get(0), BigInt.asUintN(64, -2n));
      if (!b.kprobes) {
        assert.throws(
          () => b.attachKprobe({ event: "do_sys_openat2", fnName: "other" }),
          (err: unknown) => err instanceof AttachError && /no kprobes/.test(err.message) && /not a syscall function/.test(err.message),
        );
      }
    } finally {
      b.cleanup();
    }
  });

  test("the seed's C in kprobe mode: syscall__ arguments come from the wrapper's inner pt_regs and pass the verifier", async () => {
    const text = `
int syscall__openat(struct pt_regs *ctx, int dfd, const char __user *filename, int flags) {
    char buf[32];
    bpf_probe_read_user_str(&buf, sizeof(buf), (void *)filename);
    return flags + dfd;
}`;
    const t = translate(text, { file: "k.c", kprobes: true, tracepointFormat: () => undefined });
    assert.match(t.code, /int flags = \(int\)\(unsigned long\)\(__TSBPF_SYSCALL_ARG\(ctx, 3\)\);/);
    assert.doesNotMatch(t.code, /__tp/, "no tracepoint twins on kernels with kprobes");
    const b = await BPF.load({ text, name: "kmode.c" }, { kprobes: true });
    try {
      const program = b.loadFunc("syscall__openat", BPF.KPROBE);
      assert.ok(program.fd.value > 0);
      if (!BPF.supportKprobes()) assert.throws(() => b.attachKprobe({ event: b.getSyscallFnname("openat"), fnName: "syscall__openat" }), AttachError);
    } finally {
      b.cleanup();
    }
  });
});

describe("uprobes", () => {
  test("uprobe arguments and uretprobe return values (kprobe-type programs, also without kprobes)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsbpf-bcc-"));
    try {
      const exe = join(dir, "target");
      buildExecutable(
        `#include <stdio.h>
__attribute__((noinline)) int tsbpf_target(int a, int b) { return a * b + 1; }
int main(void) {
  char line[8];
  if (!fgets(line, sizeof line, stdin)) return 1;
  int r = tsbpf_target(6, 7);
  printf("called\\n");
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) return 1; /* alive until the test has symbolized */
  return r == 43 ? 0 : 2;
}`,
        exe,
      );
      const b = await BPF.load({
        text: `
BPF_HASH(calls, u32, u64);
int on_call(struct pt_regs *ctx, int a, int b) {
    u32 key = 0;
    u64 v = a * 100 + b;
    calls.update(&key, &v);
    u32 ipkey = 2;
    u64 ip = PT_REGS_IP(ctx);
    calls.update(&ipkey, &ip);
    return 0;
}
int on_return(struct pt_regs *ctx) {
    u32 key = 1;
    u64 v = PT_REGS_RC(ctx);
    calls.update(&key, &v);
    return 0;
}`,
        name: "uprobe.c",
      });
      try {
        b.attachUprobe({ name: exe, sym: "tsbpf_target", fnName: "on_call" });
        b.attachUretprobe({ name: exe, sym: "tsbpf_target", fnName: "on_return" });
        assert.equal(b.numOpenUprobes(), 2);
        const child = spawn(exe, [], { stdio: ["pipe", "pipe", "inherit"] });
        const exited = new Promise((resolve) => child.on("exit", resolve));
        child.stdin.write("go\n");
        await new Promise((resolve) => child.stdout.once("data", resolve));
        assert.equal(b.get("calls").get(0), 607n);
        assert.equal(b.get("calls").get(1), 43n);
        // The probe's instruction pointer, symbolized through the child's mappings and ELF symbols.
        const ip = b.get("calls").get(2) as bigint;
        assert.equal(b.sym(ip, child.pid!), "tsbpf_target");
        assert.match(BPF.sym(ip, child.pid!, { showOffset: true, showModule: true }), new RegExp(`^tsbpf_target\\+0x[0-9a-f]+ \\[${exe}\\]$`));
        assert.equal(b.sym(1n, child.pid!), "[unknown]");
        child.stdin.end("bye\n");
        assert.equal(await exited, 0);
        b.detachUprobe({ name: exe, sym: "tsbpf_target" });
        assert.equal(b.numOpenUprobes(), 1);
      } finally {
        b.cleanup();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("errors name the line and the construct", () => {
  const tr = (text: string) => translate(text, { file: "prog.c", tracepointFormat: (c, e) => (c === "sched" && e === "sched_switch" ? "" : undefined) });
  const fails = (text: string, line: number, construct: RegExp, detail: RegExp) =>
    assert.throws(
      () => tr(text),
      (err: unknown) => err instanceof BccError && err.line === line && construct.test(err.construct) && detail.test(err.message) && err.message.startsWith(`prog.c:${line}: `),
    );

  test("constructs outside the subset", () => {
    fails("\nBPF_HASH(a);\nBPF_HASH_OF_MAPS(outer, \"b\", 8);\n", 3, /^BPF_HASH_OF_MAPS$/, /the inner table "b" must be declared before it/);
    fails("BPF_HASH(a);\nint f(void *ctx) {\n  u64 k = 0;\n  a.call(ctx, k);\n  return 0;\n}\n", 4, /^a\.call\(\)$/, /\.call\(\) on a hash table is not part of tsbpf's BCC subset/);
    fails("BPF_PERF_OUTPUT(ev);\nint f(void *ctx) {\n\n  ev.lookup(&ctx);\n  return 0; }", 4, /^ev\.lookup\(\)$/, /perf_output tables have: \.perf_submit\(\)/);
    fails("#include <bcc/nothing.h>\n", 1, /bcc\/nothing\.h/, /not available in tsbpf/);
    fails("\n\nint kfunc__do_unlinkat(void *ctx) { return 0; }", 3, /^kfunc__do_unlinkat$/, /kfunc programs are not translated/);
    fails("MODULE_KFUNC_PROBE(ext4, ext4_sync_file) { return 0; }", 1, /^MODULE_KFUNC_PROBE$/, /fentry/);
    fails("\nTRACEPOINT_PROBE(nope, nothing) { return 0; }", 2, /^nope:nothing$/, /no tracepoint nope:nothing/);
    fails("int f(struct pt_regs *ctx, struct sock sk) { return 0; }", 1, /^f\(\.\.\.\)$/, /by value/);
    fails("int f(void *ctx, int a) { return 0; }", 1, /^f\(\.\.\.\)$/, /only kprobe functions/);
    fails("BPF_TABLE(\"no_such_kind\", u32, u32, jmp, 8);", 1, /^BPF_TABLE$/, /table type "no_such_kind"/);
    fails("BPF_HASH(a);\nint f(void *ctx) {\n  u64 k = 0, v = 1;\n  a.update(&k);\n  return 0;\n}\n", 4, /^a\.update\(\)$/, /expects 2 arguments, got 1/);
    fails("\nBPF_CGROUP_ARRAY(cgroups, 4);\n", 2, /^BPF_CGROUP_ARRAY$/, /cgroup arrays/);
  });

  test("clang's errors point at the user's line, in the user's file name", async () => {
    await assert.rejects(
      BPF.load({ text: "BPF_HASH(a);\n\nint f(struct pt_regs *ctx, int x) {\n  return undefined_thing + x;\n}\n", name: "broken.c" }),
      (err: unknown) =>
        err instanceof CompileError &&
        err.diagnostics.some((d) => d.file === "broken.c" && d.line === 4 && /undefined_thing/.test(d.message)),
    );
  });

  test("the verifier's messages carry the user's source lines", async () => {
    const b = await BPF.load({
      text: `BPF_HASH(h, u32, u64);
TRACEPOINT_PROBE(sched, sched_switch) {
    u32 k = 1;
    u64 *v = h.lookup(&k);
    return *v; // NULL not checked
}`,
      name: "unchecked.c",
    }).then(
      () => assert.fail("the verifier should refuse the NULL dereference"),
      (err: unknown) => err,
    );
    assert.ok(b instanceof VerifierError, String(b));
    assert.match((b as VerifierError).log, /return \*v; \/\/ NULL not checked/);
  });
});
