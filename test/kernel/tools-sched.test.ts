// The scheduler and interrupt tools (runqlat, runqlen, cpudist, syscount,
// hardirqs, softirqs) against workloads this file builds: pinned CPU hogs,
// a process that runs and sleeps in known slices, a known number of getppid()
// and failed close() calls, direct disk writes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { existsSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { assertDetached, linksOfProgram } from "../support/kernel.ts";
import { root, runTool, runToolIntoHead, tempDir } from "../support/tools.ts";
import { syscallLabel, syscallName, syscallNames, syscallNumber, tracepointName } from "../../src/internal/syscalls.ts";
import { syscallList } from "../../src/cli/syscount.ts";
import { occupancy } from "../../src/cli/runqlen.ts";

const dir = tempDir("tsbpf-sched-");
const bin = (name: string) => join(dir.path, name);
const children: ChildProcess[] = [];

// hog CPU: spins on one CPU forever.
const HOG = `
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  cpu_set_t set; CPU_ZERO(&set); CPU_SET(atoi(argv[1]), &set);
  sched_setaffinity(0, sizeof(set), &set);
  for (volatile unsigned long i = 0;; i++) ;
}`;

// runsleep RUN_MS SLEEP_MS: spins RUN_MS, sleeps SLEEP_MS, forever.
const RUNSLEEP = `
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
  long long run = atoll(argv[1]) * 1000000LL; long sleep_us = atol(argv[2]) * 1000L;
  for (;;) { long long end = now() + run; while (now() < end) ; usleep(sleep_us); }
}`;

// calls: for each line on stdin, 1000 getppid() and 100 close(-1) (EBADF), then "done".
const CALLS = `
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
  char line[64];
  setvbuf(stdout, NULL, _IONBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    for (int i = 0; i < 1000; i++) syscall(SYS_getppid);
    for (int i = 0; i < 100; i++) syscall(SYS_close, -1);
    printf("done\\n");
  }
  return 0;
}`;

function build(name: string, source: string): void {
  writeFileSync(`${bin(name)}.c`, source);
  execFileSync("cc", ["-O1", "-o", bin(name), `${bin(name)}.c`]);
}

function start(cmd: string, args: string[], stdin: "pipe" | "ignore" = "ignore"): ChildProcess {
  const child = spawn(cmd, args, { stdio: [stdin, "pipe", "ignore"] });
  children.push(child);
  return child;
}

function stop(child: ChildProcess): void {
  child.kill("SIGKILL");
}

before(() => {
  build("tsbpfhog", HOG);
  build("tsbpfrunsleep", RUNSLEEP);
  build("tsbpfcalls", CALLS);
});

after(() => {
  for (const c of children) c.kill("SIGKILL");
  dir[Symbol.dispose]();
});

const cpus = availableParallelism();

/** Two hogs pinned to each CPU: every CPU always has a task waiting. */
function hogs(): ChildProcess[] {
  const out: ChildProcess[] = [];
  for (let c = 0; c < cpus; c++) out.push(start(bin("tsbpfhog"), [String(c)]), start(bin("tsbpfhog"), [String(c)]));
  return out;
}

/**
 * An `until` for runTool that runs `action` once the tool's program `prog` is attached
 * (seen as a link: --json prints no banner to wait for), and holds once `done()` does.
 */
function onceAttached(prog: string, action: () => void, done: () => boolean = () => false): (out: string) => boolean {
  let fired = false;
  return () => {
    if (!fired && linksOfProgram(prog).length > 0) {
      fired = true;
      action();
    }
    return fired && done();
  };
}

type Hist = { val_type: string; data: { "interval-start": number; "interval-end": number; count: number }[]; [k: string]: unknown };
const total = (h: Hist) => h.data.reduce((a, d) => a + d.count, 0);
const countAbove = (h: Hist, low: number) => h.data.filter((d) => d["interval-start"] >= low).reduce((a, d) => a + d.count, 0);

// BCC's print_log2_hist rows: "%*d -> %-*d : %-8d |%-*s|".
const LOG2_ROW = /^ {0,10}\d+ -> \d+ +: \d+ +\|[*+ ]{40}\|$/;

// ---- syscall names ----

test("syscall names: x86_64's numbers, BCC's [unknown: N], and every syscalls tracepoint of this kernel has a number", { skip: process.arch !== "x64" }, () => {
  assert.equal(syscallName(0), "read");
  assert.equal(syscallName(110), "getppid");
  assert.equal(syscallName(231), "exit_group");
  assert.equal(syscallName(435), "clone3");
  assert.equal(syscallLabel(400), "[unknown: 400]");
  assert.equal(syscallNumber("getppid"), 110);
  assert.equal(syscallNumber("newfstat"), 5); // the tracepoint's name for fstat
  assert.equal(tracepointName("fstat"), "newfstat");
  const dirs = ["/sys/kernel/tracing/events/syscalls", "/sys/kernel/debug/tracing/events/syscalls"].filter(existsSync);
  if (dirs.length) {
    const events = readdirSync(dirs[0]!).filter((e) => e.startsWith("sys_enter_")).map((e) => e.slice("sys_enter_".length));
    const unknown = events.filter((e) => syscallNumber(e) === undefined);
    assert.deepEqual(unknown, [], "tracepoints with no syscall number");
  }
  const list = syscallList(syscallNames()).split("\n");
  assert.match(list[0]!, /^\S+ +\S+ +\S+ +\S+ *$/);
  assert.ok(list.some((l) => /(^|\s)getppid(\s|$)/.test(l)));
});

// ---- syscount ----

/** Runs syscount over one round of the calls program (1000 getppid, 100 failed close) and stops it. */
async function syscountRound(args: (pid: number) => string[]) {
  const calls = start(bin("tsbpfcalls"), [], "pipe");
  let done = false;
  calls.stdout!.on("data", (d) => (done ||= String(d).includes("done")));
  try {
    const r = await runTool(args(calls.pid!), { until: onceAttached("sys_exit", () => calls.stdin!.write("go\n"), () => done) });
    assert.ok(done, "the workload ran");
    return { r, pid: calls.pid! };
  } finally {
    stop(calls);
  }
}

test("syscount counts exactly 1000 getppid() of a process, by name, with BCC's columns", async () => {
  const { r } = await syscountRound((pid) => ["syscount", "-p", String(pid)]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.lines[0], "Tracing syscalls, printing top 10... Ctrl+C to quit.");
  assert.match(r.lines[1]!, /^\[\d\d:\d\d:\d\d\]$/);
  assert.equal(r.lines[2], `${"SYSCALL".padEnd(22)} ${"COUNT".padStart(8)}`);
  assert.ok(r.lines.includes(`${"getppid".padEnd(22)} ${"1000".padStart(8)}`), r.out);
  assert.ok(r.lines.includes(`${"close".padEnd(22)} ${"100".padStart(8)}`), r.out);
  assert.equal(r.lines.at(-1), "Detaching...");
  await assertDetached("sys_exit");
});

test("syscount -P counts by process; --syscall, -L and --json give the count and a latency", async () => {
  const byProcess = await syscountRound(() => ["syscount", "-P", "--syscall", "getppid"]);
  assert.equal(byProcess.r.code, 0, byProcess.r.err);
  assert.equal(byProcess.r.lines[0], "Tracing syscall 'getppid'... Ctrl+C to quit.");
  assert.equal(byProcess.r.lines[2], `${"PID    COMM".padEnd(22)} ${"COUNT".padStart(8)}`);
  const row = `${String(byProcess.pid).padEnd(6)} ${"tsbpfcalls".padEnd(15)} ${"1000".padStart(8)}`;
  assert.ok(byProcess.r.lines.includes(row), `no "${row}" in:\n${byProcess.r.out}`);

  const json = await syscountRound((pid) => ["syscount", "-L", "--json", "-p", String(pid)]);
  assert.equal(json.r.code, 0, json.r.err);
  const rows = json.r.json.flatMap((j) => j.rows);
  const getppid = rows.find((x) => x.syscall === "getppid");
  assert.equal(getppid.nr, 110);
  assert.equal(getppid.count, 1000);
  assert.ok(getppid.total_us > 0, "latency measured");
  await assertDetached("sys_enter", "sys_exit");
});

test("syscount -x and -e EBADF count only the 100 failed close() calls", async () => {
  for (const flag of [["-x"], ["-e", "EBADF"], ["-e", "9"]]) {
    const { r } = await syscountRound((pid) => ["syscount", "--json", ...flag, "-p", String(pid)]);
    assert.equal(r.code, 0, r.err);
    const rows = r.json.flatMap((j) => j.rows);
    assert.deepEqual(
      rows.map((x) => [x.syscall, x.count]),
      [["close", 100]],
      `${flag.join(" ")}: ${r.out}`,
    );
  }
});

test("syscount -l lists the syscalls; bad options exit 2", async () => {
  const list = await runTool(["syscount", "-l"]);
  assert.equal(list.code, 0);
  assert.ok(list.out.includes("getppid"));
  const bad = await runTool(["syscount", "--syscall", "nosuchcall"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /nosuchcall/);
  const badErrno = await runTool(["syscount", "-e", "ENOTANERRNO"]);
  assert.equal(badErrno.code, 2);
});

// ---- runqlat ----

test("runqlat: CPU hogs queued behind each other wait milliseconds, in each process's section (-P) and in --json", async () => {
  const hs = hogs();
  try {
    const r = await runTool(["runqlat", "-P", "1", "1"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.lines[0], "Tracing run queue latency... Hit Ctrl-C to end.");
    for (const h of hs) assert.ok(r.lines.includes(`pid = ${h.pid}`), `no section for hog ${h.pid}`);
    for (const l of r.lines.filter((l) => l.includes("->"))) assert.match(l, LOG2_ROW);

    const j = await runTool(["runqlat", "--json", "-p", String(hs[0]!.pid), "1", "1"]);
    assert.equal(j.code, 0, j.err);
    const hist = j.json[0] as Hist;
    assert.equal(hist.val_type, "usecs");
    assert.ok(total(hist) > 0, "the hog waited");
    // Two hogs share a CPU: each waits a slice (milliseconds) for its turn.
    assert.ok(countAbove(hist, 512) > 0, `no wait of 512 us or more: ${JSON.stringify(hist.data)}`);
    await assertDetached("btf_switch", "btf_wakeup");
  } finally {
    hs.forEach(stop);
  }
});

test("runqlat through raw tracepoints (TSBPF_SCHED_RAW_TP=1) measures the same waits", async () => {
  const hs = hogs();
  try {
    const r = await runTool(["runqlat", "-m", "--json", "-p", String(hs[0]!.pid), "1", "1"], { spawn: { env: { ...process.env, TSBPF_SCHED_RAW_TP: "1" } } });
    assert.equal(r.code, 0, r.err);
    const hist = r.json[0] as Hist;
    assert.equal(hist.val_type, "msecs");
    assert.ok(total(hist) > 0);
    await assertDetached("raw_switch");
  } finally {
    hs.forEach(stop);
  }
});

// ---- runqlen ----

test("runqlen: with two hogs per CPU a task is queued in nearly every sample (-C -O), and the histogram shows it", async () => {
  const hs = hogs();
  try {
    const occ = await runTool(["runqlen", "-C", "-O", "--json", "1", "1"]);
    assert.equal(occ.code, 0, occ.err);
    assert.equal(occ.json.length, cpus, occ.out);
    for (const row of occ.json) assert.ok(row.runqocc >= 75, `CPU ${row.cpu}: occupancy ${row.runqocc}%`);

    const text = await runTool(["runqlen", "1", "1"]);
    assert.equal(text.code, 0, text.err);
    assert.equal(text.lines[0], "Sampling run queue length... Hit Ctrl-C to end.");
    assert.equal(text.lines[1], "     runqlen       : count     distribution");
    const rows = text.lines.slice(2).map((l) => /^ {8}(\d+) +: (\d+) +\|[* ]{40}\|$/.exec(l));
    assert.ok(rows.every(Boolean), text.out);
    const counts = rows.map((m) => Number(m![2]));
    const queued = counts.slice(1).reduce((a, b) => a + b, 0);
    assert.ok(queued > 3 * counts[0]!, `queued ${queued} vs idle ${counts[0]}`);
    await assertDetached("do_sample");
  } finally {
    hs.forEach(stop);
  }
});

test("runqlen's occupancy is BCC's: queued samples over all samples", () => {
  const occ = occupancy([
    [{ cpu: 0, slot: 0 }, 1n],
    [{ cpu: 0, slot: 2 }, 3n],
    [{ cpu: 1, slot: 0 }, 4n],
  ]);
  assert.equal(occ.all, 37.5);
  assert.deepEqual([...occ.cpus], [[0, 75], [1, 0]]);
});

// ---- cpudist ----

test("cpudist: a process that runs 6 ms and sleeps 50 ms shows those times on- and off-CPU", async () => {
  const rs = start(bin("tsbpfrunsleep"), ["6", "50"]);
  try {
    const on = await runTool(["cpudist", "--json", "-p", String(rs.pid), "2", "1"]);
    assert.equal(on.code, 0, on.err);
    const onHist = on.json[0] as Hist;
    // A run spins 6 ms of wall time: no stretch on CPU is longer (the 4096 -> 8191 us
    // slot at most), though preemption on a busy machine may split it into shorter ones.
    const slot = (h: Hist, from: number) => h.data.filter((d) => d["interval-start"] >= from && d.count > 0);
    assert.ok(total(onHist) >= 10, JSON.stringify(onHist.data));
    assert.deepEqual(slot(onHist, 8192), [], JSON.stringify(onHist.data));
    // Most runs go whole on an idle machine; a busy one (CI) splits some, never all.
    assert.ok(slot(onHist, 1024).length > 0, JSON.stringify(onHist.data));

    const off = await runTool(["cpudist", "-O", "-m", "--json", "-p", String(rs.pid), "2", "1"]);
    assert.equal(off.code, 0, off.err);
    const offHist = off.json[0] as Hist;
    assert.equal(offHist.val_type, "msecs");
    // 50 ms asleep, about 35 times in 2 s: the 32 -> 63 ms slot, or the next when a busy
    // machine's timer slack and wait for a CPU add to it (preemptions add shorter ones).
    const asleep = offHist.data.filter((d) => d["interval-start"] === 32 || d["interval-start"] === 64);
    assert.ok(asleep.reduce((n, d) => n + d.count, 0) >= 5, JSON.stringify(offHist.data));

    const byPid = await runTool(["cpudist", "-P", "-e", "-p", String(rs.pid), "1", "1"]);
    assert.equal(byPid.code, 0, byPid.err);
    assert.ok(byPid.lines.includes(`pid = ${rs.pid} tsbpfrunsleep`), byPid.out);
    const avg = byPid.lines.find((l) => l.startsWith("avg = "));
    assert.match(avg ?? "", /^avg = \d+ usecs, total: \d+ usecs, count: \d+$/);
    await assertDetached("btf_switch");
  } finally {
    stop(rs);
  }
});

// ---- hardirqs / softirqs ----

/** The virtio device name of the root disk's interrupts ("virtio1": its irqs are virtio1-req.0...). */
function rootDiskVirtio(): string | undefined {
  try {
    return basename(readlinkSync("/sys/block/vda/device"));
  } catch {
    return undefined;
  }
}

/** Direct writes to the root file system: each one completes with a disk interrupt. */
function diskWrites(): void {
  execFileSync("dd", ["if=/dev/zero", `of=${join(root, `.tsbpf-sched-dd-${process.pid}`)}`, "bs=4k", "count=64", "oflag=direct,sync", "status=none"]);
}

test("hardirqs counts the root disk's interrupts during direct writes (-C), and times them (--json, -d)", { skip: rootDiskVirtio() === undefined && "no virtio disk at /sys/block/vda" }, async () => {
  const virtio = rootDiskVirtio()!;
  const file = join(root, `.tsbpf-sched-dd-${process.pid}`);
  try {
    const counted = await runTool(["hardirqs", "-C", "--json", "2", "1"], { until: onceAttached("handler_exit", diskWrites) });
    assert.equal(counted.code, 0, counted.err);
    const rows = counted.json.flatMap((j) => j.rows);
    const disk = rows.filter((x) => x.hardirq.startsWith(`${virtio}-`));
    assert.ok(disk.reduce((a, x) => a + x.total_count, 0) >= 1, `no ${virtio} interrupt in ${JSON.stringify(rows)}`);

    const dist = await runTool(["hardirqs", "-d", "-N", "2", "1"], { until: onceAttached("handler_exit", diskWrites) });
    assert.equal(dist.code, 0, dist.err);
    assert.ok(dist.lines.some((l) => l.startsWith(`hardirq = ${virtio}-`)), dist.out);
    assert.ok(dist.lines.includes("     nsecs               : count     distribution"));
    for (const l of dist.lines.filter((l) => l.includes("->"))) assert.match(l, LOG2_ROW);
    await assertDetached("handler_entry", "handler_exit");
  } finally {
    execFileSync("rm", ["-f", file]);
  }
});

test("softirqs: timer softirqs always fire (-C --json); totals and -d sections in BCC's layout", async () => {
  const file = join(root, `.tsbpf-sched-dd-${process.pid}`);
  try {
    const r = await runTool(["softirqs", "-C", "--json", "2", "1"], { until: onceAttached("softirq_entry", diskWrites) });
    assert.equal(r.code, 0, r.err);
    const rows = r.json.flatMap((j) => j.rows);
    const by = new Map(rows.map((x) => [x.softirq, x.total_count]));
    assert.ok((by.get("timer") ?? 0) > 0, JSON.stringify(rows));
    assert.ok(rows.every((x) => x.softirq !== undefined && Number.isInteger(x.vec)));

    const text = await runTool(["softirqs", "1", "1"]);
    assert.equal(text.code, 0, text.err);
    assert.equal(text.lines[0], "Tracing soft irq event time... Hit Ctrl-C to end.");
    assert.equal(text.lines[1], `${"SOFTIRQ".padEnd(16)} ${"TOTAL_usecs".padStart(11)}`);
    for (const l of text.lines.slice(2)) assert.match(l, /^(hi|timer|net_tx|net_rx|block|irq_poll|tasklet|sched|hrtimer|rcu) +\d+$/);
    assert.ok(text.lines.slice(2).every((l) => l.length === 28), "each row is %-16s %11d");

    const dist = await runTool(["softirqs", "-d", "1", "1"]);
    assert.equal(dist.code, 0, dist.err);
    assert.ok(dist.lines.includes("softirq = timer"), dist.out);
    await assertDetached("softirq_entry", "softirq_exit");
  } finally {
    execFileSync("rm", ["-f", file]);
  }
});

test("-c and -C with -d are refused as BCC refuses them (exit 2)", async () => {
  const both = await runTool(["hardirqs", "-C", "-d"]);
  assert.equal(both.code, 2);
  const ev = await runTool(["softirqs", "-C", "-N"]);
  assert.equal(ev.code, 2);
  const cpu = await runTool(["hardirqs", "-c", "x"]);
  assert.equal(cpu.code, 2);
});

// ---- all of them ----

test("every tool ends cleanly on a closed pipe, leaving nothing attached", async () => {
  for (const [args, prog] of [
    [["syscount", "-i", "1"], "sys_exit"],
    [["softirqs", "1"], "softirq_entry"],
    [["runqlen", "1"], "do_sample"],
    [["cpudist", "1"], "btf_switch"],
  ] as const) {
    const r = await runToolIntoHead([...args], 2);
    assert.equal(r.code, 0, `${args[0]}: ${r.out}`);
    assert.equal(r.out.split("\n").length, 3, r.out);
    await assertDetached(prog);
  }
});

test("every tool has --help naming its hooks, and says in one sentence that it needs root", async () => {
  for (const tool of ["runqlat", "runqlen", "cpudist", "syscount", "hardirqs", "softirqs"]) {
    const help = await runTool([tool, "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: tsbpf /);
    assert.match(help.out, /hooks: /);
    const nobody = await runTool([tool], { spawn: { uid: 65534, gid: 65534 } });
    assert.equal(nobody.code, 1, `${tool}: ${nobody.err}`);
    assert.equal(nobody.err.trim().split("\n").length, 1, nobody.err);
    assert.match(nobody.err, new RegExp(`^tsbpf ${tool}: `));
  }
});
