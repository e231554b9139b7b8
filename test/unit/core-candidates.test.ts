// Split from test/kernel/core.test.ts: CO-RE candidate selection between type
// flavors, on committed objects (test/fixtures/src/core-local.bpf.c and
// core-target.bpf.c), relocated without loading. TYPE_MATCHES also reads this
// host's /sys/kernel/btf/vmlinux (readable without root).
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Instructions } from "../../src/asm/instruction.ts";
import { Spec } from "../../src/btf/spec.ts";
import { CoreReloKind } from "../../src/btf/ext.ts";
import { calculateCoreRelocation, CoreError, CORE_POISON, type CoreFixup } from "../../src/btf/core.ts";
import { applyCoreRelocations, type CoreRelocations } from "../../src/object/core.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { fixtureObject } from "../support/fixtures.ts";

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

describe("candidates", () => {
  // The C is test/fixtures/src/core-target.bpf.c and core-local.bpf.c (scripts/build-fixtures.ts).
  let target: Spec;
  let local: ObjectSpec;
  before(async () => {
    target = ObjectSpec.fromBytes(fixtureObject("core-target")).btf!;
    local = ObjectSpec.fromBytes(fixtureObject("core-local"), "local.bpf.c");
  });

  test("two flavors that put a field at different offsets: an error naming both", () => {
    assert.throws(
      () => applyCoreRelocations(local, target, { programs: ["ambiguous"] }),
      (err: Error) => err instanceof CoreError && /program ambiguous: .*struct foo field y is ambiguous: struct foo___a .* at bit 32, struct foo___b .* at bit 0/.test(err.message),
    );
  });

  test("flavors that agree are fine; an incompatible one (a pointer for an int) is not a candidate", () => {
    const r = applyCoreRelocations(local, target, { programs: ["agreeing"] });
    assert.equal(fixed(r, "agreeing", "byte_off", "struct bar field y"), 0n);
  });

  test("TYPE_MATCHES (bpf_core_type_matches: clang 15+), from records made here", () => {
    const matches = (btf: Spec, name: string, against: Spec) => {
      const t = btf.typeByName(name, "struct");
      return calculateCoreRelocation(btf, { insnOff: 0, typeId: t.id, accessStr: "0", accessStrOff: 0, kind: CoreReloKind.TYPE_MATCHES }, against).target;
    };
    assert.equal(matches(local.btf!, "pair", target), 1n);
    assert.equal(matches(local.btf!, "pair___sub", target), 1n, "a subset of the members matches");
    assert.equal(matches(local.btf!, "pair___bad", target), 0n, "int is not long");
    assert.equal(matches(local.btf!, "task_struct___m", Spec.kernel()), 1n, "int matches pid_t");
    assert.equal(matches(local.btf!, "task_struct___n", Spec.kernel()), 0n);
  });
});
