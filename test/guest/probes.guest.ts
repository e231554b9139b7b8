// Runs INSIDE a guest kernel (tsbpf vm run), through test/guest/all.ts, started by test/vm/vm.test.ts:
//   node --import tsx --test-reporter=tap test/guest/all.ts
// kprobes, kretprobes, ksyscall, fentry/fexit: what the host kernel cannot do.
// The objects were compiled on the host (test/guest/programs.ts) and copied in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Collection, type Link } from "../../src/index.ts";
import { tracefsDir } from "../../src/tracing/index.ts";
import { GUEST_OBJECTS, PROBE_PREFIX } from "./programs.ts";

const object = (name: string): Uint8Array => new Uint8Array(readFileSync(join(process.env.TSBPF_GUEST_OBJECTS ?? GUEST_OBJECTS, `${name}.o`)));

let serial = 0;

/** A child process (busybox cat) that opens a path that does not exist; its pid. */
function childOpensMissing(): { pid: number; path: string } {
  const path = `${PROBE_PREFIX}-${process.pid}-${serial++}/missing`;
  // stdio pipes: libuv opens nothing (no /dev/null) in the child before exec.
  const r = spawnSync("cat", [path], { stdio: "pipe" });
  assert.equal(r.status, 1, `cat of a missing file: ${r.stderr}`);
  assert.ok(r.pid > 0);
  return { pid: r.pid!, path };
}

function openMissing(n: number): void {
  for (let i = 0; i < n; i++) {
    try {
      closeSync(openSync(`${PROBE_PREFIX}-self/missing`, "r"));
    } catch {
      // ENOENT: the syscall happened
    }
  }
}

interface OpenSeen {
  count: bigint;
  name: string;
}
interface RetSeen {
  count: bigint;
  enoent: bigint;
  last: bigint;
}

test("kernel under test", () => {
  const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  console.log(`# kernel ${release}`);
  assert.ok(existsSync("/sys/bus/event_source/devices/kprobe/type"), "this kernel has the kprobe PMU");
});

test("kprobe (program.attach) and kretprobe (attachKprobe) on __x64_sys_openat see a child's open", () => {
  using coll = Collection.load(object("kprobe"), { programs: ["on_openat", "on_openat_return"] });
  const entry = coll.program("on_openat").attach();
  assert.equal(entry.target, "kprobe:__x64_sys_openat");
  const ret = coll.program("on_openat_return").attachKprobe({ symbol: "__x64_sys_openat", retprobe: true });
  assert.equal(ret.target, "kretprobe:__x64_sys_openat");
  assert.ok(entry.fd !== undefined, "a bpf_link for the kprobe (BPF_LINK_CREATE on 5.15+)");
  const child = childOpensMissing();
  const seen = coll.map("entries").lookup(child.pid) as OpenSeen | undefined;
  assert.ok(seen, `the kprobe saw no open by the child (pid ${child.pid})`);
  assert.equal(seen.count, 1n);
  assert.equal(seen.name, child.path);
  const back = coll.map("returns").lookup(child.pid) as RetSeen | undefined;
  assert.ok(back, `the kretprobe saw no return in the child (pid ${child.pid})`);
  assert.ok(back.enoent >= 1n, `no -ENOENT return: ${JSON.stringify(back, (_, v) => (typeof v === "bigint" ? String(v) : v))}`);
  // Detached: a second child goes unseen.
  entry.close();
  ret.close();
  const after = childOpensMissing();
  assert.equal(coll.map("entries").lookup(after.pid), undefined);
  assert.equal(coll.map("returns").lookup(after.pid), undefined);
});

test("ksyscall/openat attaches by syscall name and sees a child's open", () => {
  using coll = Collection.load(object("kprobe"), { programs: ["on_ksyscall"] });
  const link = coll.program("on_ksyscall").attach();
  assert.match(link.target, /__x64_sys_openat/);
  const child = childOpensMissing();
  assert.equal(coll.map("ksyscall_hits").lookup(child.pid), 1n);
});

test("fentry and fexit on do_sys_openat2 load and fire", () => {
  using coll = Collection.load(object("fentry"), { constants: { target_tgid: process.pid } });
  const links = coll.attachAll();
  assert.equal(links.length, 2);
  openMissing(5);
  for (const l of links) l.close();
  assert.ok((coll.variable("fentry_hits").get() as bigint) >= 5n, `fentry_hits ${coll.variable("fentry_hits").get()}`);
  assert.ok((coll.variable("fexit_hits").get() as bigint) >= 5n);
  assert.equal(coll.variable("fexit_last").get(), -2n);
});

test("without the kprobe PMU, kprobes go through tracefs kprobe_events and are removed on close", () => {
  // Hide /sys/bus/event_source/devices/kprobe (an empty directory mounted over it):
  // tsbpf then defines the probes in kprobe_events, as on kernels before 4.17.
  const pmu = "/sys/bus/event_source/devices/kprobe";
  const empty = "/tmp/tsbpf-empty";
  mkdirSync(empty, { recursive: true });
  const mount = spawnSync("mount", ["--bind", empty, pmu], { encoding: "utf8" });
  assert.equal(mount.status, 0, mount.stderr);
  try {
    assert.ok(!existsSync(join(pmu, "type")));
    const events = join(tracefsDir(), "kprobe_events");
    using coll = Collection.load(object("kprobe"), { programs: ["on_openat", "on_openat_return"] });
    const links: Link[] = [
      coll.program("on_openat").attach(),
      coll.program("on_openat_return").attachKprobe({ symbol: "__x64_sys_openat", retprobe: true }),
    ];
    const defined = readFileSync(events, "utf8");
    assert.match(defined, new RegExp(`^p:tsbpf/tsbpf_${process.pid}_\\d+___x64_sys_openat __x64_sys_openat`, "m"));
    assert.match(defined, new RegExp(`^r\\d*:tsbpf/tsbpf_${process.pid}_\\d+___x64_sys_openat __x64_sys_openat`, "m"));
    const child = childOpensMissing();
    assert.equal((coll.map("entries").lookup(child.pid) as OpenSeen | undefined)?.name, child.path);
    assert.ok(((coll.map("returns").lookup(child.pid) as RetSeen | undefined)?.enoent ?? 0n) >= 1n);
    for (const l of links) l.close();
    assert.doesNotMatch(readFileSync(events, "utf8"), new RegExp(`tsbpf_${process.pid}_`), "probe definitions left in kprobe_events");
  } finally {
    spawnSync("umount", [pmu]);
  }
});
