// CO-RE relocations: objects compiled here against this kernel's vmlinux.h,
// relocated (without loading) for this kernel and for the Debian 6.1 and 6.12
// kernels of the VM harness (their BTF extracted from the cached vmlinuz), the
// values checked against offsets read straight from each BTF; then loaded and
// run in this kernel.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Collection, VerifierError } from "../../src/index.ts";
import { Instructions } from "../../src/asm/instruction.ts";
import { Spec } from "../../src/btf/spec.ts";
import { resolve, type Type } from "../../src/btf/types.ts";
import { CoreReloKind } from "../../src/btf/ext.ts";
import {
  calculateCoreRelocation, candidateIds, CoreError, CORE_POISON, essentialName, type CoreFixup,
} from "../../src/btf/core.ts";
import { applyCoreRelocations, type CoreRelocations } from "../../src/object/core.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { compile } from "../../src/compile/index.ts";
import { Attr, bpf } from "../../src/internal/sys/bpf.ts";
import { BpfCmd } from "../../src/internal/sys/constants.ts";
import { vmKernelBtf } from "../../src/vm/btf.ts";
import { HEADERS, specOf } from "../support/kernel.ts";

const HOST_BTF = "/sys/kernel/btf/vmlinux";

const SOURCE = `${HEADERS}
/* Flavors: "task_struct" to CO-RE, with only the fields used here. */
struct task_struct___mine { int pid; } __attribute__((preserve_access_index));
struct task_struct___x { int nonexistent_field; } __attribute__((preserve_access_index));
struct task_struct___o { long state; } __attribute__((preserve_access_index)); /* before 5.14 */
struct task_struct___w { u64 flags; long long pid; } __attribute__((preserve_access_index));

u64 out[16];

static __noinline int parent_tgid(struct task_struct *t) {
  return BPF_CORE_READ(t, real_parent, tgid);
}

SEC("raw_tp/sys_enter")
int parent(void *ctx) {
  struct task_struct *t = (void *)bpf_get_current_task();
  int ppid = parent_tgid(t);
  out[0] = ppid;
  out[1] = BPF_CORE_READ((struct task_struct___mine *)t, pid);
  out[2] = 7;
  if (bpf_core_field_exists(((struct task_struct___x *)t)->nonexistent_field))
    out[2] = BPF_CORE_READ((struct task_struct___x *)t, nonexistent_field);
  out[3] = 7;
  if (bpf_core_field_exists(t->saved_state))
    out[3] = BPF_CORE_READ(t, saved_state);
  out[4] = bpf_core_enum_value(enum cpuhp_state, CPUHP_AP_ONLINE_DYN);
  out[5] = bpf_core_enum_value_exists(enum bpf_prog_type, BPF_PROG_TYPE_NETFILTER);
  out[6] = BPF_CORE_READ_BITFIELD_PROBED(t, in_iowait);
  out[7] = bpf_core_field_size(t->comm);
  out[8] = bpf_core_type_size(struct task_struct);
  out[9] = bpf_core_type_exists(struct task_struct);
  out[10] = bpf_core_field_exists(((struct task_struct___o *)t)->state);
  out[11] = bpf_core_type_id_kernel(struct task_struct);
  out[12] = bpf_get_current_pid_tgid() >> 32;
  out[13] = BPF_CORE_READ(t, tgid);
  out[14] = bpf_core_type_id_local(struct task_struct);
  out[15] = BPF_CORE_READ(t, comm[1]);
  return ppid;
}

SEC("raw_tp/sys_enter")
int sibling(void *ctx) {
  return parent_tgid((void *)bpf_get_current_task());
}

SEC("raw_tp/sys_enter")
int reachable_poison(void *ctx) {
  struct task_struct___x *t = (void *)bpf_get_current_task();
  return BPF_CORE_READ(t, nonexistent_field);
}

/* Relocated, never loaded: direct loads whose width differs from the kernel's field. */
SEC("raw_tp/sys_enter")
int resized(void *ctx) {
  struct task_struct___w *t = (void *)bpf_get_current_task();
  out[0] = t->flags;  /* u64 here, unsigned int in the kernel: the load is narrowed */
  out[1] = t->pid;    /* s64 here, int in the kernel: cannot be narrowed, poisoned */
  return 0;
}
`;

/** Where a field is in a struct of a BTF, found by name through anonymous members (not with the engine). */
function field(btf: Spec, struct: string, name: string): { bits: number; bitfieldSize: number; size: number; type: Type } | undefined {
  const walk = (t: Type, base: number): ReturnType<typeof field> => {
    if (t.kind !== "struct" && t.kind !== "union") return undefined;
    for (const m of t.members) {
      const r = resolve(m.type);
      if (m.name === name) return { bits: base + m.offset, bitfieldSize: m.bitfieldSize, size: "size" in r ? (r.size as number) : 8, type: r };
      if (m.name === "") {
        const found = walk(r, base + m.offset);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk(btf.typeByName(struct, "struct"), 0);
}

function enumerator(btf: Spec, enumName: string, name: string): number | undefined {
  const e = btf.typesByName(enumName).find((t) => t.kind === "enum");
  return e?.kind === "enum" ? e.values.find((v) => v.name === name)?.value : undefined;
}

/** The value a relocated instruction carries: offset of a load/store, imm of ALU, both halves of ld_imm64. */
function valueAt(bytes: Uint8Array, i: number): bigint {
  const insns = new Instructions(bytes);
  const cls = insns.code(i) & 7;
  if (cls === 1 || cls === 2 || cls === 3) return BigInt(insns.off(i));
  if (insns.isLdImm64(i)) return (BigInt(insns.imm(i + 1)) << 32n) | BigInt(insns.imm(i) >>> 0);
  return BigInt(insns.imm(i));
}

/** The one value every fixup of this kind and subject agrees on (and that the instructions carry). */
function fixed(r: CoreRelocations, program: string, kind: string, what: string): bigint | "poisoned" {
  const all = (r.fixups.get(program) ?? []).filter((f) => f.kind === kind && f.what === what);
  assert.ok(all.length > 0, `${program}: no ${kind} fixup for ${what}; have:\n${list(r.fixups.get(program))}`);
  const bytes = r.programs.get(program)!.instructions;
  const values = new Set(all.map((f) => {
    const insns = new Instructions(bytes);
    if (f.poisoned) {
      assert.equal(insns.code(f.insn), 0x85);
      assert.equal(insns.imm(f.insn), CORE_POISON);
      return "poisoned" as const;
    }
    assert.equal(valueAt(bytes, f.insn), BigInt.asIntN(insns.isLdImm64(f.insn) ? 64 : (insns.code(f.insn) & 7) <= 3 ? 16 : 32, f.target!), `${program} insn ${f.insn}`);
    return f.target!;
  }));
  assert.equal(values.size, 1, `${program}: ${kind} ${what} relocated to different values: ${[...values].join(", ")}`);
  return [...values][0];
}

const list = (f: CoreFixup[] | undefined) => (f ?? []).map((x) => `  #${x.insn} ${x.kind} ${x.what} ${x.local} -> ${x.poisoned ? "poison" : x.target}`).join("\n");

/** BPF_PROG_TEST_RUN of a raw tracepoint program with no context: its return value. */
function testRun(progFd: number): number {
  const attr = new Attr().u32(0, progFd);
  bpf(BpfCmd.PROG_TEST_RUN, attr);
  return attr.view.getUint32(4, true);
}

let spec: ObjectSpec;
let btfReadyMs = 0;
const targets: { name: string; path: string; btf: Spec }[] = [];

before(async () => {
  spec = await specOf(SOURCE, "core.bpf.c");
  const started = Date.now();
  const paths = { "6.1": vmKernelBtf("6.1"), "6.12": vmKernelBtf("6.12") };
  btfReadyMs = Date.now() - started;
  targets.push({ name: "host", path: HOST_BTF, btf: Spec.kernel() });
  for (const [name, path] of Object.entries(paths)) targets.push({ name, path, btf: Spec.kernel(path) });
});

test("essential names drop the last ___flavor", () => {
  assert.equal(essentialName("task_struct___mine"), "task_struct");
  assert.equal(essentialName("a___b___c"), "a___b");
  assert.equal(essentialName("task_struct"), "task_struct");
  assert.equal(essentialName("__x___"), "__x___");
  assert.equal(essentialName("foo____bar"), "foo____bar"); // four underscores: no separator
  assert.equal(essentialName("___"), "___");
});

test("candidates by essential name, read from a lazily parsed kernel BTF; timings", (t) => {
  let at = performance.now();
  const fresh = new Spec(readFileSync(HOST_BTF), { lazy: true });
  const indexMs = performance.now() - at;
  at = performance.now();
  const ids = candidateIds(fresh, "task_struct");
  const namesMs = performance.now() - at;
  assert.ok(ids.some((id) => fresh.typeById(id).kind === "struct"));
  assert.ok(ids.every((id) => fresh.typeById(id).name === "task_struct"));
  assert.deepEqual(candidateIds(fresh, "no_such_type_anywhere"), []);
  at = performance.now();
  const r = applyCoreRelocations(spec, fresh);
  const reloMs = performance.now() - at;
  const n = [...r.fixups.values()].reduce((a, f) => a + f.length, 0);
  assert.ok(n > 0, "the object has CO-RE relocations");
  // The lazy parse read only what the relocations touched, and gives what an eager one does.
  const read = (fresh as unknown as { objects: unknown[] }).objects.filter((x) => x !== undefined).length;
  assert.ok(read < fresh.typeCount / 10, `${read} of ${fresh.typeCount} types read`);
  const eager = applyCoreRelocations(spec, new Spec(readFileSync(HOST_BTF)));
  assert.deepEqual(eager.fixups, r.fixups);
  t.diagnostic(`BTF of 6.1 and 6.12 (fetched, extracted or cached): ${btfReadyMs} ms`);
  t.diagnostic(`kernel BTF: ${fresh.typeCount} types indexed in ${indexMs.toFixed(1)} ms, names in ${namesMs.toFixed(1)} ms; ${n} relocations in ${reloMs.toFixed(1)} ms, reading ${read} types`);
});

describe("relocated for each kernel, checked against its BTF", () => {
  for (const name of ["host", "6.1", "6.12"]) {
    test(name, () => {
      const { btf, path } = targets.find((x) => x.name === name)!;
      const r = applyCoreRelocations(spec, path);
      const f = (struct: string, member: string) => field(btf, struct, member);
      const tgid = f("task_struct", "tgid")!;
      const realParent = f("task_struct", "real_parent")!;
      const pid = f("task_struct", "pid")!;

      // BPF_CORE_READ(t, real_parent, tgid), in a subprogram that both programs call.
      for (const p of ["parent", "sibling"]) {
        assert.equal(fixed(r, p, "byte_off", "struct task_struct field real_parent"), BigInt(realParent.bits / 8));
        assert.equal(fixed(r, p, "byte_off", "struct task_struct field tgid"), BigInt(tgid.bits / 8));
      }
      // The subprogram's relocations follow its copy, appended after the entry function.
      const sub = r.fixups.get("sibling")!.filter((x) => x.what === "struct task_struct field tgid");
      assert.ok(sub.every((x) => x.insn > 4), list(sub));

      // A flavor of task_struct, with one field.
      assert.equal(fixed(r, "parent", "byte_off", "struct task_struct___mine field pid"), BigInt(pid.bits / 8));
      // A field no kernel has: its existence check is 0, its read poisoned (and never run).
      assert.equal(fixed(r, "parent", "field_exists", "struct task_struct___x field nonexistent_field"), 0n);
      assert.equal(fixed(r, "parent", "byte_off", "struct task_struct___x field nonexistent_field"), "poisoned");
      assert.ok(r.warnings.some((w) => /program parent: CO-RE relocation for struct task_struct___x field nonexistent_field .*not found in .*task_struct has no field nonexistent_field/.test(w)), r.warnings.join("\n"));
      // A field some kernels have (saved_state: 6.6 and later).
      const saved = f("task_struct", "saved_state");
      assert.equal(fixed(r, "parent", "field_exists", "struct task_struct field saved_state"), saved ? 1n : 0n);
      assert.equal(fixed(r, "parent", "byte_off", "struct task_struct field saved_state"), saved ? BigInt(saved.bits / 8) : "poisoned");
      // The field renamed in 5.14 (state -> __state), through a flavor.
      assert.equal(fixed(r, "parent", "field_exists", "struct task_struct___o field state"), 0n);

      // Enums: a value that differs between kernels, and one that 6.1 lacks.
      assert.equal(fixed(r, "parent", "enumval_value", "enum cpuhp_state value CPUHP_AP_ONLINE_DYN"), BigInt(enumerator(btf, "cpuhp_state", "CPUHP_AP_ONLINE_DYN")!));
      const netfilter = enumerator(btf, "bpf_prog_type", "BPF_PROG_TYPE_NETFILTER");
      assert.equal(fixed(r, "parent", "enumval_exists", "enum bpf_prog_type value BPF_PROG_TYPE_NETFILTER"), netfilter === undefined ? 0n : 1n);

      // A bitfield: the smallest aligned load holding it, and the shifts that extract it.
      const iowait = f("task_struct", "in_iowait")!;
      assert.equal(iowait.bitfieldSize, 1);
      const byteOff = Math.floor(iowait.bits / 8 / iowait.size) * iowait.size;
      const bf = (kind: string) => fixed(r, "parent", kind, "struct task_struct field in_iowait");
      assert.equal(bf("byte_off"), BigInt(byteOff));
      assert.equal(bf("byte_sz"), BigInt(iowait.size));
      assert.equal(bf("lshift_u64"), BigInt(64 - (iowait.bits + 1 - byteOff * 8)));
      assert.equal(bf("rshift_u64"), 63n);
      assert.equal(bf("signed"), 0n);

      // Sizes, existence and ids of types.
      const task = btf.typeByName("task_struct", "struct");
      assert.equal(fixed(r, "parent", "byte_sz", "struct task_struct field comm"), 16n);
      assert.equal(fixed(r, "parent", "type_size", "struct task_struct"), BigInt(task.size));
      assert.equal(fixed(r, "parent", "type_exists", "struct task_struct"), 1n);
      assert.equal(fixed(r, "parent", "target_type_id", "struct task_struct"), BigInt(task.id));

      // An array element; the object's own type id.
      const comm = f("task_struct", "comm")!;
      assert.equal(fixed(r, "parent", "byte_off", "struct task_struct field comm[1]"), BigInt(comm.bits / 8 + 1));
      assert.equal(fixed(r, "parent", "local_type_id", "struct task_struct"), BigInt(spec.btf!.typeByName("task_struct", "struct").id));

      // Loads of another width: narrowed for an unsigned int, poisoned for a signed one.
      const flags = f("task_struct", "flags")!;
      assert.equal(flags.size, 4);
      const narrowed = r.fixups.get("resized")!.find((x) => x.what === "struct task_struct___w field flags")!;
      assert.equal(narrowed.target, BigInt(flags.bits / 8));
      assert.equal(new Instructions(r.programs.get("resized")!.instructions).code(narrowed.insn), 0x61, "ldxw");
      assert.equal(new Instructions(spec.program("resized").instructions).code(narrowed.insn), 0x79, "ldxdw in the spec");
      assert.equal(fixed(r, "resized", "byte_off", "struct task_struct___w field pid"), "poisoned");
      assert.ok(r.warnings.some((w) => /program resized: .*struct task_struct___w field pid .*4 bytes in .* but 8 in the object/.test(w)), r.warnings.join("\n"));
    });
  }

  test("the kernels differ where the test says they do", () => {
    const at = (name: string) => targets.find((x) => x.name === name)!.btf;
    const offsets = ["host", "6.1", "6.12"].map((n) => field(at(n), "task_struct", "tgid")!.bits);
    assert.equal(new Set(offsets).size, 3, `tgid moved: ${offsets.join(", ")}`);
    assert.equal(field(at("6.1"), "task_struct", "saved_state"), undefined);
    assert.ok(field(at("6.12"), "task_struct", "saved_state"));
    assert.notEqual(enumerator(at("6.1"), "cpuhp_state", "CPUHP_AP_ONLINE_DYN"), enumerator(at("6.12"), "cpuhp_state", "CPUHP_AP_ONLINE_DYN"));
    assert.equal(enumerator(at("6.1"), "bpf_prog_type", "BPF_PROG_TYPE_NETFILTER"), undefined);
  });
});

describe("in this kernel", () => {
  test("BPF_CORE_READ(task, real_parent, tgid) gives our parent's pid; a poisoned read that cannot run loads", () => {
    using coll = Collection.load(spec, { programs: ["parent", "sibling"] });
    assert.equal(testRun(coll.program("parent").fd.value), process.ppid);
    assert.equal(testRun(coll.program("sibling").fd.value), process.ppid);
    const out = coll.variable("out").get() as bigint[];
    assert.equal(out[0], BigInt(process.ppid));
    assert.equal(out[1], BigInt(process.pid), "task_struct___mine.pid of the main thread");
    assert.equal(out[2], 7n, "nonexistent field: not read");
    assert.equal(out[12], BigInt(process.pid));
    assert.equal(out[13], BigInt(process.pid));
    assert.equal(out[4], BigInt(enumerator(Spec.kernel(), "cpuhp_state", "CPUHP_AP_ONLINE_DYN")!));
    assert.equal(out[6], 0n, "in_iowait: not waiting for I/O while running a BPF program");
    assert.equal(out[9], 1n);
    assert.equal(out[10], 0n);
    assert.equal(out[11], BigInt(Spec.kernel().typeByName("task_struct", "struct").id));
    assert.equal(out[15], BigInt(readFileSync("/proc/self/comm")[1]), "comm[1]");
    assert.ok(coll.coreWarnings.some((w) => w.includes("struct task_struct___x field nonexistent_field")), coll.coreWarnings.join("\n"));
  });

  test("a poisoned relocation that can run: the verifier error names it", () => {
    assert.throws(
      () => Collection.load(spec, { programs: ["reachable_poison"] }),
      (err: Error) =>
        err instanceof VerifierError &&
        /poisoned CO-RE relocation can run:\nprogram reachable_poison: CO-RE relocation for struct task_struct___x field nonexistent_field/.test(err.message) &&
        /unknown#195896080/.test(err.message),
    );
  });

  test("kernelBtf: relocate for another kernel's BTF (6.1 here), load in this one", () => {
    const path = targets.find((x) => x.name === "6.1")!.path;
    using coll = Collection.load(spec, { programs: ["parent"], kernelBtf: path });
    testRun(coll.program("parent").fd.value); // reads at 6.1's offsets: through probe reads, harmless
    const out = coll.variable("out").get() as bigint[];
    assert.equal(out[4], BigInt(enumerator(Spec.kernel(path), "cpuhp_state", "CPUHP_AP_ONLINE_DYN")!));
    assert.equal(out[5], 0n, "no BPF_PROG_TYPE_NETFILTER in 6.1");
    assert.equal(out[3], 7n, "no saved_state in 6.1: not read");
    assert.ok(coll.coreWarnings.some((w) => w.includes("struct task_struct field saved_state") && w.includes(path)), coll.coreWarnings.join("\n"));
  });
});
