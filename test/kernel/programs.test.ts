// Loading and attaching real programs in this kernel: each attach type it has,
// global data, bpf-to-bpf calls, verifier errors, and nothing left behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Collection, VerifierError, AttachError, ProgType } from "../../src/index.ts";
import { assertDetached, HEADERS, linkIds, linksOfProgram, openFds, progIds, programsNamed, specOf } from "../support/kernel.ts";

/** Opens (and fails to open) a path `n` times: sys_enter_openat fires each time. */
function openMissing(path: string, n: number): void {
  for (let i = 0; i < n; i++) {
    try {
      closeSync(openSync(path, "r"));
    } catch {
      // ENOENT is the point: the syscall happened.
    }
  }
}

const OPEN_COUNTER = `${HEADERS}
const volatile u32 target_tgid = 0;
u64 hits = 0;
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, u32);
  __type(value, u64);
} by_pid SEC(".maps");

static __noinline u64 bump(u32 tgid) {
  u64 one = 1, *v = bpf_map_lookup_elem(&by_pid, &tgid);
  if (v) { __sync_fetch_and_add(v, 1); return *v; }
  bpf_map_update_elem(&by_pid, &tgid, &one, BPF_NOEXIST);
  return 1;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int count_openat(struct trace_event_raw_sys_enter *ctx) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (tgid != target_tgid) return 0;
  __sync_fetch_and_add(&hits, 1);
  bump(tgid);
  return 0;
}
`;

test("tracepoint program with a const volatile filter, a .bss counter and a bpf-to-bpf call", async () => {
  const spec = await specOf(OPEN_COUNTER);
  spec.variable("target_tgid").set(process.pid);
  using coll = Collection.load(spec);
  const link = coll.program("count_openat").attach();
  assert.match(link.target, /tracepoint:syscalls:sys_enter_openat/);
  openMissing("/nonexistent/tsbpf-tp", 25);
  link.close();
  openMissing("/nonexistent/tsbpf-tp", 5); // detached: not counted
  assert.equal(coll.variable("hits").get(), 25n);
  assert.equal(coll.map("by_pid").lookup(process.pid), 25n);
  assert.equal(coll.variable("target_tgid").get(), process.pid);
  assert.throws(() => coll.variable("target_tgid").set(1), /rodata/);
});

test("raw tracepoint and tp_btf programs see this process's syscalls", async () => {
  const spec = await specOf(`${HEADERS}
const volatile u32 target_tgid = 0;
u64 raw_hits = 0, btf_hits = 0;
SEC("raw_tp/sys_enter")
int on_raw(struct bpf_raw_tracepoint_args *ctx) {
  if ((bpf_get_current_pid_tgid() >> 32) == target_tgid && ctx->args[1] == 257 /* openat */)
    __sync_fetch_and_add(&raw_hits, 1);
  return 0;
}
SEC("tp_btf/sys_enter")
int BPF_PROG(on_btf, struct pt_regs *regs, long id) {
  if ((bpf_get_current_pid_tgid() >> 32) == target_tgid && id == 257)
    __sync_fetch_and_add(&btf_hits, 1);
  return 0;
}
`);
  using coll = Collection.load(spec, { constants: { target_tgid: process.pid } });
  const links = coll.attachAll();
  assert.equal(links.length, 2);
  assert.deepEqual(links.map((l) => l.target).sort(), ["raw_tracepoint:sys_enter", "tp_btf/sys_enter"]);
  openMissing("/nonexistent/tsbpf-raw", 10);
  for (const l of links) l.close();
  assert.ok((coll.variable("raw_hits").get() as bigint) >= 10n);
  assert.ok((coll.variable("btf_hits").get() as bigint) >= 10n);
  assert.equal(coll.program("on_btf").type, ProgType.TRACING);
});

test("uprobe and uretprobe on a binary built by the test, with a pid filter", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-uprobe-"));
  try {
    const bin = join(dir, "target");
    writeFileSync(
      join(dir, "target.c"),
      `#include <stdlib.h>
__attribute__((noinline)) int tsbpf_target(int x) { __asm__ volatile(""); return x * 2; }
int main(int argc, char **argv) { int n = atoi(argv[1]), s = 0; for (int i = 0; i < n; i++) s += tsbpf_target(i); return s == -1; }
`,
    );
    execFileSync("cc", ["-O1", "-o", bin, join(dir, "target.c")]);
    const spec = await specOf(`${HEADERS}
u64 calls = 0, ret_sum = 0;
SEC("uprobe")
int BPF_KPROBE(on_entry, int x) { __sync_fetch_and_add(&calls, 1); return 0; }
SEC("uretprobe")
int BPF_KRETPROBE(on_return, int ret) { __sync_fetch_and_add(&ret_sum, ret); return 0; }
`);
    using coll = Collection.load(spec);
    coll.program("on_entry").attachUprobe({ path: bin, symbol: "tsbpf_target" });
    coll.program("on_return").attachUprobe({ path: bin, symbol: "tsbpf_target", retprobe: true });
    execFileSync(bin, ["10"]);
    assert.equal(coll.variable("calls").get(), 10n);
    assert.equal(coll.variable("ret_sum").get(), 90n); // 2 * (0 + ... + 9)

    // A pid filter that matches nobody: no more calls counted.
    for (const l of coll.program("on_entry").links) l.close();
    coll.program("on_entry").attachUprobe({ path: bin, symbol: "tsbpf_target", pid: process.pid });
    execFileSync(bin, ["5"]);
    assert.equal(coll.variable("calls").get(), 10n);
    assert.throws(() => coll.program("on_entry").attachUprobe({ path: bin, symbol: "no_such_function" }), /no_such_function/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("kprobes on a kernel without them: an error that names the tracepoint to use", async (t) => {
  const spec = await specOf(`${HEADERS}
SEC("kprobe/__x64_sys_openat") int k(void *ctx) { return 0; }
SEC("kretprobe/__x64_sys_openat") int kr(void *ctx) { return 0; }
SEC("ksyscall/openat") int ks(void *ctx) { return 0; }
SEC("kprobe/vfs_read") int kv(void *ctx) { return 0; }
`);
  using coll = Collection.load(spec);
  const hasKprobes = spawnSync("sh", ["-c", "ls /sys/bus/event_source/devices/kprobe"]).status === 0;
  if (hasKprobes) {
    t.skip("this kernel has kprobes (the kprobe tests run in the VM suite)");
    return;
  }
  assert.throws(() => coll.program("k").attach(), (e: Error) => e instanceof AttachError && /no kprobes/.test(e.message) && /syscalls:sys_enter_openat/.test(e.message));
  assert.throws(() => coll.program("kr").attach(), /syscalls:sys_exit_openat/);
  assert.throws(() => coll.program("ks").attach(), /syscalls:sys_enter_openat/);
  assert.throws(() => coll.program("kv").attach(), (e: Error) => /no kprobes/.test(e.message) && !/sys_enter/.test(e.message));
});

test("a verifier rejection carries the log with the C source line", async () => {
  const spec = await specOf(`${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } arr SEC(".maps");
SEC("tp/syscalls/sys_enter_openat")
int bad(void *ctx) {
  u32 key = 0;
  u64 *v = bpf_map_lookup_elem(&arr, &key);
  return *v; /* tsbpf-null-deref */
}
`);
  const fds = openFds();
  assert.throws(
    () => Collection.load(spec),
    (e: Error) => {
      assert.ok(e instanceof VerifierError, `not a VerifierError: ${e}`);
      assert.equal(e.program, "bad");
      assert.match(e.log, /tsbpf-null-deref/); // the source line, from BTF line info
      assert.match(e.message, /invalid mem access|map_value_or_null/);
      return true;
    },
  );
  assert.equal(openFds(), fds, "the failed load left fds open");
});

test("fentry: loads where the kernel allows it, else a clear error", async () => {
  const spec = await specOf(`${HEADERS}
u64 seen = 0;
SEC("fentry/do_sys_openat2")
int BPF_PROG(on_open, int dfd) { __sync_fetch_and_add(&seen, 1); return 0; }
`);
  let coll: Collection | undefined;
  try {
    coll = Collection.load(spec);
  } catch (e) {
    assert.ok(e instanceof AttachError, `${e}`);
    assert.match((e as Error).message, /lockdown/);
    return;
  }
  using _ = coll;
  coll.attachAll();
  openMissing("/nonexistent/tsbpf-fentry", 3);
  assert.ok((coll.variable("seen").get() as bigint) >= 3n);
});

test("a missing program, map or variable name lists what exists", async () => {
  const spec = await specOf(OPEN_COUNTER);
  assert.throws(() => spec.program("nope"), /no program named "nope".*count_openat/);
  assert.throws(() => Collection.load(spec, { programs: ["nope"] }), /count_openat/);
  using coll = Collection.load(spec);
  assert.throws(() => coll.map("nope"), /by_pid/);
  assert.throws(() => coll.variable("nope"), /hits/);
});

test("dispose leaves no fd, program or link behind", async () => {
  const spec = await specOf(OPEN_COUNTER);
  const fds = openFds();
  // Ids, not counts: other objects (an earlier test's, freed after RCU) may go meanwhile.
  const linksBefore = new Set(linkIds());
  const progsBefore = new Set(progIds());
  const added = (now: number[], before: Set<number>) => now.filter((id) => !before.has(id));
  {
    using coll = Collection.load(spec, { constants: { target_tgid: process.pid } });
    coll.attachAll();
    assert.equal(added(linkIds(), linksBefore).length, 1);
    assert.equal(added(progIds(), progsBefore).length, 1);
    assert.ok(openFds() > fds);
  }
  assert.equal(openFds(), fds);
  // The kernel frees links and programs after an RCU grace period: wait for it, at most 5 s.
  for (let i = 0; i < 50 && added([...linkIds(), ...progIds()], new Set([...linksBefore, ...progsBefore])).length; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(added(linkIds(), linksBefore), []);
  assert.deepEqual(added(progIds(), progsBefore), []);
});

test("run: an XDP program runs on a packet the test gives (BPF_PROG_TEST_RUN), its return value and the packet it rewrote", async () => {
  const spec = await specOf(`${HEADERS}
u64 runs = 0;
SEC("xdp")
int mark(struct xdp_md *ctx) {
  unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  __sync_fetch_and_add(&runs, 1);
  if (data + 14 > end)
    return XDP_ABORTED;
  data[0] = 0xee;
  return data + 100 > end ? XDP_PASS : XDP_DROP;
}
`);
  using coll = Collection.load(spec);
  const prog = coll.program("mark");
  const short = prog.run({ data: new Uint8Array(64) });
  assert.equal(short.retval, 2); // XDP_PASS
  assert.equal(short.data?.byteLength, 64);
  assert.equal(short.data?.[0], 0xee);
  assert.equal(prog.run({ data: new Uint8Array(200) }).retval, 1); // XDP_DROP
  assert.equal(prog.run({ data: new Uint8Array(200), repeat: 10 }).retval, 1);
  assert.equal(coll.variable("runs").get(), 12n);
  // A packet shorter than Ethernet's header: the kernel refuses it, in one error.
  assert.throws(() => prog.run({ data: new Uint8Array(4) }), /EINVAL|Invalid argument/);
});

test("without privileges: one sentence that says what is needed", () => {
  const script = `import { BpfMap } from "./src/index.ts"; try { BpfMap.create({ type: 2, keySize: 4, valueSize: 4, maxEntries: 1 }); console.log("created"); } catch (e) { console.log(e.message); }`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: join(import.meta.dirname, "..", ".."),
    uid: 65534,
    gid: 65534,
    encoding: "utf8",
    env: { ...process.env, HOME: "/tmp" },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /needs root, or the capabilities CAP_BPF and CAP_PERFMON/);
});

test("await using a Collection detaches its links at once off the main thread, and leaves nothing", async () => {
  const names = ["tsbpf_async_a", "tsbpf_async_b", "tsbpf_async_c", "tsbpf_async_d"];
  const spec = await specOf(`${HEADERS}
u64 hits = 0;
${names.map((n, i) => `SEC("tracepoint/syscalls/sys_${i % 2 ? "exit" : "enter"}_${i < 2 ? "openat" : "close"}") int ${n}(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }`).join("\n")}
`);
  const fdsBefore = openFds();
  let programs: Collection["programs"];
  {
    await using coll = Collection.load(spec);
    const links = coll.attachAll();
    programs = coll.programs;
    assert.equal(links.length, 4);
    openMissing("/nonexistent/tsbpf-async", 3);
    assert.ok((coll.variable("hits").get() as bigint) >= 6n);
    for (const n of names) assert.equal(linksOfProgram(n).length, 1, n);
  }
  // Detached at once: the links' fds are closed...
  assert.ok([...programs.values()].every((p) => p.fd.closed && p.links.length === 0));
  // ...and the kernel frees them after an RCU grace period.
  await assertDetached(...names);
  assert.ok([...programs.values()].every((p) => p.fd.closed && p.links.length === 0));
  assert.equal(openFds(), fdsBefore, "every descriptor closed");
});
