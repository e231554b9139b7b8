// Raw .BTF bytes -> Type objects. Two passes over the type section: the first
// creates one object per record (so forward references have a target), the
// second re-reads the ids in each record and links the objects.
import { StringTable } from "../elf/strings.ts";
import { BtfError, hex } from "./error.ts";
import type {
  Datasec, Enum, Enum64, FuncLinkage, FuncProto, IntEncoding, Member, Type, VarLinkage, Void,
} from "./types.ts";

export const BTF_MAGIC = 0xeb9f;
export const BTF_HEADER_SIZE = 24;
const TYPE_HEADER_SIZE = 12;
// The kernel's limits (include/uapi/linux/btf.h, kernel/bpf/btf.c): BTF beyond
// them cannot be loaded, so it is refused before anything is sized from it.
const BTF_MAX_TYPE = 0xfffff;
const BTF_MAX_NAME_OFFSET = 0xffffff;
const BTF_INT_BITS_MAX = 128;

export interface BtfHeader {
  readonly magic: number;
  readonly version: number;
  readonly flags: number;
  readonly hdrLen: number;
  readonly typeOff: number;
  readonly typeLen: number;
  readonly strOff: number;
  readonly strLen: number;
}

export interface ParsedBtf {
  index: BtfIndex;
  types: Type[];
}

/** A BTF string section: one table, or a split BTF's own on top of its base's. */
export interface BtfStrings {
  readonly size: number;
  get(offset: number): string | undefined;
  offsetsOf(s: string): number[];
  offsetsContaining(part: string): number[];
}

/**
 * A split BTF's strings (a kernel module's): offsets below the base's string section
 * size are the base's strings, the rest index the split's own section.
 */
class SplitStrings implements BtfStrings {
  readonly size: number;
  constructor(private readonly base: BtfStrings, private readonly own: StringTable) {
    this.size = base.size + own.size;
  }
  get(offset: number): string | undefined {
    return offset < this.base.size ? this.base.get(offset) : this.own.get(offset - this.base.size);
  }
  offsetsOf(s: string): number[] {
    return [...this.base.offsetsOf(s), ...this.own.offsetsOf(s).map((o) => o + this.base.size)];
  }
  offsetsContaining(part: string): number[] {
    return [...this.base.offsetsContaining(part), ...this.own.offsetsContaining(part).map((o) => o + this.base.size)];
  }
}

/** Where each type's record is, found in one pass over the type section; no type objects yet. */
export interface BtfIndex {
  header: BtfHeader;
  view: DataView;
  strings: BtfStrings;
  /**
   * Type id = idBase + index into the arrays below. 0 for standalone BTF (index 0 is
   * void); for split BTF, the base's type count - 1 (index 0 unused: the base's last type).
   */
  idBase: number;
  /** The base BTF's index, for split BTF. */
  base?: BtfIndex;
  /** Byte offset in the raw data of each type's record (index = id - idBase; 0 for void). */
  offsets: Uint32Array;
  /** BTF_KIND_* number of each type (index = id - idBase; 0 for void). */
  kinds: Uint8Array;
  /** String offset of each type's name (0: anonymous). */
  names: Uint32Array;
}

/** How many type ids an index covers, void and (for split BTF) the base's types included. */
export function typeCountOf(ix: BtfIndex): number {
  return ix.idBase + ix.kinds.length;
}

/** The BTF_KIND_* number of type `id`, looked up in the base for a split BTF's base types. */
export function kindNumOf(ix: BtfIndex, id: number): number {
  let i: BtfIndex | undefined = ix;
  while (i && id <= i.idBase && i.base) i = i.base;
  return i!.kinds[id - i!.idBase];
}

/** Sets `owner[key]` to the type with id `id` (already checked to exist). */
export type Bind = (owner: object, key: string, id: number) => void;

// BTF_KIND_* numbers, index = kind number.
export const KIND_NAMES = [
  "void", "int", "pointer", "array", "struct", "union", "enum", "fwd", "typedef",
  "volatile", "const", "restrict", "func", "func_proto", "var", "datasec", "float",
  "decl_tag", "type_tag", "enum64",
] as const;

export const BTF_KIND_STRUCT = 4;
export const BTF_KIND_UNION = 5;
export const BTF_KIND_DATASEC = 15;

const INT_ENCODINGS: Record<number, IntEncoding> = { 0: "none", 1: "signed", 2: "char", 4: "bool" };
const FUNC_LINKAGES: FuncLinkage[] = ["static", "global", "extern"];
const VAR_LINKAGES: VarLinkage[] = ["static", "global", "extern"];

/** Bytes that follow the common 12-byte btf_type header for a given kind. */
function extraSize(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4; // int, var, decl_tag
    case 3: return 12; // array
    case 4: case 5: case 15: case 19: return vlen * 12; // struct, union, datasec, enum64
    case 6: case 13: return vlen * 8; // enum, func_proto
    default: return 0;
  }
}

export function parseHeader(raw: Uint8Array): BtfHeader {
  if (raw.length < BTF_HEADER_SIZE) {
    throw new BtfError(`BTF: truncated header: ${raw.length} bytes, need at least ${BTF_HEADER_SIZE}`);
  }
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = v.getUint16(0, true);
  if (magic === 0x9feb) throw new BtfError("BTF: big-endian BTF is not supported");
  if (magic !== BTF_MAGIC) throw new BtfError(`BTF: bad magic ${hex(magic)}, expected ${hex(BTF_MAGIC)}`);
  const header: BtfHeader = {
    magic,
    version: raw[2],
    flags: raw[3],
    hdrLen: v.getUint32(4, true),
    typeOff: v.getUint32(8, true),
    typeLen: v.getUint32(12, true),
    strOff: v.getUint32(16, true),
    strLen: v.getUint32(20, true),
  };
  if (header.version !== 1) throw new BtfError(`BTF: unsupported version ${header.version}`);
  if (header.hdrLen < BTF_HEADER_SIZE) throw new BtfError(`BTF: header length ${header.hdrLen} is less than ${BTF_HEADER_SIZE}`);
  const check = (what: string, off: number, len: number) => {
    const start = header.hdrLen + off;
    if (start + len > raw.length) {
      throw new BtfError(`BTF: ${what} section at ${hex(start)}+${hex(len)} runs past end of data (${hex(raw.length)} bytes)`);
    }
  };
  check("type", header.typeOff, header.typeLen);
  check("string", header.strOff, header.strLen);
  return header;
}

/**
 * Checks the header and string section and finds every type record (sizes and
 * kinds checked; names, encodings and references are checked when a record is read).
 */
export function indexBtf(raw: Uint8Array, base?: BtfIndex): BtfIndex {
  const header = parseHeader(raw);
  const strStart = header.hdrLen + header.strOff;
  // Split BTF's own strings follow the base's: they may be empty and need not start with "".
  if (!base && (header.strLen === 0 || raw[strStart] !== 0)) {
    throw new BtfError("BTF: string section must start with an empty string");
  }
  const baseStrLen = base?.strings.size ?? 0;
  if (baseStrLen + header.strLen > BTF_MAX_NAME_OFFSET + 1) {
    throw new BtfError(`BTF: string section is ${baseStrLen + header.strLen} bytes, more than the kernel's limit of ${BTF_MAX_NAME_OFFSET + 1}`);
  }
  const own = new StringTable(raw.subarray(strStart, strStart + header.strLen));
  const strings: BtfStrings = base ? new SplitStrings(base.strings, own) : own;
  const idBase = base ? typeCountOf(base) - 1 : 0;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const start = header.hdrLen + header.typeOff;
  const end = start + header.typeLen;
  // Every record has at least a 12-byte header: this bounds the count.
  const offsets = new Uint32Array(Math.floor(header.typeLen / TYPE_HEADER_SIZE) + 1);
  const kinds = new Uint8Array(offsets.length);
  const names = new Uint32Array(offsets.length);
  let id = 1;
  for (let pos = start; pos < end; id++) {
    if (pos + TYPE_HEADER_SIZE > end) throw new BtfError(`BTF: truncated type ${idBase + id} at ${hex(pos)}`);
    if (idBase + id > BTF_MAX_TYPE) throw new BtfError(`BTF: more than ${BTF_MAX_TYPE} types, the kernel's limit`);
    const info = view.getUint32(pos + 4, true);
    const kindNum = (info >>> 24) & 0x1f;
    if (kindNum === 0 || kindNum >= KIND_NAMES.length) {
      throw new BtfError(`BTF: type ${idBase + id} at ${hex(pos)} has unknown kind ${kindNum}`);
    }
    const recordEnd = pos + TYPE_HEADER_SIZE + extraSize(kindNum, info & 0xffff);
    if (recordEnd > end) throw new BtfError(`BTF: truncated type ${idBase + id} (kind ${KIND_NAMES[kindNum]}) at ${hex(pos)}`);
    offsets[id] = pos;
    kinds[id] = kindNum;
    names[id] = view.getUint32(pos, true);
    pos = recordEnd;
  }
  return { header, view, strings, idBase, base, offsets: offsets.subarray(0, id), kinds: kinds.subarray(0, id), names: names.subarray(0, id) };
}

const SCALAR_SIZES = new Set([1, 2, 4, 8, 16]);

/** Enums are 1, 2, 4 or 8 bytes (the kernel refuses anything else). */
function checkScalarSize(id: number, kind: string, name: string, size: number): void {
  if (size > 8 || !SCALAR_SIZES.has(size)) throw new BtfError(`BTF: type ${id} (${kind} ${name}) has size ${size}; enums are 1, 2, 4 or 8 bytes`);
}

/** The void type of a Spec (id 0). */
export function voidType(): Void {
  return { id: 0, kind: "void", name: "" };
}

/** The name at a string offset, or a BtfError saying whose it was. */
function stringAt(ix: BtfIndex, off: number, what: () => string): string {
  const s = ix.strings.get(off);
  if (s === undefined) {
    throw new BtfError(`BTF: string offset ${hex(off)} outside string section (${hex(ix.strings.size)} bytes) in ${what()}`);
  }
  return s;
}

/** Type `id` as an object, its references all pointing at `placeholder` until linkType binds them. */
export function readType(ix: BtfIndex, id: number, placeholder: Void): Type {
  const { view } = ix;
  const pos = ix.offsets[id - ix.idBase];
  const info = view.getUint32(pos + 4, true);
  const vlen = info & 0xffff;
  const kindNum = ix.kinds[id - ix.idBase];
  const kindFlag = info >>> 31 === 1;
  const name = (off: number, what: () => string) => stringAt(ix, off, what);
  const typeName = name(view.getUint32(pos, true), () => `name of type ${id}`);
  const sizeOrType = view.getUint32(pos + 8, true);
  const x = pos + TYPE_HEADER_SIZE; // kind-specific data
  switch (kindNum) {
    case 1: { // int
      const data = view.getUint32(x, true);
      const encoding = INT_ENCODINGS[(data >>> 24) & 0xf];
      if (encoding === undefined) throw new BtfError(`BTF: type ${id} (int ${typeName}) has invalid encoding ${hex((data >>> 24) & 0xf)}`);
      // As the kernel checks: offset + bits within 128 and within the size, the size a power of two up to 16.
      const bits = (data & 0xff) + ((data >>> 16) & 0xff);
      if (!SCALAR_SIZES.has(sizeOrType) || bits > BTF_INT_BITS_MAX || Math.ceil(bits / 8) > sizeOrType) {
        throw new BtfError(`BTF: type ${id} (int ${typeName}) has size ${sizeOrType} and ${data & 0xff} bits at offset ${(data >>> 16) & 0xff}, which no int can have`);
      }
      return { id, kind: "int", name: typeName, size: sizeOrType, encoding, bits: data & 0xff, offset: (data >>> 16) & 0xff };
    }
    case 2: return { id, kind: "pointer", name: typeName, type: placeholder };
    case 3: return { id, kind: "array", name: typeName, type: placeholder, indexType: placeholder, nelems: view.getUint32(x + 8, true) };
    case 4: case 5: {
      const members: Member[] = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const m = x + i * 12;
        const raw = view.getUint32(m + 8, true);
        members[i] = {
          name: name(view.getUint32(m, true), () => `member ${i} of type ${id}`),
          type: placeholder,
          offset: kindFlag ? raw & 0xffffff : raw,
          bitfieldSize: kindFlag ? raw >>> 24 : 0,
        };
      }
      return { id, kind: kindNum === 4 ? "struct" : "union", name: typeName, size: sizeOrType, members };
    }
    case 6: {
      const values: Enum["values"] = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const e = x + i * 8;
        values[i] = {
          name: name(view.getUint32(e, true), () => `enumerator ${i} of type ${id}`),
          value: kindFlag ? view.getInt32(e + 4, true) : view.getUint32(e + 4, true),
        };
      }
      checkScalarSize(id, "enum", typeName, sizeOrType);
      return { id, kind: "enum", name: typeName, size: sizeOrType, signed: kindFlag, values };
    }
    case 7: return { id, kind: "fwd", name: typeName, fwdKind: kindFlag ? "union" : "struct" };
    case 8: return { id, kind: "typedef", name: typeName, type: placeholder };
    case 9: return { id, kind: "volatile", name: typeName, type: placeholder };
    case 10: return { id, kind: "const", name: typeName, type: placeholder };
    case 11: return { id, kind: "restrict", name: typeName, type: placeholder };
    case 12: {
      const linkage = FUNC_LINKAGES[vlen];
      if (!linkage) throw new BtfError(`BTF: type ${id} (func ${typeName}) has invalid linkage ${vlen}`);
      return { id, kind: "func", name: typeName, linkage, proto: placeholder as unknown as FuncProto };
    }
    case 13: {
      const params: FuncProto["params"] = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        params[i] = { name: name(view.getUint32(x + i * 8, true), () => `parameter ${i} of type ${id}`), type: placeholder };
      }
      return { id, kind: "func_proto", name: typeName, return: placeholder, params };
    }
    case 14: {
      const linkage = VAR_LINKAGES[view.getUint32(x, true)];
      if (!linkage) throw new BtfError(`BTF: type ${id} (var ${typeName}) has invalid linkage ${view.getUint32(x, true)}`);
      return { id, kind: "var", name: typeName, type: placeholder, linkage };
    }
    case 15: {
      const vars: Datasec["vars"] = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const s = x + i * 12;
        vars[i] = { type: placeholder as never, offset: view.getUint32(s + 4, true), size: view.getUint32(s + 8, true) };
      }
      return { id, kind: "datasec", name: typeName, size: sizeOrType, vars };
    }
    case 16:
      if (![2, 4, 8, 12, 16].includes(sizeOrType)) throw new BtfError(`BTF: type ${id} (float ${typeName}) has size ${sizeOrType}; floats are 2, 4, 8, 12 or 16 bytes`);
      return { id, kind: "float", name: typeName, size: sizeOrType };
    case 17: return { id, kind: "decl_tag", name: typeName, type: placeholder, componentIdx: view.getInt32(x, true) };
    case 18: return { id, kind: "type_tag", name: typeName, type: placeholder };
    default: { // 19: enum64
      const values: Enum64["values"] = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const e = x + i * 12;
        const bits = (BigInt(view.getUint32(e + 8, true)) << 32n) | BigInt(view.getUint32(e + 4, true));
        values[i] = {
          name: name(view.getUint32(e, true), () => `enumerator ${i} of type ${id}`),
          value: kindFlag ? BigInt.asIntN(64, bits) : bits,
        };
      }
      checkScalarSize(id, "enum64", typeName, sizeOrType);
      return { id, kind: "enum64", name: typeName, size: sizeOrType, signed: kindFlag, values };
    }
  }
}

/** Binds every reference of `t` (read by readType) through `bind`, after checking each id. */
export function linkType(ix: BtfIndex, t: Type, bind: Bind): void {
  const { view } = ix;
  const id = t.id;
  const count = typeCountOf(ix);
  const kindAt = (to: number) => kindNumOf(ix, to);
  const pos = ix.offsets[id - ix.idBase];
  const sizeOrType = view.getUint32(pos + 8, true);
  const x = pos + TYPE_HEADER_SIZE;
  const ref = (owner: object, key: string, to: number): void => {
    if (to >= count) throw new BtfError(`BTF: type ${id} references type ${to}, but there are only ${count} types`);
    bind(owner, key, to);
  };
  switch (t.kind) {
    case "pointer": case "typedef": case "volatile": case "const": case "restrict":
    case "type_tag": case "var": case "decl_tag":
      ref(t, "type", sizeOrType);
      break;
    case "array":
      ref(t, "type", view.getUint32(x, true));
      ref(t, "indexType", view.getUint32(x + 4, true));
      break;
    case "struct": case "union":
      for (let i = 0; i < t.members.length; i++) ref(t.members[i], "type", view.getUint32(x + i * 12 + 4, true));
      break;
    case "func_proto":
      ref(t, "return", sizeOrType);
      for (let i = 0; i < t.params.length; i++) ref(t.params[i], "type", view.getUint32(x + i * 8 + 4, true));
      break;
    case "func":
      if (sizeOrType < count && kindAt(sizeOrType) !== 13) {
        throw new BtfError(`BTF: func ${t.name} (type ${id}) has prototype type ${sizeOrType} of kind ${KIND_NAMES[kindAt(sizeOrType)]}`);
      }
      ref(t, "proto", sizeOrType);
      break;
    case "datasec":
      for (let i = 0; i < t.vars.length; i++) {
        const v = view.getUint32(x + i * 12, true);
        if (v < count && kindAt(v) !== 14 && kindAt(v) !== 12) {
          throw new BtfError(`BTF: datasec ${t.name} (type ${id}) entry ${i} is type ${v} of kind ${KIND_NAMES[kindAt(v)]}, expected var`);
        }
        ref(t.vars[i], "type", v);
      }
      break;
  }
}

/** Every type as an object, linked: for BTF that must be checked whole (objects', maps'). */
export function parseBtf(raw: Uint8Array): ParsedBtf {
  const ix = indexBtf(raw);
  const count = ix.kinds.length;
  const types: Type[] = new Array(count);
  types[0] = voidType();
  for (let id = 1; id < count; id++) types[id] = readType(ix, id, types[0] as Void);
  const bind: Bind = (owner, key, to) => ((owner as Record<string, Type>)[key] = types[to]);
  for (let id = 1; id < count; id++) linkType(ix, types[id], bind);
  return { index: ix, types };
}
