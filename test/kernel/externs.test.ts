// libbpf's externs on this kernel: test/fixtures/externs.bpf.o (built against this
// host's vmlinux.h) loaded and run. Each value the programs read is compared
// with what the system says independently: uname, the kernel's config
// (/proc/config.gz or /boot/config-*), /proc/kallsyms, the calling task.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { release, version } from "node:os";
import { gunzipSync } from "node:zlib";
import { describe, test } from "node:test";
import { Collection } from "../../src/collection.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ObjectError } from "../../src/object/errors.ts";
import { VerifierError } from "../../src/programs/verifier.ts";
import { fixtureObject } from "../support/fixtures.ts";

function freshSpec(): ObjectSpec {
  const spec = ObjectSpec.fromBytes(fixtureObject("externs"), "externs.bpf.o");
  spec.variable("target_pid").set(process.pid);
  return spec;
}

/** The kernel's config as text, read here without tsbpf. */
function configText(): string {
  const boot = `/boot/config-${release()}`;
  if (existsSync(boot)) return readFileSync(boot, "utf8");
  return gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
}

function configValue(name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, "m").exec(configText())?.[1];
}

const kallsymsText = readFileSync("/proc/kallsyms", "utf8");
function kallsymsAddress(name: string): bigint | undefined {
  const m = new RegExp(`^([0-9a-f]+) \\w ${name}$`, "m").exec(kallsymsText);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/** Runs the programs' trigger: node's process.ppid calls getppid(2) each time. */
function trigger(): void {
  for (let i = 0; i < 3; i++) void process.ppid;
}

describe("externs on the running kernel", () => {
  test(".kconfig: LINUX_KERNEL_VERSION from uname, CONFIG_* from the kernel's config, LINUX_HAS_*", () => {
    using coll = Collection.load(freshSpec(), { programs: ["read_kconfig"] });
    using _links = disposable(coll.attachAll());
    trigger();
    const get = (n: string) => coll.variable(n).get();
    // libbpf's rule, written out: Debian's "Debian X.Y.Z" in uname -v, else uname -r.
    const [a, b, c] = (/Debian (\d+)\.(\d+)\.(\d+)/.exec(version()) ?? /^(\d+)\.(\d+)\.(\d+)/.exec(release())!).slice(1).map(Number);
    assert.equal(get("kernel_version"), (a << 16) + (b << 8) + Math.min(c, 255));
    assert.equal(get("hz"), Number(configValue("CONFIG_HZ")));
    assert.equal(get("bpf_syscall"), configValue("CONFIG_BPF_SYSCALL") === "y" ? 1 : 0);
    assert.equal(get("nr_cpus"), BigInt(configValue("CONFIG_NR_CPUS") ?? 0));
    assert.equal(get("hostname"), (configValue("CONFIG_DEFAULT_HOSTNAME") ?? '""').slice(1, -1));
    assert.equal(get("tristate"), 0, "weak and not in any config: TRI_NO");
    assert.equal(get("not_set"), 0, "weak and missing: 0 (the .data initial value was -1)");
    assert.equal(get("has_wrapper"), kallsymsAddress(`__x64_sys_bpf`) !== undefined ? 1 : 0);
    assert.equal(get("has_cookie"), 1, "bpf_get_attach_cookie is in every kernel since 5.15");
  });

  test("the .kconfig map is frozen: user space cannot change what the verifier trusted", () => {
    using coll = Collection.load(freshSpec(), { programs: ["read_kconfig"] });
    const map = coll.map(".kconfig");
    const value = map.lookupBytes(new Uint8Array(4))!;
    assert.equal(new DataView(value.buffer, value.byteOffset).getInt32(8, true), Number(configValue("CONFIG_HZ")));
    assert.throws(() => map.updateBytes(new Uint8Array(4), value), /EPERM/);
  });

  test("untyped __ksym: the address kallsyms gives; a missing weak typed ksym is NULL", () => {
    using coll = Collection.load(freshSpec(), { programs: ["untyped_ksym"] });
    using _links = disposable(coll.attachAll());
    trigger();
    assert.equal(coll.variable("stext_addr").get(), kallsymsAddress("_stext"));
    assert.equal(coll.variable("weak_var_missing").get(), 1);
  });

  test("kfuncs: bpf_task_acquire/release on the current task, bpf_rcu_read_lock/unlock; a missing weak kfunc is skipped by bpf_ksym_exists", () => {
    using coll = Collection.load(freshSpec(), { programs: ["kfuncs"] });
    using _links = disposable(coll.attachAll());
    trigger();
    assert.equal(coll.variable("task_pid").get(), process.pid, "node's main thread calls getppid: its pid is the tgid");
    assert.ok((coll.variable("kfunc_runs").get() as number) >= 3);
    assert.equal(coll.variable("weak_kfunc_exists").get(), 0);
  });

  test("typed per-CPU __ksym: bpf_per_cpu_ptr(&runqueues, 0)->cpu, or a clear refusal where kallsyms has no data symbols", (t) => {
    const hasData = kallsymsAddress("runqueues") !== undefined;
    if (!hasData) {
      t.diagnostic("this kernel has no CONFIG_KALLSYMS_ALL: runqueues cannot be resolved by the kernel; the guests run the load");
      assert.throws(
        () => Collection.load(freshSpec(), { programs: ["percpu_ksym"] }),
        (err: Error) => err instanceof ObjectError && /percpu_ksym: failed to resolve extern runqueues: .*CONFIG_KALLSYMS_ALL/.test(err.message),
      );
      return;
    }
    using coll = Collection.load(freshSpec(), { programs: ["percpu_ksym"] });
    using _links = disposable(coll.attachAll());
    trigger();
    assert.equal(coll.variable("rq_cpu").get(), 0);
    assert.ok((coll.variable("this_rq_cpu").get() as number) >= 0);
  });

  test("an unresolvable extern fails only the programs that use it, before anything is created", () => {
    const spec = freshSpec();
    assert.throws(() => Collection.load(spec), (err: Error) => err instanceof ObjectError && /failed to resolve extern/.test(err.message));
    using coll = Collection.load(spec, { programs: [] });
    const failures: Record<string, string> = {};
    for (const name of spec.programs.keys()) {
      try {
        coll.loadProgram(name);
      } catch (err) {
        failures[name] = (err as Error).message.split("\n")[0];
        if (name === "unguarded_weak_kfunc") assert.ok(err instanceof VerifierError);
      }
    }
    assert.match(failures.strong_kconfig, /failed to resolve extern CONFIG_TSBPF_STRONG_MISSING/);
    assert.match(failures.strong_ksym, /failed to resolve extern tsbpf_no_such_var/);
    assert.match(failures.strong_kfunc, /failed to resolve extern bpf_tsbpf_strong_kfunc/);
    assert.match(failures.unguarded_weak_kfunc, /no kfunc bpf_tsbpf_no_such_kfunc .*guard the call with bpf_ksym_exists/);
    for (const ok of ["read_kconfig", "untyped_ksym", "kfuncs"]) assert.equal(failures[ok], undefined, `${ok} loads`);
  });
});

function disposable(links: { close(): void }[]): Disposable {
  return { [Symbol.dispose]: () => links.forEach((l) => l.close()) };
}
