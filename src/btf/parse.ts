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
  header: BtfHeader;
  types: Type[];
  /** Byte offset in the raw data of each type's record (index = id; 0 for void). */
  offsets: Uint32Array;
  strings: StringTable;
}

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

export function parseBtf(raw: Uint8Array): ParsedBtf {
  const header = parseHeader(raw);
  const strStart = header.hdrLen + header.strOff;
  if (header.strLen === 0 || raw[strStart] !== 0) {
    throw new BtfError("BTF: string section must start with an empty string");
  }
  const strings = new StringTable(raw.subarray(strStart, strStart + header.strLen));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const start = header.hdrLen + header.typeOff;
  const end = start + header.typeLen;

  const voidType: Void = { id: 0, kind: "void", name: "" };
  const types: Type[] = [voidType];
  const offsets: number[] = [0];
  const name = (off: number, what: () => string): string => {
    const s = strings.get(off);
    if (s === undefined) {
      throw new BtfError(`BTF: string offset ${hex(off)} outside string section (${hex(strings.size)} bytes) in ${what()}`);
    }
    return s;
  };

  // Pass 1: one object per record, references pointing at void for now.
  for (let pos = start; pos < end;) {
    const id = types.length;
    if (pos + TYPE_HEADER_SIZE > end) throw new BtfError(`BTF: truncated type ${id} at ${hex(pos)}`);
    const info = view.getUint32(pos + 4, true);
    const vlen = info & 0xffff;
    const kindNum = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    const kind = KIND_NAMES[kindNum];
    if (kindNum === 0 || kind === undefined) {
      throw new BtfError(`BTF: type ${id} at ${hex(pos)} has unknown kind ${kindNum}`);
    }
    const recordEnd = pos + TYPE_HEADER_SIZE + extraSize(kindNum, vlen);
    if (recordEnd > end) throw new BtfError(`BTF: truncated type ${id} (kind ${kind}) at ${hex(pos)}`);
    const typeName = name(view.getUint32(pos, true), () => `name of type ${id}`);
    const sizeOrType = view.getUint32(pos + 8, true);
    const x = pos + TYPE_HEADER_SIZE; // kind-specific data
    let t: Type;
    switch (kindNum) {
      case 1: { // int
        const data = view.getUint32(x, true);
        const encoding = INT_ENCODINGS[(data >>> 24) & 0xf];
        if (encoding === undefined) throw new BtfError(`BTF: type ${id} (int ${typeName}) has invalid encoding ${hex((data >>> 24) & 0xf)}`);
        t = { id, kind: "int", name: typeName, size: sizeOrType, encoding, bits: data & 0xff, offset: (data >>> 16) & 0xff };
        break;
      }
      case 2: t = { id, kind: "pointer", name: typeName, type: voidType }; break;
      case 3:
        t = { id, kind: "array", name: typeName, type: voidType, indexType: voidType, nelems: view.getUint32(x + 8, true) };
        break;
      case 4: case 5: {
        const members: Member[] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const m = x + i * 12;
          const raw = view.getUint32(m + 8, true);
          members[i] = {
            name: name(view.getUint32(m, true), () => `member ${i} of type ${id}`),
            type: voidType,
            offset: kindFlag ? raw & 0xffffff : raw,
            bitfieldSize: kindFlag ? raw >>> 24 : 0,
          };
        }
        t = { id, kind: kindNum === 4 ? "struct" : "union", name: typeName, size: sizeOrType, members };
        break;
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
        t = { id, kind: "enum", name: typeName, size: sizeOrType, signed: kindFlag, values };
        break;
      }
      case 7: t = { id, kind: "fwd", name: typeName, fwdKind: kindFlag ? "union" : "struct" }; break;
      case 8: t = { id, kind: "typedef", name: typeName, type: voidType }; break;
      case 9: t = { id, kind: "volatile", name: typeName, type: voidType }; break;
      case 10: t = { id, kind: "const", name: typeName, type: voidType }; break;
      case 11: t = { id, kind: "restrict", name: typeName, type: voidType }; break;
      case 12: {
        const linkage = FUNC_LINKAGES[vlen];
        if (!linkage) throw new BtfError(`BTF: type ${id} (func ${typeName}) has invalid linkage ${vlen}`);
        t = { id, kind: "func", name: typeName, linkage, proto: voidType as unknown as FuncProto };
        break;
      }
      case 13: {
        const params: FuncProto["params"] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          params[i] = { name: name(view.getUint32(x + i * 8, true), () => `parameter ${i} of type ${id}`), type: voidType };
        }
        t = { id, kind: "func_proto", name: typeName, return: voidType, params };
        break;
      }
      case 14: {
        const linkage = VAR_LINKAGES[view.getUint32(x, true)];
        if (!linkage) throw new BtfError(`BTF: type ${id} (var ${typeName}) has invalid linkage ${view.getUint32(x, true)}`);
        t = { id, kind: "var", name: typeName, type: voidType, linkage };
        break;
      }
      case 15: {
        const vars: Datasec["vars"] = new Array(vlen);
        for (let i = 0; i < vlen; i++) {
          const s = x + i * 12;
          vars[i] = { type: voidType as never, offset: view.getUint32(s + 4, true), size: view.getUint32(s + 8, true) };
        }
        t = { id, kind: "datasec", name: typeName, size: sizeOrType, vars };
        break;
      }
      case 16: t = { id, kind: "float", name: typeName, size: sizeOrType }; break;
      case 17: t = { id, kind: "decl_tag", name: typeName, type: voidType, componentIdx: view.getInt32(x, true) }; break;
      case 18: t = { id, kind: "type_tag", name: typeName, type: voidType }; break;
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
        t = { id, kind: "enum64", name: typeName, size: sizeOrType, signed: kindFlag, values };
      }
    }
    types.push(t);
    offsets.push(pos);
    pos = recordEnd;
  }

  linkTypes(view, types, offsets);
  return { header, types, offsets: Uint32Array.from(offsets), strings };
}

// Pass 2: replace the void placeholders with the referenced types.
function linkTypes(view: DataView, types: Type[], offsets: number[]): void {
  const count = types.length;
  const ref = (from: number, id: number): Type => {
    if (id >= count) throw new BtfError(`BTF: type ${from} references type ${id}, but there are only ${count} types`);
    return types[id];
  };
  for (let id = 1; id < count; id++) {
    const t = types[id];
    const pos = offsets[id];
    const sizeOrType = view.getUint32(pos + 8, true);
    const x = pos + TYPE_HEADER_SIZE;
    switch (t.kind) {
      case "pointer": case "typedef": case "volatile": case "const": case "restrict":
      case "type_tag": case "var": case "decl_tag":
        t.type = ref(id, sizeOrType);
        break;
      case "array":
        t.type = ref(id, view.getUint32(x, true));
        t.indexType = ref(id, view.getUint32(x + 4, true));
        break;
      case "struct": case "union":
        for (let i = 0; i < t.members.length; i++) t.members[i].type = ref(id, view.getUint32(x + i * 12 + 4, true));
        break;
      case "func_proto":
        t.return = ref(id, sizeOrType);
        for (let i = 0; i < t.params.length; i++) t.params[i].type = ref(id, view.getUint32(x + i * 8 + 4, true));
        break;
      case "func": {
        const proto = ref(id, sizeOrType);
        if (proto.kind !== "func_proto") throw new BtfError(`BTF: func ${t.name} (type ${id}) has prototype type ${proto.id} of kind ${proto.kind}`);
        t.proto = proto;
        break;
      }
      case "datasec":
        for (let i = 0; i < t.vars.length; i++) {
          const v = ref(id, view.getUint32(x + i * 12, true));
          if (v.kind !== "var" && v.kind !== "func") {
            throw new BtfError(`BTF: datasec ${t.name} (type ${id}) entry ${i} is type ${v.id} of kind ${v.kind}, expected var`);
          }
          t.vars[i].type = v;
        }
        break;
    }
  }
}
