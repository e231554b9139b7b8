// Runs INSIDE a guest kernel (6.1, 6.12) through test/guest/all.ts: kernel modules'
// BTF, which the host lacks (its /sys/kernel/btf has only vmlinux). The Debian guests
// build with CONFIG_DEBUG_INFO_BTF_MODULES, and test/vm/vm.test.ts loads veth,
// nf_conntrack and x_tables. Checked: the modules' BTF objects are found; kfuncs only
// nf_conntrack defines load (fd_array) and run; x_tables' per-CPU variable reads as a
// typed ksym; a CO-RE read of veth's private struct, which vmlinux lacks, reads the
// right peer. The objects were compiled on the host
// (test/guest/programs.ts: modbtf_ct, modbtf_ksym, modbtf_veth).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Collection } from "../../src/collection.ts";
import { Spec } from "../../src/btf/spec.ts";
import { loadedModuleBtfs } from "../../src/btf/modules.ts";
import { ifindexOf } from "../../src/link/netdev.ts";
import { createVeth, deleteLink, setLinkUp } from "../../src/internal/netlink/index.ts";
import { GUEST_OBJECTS } from "./programs.ts";

const object = (name: string): Uint8Array => new Uint8Array(readFileSync(join(process.env.TSBPF_GUEST_OBJECTS ?? GUEST_OBJECTS, `${name}.o`)));
const sysfsModules = (): string[] => (existsSync("/sys/kernel/btf") ? readdirSync("/sys/kernel/btf").filter((n) => n !== "vmlinux").sort() : []);
const has = (module: string): boolean => existsSync(`/sys/kernel/btf/${module}`);

test("module BTF: every module in /sys/kernel/btf is found by BTF id, split on vmlinux's types", (t) => {
  if (!has("veth")) {
    t.skip(`veth is not loaded (modules with BTF: ${sysfsModules().join(", ") || "none"})`);
    return;
  }
  const modules = loadedModuleBtfs();
  assert.deepEqual(modules.map((m) => m.name).sort(), sysfsModules());
  assert.ok(modules.some((m) => m.name === "veth"), `veth has BTF here (loaded by the harness): ${sysfsModules().join(", ")}`);
  const vmlinux = Spec.kernel();
  for (const m of modules) {
    assert.equal(m.spec.firstOwnId, vmlinux.typeCount, `${m.name}'s ids continue vmlinux's`);
    assert.ok(m.fd.value > 0);
  }
  const veth = modules.find((m) => m.name === "veth")!;
  const priv = veth.spec.typesByName("veth_priv").find((t) => t.kind === "struct");
  assert.ok(priv?.kind === "struct" && priv.members.some((f) => f.name === "peer"), "struct veth_priv with its peer");
  assert.equal(loadedModuleBtfs()[0], modules[0], "cached per process");
});

test("kfuncs in a module: nf_conntrack's bpf_xdp_ct_lookup/bpf_ct_release load through fd_array and run", (t) => {
  if (!has("nf_conntrack")) {
    t.skip(`nf_conntrack is not loaded (modules with BTF: ${sysfsModules().join(", ") || "none"})`);
    return;
  }
  assert.equal(Spec.kernel().typesByName("bpf_xdp_ct_lookup").length, 0, "vmlinux does not have it: only the module's BTF can");
  const ct = loadedModuleBtfs().find((m) => m.name === "nf_conntrack")!;
  const opts = ct.spec.typesByName("bpf_ct_opts").find((x) => x.kind === "struct");
  assert.ok(opts?.kind === "struct");
  using coll = Collection.load(object("modbtf_ct"), { constants: { opts_len: opts.size } });
  const XDP_PASS = 2;
  assert.equal(coll.program("ct_lookup").run({ data: new Uint8Array(64) }).retval, XDP_PASS);
  assert.equal(coll.variable("runs").get(), 1);
  // Nothing is tracked for this made-up tuple: the kfunc ran and said ENOENT.
  assert.equal(coll.variable("found").get(), 0);
  assert.equal(coll.variable("lookup_error").get(), -2);
  // Without the modules' BTF the same load fails, naming the kfunc.
  assert.throws(() => Collection.load(object("modbtf_ct"), { constants: { opts_len: opts.size }, externs: { moduleBtfs: () => [] } }),
    /failed to resolve extern bpf_(xdp_ct_lookup|ct_release): the kernel's BTF has no function bpf_\w+ and no loaded module has BTF/);
});

test("typed __ksym in a module: x_tables' per-CPU xt_recseq, read by bpf_per_cpu_ptr and bpf_this_cpu_ptr", (t) => {
  if (!has("x_tables")) {
    t.skip("x_tables is not loaded");
    return;
  }
  assert.equal(Spec.kernel().typesByName("xt_recseq").length, 0, "vmlinux does not have it: only the module's BTF can");
  using coll = Collection.load(object("modbtf_ksym"));
  assert.equal(coll.program("ksym_read").run({ data: new Uint8Array(64) }).retval, 2);
  assert.equal(coll.variable("ksym_runs").get(), 1);
  const seq0 = coll.variable("seq0").get() as number;
  const mine = coll.variable("this_seq").get() as number;
  assert.ok(seq0 % 2 === 0 && mine % 2 === 0, `both reads replaced the initial 1 with an even sequence: ${seq0}, ${mine}`);
});

test("CO-RE against a module: veth_priv (not in vmlinux) read in a kprobe on veth_open gives the peer's ifindex", (t) => {
  if (!has("veth")) {
    t.skip("veth is not loaded");
    return;
  }
  assert.equal(Spec.kernel().typesByName("veth_priv").length, 0, "vmlinux does not have it: only the module's BTF can");
  const a = `tmb${process.pid % 10000}a`;
  const b = `tmb${process.pid % 10000}b`;
  createVeth(a, b);
  try {
    using coll = Collection.load(object("modbtf_veth"), { constants: { watch_ifindex: ifindexOf(a) } });
    assert.deepEqual(coll.coreWarnings, []);
    const links = coll.attachAll();
    try {
      setLinkUp(ifindexOf(a));
    } finally {
      for (const l of links) l.close();
    }
    assert.equal(coll.variable("opens").get(), 1);
    assert.equal(coll.variable("peer_ifindex").get(), ifindexOf(b));
  } finally {
    deleteLink(ifindexOf(a));
  }
});
