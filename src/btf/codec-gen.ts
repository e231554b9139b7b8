// JavaScript source generation for codecs. Decoders are single expressions
// (object literals of DataView reads, with array loops moved into helper
// functions); encoders are straight-line statements writing into a region
// the caller zeroed. Offsets are `base + constant` where base is a variable.
import * as rt from "./codec-runtime.ts";
import { BtfError } from "./error.ts";
import { describe, resolve, sizeof } from "./types.ts";
import type { Array as ArrayType, Datasec, Enum, Enum64, Int, Member, Struct, Type, Union } from "./types.ts";

const MAX_DEPTH = 64;
const UNROLL_SCALARS = 16;
const MAX_ELEMENTS = 1 << 24;

type Scalar = Int | Enum | Enum64;

function at(base: string, k: number): string {
  return k === 0 ? base : `${base} + ${k}`;
}

function key(name: string): string {
  return name === "__proto__" ? `["__proto__"]` : JSON.stringify(name);
}

/** char[N] (char / signed char / unsigned char, or CHAR encoding) is a string; __u8[N] is not. */
function isCharArray(t: ArrayType): boolean {
  let e = t.type;
  while (e.kind === "const" || e.kind === "volatile" || e.kind === "restrict" || e.kind === "type_tag") e = e.type;
  return e.kind === "int" && e.size === 1 && e.encoding !== "bool" &&
    (e.encoding === "char" || e.name === "char" || e.name === "signed char" || e.name === "unsigned char");
}

function isScalar(t: Type): boolean {
  const r = resolve(t);
  return r.kind === "int" || r.kind === "enum" || r.kind === "enum64" || r.kind === "pointer" || r.kind === "float";
}

function intRange(bits: number): [number, number] {
  return [-(2 ** (bits - 1)), 2 ** bits - 1]; // accept both signed and unsigned spellings
}

interface Bitfield { bitOffset: number; width: number; base: Scalar }

/** A member as a bitfield (BTF kind_flag bitfield, or an old-style int with bits/offset), else undefined. */
function bitfieldOf(m: Member, structOffsetBits: number): Bitfield | undefined {
  const base = resolve(m.type);
  if (m.bitfieldSize > 0) {
    if (base.kind !== "int" && base.kind !== "enum" && base.kind !== "enum64") {
      throw new BtfError(`BTF: bitfield ${m.name} has non-integer type ${describe(base)}`);
    }
    return { bitOffset: structOffsetBits + m.offset, width: m.bitfieldSize, base };
  }
  if (base.kind === "int" && (base.offset !== 0 || base.bits !== base.size * 8)) {
    return { bitOffset: structOffsetBits + m.offset + base.offset, width: base.bits, base };
  }
  return undefined;
}

/** Members must lie inside their struct (the kernel checks this too); reads past it would escape the value. */
function checkLayout(t: Struct | Union | Datasec): void {
  const limit = t.size * 8;
  if (t.kind === "datasec") {
    for (const s of t.vars) {
      if ((s.offset + sizeof(s.type)) * 8 > limit) throw new BtfError(`BTF: variable ${s.type.name} lies outside DATASEC ${t.name}`);
    }
    return;
  }
  for (const m of t.members) {
    const bf = bitfieldOf(m, 0);
    const end = bf ? bf.bitOffset + bf.width : m.offset + sizeof(m.type) * 8;
    if (bf && (bf.width === 0 || bf.width > bf.base.size * 8)) {
      throw new BtfError(`BTF: bitfield ${m.name} of ${describe(t)} is ${bf.width} bits wide in a ${bf.base.size}-byte type`);
    }
    if (end > limit) throw new BtfError(`BTF: member ${m.name || "(anonymous)"} of ${describe(t)} (type ${t.id}) lies outside its ${t.size} bytes`);
  }
}

export class CodecSource {
  private readonly deps = new Map<unknown, string>();
  private readonly helpers: string[] = [];
  private counter = 0;

  constructor() {
    for (const [name, fn] of Object.entries(rt)) this.deps.set(fn, name);
  }

  /** A name under which generated code can use `value`. */
  dep(value: unknown): string {
    let name = this.deps.get(value);
    if (!name) this.deps.set(value, (name = `d${this.deps.size}`));
    return name;
  }

  fresh(prefix: string): string {
    return `${prefix}${this.counter++}`;
  }

  /** Builds `{ decode(v, o), encodeInto(x, v, o, p) }` for `type`. */
  compile(type: Type, size: number): { decode: (v: DataView, o: number) => unknown; encodeInto: (x: unknown, v: DataView, o: number, p: string) => void } {
    const decodeExpr = this.decode(type, "o", 0, 0);
    const encodeLines: string[] = [];
    this.encode(type, "x", "o", 0, "p", encodeLines, 0);
    const body = [
      '"use strict";',
      ...this.helpers,
      `function decode(v, o) { if (o < 0 || o + ${size} > v.byteLength) failRange(o, ${size}, v); return ${decodeExpr}; }`,
      `function encodeInto(x, v, o, p) {\n${encodeLines.join("\n")}\n}`,
      "return { decode, encodeInto };",
    ].join("\n");
    const names = [...this.deps.values()];
    const values = [...this.deps.keys()];
    return new Function(...names, body)(...values);
  }

  // ---- decoding --------------------------------------------------------

  decode(type: Type, base: string, k: number, depth: number): string {
    if (depth > MAX_DEPTH) throw new BtfError(`BTF: type ${type.id} nests too deeply to decode`);
    const t = resolve(type);
    const o = at(base, k);
    switch (t.kind) {
      case "int": return this.decodeInt(t, o);
      case "enum": case "enum64": return this.decodeInt(t, o);
      case "pointer": return `v.getBigUint64(${o}, true)`;
      case "float":
        if (t.size === 4) return `v.getFloat32(${o}, true)`;
        if (t.size === 8) return `v.getFloat64(${o}, true)`;
        return `readBytes(v, ${o}, ${t.size})`;
      case "array": return this.decodeArray(t, base, k, depth);
      case "struct": case "union": case "datasec": {
        const fields: string[] = [];
        this.decodeFields(t, base, k, fields, depth);
        return `{${fields.join(", ")}}`;
      }
      case "var": return this.decode(t.type, base, k, depth + 1);
      default:
        throw new BtfError(`BTF: cannot decode ${describe(t)} (type ${t.id})`);
    }
  }

  private decodeInt(t: Scalar, o: string): string {
    const signed = t.kind === "int" ? t.encoding === "signed" : t.signed;
    const bool = t.kind === "int" && t.encoding === "bool";
    const s = signed ? "Int" : "Uint";
    let read: string;
    switch (t.size) {
      case 1: read = `v.get${s}8(${o})`; break;
      case 2: read = `v.get${s}16(${o}, true)`; break;
      case 4: read = `v.get${s}32(${o}, true)`; break;
      case 8: read = `v.getBig${s}64(${o}, true)`; break;
      case 16: read = `getInt128(v, ${o}, ${signed})`; break;
      default: throw new BtfError(`BTF: cannot decode ${describe(t)} of size ${t.size}`);
    }
    return bool ? `(${read} ${t.size >= 8 ? "!== 0n" : "!== 0"})` : read;
  }

  private decodeArray(t: ArrayType, base: string, k: number, depth: number): string {
    const n = t.nelems;
    if (n === 0) return "[]";
    if (isCharArray(t)) return `readString(v, ${at(base, k)}, ${n})`;
    const es = sizeof(t.type);
    if (n > MAX_ELEMENTS) throw new BtfError(`BTF: array type ${t.id} has ${n} elements, too many to decode into a JS array`);
    if (isScalar(t.type) && n <= UNROLL_SCALARS) {
      const items = [];
      for (let i = 0; i < n; i++) items.push(this.decode(t.type, base, k + i * es, depth + 1));
      return `[${items.join(", ")}]`;
    }
    const fn = this.fresh("arr");
    const elem = this.decode(t.type, "b", 0, depth + 1);
    this.helpers.push(
      `function ${fn}(v, o) { const r = new Array(${n}); for (let i = 0; i < ${n}; i++) { const b = o + i * ${es}; r[i] = ${elem}; } return r; }`,
    );
    return `${fn}(v, ${at(base, k)})`;
  }

  private decodeFields(t: Struct | Union | Datasec, base: string, k: number, out: string[], depth: number): void {
    checkLayout(t);
    if (t.kind === "datasec") {
      for (const s of t.vars) out.push(`${key(s.type.name)}: ${this.decode(s.type, base, k + s.offset, depth + 1)}`);
      return;
    }
    for (const m of t.members) {
      const mt = resolve(m.type);
      const bf = bitfieldOf(m, k * 8);
      if (bf) {
        if (m.name !== "") out.push(`${key(m.name)}: ${this.decodeBitfield(bf, base)}`);
        continue;
      }
      if (m.offset % 8 !== 0) throw new BtfError(`BTF: member ${m.name || "(anonymous)"} of ${describe(t)} is not byte aligned`);
      const off = k + m.offset / 8;
      if (m.name === "") {
        // Anonymous struct/union members are flattened into the parent, as in C.
        if (mt.kind === "struct" || mt.kind === "union") this.decodeFields(mt, base, off, out, depth + 1);
        continue;
      }
      out.push(`${key(m.name)}: ${this.decode(m.type, base, off, depth + 1)}`);
    }
  }

  private decodeBitfield(bf: Bitfield, base: string): string {
    const { width, base: bt } = bf;
    const byte = Math.floor(bf.bitOffset / 8);
    const shift = bf.bitOffset % 8;
    const signed = bt.kind === "int" ? bt.encoding === "signed" : bt.signed;
    const big = bt.size >= 8;
    const p = at(base, byte);
    let expr: string;
    if (shift + width <= 32) {
      const nbytes = Math.ceil((shift + width) / 8);
      const word = nbytes === 1 ? `v.getUint8(${p})`
        : nbytes === 2 ? `v.getUint16(${p}, true)`
        : nbytes === 3 ? `(v.getUint16(${p}, true) | (v.getUint8(${p} + 2) << 16))`
        : `v.getUint32(${p}, true)`;
      if (signed) expr = `((${word} << ${32 - shift - width}) >> ${32 - width})`;
      else if (width === 32) expr = `(${word} >>> 0)`;
      else expr = `((${word} >>> ${shift}) & ${2 ** width - 1})`;
      if (big) expr = `BigInt(${expr})`;
    } else if (shift + width <= 53) {
      expr = `getBits(v, ${p}, ${shift}, ${width}, ${signed})`;
      if (big) expr = `BigInt(${expr})`;
    } else {
      expr = `getBitsBig(v, ${p}, ${shift}, ${width}, ${signed})`;
      if (!big) expr = `Number(${expr})`;
    }
    if (bt.kind === "int" && bt.encoding === "bool") return `(${expr} ${big ? "!== 0n" : "!== 0"})`;
    return expr;
  }

  // ---- encoding --------------------------------------------------------
  // x: variable holding the JS value; path: JS expression for the field path,
  // evaluated only on failure.

  encode(type: Type, x: string, base: string, k: number, path: string, out: string[], depth: number): void {
    if (depth > MAX_DEPTH) throw new BtfError(`BTF: type ${type.id} nests too deeply to encode`);
    const t = resolve(type);
    const o = at(base, k);
    switch (t.kind) {
      case "int": case "enum": case "enum64":
        this.encodeInt(t, x, o, path, out);
        return;
      case "pointer":
        out.push(`{ const n = toBig(${x}, ${-(2n ** 63n)}n, ${2n ** 64n - 1n}n); if (n === undefined) fail(${path}, "bigint or integer (pointer)", ${x}); v.setBigUint64(${o}, n, true); }`);
        return;
      case "float":
        if (t.size !== 4 && t.size !== 8) {
          out.push(`if (!(${x} instanceof Uint8Array)) fail(${path}, "Uint8Array", ${x}); writeBytes(v, ${o}, ${t.size}, ${x});`);
          return;
        }
        out.push(`{ const n = typeof ${x} === "number" ? ${x} : typeof ${x} === "bigint" ? Number(${x}) : fail(${path}, "number", ${x}); v.setFloat${t.size * 8}(${o}, n, true); }`);
        return;
      case "array":
        this.encodeArray(t, x, base, k, path, out, depth);
        return;
      case "struct": case "union": case "datasec": {
        out.push(`if (typeof ${x} !== "object" || ${x} === null) fail(${path}, "object", ${x});`);
        const known = new Set<string>();
        this.encodeFields(t, x, base, k, path, out, known, depth);
        const names = this.dep(known);
        out.push(`for (const f in ${x}) if (!${names}.has(f)) failUnknown(${path}, f, ${names});`);
        return;
      }
      case "var":
        this.encode(t.type, x, base, k, path, out, depth + 1);
        return;
      default:
        throw new BtfError(`BTF: cannot encode ${describe(t)} (type ${t.id})`);
    }
  }

  private encodeInt(t: Scalar, x: string, o: string, path: string, out: string[]): void {
    if (t.kind === "int" && t.encoding === "bool") {
      out.push(`{ const n = toBool(${x}); if (n < 0) fail(${path}, "boolean", ${x}); v.setUint8(${o}, n); }`);
      return;
    }
    const bits = t.size * 8;
    // Enumerator names are accepted as well as numbers.
    let value = x;
    let expected = `integer in [${intRange(bits).join(", ")}]`;
    if (t.kind !== "int" && t.values.length > 0) {
      const table = Object.create(null) as Record<string, number | bigint>;
      for (const e of t.values) table[e.name] = bits > 32 ? BigInt(e.value) : Number(e.value);
      value = `(typeof ${x} === "string" ? ${this.dep(table)}[${x}] : ${x})`;
      expected += ` or an enumerator name of ${describe(t)}`;
    }
    if (bits <= 32) {
      const set = bits === 8 ? "setUint8" : `setUint${bits}`;
      const [min, max] = intRange(bits);
      out.push(`{ const n = toInt(${value}, ${min}, ${max}); if (n !== n) fail(${path}, ${JSON.stringify(expected)}, ${x}); v.${set}(${o}, n${bits > 8 ? ", true" : ""}); }`);
      return;
    }
    const min = -(2n ** BigInt(bits - 1));
    const max = 2n ** BigInt(bits) - 1n;
    expected = expected.replace(/^integer in \[[^\]]*\]/, `bigint or integer in [-2^${bits - 1}, 2^${bits}-1]`);
    const write = bits === 64 ? `v.setBigUint64(${o}, n, true)` : `setInt128(v, ${o}, n)`;
    if (bits !== 64 && bits !== 128) throw new BtfError(`BTF: cannot encode ${describe(t)} of size ${t.size}`);
    out.push(`{ const n = toBig(${value}, ${min}n, ${max}n); if (n === undefined) fail(${path}, ${JSON.stringify(expected)}, ${x}); ${write}; }`);
  }

  private encodeArray(t: ArrayType, x: string, base: string, k: number, path: string, out: string[], depth: number): void {
    const n = t.nelems;
    const o = at(base, k);
    if (isCharArray(t)) {
      out.push(`if (typeof ${x} === "string") writeString(v, ${o}, ${n}, ${x}); else if (${x} instanceof Uint8Array) writeBytes(v, ${o}, ${n}, ${x}); else fail(${path}, "string", ${x});`);
      return;
    }
    const es = sizeof(t.type);
    const i = this.fresh("i");
    const e = this.fresh("e");
    const b = this.fresh("b");
    out.push(`if (typeof ${x} !== "object" || ${x} === null || typeof ${x}.length !== "number") fail(${path}, "array", ${x});`);
    out.push(`if (${x}.length > ${n}) fail(${path}, "at most ${n} elements", ${x});`);
    out.push(`for (let ${i} = 0; ${i} < ${x}.length; ${i}++) { const ${e} = ${x}[${i}]; if (${e} !== undefined) { const ${b} = ${o} + ${i} * ${es};`);
    this.encode(t.type, e, b, 0, `${path} + "[" + ${i} + "]"`, out, depth + 1);
    out.push("} }");
  }

  private encodeFields(
    t: Struct | Union | Datasec, x: string, base: string, k: number, path: string,
    out: string[], known: Set<string>, depth: number,
  ): void {
    checkLayout(t);
    const field = (name: string, emit: (f: string, fieldPath: string) => void) => {
      known.add(name);
      const f = this.fresh("f");
      out.push(`{ const ${f} = ${x}[${JSON.stringify(name)}]; if (${f} !== undefined) {`);
      emit(f, `${path} + ${JSON.stringify(`.${name}`)}`);
      out.push("} }");
    };
    if (t.kind === "datasec") {
      for (const s of t.vars) {
        field(s.type.name, (f, p) => this.encode(s.type, f, base, k + s.offset, p, out, depth + 1));
      }
      return;
    }
    for (const m of t.members) {
      const mt = resolve(m.type);
      const bf = bitfieldOf(m, k * 8);
      if (bf) {
        if (m.name !== "") field(m.name, (f, p) => this.encodeBitfield(bf, f, base, p, out));
        continue;
      }
      const off = k + m.offset / 8;
      if (m.name === "") {
        if (mt.kind === "struct" || mt.kind === "union") this.encodeFields(mt, x, base, off, path, out, known, depth + 1);
        continue;
      }
      field(m.name, (f, p) => this.encode(m.type, f, base, off, p, out, depth + 1));
    }
  }

  private encodeBitfield(bf: Bitfield, f: string, base: string, path: string, out: string[]): void {
    const { width, base: bt } = bf;
    const p = at(base, Math.floor(bf.bitOffset / 8));
    const shift = bf.bitOffset % 8;
    const bool = bt.kind === "int" && bt.encoding === "bool";
    const [min, max] = intRange(width);
    const expected = bool ? '"boolean"' : JSON.stringify(`integer in [${min}, ${max}] (${width}-bit field)`);
    if (shift + width > 53) {
      out.push(`{ const n = toBig(${f}, ${-(2n ** BigInt(width - 1))}n, ${2n ** BigInt(width) - 1n}n); if (n === undefined) fail(${path}, ${expected}, ${f}); setBitsBig(v, ${p}, ${shift}, ${width}, n); }`);
      return;
    }
    const check = bool
      ? `const n = toBool(${f}); if (n < 0) fail(${path}, ${expected}, ${f});`
      : `const n = toInt(${f}, ${min}, ${max}); if (n !== n) fail(${path}, ${expected}, ${f});`;
    const nbytes = Math.ceil((shift + width) / 8);
    if (nbytes === 1 || nbytes === 2 || nbytes === 4) {
      // Whole-word read-modify-write with 32-bit integer ops.
      const bitsOf = nbytes * 8;
      const [get, set] = [`getUint${bitsOf}`, `setUint${bitsOf}`];
      const le = nbytes > 1 ? ", true" : "";
      const mask = ((2 ** width - 1) * 2 ** shift) | 0;
      out.push(`{ ${check} v.${set}(${p}, (v.${get}(${p}${le}) & ${~mask}) | ((n << ${shift}) & ${mask})${le}); }`);
      return;
    }
    out.push(`{ ${check} setBits(v, ${p}, ${shift}, ${width}, n); }`);
  }
}
