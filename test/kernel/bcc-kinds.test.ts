// BCC's C dialect, the rest of it: static helpers inlined as BCC inlines them,
// and the table and program kinds of issue 16's item 8 (perf counter arrays,
// build-id stacks, prog arrays and tail calls, LPM tries, perf_event programs,
// KFUNC/KRETFUNC/LSM probes). Each program is loaded and run in this kernel
// and what it wrote is checked.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { BPF } from "../../src/index.ts";
import { translateBcc } from "../../src/bcc/dialect.ts";
import { readFormat } from "../../src/bcc/tracepoint.ts";

const cflags = [`-DTARGET_PID=${process.pid}`];

function openMissing(path: string, n: number): void {
  for (let i = 0; i < n; i++) {
    try {
      closeSync(openSync(path, "r"));
    } catch {
      // ENOENT: the syscall happened
    }
  }
}

describe("static helpers (item 5)", () => {
  test("a struct passed by value and a short string literal memcpy'd through a helper load and run", async () => {
    const text = `
struct key_t { u32 pid; char op[16]; u64 pad; };
BPF_HASH(counts, struct key_t, u64);
static int count(struct key_t key, const char *op)
{
    __builtin_memcpy(&key.op, op, sizeof(key.op));
    counts.increment(key);
    return 0;
}
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID) return 0;
    struct key_t key = {.pid = pid};
    return count(key, "open");
}
TRACEPOINT_PROBE(syscalls, sys_exit_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID) return 0;
    struct key_t key = {.pid = pid};
    return count(key, "fsync");
}`;
    using b = await BPF.load({ text, name: "byvalue.c" }, { cflags });
    for (let i = 0; i < 7; i++) assert.ok(process.ppid > 0); // getppid(2) each time
    const got = new Map(b.get("counts").items().map(([k, v]) => [k.op as string, Number(v)]));
    assert.equal(got.get("open"), 7);
    assert.equal(got.get("fsync"), 7);
  });
});

describe("implicit kernel reads through static helpers (tcpdrop, tcptracer)", () => {
  test("a helper's returned kernel pointer, and a parameter cast into another variable, are read with probe reads", async () => {
    const text = `
static struct task_struct *parent_of(struct task_struct *t) { return t->real_parent; }
static u32 tgid_of(struct task_struct *t) { struct task_struct *p = (struct task_struct *)t; return p->tgid; }
static u32 first(u32 *v) { return *v; }
BPF_ARRAY(out, u32, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID) return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct task_struct *parent = parent_of(task);
    u32 ppid = tgid_of(parent);
    u32 copy = first(&ppid);
    int k = 0;
    out.update(&k, &copy);
    return 0;
}`;
    const t = await translateBcc(text, { file: "helpers.c", tracepointFormat: readFormat, cflags });
    assert.match(t.code, /return __TSBPF_KREAD\(t->real_parent\);/);
    assert.match(t.code, /return __TSBPF_KREAD\(p->tgid\);/);
    assert.match(t.code, /return \*v; \}/, "a stack address passed to a helper is read directly");
    using b = await BPF.load({ text, name: "helpers.c" }, { cflags });
    const ppid = process.ppid; // getppid(2): the program runs
    assert.equal(Number(b.get("out").get(0)), ppid);
  });
});

describe("table and program kinds (item 8)", () => {
  test("BPF_PERF_ARRAY: openPerfEvent fills it with a software counter per CPU, perf_read(CUR_CPU_IDENTIFIER) reads it", async () => {
    const text = `
BPF_PERF_ARRAY(clock, 64);
BPF_ARRAY(seen, u64, 2);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID) return 0;
    u64 v = clock.perf_read(CUR_CPU_IDENTIFIER);
    int k = (s64)v < 0 ? 1 : 0;   /* 1: the read failed (a negative errno) */
    seen.atomic_increment(k);
    return 0;
}`;
    using b = await BPF.load({ text, name: "perfarray.c" }, { cflags });
    assert.throws(() => b.openPerfEvent("seen", 1, 0), /not a BPF_PERF_ARRAY/);
    b.openPerfEvent("clock", 1 /* PERF_TYPE_SOFTWARE */, 0 /* PERF_COUNT_SW_CPU_CLOCK */);
    for (let i = 0; i < 20; i++) assert.ok(process.ppid > 0);
    const seen = b.get("seen");
    assert.equal(Number(seen.get(0)), 20, "every read succeeded");
    assert.equal(Number(seen.get(1)), 0, "no read failed");
    b.closePerfEvent("clock");
    for (let i = 0; i < 5; i++) assert.ok(process.ppid > 0);
    assert.equal(Number(seen.get(1)), 5, "with the counters closed, perf_read fails (ENOENT), as in BCC");
  });

  test("BPF_PROG_ARRAY: .call(ctx, idx) tail-calls what setTailCall put at idx; a missing entry falls through", async () => {
    const text = `
BPF_PROG_ARRAY(jump, 4);
BPF_ARRAY(hits, u64, 4);
int tail_one(void *ctx) { hits.atomic_increment(1); return 0; }
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID) return 0;
    hits.atomic_increment(0);
    jump.call(args, 2);
    hits.atomic_increment(3);   /* only when the tail call did not happen */
    return 0;
}`;
    using b = await BPF.load({ text, name: "tailcall.c" }, { cflags });
    for (let i = 0; i < 3; i++) assert.ok(process.ppid > 0);
    b.setTailCall("jump", 2, "tail_one", BPF.TRACEPOINT);
    for (let i = 0; i < 4; i++) assert.ok(process.ppid > 0);
    const hits = b.get("hits");
    assert.deepEqual([0, 1, 3].map((k) => Number(hits.get(k))), [7, 4, 3]);
  });

  test("BPF_LPM_TRIE: the longest prefix matches, keys with prefixlen set from TypeScript", async () => {
    const text = `
struct lpm_key { u32 prefixlen; u32 addr; };
BPF_LPM_TRIE(routes, struct lpm_key, u64, 16);
BPF_ARRAY(found, u64, 3);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID) return 0;
    struct lpm_key a = {32, 0x0502010a}, c = {32, 0x0503010a}, d = {32, 0x0902010a};  /* 10.1.2.5, 10.1.3.5, 10.1.2.9 */
    u64 *v;
    int k;
    v = routes.lookup(&a); k = 0; if (v) found.update(&k, v);
    v = routes.lookup(&c); k = 1; if (v) found.update(&k, v);
    v = routes.lookup(&d); k = 2; if (v) found.update(&k, v);
    return 0;
}`;
    using b = await BPF.load({ text, name: "lpm.c" }, { cflags });
    const routes = b.get("routes");
    routes.set({ prefixlen: 24, addr: 0x0002010a }, 24n); // 10.1.2.0/24
    routes.set({ prefixlen: 16, addr: 0x0000010a }, 16n); // 10.1.0.0/16
    routes.set({ prefixlen: 32, addr: 0x0902010a }, 32n); // 10.1.2.9/32
    assert.ok(process.ppid > 0);
    const found = b.get("found");
    assert.deepEqual([0, 1, 2].map((k) => Number(found.get(k))), [24, 16, 32]);
  });

  test("perf_event functions and attachPerfEvent: a software cpu-clock event runs the program", async () => {
    const text = `
BPF_ARRAY(ticks, u64, 1);
int on_tick(struct bpf_perf_event_data *ctx) { if (ctx->sample_period) ticks.atomic_increment(0); return 0; }`;
    using b = await BPF.load({ text, name: "ticks.c" });
    b.attachPerfEvent({ evType: 1, evConfig: 0, fnName: "on_tick", samplePeriod: 1_000_000, pid: process.pid }); // every 1 ms of this process's CPU
    let x = 0;
    const until = process.cpuUsage().user + 200_000; // 200 ms of CPU
    while (process.cpuUsage().user < until) x += Math.sqrt(x + 1);
    assert.ok(Number(b.get("ticks").get(0)) >= 10, `ticks ${b.get("ticks").get(0)} after 200 ms of CPU`);
    b.detachPerfEvent({ evType: 1, evConfig: 0 });
  });

  test("BPF_STACK_TRACE_BUILDID: user stacks as build id + offset, resolved in a module added by path", async () => {
    const text = `
BPF_STACK_TRACE_BUILDID(stacks, 128);
BPF_ARRAY(ids, s64, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID) return 0;
    int k = 0;
    s64 id = stacks.get_stackid(args, BPF_F_USER_STACK);
    ids.update(&k, &id);
    return 0;
}`;
    using b = await BPF.load({ text, name: "buildid.c" }, { cflags });
    const nodeId = b.addModule(process.execPath);
    assert.match(nodeId ?? "", /^[0-9a-f]{40}$/);
    assert.ok(process.ppid > 0);
    const id = Number(b.get("ids").get(0));
    assert.ok(id >= 0, `get_stackid: ${id}`);
    const frames = b.walkBuildId("stacks", id);
    assert.ok(frames.length > 3, `${frames.length} frames`);
    const inNode = frames.filter((f) => f.status === "valid" && f.buildId === nodeId);
    assert.ok(inNode.length > 0, `frames in node: ${JSON.stringify(frames.slice(0, 4), (_, v) => (typeof v === "bigint" ? v.toString() : v))}`);
    const names = inNode.map((f) => b.symBuildId(f));
    assert.ok(names.some((n) => n !== "[unknown]"), names.join(", "));
  });

  test("KFUNC_PROBE, KRETFUNC_PROBE, LSM_PROBE translate to fentry/fexit/lsm; this host's lockdown refuses them, clearly", async () => {
    const text = `
BPF_HASH(n, u32, u64);
KFUNC_PROBE(do_unlinkat, int dfd, struct filename *name) { u32 k = 0; n.increment(k); return 0; }
KRETFUNC_PROBE(do_unlinkat, int dfd, struct filename *name, long ret) { u32 k = 1; n.increment(k, ret == 0); return 0; }
LSM_PROBE(path_unlink, const struct path *dir, struct dentry *dentry) { return 0; }`;
    await assert.rejects(BPF.load({ text, name: "kfunc.c" }), (err: unknown) => {
      assert.ok(err instanceof Error && err.name === "AttachError", String(err));
      assert.match(err.message, /kfunc__vmlinux__do_unlinkat|fentry/);
      assert.match(err.message, /lockdown/);
      return true;
    });
  });
});
