// What generated skeletons (tsbpf gen skeleton) run on: the object they carry or
// refer to, loaded into a Collection and presented as typed programs, maps,
// global variables and codecs. Generated code adds only types over this.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { codecFor, type Codec } from "../btf/codec.ts";
import { Collection, type CollectionOptions } from "../collection.ts";
import type { Link } from "../link/link.ts";
import type { BpfMap, UpdateMode } from "../maps/map.ts";
import { ObjectError } from "../object/errors.ts";
import { ObjectSpec } from "../object/spec.ts";
import type { Program } from "../programs/program.ts";

/**
 * What the BTF encoder accepts where it decodes a `T`: integers as number or
 * bigint, strings or bytes for char arrays, shorter arrays, and objects with
 * members left out (zero-filled).
 */
export type Encodable<T> =
  T extends bigint ? bigint | number
  : T extends number ? number | bigint
  : T extends boolean ? boolean | number
  : T extends string ? string | Uint8Array
  : T extends Uint8Array ? Uint8Array
  : T extends readonly (infer E)[] ? readonly (Encodable<E> | undefined)[]
  : T extends object ? { [K in keyof T]?: Encodable<T[K]> }
  : T;

type Retyped =
  | "lookup" | "update" | "delete" | "lookupAndDelete" | "push" | "pop" | "peek" | "keys" | "entries" | "values"
  | "lookupBatch" | "updateBatch" | "deleteBatch" | typeof Symbol.iterator;

/**
 * A BpfMap with its key and value types: lookups give `V` exactly as the
 * map's BTF codec decodes it; updates take anything the encoder accepts.
 */
export interface TypedMap<K, V, KIn = Encodable<K>, VIn = Encodable<V>> extends Omit<BpfMap<K, V>, Retyped> {
  lookup(key: KIn): V | undefined;
  update(key: KIn, value: VIn, mode?: UpdateMode): void;
  delete(key: KIn): boolean;
  lookupAndDelete(key: KIn): V | undefined;
  push(value: VIn, mode?: UpdateMode): void;
  pop(): V | undefined;
  peek(): V | undefined;
  keys(): IterableIterator<K>;
  entries(): IterableIterator<[K, V]>;
  values(): IterableIterator<V>;
  [Symbol.iterator](): IterableIterator<[K, V]>;
  lookupBatch(batchSize?: number, opts?: { andDelete?: boolean }): IterableIterator<[K, V]>;
  updateBatch(entries: Iterable<readonly [KIn, VIn]>, mode?: UpdateMode): number;
  deleteBatch(keys: Iterable<KIn>): number;
}

/** A per-CPU map: lookups give one value per possible CPU; updates take one value (for every CPU) or one per CPU. */
export type PerCpuMap<K, V> = TypedMap<K, V[], Encodable<K>, Encodable<V> | readonly Encodable<V>[]>;

/** Options of a skeleton's `load()`: Collection.load's, with global variables by section. */
export interface SkeletonLoadOptions extends Omit<CollectionOptions, "constants"> {
  /** `.rodata` (const volatile) values, set before load: the verifier sees them as constants. */
  rodata?: Record<string, unknown>;
  /** `.data` initial values. */
  data?: Record<string, unknown>;
  /** `.bss` initial values (otherwise zero). */
  bss?: Record<string, unknown>;
}

/** What a skeleton's `load()` returns, before the generated types narrow it. */
export interface LoadedSkeleton extends Disposable {
  readonly collection: Collection;
  readonly programs: Record<string, Program>;
  readonly maps: Record<string, BpfMap>;
  readonly rodata: Record<string, unknown>;
  readonly data: Record<string, unknown>;
  readonly bss: Record<string, unknown>;
  /** Attaches every program whose section names its hook (Collection.attachAll). */
  attach(): Link[];
  /** Detaches and unloads everything (as dispose). */
  close(): void;
}

const SECTIONS = ["rodata", "data", "bss"] as const;

/** Where a skeleton's object comes from: a path or file URL (checked against `sha256`), its bytes, or base64. */
export type SkeletonSource = URL | string | Uint8Array | { base64: string };

/** The object behind a generated skeleton. */
export class SkeletonObject {
  readonly name: string;
  readonly #source: SkeletonSource;
  readonly #sha256: string | undefined;
  #bytes: Uint8Array | undefined;
  #spec: ObjectSpec | undefined;

  constructor(source: SkeletonSource, opts: { name?: string; sha256?: string } = {}) {
    this.#source = source;
    this.#sha256 = opts.sha256;
    this.name = opts.name ?? (source instanceof URL ? fileURLToPath(source) : typeof source === "string" ? source : "<embedded object>");
  }

  /** The object's bytes, read once (a referenced file must be the one the skeleton was generated from). */
  bytes(): Uint8Array {
    if (this.#bytes) return this.#bytes;
    const src = this.#source;
    let bytes: Uint8Array;
    if (src instanceof Uint8Array) bytes = src;
    else if (typeof src === "object" && "base64" in src) bytes = new Uint8Array(Buffer.from(src.base64, "base64"));
    else {
      const path = src instanceof URL ? fileURLToPath(src) : src;
      try {
        bytes = new Uint8Array(readFileSync(path));
      } catch (err) {
        throw new ObjectError(`skeleton ${this.name}: cannot read its object ${path}: ${(err as Error).message}`);
      }
      if (this.#sha256) {
        const sum = createHash("sha256").update(bytes).digest("hex");
        if (sum !== this.#sha256) {
          throw new ObjectError(
            `${path} is not the object this skeleton was generated from (sha256 ${sum.slice(0, 12)}…, expected ${this.#sha256.slice(0, 12)}…): ` +
              "run tsbpf gen skeleton again (or generate it with --embed to carry the object inside)",
          );
        }
      }
    }
    this.#bytes = bytes;
    return bytes;
  }

  /** The parsed object (shared by the codecs; each load parses its own copy). */
  spec(): ObjectSpec {
    return (this.#spec ??= ObjectSpec.fromBytes(this.bytes(), this.name));
  }

  /** Codecs of BTF types by id, made when first used: `{ Event: 12 }` -> `{ Event: Codec }`. */
  codecs<T extends object>(ids: Record<string, number>): T {
    const out = {};
    for (const [name, id] of Object.entries(ids)) {
      let codec: Codec | undefined;
      Object.defineProperty(out, name, {
        enumerable: true,
        get: () => {
          if (codec) return codec;
          const btf = this.spec().btf;
          const type = btf?.typeById(id);
          if (!type || (type.kind !== "struct" && type.kind !== "union")) {
            throw new ObjectError(`skeleton ${this.name}: BTF type ${id} (${name}) is not a struct or union: regenerate the skeleton`);
          }
          return (codec = codecFor(type));
        },
      });
    }
    return Object.freeze(out) as T;
  }

  /** Loads the object (global variables set first) and wraps the Collection. */
  load<S = LoadedSkeleton>(options: SkeletonLoadOptions = {}): S {
    const { rodata, data, bss, ...rest } = options;
    const spec = ObjectSpec.fromBytes(this.bytes(), this.name);
    const given = { rodata, data, bss };
    for (const section of SECTIONS) {
      for (const [name, value] of Object.entries(given[section] ?? {})) {
        if (value === undefined) continue;
        const variable = spec.variables.get(name);
        if (!variable || variable.map.dataSection !== section) {
          const names = [...spec.variables.values()].filter((v) => v.map.dataSection === section).map((v) => v.name);
          throw new ObjectError(
            `${this.name}: no ${section} variable "${name}"` +
              (variable ? ` (it is in ${variable.map.name})` : "") +
              `; ${section} has ${names.length ? names.join(", ") : "none"}`,
          );
        }
        variable.set(value);
      }
    }
    const collection = Collection.load(spec, rest);
    return wrap(collection) as S;
  }
}

function wrap(collection: Collection): LoadedSkeleton {
  const spec = collection.spec;
  const programs = {};
  for (const name of spec.programs.keys()) {
    // A getter: programs left out by `programs: [...]` say so when used.
    Object.defineProperty(programs, name, { enumerable: true, get: () => collection.program(name) });
  }
  const maps: Record<string, BpfMap> = {};
  for (const [name, m] of spec.maps) if (!m.dataSection) maps[name] = collection.map(name);
  const sections: Record<string, Record<string, unknown>> = {};
  for (const section of SECTIONS) {
    const vars = {};
    for (const v of spec.variables.values()) {
      if (v.map.dataSection !== section) continue;
      Object.defineProperty(vars, v.name, {
        enumerable: true,
        get: () => collection.variable(v.name).get(),
        set: (value: unknown) => collection.variable(v.name).set(value), // .rodata: throws, saying to set it before load
      });
    }
    sections[section] = Object.preventExtensions(vars);
  }
  return {
    collection,
    programs: Object.freeze(programs),
    maps: Object.freeze(maps),
    rodata: sections.rodata!,
    data: sections.data!,
    bss: sections.bss!,
    attach: () => collection.attachAll(),
    close: () => collection.close(),
    [Symbol.dispose]: () => collection.close(),
  };
}
