// Runs INSIDE a guest kernel (tsbpf vm run), through test/guest/all.ts.
// libbpf externs where the host cannot check them: Debian's kernels have
// CONFIG_KALLSYMS_ALL, so the typed per-CPU ksym `runqueues` resolves; and
// their uname says X.Y.0 while LINUX_KERNEL_VERSION must be Debian's real sublevel.
// The object is the committed fixture test/fixtures/externs.bpf.o (CO-RE, built on the host).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { release, version } from "node:os";
import { join } from "node:path";
import { Collection, ObjectSpec } from "../../src/index.ts";
import { Spec } from "../../src/btf/index.ts";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "externs.bpf.o");

function spec(): ObjectSpec {
  const s = ObjectSpec.fromBytes(new Uint8Array(readFileSync(FIXTURE)), "externs.bpf.o");
  s.variable("target_pid").set(process.pid);
  return s;
}

function run(coll: Collection): void {
  const links = coll.attachAll();
  try {
    for (let i = 0; i < 3; i++) void process.ppid; // getppid(2)
  } finally {
    for (const l of links) l.close();
  }
}

test("externs: bpf_per_cpu_ptr(&runqueues, 0)->cpu and bpf_this_cpu_ptr(&runqueues) (typed per-CPU __ksym)", () => {
  using coll = Collection.load(spec(), { programs: ["percpu_ksym"] });
  run(coll);
  assert.equal(coll.variable("rq_cpu").get(), 0);
  assert.ok((coll.variable("this_rq_cpu").get() as number) >= 0);
});

test("externs: kfuncs where the kernel has them (6.2+), a named failure where it does not", () => {
  const has = Spec.kernel().typesByName("bpf_task_acquire").some((t) => t.kind === "func");
  if (!has) {
    assert.throws(() => Collection.load(spec(), { programs: ["kfuncs"] }), /failed to resolve extern bpf_(task_acquire|task_release|rcu_read_lock|rcu_read_unlock): the kernel's BTF has no function/);
    return;
  }
  using coll = Collection.load(spec(), { programs: ["kfuncs"] });
  run(coll);
  assert.equal(coll.variable("task_pid").get(), process.pid);
  assert.equal(coll.variable("weak_kfunc_exists").get(), 0);
});

test("externs: LINUX_KERNEL_VERSION is Debian's X.Y.Z from uname -v, not uname -r's X.Y.0", () => {
  const debian = /Debian (\d+)\.(\d+)\.(\d+)/.exec(version());
  const [a, b, c] = (debian ?? /^(\d+)\.(\d+)\.(\d+)/.exec(release())!).slice(1).map(Number);
  const hasConfig = existsSync("/proc/config.gz") || existsSync(`/boot/config-${release()}`);
  if (!hasConfig) {
    // read_kconfig also reads strong CONFIG_ values: without a config it fails, naming why.
    assert.throws(() => Collection.load(spec(), { programs: ["read_kconfig"] }), /failed to resolve extern CONFIG_\w+: cannot read the kernel's config/);
    // LINUX_ values need no config: give an empty one and the rest resolve.
    using coll = Collection.load(spec(), {
      programs: ["read_kconfig"],
      externs: { kconfig: () => new Map([["CONFIG_HZ", "100"], ["CONFIG_BPF_SYSCALL", "y"]]) },
    });
    run(coll);
    assert.equal(coll.variable("kernel_version").get(), (a << 16) + (b << 8) + Math.min(c, 255));
    return;
  }
  using coll = Collection.load(spec(), { programs: ["read_kconfig"] });
  run(coll);
  assert.equal(coll.variable("kernel_version").get(), (a << 16) + (b << 8) + Math.min(c, 255));
});
