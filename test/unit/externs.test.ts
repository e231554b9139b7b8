// libbpf's externs without a kernel: the kernel config and version parsing,
// what ObjectSpec collects from test/fixtures/externs.bpf.o (kinds, .kconfig
// layout, per-program references, the BTF the kernel will get), and resolution
// against a fixture environment: test/fixtures/externs-kernel.bpf.o's BTF as the
// "kernel's", fixture kallsyms and config text. Expected values follow libbpf's
// rules (bpf_object__collect_externs, bpf_object__resolve_externs,
// bpf_object__relocate_data), written out here, not read from the code under test.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ObjectError } from "../../src/object/errors.ts";
import { ExternResolver, POISON_CALL_KFUNC_BASE, type ExternEnvironment } from "../../src/object/resolve-externs.ts";
import { Spec } from "../../src/btf/index.ts";
import { Instructions } from "../../src/asm/instruction.ts";
import { MapFlag, MapType } from "../../src/internal/sys/constants.ts";
import {
  encodeKconfigValue, kernelVersionCode, linuxKernelVersion, parseConfigInt, parseKconfig, type KconfigSlot,
} from "../../src/kconfig/parse.ts";
import { fixtureObject } from "../support/fixtures.ts";

const spec = ObjectSpec.fromBytes(fixtureObject("externs"), "externs.bpf.o");
const kernel = ObjectSpec.fromBytes(fixtureObject("externs-kernel"), "externs-kernel.bpf.o").btf!;

const CONFIG = `#
# Automatically generated file; DO NOT EDIT.
CONFIG_HZ=250
CONFIG_BPF_SYSCALL=y
# CONFIG_KPROBES is not set
CONFIG_TSBPF_TRISTATE=m
CONFIG_NR_CPUS=0x100
CONFIG_DEFAULT_HOSTNAME="(none)"
`;

function env(over: Partial<ExternEnvironment> = {}): ExternEnvironment {
  return {
    kernelVersion: () => kernelVersionCode(6, 1, 158),
    kconfig: () => parseKconfig(CONFIG),
    hasBpfCookie: () => true,
    hasSyscallWrapper: () => false,
    kernelBtf: () => kernel,
    ksymAddress: (name) => (name === "_stext" ? 0xffffffff81000000n : undefined),
    kallsymsHasData: () => true,
    ...over,
  };
}

const insnsOf = (bytes: Uint8Array) => new Instructions(bytes.slice());
const idIn = (btf: Spec, name: string, kind: "func" | "var") => btf.typesByName(name).find((t) => t.kind === kind)!.id;

describe("kernel config and version text", () => {
  test("CONFIG_ lines by name, comments skipped, values as written", () => {
    const c = parseKconfig(CONFIG);
    assert.deepEqual([...c], [
      ["CONFIG_HZ", "250"], ["CONFIG_BPF_SYSCALL", "y"], ["CONFIG_TSBPF_TRISTATE", "m"],
      ["CONFIG_NR_CPUS", "0x100"], ["CONFIG_DEFAULT_HOSTNAME", '"(none)"'],
    ]);
    assert.throws(() => parseKconfig("CONFIG_X\n"), /line 1: "CONFIG_X" has no "="/);
    assert.throws(() => parseKconfig("\nCONFIG_X=\n"), /line 2: "CONFIG_X=" has no value/);
  });

  test("LINUX_KERNEL_VERSION: Ubuntu's signature, Debian's uname -v, else the release; sublevel saturates at 255", () => {
    assert.equal(linuxKernelVersion({ release: "6.18.44-fc-v1147", version: "#1 SMP PREEMPT_DYNAMIC @0" }), (6 << 16) | (18 << 8) | 44);
    assert.equal(
      linuxKernelVersion({ release: "6.1.0-50-cloud-amd64", version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-10)" }),
      (6 << 16) | (1 << 8) | 158,
    );
    assert.equal(linuxKernelVersion({ release: "4.19.0-22-amd64", version: "#1 SMP Debian 4.19.260-1 (2022-09-29)" }), (4 << 16) | (19 << 8) | 255);
    assert.equal(
      linuxKernelVersion({ release: "5.4.0-12-generic", version: "#15-Ubuntu SMP", versionSignature: "Ubuntu 5.4.0-12.15-generic 5.4.8\n" }),
      (5 << 16) | (4 << 8) | 8,
    );
    assert.equal(linuxKernelVersion({ release: "weird", version: "" }), 0);
  });

  test("integers as strtoull reads them; values encoded by the extern's type", () => {
    assert.equal(parseConfigInt("0x100"), 256n);
    assert.equal(parseConfigInt("017"), 15n);
    assert.equal(parseConfigInt("-1"), 0xffffffffffffffffn);
    assert.equal(parseConfigInt("12abc"), undefined);
    const slot = (type: KconfigSlot["type"], size: number, signed = false): KconfigSlot => ({ name: "CONFIG_T", type, size, signed });
    const enc = (s: KconfigSlot, v: string) => {
      const out = new Uint8Array(s.size);
      encodeKconfigValue(s, v, out);
      return [...out];
    };
    assert.deepEqual(enc(slot("bool", 1), "y"), [1]);
    assert.deepEqual(enc(slot("bool", 1), "n"), [0]);
    assert.throws(() => enc(slot("bool", 1), "m"), /value 'm' implies a tristate or char type/);
    assert.deepEqual(enc(slot("tristate", 4), "m"), [2, 0, 0, 0]);
    assert.deepEqual(enc(slot("char", 1), "y"), [0x79]);
    assert.deepEqual(enc(slot("int", 2), "0x1234"), [0x34, 0x12]);
    assert.throws(() => enc(slot("int", 1), "256"), /does not fit in 1 byte/);
    assert.deepEqual(enc(slot("int", 1, true), "-1"), [0xff]);
    assert.throws(() => enc(slot("int", 4), "y"), /implies a bool, tristate or char type/);
    assert.deepEqual(enc(slot("char-array", 4), '"abcdef"'), [0x61, 0x62, 0x63, 0]); // truncated, NUL kept
    assert.throws(() => enc(slot("int", 4), '"x"'), /implies a char array type/);
    assert.throws(() => enc(slot("int", 4), "12abc"), /is not a valid integer/);
  });
});

describe("externs in an ObjectSpec (parse only)", () => {
  test("each extern's kind and weakness, from its symbol and BTF", () => {
    const kinds = Object.fromEntries([...spec.externs.values()].map((e) => [e.name, `${e.kind}${e.weak ? " weak" : ""}${e.kind === "ksym" && !e.typed ? " untyped" : ""}`]));
    assert.deepEqual(kinds, {
      LINUX_KERNEL_VERSION: "kconfig", LINUX_HAS_BPF_COOKIE: "kconfig", LINUX_HAS_SYSCALL_WRAPPER: "kconfig",
      CONFIG_HZ: "kconfig", CONFIG_BPF_SYSCALL: "kconfig", CONFIG_TSBPF_TRISTATE: "kconfig weak", CONFIG_NR_CPUS: "kconfig weak",
      CONFIG_DEFAULT_HOSTNAME: "kconfig weak", CONFIG_TSBPF_NOT_SET: "kconfig weak", CONFIG_TSBPF_STRONG_MISSING: "kconfig",
      runqueues: "ksym", _stext: "ksym untyped", tsbpf_no_such_var: "ksym", tsbpf_no_such_weak_var: "ksym weak",
      bpf_task_acquire: "kfunc", bpf_task_release: "kfunc", bpf_rcu_read_lock: "kfunc", bpf_rcu_read_unlock: "kfunc",
      bpf_tsbpf_no_such_kfunc: "kfunc weak", bpf_tsbpf_strong_kfunc: "kfunc",
    });
  });

  test(".kconfig slots in libbpf's order (alignment down, then size, then name) and the frozen read-only map", () => {
    const at = Object.fromEntries([...spec.externs.values()].filter((e) => e.kconfig).map((e) => [e.name, [e.kconfig!.type, e.kconfig!.offset, e.kconfig!.size]]));
    assert.deepEqual(at, {
      CONFIG_NR_CPUS: ["int", 0, 8],
      CONFIG_HZ: ["int", 8, 4], CONFIG_TSBPF_NOT_SET: ["int", 12, 4], CONFIG_TSBPF_STRONG_MISSING: ["int", 16, 4],
      CONFIG_TSBPF_TRISTATE: ["tristate", 20, 4], LINUX_KERNEL_VERSION: ["int", 24, 4],
      CONFIG_BPF_SYSCALL: ["bool", 28, 1], LINUX_HAS_BPF_COOKIE: ["bool", 29, 1], LINUX_HAS_SYSCALL_WRAPPER: ["bool", 30, 1],
      CONFIG_DEFAULT_HOSTNAME: ["char-array", 31, 16],
    });
    const map = spec.map(".kconfig");
    assert.equal(map.type, MapType.ARRAY);
    assert.equal(map.valueSize, 47);
    assert.equal(map.maxEntries, 1);
    assert.equal(map.flags, MapFlag.RDONLY_PROG | MapFlag.MMAPABLE);
    assert.equal(map.dataSection, "rodata"); // frozen after its contents are written
    assert.equal(map.value?.kind, "datasec");
  });

  test("each program records the externs it uses; .kconfig ones are also .kconfig map references", () => {
    const uses = (p: string) => spec.program(p).externs.map((r) => `${r.use}:${r.name}`);
    assert.deepEqual(uses("strong_kconfig"), ["ld64:CONFIG_TSBPF_STRONG_MISSING"]);
    assert.deepEqual(spec.program("strong_kconfig").references.filter((r) => r.map === ".kconfig").map((r) => r.offset), [16]);
    assert.deepEqual(uses("percpu_ksym"), ["ld64:runqueues", "ld64:runqueues"]);
    assert.deepEqual(uses("untyped_ksym"), ["ld64:_stext", "ld64:tsbpf_no_such_weak_var"]);
    assert.deepEqual(uses("strong_kfunc"), ["call:bpf_tsbpf_strong_kfunc"]);
    assert.deepEqual(uses("kfuncs").sort(), [
      "call:bpf_rcu_read_lock", "call:bpf_rcu_read_unlock", "call:bpf_task_acquire", "call:bpf_task_release",
      "call:bpf_tsbpf_no_such_kfunc", "ld64:bpf_tsbpf_no_such_kfunc",
    ]);
    assert.equal(new Set(uses("read_kconfig")).size, 9);
  });

  test("the BTF the kernel gets has no extern left in a DATASEC", () => {
    const btf = new Spec(spec.kernelBtf!);
    const kconfig = btf.typeByName(".kconfig", "datasec");
    assert.equal(kconfig.size, 47);
    for (const v of kconfig.vars) {
      assert.equal(v.type.kind, "var");
      assert.equal(v.type.linkage, "global", `${v.type.name} allocated`);
      assert.equal(v.offset, spec.externs.get(v.type.name)!.kconfig!.offset);
    }
    assert.deepEqual(kconfig.vars.map((v) => v.offset), [...kconfig.vars.map((v) => v.offset)].sort((a, b) => a - b));
    const ksyms = btf.typeByName(".ksyms", "datasec");
    assert.equal(ksyms.size, ksyms.vars.length * 4);
    ksyms.vars.forEach((v, i) => {
      assert.equal(v.type.kind, "var", "every entry a VAR (kfuncs point at the dummy one)");
      assert.equal(v.offset, i * 4);
      assert.equal(v.size, 4);
    });
    assert.ok(ksyms.vars.some((v) => v.type.name === "dummy_ksym"));
    const acquire = btf.typeByName("bpf_task_acquire", "func");
    assert.equal(acquire.linkage, "global");
    assert.ok(acquire.proto.params.every((p) => p.name !== ""), "unnamed parameters get a name");
    // The spec's own view of the types is unchanged where it matters: runqueues is typed.
    assert.equal(spec.externs.get("runqueues")!.typed, true);
  });
});

describe("resolution against a fixture kernel", () => {
  test(".kconfig values written at their slots; weak ones missing stay 0", () => {
    const data = new ExternResolver(spec.externs, env()).kconfigData();
    const view = new DataView(data.buffer, data.byteOffset);
    assert.equal(view.getBigUint64(0, true), 256n); // CONFIG_NR_CPUS=0x100
    assert.equal(view.getInt32(8, true), 250); // CONFIG_HZ
    assert.equal(view.getInt32(12, true), 0); // CONFIG_TSBPF_NOT_SET, weak
    assert.equal(view.getUint32(20, true), 2); // CONFIG_TSBPF_TRISTATE=m -> TRI_MODULE
    assert.equal(view.getUint32(24, true), (6 << 16) | (1 << 8) | 158);
    assert.deepEqual([data[28], data[29], data[30]], [1, 1, 0]); // BPF_SYSCALL, HAS_BPF_COOKIE, HAS_SYSCALL_WRAPPER
    assert.equal(new TextDecoder().decode(data.subarray(31, 37)), "(none)");
    assert.equal(data[37], 0);
  });

  test("a strong extern the kernel lacks fails only the programs that use it, naming it", () => {
    const r = new ExternResolver(spec.externs, env());
    assert.throws(() => r.apply(spec.program("strong_kconfig")), (err: Error) =>
      err instanceof ObjectError && /program strong_kconfig: failed to resolve extern CONFIG_TSBPF_STRONG_MISSING: .*not in the kernel's config/.test(err.message));
    assert.throws(() => r.apply(spec.program("strong_ksym")), /failed to resolve extern tsbpf_no_such_var: the kernel's BTF has no variable tsbpf_no_such_var/);
    assert.throws(() => r.apply(spec.program("strong_kfunc")), /failed to resolve extern bpf_tsbpf_strong_kfunc: its type in the object .* does not match the kernel's/);
    r.apply(spec.program("read_kconfig"));
    r.apply(spec.program("untyped_ksym"));
  });

  test("kfunc calls get the kernel's BTF id; a missing weak kfunc is 0 and its call poisoned", () => {
    const p = spec.program("kfuncs");
    const out = insnsOf(new ExternResolver(spec.externs, env()).apply(p).instructions);
    const order = [...spec.externs.keys()];
    for (const ref of p.externs) {
      if (ref.use === "call" && ref.name !== "bpf_tsbpf_no_such_kfunc") {
        assert.equal(out.src(ref.insn), 2, `${ref.name}: BPF_PSEUDO_KFUNC_CALL`);
        assert.equal(out.imm(ref.insn), idIn(kernel, ref.name, "func"));
        assert.equal(out.off(ref.insn), 0, "vmlinux, not a module");
      } else if (ref.use === "call") {
        assert.equal(out.src(ref.insn), 0);
        assert.equal(out.imm(ref.insn), POISON_CALL_KFUNC_BASE + order.indexOf(ref.name));
      } else {
        assert.deepEqual([out.src(ref.insn), out.imm(ref.insn), out.imm(ref.insn + 1)], [0, 0, 0], "bpf_ksym_exists() is false");
      }
    }
    assert.equal(p.instructions.length, out.bytes.length);
    assert.equal(insnsOf(p.instructions).src(p.externs[0].insn), 1, "the spec's own program is left as parsed");
  });

  test("typed ksyms are BTF ids (per-CPU runqueues), untyped ones kallsyms addresses", () => {
    const r = new ExternResolver(spec.externs, env());
    const percpu = spec.program("percpu_ksym");
    const a = insnsOf(r.apply(percpu).instructions);
    for (const ref of percpu.externs) {
      assert.deepEqual([a.src(ref.insn), a.imm(ref.insn), a.imm(ref.insn + 1)], [3, idIn(kernel, "runqueues", "var"), 0]);
    }
    const untyped = spec.program("untyped_ksym");
    const b = insnsOf(r.apply(untyped).instructions);
    const [stext, weak] = untyped.externs;
    assert.deepEqual([b.src(stext.insn), b.imm(stext.insn) >>> 0, b.imm(stext.insn + 1) >>> 0], [0, 0x81000000, 0xffffffff]);
    assert.deepEqual([b.src(weak.insn), b.imm(weak.insn), b.imm(weak.insn + 1)], [0, 0, 0]);
  });

  test("without a kernel config: CONFIG_ strong externs fail with the reason, weak ones are 0, LINUX_ ones still resolve", () => {
    const r = new ExternResolver(spec.externs, env({ kconfig: () => { throw new ObjectError("cannot read the kernel's config (test)"); } }));
    assert.throws(() => r.apply(spec.program("read_kconfig")), /failed to resolve extern CONFIG_(HZ|BPF_SYSCALL): cannot read the kernel's config \(test\)/);
    assert.deepEqual(r.resolve("CONFIG_NR_CPUS"), { state: "missing" });
    assert.deepEqual(r.resolve("LINUX_KERNEL_VERSION"), { state: "kconfig" });
  });

  test("a value the extern's type cannot hold fails that extern", () => {
    const r = new ExternResolver(spec.externs, env({ kconfig: () => parseKconfig("CONFIG_HZ=abc\nCONFIG_BPF_SYSCALL=m\n") }));
    assert.match((r.resolve("CONFIG_HZ") as { reason: string }).reason, /"abc" is not a valid integer/);
    assert.match((r.resolve("CONFIG_BPF_SYSCALL") as { reason: string }).reason, /'m' implies a tristate or char type/);
  });

  test("a typed variable the kernel cannot give an address for (no CONFIG_KALLSYMS_ALL) fails with that reason", () => {
    const r = new ExternResolver(spec.externs, env({ kallsymsHasData: () => false }));
    assert.throws(() => r.apply(spec.program("percpu_ksym")), /extern runqueues: .*no data symbols .*CONFIG_KALLSYMS_ALL/);
  });
});
