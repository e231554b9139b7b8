// The BTF type model. Types reference each other as objects (cycles through
// pointers are normal); id 0 is Void.
import { BtfError } from "./error.ts";

export type Kind =
  | "void" | "int" | "pointer" | "array" | "struct" | "union" | "enum" | "fwd"
  | "typedef" | "volatile" | "const" | "restrict" | "func" | "func_proto"
  | "var" | "datasec" | "float" | "decl_tag" | "type_tag" | "enum64";

interface Base {
  /** Type id within its Spec (0 = void). */
  readonly id: number;
  /** "" for anonymous types. */
  readonly name: string;
}

export interface Void extends Base { readonly kind: "void" }

/** BTF int encoding; the kernel allows at most one of the flags. */
export type IntEncoding = "none" | "signed" | "char" | "bool";

export interface Int extends Base {
  readonly kind: "int";
  /** Size in bytes. */
  readonly size: number;
  readonly encoding: IntEncoding;
  /** Value bits (may be less than size*8 for old-style bitfields). */
  readonly bits: number;
  /** Bit offset of the value within the storage (old-style bitfields). */
  readonly offset: number;
}

export interface Pointer extends Base { readonly kind: "pointer"; type: Type }

export interface Array extends Base {
  readonly kind: "array";
  type: Type;
  indexType: Type;
  readonly nelems: number;
}

export interface Member {
  readonly name: string;
  type: Type;
  /** Offset from the start of the struct, in bits. */
  readonly offset: number;
  /** Bitfield width in bits, 0 when the member is not a bitfield. */
  readonly bitfieldSize: number;
}

export interface Struct extends Base { readonly kind: "struct"; readonly size: number; readonly members: Member[] }
export interface Union extends Base { readonly kind: "union"; readonly size: number; readonly members: Member[] }

export interface EnumValue { readonly name: string; readonly value: number }
export interface Enum extends Base {
  readonly kind: "enum";
  readonly size: number;
  readonly signed: boolean;
  readonly values: EnumValue[];
}

export interface Enum64Value { readonly name: string; readonly value: bigint }
export interface Enum64 extends Base {
  readonly kind: "enum64";
  readonly size: number;
  readonly signed: boolean;
  readonly values: Enum64Value[];
}

export interface Fwd extends Base { readonly kind: "fwd"; readonly fwdKind: "struct" | "union" }

export interface Typedef extends Base { readonly kind: "typedef"; type: Type }
export interface Volatile extends Base { readonly kind: "volatile"; type: Type }
export interface Const extends Base { readonly kind: "const"; type: Type }
export interface Restrict extends Base { readonly kind: "restrict"; type: Type }
export interface TypeTag extends Base { readonly kind: "type_tag"; type: Type }

export type FuncLinkage = "static" | "global" | "extern";
export interface Func extends Base { readonly kind: "func"; readonly linkage: FuncLinkage; proto: FuncProto }

export interface FuncParam { readonly name: string; type: Type }
export interface FuncProto extends Base { readonly kind: "func_proto"; return: Type; readonly params: FuncParam[] }

export type VarLinkage = "static" | "global" | "extern";
export interface Var extends Base { readonly kind: "var"; type: Type; readonly linkage: VarLinkage }

export interface VarSecinfo {
  /** A Var, or a Func for extern kfuncs in .ksyms. */
  type: Var | Func;
  readonly offset: number;
  readonly size: number;
}
export interface Datasec extends Base { readonly kind: "datasec"; readonly size: number; readonly vars: VarSecinfo[] }

export interface Float extends Base { readonly kind: "float"; readonly size: number }

export interface DeclTag extends Base {
  readonly kind: "decl_tag";
  type: Type;
  /** -1 when the tag applies to `type` itself, else the member/param index. */
  readonly componentIdx: number;
}

export type Type =
  | Void | Int | Pointer | Array | Struct | Union | Enum | Enum64 | Fwd | Typedef
  | Volatile | Const | Restrict | TypeTag | Func | FuncProto | Var | Datasec | Float | DeclTag;

export type Qualifier = Typedef | Volatile | Const | Restrict | TypeTag;
export type Composite = Struct | Union;

// Valid BTF has no reference cycles without a pointer in between, but
// malformed input could; this bounds every walk (cilium/ebpf uses 32 too).
const MAX_DEPTH = 32;

export function isQualifier(t: Type): t is Qualifier {
  return t.kind === "typedef" || t.kind === "const" || t.kind === "volatile" ||
    t.kind === "restrict" || t.kind === "type_tag";
}

/** Skip typedef/const/volatile/restrict/type_tag. */
export function resolve(type: Type): Type {
  let t = type;
  for (let depth = 0; isQualifier(t); depth++) {
    if (depth > MAX_DEPTH) throw new BtfError(`BTF: type ${type.id} has too many levels of qualifiers/typedefs`);
    t = t.type;
  }
  return t;
}

/** "struct foo", "int", "typedef __u32", "anonymous union" — for messages. */
export function describe(t: Type): string {
  const kind = t.kind.replace("_", " ");
  if (t.kind === "int" || t.kind === "float") return t.name;
  return t.name ? `${kind} ${t.name}` : `anonymous ${kind}`;
}

/** Size in bytes of a value of this type. */
export function sizeof(type: Type): number {
  let t = type;
  let multiplier = 1;
  // Like the kernel, refuse sizes that do not fit in a u32.
  const total = (size: number) => {
    const n = multiplier * size;
    if (n > 0xffffffff) throw new BtfError(`BTF: size of type ${type.id} overflows u32`);
    return n;
  };
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    switch (t.kind) {
      case "int": case "enum": case "enum64": case "float":
      case "struct": case "union": case "datasec":
        return total(t.size);
      case "pointer":
        return total(8); // BPF (and every 64-bit target we load on)
      case "array":
        multiplier *= t.nelems;
        t = t.type;
        break;
      case "typedef": case "const": case "volatile": case "restrict": case "type_tag": case "var":
        t = t.type;
        break;
      default:
        throw new BtfError(`BTF: cannot take the size of ${describe(t)} (type ${t.id})`);
    }
  }
  throw new BtfError(`BTF: type ${type.id} nests too deeply to size`);
}

/** Natural alignment in bytes (1 for structs whose layout shows they are packed). */
export function alignof(type: Type, depth = 0): number {
  if (depth > MAX_DEPTH) throw new BtfError(`BTF: type ${type.id} nests too deeply to align`);
  const t = resolve(type);
  switch (t.kind) {
    case "int": case "enum": case "enum64": case "float":
      return Math.min(t.size, 8) || 1;
    case "pointer":
      return 8;
    case "array":
      return alignof(t.type, depth + 1);
    case "var":
      return alignof(t.type, depth + 1);
    case "struct": case "union": {
      let align = 1;
      for (const m of t.members) {
        const a = alignof(m.type, depth + 1);
        // A member placed off its natural alignment means __attribute__((packed)).
        if (m.bitfieldSize === 0 && m.offset % (a * 8) !== 0) return 1;
        align = Math.max(align, a);
      }
      return t.size % align === 0 ? align : 1;
    }
    default:
      throw new BtfError(`BTF: cannot take the alignment of ${describe(t)} (type ${t.id})`);
  }
}
