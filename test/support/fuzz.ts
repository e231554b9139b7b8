// The fuzz harness shared by test/fuzz.test.ts (a few thousand inputs, in
// `npm test`) and scripts/fuzz.ts (100,000+). Seeds are the committed objects
// of test/fixtures/ and their .BTF sections; each input is a seed with one to
// four mutations (bit flips, boundary values in header/table/record fields,
// truncation, corrupted string offsets), run through ObjectSpec.fromBytes, the
// eager and lazy BTF parsers and CO-RE. The rule: the parsers either succeed
// or throw a TsbpfError, and no input takes more than 2 s.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { TsbpfError } from "../../src/errors.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { applyCoreRelocations } from "../../src/object/core.ts";
import { Spec } from "../../src/btf/spec.ts";
import { parseExt } from "../../src/btf/ext.ts";
import { sizeof, type Type } from "../../src/btf/types.ts";
import { ElfFile } from "../../src/elf/file.ts";
import { SHT_REL, SHT_SYMTAB, SHT_STRTAB, SYM_SIZE } from "../../src/elf/constants.ts";

export const FIXTURES = join(import.meta.dirname, "..", "fixtures");
/** Beyond this an input is a failure (a bound on work, not a speed test). */
export const SLOW_MS = 2000;

interface Field {
  at: number;
  width: 2 | 4 | 8;
  /** A string-table offset (a name), for the string-offset mutation. */
  name?: boolean;
}

export interface Seed {
  name: string;
  kind: "object" | "btf" | "target-btf";
  bytes: Uint8Array;
  /** Fields of headers, tables and records: where structure-aware mutations write. */
  fields: Field[];
  /** Fields of headers only. */
  headers: Field[];
}

export interface Failure {
  seed: string;
  mutations: string[];
  error: string;
  input: Uint8Array;
}

export interface FuzzResult {
  inputs: number;
  /** Inputs accepted whole (not every mutation breaks an object). */
  accepted: number;
  failures: Failure[];
  slowest: { ms: number; seed: string; mutations: string[] };
  ms: number;
}

// xorshift128+ style generator on 32-bit halves: deterministic for a seed.
export function rng(seed: number): () => number {
  let a = seed >>> 0 || 1, b = 0x9e3779b9, c = 0x243f6a88, d = 0xb7e15162;
  return () => {
    const t = b << 9;
    let r = a * 5;
    r = ((r << 7) | (r >>> 25)) * 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t;
    d = (d << 11) | (d >>> 21);
    return (r >>> 0) / 0x1_0000_0000;
  };
}

const BOUNDARY32 = [0, 1, 2, 7, 8, 12, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const BOUNDARY64 = [0n, 1n, 0xffffffffn, 0x1_0000_0000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];

/** The .BTF of an object as a standalone blob (what the kernel's /sys/kernel/btf files hold). */
function btfBlob(bytes: Uint8Array): { blob: Uint8Array; base: number } | undefined {
  const sec = new ElfFile(bytes).section(".BTF");
  return sec ? { blob: sec.data().slice(), base: sec.offset } : undefined;
}

/** Field positions of a BTF blob: header, then every type record's words. */
function btfFields(raw: Uint8Array, base: number, fields: Field[], headers: Field[]): void {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let o = 4; o < 24; o += 4) headers.push({ at: base + o, width: 4 });
  headers.push({ at: base + 2, width: 2 });
  const hdrLen = v.getUint32(4, true);
  const start = hdrLen + v.getUint32(8, true);
  const end = start + v.getUint32(12, true);
  // Every word of the type section: name offsets at record starts are not told
  // apart from the rest here, so mark the first word of each 12-byte step too.
  for (let o = start; o + 4 <= end; o += 4) fields.push({ at: base + o, width: 4, name: (o - start) % 12 === 0 });
}

/** Field positions of an ELF object: headers, section headers, symbols, relocations, BTF, BTF.ext. */
function objectFields(bytes: Uint8Array): { fields: Field[]; headers: Field[] } {
  const elf = new ElfFile(bytes);
  const fields: Field[] = [];
  const headers: Field[] = [];
  for (const [at, width] of [[16, 2], [18, 2], [32, 8], [40, 8], [52, 2], [54, 2], [56, 2], [58, 2], [60, 2], [62, 2]] as const) {
    headers.push({ at, width });
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(40, true));
  for (const s of elf.sections) {
    const o = shoff + s.index * 64;
    fields.push({ at: o, width: 4, name: true }, { at: o + 4, width: 4 });
    for (const f of [8, 24, 32, 48, 56]) fields.push({ at: o + f, width: 8 });
    fields.push({ at: o + 40, width: 4 }, { at: o + 44, width: 4 });
    if (s.type === SHT_SYMTAB) {
      for (let e = s.offset; e < s.offset + s.size; e += SYM_SIZE) {
        fields.push({ at: e, width: 4, name: true }, { at: e + 6, width: 2 }, { at: e + 8, width: 8 }, { at: e + 16, width: 8 });
      }
    } else if (s.type === SHT_REL) {
      for (let e = s.offset; e < s.offset + s.size; e += 16) fields.push({ at: e, width: 8 }, { at: e + 8, width: 4 }, { at: e + 12, width: 4 });
    } else if (s.name === ".BTF") {
      btfFields(s.data(), s.offset, fields, headers);
    } else if (s.name === ".BTF.ext") {
      for (let o = 4; o + 4 <= s.size; o += 4) (o < 32 ? headers : fields).push({ at: s.offset + o, width: 4, name: o >= 32 });
    } else if (s.type === SHT_STRTAB) {
      continue;
    }
  }
  return { fields: fields.filter((f) => f.at + f.width <= bytes.length), headers };
}

export function loadSeeds(): Seed[] {
  const seeds: Seed[] = [];
  for (const name of ["maps.bpf.o", "core.bpf.o", "target.bpf.o"]) {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, name)));
    seeds.push({ name, kind: "object", bytes, ...objectFields(bytes) });
    const btf = btfBlob(bytes);
    if (btf) {
      const fields: Field[] = [];
      const headers: Field[] = [];
      btfFields(btf.blob, 0, fields, headers);
      seeds.push({ name: `${name}:.BTF`, kind: name === "target.bpf.o" ? "target-btf" : "btf", bytes: btf.blob, fields, headers });
    }
  }
  return seeds;
}

function write(buf: Uint8Array, f: Field, value: bigint): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (f.width === 2) v.setUint16(f.at, Number(value & 0xffffn), true);
  else if (f.width === 4) v.setUint32(f.at, Number(value & 0xffffffffn), true);
  else v.setBigUint64(f.at, BigInt.asUintN(64, value), true);
}

/** One mutation of `buf` (in place, or a shorter copy for truncation); returns the new bytes and what was done. */
function mutate(buf: Uint8Array, seed: Seed, r: () => number): [Uint8Array, string] {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const choice = r();
  const fields = seed.fields.filter((f) => f.at + f.width <= buf.length);
  if (choice < 0.2 || fields.length === 0) {
    const n = 1 + Math.floor(r() * 4);
    const at: number[] = [];
    for (let i = 0; i < n; i++) {
      const bit = Math.floor(r() * buf.length * 8);
      buf[bit >> 3] ^= 1 << (bit & 7);
      at.push(bit);
    }
    return [buf, `flip bits ${at.join(",")}`];
  }
  if (choice < 0.55) {
    const f = pick(fields);
    const value = f.width === 8 ? pick(BOUNDARY64) : BigInt(pick(BOUNDARY32));
    write(buf, f, value);
    return [buf, `u${f.width * 8}@${f.at}=${value}`];
  }
  if (choice < 0.7) {
    const headers = seed.headers.filter((f) => f.at + f.width <= buf.length);
    if (headers.length === 0) return [buf, "no header"];
    const f = pick(headers);
    const value = r() < 0.5 ? (f.width === 8 ? pick(BOUNDARY64) : BigInt(pick(BOUNDARY32))) : BigInt(Math.floor(r() * (buf.length + 64)));
    write(buf, f, value);
    return [buf, `header u${f.width * 8}@${f.at}=${value}`];
  }
  if (choice < 0.85) {
    const names = fields.filter((f) => f.name);
    if (names.length === 0) return [buf, "no name"];
    const f = pick(names);
    const value = pick([0xffffffff, 0x7fffffff, buf.length, Math.floor(r() * 4096), Math.floor(r() * 64)]);
    write(buf, f, BigInt(value));
    return [buf, `name u32@${f.at}=${value}`];
  }
  const len = r() < 0.5 ? Math.floor(r() * buf.length) : Math.max(0, buf.length - 1 - Math.floor(r() * 64));
  return [buf.slice(0, len), `truncate to ${len}`];
}

/** Reads what a loader would of a type and its references (lazy Specs surface their errors here). */
function touchType(t: Type): void {
  try {
    sizeof(t);
  } catch (err) {
    if (!(err instanceof TsbpfError)) throw err;
  }
  switch (t.kind) {
    case "struct": case "union": for (const m of t.members) void m.type.kind; break;
    case "func_proto": void t.return.kind; for (const p of t.params) void p.type.kind; break;
    case "func": void t.proto.kind; break;
    case "datasec": for (const v of t.vars) void v.type.kind; break;
    case "array": void t.type.kind; void t.indexType.kind; break;
    case "pointer": case "typedef": case "const": case "volatile": case "restrict": case "type_tag": case "var": case "decl_tag":
      void t.type.kind; break;
  }
}

const exts = new WeakMap<ObjectSpec, Uint8Array | undefined>();
function coreExt(spec: ObjectSpec): Uint8Array | undefined {
  if (!exts.has(spec)) exts.set(spec, new ElfFile(readFileSync(join(FIXTURES, "core.bpf.o"))).section(".BTF.ext")?.data());
  return exts.get(spec);
}

/** One input through everything; throws whatever the library throws. */
export function runInput(kind: Seed["kind"], input: Uint8Array, target: Spec, coreObject: ObjectSpec): boolean {
  if (kind === "object") {
    const spec = ObjectSpec.fromBytes(input, "<fuzz>");
    for (const v of spec.variables.values()) {
      // A mutated .bss may be up to 2 GiB: reading it would allocate that, as loading would.
      if (v.map.valueSize > 1 << 20) continue;
      try {
        v.get();
      } catch (err) {
        if (!(err instanceof TsbpfError)) throw err;
      }
    }
    applyCoreRelocations(spec, target);
    return true;
  }
  // BTF blobs: eager (checked whole), then lazy with every type touched.
  let eager: Spec | undefined;
  try {
    eager = new Spec(input);
    for (const t of eager.types) touchType(t);
  } catch (err) {
    if (!(err instanceof TsbpfError)) throw err;
  }
  const lazy = new Spec(input, { lazy: true });
  for (let id = 1; id < lazy.typeCount; id++) {
    try {
      touchType(lazy.typeById(id));
    } catch (err) {
      if (!(err instanceof TsbpfError)) throw err;
    }
  }
  if (kind === "target-btf") {
    // The mutated BTF as the kernel's: CO-RE against it.
    applyCoreRelocations(coreObject, new Spec(input, { lazy: true }));
  } else if (eager && kind === "btf" && coreObject.btf) {
    // core.bpf.o's .BTF.ext read against a mutated BTF (its names and type ids then point anywhere).
    const ext = coreExt(coreObject);
    if (ext) parseExt(ext, eager);
  }
  return eager !== undefined;
}

/** Runs `count` inputs from `seedValue`; `onProgress` is called every 1,000. */
export function fuzz(count: number, seedValue: number, onProgress?: (done: number, result: FuzzResult) => void): FuzzResult {
  const seeds = loadSeeds();
  const coreObject = ObjectSpec.fromBytes(seeds.find((s) => s.name === "core.bpf.o")!.bytes);
  const targetBytes = seeds.find((s) => s.kind === "target-btf")!.bytes;
  const r = rng(seedValue);
  const result: FuzzResult = { inputs: 0, accepted: 0, failures: [], slowest: { ms: 0, seed: "", mutations: [] }, ms: 0 };
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const seed = seeds[i % seeds.length]!;
    let input: Uint8Array = seed.bytes.slice();
    const mutations: string[] = [];
    const n = 1 + Math.floor(r() * r() * 4);
    for (let m = 0; m < n; m++) {
      const [next, what] = mutate(input, seed, r);
      input = next;
      mutations.push(what);
    }
    const copy = input.slice();
    // A fresh target each time: a lazy Spec caches what it has read.
    const target = new Spec(targetBytes, { lazy: true });
    const start = performance.now();
    try {
      if (runInput(seed.kind, input, target, coreObject)) result.accepted++;
    } catch (err) {
      if (!(err instanceof TsbpfError)) {
        result.failures.push({ seed: seed.name, mutations, error: err instanceof Error ? (err.stack ?? err.message) : String(err), input: copy });
      }
    }
    const ms = performance.now() - start;
    if (ms > result.slowest.ms) result.slowest = { ms, seed: seed.name, mutations };
    if (ms > SLOW_MS) result.failures.push({ seed: seed.name, mutations, error: `took ${ms.toFixed(0)} ms (limit ${SLOW_MS})`, input: copy });
    result.inputs++;
    if (onProgress && result.inputs % 1000 === 0) onProgress(result.inputs, result);
  }
  result.ms = performance.now() - t0;
  return result;
}
