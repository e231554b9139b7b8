// CO-RE ("compile once, run everywhere") relocations: the object's BTF says
// which struct field, type or enum value an instruction's offset or constant
// stands for; this file finds the same thing in a target BTF (the kernel's)
// and rewrites the instruction with the target's value. The algorithm is
// libbpf's (tools/lib/bpf/relo_core.c), written anew over our Type objects:
//
//   1. parse the access string against the local type ("0:1:2" = member 1 of
//      the struct, member 2 of that, ...) into a "spec": the named fields and
//      array indices it passes through, and its bit offset;
//   2. candidates: every target type of a compatible kind whose name, without
//      a "___flavor" suffix, is the local type's name without one;
//   3. match the local spec against each candidate (fields by name, through
//      anonymous structs and unions; arrays by index), compute the value the
//      instruction needs for each match; all matches must agree (ambiguity is
//      an error);
//   4. nothing matches: existence checks become 0, everything else is
//      "poisoned" (a call to helper 0xbad2310): the verifier rejects the
//      program only if that instruction can run, as after a failed
//      bpf_core_field_exists() it cannot.
//
// Pure: no system calls; the target is any Spec (the running kernel's, or a
// BTF file of another kernel).
import type { Instructions } from "../asm/instruction.ts";
import { CoreReloKind, type CoreRelo } from "./ext.ts";
import { TsbpfError } from "../errors.ts";
import type { Spec } from "./spec.ts";
import { describe, resolve, sizeof, type Kind, type Member, type Type } from "./types.ts";

/** The imm of a poisoned instruction: the verifier says "invalid func unknown#195896080". */
export const CORE_POISON = 0xbad2310;

/** A CO-RE relocation the engine cannot carry out (not one that poisons: those are reported). */
export class CoreError extends TsbpfError {
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_CORE", message, options);
  }
}

const KIND_NAMES: Record<number, string> = {
  [CoreReloKind.FIELD_BYTE_OFFSET]: "byte_off",
  [CoreReloKind.FIELD_BYTE_SIZE]: "byte_sz",
  [CoreReloKind.FIELD_EXISTS]: "field_exists",
  [CoreReloKind.FIELD_SIGNED]: "signed",
  [CoreReloKind.FIELD_LSHIFT_U64]: "lshift_u64",
  [CoreReloKind.FIELD_RSHIFT_U64]: "rshift_u64",
  [CoreReloKind.TYPE_ID_LOCAL]: "local_type_id",
  [CoreReloKind.TYPE_ID_TARGET]: "target_type_id",
  [CoreReloKind.TYPE_EXISTS]: "type_exists",
  [CoreReloKind.TYPE_SIZE]: "type_size",
  [CoreReloKind.ENUMVAL_EXISTS]: "enumval_exists",
  [CoreReloKind.ENUMVAL_VALUE]: "enumval_value",
  [CoreReloKind.TYPE_MATCHES]: "type_matches",
};

/** libbpf's name of a relocation kind ("byte_off", "field_exists", ...). */
export function coreKindName(kind: number): string {
  return KIND_NAMES[kind] ?? `unknown kind ${kind}`;
}

const isFieldKind = (k: number) => k <= CoreReloKind.FIELD_RSHIFT_U64;
const isTypeKind = (k: number) =>
  k === CoreReloKind.TYPE_ID_LOCAL || k === CoreReloKind.TYPE_ID_TARGET || k === CoreReloKind.TYPE_EXISTS ||
  k === CoreReloKind.TYPE_SIZE || k === CoreReloKind.TYPE_MATCHES;
const isEnumvalKind = (k: number) => k === CoreReloKind.ENUMVAL_EXISTS || k === CoreReloKind.ENUMVAL_VALUE;
const isExistence = (k: number) =>
  k === CoreReloKind.FIELD_EXISTS || k === CoreReloKind.TYPE_EXISTS || k === CoreReloKind.ENUMVAL_EXISTS ||
  k === CoreReloKind.TYPE_MATCHES;

// ---- names and candidates ----

/**
 * A name without its flavor: "task_struct___v61" -> "task_struct". The flavor
 * starts at the last "___" that has a non-underscore on each side (libbpf's rule).
 */
export function essentialName(name: string): string {
  if (!name.includes("___")) return name; // most names: no flavor
  for (let i = name.length - 5; i >= 0; i--) {
    if (name.charCodeAt(i) !== 95 && name.charCodeAt(i + 1) === 95 && name.charCodeAt(i + 2) === 95 &&
      name.charCodeAt(i + 3) === 95 && name.charCodeAt(i + 4) !== 95) {
      return name.slice(0, i + 1);
    }
  }
  return name;
}

const flavoredIndexes = new WeakMap<Spec, Map<string, number[]>>();

/**
 * The target's types whose name has a flavor (`x___y`), by essential name: built once
 * per Spec, and small (a kernel has almost none).
 */
function flavoredIndex(target: Spec): Map<string, number[]> {
  let index = flavoredIndexes.get(target);
  if (!index) {
    index = new Map();
    for (const [name, ids] of target.namesContaining("___")) {
      const key = essentialName(name);
      if (key === name) continue;
      const list = index.get(key);
      if (list) list.push(...ids);
      else index.set(key, [...ids]);
    }
    flavoredIndexes.set(target, index);
  }
  return index;
}

// Functions, variables and tags are never the root of a relocation.
const NEVER_CANDIDATES = new Set<Kind>(["func", "var", "datasec", "decl_tag"]);

/**
 * The ids of every type of `target` whose essential name is `essential` (types named
 * so, and flavors of it), in id order; without reading any type.
 */
export function candidateIds(target: Spec, essential: string): number[] {
  const exact = target.typeIdsByName(essential);
  const flavored = flavoredIndex(target).get(essential);
  const ids = flavored ? [...exact, ...flavored].sort((a, b) => a - b) : exact;
  return ids.filter((id) => !NEVER_CANDIDATES.has(target.kindOf(id)));
}

const isAnyEnum = (t: Type) => t.kind === "enum" || t.kind === "enum64";
const isComposite = (t: Type) => t.kind === "struct" || t.kind === "union";
const isEnumKind = (k: Kind) => k === "enum" || k === "enum64";

/** libbpf's btf_kind_core_compat: the same kind, or both enums of either width. */
function kindsCompatible(a: Kind, b: Kind): boolean {
  return a === b || (isEnumKind(a) && isEnumKind(b));
}

/** Target types that may stand for `local` (not yet checked structurally). */
export function coreCandidates(local: Type, target: Spec): Type[] {
  return candidateIds(target, essentialName(local.name))
    .filter((id) => kindsCompatible(target.kindOf(id), local.kind))
    .map((id) => target.typeById(id));
}

// ---- specs: what an access string means in one BTF ----

interface Accessor {
  /** Named field: the (resolved) struct/union holding it. Array index: the (resolved) element type. */
  type: Type;
  idx: number;
  /** The field's name; undefined for array indices. */
  name?: string;
}

/** An access string resolved against one BTF (libbpf's bpf_core_spec). */
export interface CoreSpec {
  readonly btf: Spec;
  /** The type the relocation names (local), or the candidate it matched (target). */
  readonly root: Type;
  /** Field relocations: the named fields and array indices on the way, in order. */
  readonly accessors: Accessor[];
  /** Field relocations: the access string in this BTF (member indices of anonymous structs included). */
  readonly raw: number[];
  /** Field relocations: bits from the start of the root type to the field. */
  bitOffset: number;
}

const MAX_SPEC_LEN = 64;

function enumValues(t: Type): { name: string; value: bigint }[] {
  if (t.kind === "enum") return t.values.map((v) => ({ name: v.name, value: BigInt(v.value) }));
  if (t.kind === "enum64") return t.values;
  return [];
}

function sizeIn(btf: string, t: Type): number {
  try {
    return sizeof(t);
  } catch (err) {
    throw new CoreError(`${btf}: ${(err as Error).message}`);
  }
}

/** Parses `relo` against the local BTF; throws CoreError when it does not fit the types. */
export function parseCoreSpec(local: Spec, relo: CoreRelo): CoreSpec {
  const root = local.typeById(relo.typeId);
  const spec: CoreSpec = { btf: local, root, accessors: [], raw: [], bitOffset: 0 };
  const bad = (why: string) =>
    new CoreError(`invalid CO-RE relocation (${coreKindName(relo.kind)}) for ${describe(root)} (type ${root.id}), access "${relo.accessStr}": ${why}`);
  if (!/^\d+(:\d+)*$/.test(relo.accessStr)) throw bad("not a list of indices");
  if (isTypeKind(relo.kind)) {
    if (relo.accessStr !== "0") throw bad('type relocations have the access string "0"');
    return spec;
  }
  if (!isFieldKind(relo.kind) && !isEnumvalKind(relo.kind)) throw bad("unknown relocation kind");
  const raw = relo.accessStr.split(":").map(Number);
  if (raw.length > MAX_SPEC_LEN) throw bad(`more than ${MAX_SPEC_LEN} levels`);
  spec.raw.push(...raw);
  let t = resolve(root);
  spec.accessors.push({ type: t, idx: raw[0] });

  if (isEnumvalKind(relo.kind)) {
    const values = enumValues(t);
    if (!isAnyEnum(t) || raw.length > 1 || raw[0] >= values.length) throw bad("not an enumerator of an enum");
    spec.accessors[0].name = values[raw[0]].name;
    return spec;
  }

  spec.bitOffset = raw[0] * sizeIn("local BTF", t) * 8;
  for (let i = 1; i < raw.length; i++) {
    t = resolve(t);
    const idx = raw[i];
    if (t.kind === "struct" || t.kind === "union") {
      if (idx >= t.members.length) throw bad(`${describe(t)} has no member #${idx}`);
      const m = t.members[idx];
      spec.bitOffset += m.offset;
      if (m.name) spec.accessors.push({ type: t, idx, name: m.name });
      t = m.type;
    } else if (t.kind === "array") {
      const elem = resolve(t.type);
      const flex = isFlexArray(spec.accessors.at(-1)!, t.nelems);
      if (!flex && idx >= t.nelems) throw bad(`index ${idx} is past the end of an array of ${t.nelems}`);
      spec.accessors.push({ type: elem, idx });
      spec.bitOffset += idx * sizeIn("local BTF", elem) * 8;
      t = elem;
    } else {
      throw bad(`step ${i} reaches ${describe(t)}, which has neither members nor elements`);
    }
  }
  return spec;
}

/** A zero-length array that is the last member of its struct (`char data[]`). */
function isFlexArray(prev: Accessor, nelems: number): boolean {
  if (!prev.name || nelems > 0) return false;
  return (prev.type.kind === "struct" || prev.type.kind === "union") && prev.idx === prev.type.members.length - 1;
}

function namesMatch(local: string, target: string): boolean {
  if (target === "") return local === "";
  return essentialName(local) === essentialName(target);
}

/** libbpf's bpf_core_fields_are_compat: may a field of type `local` be read as one of type `target`? */
function fieldsCompatible(localType: Type, targetType: Type): boolean {
  for (let depth = 0; depth < 32; depth++) {
    const l = resolve(localType);
    const t = resolve(targetType);
    if (isComposite(l) && isComposite(t)) return true;
    if (!kindsCompatible(l.kind, t.kind)) return false;
    switch (l.kind) {
      case "pointer": case "float":
        return true;
      case "fwd": case "enum": case "enum64": {
        const a = essentialName(l.name);
        const b = essentialName(t.name);
        return a === "" || b === "" || a === b;
      }
      case "int":
        return l.offset === 0 && (t as typeof l).offset === 0;
      case "array":
        localType = l.type;
        targetType = (t as typeof l).type;
        continue;
      default:
        return false;
    }
  }
  throw new CoreError(`types nest too deeply to compare: ${describe(localType)} and ${describe(targetType)}`);
}

/** libbpf's bpf_core_types_are_compat (TYPE_EXISTS, TYPE_SIZE, TYPE_ID_TARGET). */
export function coreTypesCompatible(localType: Type, targetType: Type, level = 32): boolean {
  if (!kindsCompatible(localType.kind, targetType.kind)) return false;
  for (let depth = 0; depth < 32; depth++) {
    const l = resolve(localType);
    const t = resolve(targetType);
    if (!kindsCompatible(l.kind, t.kind)) return false;
    switch (l.kind) {
      case "void": case "struct": case "union": case "enum": case "enum64": case "fwd":
        return true;
      case "int":
        return l.offset === 0 && (t as typeof l).offset === 0;
      case "pointer":
        localType = l.type;
        targetType = (t as typeof l).type;
        continue;
      case "array":
        localType = l.type;
        targetType = (t as typeof l).type;
        continue;
      case "func_proto": {
        const tp = t as typeof l;
        if (l.params.length !== tp.params.length) return false;
        if (level <= 0) throw new CoreError(`function prototypes nest too deeply to compare: ${describe(l)}`);
        for (let i = 0; i < l.params.length; i++) {
          if (!coreTypesCompatible(resolve(l.params[i].type), resolve(tp.params[i].type), level - 1)) return false;
        }
        localType = l.return;
        targetType = tp.return;
        continue;
      }
      default:
        return false;
    }
  }
  throw new CoreError(`types nest too deeply to compare: ${describe(localType)} and ${describe(targetType)}`);
}

/** libbpf's bpf_core_types_match (TYPE_MATCHES: bpf_core_type_matches()). */
export function coreTypesMatch(localType: Type, targetType: Type, behindPointer = false, level = 32): boolean {
  if (level <= 0) throw new CoreError(`types nest too deeply to match: ${describe(localType)}`);
  for (let depth = 0; depth < 32; depth++) {
    const l = resolve(localType);
    const t = resolve(targetType);
    if (!namesMatch(l.name, t.name)) return false;
    switch (l.kind) {
      case "void":
        return t.kind === "void";
      case "fwd":
        if (behindPointer) {
          if (t.kind === "fwd") return l.fwdKind === t.fwdKind;
          return (t.kind === "struct" && l.fwdKind === "struct") || (t.kind === "union" && l.fwdKind === "union");
        }
        return t.kind === "fwd" && l.fwdKind === t.fwdKind;
      case "enum": case "enum64": {
        if (!isAnyEnum(t)) return false;
        if (l.size !== (t as { size: number }).size) return false;
        const lv = enumValues(l);
        const tv = enumValues(t);
        if (lv.length > tv.length) return false;
        return lv.every((v) => tv.some((w) => namesMatch(v.name, w.name)));
      }
      case "struct": case "union": {
        if (behindPointer) {
          if (l.kind === t.kind) return true;
          return t.kind === "fwd" && (l.kind === "union") === (t.fwdKind === "union");
        }
        if (l.kind !== t.kind) return false;
        const tm = (t as typeof l).members;
        if (l.members.length > tm.length) return false;
        return l.members.every((m) =>
          tm.some((n) => namesMatch(m.name, n.name) && coreTypesMatch(m.type, n.type, behindPointer, level - 1)));
      }
      case "int":
        if (t.kind !== "int") return false;
        return l.size === t.size && (l.encoding === "signed") === (t.encoding === "signed");
      case "pointer":
        if (t.kind !== "pointer") return false;
        behindPointer = true;
        localType = l.type;
        targetType = t.type;
        continue;
      case "array":
        if (t.kind !== "array" || l.nelems !== t.nelems) return false;
        localType = l.type;
        targetType = t.type;
        continue;
      case "func_proto": {
        if (t.kind !== "func_proto" || l.params.length !== t.params.length) return false;
        for (let i = 0; i < l.params.length; i++) {
          if (!coreTypesMatch(l.params[i].type, t.params[i].type, behindPointer, level - 1)) return false;
        }
        localType = l.return;
        targetType = t.return;
        continue;
      }
      default:
        return false;
    }
  }
  throw new CoreError(`types nest too deeply to match: ${describe(localType)} and ${describe(targetType)}`);
}

/**
 * Finds the local field `acc` names in the target composite `targetType`,
 * descending into anonymous members; extends `spec` on the way. Returns the
 * field's type when found (and compatible), undefined otherwise.
 */
function matchMember(local: Accessor, targetType: Type, spec: CoreSpec): Type | undefined {
  const t = resolve(targetType);
  if (t.kind !== "struct" && t.kind !== "union") return undefined;
  const localMember = (local.type as { members: Member[] }).members[local.idx];
  for (let i = 0; i < t.members.length; i++) {
    const m = t.members[i];
    if (spec.raw.length >= MAX_SPEC_LEN) throw new CoreError(`${describe(t)} nests more than ${MAX_SPEC_LEN} levels deep`);
    spec.bitOffset += m.offset;
    spec.raw.push(i);
    if (m.name === "") {
      const found = matchMember(local, m.type, spec);
      if (found) return found;
    } else if (m.name === localMember.name) {
      if (fieldsCompatible(localMember.type, m.type)) {
        spec.accessors.push({ type: t, idx: i, name: m.name });
        return m.type;
      }
      spec.bitOffset -= m.offset;
      spec.raw.pop();
      return undefined;
    }
    spec.bitOffset -= m.offset;
    spec.raw.pop();
  }
  return undefined;
}

/** Matches a local spec against one candidate: the target spec, or undefined when it does not match. */
export function matchCoreSpec(local: CoreSpec, kind: number, target: Spec, candidate: Type): CoreSpec | undefined {
  const spec: CoreSpec = { btf: target, root: candidate, accessors: [], raw: [], bitOffset: 0 };
  if (isTypeKind(kind)) {
    const ok = kind === CoreReloKind.TYPE_MATCHES ? coreTypesMatch(local.root, candidate) : coreTypesCompatible(local.root, candidate);
    return ok ? spec : undefined;
  }
  if (isEnumvalKind(kind)) {
    const t = resolve(candidate);
    if (!isAnyEnum(t)) return undefined;
    const want = essentialName(local.accessors[0].name!);
    const values = enumValues(t);
    const idx = values.findIndex((v) => essentialName(v.name) === want);
    if (idx < 0) return undefined;
    spec.accessors.push({ type: t, idx, name: values[idx].name });
    spec.raw.push(idx);
    return spec;
  }
  let targetType: Type = candidate;
  for (let i = 0; i < local.accessors.length; i++) {
    const acc = local.accessors[i];
    let t = resolve(targetType);
    if (acc.name !== undefined) {
      const next = matchMember(acc, t, spec);
      if (!next) return undefined;
      targetType = next;
      continue;
    }
    if (i > 0) {
      if (t.kind !== "array") return undefined;
      const flex = isFlexArray(spec.accessors.at(-1)!, t.nelems);
      if (!flex && acc.idx >= t.nelems) return undefined;
      t = resolve(t.type);
    }
    if (spec.raw.length >= MAX_SPEC_LEN) throw new CoreError(`${describe(candidate)} nests more than ${MAX_SPEC_LEN} levels deep`);
    spec.accessors.push({ type: t, idx: acc.idx });
    spec.raw.push(acc.idx);
    spec.bitOffset += acc.idx * sizeIn("target BTF", t) * 8;
    targetType = t;
  }
  return spec;
}

// ---- values ----

/** What one relocation computes: the value the compiler put in and the one the target needs. */
export interface CoreResult {
  /** The value for the local BTF (what the instruction should hold now). */
  local: bigint;
  /** The value for the target BTF. */
  target: bigint;
  /** Nothing in the target satisfies the relocation: the instruction becomes a call to helper 0xbad2310. */
  poison: boolean;
  /** Whether the instruction's current value must equal `local` (not for bitfields, type ids). */
  validate: boolean;
  /** FIELD_BYTE_OFFSET of a non-bitfield: the field's size (a load's width), local and target. */
  localSize: number;
  targetSize: number;
  /** Sizes differ and the load cannot simply be narrowed or widened (signed ints, structs...). */
  badSizeChange: boolean;
  /** The target spec (undefined when nothing matched). */
  spec?: CoreSpec;
  /** The local spec: what the relocation names. */
  localSpec: CoreSpec;
  /** The target types with the same essential name, and how many of them matched. */
  candidates: Type[];
  matched: number;
}

interface FieldValue {
  value: bigint;
  size: number;
  type?: Type;
  validate: boolean;
}

function fieldValue(kind: number, spec: CoreSpec | undefined, where: string): FieldValue | "poison" {
  if (kind === CoreReloKind.FIELD_EXISTS) return { value: spec ? 1n : 0n, size: 0, validate: true };
  if (!spec) return "poison";
  const acc = spec.accessors.at(-1)!;
  if (acc.name === undefined) {
    // a[n]: the element itself.
    const size = sizeIn(where, acc.type);
    if (kind === CoreReloKind.FIELD_BYTE_OFFSET) return { value: BigInt(spec.bitOffset / 8), size, type: acc.type, validate: true };
    if (kind === CoreReloKind.FIELD_BYTE_SIZE) return { value: BigInt(size), size: 0, validate: true };
    throw new CoreError(`${coreKindName(kind)} cannot be applied to an array element`);
  }
  const m = (acc.type as { members: Member[] }).members[acc.idx];
  const mt = resolve(m.type);
  const bitOff = spec.bitOffset;
  let bitSize = m.bitfieldSize;
  const bitfield = bitSize > 0;
  let byteSize: number;
  let byteOff: number;
  if (bitfield) {
    byteSize = "size" in mt && typeof mt.size === "number" ? mt.size : sizeIn(where, mt);
    if (!(byteSize > 0)) throw new CoreError(`bitfield ${m.name} has a type of ${byteSize} bytes`);
    byteOff = Math.floor(bitOff / 8 / byteSize) * byteSize;
    // The smallest load (up to 8 bytes) that covers the bitfield.
    while (bitOff + bitSize - byteOff * 8 > byteSize * 8) {
      if (byteSize >= 8) throw new CoreError(`bitfield ${m.name} cannot be read with one 64-bit load`);
      byteSize *= 2;
      byteOff = Math.floor(bitOff / 8 / byteSize) * byteSize;
    }
  } else {
    byteSize = sizeIn(where, mt);
    byteOff = Math.floor(bitOff / 8);
    bitSize = byteSize * 8;
  }
  switch (kind) {
    case CoreReloKind.FIELD_BYTE_OFFSET:
      return bitfield ? { value: BigInt(byteOff), size: 0, validate: false } : { value: BigInt(byteOff), size: byteSize, type: mt, validate: true };
    case CoreReloKind.FIELD_BYTE_SIZE:
      return { value: BigInt(byteSize), size: 0, validate: !bitfield };
    case CoreReloKind.FIELD_SIGNED: {
      const signed = (isAnyEnum(mt) && (mt as { signed: boolean }).signed) || (mt.kind === "int" && mt.encoding === "signed");
      return { value: signed ? 1n : 0n, size: 0, validate: true };
    }
    case CoreReloKind.FIELD_LSHIFT_U64: // little-endian
      return { value: BigInt(64 - (bitOff + bitSize - byteOff * 8)), size: 0, validate: !bitfield };
    case CoreReloKind.FIELD_RSHIFT_U64:
      return { value: BigInt(64 - bitSize), size: 0, validate: true };
    default:
      throw new CoreError(`unknown relocation kind ${kind}`);
  }
}

function typeValue(kind: number, spec: CoreSpec | undefined, where: string): bigint {
  if (!spec) return 0n;
  switch (kind) {
    case CoreReloKind.TYPE_ID_TARGET:
    case CoreReloKind.TYPE_ID_LOCAL:
      return BigInt(spec.root.id);
    case CoreReloKind.TYPE_EXISTS:
    case CoreReloKind.TYPE_MATCHES:
      return 1n;
    case CoreReloKind.TYPE_SIZE:
      return BigInt(sizeIn(where, spec.root));
    default:
      throw new CoreError(`unknown relocation kind ${kind}`);
  }
}

function enumValue(kind: number, spec: CoreSpec | undefined): bigint | "poison" {
  if (kind === CoreReloKind.ENUMVAL_EXISTS) return spec ? 1n : 0n;
  if (!spec) return "poison";
  return enumValues(spec.accessors[0].type)[spec.accessors[0].idx].value;
}

/** The result for one target spec (or none: nothing matched). */
function calculate(kind: number, local: CoreSpec, target: CoreSpec | undefined): Omit<CoreResult, "candidates" | "matched" | "localSpec"> {
  const res = { local: 0n, target: 0n, poison: false, validate: true, localSize: 0, targetSize: 0, badSizeChange: false, spec: target };
  if (isFieldKind(kind)) {
    const l = fieldValue(kind, local, "local BTF");
    if (l === "poison") throw new CoreError("the local BTF does not have the field");
    res.local = l.value;
    res.localSize = l.size;
    res.validate = l.validate;
    const t = fieldValue(kind, target, "target BTF");
    if (t === "poison") return { ...res, poison: true };
    res.target = t.value;
    res.targetSize = t.size;
    if (l.size !== t.size) {
      // Loads may be resized only where zero-extension keeps the value: pointers, unsigned ints.
      const lt = l.type && resolve(l.type);
      const tt = t.type && resolve(t.type);
      const ok = (lt?.kind === "pointer" && tt?.kind === "pointer") ||
        (lt?.kind === "int" && tt?.kind === "int" && lt.encoding !== "signed" && tt.encoding !== "signed");
      res.badSizeChange = !ok;
    }
  } else if (isTypeKind(kind)) {
    res.local = typeValue(kind, local, "local BTF");
    res.target = typeValue(kind, target, "target BTF");
    res.validate = kind !== CoreReloKind.TYPE_ID_TARGET; // ids change when objects are linked
  } else if (isEnumvalKind(kind)) {
    const l = enumValue(kind, local);
    if (l === "poison") throw new CoreError("the local BTF does not have the enumerator");
    res.local = l;
    const t = enumValue(kind, target);
    if (t === "poison") return { ...res, poison: true };
    res.target = t;
  } else {
    throw new CoreError(`unknown relocation kind ${kind}`);
  }
  return res;
}

/** Caches candidate lists per local root type across the relocations of one object. */
export type CandidateCache = Map<Type, Type[]>;

/** The module BTF a candidate came from, when it is not the target's own (types are objects of one Spec). */
const moduleOf = new WeakMap<Type, Spec>();

/**
 * Candidates for `root`: the target's; when it has none, the types of that name that
 * the kernel's modules define (libbpf's bpf_core_find_cands: modules only when vmlinux
 * has no candidate, each module's own types).
 */
function findCandidates(root: Type, target: Spec, modules?: () => readonly Spec[]): Type[] {
  const found = coreCandidates(root, target);
  if (found.length || !modules) return found;
  for (const m of modules()) {
    for (const t of coreCandidates(root, m)) {
      if (t.id < m.firstOwnId) continue;
      moduleOf.set(t, m);
      found.push(t);
    }
  }
  return found;
}

/**
 * Computes one relocation against `target` (no instruction involved).
 * Throws CoreError for malformed or ambiguous relocations.
 */
export function calculateCoreRelocation(
  local: Spec, relo: CoreRelo, target: Spec, cache?: CandidateCache, modules?: () => readonly Spec[],
): CoreResult {
  const localSpec = parseCoreSpec(local, relo);
  if (relo.kind === CoreReloKind.TYPE_ID_LOCAL) {
    const id = BigInt(relo.typeId);
    return { local: id, target: id, poison: false, validate: false, localSize: 0, targetSize: 0, badSizeChange: false, localSpec, candidates: [], matched: 0 };
  }
  const root = localSpec.root;
  if (root.name === "") {
    throw new CoreError(`CO-RE relocation (${coreKindName(relo.kind)}) against ${describe(root)} (type ${root.id}): anonymous types cannot be looked up`);
  }
  let candidates = cache?.get(root);
  if (!candidates) {
    candidates = findCandidates(root, target, modules);
    cache?.set(root, candidates);
  }
  let best: Omit<CoreResult, "candidates" | "matched" | "localSpec"> | undefined;
  let matched = 0;
  for (const candidate of candidates) {
    const spec = matchCoreSpec(localSpec, relo.kind, moduleOf.get(candidate) ?? target, candidate);
    if (!spec) continue;
    const res = calculate(relo.kind, localSpec, spec);
    if (best) {
      if (isFieldKind(relo.kind) && spec.bitOffset !== best.spec!.bitOffset) {
        throw new CoreError(
          `${describeCore(localSpec, relo.kind)} is ambiguous: ${describe(best.spec!.root)} (type ${best.spec!.root.id}) has it at bit ${best.spec!.bitOffset}, ` +
            `${describe(candidate)} (type ${candidate.id}) at bit ${spec.bitOffset}`,
        );
      }
      if (res.poison !== best.poison || res.target !== best.target) {
        throw new CoreError(
          `${describeCore(localSpec, relo.kind)} is ambiguous: type ${best.spec!.root.id} gives ${best.poison ? "nothing" : best.target}, ` +
            `type ${candidate.id} gives ${res.poison ? "nothing" : res.target}`,
        );
      }
    } else {
      best = res;
    }
    matched++;
  }
  best ??= calculate(relo.kind, localSpec, undefined);
  return { ...best, localSpec, candidates, matched };
}

/** "struct task_struct field real_parent", "enum bpf_map_type value BPF_MAP_TYPE_RINGBUF", "struct foo". */
export function describeCore(spec: CoreSpec, kind: number): string {
  const root = describe(spec.root);
  if (isTypeKind(kind)) return root;
  if (isEnumvalKind(kind)) return `${root} value ${spec.accessors[0].name}`;
  let path = "";
  spec.accessors.forEach((a, i) => {
    if (a.name !== undefined) path += `${path ? "." : ""}${a.name}`;
    else if (i > 0 || a.idx > 0) path += `[${a.idx}]`;
  });
  return path ? `${root} field ${path}` : root;
}

// ---- instructions ----

/** A relocation of one program: instruction index in the program, and the record. */
export interface ProgramCoreRelo extends Pick<CoreRelo, "typeId" | "accessStr" | "kind"> {
  /** Index of the relocated instruction in the (linked) program. */
  insn: number;
}

/** What was done to one instruction. */
export interface CoreFixup {
  insn: number;
  kind: string;
  /** "struct task_struct field real_parent" */
  what: string;
  /** The value the compiler used, and the one patched in (undefined when poisoned). */
  local: bigint;
  target?: bigint;
  poisoned: boolean;
  /** Why it was poisoned. */
  reason?: string;
  /** A message naming the program, the relocation and why, for poisoned relocations. */
  warning?: string;
}

export interface CoreRelocateOptions {
  /** Program name, for messages. */
  program?: string;
  /** "kernel BTF", a path...: what the target is called in messages. */
  targetName?: string;
  cache?: CandidateCache;
  /** The BTF of the target kernel's modules, searched for a type the target lacks (asked for only then). */
  modules?: () => readonly Spec[];
}

const BPF_LD = 0x00, BPF_LDX = 0x01, BPF_ST = 0x02, BPF_STX = 0x03, BPF_ALU = 0x04, BPF_ALU64 = 0x07;
const SIZE_BYTES: Record<number, number> = { 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 };
const BYTES_SIZE: Record<number, number> = { 4: 0x00, 2: 0x08, 1: 0x10, 8: 0x18 };

/**
 * Applies CO-RE relocations to a program's instructions in place. Returns one
 * fixup per relocation; poisoned ones carry a `warning`. Throws CoreError when
 * a relocation is malformed, ambiguous or does not fit its instruction.
 */
export function coreRelocate(insns: Instructions, relos: readonly ProgramCoreRelo[], local: Spec, target: Spec, opts: CoreRelocateOptions = {}): CoreFixup[] {
  const cache = opts.cache ?? new Map();
  const program = opts.program ? `program ${opts.program}: ` : "";
  const targetName = opts.targetName ?? "the target BTF";
  return relos.map((relo, n) => {
    const at = `${program}CO-RE relocation #${n} (${coreKindName(relo.kind)}) at instruction ${relo.insn}`;
    let res: CoreResult;
    let what: string;
    try {
      if (relo.insn < 0 || relo.insn >= insns.length) throw new CoreError(`the program has ${insns.length} instructions`);
      const record = { insnOff: relo.insn * 8, typeId: relo.typeId, accessStr: relo.accessStr, accessStrOff: 0, kind: relo.kind };
      res = calculateCoreRelocation(local, record, target, cache, opts.modules);
      what = describeCore(res.localSpec, relo.kind);
    } catch (err) {
      if (err instanceof CoreError || (err as Error).name === "BtfError") throw new CoreError(`${at}: ${(err as Error).message}`);
      throw err;
    }
    const fixup: CoreFixup = { insn: relo.insn, kind: coreKindName(relo.kind), what, local: res.local, poisoned: false };
    const poison = (reason: string) => {
      if (insns.isLdImm64(relo.insn) && relo.insn + 1 < insns.length) insns.poison(relo.insn + 1, CORE_POISON);
      insns.poison(relo.insn, CORE_POISON);
      fixup.poisoned = true;
      fixup.reason = reason;
      fixup.warning = `${program}CO-RE relocation for ${what} (${fixup.kind}, instruction ${relo.insn}): ${reason}; ` +
        `the instruction is poisoned, and the verifier rejects the program if it can run`;
      return fixup;
    };
    if (res.poison) return poison(notFoundReason(res, relo.kind, targetName));
    const fail = (why: string): never => {
      throw new CoreError(`${at} for ${what}: ${why} (instruction ${insnText(insns, relo.insn)})`);
    };
    const code = insns.code(relo.insn);
    const cls = code & 0x07;
    switch (cls) {
      case BPF_ALU:
      case BPF_ALU64: {
        if ((code & 0x08) !== 0) fail("an ALU instruction with a register source has no constant to relocate");
        const imm = insns.imm(relo.insn);
        if (res.validate && BigInt.asUintN(32, BigInt(imm)) !== BigInt.asUintN(32, res.local)) {
          fail(`the instruction's constant is ${imm}, the local BTF says ${res.local}`);
        }
        insns.setImm(relo.insn, Number(BigInt.asIntN(32, res.target)));
        break;
      }
      case BPF_LDX:
      case BPF_ST:
      case BPF_STX: {
        const off = insns.off(relo.insn);
        if (res.validate && BigInt(off) !== res.local) fail(`the instruction's offset is ${off}, the local BTF says ${res.local}`);
        if (res.target > 0x7fffn) fail(`offset ${res.target} does not fit an instruction's 16-bit offset`);
        if (res.badSizeChange) {
          return poison(
            `the field is ${res.targetSize} bytes in ${targetName} but ${res.localSize} in the object, and a load of another ` +
              `width would change its value (only loads of pointers and unsigned integers are resized)`,
          );
        }
        insns.setOff(relo.insn, Number(res.target));
        if (res.localSize !== res.targetSize) {
          const width = SIZE_BYTES[code & 0x18];
          if (width !== res.localSize) fail(`the instruction accesses ${width} bytes, the local field is ${res.localSize}`);
          const size = BYTES_SIZE[res.targetSize];
          if (size === undefined) fail(`the field is ${res.targetSize} bytes in ${targetName}: no load has that width`);
          insns.setCode(relo.insn, (code & 0xe0) | size | cls);
        }
        break;
      }
      case BPF_LD: {
        const i = relo.insn;
        const ok = insns.isLdImm64(i) && i + 1 < insns.length && insns.src(i) === 0 && insns.off(i) === 0 &&
          insns.code(i + 1) === 0 && insns.dst(i + 1) === 0 && insns.src(i + 1) === 0 && insns.off(i + 1) === 0;
        if (!ok) fail("not a plain 64-bit constant load");
        const imm = BigInt.asUintN(64, BigInt(insns.imm(i) >>> 0) | (BigInt(insns.imm(i + 1)) << 32n));
        if (res.validate && imm !== BigInt.asUintN(64, res.local)) fail(`the instruction's constant is ${imm}, the local BTF says ${res.local}`);
        const value = BigInt.asUintN(64, res.target);
        insns.setImm(i, Number(BigInt.asIntN(32, value)));
        insns.setImm(i + 1, Number(BigInt.asIntN(32, value >> 32n)));
        break;
      }
      default:
        fail("instructions of this class carry no relocatable value");
    }
    fixup.target = res.target;
    return fixup;
  });
}

/** Why a relocation found nothing: no type of that name, or no such field/value in it. */
function notFoundReason(res: CoreResult, kind: number, targetName: string): string {
  const root = res.localSpec.root;
  const plain = essentialName(root.name);
  const named = describe({ ...root, name: plain } as Type);
  if (res.candidates.length === 0) return `not found in ${targetName}, which has no ${named}`;
  if (isEnumvalKind(kind)) return `not found in ${targetName}: its ${named} has no value ${essentialName(res.localSpec.accessors[0].name!)}`;
  const path = describeCore(res.localSpec, kind).split(" field ")[1];
  return `not found in ${targetName}: its ${named} has no field ${path} of a compatible type`;
}

function insnText(insns: Instructions, i: number): string {
  if (i < 0 || i >= insns.length) return "out of range";
  return `code 0x${insns.code(i).toString(16)} dst r${insns.dst(i)} src r${insns.src(i)} off ${insns.off(i)} imm ${insns.imm(i)}`;
}

/** Whether a relocation kind only asks if something exists (never poisons). */
export function isCoreExistenceCheck(kind: number): boolean {
  return isExistence(kind);
}
