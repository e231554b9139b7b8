// USDT without root: argument specs, the .note.stapsdt reader on a committed
// fixture (test/fixtures/usdt-probes, from test/fixtures/src/usdt-probes.native.c),
// prelink adjustment, usdt.bpf.h's spec encoding, and the usdt section/hook.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile, ElfError } from "../../src/elf/index.ts";
import { findUsdtProbe, parseUsdtArg, parseUsdtArgs, readUsdtProbes, x86Register, type UsdtArg } from "../../src/elf/usdt.ts";
import { NotSupportedError } from "../../src/errors.ts";
import { encodeUsdtSpec, USDT_SPEC_SIZE } from "../../src/link/usdt.ts";
import { describeTarget, sectionDef, sectionOf, targetOfSection } from "../../src/link/hooks.ts";
import { ProgType } from "../../src/internal/sys/constants.ts";
import { AttachError } from "../../src/link/errors.ts";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "usdt-probes");
const fixtureBytes = () => new Uint8Array(readFileSync(FIXTURE));

// A compact view of an argument: [kind, size, signed, register field or value, displacement].
function brief(a: UsdtArg): unknown[] {
  if (a.kind === "const") return ["const", a.size, a.signed, a.value];
  if (a.kind === "reg") return ["reg", a.size, a.signed, a.reg.field];
  return ["mem", a.size, a.signed, a.reg.field, a.offset];
}

test("argument specs: registers of every width map to their pt_regs field and offset", () => {
  assert.deepEqual(brief(parseUsdtArg("-4@%eax")), ["reg", 4, true, "ax"]);
  assert.deepEqual(brief(parseUsdtArg("8@%rdi")), ["reg", 8, false, "di"]);
  assert.deepEqual(brief(parseUsdtArg("-2@%si")), ["reg", 2, true, "si"]);
  assert.deepEqual(brief(parseUsdtArg("-1@%dil")), ["reg", 1, true, "di"]);
  assert.deepEqual(brief(parseUsdtArg("1@%r8b")), ["reg", 1, false, "r8"]);
  assert.deepEqual(brief(parseUsdtArg("4@%r10d")), ["reg", 4, false, "r10"]);
  assert.deepEqual(brief(parseUsdtArg("2@%r15w")), ["reg", 2, false, "r15"]);
  assert.deepEqual(brief(parseUsdtArg("1@%al")), ["reg", 1, false, "ax"]);
  // Old producers wrote no size: a long.
  assert.deepEqual(brief(parseUsdtArg("%rbx")), ["reg", 8, false, "bx"]);
  // offsetof(struct pt_regs, ...) on x86-64.
  assert.equal(x86Register("r15").offset, 0);
  assert.equal(x86Register("ebp").offset, 32);
  assert.equal(x86Register("rax").offset, 80);
  assert.equal(x86Register("rip").offset, 128);
  assert.equal(x86Register("spl").offset, 152);
  assert.equal(x86Register("r12d").name, "r12");
});

test("argument specs: constants and memory operands, signs and sizes", () => {
  assert.deepEqual(brief(parseUsdtArg("4@$5")), ["const", 4, false, 5n]);
  assert.deepEqual(brief(parseUsdtArg("-4@$-9")), ["const", 4, true, -9n]);
  assert.deepEqual(brief(parseUsdtArg("8@$0x10")), ["const", 8, false, 16n]);
  assert.deepEqual(brief(parseUsdtArg("8@-16(%rbp)")), ["mem", 8, false, "bp", -16n]);
  assert.deepEqual(brief(parseUsdtArg("-4@112(%rsp)")), ["mem", 4, true, "sp", 112n]);
  assert.deepEqual(brief(parseUsdtArg("2@(%rdi)")), ["mem", 2, false, "di", 0n]);
  assert.deepEqual(brief(parseUsdtArg("8@0x20(%r12)")), ["mem", 8, false, "r12", 32n]);
  assert.deepEqual(parseUsdtArgs("8@%rbp 8@%r12 -4@%eax").map(brief), [["reg", 8, false, "bp"], ["reg", 8, false, "r12"], ["reg", 4, true, "ax"]]);
  assert.deepEqual(parseUsdtArgs(""), []);
  assert.deepEqual(parseUsdtArgs("  "), []);
});

test("argument specs: bad sizes and registers are ElfErrors; forms usdt.bpf.h cannot read are NotSupportedErrors", () => {
  assert.throws(() => parseUsdtArg("3@%rax"), (e: unknown) => e instanceof ElfError && /size 3/.test(e.message));
  assert.throws(() => parseUsdtArg("8@%foo"), (e: unknown) => e instanceof ElfError && /unknown x86-64 register %foo/.test(e.message));
  assert.throws(() => parseUsdtArg("8@rax"), ElfError);
  assert.throws(() => parseUsdtArg("1@%ah"), (e: unknown) => e instanceof NotSupportedError && /high byte/.test(e.message));
  assert.throws(() => parseUsdtArg("8@(%rax,%rbx,8)"), (e: unknown) => e instanceof NotSupportedError && /index/.test(e.message));
  assert.throws(() => parseUsdtArg("-4@8(%rax,%rcx,4)"), NotSupportedError);
  assert.throws(() => parseUsdtArg("8@counter(%rip)"), (e: unknown) => e instanceof NotSupportedError && /symbol/.test(e.message));
  assert.throws(() => parseUsdtArgs(Array(13).fill("8@%rax").join(" ")), /13 arguments, more than 12/);
});

test("the fixture's notes: every probe, its arguments, and its instruction (a nop) at the file offset", () => {
  const elf = new ElfFile(fixtureBytes(), FIXTURE);
  const probes = readUsdtProbes(elf);
  assert.deepEqual(probes.map((p) => `${p.provider}:${p.name}`).sort(), ["tsbpf:constant", "tsbpf:guarded", "tsbpf:mem", "tsbpf:regs"]);
  for (const p of probes) {
    // sys/sdt.h puts a one-byte nop at the probe; the uprobe goes exactly there.
    assert.equal(elf.bytes[p.fileOffset], 0x90, `${p.name}: nop at ${p.fileOffset.toString(16)}`);
    const args = parseUsdtArgs(p.argText);
    assert.ok(args.length > 0, p.name);
  }
  const [regs] = findUsdtProbe(elf, "tsbpf", "regs");
  const r = parseUsdtArgs(regs!.argText);
  assert.equal(r.length, 10);
  // int8, uint8, int16, uint16, int32, uint32, int64, uint64, the constant 42 and a pointer.
  assert.deepEqual(r.map((a) => [a.size, a.signed]), [[1, true], [1, false], [2, true], [2, false], [4, true], [4, false], [8, true], [8, false], [4, true], [8, false]]);
  assert.deepEqual(brief(r[8]!), ["const", 4, true, 42n]);
  assert.ok(r.slice(0, 8).every((a) => a.kind === "reg"), regs!.argText);
  const [mem] = findUsdtProbe(elf, "tsbpf", "mem");
  assert.deepEqual(parseUsdtArgs(mem!.argText).map((a) => [a.kind, a.size, a.signed, a.kind === "mem" ? a.reg.field : ""]), [["mem", 4, true, "bp"], ["mem", 8, true, "bp"], ["mem", 2, false, "bp"]]);
  const [constant] = findUsdtProbe(elf, "tsbpf", "constant");
  assert.deepEqual(parseUsdtArgs(constant!.argText).map(brief), [["const", 4, true, -5n], ["const", 4, true, 1234567n]]);
});

test("semaphores: only the guarded probe has one, at its file offset in .probes", () => {
  const elf = new ElfFile(fixtureBytes(), FIXTURE);
  const probes = readUsdtProbes(elf);
  const guarded = probes.find((p) => p.name === "guarded")!;
  const probesSection = elf.section(".probes")!;
  assert.ok(probesSection, "the fixture has .probes");
  assert.equal(guarded.semaphore, probesSection.addr);
  assert.equal(guarded.semaphoreOffset, probesSection.offset);
  for (const p of probes.filter((p) => p.name !== "guarded")) assert.deepEqual([p.semaphore, p.semaphoreOffset], [0, 0], p.name);
});

test("prelinked notes: addresses are corrected by .stapsdt.base, as libbpf does", () => {
  const bytes = fixtureBytes();
  const elf = new ElfFile(bytes, FIXTURE);
  const before = readUsdtProbes(elf);
  // Move every note's three addresses down by 0x10000, as prelinking leaves them
  // when it moves the binary: the reader must land on the same places.
  const sec = elf.section(".note.stapsdt")!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const note of elf.notes(".note.stapsdt")) {
    const at = sec.offset + note.offset + 12 + 8; // header, "stapsdt\0"
    for (let i = 0; i < 3; i++) {
      const v = view.getBigUint64(at + i * 8, true);
      if (v) view.setBigUint64(at + i * 8, v - 0x10000n, true);
    }
  }
  const after = readUsdtProbes(new ElfFile(bytes, FIXTURE));
  assert.deepEqual(after, before);
});

test("a binary without probes has none, and a missing probe is found nowhere", () => {
  const elf = new ElfFile(new Uint8Array(readFileSync(join(import.meta.dirname, "..", "fixtures", "maps.bpf.o"))), "maps.bpf.o");
  assert.deepEqual(readUsdtProbes(elf), []);
  const fixture = new ElfFile(fixtureBytes(), FIXTURE);
  assert.deepEqual(findUsdtProbe(fixture, "tsbpf", "nosuch"), []);
  assert.equal(findUsdtProbe(fixture, undefined, "regs").length, 1);
});

test("a truncated note is an ElfError naming the section", () => {
  const bytes = fixtureBytes();
  const elf = new ElfFile(bytes, FIXTURE);
  const sec = elf.section(".note.stapsdt")!;
  // The first note's descriptor size made larger than the section.
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(sec.offset + 4, 0x100000, true);
  assert.throws(() => new ElfFile(bytes, FIXTURE).notes(".note.stapsdt"), (e: unknown) => e instanceof ElfError && /\.note\.stapsdt/.test(e.message));
});

test("usdt.bpf.h's struct __bpf_usdt_spec: each argument's type, register offset, sign, bit shift; cookie and count", () => {
  const spec = encodeUsdtSpec(parseUsdtArgs("-4@%eax 8@-16(%rbp) 2@$7"), 0x1122334455n);
  assert.equal(spec.length, USDT_SPEC_SIZE);
  assert.equal(USDT_SPEC_SIZE, 208);
  const v = new DataView(spec.buffer);
  // arg 0: register ax, signed 32-bit.
  assert.deepEqual([v.getBigUint64(0, true), v.getUint32(8, true), v.getInt16(12, true), v.getUint8(14), v.getInt8(15)], [0n, 1, 80, 1, 32]);
  // arg 1: memory at rbp - 16, 64-bit.
  assert.deepEqual([v.getBigInt64(16, true), v.getUint32(24, true), v.getInt16(28, true), v.getUint8(30), v.getInt8(31)], [-16n, 2, 32, 0, 0]);
  // arg 2: the constant 7, 16-bit unsigned.
  assert.deepEqual([v.getBigUint64(32, true), v.getUint32(40, true), v.getUint8(46), v.getInt8(47)], [7n, 0, 0, 48]);
  // Unused arguments stay zero.
  assert.ok(spec.subarray(48, 192).every((b) => b === 0));
  assert.equal(v.getBigUint64(192, true), 0x1122334455n);
  assert.equal(v.getInt16(200, true), 3);
});

test("SEC(\"usdt/BINARY:PROVIDER:NAME\") is a kprobe-type program on the usdt hook; bare usdt takes its target at attach", () => {
  const def = sectionDef("usdt//usr/bin/python3:python:function__entry")!;
  assert.equal(def.attach, "usdt");
  assert.equal(def.progType, ProgType.KPROBE);
  assert.equal(sectionDef("usdt")?.attach, "usdt");
  assert.equal(sectionDef("usdt.s/x:p:n")?.sleepable, true);
  const t = targetOfSection("usdt", "/usr/bin/python3:python:function__entry", "usdt//usr/bin/python3:python:function__entry");
  assert.deepEqual(t, { hook: "usdt", path: "/usr/bin/python3", provider: "python", name: "function__entry" });
  // A path with a colon keeps it: the last two fields are provider and name.
  assert.deepEqual(targetOfSection("usdt", "/opt/a:b/lib.so:prov:probe", "s"), { hook: "usdt", path: "/opt/a:b/lib.so", provider: "prov", name: "probe" });
  assert.equal(targetOfSection("usdt", "", "usdt"), undefined);
  assert.throws(() => targetOfSection("usdt", "python3:only", "usdt/python3:only"), AttachError);
  assert.equal(describeTarget(t!), "usdt:/usr/bin/python3:python:function__entry");
  assert.equal(sectionOf(t!), "usdt//usr/bin/python3:python:function__entry");
});
