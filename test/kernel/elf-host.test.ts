// Split from test/unit/elf.test.ts: the ELF reader checked against binutils
// (readelf, nm, strip) and against native programs a host C compiler builds.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ElfError, ElfFile, EM_X86_64, ET_DYN, ET_EXEC, SHT_REL, STT_SECTION,
} from "../../src/elf/index.ts";
import type { ElfFile as ElfFileType } from "../../src/elf/index.ts";
import { buildExecutable } from "../support/clang.ts";
import { fixtureObject } from "../support/fixtures.ts";

const bytes = fixtureObject("elf");
const elf = new ElfFile(bytes, "elftest.o");

// readelf on the same bytes is the reference the reader is checked against.
const scratch = mkdtempSync(join(tmpdir(), "tsbpf-elf-"));
const objectPath = join(scratch, "elftest.o");
writeFileSync(objectPath, bytes);
after(() => rmSync(scratch, { recursive: true, force: true }));

function readelf(args: string[]): string {
  return execFileSync("readelf", [...args, objectPath], { encoding: "utf8" });
}

test("sections match readelf -S", () => {
  const rows = readelf(["-SW"]).split("\n")
    .map((l) => /^\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[1] !== "0");
  assert.ok(rows.length > 10);
  for (const [, index, name, offset, size] of rows) {
    const s = elf.sections[Number(index)];
    assert.equal(s.name, name);
    assert.equal(s.offset, parseInt(offset, 16), `${name} offset`);
    assert.equal(s.size, parseInt(size, 16), `${name} size`);
  }
  assert.equal(elf.sections.length, rows.length + 1); // plus the null section [0]
  assert.equal(elf.sections[0].name, "");
});

test("symbols match readelf -s", () => {
  const syms = elf.symbols();
  const rows = readelf(["-sW"]).split("\n")
    .map((l) => /^\s*(\d+):\s+([0-9a-f]+)\s+(\d+)\s+(\w+)\s+(\w+)\s+(\w+)\s+(\w+)\s*(\S*)/.exec(l))
    .filter((m) => m !== null);
  assert.equal(rows.length, syms.length);
  for (const [, num, value, size, , , , , name] of rows) {
    const s = syms[Number(num)];
    assert.equal(s.index, Number(num));
    assert.equal(s.value, parseInt(value, 16));
    assert.equal(s.size, Number(size));
    if (s.type !== STT_SECTION) assert.equal(s.name, name);
  }
});

test("relocations match readelf -r", () => {
  const text = readelf(["-rW"]);
  const relSections = elf.sections.filter((s) => s.type === SHT_REL);
  let total = 0;
  for (const rel of relSections) total += elf.relocations(rel.info).length;
  const count = [...text.matchAll(/contains (\d+) entr/g)].reduce((n, m) => n + Number(m[1]), 0);
  assert.equal(total, count);
});

test("symbolFileOffset of a native executable agrees with nm and readelf", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-uprobe-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "target");
  const source = `
    #include <stdio.h>
    __attribute__((noinline)) int uprobe_target(int x) { __asm__ volatile(""); return x * 2 + 1; }
    int main(int argc, char **argv) { printf("%d\\n", uprobe_target(argc)); return 0; }
  `;
  const exe = new ElfFile(buildExecutable(source, path), path);
  assert.equal(exe.machine, EM_X86_64);
  assert.ok(exe.type === ET_EXEC || exe.type === ET_DYN);
  assert.ok(exe.programHeaders.length > 0);

  const nmLine = execFileSync("nm", [path], { encoding: "utf8" }).split("\n").find((l) => / uprobe_target$/.test(l))!;
  const address = parseInt(nmLine.split(" ")[0], 16);
  const text = execFileSync("readelf", ["-SW", path], { encoding: "utf8" }).split("\n").find((l) => / \.text /.test(l))!;
  const [, addr, off] = /\.text\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(text)!;
  const expected = address - parseInt(addr, 16) + parseInt(off, 16);
  assert.equal(exe.symbolFileOffset("uprobe_target"), expected);
  assert.equal(ElfFile.open(path).symbolFileOffset("uprobe_target"), expected);

  assert.throws(() => exe.symbolFileOffset("no_such_function"),
    (e: unknown) => e instanceof ElfError && /symbol 'no_such_function' not found in .*target/.test(e.message));
  assert.throws(() => exe.symbolFileOffset("printf"),
    (e: unknown) => e instanceof ElfError && /not defined/.test(e.message));
});

test("symbolFileOffset uses .dynsym of a stripped shared library", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-uprobe-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "libtarget.so");
  buildExecutable("int lib_target(int x) { return x + 40; }\n", path, ["-shared", "-fPIC"]);
  const unstripped = ElfFile.open(path).symbolFileOffset("lib_target");
  execFileSync("strip", ["--strip-all", path]);
  const lib = ElfFile.open(path);
  assert.equal(lib.section(".symtab"), undefined);
  assert.deepEqual(lib.symbols(), []);
  assert.ok(lib.dynamicSymbols().some((s) => s.name === "lib_target"));
  assert.equal(lib.symbolFileOffset("lib_target"), unstripped);
});

test("symbolFileOffset matches versioned libc names", (t) => {
  const libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  let lib: ElfFileType;
  try {
    lib = ElfFile.open(libc);
  } catch {
    t.skip(`${libc} not present`);
    return;
  }
  const line = execFileSync("nm", ["-D", libc], { encoding: "utf8" }).split("\n").find((l) => / malloc@@/.test(l))!;
  const versioned = line.split(" ")[2];
  const offset = lib.symbolFileOffset("malloc");
  assert.equal(lib.symbolFileOffset(versioned), offset);
  assert.ok(offset > 0);
});
