// The pure spec layer: ObjectSpec.fromBytes on objects clang builds during the
// test. No kernel, no root: nothing here makes a bpf() syscall. Expected values
// come from libbpf's conventions and from reading the same ELF independently
// (symbols, relocations, raw .BTF), never from the code under test.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { before, describe, test } from "node:test";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ObjectError } from "../../src/object/errors.ts";
import type { ProgramSpec } from "../../src/object/programs.ts";
import { BtfError, Spec } from "../../src/btf/index.ts";
import { ElfError, ElfFile, STT_FUNC, STT_OBJECT, type ElfSection, type ElfSymbol } from "../../src/elf/index.ts";
import { Instructions, INSN_SIZE, Opcode } from "../../src/asm/instruction.ts";
import { AttachType, MapFlag, MapType, ProgType } from "../../src/internal/sys/constants.ts";
import { fixtureObject } from "../support/fixtures.ts";

// ---------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------
// The C of each object is test/fixtures/src/object-NAME.bpf.c, built by
// scripts/build-fixtures.ts and committed: these tests need no clang.

// ---------------------------------------------------------------------------
// Helpers: an independent reading of the object (ELF symbols, relocations)
// ---------------------------------------------------------------------------

const objects: Record<string, Uint8Array> = {};
const parsed = new Map<string, ObjectSpec>();
/** Each object parsed once, on first use, so that one failure fails only the tests that use it. */
const specs = new Proxy({} as Record<string, ObjectSpec>, {
  get(_target, name: string) {
    let spec = parsed.get(name);
    if (!spec) {
      spec = ObjectSpec.fromBytes(objects[name], `${name}.bpf.o`);
      parsed.set(name, spec);
    }
    return spec;
  },
});

/** test/fixtures/object-NAME.bpf.o, which tsbpf's clang driver built (-O2 -g -target bpf, vmlinux.h, libbpf headers). */
function build(fixture: string): Uint8Array {
  return fixtureObject(`object-${fixture}`);
}

function sym(elf: ElfFile, name: string): ElfSymbol {
  const found = elf.symbols().filter((s) => s.name === name);
  assert.equal(found.length, 1, `one ELF symbol named ${name}`);
  return found[0];
}

function section(elf: ElfFile, name: string): ElfSection {
  const sec = elf.section(name);
  assert.ok(sec, `ELF section ${name}`);
  return sec;
}

/** A function's bytes as clang emitted them in its section. */
function functionBytes(elf: ElfFile, name: string): Uint8Array {
  const s = sym(elf, name);
  assert.equal(s.type, STT_FUNC);
  return elf.sections[s.shndx].data().slice(s.value, s.value + s.size);
}

/** ELF relocations of a section keyed by byte offset: offset -> symbol name (or section name). */
function relocationTargets(elf: ElfFile, sectionName: string): Map<number, ElfSymbol> {
  return new Map(elf.relocations(section(elf, sectionName)).map((r) => [r.offset, r.symbol]));
}

/** Instruction indexes of BPF_PSEUDO_CALL instructions. */
function pseudoCalls(insns: Instructions): number[] {
  const out: number[] = [];
  for (let i = 0; i < insns.length; i++) {
    if (insns.isPseudoCall(i)) out.push(i);
    if (insns.isLdImm64(i)) i++;
  }
  return out;
}

/** `bytes` with the imm of every pseudo call zeroed (the one field linking patches). */
function maskCallImms(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  const insns = new Instructions(copy);
  for (const i of pseudoCalls(insns)) insns.setImm(i, 0);
  return copy;
}

/** Runs `fn`, expecting one of the loader's own error classes with a message matching `pattern`. */
function assertClearError(fn: () => unknown, pattern: RegExp, classes: Function[] = [ObjectError, ElfError, BtfError]): Error {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected an error matching ${pattern}`);
  assert.ok(caught instanceof Error, `threw a non-Error: ${String(caught)}`);
  assert.ok(
    classes.some((c) => caught instanceof c),
    `expected ${classes.map((c) => c.name).join("/")}, got ${caught.name}: ${caught.message}`,
  );
  assert.match(caught.message, pattern);
  return caught;
}

function u32le(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
}

function u64le(bytes: Uint8Array, offset: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset, true);
}

before(async () => {
  const sources: Record<string, string> = {
    sections: "sections",
    calls: "calls",
    callback: "callback",
    refs: "refs",
    maps: "maps",
    globals: "globals",
    unknownSection: "unknown-section",
    legacyMaps: "legacy-maps",
  };
  for (const [name, fixture] of Object.entries(sources)) objects[name] = build(fixture);
});

// ---------------------------------------------------------------------------
// Programs and section names
// ---------------------------------------------------------------------------

describe("programs by section name (libbpf conventions)", () => {
  type Expect = Pick<ProgramSpec, "section" | "type" | "expectedAttachType" | "attach" | "attachTarget" | "sleepable" | "btfTarget">;
  const expected: Record<string, Expect> = {
    tracepoint_long: {
      section: "tracepoint/syscalls/sys_enter_openat",
      type: ProgType.TRACEPOINT,
      expectedAttachType: 0,
      attach: "tracepoint",
      attachTarget: "syscalls/sys_enter_openat",
      sleepable: false,
      btfTarget: undefined,
    },
    tracepoint_short: {
      section: "tp/syscalls/sys_enter_openat",
      type: ProgType.TRACEPOINT,
      expectedAttachType: 0,
      attach: "tracepoint",
      attachTarget: "syscalls/sys_enter_openat",
      sleepable: false,
      btfTarget: undefined,
    },
    raw_long: {
      section: "raw_tracepoint/sched_switch",
      type: ProgType.RAW_TRACEPOINT,
      expectedAttachType: 0,
      attach: "raw_tracepoint",
      attachTarget: "sched_switch",
      sleepable: false,
      btfTarget: undefined,
    },
    raw_short: {
      section: "raw_tp/sched_switch",
      type: ProgType.RAW_TRACEPOINT,
      expectedAttachType: 0,
      attach: "raw_tracepoint",
      attachTarget: "sched_switch",
      sleepable: false,
      btfTarget: undefined,
    },
    btf_tp: {
      section: "tp_btf/sched_switch",
      type: ProgType.TRACING,
      expectedAttachType: AttachType.TRACE_RAW_TP,
      attach: "tracing",
      attachTarget: "sched_switch",
      sleepable: false,
      btfTarget: { name: "btf_trace_sched_switch", kind: "typedef" },
    },
    kprobe_prog: {
      section: "kprobe/do_unlinkat",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "kprobe",
      attachTarget: "do_unlinkat",
      sleepable: false,
      btfTarget: undefined,
    },
    kretprobe_prog: {
      section: "kretprobe/do_unlinkat",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "kretprobe",
      attachTarget: "do_unlinkat",
      sleepable: false,
      btfTarget: undefined,
    },
    ksyscall_prog: {
      section: "ksyscall/openat",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "ksyscall",
      attachTarget: "openat",
      sleepable: false,
      btfTarget: undefined,
    },
    kretsyscall_prog: {
      section: "kretsyscall/openat",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "kretsyscall",
      attachTarget: "openat",
      sleepable: false,
      btfTarget: undefined,
    },
    uprobe_prog: {
      section: "uprobe//bin/bash:readline",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "uprobe",
      attachTarget: "/bin/bash:readline",
      sleepable: false,
      btfTarget: undefined,
    },
    uretprobe_prog: {
      section: "uretprobe//bin/bash:readline",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "uretprobe",
      attachTarget: "/bin/bash:readline",
      sleepable: false,
      btfTarget: undefined,
    },
    uprobe_sleepable: {
      section: "uprobe.s//bin/bash:readline",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "uprobe",
      attachTarget: "/bin/bash:readline",
      sleepable: true,
      btfTarget: undefined,
    },
    fentry_prog: {
      section: "fentry/do_unlinkat",
      type: ProgType.TRACING,
      expectedAttachType: AttachType.TRACE_FENTRY,
      attach: "tracing",
      attachTarget: "do_unlinkat",
      sleepable: false,
      btfTarget: { name: "do_unlinkat", kind: "func" },
    },
    fexit_prog: {
      section: "fexit/do_unlinkat",
      type: ProgType.TRACING,
      expectedAttachType: AttachType.TRACE_FEXIT,
      attach: "tracing",
      attachTarget: "do_unlinkat",
      sleepable: false,
      btfTarget: { name: "do_unlinkat", kind: "func" },
    },
    perf_prog: {
      section: "perf_event",
      type: ProgType.PERF_EVENT,
      expectedAttachType: 0,
      attach: "none",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
    xdp_prog: {
      section: "xdp",
      type: ProgType.XDP,
      expectedAttachType: AttachType.XDP,
      attach: "xdp",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
    kprobe_bare: {
      section: "kprobe",
      type: ProgType.KPROBE,
      expectedAttachType: 0,
      attach: "kprobe",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
    fentry_bare: {
      section: "fentry",
      type: ProgType.TRACING,
      expectedAttachType: AttachType.TRACE_FENTRY,
      attach: "tracing",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
    fentry_sleepable: {
      section: "fentry.s/do_unlinkat",
      type: ProgType.TRACING,
      expectedAttachType: AttachType.TRACE_FENTRY,
      attach: "tracing",
      attachTarget: "do_unlinkat",
      sleepable: true,
      btfTarget: { name: "do_unlinkat", kind: "func" },
    },
    lsm_prog: {
      section: "lsm/file_open",
      type: ProgType.LSM,
      expectedAttachType: AttachType.LSM_MAC,
      attach: "tracing",
      attachTarget: "file_open",
      sleepable: false,
      btfTarget: { name: "bpf_lsm_file_open", kind: "func" },
    },
    raw_writable: {
      section: "raw_tp.w/sched_switch",
      type: ProgType.RAW_TRACEPOINT_WRITABLE,
      expectedAttachType: 0,
      attach: "raw_tracepoint",
      attachTarget: "sched_switch",
      sleepable: false,
      btfTarget: undefined,
    },
    xdp_devmap: {
      section: "xdp/devmap",
      type: ProgType.XDP,
      expectedAttachType: AttachType.XDP_DEVMAP,
      attach: "none",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
    xdp_frags_cpumap: {
      section: "xdp.frags/cpumap",
      type: ProgType.XDP,
      expectedAttachType: AttachType.XDP_CPUMAP,
      attach: "none",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
    xdp_frags: {
      section: "xdp.frags",
      type: ProgType.XDP,
      expectedAttachType: AttachType.XDP,
      attach: "xdp",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
    socket_prog: {
      section: "socket",
      type: ProgType.SOCKET_FILTER,
      expectedAttachType: 0,
      attach: "socket",
      attachTarget: "",
      sleepable: false,
      btfTarget: undefined,
    },
  };

  for (const [name, want] of Object.entries(expected)) {
    test(`${want.section} -> ${name}`, () => {
      const spec = specs.sections;
      const prog = spec.program(name);
      assert.equal(prog.name, name);
      const got: Expect = {
        section: prog.section,
        type: prog.type,
        expectedAttachType: prog.expectedAttachType,
        attach: prog.attach,
        attachTarget: prog.attachTarget,
        sleepable: prog.sleepable,
        btfTarget: prog.btfTarget,
      };
      assert.deepEqual(got, want);
      assert.equal(prog.license, "GPL");
      assert.deepEqual(prog.references, []);
      // No calls: the linked program is exactly clang's function body.
      const elf = new ElfFile(objects.sections);
      assert.deepEqual(prog.instructions, functionBytes(elf, name));
      const insns = new Instructions(prog.instructions);
      assert.equal(insns.code(insns.length - 1), Opcode.EXIT);
      // Its BTF function is the C function, at instruction 0.
      assert.equal(prog.funcInfo.length, 1);
      assert.equal(prog.funcInfo[0].insnOff, 0);
      const fn = spec.btf!.typeById(prog.funcInfo[0].typeId);
      assert.equal(fn.kind, "func");
      assert.equal(fn.name, name);
    });
  }

  test("every program in the object is found, and nothing else", () => {
    const names = [...specs.sections.programs.keys()].sort();
    assert.deepEqual(names, [...Object.keys(expected), "same_a", "same_b"].sort());
    // Map keys are the programs' own names.
    for (const [key, prog] of specs.sections.programs) assert.equal(prog.name, key);
  });

  test("xdp returns XDP_PASS (2): the body is the C function's", () => {
    const insns = new Instructions(specs.sections.program("xdp_prog").instructions);
    // r0 = 2; exit
    assert.equal(insns.length, 2);
    assert.equal(insns.code(0), 0xb7); // BPF_ALU64 | BPF_MOV | BPF_K
    assert.equal(insns.dst(0), 0);
    assert.equal(insns.imm(0), 2);
    assert.equal(insns.code(1), Opcode.EXIT);
  });

  test("two programs in the same section: both found, each with its own instructions", () => {
    const spec = specs.sections;
    const a = spec.program("same_a");
    const b = spec.program("same_b");
    assert.equal(a.section, "kprobe/do_sys_openat2");
    assert.equal(b.section, "kprobe/do_sys_openat2");
    assert.equal(a.attachTarget, "do_sys_openat2");
    assert.equal(b.attachTarget, "do_sys_openat2");

    const elf = new ElfFile(objects.sections);
    const symA = sym(elf, "same_a");
    const symB = sym(elf, "same_b");
    assert.equal(symA.shndx, symB.shndx, "clang put both in one ELF section");
    assert.notEqual(symA.value, symB.value);

    assert.deepEqual(a.instructions, functionBytes(elf, "same_a"));
    assert.deepEqual(b.instructions, functionBytes(elf, "same_b"));
    assert.notDeepEqual(a.instructions, b.instructions);

    // same_a is "r0 = 1; exit"; same_b calls bpf_ktime_get_ns (helper 5).
    const ia = new Instructions(a.instructions);
    assert.equal(ia.length, 2);
    assert.equal(ia.imm(0), 1);
    const ib = new Instructions(b.instructions);
    assert.equal(ib.code(0), Opcode.CALL);
    assert.equal(ib.imm(0), 5);
    assert.equal(ib.code(ib.length - 1), Opcode.EXIT);

    // Each has its own func_info (at its own instruction 0) and line info within its own range.
    for (const p of [a, b]) {
      assert.deepEqual(p.funcInfo.map((f) => [f.insnOff, spec.btf!.typeById(f.typeId).name]), [[0, p.name]]);
      const len = p.instructions.length / INSN_SIZE;
      assert.ok(p.lineInfo.length > 0);
      for (const l of p.lineInfo) assert.ok(l.insnOff >= 0 && l.insnOff < len, `line info at ${l.insnOff} within ${len}`);
    }
  });

  test("program(name) for a missing name lists the programs there are", () => {
    const err = assertClearError(() => specs.sections.program("nope"), /no program named "nope"/, [ObjectError]);
    for (const name of ["tracepoint_long", "xdp_prog", "socket_prog", "same_a", "same_b"]) {
      assert.ok(err.message.includes(name), `${name} listed in: ${err.message}`);
    }
    assert.ok(err.message.includes("sections.bpf.o"), "names the object");
  });
});

// ---------------------------------------------------------------------------
// bpf-to-bpf calls
// ---------------------------------------------------------------------------

describe("bpf-to-bpf calls", () => {
  const CALLEES = ["add3", "global_mul"] as const;

  /** Each callee's first instruction in the linked program, found through the calls. */
  function checkLinked(progName: string, expectedCallees: string[]) {
    const spec = specs.calls;
    const elf = new ElfFile(objects.calls);
    const prog = spec.program(progName);
    const insns = new Instructions(prog.instructions);
    const own = functionBytes(elf, progName);
    const ownCount = own.length / INSN_SIZE;

    // The program's own body comes first, unchanged but for call immediates.
    assert.deepEqual(maskCallImms(prog.instructions.slice(0, own.length)), maskCallImms(own));

    // The callees follow: total length is the sum of the bodies, each once.
    const total = ownCount + expectedCallees.reduce((n, c) => n + functionBytes(elf, c).length / INSN_SIZE, 0);
    assert.equal(insns.length, total);

    // Where each callee starts, from func_info (names through the object's BTF).
    const starts = new Map<string, number>();
    for (const f of prog.funcInfo) starts.set(spec.btf!.typeById(f.typeId).name, f.insnOff);
    assert.deepEqual([...starts.keys()].sort(), [progName, ...expectedCallees].sort());
    assert.equal(starts.get(progName), 0, "func_info record at 0 for the program itself");
    assert.deepEqual(
      prog.funcInfo.map((f) => f.insnOff),
      [...prog.funcInfo.map((f) => f.insnOff)].sort((x, y) => x - y),
      "func_info sorted",
    );
    // Callees placed after the caller's own body.
    for (const c of expectedCallees) assert.ok(starts.get(c)! >= ownCount, `${c} after the caller`);

    // Every callee's bytes at its start equal its bytes in .text (calls inside it masked).
    for (const c of expectedCallees) {
      const body = functionBytes(elf, c);
      const at = starts.get(c)! * INSN_SIZE;
      assert.deepEqual(maskCallImms(prog.instructions.slice(at, at + body.length)), maskCallImms(body), `${c}'s body`);
    }

    // Every call's imm points exactly at a callee's first instruction.
    const calls = pseudoCalls(insns);
    const targets = new Set<string>();
    for (const i of calls) {
      const target = i + insns.imm(i) + 1;
      const callee = [...starts].find(([, start]) => start === target)?.[0];
      assert.ok(callee && callee !== progName, `call at ${i} (imm ${insns.imm(i)}) -> ${target} is the start of a callee`);
      targets.add(callee);
      const body = functionBytes(elf, callee);
      assert.deepEqual(
        maskCallImms(prog.instructions.slice(target * INSN_SIZE, target * INSN_SIZE + body.length)),
        maskCallImms(body),
      );
    }
    assert.deepEqual([...targets].sort(), [...expectedCallees].sort(), "every callee is called");

    // line_info: sorted, within the program, first at 0, and covering each callee.
    const offs = prog.lineInfo.map((l) => l.insnOff);
    assert.ok(offs.length > 0);
    assert.equal(offs[0], 0);
    for (let k = 1; k < offs.length; k++) assert.ok(offs[k] > offs[k - 1], `line_info sorted at ${k}: ${offs}`);
    assert.ok(offs.every((o) => o >= 0 && o < insns.length), `line_info within ${insns.length}: ${offs}`);
    for (const c of expectedCallees) assert.ok(offs.includes(starts.get(c)!), `a line_info record at ${c}'s start`);
    return { prog, starts, calls, insns };
  }

  test("a program calling a static and a global function (which calls the static one)", () => {
    const { calls, insns, starts } = checkLinked("caller_a", ["add3", "global_mul"]);
    // caller_a calls add3 and global_mul, global_mul calls add3: three calls, add3 placed once.
    assert.equal(calls.length, 3);
    const add3 = starts.get("add3")!;
    const intoAdd3 = calls.filter((i) => i + insns.imm(i) + 1 === add3);
    assert.equal(intoAdd3.length, 2);
    const gm = starts.get("global_mul")!;
    assert.ok(intoAdd3.some((i) => i >= gm), "global_mul's own call is patched to the shared add3");
  });

  test("the static function is linked into a second program too", () => {
    const { calls } = checkLinked("caller_b", ["add3"]);
    assert.equal(calls.length, 1);
  });

  test("callees in .text are not programs; their linkage is as in C", () => {
    const spec = specs.calls;
    assert.deepEqual([...spec.programs.keys()].sort(), ["caller_a", "caller_b"]);
    const btf = spec.btf!;
    assert.equal(btf.typeByName("add3", "func").linkage, "static");
    assert.equal(btf.typeByName("global_mul", "func").linkage, "global");
    // The ELF agrees: both in .text.
    const elf = new ElfFile(objects.calls);
    for (const c of CALLEES) assert.equal(elf.sections[sym(elf, c).shndx].name, ".text");
  });

  test("a bpf_loop callback (BPF_PSEUDO_FUNC) and a callee's own map references", () => {
    const spec = specs.callback;
    const elf = new ElfFile(objects.callback);
    const prog = spec.program("loop");
    const insns = new Instructions(prog.instructions);
    const starts = new Map(prog.funcInfo.map((f) => [spec.btf!.typeById(f.typeId).name, f.insnOff]));
    assert.deepEqual([...starts.keys()].sort(), ["cb", "bump", "loop"].sort());
    assert.equal(starts.get("loop"), 0);

    // The callback's address: ld_imm64 with src_reg BPF_PSEUDO_FUNC (4), imm relative like a call.
    const funcs: number[] = [];
    for (let i = 0; i < insns.length; i++) {
      if (insns.isLdImm64(i)) {
        if (insns.src(i) === 4) funcs.push(i);
        i++;
      }
    }
    assert.equal(funcs.length, 1);
    const f = funcs[0];
    assert.equal(f + insns.imm(f) + 1, starts.get("cb"), "points at cb's first instruction");
    assert.equal(insns.imm(f + 1), 0, "second half of ld_imm64 is zero");
    // bpf_loop (helper 181) follows.
    let k = f + 2;
    while (insns.code(k) !== Opcode.CALL) k++;
    assert.equal(insns.imm(k), 181);
    for (const c of ["cb", "bump"]) {
      const body = functionBytes(elf, c);
      const at = starts.get(c)! * INSN_SIZE;
      assert.deepEqual(prog.instructions.slice(at, at + body.length), body, `${c}'s body`);
    }
    assert.equal(insns.length, ["loop", "cb", "bump"].reduce((n, c) => n + sym(elf, c).size / INSN_SIZE, 0));

    // References inside the callees sit at the callee's placement + the relocation's offset in it.
    const want: string[] = [];
    for (const r of elf.relocations(section(elf, ".text"))) {
      const owner = ["cb", "bump"].find((c) => r.offset >= sym(elf, c).value && r.offset < sym(elf, c).value + sym(elf, c).size)!;
      const insn = starts.get(owner)! + (r.offset - sym(elf, owner).value) / INSN_SIZE;
      want.push(r.symbol.name === "arr" ? `${insn} fd arr+0` : `${insn} value ${r.symbol.sectionName}+${r.symbol.value}`);
    }
    // ... and in the program itself: the bpf_printk format strings (static, in .rodata).
    const fmt0 = sym(elf, "loop.____fmt");
    const fmt1 = sym(elf, "loop.____fmt.1");
    const base = sym(elf, "loop").value;
    for (const r of elf.relocations(section(elf, "tp/syscalls/sys_enter_openat"))) {
      if (r.symbol.sectionName !== ".rodata") continue;
      // Against the section symbol: the variable's offset is in the instruction's imm.
      const imm = new DataView(objects.callback.buffer, objects.callback.byteOffset).getInt32(
        section(elf, "tp/syscalls/sys_enter_openat").offset + r.offset + 4,
        true,
      );
      want.push(`${(r.offset - base) / INSN_SIZE} value .rodata+${imm}`);
    }
    const got = prog.references.map((r) => `${r.insn} ${r.kind} ${r.map}+${r.offset}`);
    assert.deepEqual(got.sort(), want.sort());
    assert.ok(got.some((g) => g.endsWith(`.rodata+${fmt0.value}`)));
    assert.ok(got.some((g) => g.endsWith(`.rodata+${fmt1.value}`)));
    assert.notEqual(fmt0.value, fmt1.value);
    for (const r of prog.references) assert.equal(insns.code(r.insn), Opcode.LD_IMM64);

    // The format strings are variables too, decoded as strings.
    assert.equal(spec.variable("loop.____fmt").get(), "hello %d");
    assert.equal(spec.variable("loop.____fmt.1").get(), "world %d");
    assert.equal(spec.variable("loop.____fmt.1").offset, fmt1.value);
  });

  test("an object at an unaligned offset inside a larger buffer parses the same", () => {
    const bytes = objects.calls;
    const big = new Uint8Array(bytes.length + 7);
    big.set(bytes, 3);
    const spec = ObjectSpec.fromBytes(big.subarray(3, 3 + bytes.length));
    for (const name of ["caller_a", "caller_b"]) {
      const a = spec.program(name);
      const b = specs.calls.program(name);
      assert.deepEqual(a.instructions, b.instructions);
      assert.deepEqual(a.funcInfo, b.funcInfo);
      assert.deepEqual(a.lineInfo, b.lineInfo);
    }
    const g = new Uint8Array(objects.globals.length + 5);
    g.set(objects.globals, 5);
    const globals = ObjectSpec.fromBytes(g.subarray(5));
    assert.deepEqual(globals.variable("cfg").get(), { a: 1, b: 2, name: "tsbpf", c: 3n });
    assert.equal(globals.variable("min_ns").get(), 1000000n);
  });

  test("line_info line_col stays the file's u32, even for lines past 2^21", () => {
    const LINE_COL = ((0x3fffff << 10) | 5) >>> 0; // line 4194303, column 5
    const bytes = patched(objects.calls, (_c, view, elf) => {
      const ext = section(elf, ".BTF.ext");
      const hdrLen = view.getUint32(ext.offset + 4, true);
      const start = ext.offset + hdrLen + view.getUint32(ext.offset + 16, true);
      const end = start + view.getUint32(ext.offset + 20, true);
      const recSize = view.getUint32(start, true);
      let records = 0;
      for (let pos = start + 4; pos < end; ) {
        const count = view.getUint32(pos + 4, true);
        pos += 8;
        for (let i = 0; i < count; i++, pos += recSize) {
          view.setUint32(pos + 12, LINE_COL, true);
          records++;
        }
      }
      assert.ok(records > 0);
    });
    const spec = ObjectSpec.fromBytes(bytes);
    for (const prog of spec.programs.values()) {
      assert.ok(prog.lineInfo.length > 0);
      for (const l of prog.lineInfo) assert.equal(l.lineCol, LINE_COL);
    }
  });

  test("linking copies: the ELF bytes stay as clang wrote them", () => {
    const before = objects.calls.slice();
    ObjectSpec.fromBytes(objects.calls);
    assert.deepEqual(objects.calls, before);
  });
});

// ---------------------------------------------------------------------------
// Map references
// ---------------------------------------------------------------------------

describe("map references", () => {
  test("ld_imm64 of a .maps map -> kind 'fd' at the relocated instruction", () => {
    const spec = specs.refs;
    const elf = new ElfFile(objects.refs);
    const prog = spec.program("refs");
    const insns = new Instructions(prog.instructions);
    const fd = prog.references.filter((r) => r.kind === "fd");
    assert.equal(fd.length, 1);
    const ref = fd[0];
    assert.equal(ref.map, "arr");
    assert.equal(ref.offset, 0);
    assert.equal(insns.code(ref.insn), Opcode.LD_IMM64);
    assert.equal(insns.dst(ref.insn), 1, "loaded into r1, the map argument of bpf_map_lookup_elem");
    // The next helper call after it is bpf_map_lookup_elem (helper 1).
    let k = ref.insn + 2;
    while (k < insns.length && insns.code(k) !== Opcode.CALL) k++;
    assert.equal(insns.imm(k), 1);
    // The ELF relocation at that instruction is against the map's symbol.
    const relocs = relocationTargets(elf, "tp/syscalls/sys_enter_openat");
    const base = sym(elf, "refs").value;
    assert.equal(relocs.get(base + ref.insn * INSN_SIZE)?.name, "arr");
  });

  test("ld_imm64 of globals -> kind 'value' with each variable's offset from the ELF symbols", () => {
    const spec = specs.refs;
    const elf = new ElfFile(objects.refs);
    const prog = spec.program("refs");
    const insns = new Instructions(prog.instructions);
    const values = prog.references.filter((r) => r.kind === "value");
    for (const r of values) assert.equal(insns.code(r.insn), Opcode.LD_IMM64, `reference at ${r.insn} is an ld_imm64`);

    const got = values.map((r) => `${r.map}+${r.offset}`).sort();
    const want = ["data_a", "data_b", "bss_a", "bss_b", "ro_a", "ro_b", "static_x", "static_y"].map((n) => {
      const s = sym(elf, n);
      return `${s.sectionName}+${s.value}`;
    });
    // clang may load one variable's address more than once; every variable appears.
    assert.deepEqual([...new Set(got)].sort(), [...new Set(want)].sort());

    // Two globals in one section have different offsets.
    for (const [x, y, sec] of [["data_a", "data_b", ".data"], ["bss_a", "bss_b", ".bss"], ["ro_a", "ro_b", ".rodata"], ["static_x", "static_y", ".bss"]]) {
      const sx = sym(elf, x);
      const sy = sym(elf, y);
      assert.equal(sx.sectionName, sec);
      assert.equal(sy.sectionName, sec);
      assert.notEqual(sx.value, sy.value);
    }

    // Each reference sits where the ELF has a relocation.
    const relocs = relocationTargets(elf, "tp/syscalls/sys_enter_openat");
    const base = sym(elf, "refs").value;
    for (const r of prog.references) assert.ok(relocs.has(base + r.insn * INSN_SIZE), `relocation at insn ${r.insn}`);
    assert.equal(prog.references.length, relocs.size, "one reference per relocation");
  });

  test("the referenced data sections are maps with the sections' sizes", () => {
    const spec = specs.refs;
    const elf = new ElfFile(objects.refs);
    for (const name of [".data", ".bss", ".rodata"]) {
      const m = spec.map(name);
      assert.equal(m.type, MapType.ARRAY);
      assert.equal(m.keySize, 4);
      assert.equal(m.maxEntries, 1);
      assert.equal(m.valueSize, section(elf, name).size);
      assert.equal(m.contents!.length, section(elf, name).size);
    }
    assert.equal(spec.map(".rodata").dataSection, "rodata");
    assert.equal(spec.map(".rodata").flags, MapFlag.RDONLY_PROG | MapFlag.MMAPABLE);
    assert.equal(spec.map(".data").flags, MapFlag.MMAPABLE);
    assert.equal(spec.map(".bss").dataSection, "bss");
    // Initial contents: data_a = 11, data_b = 22 at their symbol offsets.
    assert.equal(u64le(spec.map(".data").contents!, sym(elf, "data_a").value), 11n);
    assert.equal(u64le(spec.map(".data").contents!, sym(elf, "data_b").value), 22n);
  });
});

// ---------------------------------------------------------------------------
// BTF-defined maps
// ---------------------------------------------------------------------------

describe("BTF-defined maps (.maps)", () => {
  test("attributes: type, sizes, max_entries, flags, pinning", () => {
    const spec = specs.maps;
    const pinned = spec.map("pinned");
    assert.equal(pinned.name, "pinned");
    assert.equal(pinned.type, MapType.LRU_HASH);
    assert.equal(pinned.keySize, 16, "struct key_t { u32; u64; } with padding");
    assert.equal(pinned.valueSize, 20, "struct event { u32; char[16]; }");
    assert.equal(pinned.maxEntries, 1024);
    assert.equal(pinned.flags, MapFlag.NO_COMMON_LRU);
    assert.equal(pinned.pinning, "by-name");
    assert.equal(pinned.contents, undefined);
    assert.equal(pinned.dataSection, undefined);

    const counts = spec.map("counts");
    assert.equal(counts.type, MapType.HASH);
    assert.equal(counts.keySize, 4);
    assert.equal(counts.valueSize, 8);
    assert.equal(counts.maxEntries, 64);
    assert.equal(counts.flags, MapFlag.NO_PREALLOC);
    assert.equal(counts.pinning, "none");

    const sized = spec.map("sized");
    assert.equal(sized.type, MapType.PERCPU_ARRAY);
    assert.equal(sized.keySize, 4);
    assert.equal(sized.valueSize, 24);
    assert.equal(sized.maxEntries, 3);
    assert.equal(sized.key, undefined, "key_size gives no BTF type");
    assert.equal(sized.value, undefined);

    const rb = spec.map("rb");
    assert.equal(rb.type, MapType.RINGBUF);
    assert.equal(rb.maxEntries, 256 * 1024);
    assert.equal(rb.keySize, 0);
    assert.equal(rb.valueSize, 0);
  });

  test("key and value BTF types are named as in C", () => {
    const pinned = specs.maps.map("pinned");
    assert.equal(pinned.key?.kind, "struct");
    assert.equal(pinned.key?.name, "key_t");
    assert.equal(pinned.value?.kind, "struct");
    assert.equal(pinned.value?.name, "event");
    if (pinned.value?.kind === "struct") {
      assert.deepEqual(pinned.value.members.map((m) => m.name), ["pid", "comm"]);
    }
    const counts = specs.maps.map("counts");
    assert.equal(counts.key?.kind, "typedef");
    assert.equal(counts.key?.name, "u32");
    assert.equal(counts.value?.name, "u64");
  });

  test("PERF_EVENT_ARRAY without sizes gets key and value size 4", () => {
    const events = specs.maps.map("events");
    assert.equal(events.type, MapType.PERF_EVENT_ARRAY);
    assert.equal(events.keySize, 4);
    assert.equal(events.valueSize, 4);
    assert.equal(events.maxEntries, 0, "left to the loader (number of CPUs)");
  });

  test("every .maps variable is a map; no data maps without data sections", () => {
    const elf = new ElfFile(objects.maps);
    const inMaps = elf
      .symbols()
      .filter((s) => s.sectionName === ".maps" && s.type === STT_OBJECT)
      .map((s) => s.name)
      .sort();
    assert.deepEqual(inMaps, ["counts", "events", "pinned", "rb", "sized"]);
    const dataMaps = [...specs.maps.maps.keys()].filter((n) => n.startsWith("."));
    const dataSections = elf.sections.filter((s) => /^\.(rodata|data|bss)(\.|$)/.test(s.name)).map((s) => s.name);
    assert.deepEqual(dataMaps.sort(), dataSections.sort());
    assert.deepEqual([...specs.maps.maps.keys()].filter((n) => !n.startsWith(".")).sort(), inMaps);
  });

  test("map(name) for a missing name lists the maps there are", () => {
    const err = assertClearError(() => specs.maps.map("nope"), /no map named "nope"/, [ObjectError]);
    for (const name of ["pinned", "counts", "sized", "events", "rb"]) assert.ok(err.message.includes(name), err.message);
  });
});

// ---------------------------------------------------------------------------
// Global data and variables
// ---------------------------------------------------------------------------

describe("global data", () => {
  test(".rodata: const volatile target_pid = 7 reads 7; set() writes the map contents at its offset", () => {
    const spec = ObjectSpec.fromBytes(objects.globals); // a fresh one: this test mutates it
    const elf = new ElfFile(objects.globals);
    const v = spec.variable("target_pid");
    const s = sym(elf, "target_pid");
    assert.equal(v.name, "target_pid");
    assert.equal(v.map, spec.map(".rodata"));
    assert.equal(v.offset, s.value);
    assert.equal(v.size, 4);
    assert.equal(v.constant, true);
    assert.equal(v.get(), 7);

    const contents = spec.map(".rodata").contents!;
    const before = contents.slice();
    v.set(1234);
    assert.equal(v.get(), 1234);
    assert.equal(u32le(contents, s.value), 1234);
    // Only those 4 bytes changed.
    for (let i = 0; i < contents.length; i++) {
      if (i < s.value || i >= s.value + 4) assert.equal(contents[i], before[i], `byte ${i} unchanged`);
    }
    assert.deepEqual([...v.bytes()], [0xd2, 0x04, 0, 0]);
    // The neighbour is untouched.
    assert.equal(spec.variable("min_ns").get(), 1000000n);
    // The ELF's own bytes are not modified.
    assert.equal(u32le(section(elf, ".rodata").data(), s.value), 7);
    // Another spec of the same bytes starts from 7 again.
    assert.equal(ObjectSpec.fromBytes(objects.globals).variable("target_pid").get(), 7);
  });

  test(".rodata u64 decodes as a bigint at its own offset", () => {
    const spec = specs.globals;
    const elf = new ElfFile(objects.globals);
    const v = spec.variable("min_ns");
    assert.equal(v.offset, sym(elf, "min_ns").value);
    assert.notEqual(v.offset, spec.variable("target_pid").offset);
    assert.equal(v.size, 8);
    assert.equal(v.get(), 1000000n);
  });

  test(".bss variables are zero", () => {
    const spec = specs.globals;
    const elf = new ElfFile(objects.globals);
    const bss = spec.map(".bss");
    assert.equal(bss.dataSection, "bss");
    assert.equal(bss.valueSize, section(elf, ".bss").size);
    assert.ok(bss.contents!.every((b) => b === 0));
    assert.equal(spec.variable("total").get(), 0n);
    assert.equal(spec.variable("misses").get(), 0);
    assert.equal(spec.variable("total").constant, false);
    assert.equal(spec.variable("misses").offset, sym(elf, "misses").value);
  });

  test(".data initialized struct decodes", () => {
    const spec = specs.globals;
    const v = spec.variable("cfg");
    assert.equal(v.map.name, ".data");
    assert.equal(v.size, 24);
    assert.equal(v.type?.name, "config");
    assert.deepEqual(v.get(), { a: 1, b: 2, name: "tsbpf", c: 3n });
  });

  test("set() on a .data struct round-trips and lands in the map contents", () => {
    const spec = ObjectSpec.fromBytes(objects.globals);
    const v = spec.variable("cfg");
    v.set({ a: 10, b: 20, name: "x", c: 30n });
    assert.deepEqual(v.get(), { a: 10, b: 20, name: "x", c: 30n });
    const contents = spec.map(".data").contents!;
    assert.equal(u32le(contents, v.offset), 10);
    assert.equal(u64le(contents, v.offset + 16), 30n);
  });

  test("a custom .data.NAME section is its own data map", () => {
    const spec = specs.globals;
    const m = spec.map(".data.custom");
    assert.equal(m.dataSection, "data");
    assert.equal(m.valueSize, 4);
    assert.equal(spec.variable("custom").map, m);
    assert.equal(spec.variable("custom").get(), 9);
  });

  test("DATASEC sizes and offsets are fixed up in kernelBtf", () => {
    const spec = specs.globals;
    const elf = new ElfFile(objects.globals);
    // clang 14 leaves them 0 in the object's own .BTF.
    const raw = new Spec(section(elf, ".BTF").data().slice());
    assert.equal(raw.typeByName(".rodata", "datasec").size, 0);

    assert.ok(spec.kernelBtf);
    const fixed = new Spec(spec.kernelBtf);
    for (const name of [".rodata", ".data", ".bss", ".data.custom"]) {
      const ds = fixed.typeByName(name, "datasec");
      assert.equal(ds.size, section(elf, name).size, `${name} size`);
      for (const v of ds.vars) {
        assert.equal(v.type.kind, "var");
        const s = sym(elf, v.type.name);
        assert.equal(v.offset, s.value, `${name} ${v.type.name} offset`);
        assert.equal(v.size, s.size, `${name} ${v.type.name} size`);
      }
      const offsets = ds.vars.map((v) => v.offset);
      assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), "sorted by offset");
    }
    assert.deepEqual(
      fixed.typeByName(".rodata", "datasec").vars.map((v) => v.type.name),
      ["target_pid", "min_ns"].sort((x, y) => sym(elf, x).value - sym(elf, y).value),
    );
    // spec.btf is the fixed-up BTF.
    assert.equal(spec.btf!.typeByName(".bss", "datasec").size, section(elf, ".bss").size);
  });

  test("variable(name) for a missing name lists the variables there are", () => {
    const err = assertClearError(() => specs.globals.variable("nope"), /no global variable named "nope"/, [ObjectError]);
    for (const name of ["target_pid", "min_ns", "total", "misses", "cfg", "custom"]) assert.ok(err.message.includes(name), err.message);
  });
});

// ---------------------------------------------------------------------------
// License
// ---------------------------------------------------------------------------

describe("license", () => {
  test('"GPL"', () => {
    assert.equal(specs.sections.license, "GPL");
    assert.equal(specs.calls.program("caller_a").license, "GPL");
  });

  test('"Dual BSD/GPL"', () => {
    assert.equal(specs.globals.license, "Dual BSD/GPL");
    assert.equal(specs.globals.program("globals").license, "Dual BSD/GPL");
  });
});

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** Bytes of the ELF with `patch` applied to a copy. */
function patched(bytes: Uint8Array, patch: (copy: Uint8Array, view: DataView, elf: ElfFile) => void): Uint8Array {
  const copy = bytes.slice();
  patch(copy, new DataView(copy.buffer, copy.byteOffset, copy.byteLength), new ElfFile(bytes));
  return copy;
}

describe("errors", () => {
  test('unknown section SEC("foo/bar") names the section and suggests known ones', () => {
    const err = assertClearError(() => ObjectSpec.fromBytes(objects.unknownSection), /foo\/bar/, [ObjectError]);
    assert.match(err.message, /mystery/, "names the program");
    for (const known of ["tracepoint/", "kprobe/", "uprobe/", "xdp"]) assert.ok(err.message.includes(known), `suggests ${known}: ${err.message}`);
  });

  test('legacy SEC("maps") is rejected with a pointer to BTF maps', () => {
    const err = assertClearError(() => ObjectSpec.fromBytes(objects.legacyMaps, "legacy.o"), /legacy "maps" section/, [ObjectError]);
    assert.match(err.message, /\.maps/);
    assert.match(err.message, /legacy\.o/);
  });

  test(".maps in an object compiled without -g -> compile with -g", () => {
    // test/fixtures/src/object-maps-nog.bpf.c: the maps object's C, built with -g0.
    const bytes = build("maps-nog");
    assert.equal(new ElfFile(bytes).section(".BTF"), undefined, "no BTF without -g");
    const err = assertClearError(() => ObjectSpec.fromBytes(bytes, "nog.bpf.o"), /compile with -g/, [ObjectError]);
    assert.match(err.message, /\.maps/);
  });

  test("a non-BPF ELF file -> ObjectError", async () => {
    const bytes = new Uint8Array(await readFile("/bin/true"));
    assertClearError(() => ObjectSpec.fromBytes(bytes, "/bin/true"), /\/bin\/true is not a BPF object.*clang -target bpf/, [ObjectError]);
  });

  test("truncated objects fail with a clear error", () => {
    const bytes = objects.refs;
    const lengths = [0, 1, 3, 4, 5, 16, 63, 64, 65, 200, 1000, Math.floor(bytes.length / 2), bytes.length - 64, bytes.length - 1];
    for (const n of lengths) {
      const err = assertClearError(() => ObjectSpec.fromBytes(bytes.slice(0, n), `cut-${n}.o`), /./);
      assert.ok(err instanceof ElfError, `length ${n}: ${err.name}: ${err.message}`);
      assert.match(err.message, /too short|truncated|past end|not an ELF/, `length ${n}: ${err.message}`);
    }
  });

  test("a section whose data runs past the end of the file", () => {
    const bytes = patched(objects.refs, (_c, view, elf) => {
      const btf = section(elf, ".BTF");
      const shoff = Number(view.getBigUint64(0x28, true));
      view.setBigUint64(shoff + btf.index * 64 + 32, BigInt(objects.refs.length), true); // sh_size
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /\.BTF.*runs past end of file/, [ElfError]);
  });

  test("zeroed .BTF magic -> BtfError", () => {
    const bytes = patched(objects.refs, (copy, _v, elf) => {
      const btf = section(elf, ".BTF");
      copy[btf.offset] = 0;
      copy[btf.offset + 1] = 0;
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /BTF: bad magic/, [BtfError]);
  });

  test("zeroed .BTF.ext magic -> BtfError", () => {
    const bytes = patched(objects.calls, (copy, _v, elf) => {
      const ext = section(elf, ".BTF.ext");
      copy[ext.offset] = 0;
      copy[ext.offset + 1] = 0;
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /BTF\.ext: bad magic/, [BtfError]);
  });

  test("a relocation with a symbol index out of range -> ElfError", () => {
    const bytes = patched(objects.refs, (_c, view, elf) => {
      const rel = elf.sections.find((s) => s.name === ".reltp/syscalls/sys_enter_openat");
      assert.ok(rel, "relocation section");
      // r_info = sym << 32 | type: put a huge symbol index in the first entry.
      view.setUint32(rel.offset + 12, 0xfffff, true);
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /relocation 0 .* refers to symbol 1048575/, [ElfError]);
  });

  test("a relocation against the wrong symbol -> ObjectError naming the instruction", () => {
    const bytes = patched(objects.refs, (_c, view, elf) => {
      const rel = elf.sections.find((s) => s.name === ".reltp/syscalls/sys_enter_openat")!;
      // Point the first relocation (the map's) at LICENSE, which is neither a map nor global data.
      const license = sym(elf, "LICENSE");
      view.setUint32(rel.offset + 12, license.index, true);
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /refs\+\d+ .*LICENSE.*not a map or global data/, [ObjectError]);
  });

  test("a function symbol with a misaligned size -> ObjectError", () => {
    const bytes = patched(objects.calls, (_c, view, elf) => {
      const s = sym(elf, "caller_b");
      const symtab = elf.sections.find((x) => x.name === ".symtab")!;
      view.setBigUint64(symtab.offset + s.index * 24 + 16, BigInt(s.size + 3), true);
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /caller_b.*misaligned or out-of-range/, [ObjectError]);
  });

  test("a call into the middle of a function -> ObjectError", () => {
    const bytes = patched(objects.calls, (copy, _view, elf) => {
      const s = sym(elf, "caller_b");
      const sec = elf.sections[s.shndx];
      const insns = new Instructions(copy.subarray(sec.offset + s.value, sec.offset + s.value + s.size));
      const [call] = pseudoCalls(insns);
      // The relocation is against .text (section symbol): imm + 1 is the target index.
      insns.setImm(call, insns.imm(call) + 1);
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /caller_b\+\d+ .*not the start of a function/, [ObjectError]);
  });

  test("a global variable symbol outside its section -> ObjectError", () => {
    const bytes = patched(objects.globals, (_c, view, elf) => {
      const s = sym(elf, "min_ns");
      const symtab = section(elf, ".symtab");
      view.setBigUint64(symtab.offset + s.index * 24 + 8, 0x1000n, true); // st_value
    });
    assertClearError(() => ObjectSpec.fromBytes(bytes), /global variable min_ns at 4096\+8 lies outside its section \.rodata/, [ObjectError]);
  });

  test("a global variable symbol smaller than its BTF type -> ObjectError on get()/set()", () => {
    const bytes = patched(objects.globals, (_c, view, elf) => {
      const s = sym(elf, "cfg");
      const symtab = section(elf, ".symtab");
      view.setBigUint64(symtab.offset + s.index * 24 + 16, 4n, true); // st_size
    });
    const spec = ObjectSpec.fromBytes(bytes);
    const v = spec.variable("cfg");
    assert.equal(v.size, 4);
    assertClearError(() => v.get(), /variable cfg: its BTF type struct config is 24 bytes, but the variable is 4/, [ObjectError]);
    assertClearError(() => v.set({ a: 1 }), /variable cfg/, [ObjectError]);
    // Its neighbours are still fine.
    assert.equal(spec.variable("target_pid").get(), 7);
  });

  test("random corruption never escapes as a TypeError or RangeError", () => {
    // A deterministic walk over small corruptions of the headers, tables, code and BTF.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8);
    let failures = 0;
    for (const name of ["calls", "globals", "callback"]) {
      const bytes = objects[name];
      const elf = new ElfFile(bytes);
      const regions: [number, number][] = [[0, 64]];
      const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0x28, true));
      regions.push([shoff, bytes.length]);
      for (const s of elf.sections) {
        if (s.size > 0 && s.type !== 8 && !/debug/.test(s.name)) regions.push([s.offset, s.offset + s.size]);
      }
      for (let n = 0; n < 300; n++) {
        const copy = bytes.slice();
        for (let m = 1 + (rand() % 2); m > 0; m--) {
          const [lo, hi] = regions[rand() % regions.length];
          const at = lo + (rand() % (hi - lo));
          copy[at] = rand() % 3 === 0 ? 0xff : rand() & 0xff;
        }
        try {
          const spec = ObjectSpec.fromBytes(copy);
          for (const v of spec.variables.values()) {
            try {
              v.get();
            } catch (error) {
              assert.ok(error instanceof ObjectError || error instanceof BtfError, `get() of ${v.name}: ${(error as Error).stack}`);
            }
          }
        } catch (error) {
          failures++;
          assert.ok(
            error instanceof ObjectError || error instanceof ElfError || error instanceof BtfError,
            `${name} corruption ${n}: ${(error as Error).name}: ${(error as Error).message}\n${(error as Error).stack}`,
          );
        }
      }
    }
    assert.ok(failures > 0, "some corruptions are detected");
  });
});
