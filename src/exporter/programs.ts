// The exporter's programs: the tools' CO-RE objects (src/cli/bpf), a user's
// object, C compiled now, or BCC-dialect text; and the check of each metric
// against the map it reads, before anything is loaded.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { resolve as resolveType, sizeof, type Type } from "../btf/types.ts";
import { Collection } from "../collection.ts";
import { MapType } from "../internal/sys/constants.ts";
import { toolNames, toolObject } from "../cli/tool.ts";
import type { BpfMap } from "../maps/map.ts";
import { ObjectSpec } from "../object/spec.ts";
import { ConfigError, type MetricConfig, type Position, type ProgramConfig } from "./config.ts";
import { decoderFits, type FieldShape } from "./decoders.ts";

/** Every name `builtin:` takes: the tools' programs, run in the exporter modes the config's constants select. */
export function builtinNames(): string[] {
  return toolNames();
}

// The compiler and the BCC front end load only when a config needs them: the
// default config runs pre-compiled objects, and those modules cost memory.
async function compile(opts: { file: string }): Promise<{ bytes: Uint8Array }> {
  return (await import("../compile/index.ts")).compile(opts);
}

/** A built-in program's object: a tool's, pre-compiled in dist/bpf when fresh, else compiled now (cached). */
export async function builtinObject(name: string): Promise<Uint8Array> {
  return (await toolObject(name)).bytes;
}

/** What a metric needs to know of a map, from an object's spec or from a loaded map. */
export interface MapShape {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  key?: Type;
}

/** A program's object read but not loaded (bcc: nothing until it is loaded). */
export interface PreparedProgram {
  config: ProgramConfig;
  spec?: ObjectSpec;
  /** Same fingerprint, same program: a reload keeps it loaded, and its counts. */
  fingerprint: string;
}

export async function prepareProgram(p: ProgramConfig, index: number): Promise<PreparedProgram> {
  const prepared = await readProgram(p, index);
  for (const [i, name] of (p.attach ?? []).entries()) {
    if (prepared.spec && !prepared.spec.programs.has(name)) {
      throw new ConfigError(p.attachAt ?? p.at, `programs[${index}].attach[${i}]`,
        `program "${p.name}": the object has no program "${name}" (programs: ${[...prepared.spec.programs.keys()].join(", ")})`);
    }
  }
  return prepared;
}

async function readProgram(p: ProgramConfig, index: number): Promise<PreparedProgram> {
  const where = `programs[${index}]`;
  const constants = JSON.stringify([p.constants, p.attach]);
  const fingerprint = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).update(constants).digest("hex");
  const src = p.source;
  switch (src.kind) {
    case "builtin": {
      const names = builtinNames();
      if (!names.includes(src.name)) throw new ConfigError(p.at, `${where}.builtin`, `no built-in program "${src.name}" (built-in: ${names.join(", ")})`);
      const bytes = await builtinObject(src.name);
      return { config: p, spec: ObjectSpec.fromBytes(bytes, `${src.name}.bpf.o`), fingerprint: fingerprint(bytes) };
    }
    case "object": {
      if (!existsSync(src.path)) throw new ConfigError(p.at, `${where}.object`, `program "${p.name}": no object file ${src.path}`);
      const bytes = readFileSync(src.path);
      return { config: p, spec: ObjectSpec.fromBytes(bytes, src.path), fingerprint: fingerprint(bytes) };
    }
    case "source": {
      if (!existsSync(src.path)) throw new ConfigError(p.at, `${where}.source`, `program "${p.name}": no source file ${src.path}`);
      const { bytes } = await compile({ file: src.path });
      return { config: p, spec: ObjectSpec.fromBytes(bytes, src.path), fingerprint: fingerprint(bytes) };
    }
    case "bcc":
      return { config: p, fingerprint: fingerprint(src.text) };
  }
}

/** A program in the kernel, attached, with the maps its metrics read. */
export interface LoadedProgram {
  config: ProgramConfig;
  fingerprint: string;
  maps: ReadonlyMap<string, BpfMap>;
  /** BPF programs loaded in the kernel for it. */
  programCount: number;
  close(): Promise<void>;
}

export async function loadProgram(p: PreparedProgram): Promise<LoadedProgram> {
  const src = p.config.source;
  if (src.kind === "bcc") {
    const { BPF } = await import("../bcc/bpf.ts");
    const b = await BPF.load({ text: src.text, name: src.name });
    return {
      config: p.config,
      fingerprint: p.fingerprint,
      maps: b.collection.maps,
      programCount: b.numOpenTracepoints() + b.numOpenKprobes() + b.numOpenUprobes(),
      close: async () => b.cleanup(),
    };
  }
  const spec = p.spec!;
  const coll = Collection.load(spec, { constants: p.config.constants, programs: p.config.attach });
  try {
    coll.attachAll();
  } catch (err) {
    await coll.closeAsync();
    throw err;
  }
  return { config: p.config, fingerprint: p.fingerprint, maps: coll.maps, programCount: coll.programs.size, close: () => coll.closeAsync() };
}

const READABLE = new Set<number>([MapType.HASH, MapType.ARRAY, MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_HASH, MapType.LRU_PERCPU_HASH]);

/** Checks that `metric` can read `map`: its type, value and key layout, and each label's first decoder against the key's BTF. */
export function checkMetricMap(metric: MetricConfig, map: MapShape | undefined, known: Iterable<string>): void {
  const at = (field: string): Position => metric.fields[field] ?? metric.at;
  if (!map) {
    const names = [...known].filter((n) => !n.startsWith("."));
    throw new ConfigError(at("map"), "map", `metric "${metric.name}": program "${metric.program}" has no map "${metric.map}" (maps: ${names.join(", ") || "none"})`);
  }
  if (!READABLE.has(map.type)) {
    throw new ConfigError(at("map"), "map", `metric "${metric.name}": map "${map.name}" is of type ${map.type}; metrics read hash and array maps (per-CPU and LRU too)`);
  }
  if (map.valueSize !== 8 && map.valueSize !== 4) {
    throw new ConfigError(at("map"), "map", `metric "${metric.name}": map "${map.name}" has ${map.valueSize}-byte values; a metric reads a u64 or u32 count`);
  }
  const total = metric.labels.reduce((n, l) => n + l.size + l.padding, 0);
  if (total !== map.keySize) {
    const where = metric.labels.length ? "labels" : "map";
    throw new ConfigError(metric.labels[0]?.at ?? at("map"), where,
      `metric "${metric.name}": the labels cover ${total} bytes but map "${map.name}" has ${map.keySize}-byte keys${map.key ? ` (${typeName(map.key)})` : ""}`);
  }
  if (!map.key) return;
  const fields = keyFields(map.key);
  let offset = 0;
  for (const [i, label] of metric.labels.entries()) {
    const field = fields.find((f) => f.offset === offset);
    const where = `labels[${i}]`;
    if (!field) {
      throw new ConfigError(label.at, where, `metric "${metric.name}": label "${label.name}" starts at byte ${offset} of the key, where no field of ${typeName(map.key)} starts (fields: ${fields.map((f) => `${f.name}@${f.offset}`).join(", ")})`);
    }
    if (field.size > label.size) {
      throw new ConfigError(label.at, `${where}.size`, `metric "${metric.name}": label "${label.name}" is ${label.size} bytes but field ${field.name} is ${field.size}`);
    }
    const why = decoderFits(label.decoders[0].name, field.shape, field.size);
    if (why) throw new ConfigError(label.decoders[0].at, `${where}.decoders[0]`, `metric "${metric.name}": label "${label.name}" (field ${field.name}): ${why}`);
    offset += label.size + label.padding;
  }
}

interface KeyField {
  name: string;
  offset: number;
  size: number;
  shape: FieldShape;
}

function keyFields(key: Type): KeyField[] {
  const t = resolveType(key);
  if (t.kind === "struct") {
    return t.members.map((m) => ({ name: m.name || "(anonymous)", offset: m.offset / 8, size: safeSize(m.type), shape: shapeOf(m.type) }));
  }
  return [{ name: typeName(key), offset: 0, size: safeSize(key), shape: shapeOf(key) }];
}

function safeSize(t: Type): number {
  try {
    return sizeof(t);
  } catch {
    return 0;
  }
}

function shapeOf(type: Type): FieldShape {
  const t = resolveType(type);
  switch (t.kind) {
    case "int":
    case "enum":
    case "enum64":
      return "int";
    case "pointer":
      return "pointer";
    case "array": {
      const elem = resolveType(t.type);
      if (elem.kind === "int" && elem.size === 1) return elem.encoding === "char" || elem.name === "char" ? "chars" : "bytes";
      return "bytes";
    }
    default:
      return "unknown";
  }
}

function typeName(t: Type): string {
  const r = resolveType(t);
  if (r.kind === "struct") return `struct ${r.name || "(anonymous)"}`;
  return t.name || r.name || r.kind;
}
