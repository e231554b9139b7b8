// perf_event programs on this host's software PMU (cpu-clock), system-wide and
// per process; hardware events fail with a NotSupportedError naming the PMU.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Collection } from "../../src/index.ts";
import { NotSupportedError, UsageError } from "../../src/errors.ts";
import { AttachError } from "../../src/link/errors.ts";
import { attachPerfEvent, onlineCpus, parseCpuList, resolvePerfEvent } from "../../src/link/perf_event.ts";
import { HEADERS, linksOfProgram, openFds, specOf } from "../support/kernel.ts";

const dir = mkdtempSync(join(tmpdir(), "tsbpf-perf-"));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** A process that spins on the CPU until killed. */
function spinner(): ChildProcess {
  const bin = join(dir, "spin");
  if (!existsSync(bin)) {
    writeFileSync(join(dir, "spin.c"), "int main(void) { volatile unsigned long n = 0; for (;;) n++; }\n");
    execFileSync("cc", ["-O0", "-o", bin, join(dir, "spin.c")]);
  }
  const child = spawn(bin, { stdio: "ignore" });
  children.push(child);
  return child;
}

const COUNTER = `${HEADERS}
const volatile u32 target = 0;
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, u32);
  __type(value, u64);
} samples SEC(".maps");

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  u32 key = tgid == target ? tgid : 0;   /* 0: any other process */
  u64 one = 1, *n = bpf_map_lookup_elem(&samples, &key);
  if (n) __sync_fetch_and_add(n, 1); else bpf_map_update_elem(&samples, &key, &one, BPF_NOEXIST);
  return 0;
}
`;

/** Polls until `cond` holds, for at most `ms` (no timing is asserted: only that it happened). */
async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

test("a perf_event program samples cpu-clock on every online CPU; closing the link detaches every CPU's event", async () => {
  const child = spinner();
  const spec = await specOf(COUNTER);
  spec.variable("target").set(child.pid!);
  using coll = Collection.load(spec);
  const fds = openFds();
  const link = attachPerfEvent(coll.program("on_sample"), { event: "cpu-clock", frequency: 199 });
  assert.deepEqual(link.cpus, onlineCpus());
  assert.equal(link.events.length, onlineCpus().length);
  assert.match(link.target, /^perf_event:software:cpu-clock$/);
  assert.equal(linksOfProgram("on_sample").length, onlineCpus().length, "one bpf_link per CPU");
  const samples = coll.map("samples");
  await until(() => (samples.lookup(child.pid!) ?? 0n) >= 20n);
  assert.ok(samples.lookup(child.pid!)! >= 20n, `the spinning process was sampled (${samples.lookup(child.pid!)})`);
  link.close();
  assert.equal(linksOfProgram("on_sample").length, 0);
  assert.equal(openFds(), fds);
  const before = samples.lookup(child.pid!);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(samples.lookup(child.pid!), before, "no samples after detach");
});

test("a per-process perf event samples only that process, by sample period", async () => {
  const child = spinner();
  const spec = await specOf(COUNTER);
  spec.variable("target").set(child.pid!);
  using coll = Collection.load(spec);
  // 1 ms of the process's CPU time per sample
  using link = attachPerfEvent(coll.program("on_sample"), { event: "task-clock", samplePeriod: 1_000_000, pid: child.pid! });
  assert.deepEqual(link.cpus, [-1]);
  const samples = coll.map("samples");
  await until(() => (samples.lookup(child.pid!) ?? 0n) >= 20n);
  assert.ok(samples.lookup(child.pid!)! >= 20n);
  assert.equal(samples.lookup(0), undefined, "no sample from any other process");
});

test("a hardware event on a machine without the cpu PMU is a NotSupportedError that says what works", async (t) => {
  if (existsSync("/sys/bus/event_source/devices/cpu")) return t.skip("this machine has a cpu PMU");
  const spec = await specOf(COUNTER);
  using coll = Collection.load(spec);
  for (const event of ["cycles", "instructions", "r003c"] as const) {
    assert.throws(
      () => attachPerfEvent(coll.program("on_sample"), { event }),
      (err: unknown) => err instanceof NotSupportedError && err.feature === "the cpu PMU" && /no "cpu" PMU/.test(err.message) && /cpu-clock/.test(err.message),
    );
  }
  assert.equal(linksOfProgram("on_sample").length, 0);
});

test("a program a cpu-clock event cannot run is an AttachError naming the section to use, and leaves nothing open", async () => {
  const spec = await specOf(`${HEADERS}
SEC("tracepoint/syscalls/sys_enter_getppid") int on_tp(void *ctx) { return 0; }`);
  using coll = Collection.load(spec);
  const fds = openFds();
  assert.throws(
    () => attachPerfEvent(coll.program("on_tp"), { event: "cpu-clock" }),
    (err: unknown) => err instanceof AttachError && err.hook === "perf_event" && /SEC\("perf_event"\)/.test(err.suggestion ?? ""),
  );
  assert.equal(openFds(), fds);
  assert.equal(linksOfProgram("on_tp").length, 0);
});

test("event names, CPU lists and bad options", () => {
  assert.deepEqual(resolvePerfEvent("cpu-clock"), { type: 1, config: 0n, label: "software:cpu-clock", pmu: "software" });
  assert.equal(resolvePerfEvent("page-faults").config, 2n);
  assert.deepEqual({ ...resolvePerfEvent("cache-misses") }, { type: 0, config: 3n, label: "hardware:cache-misses", pmu: "cpu" });
  assert.equal(resolvePerfEvent("r01c2").type, 4);
  assert.equal(resolvePerfEvent({ type: "raw", config: 0x1c2 }).config, 0x1c2n);
  assert.equal(resolvePerfEvent("tracepoint:sched:sched_switch").type, 2);
  assert.equal(resolvePerfEvent({ type: "pmu", pmu: "software", config: 0 }).type, 1);
  assert.throws(() => resolvePerfEvent("no-such-event"), UsageError);
  assert.deepEqual(parseCpuList("0-2,5,7-8\n"), [0, 1, 2, 5, 7, 8]);
  assert.throws(() => attachPerfEvent({ fd: { value: -1 } as never, name: "x" }, { samplePeriod: 1, frequency: 1 }), UsageError);
});
