// TypeScript declarations for BTF types: the shapes the BTF codec (btf/codec-gen.ts)
// decodes values into, so that generated interfaces say exactly what a map lookup,
// a ring buffer record or a global variable is at run time.
//
//   int of 1, 2 or 4 bytes, float/double   number
//   int of 8 or 16 bytes, pointer           bigint
//   _Bool (bool)                            boolean
//   enum (named)                            a union of its values, with a const object of them
//   enum (anonymous)                        number (bigint when 8 bytes)
//   char[N] (char / signed / unsigned)      string (up to the first NUL)
//   other T[N]                              T[]; a zero-length array is []
//   struct / union (named)                  an interface, members by their C names
//   struct / union (anonymous member)       its members, flattened into the parent
//   struct / union (anonymous, named one)   an inline object type
//   bitfields                               as their base type
import type { Spec } from "../btf/spec.ts";
import { resolve, sizeof, type Array as ArrayType, type Enum, type Enum64, type Member, type Struct, type Type, type Union } from "../btf/types.ts";
import type { ObjectSpec } from "../object/spec.ts";
import { ObjectError } from "../object/errors.ts";

/** A struct, union or enum that can be declared under a name of its own. */
export type Declarable = Struct | Union | Enum | Enum64;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Names generated code (or TypeScript itself) uses: a type of the object never takes them. */
const GLOBALS = [
  "Array", "BigInt", "Boolean", "Error", "Function", "Iterable", "IterableIterator", "Map", "Number",
  "Object", "Partial", "Promise", "Readonly", "Record", "Set", "String", "Symbol", "URL", "Uint8Array",
  "Disposable", "DataView", "ArrayBuffer", "Omit", "Pick", "Required",
];

/** `snake_case` (or `__sk_buff`) -> `PascalCase` (`SkBuff`). */
export function pascalCase(cName: string): string {
  const parts = cName.split(/[^A-Za-z0-9]+/).filter((p) => p !== "");
  let name = parts.map((p) => p[0]!.toUpperCase() + p.slice(1)).join("");
  if (name === "") name = "Anonymous";
  if (/^[0-9]/.test(name)) name = `T${name}`;
  return name;
}

/** A property key: bare when it is an identifier, quoted otherwise. */
export function propertyKey(name: string): string {
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

function isDeclarable(t: Type): t is Declarable {
  return t.kind === "struct" || t.kind === "union" || t.kind === "enum" || t.kind === "enum64";
}

/** char[N] the way the codec decides it (char / signed char / unsigned char or CHAR encoding; not __u8 alone). */
function isCharArray(t: ArrayType): boolean {
  let e = t.type;
  while (e.kind === "const" || e.kind === "volatile" || e.kind === "restrict" || e.kind === "type_tag") e = e.type;
  return e.kind === "int" && e.size === 1 && e.encoding !== "bool" &&
    (e.encoding === "char" || e.name === "char" || e.name === "signed char" || e.name === "unsigned char");
}

/** "u32", "struct event", "const volatile u64", "char *" — a C spelling of a type, for comments. */
export function cTypeName(type: Type, depth = 0): string {
  if (depth > 32) return "…";
  const t = type;
  switch (t.kind) {
    case "void": return "void";
    case "int": case "float": case "typedef": return t.name;
    case "const": case "volatile": case "restrict": return `${t.kind} ${cTypeName(t.type, depth + 1)}`;
    case "type_tag": return cTypeName(t.type, depth + 1);
    case "pointer": {
      const inner = cTypeName(t.type, depth + 1);
      return inner.endsWith("*") ? `${inner}*` : `${inner} *`;
    }
    case "array": {
      let dims = "";
      let e: Type = t;
      while (e.kind === "array") {
        dims += `[${e.nelems}]`;
        e = e.type;
      }
      return `${cTypeName(e, depth + 1)}${dims}`;
    }
    case "struct": case "union": return t.name ? `${t.kind} ${t.name}` : `${t.kind} {...}`;
    case "enum": case "enum64": return t.name ? `enum ${t.name}` : "enum {...}";
    case "fwd": return `${t.fwdKind} ${t.name}`;
    case "func_proto": return "function";
    case "var": case "func": case "datasec": case "decl_tag": return t.name;
  }
}

/** A C declaration of `name` with `type`: "char comm[16]", "u64 *ptr", "u32 flag:1". */
export function cDeclaration(type: Type, name: string, bitfieldSize = 0): string {
  let dims = "";
  let t = type;
  while (t.kind === "array") {
    dims += `[${t.nelems}]`;
    t = t.type;
  }
  const base = cTypeName(t);
  const sep = base.endsWith("*") ? "" : " ";
  return `${base}${sep}${name}${dims}${bitfieldSize ? `:${bitfieldSize}` : ""}`;
}

function docComment(text: string, indent: string): string {
  return `${indent}/** ${text.replace(/\*\//g, "*\\/")} */`;
}

/**
 * TypeScript names and declarations for the types of one BTF spec. Names are
 * assigned to every named struct, union and enum up front (structs first, then
 * unions, then enums, each in BTF order), so a type's name does not depend on
 * which types a generator asks for. Anonymous ones behind a typedef take its name.
 */
export class TypeScriptTypes {
  readonly btf: Spec;
  readonly #names = new Map<Type, string>();
  /** The C name a declarable type is known by ("struct event", "typedef foo_t"). */
  readonly #cNames = new Map<Type, string>();
  readonly #declared = new Map<Type, string>();
  readonly #used = new Set<string>();
  readonly #order: Declarable[] = [];

  /** `reserved`: names the surrounding module declares itself. */
  constructor(btf: Spec, reserved: Iterable<string> = []) {
    this.btf = btf;
    for (const n of [...GLOBALS, ...reserved]) this.#used.add(n);
    const byKind: Record<string, Declarable[]> = { struct: [], union: [], enum: [] };
    const aliased: [Declarable, string][] = [];
    for (const t of btf.types) {
      if (isDeclarable(t) && t.name !== "") byKind[t.kind === "enum64" ? "enum" : t.kind]!.push(t);
      if (t.kind === "typedef") {
        let target = t.type;
        for (let i = 0; i < 32 && (target.kind === "const" || target.kind === "volatile" || target.kind === "type_tag"); i++) target = target.type;
        if (isDeclarable(target) && target.name === "") aliased.push([target, t.name]);
      }
    }
    const suffix: Record<string, string> = { struct: "Struct", union: "Union", enum: "Enum", enum64: "Enum" };
    for (const t of [...byKind.struct!, ...byKind.union!, ...byKind.enum!]) {
      this.#assign(t, pascalCase(t.name), suffix[t.kind]!, `${t.kind === "enum64" ? "enum" : t.kind} ${t.name}`);
    }
    for (const [t, alias] of aliased) {
      if (!this.#names.has(t)) this.#assign(t, pascalCase(alias), "Type", `typedef ${alias} (${cTypeName(t)})`);
    }
  }

  #assign(t: Declarable, base: string, suffix: string, cName: string): void {
    let name = base;
    if (this.#used.has(name)) name = `${base}${suffix}`;
    for (let i = 2; this.#used.has(name); i++) name = `${base}${suffix}${i}`;
    this.#used.add(name);
    this.#names.set(t, name);
    this.#cNames.set(t, cName);
    this.#order.push(t);
  }

  /** Every struct, union and enum with a name (its own or a typedef's), in declaration order. */
  declarable(): Declarable[] {
    return [...this.#order];
  }

  /** The TypeScript name of a declarable type (undefined for anonymous ones). */
  nameOf(t: Type): string | undefined {
    return this.#names.get(t);
  }

  /** The C name of a declarable type, e.g. "struct event". */
  cNameOf(t: Type): string | undefined {
    return this.#cNames.get(t);
  }

  /**
   * The declarable type a user means by `name`: "event", "struct event",
   * "enum kind", a typedef's name, or the TypeScript name ("Event").
   */
  find(name: string, source = "the object"): Declarable {
    const m = /^(struct|union|enum)\s+(.+)$/.exec(name.trim());
    const kind = m?.[1];
    const bare = m ? m[2]! : name.trim();
    const candidates = this.#order.filter((t) => {
      const c = this.#cNames.get(t)!;
      const tKind = t.kind === "enum64" ? "enum" : t.kind;
      if (kind && kind !== tKind) return false;
      return t.name === bare || c === `${tKind} ${bare}` || c.startsWith(`typedef ${bare} (`) || (!kind && this.#names.get(t) === bare);
    });
    if (candidates.length === 0) {
      const known = this.#order.map((t) => this.#cNames.get(t)!);
      const shown = known.slice(0, 30).join(", ") + (known.length > 30 ? `, … (${known.length} in all)` : "");
      throw new ObjectError(`no struct, union or enum named "${name}" in ${source}'s BTF${known.length ? `; it has: ${shown}` : " (it has none)"}`);
    }
    return candidates[0]!;
  }

  /** Declares `t` (and what it refers to) and returns its TypeScript name. */
  declare(t: Declarable): string {
    const name = this.#names.get(t);
    if (name === undefined) throw new Error(`${cTypeName(t)} has no name to declare it under`);
    if (this.#declared.has(t)) return name;
    this.#declared.set(t, ""); // placed first: a type is declared before the types it uses
    this.#declared.set(t, t.kind === "enum" || t.kind === "enum64" ? this.#enumText(t, name) : this.#compositeText(t, name));
    return name;
  }

  /** Whether `t` was declared. */
  isDeclared(t: Type): boolean {
    return this.#declared.has(t);
  }

  /** The declarations so far, each a block of text, in the order they were made. */
  declarations(): string[] {
    return [...this.#declared.values()];
  }

  /** Declared structs and unions (what codecs can be made for), with their TypeScript names. */
  declaredComposites(): { type: Struct | Union; name: string; cName: string }[] {
    const out: { type: Struct | Union; name: string; cName: string }[] = [];
    for (const t of this.#declared.keys()) {
      if (t.kind === "struct" || t.kind === "union") out.push({ type: t, name: this.#names.get(t)!, cName: this.#cNames.get(t)! });
    }
    return out;
  }

  /**
   * The TypeScript type of a decoded value of `type`: a name (declaring what it
   * refers to) or a type expression. `indent` is where inline object types start.
   */
  typeOf(type: Type, indent = "", depth = 0): string {
    if (depth > 64) return "unknown";
    const t = resolve(type);
    switch (t.kind) {
      case "int":
        if (t.encoding === "bool") return "boolean";
        return t.size >= 8 ? "bigint" : "number";
      case "enum": case "enum64":
        if (this.#names.has(t)) return this.declare(t);
        return t.size >= 8 ? "bigint" : "number";
      case "pointer":
        return "bigint";
      case "float":
        return t.size === 4 || t.size === 8 ? "number" : "Uint8Array";
      case "array": {
        if (t.nelems === 0) return "[]";
        if (isCharArray(t)) return "string";
        const elem = this.typeOf(t.type, indent, depth + 1);
        return /^[^{].*[|&]/.test(elem) ? `(${elem})[]` : `${elem}[]`;
      }
      case "struct": case "union":
        if (this.#names.has(t)) return this.declare(t);
        return this.#inline(t, indent, depth);
      case "datasec": {
        const lines: string[] = [];
        for (const v of t.vars) {
          lines.push(docComment(cDeclaration(v.type.kind === "var" ? v.type.type : v.type, v.type.name), `${indent}  `));
          lines.push(`${indent}  ${propertyKey(v.type.name)}: ${this.typeOf(v.type, `${indent}  `, depth + 1)};`);
        }
        return lines.length ? `{\n${lines.join("\n")}\n${indent}}` : "{}";
      }
      case "var":
        return this.typeOf(t.type, indent, depth + 1);
      default:
        // void, fwd (only ever behind a pointer), functions: not values the codec decodes.
        return "unknown";
    }
  }

  #inline(t: Struct | Union, indent: string, depth: number): string {
    const lines = this.#members(t, `${indent}  `, depth + 1, "");
    return lines.length ? `{\n${lines.join("\n")}\n${indent}}` : "{}";
  }

  /** Member lines (a doc comment and a property each), anonymous struct/union members flattened. */
  #members(t: Struct | Union, indent: string, depth: number, via: string): string[] {
    const lines: string[] = [];
    for (const m of t.members) {
      const mt = resolve(m.type);
      if (m.name === "") {
        // The codec flattens anonymous struct/union members into the parent, as C does; unnamed bitfields are padding.
        if ((mt.kind === "struct" || mt.kind === "union") && m.bitfieldSize === 0) {
          lines.push(...this.#members(mt, indent, depth + 1, `${via}in an anonymous ${mt.kind}; `));
        }
        continue;
      }
      lines.push(docComment(`${via}${cDeclaration(m.type, m.name, bitfieldSize(m))}`, indent));
      lines.push(`${indent}${propertyKey(m.name)}: ${this.typeOf(m.type, indent, depth + 1)};`);
    }
    return lines;
  }

  #compositeText(t: Struct | Union, name: string): string {
    const cName = this.#cNames.get(t)!;
    const members = this.#members(t, "  ", 0, "");
    const what = t.kind === "union" ? `${cName} (${t.size} bytes; decoded with every member)` : `${cName} (${t.size} bytes)`;
    if (members.length === 0) return `${docComment(what, "")}\nexport interface ${name} {}`;
    return `${docComment(what, "")}\nexport interface ${name} {\n${members.join("\n")}\n}`;
  }

  #enumText(t: Enum | Enum64, name: string): string {
    const cName = this.#cNames.get(t)!;
    const big = t.size >= 8;
    const literal = (v: number | bigint) => (big ? `${BigInt(v)}n` : String(v));
    if (t.values.length === 0) {
      return `${docComment(`${cName} (no values known)`, "")}\nexport type ${name} = ${big ? "bigint" : "number"};`;
    }
    if (t.kind === "enum" && big) {
      // A BTF_KIND_ENUM holds 32-bit values: an 8-byte enum's may have been cut (clang before 15 has no ENUM64).
      return `${docComment(`${cName} (8 bytes; its enumerators' values do not fit in BTF_KIND_ENUM, so only the type is known)`, "")}\nexport type ${name} = bigint;`;
    }
    const entries = t.values.map((v) => `  ${propertyKey(v.name)}: ${literal(v.value)},`);
    return [
      docComment(`${cName}: its enumerators`, ""),
      `export const ${name} = {`,
      ...entries,
      "} as const;",
      docComment(`${cName}: one of its enumerators' values (a ${big ? "bigint" : "number"} at run time)`, ""),
      `export type ${name} = (typeof ${name})[keyof typeof ${name}];`,
    ].join("\n");
  }
}

function bitfieldSize(m: Member): number {
  if (m.bitfieldSize > 0) return m.bitfieldSize;
  const base = resolve(m.type);
  return base.kind === "int" && (base.offset !== 0 || base.bits !== base.size * 8) ? base.bits : 0;
}

/** What `generateTypes` writes. */
export interface TypesOptions {
  /** Only these types (and what they refer to): "event", "struct event", "enum kind", "Event". Default: every named one. */
  types?: string[];
  /** The input's name, for the header. */
  source?: string;
}

export function generatedHeader(what: string, source: string): string {
  return `// Generated by tsbpf gen ${what} from ${source}, do not edit.\n`;
}

/** The object's BTF, or an error saying how to get it. */
export function btfOf(spec: ObjectSpec): Spec {
  if (!spec.btf) throw new ObjectError(`${spec.source} has no BTF: compile it with -g (tsbpf's compile() does)`);
  return spec.btf;
}

/**
 * TypeScript declarations (interfaces, enum const objects) for the structs,
 * unions and enums of an object's BTF: every named one, or the ones asked for.
 */
export function generateTypes(spec: ObjectSpec, opts: TypesOptions = {}): string {
  const ts = new TypeScriptTypes(btfOf(spec));
  const roots = opts.types?.length ? opts.types.map((n) => ts.find(n, spec.source)) : ts.declarable();
  for (const t of roots) ts.declare(t);
  const body = ts.declarations();
  return `${generatedHeader("types", opts.source ?? spec.source)}${
    "// The shapes tsbpf's BTF codecs decode these types into (map keys and values, ring and\n" +
    "// perf buffer records, global variables).\n"
  }\n${body.join("\n\n")}${body.length ? "\n" : ""}`;
}

/** `sizeof` that gives undefined instead of throwing on types without a size. */
export function sizeOrUndefined(t: Type): number | undefined {
  try {
    return sizeof(t);
  } catch {
    return undefined;
  }
}
