// Stack maps read back from real programs: bpf_get_stackid in a tracepoint
// (kernel and user stacks of a test process), a build-id stack map, a
// bpf_get_stack buffer, and bpf_get_stackid in a perf_event program; each
// stack symbolized with the process's own function names.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Collection } from "../../src/index.ts";
import { attachPerfEvent } from "../../src/link/perf_event.ts";
import { decodeBuildIdStack, decodeStack, readBuildIdStack, readStack, stackIdError, stackIds } from "../../src/maps/stack.ts";
import { ElfImage } from "../../src/elf/symtab.ts";
import { Symbolizer, UNKNOWN } from "../../src/symbolize/index.ts";
import { HEADERS, specOf } from "../support/kernel.ts";

const dir = mkdtempSync(join(tmpdir(), "tsbpf-stacks-"));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

// main -> tsbpf_level_one -> tsbpf_level_two -> getppid(), then spins in tsbpf_spin.
const WORKLOAD = `
#include <unistd.h>
__attribute__((noinline)) void tsbpf_spin(void) { for (volatile int i = 0; i < 2000000; i++) ; }
__attribute__((noinline)) void tsbpf_level_two(void) { getppid(); tsbpf_spin(); }
__attribute__((noinline)) void tsbpf_level_one(void) { tsbpf_level_two(); }
int main(void) { for (;;) tsbpf_level_one(); }
`;

function workload(): { child: ChildProcess; bin: string } {
  const bin = join(dir, "work");
  writeFileSync(join(dir, "work.c"), WORKLOAD);
  execFileSync("cc", ["-O0", "-g", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", bin, join(dir, "work.c")]);
  const child = spawn(bin, { stdio: "ignore" });
  children.push(child);
  return { child, bin };
}

const PROG = `${HEADERS}
const volatile u32 target = 0;
struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 1024);
  __uint(key_size, sizeof(u32));
  __uint(value_size, 127 * sizeof(u64));
} stacks SEC(".maps");
struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 128);
  __uint(key_size, sizeof(u32));
  __uint(value_size, 32 * sizeof(struct bpf_stack_build_id));
  __uint(map_flags, BPF_F_STACK_BUILD_ID);
} bid_stacks SEC(".maps");
struct stack_key { s32 kstack; s32 ustack; s32 bstack; };
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct stack_key);
  __type(value, u64);
} counts SEC(".maps");
struct buf { u64 ips[64]; };
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, struct buf);
} last_stack SEC(".maps");
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct stack_key);
  __type(value, u64);
} samples SEC(".maps");

static void count(void *map, struct stack_key *k) {
  u64 one = 1, *n = bpf_map_lookup_elem(map, k);
  if (n) __sync_fetch_and_add(n, 1); else bpf_map_update_elem(map, k, &one, BPF_NOEXIST);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) {
  if (bpf_get_current_pid_tgid() >> 32 != target) return 0;
  struct stack_key k = {};
  k.kstack = bpf_get_stackid(ctx, &stacks, 0);
  k.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
  k.bstack = bpf_get_stackid(ctx, &bid_stacks, BPF_F_USER_STACK);
  count(&counts, &k);
  u32 zero = 0;
  struct buf *b = bpf_map_lookup_elem(&last_stack, &zero);
  if (b) bpf_get_stack(ctx, b->ips, sizeof(b->ips), BPF_F_USER_STACK);
  return 0;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx) {
  if (bpf_get_current_pid_tgid() >> 32 != target) return 0;
  struct stack_key k = {};
  k.kstack = bpf_get_stackid(ctx, &stacks, 0);
  k.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
  k.bstack = -1;
  count(&samples, &k);
  return 0;
}
`;

interface Key { kstack: number; ustack: number; bstack: number }

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

test("bpf_get_stackid in a tracepoint: kernel and user stacks, build ids and bpf_get_stack, symbolized", async () => {
  const { child, bin } = workload();
  const spec = await specOf(PROG);
  spec.variable("target").set(child.pid!);
  using coll = Collection.load(spec);
  using _link = coll.program("on_getppid").attach();
  const counts = coll.map<Key, bigint>("counts");
  await until(() => [...counts.values()].reduce((a, b) => a + b, 0n) >= 5n);
  const entries = [...counts.entries()];
  assert.ok(entries.length >= 1, "the workload's getppid calls were seen");
  const [key] = entries.sort((a, b) => Number(b[1] - a[1]))[0]!;
  assert.ok(key.kstack >= 0, `kernel stack id (${stackIdError(key.kstack)})`);
  assert.ok(key.ustack >= 0, `user stack id (${stackIdError(key.ustack)})`);
  const stacks = coll.map("stacks");
  assert.ok(stackIds(stacks).includes(key.kstack));

  const sym = new Symbolizer();
  const kernel = sym.kernelStack(readStack(stacks, key.kstack));
  assert.ok(kernel.length >= 2);
  for (const f of kernel) assert.ok(f.address >= 0xffff800000000000n, "kernel addresses");
  assert.ok(kernel.every((f) => f.name !== UNKNOWN), `every kernel frame resolves: ${kernel.map((f) => f.name).join(" <- ")}`);
  assert.ok(kernel.some((f) => f.name === "do_syscall_64"), `the syscall path: ${kernel.map((f) => f.name).join(" <- ")}`);

  const userAddrs = readStack(stacks, key.ustack);
  const user = sym.userStack(child.pid!, userAddrs).map((f) => f.name);
  // getppid (libc, a leaf without a frame) hides its caller, tsbpf_level_two, from the frame-pointer walk.
  assert.equal(user[0], "getppid", user.join(" <- "));
  assert.ok(user.includes("tsbpf_level_one") && user.includes("main"), user.join(" <- "));
  assert.ok(user.indexOf("tsbpf_level_one") < user.indexOf("main"));

  // bpf_get_stack's buffer decodes to the same addresses as the map's stack
  const buf = coll.map("last_stack").lookupBytes(new Uint8Array(4))!;
  assert.deepEqual(decodeStack(buf), userAddrs);

  // the build-id stack: the workload's frames carry its build id and file offsets
  if (key.bstack >= 0) {
    const frames = readBuildIdStack(coll.map("bid_stacks"), key.bstack);
    assert.equal(frames.length, userAddrs.length);
    const id = ElfImage.open(bin).buildId()!;
    const own = frames.filter((f) => f.status === "valid" && f.buildId === id);
    assert.ok(own.length >= 1, `a frame in the workload: ${JSON.stringify(frames, (_, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v))}`);
  } else {
    assert.fail(`build-id stack: ${stackIdError(key.bstack)}`);
  }
});

test("bpf_get_stackid in a perf_event program: the sampled process's user stack shows where it spins", async () => {
  const { child } = workload();
  const spec = await specOf(PROG);
  spec.variable("target").set(child.pid!);
  using coll = Collection.load(spec);
  using _link = attachPerfEvent(coll.program("on_sample"), { event: "cpu-clock", frequency: 499 });
  const samples = coll.map<Key, bigint>("samples");
  await until(() => [...samples.values()].reduce((a, b) => a + b, 0n) >= 20n);
  const sym = new Symbolizer();
  let spinning = 0n;
  for (const [key, n] of samples.entries()) {
    if (key.ustack < 0) continue;
    const user = sym.userStack(child.pid!, readStack(coll.map("stacks"), key.ustack)).map((f) => f.name);
    if (user[0] === "tsbpf_spin") {
      assert.deepEqual(user.slice(0, 4), ["tsbpf_spin", "tsbpf_level_two", "tsbpf_level_one", "main"]);
      spinning += n;
    }
  }
  assert.ok(spinning > 0n, "samples in tsbpf_spin, with its callers");
});

test("decoders: u64 stacks stop at 0; build-id frames by status", () => {
  const b = new Uint8Array(40);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 0xffffffff81000010n, true);
  v.setBigUint64(8, 0x401000n, true);
  v.setBigUint64(24, 0x5n, true); // after the 0: ignored
  assert.deepEqual(decodeStack(b), [0xffffffff81000010n, 0x401000n]);
  const f = new Uint8Array(96);
  const fv = new DataView(f.buffer);
  fv.setInt32(0, 1, true);
  for (let i = 0; i < 20; i++) f[4 + i] = i + 1;
  fv.setBigUint64(24, 0x1234n, true);
  fv.setInt32(32, 2, true);
  fv.setBigUint64(56, 0x7fff0000n, true);
  assert.deepEqual(decodeBuildIdStack(f), [
    { status: "valid", buildId: "0102030405060708090a0b0c0d0e0f1011121314", offset: 0x1234n },
    { status: "ip", ip: 0x7fff0000n },
  ]);
  assert.match(stackIdError(-14)!, /EFAULT/);
  assert.equal(stackIdError(3), undefined);
});
