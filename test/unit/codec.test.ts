import { test } from "node:test";
import assert from "node:assert/strict";
import { ElfFile } from "../../src/elf/index.ts";
import { BtfError, codecFor, fixupDatasecs, sectionLayouts, Spec } from "../../src/btf/index.ts";
import type { Type } from "../../src/btf/index.ts";
import { fixtureObject } from "../support/fixtures.ts";

// Initialized globals land in .data: clang lays the bytes out exactly as C
// does, and BTF describes them, so both directions can be checked against it.
// The C is test/fixtures/src/codec.bpf.c, built by scripts/build-fixtures.ts.

const elf = new ElfFile(fixtureObject("codec"));
const raw = new Spec(elf.section(".BTF")!.data());
const spec = new Spec(fixupDatasecs(raw, sectionLayouts(elf)));
const data = elf.section(".data")!.data();
const dataView = new DataView(data.buffer, data.byteOffset, data.byteLength);
const dataSec = spec.typeByName(".data", "datasec");

/** The bytes of global `name` in .data and its type. */
function global(name: string): { bytes: Uint8Array; view: DataView; type: Type } {
  const entry = dataSec.vars.find((v) => v.type.name === name)!;
  const bytes = data.subarray(entry.offset, entry.offset + entry.size);
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), type: entry.type };
}

function encodeToBytes(type: Type, value: unknown): Uint8Array {
  const codec = codecFor(type);
  const out = new Uint8Array(codec.size);
  codec.encode(value, new DataView(out.buffer));
  return out;
}

const EXPECTED_G = {
  a: 1, b: 2, c: 3, d: 0x1122334455667788n, e: -5, f: -6n, name: "hello",
  in: { x: 7, y: -8 },
  arr: [{ x: 1, y: 2 }, { x: 3, y: 4 }, { x: 5, y: 6 }],
  un: { word: 0xdeadbeef, bytes: [0xef, 0xbe, 0xad, 0xde] },
  both: (20n << 32n) | 10n, lo: 10, hi: 20,
  col: 7, bf1: 5, bf2: 17, bf3: 0xabcdef, sb: -9, wide: 0x123456789an, flag: true, ptr: 0x1000n,
  raw: [9, 8, 7, 6], fl: 1.5, db: 2.25, grid: [[1, -2, 3], [-4, 5, -6]], names: ["ab", "cde"], cv: 42,
};

test("decode matches the values C put in .data", () => {
  const g = global("g");
  const codec = codecFor(spec.typeByName("big", "struct"));
  assert.equal(codec.size, g.bytes.length);
  assert.deepEqual(codec.decode(g.view), EXPECTED_G);
  // The Var decodes like its type; offsets into a larger view work.
  const offset = dataSec.vars.find((v) => v.type.name === "g")!.offset;
  assert.deepEqual(codecFor(g.type).decode(dataView, offset), EXPECTED_G);
});

test("encode reproduces the bytes C produced", () => {
  const g = global("g");
  assert.deepEqual(encodeToBytes(g.type, EXPECTED_G), g.bytes);
  // Decoded values (unions carry every member) re-encode to the same bytes too.
  const decoded = codecFor(g.type).decode(g.view);
  assert.deepEqual(encodeToBytes(g.type, decoded), g.bytes);
});

test("packed struct: bitfields straddling bytes and wider than 32 bits", () => {
  const p = global("p");
  const expected = { tag: 0xaa, straddle: 0x2345678912345n, neg: -1000n, mid: 0x1abcd, last: 0x55 };
  assert.equal(codecFor(p.type).size, 12);
  assert.deepEqual(codecFor(p.type).decode(p.view), expected);
  assert.deepEqual(encodeToBytes(p.type, expected), p.bytes);
});

test("128-bit ints, enum64 and 64-bit extremes", () => {
  const w = global("wide128");
  assert.equal(codecFor(w.type).decode(w.view), 0x0102030405060708090a0b0c0d0e0f10n);
  assert.deepEqual(encodeToBytes(w.type, 0x0102030405060708090a0b0c0d0e0f10n), w.bytes);
  const be = global("be");
  assert.equal(codecFor(be.type).decode(be.view), 0x100000000n);
  // clang 14 has no ENUM64: it emits an 8-byte ENUM whose values are cut to 32 bits,
  // so encode the number rather than the enumerator name here.
  assert.deepEqual(encodeToBytes(be.type, 0x100000000n), be.bytes);
  const c = global("counter");
  assert.equal(codecFor(c.type).decode(c.view), 0xffffffffffffffffn);
  assert.deepEqual(encodeToBytes(c.type, -1n), c.bytes, "-1 is the same bit pattern");
  assert.deepEqual(encodeToBytes(c.type, -1), c.bytes, "numbers are accepted for 64-bit fields");
});

test("the whole .data DATASEC decodes by variable name", () => {
  const all = codecFor(dataSec).decode(dataView);
  assert.deepEqual(Object.keys(all).sort(), ["be", "counter", "g", "p", "wide128"]);
  assert.deepEqual(all.g, EXPECTED_G);
  assert.deepEqual(encodeToBytes(dataSec, all), data);
  assert.throws(() => codecFor(raw.typeByName(".data", "datasec")), /size 0; apply fixupDatasecs/);
});

test("encode zero-fills omitted fields and accepts loose number types", () => {
  const big = spec.typeByName("big", "struct");
  const codec = codecFor(big);
  const view = new DataView(new ArrayBuffer(codec.size));
  new Uint8Array(view.buffer).fill(0xff);
  codec.encode({ a: 3n, d: 5, name: "x", arr: [undefined, { y: -1 }] }, view);
  const back = codec.decode(view);
  assert.equal(back.a, 3);
  assert.equal(back.d, 5n);
  assert.equal(back.name, "x");
  assert.deepEqual(back.arr, [{ x: 0, y: 0 }, { x: 0, y: -1 }, { x: 0, y: 0 }]);
  assert.equal(back.c, 0);
  assert.equal(back.flag, false);
  assert.equal(back.ptr, 0n);
  assert.deepEqual(back.grid, [[0, 0, 0], [0, 0, 0]]);
  assert.deepEqual(back.un, { word: 0, bytes: [0, 0, 0, 0] });
  // Unions: one member is enough; anonymous members are set through the parent.
  codec.encode({ un: { bytes: [1, 2, 3, 4] }, hi: 1 }, view);
  const again = codec.decode(view);
  assert.equal(again.un.word, 0x04030201);
  assert.equal(again.both, 1n << 32n);
  codec.encode({ col: "GREEN" }, view);
  assert.equal(codec.decode(view).col, 2, "enumerator names are accepted");
  // Signed fields take unsigned spellings of the same bits and vice versa.
  codec.encode({ e: 0xffffffff, c: -1, sb: -64, bf1: 7 }, view);
  assert.deepEqual([codec.decode(view).e, codec.decode(view).c, codec.decode(view).sb, codec.decode(view).bf1], [-1, 0xffffffff, -64, 7]);
});

test("strings: truncation keeps a NUL, UTF-8 round trips, bytes are accepted", () => {
  const codec = codecFor(spec.typeByName("big", "struct"));
  const view = new DataView(new ArrayBuffer(codec.size));
  const nameAt = spec.typeByName("big", "struct").members.find((m) => m.name === "name")!.offset / 8;
  codec.encode({ name: "abcdefghijklmnopqrstuvwxyz" }, view);
  assert.equal(codec.decode(view).name, "abcdefghijklmno");
  assert.equal(view.getUint8(nameAt + 15), 0);
  codec.encode({ name: "héllo wörld" }, view);
  assert.equal(codec.decode(view).name, "héllo wörld");
  codec.encode({ name: "éééééééééé" }, view); // 20 bytes; 7 whole characters fit in 15
  assert.equal(codec.decode(view).name, "ééééééé");
  codec.encode({ name: new Uint8Array([0x41, 0x42]) }, view);
  assert.equal(codec.decode(view).name, "AB");
  // A full buffer without NUL decodes to all 16 characters.
  for (let i = 0; i < 16; i++) view.setUint8(nameAt + i, 0x61 + i);
  assert.equal(codec.decode(view).name, "abcdefghijklmnop");
});

test("wrong value types throw TypeError naming the field path", () => {
  const codec = codecFor(spec.typeByName("big", "struct"));
  const view = new DataView(new ArrayBuffer(codec.size));
  const expectError = (value: unknown, pattern: RegExp) =>
    assert.throws(() => codec.encode(value, view), (e: unknown) => e instanceof TypeError && pattern.test(e.message), String(pattern));
  expectError({ name: 5 }, /^name: expected string, got number 5$/);
  expectError({ in: { x: "7" } }, /^in\.x: expected integer in \[-32768, 65535\], got string "7"$/);
  expectError({ arr: [{}, { y: 1.5 }] }, /^arr\[1\]\.y: expected integer/);
  expectError({ in: 3 }, /^in: expected object, got number 3$/);
  expectError({ arr: "nope" }, /^arr: expected array/);
  expectError({ arr: [{}, {}, {}, {}] }, /^arr: expected at most 3 elements/);
  expectError({ a: 256 }, /^a: expected integer in \[-128, 255\], got number 256$/);
  expectError({ d: 1.5 }, /^d: expected bigint or integer/);
  expectError({ d: 2n ** 64n }, /^d: expected bigint or integer/);
  expectError({ flag: "yes" }, /^flag: expected boolean/);
  expectError({ col: "PURPLE" }, /^col: expected integer .* or an enumerator name of enum color, got string "PURPLE"$/);
  expectError({ grid: [[1, 2, 3], [4, "5"]] }, /^grid\[1\]\[1\]: expected integer/);
  expectError({ bf1: 8 }, /^bf1: expected integer in \[-4, 7\] \(3-bit field\)/);
  expectError({ nmae: "typo" }, /^nmae: unknown field/);
  expectError({ in: { z: 1 } }, /^in\.z: unknown field/);
  expectError(null, /^value: expected object, got null$/);
  assert.throws(() => codecFor(spec.typeByName("inner", "struct")).encode({}, new DataView(new ArrayBuffer(2))), RangeError);
  assert.throws(() => codec.decode(new DataView(new ArrayBuffer(4))), RangeError);
});

test("codecs are compiled once per type and refuse types without a value", () => {
  const big = spec.typeByName("big", "struct");
  assert.equal(codecFor(big), codecFor(big));
  assert.throws(() => codecFor(spec.types[0]), BtfError);
  assert.equal(codecFor(spec.typeByName("color", "enum")).decode(new DataView(new Uint8Array([7, 0, 0, 0]).buffer)), 7);
});

test("decode speed (diagnostic only)", (t) => {
  const event = codecFor(spec.typeByName("inner", "struct"));
  const g = global("g");
  const big = codecFor(g.type);
  const time = (fn: () => void, n: number) => {
    const start = performance.now();
    for (let i = 0; i < n; i++) fn();
    return (n / (performance.now() - start)) * 1000;
  };
  const small = new DataView(new ArrayBuffer(4));
  time(() => event.decode(small), 100_000);
  t.diagnostic(`struct inner: ${(time(() => event.decode(small), 2_000_000) / 1e6).toFixed(1)}M decodes/s`);
  t.diagnostic(`struct big (${big.size} bytes, 30 fields): ${(time(() => big.decode(g.view), 500_000) / 1e6).toFixed(2)}M decodes/s`);
});
