// Kernel modules' BTF without a kernel: split BTF written here byte by byte on top of
// a base (a hand-made one, or test/fixtures/externs-kernel.bpf.o's BTF standing for
// vmlinux), then externs (kfuncs, typed ksyms) and CO-RE relocations resolved against
// "modules" made of it. Expected ids and offsets come from how the bytes are written,
// and the kernel's rules (split ids continue the base's; a module kfunc call's insn.off
// indexes fd_array, 0 meaning vmlinux; a module ksym carries its BTF's fd in insn[1].imm).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Spec, BtfError, CoreReloKind, calculateCoreRelocation } from "../../src/btf/index.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ExternResolver, POISON_CALL_KFUNC_BASE, type ExternEnvironment, type ModuleBtfSource } from "../../src/object/resolve-externs.ts";
import { Instructions } from "../../src/asm/instruction.ts";
import { kernelVersionCode, parseKconfig } from "../../src/kconfig/parse.ts";
import { fixtureObject } from "../support/fixtures.ts";

const KIND = { int: 1, ptr: 2, struct: 4, func: 12, proto: 13, var: 14 } as const;

/** Writes BTF: for split BTF, ids and string offsets continue the base's. */
class BtfWriter {
  readonly #words: number[] = [];
  readonly #strings: string[] = [""];
  #strLen = 1;
  #nextId: number;
  readonly #strBase: number;

  constructor(base?: Spec) {
    this.#nextId = base ? base.typeCount : 1;
    this.#strBase = base ? base.header.strLen : 0;
  }

  str(s: string): number {
    const at = this.#strBase + this.#strLen;
    this.#strings.push(s);
    this.#strLen += Buffer.byteLength(s) + 1;
    return at;
  }

  type(...words: number[]): number {
    this.#words.push(...words);
    return this.#nextId++;
  }

  int(name: string): number {
    return this.type(this.str(name), KIND.int << 24, 4, (1 << 24) | 32);
  }

  ptr(to: number): number {
    return this.type(0, KIND.ptr << 24, to);
  }

  /** members: [name string offset, type, bit offset] */
  struct(name: number, size: number, members: [number, number, number][]): number {
    return this.type(name, (KIND.struct << 24) | members.length, size, ...members.flat());
  }

  /** A global func with its own prototype. */
  func(name: string, ret: number, params: [number, number][]): number {
    const proto = this.type(0, (KIND.proto << 24) | params.length, ret, ...params.flat());
    return this.type(this.str(name), (KIND.func << 24) | 1, proto);
  }

  variable(name: string, type: number): number {
    return this.type(this.str(name), KIND.var << 24, type, 1);
  }

  bytes(): Uint8Array {
    const strings = Buffer.from(this.#strings.join("\0") + "\0");
    const typeLen = this.#words.length * 4;
    const out = new Uint8Array(24 + typeLen + strings.length);
    const v = new DataView(out.buffer);
    v.setUint16(0, 0xeb9f, true);
    out[2] = 1;
    v.setUint32(4, 24, true);
    v.setUint32(8, 0, true);
    v.setUint32(12, typeLen, true);
    v.setUint32(16, typeLen, true);
    v.setUint32(20, strings.length, true);
    this.#words.forEach((w, i) => v.setUint32(24 + i * 4, w >>> 0, true));
    out.set(strings, 24 + typeLen);
    return out;
  }
}

// A base ("vmlinux"): int, struct sk_buff { int len; int mark; }, struct sk_buff *.
const baseW = new BtfWriter();
const INT = baseW.int("int");
const LEN = baseW.str("len");
const SKB = baseW.struct(baseW.str("sk_buff"), 8, [[LEN, INT, 0], [baseW.str("mark"), INT, 32]]);
const SKB_PTR = baseW.ptr(SKB);
const base = new Spec(baseW.bytes());

// A module on it: struct veth_priv { struct sk_buff *peer; int dropped; int len; } (the last
// member named by the base's string), a kfunc taking it, and a variable.
const modW = new BtfWriter(base);
const PRIV = modW.struct(modW.str("veth_priv"), 16, [[modW.str("peer"), SKB_PTR, 0], [modW.str("dropped"), INT, 64], [LEN, INT, 96]]);
const PRIV_PTR = modW.ptr(PRIV);
const KFUNC = modW.func("bpf_veth_kfunc", INT, [[modW.str("priv"), PRIV_PTR]]);
const VAR = modW.variable("veth_count", INT);
const modRaw = modW.bytes();

describe("split BTF", () => {
  const mod = new Spec(modRaw, { base });

  test("ids continue the base's; base types are the base's own objects", () => {
    assert.equal(base.typeCount, 4);
    assert.equal(mod.firstOwnId, 4);
    assert.equal(PRIV, 4);
    assert.equal(mod.typeCount, VAR + 1);
    assert.equal(mod.typeById(SKB), base.typeById(SKB));
    assert.equal(mod.kindOf(SKB), "struct");
    assert.equal(mod.kindOf(KFUNC), "func");
    assert.equal(mod.typeById(0).kind, "void");
  });

  test("its types refer to the base's, and name members with the base's strings", () => {
    const priv = mod.typeById(PRIV);
    assert.ok(priv.kind === "struct");
    assert.deepEqual(priv.members.map((m) => [m.name, m.offset]), [["peer", 0], ["dropped", 64], ["len", 96]]);
    const peer = priv.members[0].type;
    assert.ok(peer.kind === "pointer");
    assert.equal(peer.type, base.typeById(SKB), "the pointer reaches the base's struct sk_buff");
    const kfunc = mod.typeById(KFUNC);
    assert.ok(kfunc.kind === "func");
    assert.equal(kfunc.proto.params[0].type, mod.typeById(PRIV_PTR));
    assert.equal(kfunc.proto.return, base.typeById(INT));
  });

  test("names look up in both: the base's types first, then the module's", () => {
    assert.deepEqual(mod.typeIdsByName("sk_buff"), [SKB]);
    assert.deepEqual(mod.typeIdsByName("veth_priv"), [PRIV]);
    assert.deepEqual(mod.typesByName("bpf_veth_kfunc").map((t) => t.kind), ["func"]);
    assert.deepEqual(base.typeIdsByName("veth_priv"), [], "the base is left as it was");
    assert.deepEqual([...mod.namesContaining("_")].sort(), [["bpf_veth_kfunc", [KFUNC]], ["sk_buff", [SKB]], ["veth_count", [VAR]], ["veth_priv", [PRIV]]]);
    assert.equal(mod.types.length, mod.typeCount);
    assert.equal(mod.types[SKB], base.typeById(SKB));
  });

  test("a reference past the last id, or a string past both sections, is a BtfError naming the type", () => {
    const bad = modRaw.slice();
    const v = new DataView(bad.buffer);
    v.setUint32(24 + 12 + 4, 99, true); // veth_priv's first member's type
    assert.throws(() => (new Spec(bad, { base }).typeById(PRIV) as { members: { type: unknown }[] }).members[0].type, (err: Error) =>
      err instanceof BtfError && /type 4 references type 99, but there are only 9 types/.test(err.message));
    const badName = modRaw.slice();
    new DataView(badName.buffer).setUint32(24, 1 << 20, true);
    assert.throws(() => new Spec(badName, { base }).typeById(PRIV), /string offset 0x100000 outside string section/);
    // Without its base, split BTF's ids and strings do not parse.
    assert.throws(() => new Spec(modRaw).types, BtfError);
  });
});

describe("externs in modules", () => {
  const spec = ObjectSpec.fromBytes(fixtureObject("externs"), "externs.bpf.o");
  const kernel = ObjectSpec.fromBytes(fixtureObject("externs-kernel"), "externs-kernel.bpf.o").btf!;
  // A module that has what the fixture kernel lacks: the weak kfunc and the strong variable.
  const w = new BtfWriter(kernel);
  const intId = kernel.typesByName("int").find((t) => t.kind === "int")!.id;
  const modKfunc = w.func("bpf_tsbpf_no_such_kfunc", 0, []);
  const modVar = w.variable("tsbpf_no_such_var", intId);
  const module: ModuleBtfSource = { name: "tsbpf_mod", spec: new Spec(w.bytes(), { base: kernel }), fd: 77 };
  const other: ModuleBtfSource = { name: "veth", spec: new Spec(new BtfWriter(kernel).bytes(), { base: kernel }), fd: 78 };

  function env(modules: ModuleBtfSource[] | undefined): ExternEnvironment {
    return {
      kernelVersion: () => kernelVersionCode(6, 1, 158),
      kconfig: () => parseKconfig("CONFIG_HZ=250\n"),
      hasBpfCookie: () => true,
      hasSyscallWrapper: () => false,
      kernelBtf: () => kernel,
      ksymAddress: (name) => (name === "tsbpf_no_such_var" ? 0xffffffffc0001000n : undefined),
      kallsymsHasData: () => true,
      ...(modules ? { moduleBtfs: () => modules } : {}),
    };
  }

  test("a kfunc only a module has: its BTF id, insn.off its slot in fd_array (slot 0 left for vmlinux)", () => {
    const r = new ExternResolver(spec.externs, env([other, module]));
    const p = spec.program("kfuncs");
    const out = new Instructions(r.apply(p).instructions.slice());
    const kernelIds = new Set(kernel.types.filter((t) => t.kind === "func").map((t) => t.id));
    let seen = 0;
    for (const ref of p.externs) {
      if (ref.use !== "call") continue;
      assert.equal(out.src(ref.insn), 2, `${ref.name}: BPF_PSEUDO_KFUNC_CALL`);
      if (ref.name === "bpf_tsbpf_no_such_kfunc") {
        seen++;
        assert.deepEqual([out.imm(ref.insn), out.off(ref.insn)], [modKfunc, 1]);
      } else {
        assert.ok(kernelIds.has(out.imm(ref.insn)), `${ref.name} is vmlinux's`);
        assert.equal(out.off(ref.insn), 0);
      }
    }
    assert.equal(seen, 1);
    assert.deepEqual([...r.fdArray()!], [0, 77]);
    assert.deepEqual(r.resolve("bpf_tsbpf_no_such_kfunc"), { state: "btf", btfId: modKfunc, btfObjFd: 77, module: "tsbpf_mod", fdIndex: 1 });
  });

  test("a typed ksym in a module: BPF_PSEUDO_BTF_ID with the module BTF's fd in insn[1].imm; no fd_array needed", () => {
    const r = new ExternResolver(spec.externs, env([module]));
    const p = spec.program("strong_ksym");
    const out = new Instructions(r.apply(p).instructions.slice());
    const ref = p.externs.find((e) => e.name === "tsbpf_no_such_var")!;
    assert.deepEqual([out.src(ref.insn), out.imm(ref.insn), out.imm(ref.insn + 1)], [3, modVar, 77]);
    assert.equal(r.fdArray(), undefined);
  });

  test("found nowhere: the error names the extern and the modules searched; a weak kfunc stays poisoned", () => {
    const r = new ExternResolver(spec.externs, env([other]));
    assert.throws(() => r.apply(spec.program("strong_ksym")),
      /failed to resolve extern tsbpf_no_such_var: the kernel's BTF has no variable tsbpf_no_such_var, nor the BTF of the loaded modules \(veth\)/);
    const none = new ExternResolver(spec.externs, env([]));
    assert.throws(() => none.apply(spec.program("strong_ksym")), /has no variable tsbpf_no_such_var and no loaded module has BTF/);
    for (const resolver of [r, none, new ExternResolver(spec.externs, env(undefined))]) {
      const p = spec.program("kfuncs");
      const out = new Instructions(resolver.apply(p).instructions.slice());
      const call = p.externs.find((e) => e.use === "call" && e.name === "bpf_tsbpf_no_such_kfunc")!;
      assert.equal(out.src(call.insn), 0);
      assert.equal(out.imm(call.insn), POISON_CALL_KFUNC_BASE + [...spec.externs.keys()].indexOf("bpf_tsbpf_no_such_kfunc"));
      assert.equal(resolver.fdArray(), undefined);
    }
  });

  test("vmlinux first: a module defining a name vmlinux has is not used", () => {
    const w2 = new BtfWriter(kernel);
    w2.func("bpf_rcu_read_lock", 0, []);
    const dup: ModuleBtfSource = { name: "dup", spec: new Spec(w2.bytes(), { base: kernel }), fd: 79 };
    const r = new ExternResolver(spec.externs, env([dup]));
    const got = r.resolve("bpf_rcu_read_lock");
    assert.deepEqual(got, { state: "btf", btfId: kernel.typesByName("bpf_rcu_read_lock").find((t) => t.kind === "func")!.id, btfObjFd: 0 });
  });
});

describe("CO-RE against modules", () => {
  // The object's view: struct veth_priv { int dropped; }, relocated field 0:0 (dropped).
  const lw = new BtfWriter();
  const lint = lw.int("int");
  const local = (() => {
    lw.struct(lw.str("veth_priv"), 4, [[lw.str("dropped"), lint, 0]]);
    return new Spec(lw.bytes());
  })();
  const mod = new Spec(modRaw, { base });
  const relo = { insnOff: 0, typeId: 2, accessStr: "0:0", accessStrOff: 0, kind: CoreReloKind.FIELD_BYTE_OFFSET };

  test("a type vmlinux lacks is found in a module: the module's offset", () => {
    const res = calculateCoreRelocation(local, relo, base, undefined, () => [mod]);
    assert.equal(res.poison, false);
    assert.equal(res.target, 8n);
    assert.deepEqual(res.candidates.map((t) => t.id), [PRIV]);
  });

  test("without modules it is poisoned, as before", () => {
    const res = calculateCoreRelocation(local, relo, base);
    assert.equal(res.poison, true);
    assert.equal(res.candidates.length, 0);
  });

  test("modules are asked only when vmlinux has no candidate", () => {
    let asked = 0;
    const skbLocal = (() => {
      const w = new BtfWriter();
      const i = w.int("int");
      w.struct(w.str("sk_buff"), 4, [[w.str("mark"), i, 0]]);
      return new Spec(w.bytes());
    })();
    const res = calculateCoreRelocation(skbLocal, relo, base, undefined, () => (asked++, [mod]));
    assert.equal(res.target, 4n);
    assert.equal(asked, 0);
  });
});
