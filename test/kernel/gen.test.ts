// tsbpf gen: TypeScript types and typed skeletons from BTF. The type mapping is
// checked as text and against what the codecs decode at run time (a decoded
// value, written out as a literal, must type-check against its interface); a
// generated skeleton must compile under strict TypeScript, reject misuse with
// errors that name the field, and load, attach and read events and maps.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { codecFor, compile, ObjectSpec, type BpfMap, type Codec, type LoadedSkeleton, type SkeletonLoadOptions } from "../../src/index.ts";
import { generateSkeleton, generateTypes, pascalCase, TypeScriptTypes } from "../../src/gen/index.ts";
import { BpfCmd } from "../../src/internal/sys/constants.ts";
import { fdById, linkInfo } from "../../src/internal/sys/bpf.ts";
import { linkIds } from "../support/kernel.ts";

const root = join(import.meta.dirname, "..", "..");
const HEADERS = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
`;

/** Every kind of member the codec knows. */
const TYPES_PROGRAM = `${HEADERS}
enum color { RED, GREEN = 5, BLUE = -1 };
enum wide { WIDE_SMALL = 1, WIDE_BIG = 0x100000000ULL };
typedef struct { u16 lo; u16 hi; } pair_t;
struct inner { s32 x; s64 y; };
struct map { int m; };
struct name_clash { int a; };
struct name__clash { int b; };
struct everything {
  u8 a8; u16 a16; u32 a32; s32 s32v; u64 a64; s64 s64v; int i; long l; unsigned __int128 big;
  bool flag; char name[16]; unsigned char uname[4]; u8 bytes[4]; char names[2][8]; int matrix[2][3];
  float f32; double f64; void *ptr; struct inner *iptr;
  struct inner nested; struct inner many[2]; pair_t pair;
  struct { u8 c; u8 d; } anon_named;
  union { u32 as_u32; u8 as_bytes[4]; };
  struct { u16 flat_a; u16 flat_b; };
  enum color color; enum wide wide; enum { ANON_A, ANON_B } anon_enum;
  u32 bits3:3, bits29:29; u64 bits40:40, :24; bool bflag:1;
  struct map m; struct name_clash c1; struct name__clash c2;
  u8 tail[];
};
struct everything *unused_everything __attribute__((unused));
SEC("tp/syscalls/sys_enter_getppid")
int noop(void *ctx) { return 0; }
`;

/** The skeleton's program: a ring buffer of struct event, a hash map with a struct key, rodata, data, bss. */
const PROGRAM = `${HEADERS}
enum kind { KIND_NONE, KIND_GETPPID, KIND_OTHER };
struct event { u32 pid; u32 seq; u64 ts; char comm[16]; enum kind kind; bool first; u8 tag[4]; };
struct flow_key { u32 pid; char comm[16]; };
struct call_stats { u64 calls; u64 last_ts; };
const struct event *unused_event __attribute__((unused));

const volatile u32 target_pid = 0;
const volatile u8 tag_value = 0;
u64 counter = 0;
u8 generation = 1;

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096 * 4); } events SEC(".maps");
struct {
  __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
  __type(key, struct flow_key); __type(value, struct call_stats);
} flows SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) {
  u32 pid = bpf_get_current_pid_tgid() >> 32;
  if (pid != target_pid) return 0;
  u64 seq = __sync_fetch_and_add(&counter, 1);
  u64 now = bpf_ktime_get_ns();
  struct flow_key key = {};
  key.pid = pid;
  bpf_get_current_comm(key.comm, sizeof(key.comm));
  struct call_stats *s = bpf_map_lookup_elem(&flows, &key);
  if (s) { s->calls++; s->last_ts = now; }
  else { struct call_stats init = { .calls = 1, .last_ts = now }; bpf_map_update_elem(&flows, &key, &init, BPF_ANY); }
  struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  e->pid = pid; e->seq = seq; e->ts = now;
  __builtin_memcpy(e->comm, key.comm, sizeof(e->comm));
  e->kind = KIND_GETPPID; e->first = seq == 0;
  e->tag[0] = tag_value; e->tag[1] = generation; e->tag[2] = 0; e->tag[3] = 0;
  bpf_ringbuf_submit(e, 0);
  return 0;
}
`;

/** A user of the skeleton, as its author would write it; the test runs it too. */
const GOOD = `import { RingBufReader } from "../../src/index.ts";
import { codecs, Kind, load, type Event, type FlowKey, type CallStats } from "./prog.skel.ts";

export interface Result {
  event: Event; stats: CallStats | undefined; written: CallStats | undefined; counter: bigint; afterReset: bigint;
  generation: number; targetPid: number; links: number; rodataError: string; keys: FlowKey[]; programId: number;
}

export async function exercise(pid: number, comm: string, trigger: () => void): Promise<Result> {
  using skel = load({ rodata: { target_pid: pid, tag_value: 7 }, data: { generation: 3 } });
  const links = skel.attach().length;
  using reader = new RingBufReader(skel.maps.events, { decode: codecs.Event });
  const events: Event[] = [];
  reader.onEvent((e) => events.push(e));
  for (let i = 0; i < 50 && events.length === 0; i++) {
    trigger();
    await reader.poll(100);
  }
  const event = events[0];
  if (event === undefined) throw new Error("no event from the ring buffer");
  const kind: Kind = event.kind;
  if (kind !== Kind.KIND_GETPPID) throw new Error(\`kind \${kind}\`);
  const ts: bigint = event.ts;
  const name: string = event.comm;
  const tag: number[] = event.tag;
  const first: boolean = event.first;
  void [ts, name, tag, first];
  const key: FlowKey = { pid, comm };
  const stats = skel.maps.flows.lookup(key);
  skel.maps.flows.update({ pid: 1 }, { calls: 5, last_ts: 6n }); // the encoder takes numbers for u64 and zero-fills comm
  const written = skel.maps.flows.lookup({ pid: 1, comm: "" });
  const keys = [...skel.maps.flows.keys()];
  const counter: bigint = skel.bss.counter;
  skel.bss.counter = 0n;
  const afterReset = skel.bss.counter;
  let rodataError = "";
  try {
    (skel.rodata as { target_pid: number }).target_pid = 1;
  } catch (err) {
    rodataError = (err as Error).message;
  }
  const programId = skel.programs.on_getppid.info().id;
  return { event, stats, written, counter, afterReset, generation: skel.data.generation, targetPid: skel.rodata.target_pid, links, rodataError, keys, programId };
}
`;

/** Misuse, one mistake a line: each must be a compile error naming the field. */
const BAD = `import { codecs, load } from "./prog.skel.ts";
const skel = load({ rodata: { target_pidd: 1 } });
const e = codecs.Event.decode(new DataView(new ArrayBuffer(64)));
console.log(e.pidd);
const n: number = e.ts;
skel.bss.counter = 1;
skel.maps.flows.lookup({ pid: 1, commm: "x" });
skel.rodata.target_pid = 3;
skel.programs.on_getppidd.attach();
console.log(n);
`;

let dir: string;
let objectBytes: Uint8Array;

before(async () => {
  mkdirSync(join(root, "tmp"), { recursive: true });
  dir = mkdtempSync(join(root, "tmp", "gen-"));
  objectBytes = (await compile({ text: PROGRAM, name: "prog.bpf.c" })).bytes;
  writeFileSync(join(dir, "prog.bpf.o"), objectBytes);
  const spec = ObjectSpec.fromBytes(objectBytes, "prog.bpf.o");
  writeFileSync(join(dir, "prog.skel.ts"), generateSkeleton(spec, { bytes: objectBytes, objectPath: "./prog.bpf.o", importFrom: "../../src/index.ts" }));
  writeFileSync(join(dir, "good.ts"), GOOD);
  writeFileSync(join(dir, "bad.ts"), BAD);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  try {
    rmdirSync(join(root, "tmp")); // only when empty (it is gitignored either way)
  } catch {}
});

/** Runs tsc over `files` in `dir` (strict, as a NodeNext project); returns its diagnostics by file. */
function typecheck(files: string[], extra: Record<string, unknown> = {}): { status: number | null; errors: Map<string, string[]>; output: string } {
  const config = {
    compilerOptions: {
      strict: true, noEmit: true, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext",
      lib: ["ES2023", "ESNext.Disposable"], types: ["node"], typeRoots: [join(root, "node_modules", "@types")],
      allowImportingTsExtensions: true, skipLibCheck: true, ...extra,
    },
    files,
  };
  const path = join(dir, `tsconfig.${files.map((f) => f.replace(/\W/g, "")).join("-")}.json`);
  writeFileSync(path, JSON.stringify(config, null, 2));
  const r = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", path, "--pretty", "false"], { encoding: "utf8" });
  const errors = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of r.stdout.split("\n")) {
    const m = /^(.+?)\((\d+),\d+\): error (TS\d+: .*)$/.exec(line);
    if (m) {
      const file = m[1]!.split("/").pop()!;
      errors.set(file, [...(errors.get(file) ?? []), `${m[2]}: ${m[3]}`]);
      current = errors.get(file);
    } else if (line.startsWith(" ") && current) {
      current[current.length - 1] += ` ${line.trim()}`;
    }
  }
  return { status: r.status, errors, output: r.stdout + r.stderr };
}

/** What good.ts and the skeleton modules export, as far as this file looks (they exist only at run time). */
interface Event { pid: number; seq: number; ts: bigint; comm: string; kind: number; first: boolean; tag: number[] }
interface CallStats { calls: bigint; last_ts: bigint }
type Exercise = (pid: number, comm: string, trigger: () => void) => Promise<{
  event: Event; stats: CallStats | undefined; written: CallStats | undefined; counter: bigint; afterReset: bigint;
  generation: number; targetPid: number; links: number; rodataError: string; keys: { pid: number; comm: string }[]; programId: number;
}>;
interface Skel {
  load(options?: SkeletonLoadOptions): LoadedSkeleton & { maps: { flows: BpfMap } };
  codecs: Record<string, Codec>;
}

/** Links (system-wide) of the program with this id. */
function linksOf(programId: number): number[] {
  return linkIds().filter((id) => {
    try {
      using link = fdById(BpfCmd.LINK_GET_FD_BY_ID, id);
      return linkInfo(link.value).progId === programId;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** A decoded value as TypeScript source. */
function literal(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "0" : String(v);
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
  if (v instanceof Uint8Array) return `new Uint8Array([${[...v].join(", ")}])`;
  if (Array.isArray(v)) return `[${v.map(literal).join(", ")}]`;
  if (v && typeof v === "object") return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${literal(x)}`).join(", ")} }`;
  throw new Error(`no literal for ${typeof v}`);
}

test("C types map to the TypeScript types the codecs decode into", async () => {
  const bytes = (await compile({ text: TYPES_PROGRAM, name: "types.bpf.c" })).bytes;
  const spec = ObjectSpec.fromBytes(bytes, "types.bpf.o");
  const text = generateTypes(spec, { types: ["struct everything"], source: "types.bpf.o" });
  assert.match(text, /^\/\/ Generated by tsbpf gen types from types\.bpf\.o, do not edit\./);
  const body = text.slice(text.indexOf("export interface Everything {"));
  const field = (name: string) => {
    const m = new RegExp(`\\n  ${name}: (.*);`).exec(body);
    assert.ok(m, `no member ${name} in\n${body}`);
    return m[1];
  };
  const expected: Record<string, string> = {
    a8: "number", a16: "number", a32: "number", s32v: "number", i: "number",
    a64: "bigint", s64v: "bigint", l: "bigint", big: "bigint", ptr: "bigint", iptr: "bigint",
    flag: "boolean", bflag: "boolean", name: "string", uname: "string", bytes: "number[]", names: "string[]",
    matrix: "number[][]", f32: "number", f64: "number", nested: "Inner", many: "Inner[]", pair: "PairT",
    color: "Color", wide: "Wide", anon_enum: "number", bits3: "number", bits29: "number", bits40: "bigint",
    as_u32: "number", as_bytes: "number[]", flat_a: "number", flat_b: "number",
    m: "MapStruct", c1: "NameClash", c2: "NameClashStruct", tail: "[]",
  };
  for (const [name, ts] of Object.entries(expected)) assert.equal(field(name), ts, `member ${name}`);
  assert.match(body, /\n  anon_named: \{\n    \/\*\* u8 c \*\/\n    c: number;\n    \/\*\* u8 d \*\/\n    d: number;\n  \};/);
  assert.match(body, /\/\*\* char name\[16\] \*\/\n  name: string;/);
  assert.match(body, /\/\*\* u64 bits40:40 \*\/\n  bits40: bigint;/);
  assert.match(body, /\/\*\* in an anonymous union; u32 as_u32 \*\//);
  assert.match(text, /\/\*\* typedef pair_t \(struct \{\.\.\.\}\) \(4 bytes\) \*\/\nexport interface PairT \{/);
  assert.match(text, /export const Color = \{\n  RED: 0,\n  GREEN: 5,\n  BLUE: 4294967295,\n\} as const;/);
  assert.match(text, /export type Color = \(typeof Color\)\[keyof typeof Color\];/);
  // clang's BTF says unsigned for this enum, and the codec reads it so: -1 is 4294967295 on both sides.
  // An 8-byte BTF_KIND_ENUM (clang < 15) has its values cut to 32 bits: only the type is trustworthy.
  assert.match(text, /export type Wide = bigint;/);
  // --type narrows the output to the type and what it uses.
  assert.doesNotMatch(text, /interface Everything[\s\S]*interface Everything/);
  assert.equal(generateTypes(spec, { types: ["inner"] }).match(/export interface/g)?.length, 1);
  assert.throws(() => generateTypes(spec, { types: ["no_such"] }), /no struct, union or enum named "no_such".*struct everything/);
  // Every named struct, union and enum by default.
  const all = generateTypes(spec);
  for (const name of ["Everything", "Inner", "MapStruct", "NameClash", "NameClashStruct", "PairT"]) assert.match(all, new RegExp(`export interface ${name} \\{`));

  // What the codec decodes (random bytes, enums set to one of their values) type-checks as the interface.
  const type = spec.type("everything");
  const codec = codecFor(type);
  const raw = randomFillSync(new Uint8Array(codec.size));
  const value = codec.decode(new DataView(raw.buffer)) as Record<string, unknown>;
  assert.equal(typeof value.color, "number");
  assert.equal(typeof value.wide, "bigint");
  value.color = 5;
  writeFileSync(join(dir, "types.ts"), text);
  writeFileSync(join(dir, "value.ts"), `import type { Everything } from "./types.ts";\nexport const value: Everything = ${literal(value)};\n`);
  const r = typecheck(["types.ts", "value.ts"]);
  assert.equal(r.status, 0, r.output);
});

test("type names: PascalCase, collisions and reserved names get a suffix", async () => {
  assert.equal(pascalCase("event"), "Event");
  assert.equal(pascalCase("flow_key"), "FlowKey");
  assert.equal(pascalCase("__sk_buff"), "SkBuff");
  assert.equal(pascalCase("trace_event_raw_sys_enter"), "TraceEventRawSysEnter");
  assert.equal(pascalCase("sockaddr_in6"), "SockaddrIn6");
  const spec = ObjectSpec.fromBytes((await compile({ text: TYPES_PROGRAM, name: "types.bpf.c" })).bytes);
  const ts = new TypeScriptTypes(spec.btf!, ["Inner"]);
  assert.equal(ts.nameOf(spec.type("inner")), "InnerStruct");
  assert.equal(ts.nameOf(spec.type("map")), "MapStruct");
  assert.equal(ts.find("Everything").name, "everything");
  assert.equal(ts.find("enum color").name, "color");
  assert.equal(ts.find("pair_t").kind, "struct");
});

test("a generated skeleton type-checks under strict TypeScript, and misuse fails naming the field", () => {
  const skel = readFileSync(join(dir, "prog.skel.ts"), "utf8");
  assert.match(skel, /^\/\/ Generated by tsbpf gen skeleton from prog\.bpf\.o, do not edit\./);
  assert.match(skel, /readonly flows: TypedMap<FlowKey, CallStats>;/);
  assert.match(skel, /readonly events: BpfMap;/);
  assert.match(skel, /export interface Rodata \{\n {2}\/\*\* const volatile u32 target_pid \*\/\n {2}target_pid: number;/);
  assert.match(skel, /counter: bigint;/);
  assert.match(skel, /readonly Event: Codec<Event>;/);

  const r = typecheck(["prog.skel.ts", "good.ts", "bad.ts"]);
  assert.notEqual(r.status, 0);
  assert.deepEqual([...r.errors.keys()], ["bad.ts"], r.output);
  const bad = r.errors.get("bad.ts")!;
  const on = (line: number) => bad.filter((e) => e.startsWith(`${line}: `)).join("\n");
  assert.match(on(2), /'target_pidd' does not exist in type/);
  assert.match(on(4), /Property 'pidd' does not exist on type 'Event'\. Did you mean 'pid'\?/);
  assert.match(on(5), /Type 'bigint' is not assignable to type 'number'/);
  assert.match(on(6), /Type 'number' is not assignable to type 'bigint'/);
  assert.match(on(7), /'commm' does not exist in type/);
  assert.match(on(8), /Cannot assign to 'target_pid' because it is a read-only property/);
  assert.match(on(9), /Property 'on_getppidd' does not exist on type 'Programs'\. Did you mean 'on_getppid'\?/);
  assert.equal(bad.length, 7, bad.join("\n"));

  // Stricter settings than --strict: the generated module stays clean.
  const stricter = typecheck(["prog.skel.ts"], { noUnusedLocals: true, noUnusedParameters: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, noImplicitReturns: true, verbatimModuleSyntax: true, isolatedModules: true });
  assert.equal(stricter.errors.get("prog.skel.ts"), undefined, stricter.output);
});

test("a generated skeleton loads, sets rodata, attaches, and gives typed events, maps and variables", async () => {
  const { exercise } = (await import(pathToFileURL(join(dir, "good.ts")).href)) as { exercise: Exercise };
  const comm = readFileSync(`/proc/${process.pid}/comm`, "utf8").trim();
  const r = await exercise(process.pid, comm, () => process.ppid);
  assert.equal(r.links, 1);
  assert.equal(r.event.pid, process.pid);
  assert.equal(r.event.comm, comm);
  assert.equal(typeof r.event.ts, "bigint");
  assert.equal(r.event.seq, 0);
  assert.equal(r.event.first, true);
  assert.deepEqual(r.event.tag, [7, 3, 0, 0], "tag_value from rodata, generation from data");
  assert.ok(r.stats && r.stats.calls >= 1n, `flows[${process.pid}, ${comm}] = ${JSON.stringify(r.stats, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`);
  assert.ok(r.stats.last_ts >= r.event.ts);
  assert.deepEqual(r.written, { calls: 5n, last_ts: 6n });
  assert.deepEqual(r.keys.map((k) => k.pid).sort(), [1, process.pid].sort((a, b) => a - b));
  assert.ok(r.counter >= 1n);
  assert.equal(r.afterReset, 0n);
  assert.equal(r.generation, 3);
  assert.equal(r.targetPid, process.pid);
  assert.match(r.rodataError, /target_pid is in \.rodata/);
  assert.deepEqual(linksOf(r.programId), [], "a link was left attached after dispose");
});

test("tsbpf gen: types and skeleton from the CLI; --embed ships alone; a changed object is refused", async () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, "bin", "tsbpf.js"), "gen", ...args], { encoding: "utf8", cwd: dir });
  const help = cli("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: tsbpf gen skeleton INPUT/);
  assert.equal(cli().status, 2);

  const types = cli("types", "prog.bpf.o", "--type", "event");
  assert.equal(types.status, 0, types.stderr);
  assert.match(types.stdout, /\/\*\* struct event \(48 bytes\) \*\/\nexport interface Event \{/);
  assert.match(types.stdout, /export type Kind = /);
  assert.doesNotMatch(types.stdout, /FlowKey/);
  const missing = cli("types", "prog.bpf.o", "--type", "nope");
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no struct, union or enum named "nope"/);

  // A C source, embedded: the module needs no file beside it.
  mkdirSync(join(dir, "src"));
  mkdirSync(join(dir, "out"));
  writeFileSync(join(dir, "src", "prog.bpf.c"), PROGRAM);
  const embed = cli("skeleton", "src/prog.bpf.c", "--embed", "--import", "../../../src/index.ts", "-o", "out/embedded.skel.ts");
  assert.equal(embed.status, 0, embed.stderr);
  const embedded = readFileSync(join(dir, "out", "embedded.skel.ts"), "utf8");
  assert.match(embedded, /new SkeletonObject\(\{ base64: \[/);
  const e = (await import(pathToFileURL(join(dir, "out", "embedded.skel.ts")).href)) as Skel;
  {
    using skel = e.load({ rodata: { target_pid: 1 } });
    assert.equal(skel.rodata.target_pid, 1);
    assert.equal(skel.maps.flows.lookup({ pid: 1 }), undefined);
  }

  // Without --embed, the .o written next to the C source, referred to relative to the module.
  const ref = cli("skeleton", "src/prog.bpf.c", "--import", "../../../src/index.ts", "-o", "out/ref.skel.ts");
  assert.equal(ref.status, 0, ref.stderr);
  assert.match(readFileSync(join(dir, "out", "ref.skel.ts"), "utf8"), /new SkeletonObject\(new URL\("\.\.\/src\/prog\.bpf\.o", import\.meta\.url\)/);
  const refMod = (await import(pathToFileURL(join(dir, "out", "ref.skel.ts")).href)) as Skel;
  assert.equal(refMod.codecs.Event.size, 48);
  // The object changes under the module: load() says to regenerate.
  copyFileSync(join(root, "node_modules", "typescript", "package.json"), join(dir, "src", "prog.bpf.o"));
  const fresh = (await import(`${pathToFileURL(join(dir, "out", "ref.skel.ts")).href}?again`)) as Skel;
  assert.throws(() => fresh.load(), /is not the object this skeleton was generated from.*run tsbpf gen skeleton again/);
  // Unknown variables are refused with the section's names.
  assert.throws(() => e.load({ rodata: { nope: 1 } }), /no rodata variable "nope"; rodata has target_pid, tag_value/);
  assert.throws(() => e.load({ rodata: { counter: 1 } }), /no rodata variable "counter" \(it is in \.bss\)/);
});
