import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfFile } from "../../src/elf/index.ts";
import {
  alignof, BtfError, CoreReloKind, fixupDatasecs, parseExt, resolve, sectionLayouts, sizeof, Spec,
} from "../../src/btf/index.ts";
import type { Datasec, Struct, Type } from "../../src/btf/index.ts";
import { StringTable } from "../../src/elf/strings.ts";
import { fixtureObject, fixtureSource } from "../support/fixtures.ts";

// The C is test/fixtures/src/btf.bpf.c, built by scripts/build-fixtures.ts.
const BPF_SOURCE = fixtureSource("btf");

// A Buffer, as ElfFile.open would give: its subarray()/slice() are views, which fixup must not write through.
const elf = new ElfFile(Buffer.from(fixtureObject("btf")));
const btfBytes = elf.section(".BTF")!.data();
const spec = new Spec(btfBytes);

test("header and type table", () => {
  assert.equal(spec.header.magic, 0xeb9f);
  assert.equal(spec.header.version, 1);
  assert.equal(spec.raw, btfBytes);
  assert.equal(spec.types[0].kind, "void");
  spec.types.forEach((t, i) => assert.equal(t.id, i));
  assert.equal(spec.typeById(1), spec.types[1]);
  assert.throws(() => spec.typeById(spec.types.length), BtfError);
});

test("the BTF map definition in .maps points at the value struct", () => {
  const maps = spec.typeByName(".maps", "datasec");
  assert.equal(maps.vars.length, 1);
  const v = maps.vars[0].type;
  assert.ok(v.kind === "var" && v.name === "values" && v.linkage === "global");
  const def = v.type as Struct;
  assert.equal(def.kind, "struct");
  const member = (name: string) => def.members.find((m) => m.name === name)!.type;
  const valuePtr = member("value");
  assert.ok(valuePtr.kind === "pointer");
  assert.equal(valuePtr.type, spec.typeByName("value", "struct"), "the same object, not a copy");
  const typePtr = member("type");
  // __uint(type, N) is `int (*type)[N]`
  assert.ok(typePtr.kind === "pointer" && typePtr.type.kind === "array" && typePtr.type.nelems === 1);
  const max = member("max_entries");
  assert.ok(max.kind === "pointer" && max.type.kind === "array" && max.type.nelems === 64);
});

test("functions: programs are global, the subprogram static", () => {
  for (const name of ["prog_a", "prog_b", "prog_c"]) {
    const f = spec.typeByName(name, "func");
    assert.equal(f.linkage, "global");
    assert.equal(f.proto.kind, "func_proto");
    assert.equal(resolve(f.proto.return).name, "int");
    assert.equal(f.proto.params.length, 1);
  }
  assert.equal(spec.typeByName("prog_b", "func").proto.params[0].name, "t");
  const helper = spec.typeByName("helper", "func");
  assert.equal(helper.linkage, "static");
  assert.deepEqual(helper.proto.params.map((p) => [p.name, p.type.name]), [["x", "int"]]);
});

test("name lookups", () => {
  assert.equal(spec.typesByName("no_such_type").length, 0);
  assert.throws(() => spec.typeByName("no_such_type"), /BTF: no type named 'no_such_type'/);
  assert.throws(() => spec.typeByName("value", "union"), /BTF: no union named 'value'/);
  // "values" is only a var; "int" exists once.
  assert.equal(spec.typeByName("values").kind, "var");
  assert.equal(spec.typeByName("int").kind, "int");
});

test("sizeof / alignof refuse types without a size", () => {
  assert.throws(() => sizeof(spec.types[0]), /cannot take the size of anonymous void/);
  assert.throws(() => sizeof(spec.typeByName("prog_a", "func")), BtfError);
  assert.equal(sizeof(spec.typeByName("hits", "var")), 8);
  assert.equal(alignof(spec.typeByName("hits2", "var")), 4);
});

test(".BTF.ext func_info: one record per program, subprogram in .text", () => {
  const ext = parseExt(elf.section(".BTF.ext")!.data(), spec);
  assert.equal(ext.funcInfoRecSize, 8);
  assert.equal(ext.lineInfoRecSize, 16);
  const symbols = elf.symbols();
  const funcAt = (section: string, insnOff: number) =>
    symbols.find((s) => s.sectionName === section && s.value === insnOff && s.name !== "" && s.type === 2)!.name;
  const expected: Record<string, string[]> = {
    ".text": ["helper"],
    "tracepoint/syscalls/sys_enter_openat": ["prog_a"],
    "kprobe/do_sys_openat2": ["prog_b", "prog_c"],
  };
  assert.deepEqual([...ext.funcInfos.keys()].sort(), Object.keys(expected).sort());
  for (const [section, names] of Object.entries(expected)) {
    const infos = ext.funcInfos.get(section)!;
    assert.deepEqual(infos.map((i) => spec.typeById(i.typeId).name), names);
    assert.deepEqual(infos.map((i) => funcAt(section, i.insnOff)), names, "insnOff in bytes locates the symbol");
  }
});

test(".BTF.ext line_info carries the source text", () => {
  const ext = parseExt(elf.section(".BTF.ext")!.data(), spec);
  const lines = ext.lineInfos.get("tracepoint/syscalls/sys_enter_openat")!;
  assert.ok(lines.length > 3);
  const update = lines.find((l) => l.line.includes("UPDATE_LINE"));
  assert.ok(update, "line_info for the bpf_map_update_elem line");
  assert.match(update.line, /bpf_map_update_elem\(&values/);
  assert.match(update.fileName, /btf\.bpf\.c$/);
  const sourceLine = BPF_SOURCE.split("\n").findIndex((l) => l.includes("UPDATE_LINE")) + 1;
  assert.equal(update.lineNumber, sourceLine);
  assert.ok(update.column > 0);
  assert.equal(spec.string(update.lineOff), update.line);
  assert.equal(spec.string(update.fileNameOff), update.fileName);
  for (const l of lines) assert.equal(l.insnOff % 8, 0);
});

test(".BTF.ext CO-RE relocation for a preserve_access_index field", () => {
  const ext = parseExt(elf.section(".BTF.ext")!.data(), spec);
  assert.equal(ext.coreReloRecSize, 16);
  const relos = ext.coreRelos.get("kprobe/do_sys_openat2")!;
  assert.equal(relos.length, 1);
  const [relo] = relos;
  assert.equal(relo.kind, CoreReloKind.FIELD_BYTE_OFFSET);
  assert.equal(relo.accessStr, "0:1"); // t[0].pid, pid is member 1
  assert.equal(spec.typeById(relo.typeId).name, "task");
});

function datasec(s: Spec, name: string): Datasec {
  return s.typeByName(name, "datasec");
}

test("clang leaves DATASEC sizes and global VAR offsets 0; fixup fills them from the ELF", () => {
  for (const name of [".rodata", ".data", ".bss", ".maps", "license"]) {
    assert.equal(datasec(spec, name).size, 0, `clang emits ${name} with size 0`);
  }
  // Static variables are the exception: clang knows their offsets.
  const quiet = datasec(spec, ".data").vars.find((v) => v.type.name === "quiet")!;
  const quietSym = elf.symbols().find((s) => s.name === "quiet")!;
  assert.equal(quiet.offset, quietSym.value);

  const fixed = new Spec(fixupDatasecs(spec, sectionLayouts(elf)));
  assert.notEqual(fixed.raw, spec.raw);
  assert.equal(datasec(spec, ".data").size, 0, "the original is untouched");
  for (const name of [".rodata", ".data", ".bss", ".maps", "license"]) {
    const sec = datasec(fixed, name);
    assert.equal(sec.size, elf.section(name)!.size, `${name} size`);
    let last = -1;
    for (const v of sec.vars) {
      const sym = elf.symbols().find((s) => s.name === v.type.name && s.sectionName === name)!;
      assert.equal(v.offset, sym.value, `${name}: ${v.type.name} offset`);
      assert.equal(v.size, sym.size, `${name}: ${v.type.name} size`);
      assert.ok(v.offset >= last, "sorted by offset");
      last = v.offset;
    }
  }
  assert.deepEqual(datasec(fixed, ".rodata").vars.map((v) => [v.type.name, v.offset]), [["target_pid", 0], ["min_ts", 8]]);
  assert.deepEqual(datasec(fixed, ".bss").vars.map((v) => [v.type.name, v.offset]), [["zeroed", 0], ["zeroed2", 8]]);
});

test("fixup reports a DATASEC without an ELF section or symbol", () => {
  const layouts = sectionLayouts(elf);
  layouts.delete(".bss");
  assert.throws(() => fixupDatasecs(spec, layouts), /DATASEC \.bss: no non-empty ELF section/);
  const noSymbols = sectionLayouts(elf);
  noSymbols.set(".data", { size: 24, symbols: new Map() });
  assert.throws(() => fixupDatasecs(spec, noSymbols), /DATASEC \.data: no ELF symbol for VAR 'hits'/);
});

test("kernel BTF: /sys/kernel/btf/vmlinux", (t) => {
  const path = "/sys/kernel/btf/vmlinux";
  if (!existsSync(path)) {
    t.skip(`${path} not present (kernel without CONFIG_DEBUG_INFO_BTF)`);
    return;
  }
  const start = performance.now();
  const kernel = Spec.kernel();
  const parsed = performance.now();
  const task = kernel.typeByName("task_struct", "struct");
  const indexed = performance.now();
  t.diagnostic(`vmlinux: ${kernel.types.length} types, ${kernel.raw.length} bytes; parse ${(parsed - start).toFixed(0)} ms, name index ${(indexed - parsed).toFixed(0)} ms`);
  assert.ok(kernel.types.length > 10000);
  const pid = task.members.find((m) => m.name === "pid");
  assert.ok(pid, "task_struct.pid");
  assert.equal(sizeof(pid.type), 4);
  assert.equal(Spec.kernel(), kernel, "cached per path");
  // Every reference resolved to an object of the same Spec.
  const sample = kernel.types.slice(0, 5000) as Type[];
  for (const ty of sample) if ("type" in ty) assert.equal(kernel.types[ty.type.id], ty.type);
});

// ---- malformed BTF -----------------------------------------------------------

function patchedBtf(edit: (v: DataView, raw: Uint8Array) => void, from: Uint8Array = btfBytes): Uint8Array {
  const copy = new Uint8Array(from); // a real copy: Buffer.slice() would be a view
  edit(new DataView(copy.buffer), copy);
  return copy;
}

function expectBtfError(raw: Uint8Array, pattern: RegExp, what: string): void {
  assert.throws(() => new Spec(raw), (e: unknown) => {
    assert.ok(e instanceof BtfError, `${what}: expected BtfError, got ${String(e)}`);
    assert.match(e.message, pattern, what);
    return true;
  });
}

const hdrLen = spec.header.hdrLen;

test("malformed BTF headers throw BtfError", () => {
  expectBtfError(patchedBtf((v) => v.setUint16(0, 0x1234, true)), /bad magic 0x1234/, "magic");
  expectBtfError(patchedBtf((v) => v.setUint16(0, 0x9feb, true)), /big-endian/, "endianness");
  expectBtfError(patchedBtf((v) => v.setUint8(2, 2)), /unsupported version 2/, "version");
  expectBtfError(btfBytes.subarray(0, 10), /truncated header: 10 bytes/, "truncated header");
  expectBtfError(new Uint8Array(0), /truncated header/, "empty");
  expectBtfError(patchedBtf((v) => v.setUint32(4, 8, true)), /header length 8/, "hdr_len");
  expectBtfError(patchedBtf((v) => v.setUint32(12, 0x100000, true)), /type section at 0x18\+0x100000 runs past end of data/, "type_len");
  expectBtfError(patchedBtf((v) => v.setUint32(16, 0x7fffffff, true)), /string section .* runs past end of data/, "str_off");
  expectBtfError(btfBytes.subarray(0, btfBytes.length - 1), /string section .* runs past end/, "cut short");
});

test("malformed BTF types throw BtfError naming the type", () => {
  const value = spec.typeByName("value", "struct");
  const valueAt = spec.typeOffset(value.id);
  const firstMemberType = valueAt + 12 + 4;
  expectBtfError(
    patchedBtf((v) => v.setUint32(firstMemberType, 9999, true)),
    new RegExp(`type ${value.id} references type 9999, but there are only ${spec.types.length} types`),
    "member type id",
  );
  expectBtfError(
    patchedBtf((v) => v.setUint32(valueAt, 0x5000, true)),
    new RegExp(`string offset 0x5000 outside string section \\(0x${spec.header.strLen.toString(16)} bytes\\) in name of type ${value.id}`),
    "name offset",
  );
  expectBtfError(patchedBtf((v) => v.setUint32(valueAt + 12, 0x5000, true)), /string offset 0x5000 .* member 0 of type/, "member name");
  // Shorten the type section so the last record is cut.
  expectBtfError(patchedBtf((v) => v.setUint32(12, spec.header.typeLen - 4, true)), /truncated type \d+ \(kind \w+\) at 0x/, "truncated record");
  expectBtfError(patchedBtf((v) => v.setUint32(valueAt + 4, (25 << 24) | 1, true)), new RegExp(`type ${value.id} at 0x[0-9a-f]+ has unknown kind 25`), "kind");
  const func = spec.typeByName("prog_a", "func");
  expectBtfError(patchedBtf((v) => v.setUint32(spec.typeOffset(func.id) + 8, value.id, true)), /func prog_a .* has prototype type \d+ of kind struct/, "func proto");
  expectBtfError(patchedBtf((_v, raw) => raw.fill(1, hdrLen + spec.header.strOff, hdrLen + spec.header.strOff + 1)), /string section must start/, "strings");
});

test("string tables find whole strings, repeats and UTF-8 included, and strings containing a part", () => {
  const bytes = Buffer.from("\0abc\0x___y\0abcd\0abc\0caf\u00e9\0zz___\0", "utf8");
  const table = new StringTable(bytes);
  assert.deepEqual(table.offsetsOf("abc"), [1, 16], "both copies, not the prefix of abcd");
  assert.deepEqual(table.offsetsOf("bc"), [], "a suffix is not a string");
  assert.deepEqual(table.offsetsOf("abcd"), [11]);
  assert.deepEqual(table.offsetsOf("caf\u00e9"), [20]);
  assert.equal(table.get(20), "caf\u00e9");
  assert.deepEqual(table.offsetsOf(""), [0]);
  assert.deepEqual(table.offsetsOf("nothing"), []);
  assert.deepEqual(table.offsetsContaining("___"), [5, 26]);
  assert.deepEqual(table.offsetsContaining("q"), []);
  assert.deepEqual(new StringTable(Buffer.from("\0ab___")).offsetsContaining("___"), [], "not terminated: no string");
});

test("a lazy Spec gives the eager one's types, read when asked for", () => {
  const lazy = new Spec(btfBytes, { lazy: true });
  assert.equal(lazy.typeCount, spec.types.length);
  const value = spec.typeByName("value", "struct");
  assert.equal(lazy.kindOf(value.id), "struct");
  const v = lazy.typeByName("value", "struct");
  assert.equal(v.id, value.id);
  assert.equal(lazy.typeById(value.id), v, "one object per type");
  assert.deepEqual(v.members.map((m) => [m.name, m.offset, m.type.id, sizeof(m.type)]), value.members.map((m) => [m.name, m.offset, m.type.id, sizeof(m.type)]));
  assert.equal(v.members[0].type, lazy.typeById(value.members[0].type.id), "references resolve to the Spec's objects");
  for (const t of spec.types) {
    const l = lazy.typeById(t.id);
    assert.equal(l.kind, t.kind);
    assert.equal(l.name, t.name);
    if ("type" in t) assert.equal((l as typeof t).type.id, t.type.id, `type ${t.id}`);
    assert.deepEqual(lazy.typeIdsByName(t.name), t.name ? spec.types.filter((x) => x.name === t.name).map((x) => x.id) : []);
  }
  assert.deepEqual(lazy.types.map((t) => t.id), spec.types.map((t) => t.id));
});

test("a lazy Spec of malformed BTF: bad records are a BtfError where they are read", () => {
  const value = spec.typeByName("value", "struct");
  const valueAt = spec.typeOffset(value.id);
  const badMember = new Spec(patchedBtf((v) => v.setUint32(valueAt + 12 + 4, 9999, true)), { lazy: true });
  assert.throws(() => badMember.typeById(value.id), new RegExp(`type ${value.id} references type 9999`));
  assert.throws(() => badMember.typeById(value.id), /references type 9999/, "and again: no half-read type is kept");
  const badName = new Spec(patchedBtf((v) => v.setUint32(valueAt, 0x5000, true)), { lazy: true });
  assert.throws(() => badName.typeById(value.id), (e) => e instanceof BtfError && /string offset 0x5000/.test(e.message));
  assert.equal(badName.typeById(1).id, 1, "other types still read");
  assert.throws(() => new Spec(patchedBtf((v) => v.setUint32(valueAt + 4, (25 << 24) | 1, true)), { lazy: true }), /unknown kind 25/, "kinds are checked at once");
  assert.throws(() => badName.typeById(spec.types.length), /no type with id/);
});

test("random corruption of BTF only ever throws BtfError", () => {
  let seed = 99;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  let failures = 0;
  for (let i = 0; i < 3000; i++) {
    const copy = new Uint8Array(btfBytes);
    for (let n = 1 + Math.floor(random() * 4); n > 0; n--) {
      copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    }
    try {
      const s = new Spec(copy, { lazy: i % 2 === 1 });
      for (const t of s.types) {
        try {
          sizeof(t);
          alignof(t);
        } catch (e) {
          if (!(e instanceof BtfError)) throw e;
        }
      }
    } catch (e) {
      assert.ok(e instanceof BtfError, `iteration ${i}: ${String(e)}`);
      failures++;
    }
  }
  assert.ok(failures > 0);
});

test("malformed .BTF.ext throws BtfError", () => {
  const ext = elf.section(".BTF.ext")!.data();
  const bad = (edit: (v: DataView) => void) => {
    const copy = new Uint8Array(ext);
    edit(new DataView(copy.buffer));
    return copy;
  };
  const expectExt = (raw: Uint8Array, pattern: RegExp, what: string) =>
    assert.throws(() => parseExt(raw, spec), (e: unknown) => e instanceof BtfError && pattern.test(e.message), what);
  expectExt(bad((v) => v.setUint16(0, 1, true)), /BTF\.ext: bad magic/, "magic");
  expectExt(ext.subarray(0, 6), /truncated header/, "truncated");
  expectExt(bad((v) => v.setUint32(4, 4, true)), /header length 4/, "hdr_len");
  expectExt(bad((v) => v.setUint32(12, 0xffff, true)), /func_info at .* runs past end of data/, "func_info_len");
  const hdr = new DataView(ext.buffer, ext.byteOffset).getUint32(4, true);
  const funcInfo = hdr + new DataView(ext.buffer, ext.byteOffset).getUint32(8, true);
  expectExt(bad((v) => v.setUint32(funcInfo, 4, true)), /func_info rec_size 4 is less than 8/, "rec_size");
  expectExt(bad((v) => v.setUint32(funcInfo + 4, 0xfffff, true)), /func_info section name .*string offset 0xfffff/, "section name");
  expectExt(bad((v) => v.setUint32(funcInfo + 8, 1000, true)), /1000 records of 8 bytes .* run past end/, "num_info");
  expectExt(bad((v) => v.setUint32(funcInfo + 16, 99999, true)), /func_info at .* references type 99999/, "type id");
});

test(".BTF.ext honours a rec_size larger than the records it knows", () => {
  // Offset of a section name in the .BTF string table.
  const strings = btfBytes.subarray(hdrLen + spec.header.strOff);
  const name = new TextEncoder().encode("\0kprobe/do_sys_openat2\0");
  let nameOff = -1;
  for (let i = 0; i + name.length <= strings.length && nameOff < 0; i++) {
    if (name.every((b, j) => strings[i + j] === b)) nameOff = i + 1;
  }
  assert.ok(nameOff > 0);
  const progB = spec.typeByName("prog_b", "func").id;
  const progC = spec.typeByName("prog_c", "func").id;
  // header(32) | rec_size=12 | sec_name_off, num_info=2 | 2 x {insn_off, type_id, extra}
  const words = [0, 32, 0, 4 + 8 + 24, 0, 0, 0, 0, 12, nameOff, 2, 0, progB, 0xdead, 64, progC, 0xbeef];
  const raw = new Uint8Array(words.length * 4);
  const v = new DataView(raw.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w, true));
  v.setUint16(0, 0xeb9f, true);
  v.setUint8(2, 1);
  v.setUint8(3, 0);
  const ext = parseExt(raw, spec);
  assert.equal(ext.funcInfoRecSize, 12);
  assert.deepEqual(ext.funcInfos.get("kprobe/do_sys_openat2"), [{ insnOff: 0, typeId: progB }, { insnOff: 64, typeId: progC }]);
  assert.equal(ext.lineInfos.size, 0);
  assert.equal(ext.coreRelos.size, 0);
});

test("random corruption of .BTF.ext only ever throws BtfError", () => {
  const ext = elf.section(".BTF.ext")!.data();
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  for (let i = 0; i < 3000; i++) {
    const copy = new Uint8Array(ext);
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    try {
      parseExt(copy, spec);
    } catch (e) {
      assert.ok(e instanceof BtfError, `iteration ${i}: ${String(e)}`);
    }
  }
});
