// tsbpf gen skeleton: a TypeScript module for one BPF object, like libbpf's
// skeletons: `load(options)` gives typed programs, maps, global variables and
// record codecs. The module is all types over gen/runtime.ts, which does the work.
import { createHash } from "node:crypto";
import { MapType } from "../internal/sys/constants.ts";
import { traitsOf } from "../maps/traits.ts";
import type { MapSpec } from "../object/maps.ts";
import type { ObjectSpec } from "../object/spec.ts";
import { btfOf, cDeclaration, cTypeName, generatedHeader, propertyKey, sizeOrUndefined, TypeScriptTypes } from "./types.ts";

export interface SkeletonOptions {
  /** The object's bytes: embedded (`embed`), or hashed so that load() can tell the referenced file changed. */
  bytes: Uint8Array;
  /** Carry the object inside the module (base64), so the module ships alone. */
  embed?: boolean;
  /** Without `embed`: the object's path relative to the generated module ("./prog.bpf.o"). */
  objectPath?: string;
  /** Where the module imports tsbpf from (default "tsbpf"). */
  importFrom?: string;
  /** Named types to declare besides those of maps and variables (default: every named struct, union and enum). */
  types?: string[];
  /** The input's name, for the header. */
  source?: string;
}

/** Names the skeleton module declares; the object's types are named around them. */
const RESERVED = [
  "Skeleton", "LoadOptions", "Programs", "Maps", "Rodata", "Data", "Bss", "Codecs",
  "SkeletonObject", "SkeletonLoadOptions", "TypedMap", "PerCpuMap", "Encodable", "BpfMap", "Program", "Codec",
  "Collection", "Link",
];

const MAP_TYPE_NAMES = new Map<number, string>(Object.entries(MapType).map(([name, n]) => [n, `BPF_MAP_TYPE_${name}`]));

const SECTIONS = [
  { key: "rodata", iface: "Rodata", doc: "Global variables in .rodata (`const volatile`): set them with load({ rodata }); read-only once loaded." },
  { key: "data", iface: "Data", doc: "Global variables in .data: initial values with load({ data }); read and written in the kernel's copy once loaded." },
  { key: "bss", iface: "Bss", doc: "Global variables in .bss: initial values with load({ bss }); read and written in the kernel's copy once loaded." },
] as const;

/** The TypeScript module text of a skeleton for `spec`. */
export function generateSkeleton(spec: ObjectSpec, opts: SkeletonOptions): string {
  const ts = new TypeScriptTypes(btfOf(spec), RESERVED);
  const imports = new Set<string>();
  const source = opts.source ?? spec.source;

  // Maps: key and value types exactly as BpfMap's codecs (maps/codec.ts) produce them.
  const mapLines: string[] = [];
  for (const m of spec.maps.values()) {
    if (m.dataSection) continue;
    const { doc: d, type } = mapType(m, ts, imports);
    mapLines.push(`  /** ${doc(d)} */`, `  readonly ${propertyKey(m.name)}: ${type};`);
  }

  // Global variables by section.
  const sectionText: string[] = [];
  for (const s of SECTIONS) {
    const vars = [...spec.variables.values()].filter((v) => v.map.dataSection === s.key);
    const lines: string[] = [];
    for (const v of vars) {
      if (!v.type || sizeOrUndefined(v.type) === undefined) continue; // no BTF: bytes only, through the collection
      const where = v.map.name === `.${s.key}` ? "" : ` (in ${v.map.name})`;
      lines.push(`  /** ${doc(cDeclaration(v.type, v.name))}${where} */`, `  ${propertyKey(v.name)}: ${ts.typeOf(v.type, "  ")};`);
    }
    sectionText.push(
      lines.length
        ? `/** ${s.doc} */\nexport interface ${s.iface} {\n${lines.join("\n")}\n}`
        : `/** ${s.doc} (None in this object.) */\nexport type ${s.iface} = Record<string, never>;`,
    );
  }

  // The other named types: what events (ring and perf buffer records) are made of.
  const extra = opts.types?.length ? opts.types.map((n) => ts.find(n, source)) : ts.declarable();
  for (const t of extra) ts.declare(t);

  const programLines: string[] = [];
  for (const p of spec.programs.values()) {
    programLines.push(`  /** ${doc(`SEC(${JSON.stringify(p.section)})`)} */`, `  readonly ${propertyKey(p.name)}: Program;`);
  }
  if (programLines.length) imports.add("Program");

  const codecs = ts.declaredComposites();
  const codecLines = codecs.flatMap((c) => [`  /** ${c.cName} */`, `  readonly ${c.name}: Codec<${c.name}>;`]);
  if (codecLines.length) imports.add("Codec");

  const sha256 = createHash("sha256").update(opts.bytes).digest("hex");
  let objectDecl: string;
  if (opts.embed) {
    const b64 = Buffer.from(opts.bytes.buffer, opts.bytes.byteOffset, opts.bytes.byteLength).toString("base64");
    const chunks: string[] = [];
    for (let i = 0; i < b64.length; i += 100) chunks.push(`  ${JSON.stringify(b64.slice(i, i + 100))},`);
    objectDecl =
      `/** The object (${opts.bytes.byteLength} bytes, sha256 ${sha256}), embedded. */\n` +
      `export const object = new SkeletonObject({ base64: [\n${chunks.join("\n")}\n].join("") }, { name: ${JSON.stringify(source)} });`;
  } else {
    const path = opts.objectPath ?? `./${source.split("/").pop()}`;
    objectDecl =
      `/** The object this module was generated from, next to it; load() checks it is the same one. */\n` +
      `export const object = new SkeletonObject(new URL(${JSON.stringify(path)}, import.meta.url), {\n` +
      `  name: ${JSON.stringify(source)},\n  sha256: ${JSON.stringify(sha256)},\n});`;
  }

  const typeImports = ["Collection", "Encodable", "Link", "SkeletonLoadOptions", ...imports].sort();
  const out = [
    generatedHeader("skeleton", source) +
      `// const skel = load({ rodata: { ... } }); skel.attach(); ... skel.close() (or: using skel = load())`,
    `import { SkeletonObject } from ${JSON.stringify(opts.importFrom ?? "tsbpf")};\n` +
      `import type { ${typeImports.join(", ")} } from ${JSON.stringify(opts.importFrom ?? "tsbpf")};`,
    objectDecl,
    ...ts.declarations(),
    ...sectionText,
    `/** The programs, by C function name. */\nexport interface Programs ${block(programLines)}`,
    `/** The maps (global data sections are rodata, data and bss). */\nexport interface Maps ${block(mapLines)}`,
    `/** Decoders (and encoders) of the object's structs and unions, e.g. new RingBufReader(skel.maps.rb, { decode: codecs.Event }). */\n` +
      `export interface Codecs ${block(codecLines)}`,
    `export interface LoadOptions extends SkeletonLoadOptions {\n` +
      `  /** .rodata values, set before load (the verifier sees them as constants). */\n  rodata?: Encodable<Rodata>;\n` +
      `  /** .data initial values. */\n  data?: Encodable<Data>;\n` +
      `  /** .bss initial values (otherwise zero). */\n  bss?: Encodable<Bss>;\n}`,
    `/** The object, loaded. Dispose (or close()) detaches and unloads it all. */\n` +
      `export interface Skeleton extends Disposable {\n` +
      `  readonly collection: Collection;\n` +
      `  readonly programs: Programs;\n` +
      `  readonly maps: Maps;\n` +
      `  /** Read-only once loaded (the map is frozen). */\n  readonly rodata: Readonly<Rodata>;\n` +
      `  /** Read and written in the kernel's copy. */\n  readonly data: Data;\n` +
      `  /** Read and written in the kernel's copy. */\n  readonly bss: Bss;\n` +
      `  /** Attaches every program whose section names its hook; the links close with the skeleton. */\n  attach(): Link[];\n` +
      `  close(): void;\n}`,
    `export const codecs: Codecs = object.codecs<Codecs>({${
      codecs.length ? ` ${codecs.map((c) => `${c.name}: ${c.type.id}`).join(", ")} ` : ""
    }});`,
    `/** Loads the object into the kernel: global variables set, maps created, programs verified and loaded. */\n` +
      `export function load(options: LoadOptions = {}): Skeleton {\n  return object.load<Skeleton>(options);\n}`,
  ];
  return `${out.join("\n\n")}\n`;
}

function block(lines: string[]): string {
  return lines.length ? `{\n${lines.join("\n")}\n}` : "{}";
}

/** Text safe inside a doc comment. */
function doc(text: string): string {
  return text.replace(/\*\//g, "*\\/");
}

/** A key or value as BpfMap decodes it: through its BTF type when the sizes agree, else by size. */
function keyOrValue(type: MapSpec["key"], size: number, ts: TypeScriptTypes, addresses = false): { ts: string; c: string } {
  if (type && sizeOrUndefined(type) === size) return { ts: ts.typeOf(type, "  "), c: cTypeName(type) };
  if (addresses) return { ts: "bigint[]", c: `${size} bytes of addresses` };
  if (size === 4) return { ts: "number", c: "4 bytes" };
  if (size === 8) return { ts: "bigint", c: "8 bytes" };
  return { ts: "Uint8Array", c: `${size} bytes` };
}

function mapType(m: MapSpec, ts: TypeScriptTypes, imports: Set<string>): { doc: string; type: string } {
  const kind = MAP_TYPE_NAMES.get(m.type) ?? `map type ${m.type}`;
  const traits = traitsOf(m.type);
  if (traits.events) {
    imports.add("BpfMap");
    const reader = m.type === MapType.PERF_EVENT_ARRAY ? "PerfReader" : "RingBufReader";
    const size = m.type === MapType.PERF_EVENT_ARRAY ? "" : `, ${m.maxEntries} bytes`;
    return { doc: `${kind}${size}: read it with new ${reader}(map, { decode: codecs.<record type> })`, type: "BpfMap" };
  }
  const key = m.keySize === 0 || traits.noKey ? { ts: "never", c: "no key" } : keyOrValue(m.key, m.keySize, ts);
  const value = keyOrValue(m.value, m.valueSize, ts, traits.addresses);
  const doc = `${kind}, key ${key.c}, value ${value.c}, ${m.maxEntries} ${m.maxEntries === 1 ? "entry" : "entries"}`;
  if (traits.perCpu) {
    imports.add("PerCpuMap");
    return { doc: `${doc} (a value per CPU)`, type: `PerCpuMap<${key.ts}, ${value.ts}>` };
  }
  imports.add("TypedMap");
  if (traits.holds === "program") {
    imports.add("Program");
    return { doc: `${doc} (update with a Program)`, type: `TypedMap<${key.ts}, ${value.ts}, Encodable<${key.ts}>, Encodable<${value.ts}> | Program>` };
  }
  if (traits.holds === "map") {
    imports.add("BpfMap");
    return { doc: `${doc} (update with a BpfMap)`, type: `TypedMap<${key.ts}, ${value.ts}, Encodable<${key.ts}>, Encodable<${value.ts}> | BpfMap>` };
  }
  return { doc, type: `TypedMap<${key.ts}, ${value.ts}>` };
}
