// Maps of maps and initial map values without the kernel: what the loader reads
// from a committed object (__array(values, ...) and .rel.maps), the definitions
// it refuses, and the BCC dialect's BPF_ARRAY_OF_MAPS / BPF_HASH_OF_MAPS.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ObjectSpec } from "../../src/object/spec.ts";
import { btfMapSpec } from "../../src/object/maps.ts";
import { ObjectError } from "../../src/object/errors.ts";
import type { Type } from "../../src/btf/types.ts";
import { MapType } from "../../src/internal/sys/constants.ts";
import { BpfMap } from "../../src/maps/map.ts";
import { UsageError } from "../../src/errors.ts";
import { translate } from "../../src/bcc/index.ts";
import { BccError } from "../../src/bcc/errors.ts";
import { FIXTURES } from "../../scripts/build-fixtures.ts";

describe("map-in-map.bpf.o (test/fixtures/src/map-in-map.bpf.c)", () => {
  const spec = ObjectSpec.fromBytes(new Uint8Array(readFileSync(join(FIXTURES, "map-in-map.bpf.o"))), "map-in-map.bpf.o");

  test("an array of maps gets its inner definition from __array(values, struct inner_def), and 4-byte fd values", () => {
    const outer = spec.map("outer");
    assert.equal(outer.type, MapType.ARRAY_OF_MAPS);
    assert.deepEqual([outer.keySize, outer.valueSize, outer.maxEntries], [4, 4, 8]);
    const inner = outer.inner!;
    assert.ok(inner, "outer has an inner map definition");
    assert.equal(inner.name, "outer.inner");
    assert.deepEqual([inner.type, inner.keySize, inner.valueSize, inner.maxEntries, inner.flags], [MapType.ARRAY, 4, 8, 4, 0]);
    assert.equal(inner.inner, undefined);
    assert.equal(inner.initial, undefined);
    // The template is not a map of the object: only the .maps variables are.
    assert.equal(spec.maps.has("outer.inner"), false);
  });

  test("a hash of maps with its inner definition written inline (an anonymous struct)", () => {
    const byKey = spec.map("by_key");
    assert.equal(byKey.type, MapType.HASH_OF_MAPS);
    assert.deepEqual([byKey.keySize, byKey.valueSize, byKey.maxEntries], [4, 4, 16]);
    assert.deepEqual([byKey.inner!.type, byKey.inner!.keySize, byKey.inner!.valueSize, byKey.inner!.maxEntries], [MapType.HASH, 4, 4, 32]);
    assert.equal(byKey.initial, undefined, "no values given, none to fill");
  });

  test("initial values: `.values = { [0] = &inner_a, [3] = &inner_b }` and a prog array's `[1] = (void *)&tail`", () => {
    assert.deepEqual(spec.map("outer").initial, [
      { key: 0, kind: "map", name: "inner_a" },
      { key: 3, kind: "map", name: "inner_b" },
    ]);
    const jumps = spec.map("jumps");
    assert.equal(jumps.type, MapType.PROG_ARRAY);
    assert.deepEqual([jumps.keySize, jumps.valueSize], [4, 4]);
    assert.equal(jumps.inner, undefined);
    assert.deepEqual(jumps.initial, [{ key: 1, kind: "program", name: "tail" }]);
    // Every other map has no initial values; the programs are unaffected.
    for (const name of ["inner_a", "inner_b", "inner_c", "control", ".rodata"]) assert.equal(spec.map(name).initial, undefined, name);
    assert.deepEqual([...spec.programs.keys()].sort(), ["count", "tail"]);
  });
});

// BTF shapes of libbpf's macros, built by hand: __uint(n, N) is int (*n)[N],
// __type(n, T) is T *n, __array(n, T) is T *n[].
let ids = 100;
const int: Type = { id: ids++, kind: "int", name: "int", size: 4, encoding: "signed", bits: 32, offset: 0 };
const arrayOf = (type: Type, nelems: number): Type => ({ id: ids++, kind: "array", name: "", type, indexType: int, nelems });
const ptr = (type: Type): Type => ({ id: ids++, kind: "pointer", name: "", type });
const uint = (name: string, n: number) => ({ name, type: ptr(arrayOf(int, n)) });
const typeAttr = (name: string, t: Type) => ({ name, type: ptr(t) });
const values = (t: Type) => ({ name: "values", type: arrayOf(ptr(t), 0) });
function def(...members: { name: string; type: Type }[]): Type {
  let off = 0;
  return { id: ids++, kind: "struct", name: "", size: 8 * members.length, members: members.map((m) => ({ ...m, offset: (off += 64) - 64, bitfieldSize: 0 })) };
}
const innerArray = def(uint("type", MapType.ARRAY), uint("max_entries", 4), typeAttr("key", int), typeAttr("value", int));
const refused = (f: () => unknown, re: RegExp) => assert.throws(f, (err: unknown) => err instanceof ObjectError && re.test(err.message));

describe("definitions the loader refuses, naming the map", () => {
  test("the hand-built shapes parse as clang's do", () => {
    const spec = btfMapSpec("o", def(uint("type", MapType.HASH_OF_MAPS), uint("max_entries", 2), typeAttr("key", int), values(innerArray)));
    assert.deepEqual([spec.type, spec.keySize, spec.valueSize, spec.inner?.type, spec.inner?.maxEntries], [MapType.HASH_OF_MAPS, 4, 4, MapType.ARRAY, 4]);
  });

  test("values not last, values on a hash, a map of maps inside a map of maps, a prog array of structs", () => {
    refused(() => btfMapSpec("o", def(uint("type", MapType.ARRAY_OF_MAPS), values(innerArray), uint("max_entries", 2))), /map o: "values" must be the last member/);
    refused(() => btfMapSpec("h", def(uint("type", MapType.HASH), uint("max_entries", 2), values(innerArray))), /map h: "values" \(__array\) is only for maps of maps and prog arrays, not hash/);
    const nested = def(uint("type", MapType.ARRAY_OF_MAPS), uint("max_entries", 2), values(innerArray));
    refused(() => btfMapSpec("o", def(uint("type", MapType.ARRAY_OF_MAPS), uint("max_entries", 2), values(nested))), /map o\.inner: a map-in-map inside a map-in-map is not supported/);
    refused(() => btfMapSpec("p", def(uint("type", MapType.PROG_ARRAY), uint("max_entries", 2), values(innerArray))), /map p: __array\(values, \.\.\.\) of a prog array must be a function type/);
    refused(() => btfMapSpec("o", def(uint("type", MapType.ARRAY_OF_MAPS), uint("max_entries", 2), values(int))), /must name a map definition/);
    refused(() => btfMapSpec("o", def(uint("type", MapType.ARRAY_OF_MAPS), uint("value_size", 8), values(innerArray))), /map o: a map-in-map's values are 4-byte map fds, not 8 bytes/);
  });

  test("BpfMap.create of a map of maps without its inner definition is a UsageError before any syscall", () => {
    assert.throws(
      () => BpfMap.create({ type: MapType.ARRAY_OF_MAPS, keySize: 4, valueSize: 4, maxEntries: 2, name: "o" }),
      (err: unknown) => err instanceof UsageError && /map o \(array_of_maps\) needs the definition of the maps it holds/.test(err.message),
    );
    const nested = { type: MapType.HASH_OF_MAPS, keySize: 4, valueSize: 4, maxEntries: 2, inner: { type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 } };
    assert.throws(() => BpfMap.create({ type: MapType.ARRAY_OF_MAPS, keySize: 4, valueSize: 4, maxEntries: 2, inner: nested }), UsageError);
  });
});

describe("BCC's BPF_ARRAY_OF_MAPS and BPF_HASH_OF_MAPS", () => {
  const tr = (text: string) => translate(text, { file: "m.c", tracepointFormat: () => undefined, kernelHasStruct: () => false });
  const tables = `BPF_TABLE("hash", int, int, ex1, 1024);\nBPF_ARRAY(ex2, int, 16);\nstruct custom_key { int a; int b; };\n`;
  const defOf = (code: string, name: string) => new RegExp(`struct \\{ ([^}]*) \\} ${name} SEC\\("\\.maps"\\)`).exec(code)?.[1];

  test("each form becomes a BTF-defined map of maps whose values are typeof(the inner table)", () => {
    const t = tr(
      tables +
        `BPF_ARRAY_OF_MAPS(a, "ex2", 10);
BPF_HASH_OF_MAPS(h2, "ex1");
BPF_HASH_OF_MAPS(h3, struct custom_key, "ex1");
BPF_HASH_OF_MAPS(h3old, "ex1", 20);
BPF_HASH_OF_MAPS(h4, u64, "ex2", 30);
BPF_TABLE("hash_of_maps$ex1", int, int, t1, 40);
`,
    );
    assert.equal(defOf(t.code, "a"), '__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 10); __type(key, int); __array(values, typeof(ex2));');
    assert.equal(defOf(t.code, "h2"), '__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 10240); __type(key, int); __array(values, typeof(ex1));');
    assert.equal(defOf(t.code, "h3"), '__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 10240); __type(key, struct custom_key); __array(values, typeof(ex1));');
    assert.equal(defOf(t.code, "h3old"), '__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 20); __type(key, int); __array(values, typeof(ex1));');
    assert.equal(defOf(t.code, "h4"), '__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 30); __type(key, u64); __array(values, typeof(ex2));');
    assert.equal(defOf(t.code, "t1"), '__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 40); __type(key, int); __array(values, typeof(ex1));');
    assert.deepEqual(
      ["a", "h2", "h3", "h3old", "h4", "t1"].map((n) => [t.tables.get(n)?.kind, t.tables.get(n)?.inner]),
      [["array_of_maps", "ex2"], ["hash_of_maps", "ex1"], ["hash_of_maps", "ex1"], ["hash_of_maps", "ex1"], ["hash_of_maps", "ex2"], ["hash_of_maps", "ex1"]],
    );
  });

  test(".lookup(&k) gives a void pointer, usable as a map in bpf_map_lookup_elem", () => {
    const t = tr(tables + `BPF_HASH_OF_MAPS(h, "ex1", 10);\nint f(void *ctx) { int k = 1; void *m = h.lookup(&k); return m ? !!bpf_map_lookup_elem(m, &k) : 0; }\n`);
    assert.match(t.code, /void \*m = \(\(__typeof__\(void\) \*\)bpf_map_lookup_elem\(&h, & k\)\);/);
  });

  test("errors name the line and the construct: an undeclared inner table, a map of maps inside, a method programs cannot call", () => {
    const fails = (text: string, re: RegExp) => assert.throws(() => tr(text), (err: unknown) => err instanceof BccError && re.test(err.message));
    fails(`BPF_ARRAY_OF_MAPS(a, "later", 4);\nBPF_ARRAY(later, int, 4);\n`, /m\.c:1.*BPF_ARRAY_OF_MAPS.*the inner table "later" must be declared before it/s);
    fails(`BPF_ARRAY_OF_MAPS(a, ex2, 4);`, /the inner table must be a string literal/);
    fails(tables + `BPF_ARRAY_OF_MAPS(a, "ex2", 4);\nBPF_HASH_OF_MAPS(b, "a", 4);\n`, /the inner table "a" is itself a map of maps/);
    fails(`BPF_HASH_OF_MAPS(b, int, u32, 4);`, /expected BPF_HASH_OF_MAPS\(name, key_type, "inner_table", max_entries\)/);
    fails(tables + `BPF_ARRAY_OF_MAPS(a, "ex2", 4);\nint f(void *ctx) { int k = 0, v = 1; a.update(&k, &v); return 0; }\n`, /\.update\(\) on a array_of_maps table is not part of tsbpf's BCC subset \(array_of_maps tables have: \.lookup\(\)\)/);
  });
});
