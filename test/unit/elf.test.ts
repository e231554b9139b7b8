import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ElfError, ElfFile, EM_BPF, EM_X86_64, ET_DYN, ET_EXEC, ET_REL, R_BPF_64_32, R_BPF_64_64,
  R_BPF_64_ABS32, R_BPF_64_NODYLD32, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS,
  SHT_PROGBITS, SHT_REL, STB_GLOBAL, STB_LOCAL, STT_FUNC, STT_OBJECT, STT_SECTION,
} from "../../src/elf/index.ts";
import type { ElfFile as ElfFileType } from "../../src/elf/index.ts";
import { fixtureObject } from "../support/fixtures.ts";

// The C is test/fixtures/src/elf.bpf.c, built by scripts/build-fixtures.ts.

const bytes = fixtureObject("elf");
const elf = new ElfFile(bytes, "elftest.o");

test("header: a relocatable EM_BPF object", () => {
  assert.equal(elf.type, ET_REL);
  assert.equal(elf.machine, EM_BPF);
  assert.equal(elf.programHeaders.length, 0);
  assert.deepEqual(elf.dynamicSymbols(), []);
});

test("program, data and special sections", () => {
  for (const name of [".text", "tracepoint/syscalls/sys_enter_openat", "kprobe/do_sys_openat2"]) {
    const s = elf.section(name);
    assert.ok(s, name);
    assert.equal(s.type, SHT_PROGBITS);
    assert.ok(s.flags & SHF_EXECINSTR, `${name} is executable`);
    assert.equal(s.data().length, s.size);
    assert.equal(s.size % 8, 0);
  }
  const rodata = elf.section(".rodata")!;
  assert.equal(rodata.flags & (SHF_ALLOC | SHF_WRITE), SHF_ALLOC);
  assert.equal(rodata.size, 16);
  assert.ok(elf.section(".data")!.flags & SHF_WRITE);
  const bss = elf.section(".bss")!;
  assert.equal(bss.type, SHT_NOBITS);
  assert.equal(bss.size, 12);
  assert.equal(bss.data().length, 0, "NOBITS has no file data");
  assert.equal(elf.section(".maps")!.size, 32);
  assert.deepEqual([...elf.section("license")!.data()], [..."GPL\0"].map((c) => c.charCodeAt(0)));
  assert.ok(elf.section(".BTF") && elf.section(".BTF.ext"));
  assert.equal(elf.section("nope"), undefined);
});

test("programs, subprogram, maps and globals as symbols", () => {
  const byName = new Map(elf.symbols().filter((s) => s.name).map((s) => [s.name, s]));
  const progA = byName.get("prog_a")!;
  assert.equal(progA.type, STT_FUNC);
  assert.equal(progA.bind, STB_GLOBAL);
  assert.equal(progA.sectionName, "tracepoint/syscalls/sys_enter_openat");

  const [progB, progC] = [byName.get("prog_b")!, byName.get("prog_c")!];
  assert.equal(progB.sectionName, "kprobe/do_sys_openat2");
  assert.equal(progC.sectionName, "kprobe/do_sys_openat2");
  assert.equal(progB.value, 0);
  assert.equal(progC.value, progB.size, "second program follows the first in the same section");
  assert.equal(progB.size + progC.size, elf.section("kprobe/do_sys_openat2")!.size);

  const helper = byName.get("helper")!;
  assert.equal(helper.type, STT_FUNC);
  assert.equal(helper.bind, STB_LOCAL);
  assert.equal(helper.sectionName, ".text");

  const expectObject = (name: string, section: string, size: number) => {
    const s = byName.get(name)!;
    assert.ok(s, name);
    assert.equal(s.type, STT_OBJECT, name);
    assert.equal(s.sectionName, section, name);
    assert.equal(s.size, size, name);
    assert.equal(s.shndx, elf.section(section)!.index);
  };
  expectObject("counts", ".maps", 32);
  expectObject("target_pid", ".rodata", 4);
  expectObject("min_ts", ".rodata", 8);
  expectObject("hits", ".data", 8);
  expectObject("hits2", ".data", 4);
  expectObject("zeroed", ".bss", 8);
  expectObject("zeroed2", ".bss", 4);
  expectObject("LICENSE", "license", 4);
});

test("relocations: ld_imm64 of maps/globals and bpf-to-bpf calls", () => {
  const insnAt = (section: string, offset: number) => elf.section(section)!.data()[offset];
  const sec = "tracepoint/syscalls/sys_enter_openat";
  const relos = elf.relocations(sec);
  const targets = relos.map((r) => [r.type, r.symbol.name || r.symbol.sectionName]);
  for (const name of ["counts", "target_pid", "min_ts", "hits", "zeroed"]) {
    assert.ok(targets.some(([type, n]) => type === R_BPF_64_64 && n === name), `ld_imm64 of ${name}`);
  }
  const call = relos.find((r) => r.type === R_BPF_64_32)!;
  assert.equal(call.symbol.type, STT_SECTION);
  assert.equal(call.symbol.sectionName, ".text");
  for (const r of relos) {
    assert.equal(r.offset % 8, 0);
    assert.equal(r.addend, 0);
    // 0x18 = BPF_LD|BPF_IMM|BPF_DW, 0x85 = BPF_JMP|BPF_CALL
    assert.equal(insnAt(sec, r.offset), r.type === R_BPF_64_64 ? 0x18 : 0x85);
  }
  // Both programs of the shared section relocate through one .rel section.
  const shared = elf.relocations("kprobe/do_sys_openat2");
  assert.deepEqual(shared.map((r) => r.symbol.name || r.symbol.sectionName).sort(), [".text", "hits2", "zeroed2"]);
  const text = elf.relocations(elf.section(".text")!);
  assert.deepEqual(text.map((r) => [r.type, r.symbol.name]), [[R_BPF_64_64, "hits2"]]);
  // .BTF's relocations use the data-only types.
  const btfTypes = new Set(elf.relocations(".BTF").map((r) => r.type));
  assert.ok([...btfTypes].every((t) => t === R_BPF_64_NODYLD32 || t === R_BPF_64_ABS32));
  assert.deepEqual(elf.relocations(".rodata"), []);
  assert.throws(() => elf.relocations("missing"), ElfError);
});

// ---- malformed input -------------------------------------------------------

/** Touches everything a loader would, so lazy parsing errors surface too. */
function walk(f: ElfFile): void {
  for (const s of f.sections) s.data();
  f.symbols();
  f.dynamicSymbols();
  for (const s of f.sections) f.relocations(s);
  try {
    f.symbolFileOffset("prog_a");
  } catch (e) {
    if (!(e instanceof ElfError)) throw e;
  }
}

function expectElfError(data: Uint8Array, pattern: RegExp, what: string): void {
  assert.throws(() => walk(new ElfFile(data)), (e: unknown) => {
    assert.ok(e instanceof ElfError, `${what}: expected ElfError, got ${String(e)}`);
    assert.match(e.message, pattern, what);
    return true;
  });
}

function patched(edit: (v: DataView) => void): Uint8Array {
  const copy = new Uint8Array(bytes);
  edit(new DataView(copy.buffer));
  return copy;
}

test("truncated files throw ElfError", () => {
  const half = Math.floor(bytes.length / 2);
  for (const len of [0, 3, 10, 63, 64, 100, half, bytes.length - 1]) {
    expectElfError(bytes.subarray(0, len), /ELF: /, `truncated to ${len}`);
  }
  expectElfError(bytes.subarray(0, 10), /too short|truncated/, "10 bytes");
  expectElfError(bytes.subarray(0, 63), /truncated ELF header/, "63 bytes");
  expectElfError(bytes.subarray(0, bytes.length - 1), /section header table .* runs past end of file/, "len-1");
});

test("bad identification bytes throw ElfError", () => {
  expectElfError(patched((v) => v.setUint8(0, 0x7e)), /bad magic/, "magic");
  expectElfError(patched((v) => v.setUint8(4, 1)), /ELF class 1 not supported/, "ELF32");
  expectElfError(patched((v) => v.setUint8(5, 2)), /only little-endian/, "big-endian");
  expectElfError(new TextEncoder().encode("#!/bin/sh\necho hello\n"), /bad magic/, "a script");
});

test("corrupted headers and tables throw ElfError naming the problem", () => {
  const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(40, true));
  const shdr = (index: number, field: number) => shoff + index * 64 + field;
  const text = elf.section(".text")!;
  const symtab = elf.section(".symtab")!;
  const rel = elf.sections.find((s) => s.name === ".relkprobe/do_sys_openat2")!;
  const progB = elf.symbols().find((s) => s.name === "prog_b")!;

  expectElfError(patched((v) => v.setBigUint64(40, 0xffff_ffffn, true)), /section header table at 0xffffffff/, "e_shoff");
  expectElfError(patched((v) => v.setUint16(60, 0x7fff, true)), /section header table .*32767 entries/, "e_shnum");
  expectElfError(patched((v) => v.setUint16(58, 40, true)), /section header size 40/, "e_shentsize");
  expectElfError(patched((v) => v.setUint16(62, 999, true)), /section name table index 999/, "e_shstrndx");
  expectElfError(
    patched((v) => v.setBigUint64(shdr(text.index, 24), BigInt(bytes.length - 4), true)),
    new RegExp(`section \\.text \\(index ${text.index}\\) data at 0x[0-9a-f]+\\+0x${text.size.toString(16)} runs past end of file`),
    "sh_offset",
  );
  expectElfError(patched((v) => v.setBigUint64(shdr(text.index, 32), 1n << 40n, true)), /section \.text .* runs past end of file/, "sh_size");
  expectElfError(patched((v) => v.setUint32(shdr(text.index, 0), 0x7fffffff, true)), /name offset 0x7fffffff outside section name table/, "sh_name");
  expectElfError(patched((v) => v.setUint32(symtab.offset + progB.index * 24, 0xfffff, true)), /symbol \d+ in \.symtab has name offset 0xfffff/, "st_name");
  expectElfError(patched((v) => v.setUint16(symtab.offset + progB.index * 24 + 6, 500, true)), /symbol 'prog_b' .* refers to section 500/, "st_shndx");
  expectElfError(patched((v) => v.setUint32(rel.offset + 12, 9999, true)), /relocation 0 in \.relkprobe\/do_sys_openat2 refers to symbol 9999, but \.symtab has only \d+ symbols/, "r_sym");
  expectElfError(patched((v) => v.setUint32(shdr(rel.index, 40), 1, true)), /links to section 1, which is not a symbol table/, "rel sh_link");
  expectElfError(patched((v) => v.setUint32(shdr(symtab.index, 40), text.index, true)), /not a string table/, "symtab sh_link");
  expectElfError(patched((v) => v.setBigUint64(shdr(symtab.index, 32), BigInt(symtab.size - 5), true)), /not a multiple of 24/, "symtab size");
});

test("random corruption never escapes as anything but ElfError", () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(40, true));
  const symtab = elf.section(".symtab")!;
  // Header, section headers and symbol table: where every offset and index lives.
  const regions = [[0, 64], [shoff, bytes.length], [symtab.offset, symtab.offset + symtab.size]];
  let failures = 0;
  for (let i = 0; i < 3000; i++) {
    const copy = new Uint8Array(bytes);
    const [lo, hi] = regions[i % regions.length];
    for (let n = 1 + Math.floor(random() * 4); n > 0; n--) {
      copy[lo + Math.floor(random() * (hi - lo))] = Math.floor(random() * 256);
    }
    try {
      walk(new ElfFile(copy));
    } catch (e) {
      assert.ok(e instanceof ElfError, `iteration ${i}: ${String(e)}`);
      failures++;
    }
  }
  assert.ok(failures > 0);
});
