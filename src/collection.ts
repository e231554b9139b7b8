// Collection: an ObjectSpec loaded into the kernel — its BTF, maps and programs,
// owned together and released together (cilium/ebpf's Collection).
import { targetGivenAtAttach } from "./link/hooks.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as sys from "./internal/sys/bpf.ts";
import type { FD } from "./internal/sys/fd.ts";
import { SyscallError } from "./internal/sys/errors.ts";
import { failuresOf } from "./internal/settle.ts";
import { BpfMap } from "./maps/map.ts";
import { Program } from "./programs/program.ts";
import { ObjectSpec } from "./object/spec.ts";
import type { MapSpec } from "./object/maps.ts";
import type { VariableSpec } from "./object/variables.ts";
import { notFound, ObjectError } from "./object/errors.ts";
import type { Link } from "./link/link.ts";
import type { Type } from "./btf/types.ts";
import { CORE_POISON, type CoreFixup } from "./btf/core.ts";
import { applyCoreRelocations, type TargetBtf } from "./object/core.ts";
import { VerifierError } from "./programs/verifier.ts";
import { ExternResolver, POISON_CALL_KFUNC_BASE, type ExternEnvironment } from "./object/resolve-externs.ts";
import { hostExternEnvironment } from "./kconfig/kernel.ts";

export interface CollectionOptions {
  /** Only load these programs (default: all). Maps are always all created. */
  programs?: string[];
  /** Directory on bpffs for maps with `pinning = LIBBPF_PIN_BY_NAME` (default /sys/fs/bpf). */
  pinPath?: string;
  /** Verifier log level used to explain a rejection (1 or 2). */
  logLevel?: 1 | 2;
  /** Values for global variables, set before load (same as `spec.variable(name).set(v)`). */
  constants?: Record<string, unknown>;
  /**
   * The BTF that CO-RE relocations are resolved against: a parsed Spec or the path
   * of a raw BTF file (another kernel's, for testing). Default: the running kernel's
   * (/sys/kernel/btf/vmlinux), read only when a program has CO-RE relocations.
   */
  kernelBtf?: TargetBtf;
  /**
   * What the object's externs (.kconfig values, __ksym variables, kfuncs) resolve
   * against; any part left out is the running kernel's (kernelBtf, when given,
   * also serves typed ksyms and kfuncs).
   */
  externs?: Partial<ExternEnvironment>;
}

export class Collection implements Disposable, AsyncDisposable {
  readonly spec: ObjectSpec;
  readonly programs: ReadonlyMap<string, Program>;
  readonly maps: ReadonlyMap<string, BpfMap>;
  /** The object's BTF in the kernel (undefined if it has none, or the kernel refused it). */
  readonly btf: FD | undefined;
  /** Why the kernel refused the object's BTF, when it did; the programs load without it. */
  readonly btfError: Error | undefined;
  /**
   * CO-RE relocations the target BTF could not satisfy: each poisoned instruction,
   * named (the program loaded because the instruction cannot run, e.g. after a
   * failed bpf_core_field_exists()).
   */
  readonly coreWarnings: readonly string[];
  readonly #options: CollectionOptions;
  readonly #externs: ExternResolver;
  /** Programs loaded after the collection (loadProgram), closed with it. */
  readonly #onDemand: Program[] = [];
  #closed = false;

  private constructor(
    spec: ObjectSpec, btf: FD | undefined, btfError: Error | undefined, maps: Map<string, BpfMap>, programs: Map<string, Program>,
    coreWarnings: string[], options: CollectionOptions, externs: ExternResolver,
  ) {
    this.#options = options;
    this.#externs = externs;
    this.spec = spec;
    this.coreWarnings = coreWarnings;
    this.btf = btf;
    this.btfError = btfError;
    this.maps = maps;
    this.programs = programs;
  }

  /** Loads an object (an ObjectSpec, or a path to / bytes of an ELF object). On failure nothing is left behind. */
  static load(source: ObjectSpec | string | Uint8Array, opts: CollectionOptions = {}): Collection {
    const spec =
      source instanceof ObjectSpec ? source : typeof source === "string" ? ObjectSpec.fromFile(source) : ObjectSpec.fromBytes(source);
    for (const [name, value] of Object.entries(opts.constants ?? {})) spec.variable(name).set(value);
    const wanted = opts.programs ?? [...spec.programs.keys()];
    for (const name of wanted) spec.program(name); // fail on a bad name before creating anything
    // CO-RE before any kernel object exists: a relocation error leaves nothing behind.
    const core = applyCoreRelocations(spec, opts.kernelBtf, { programs: wanted });
    // Externs too: a program whose extern does not resolve fails here, naming it.
    const externs = externResolver(spec, opts);
    for (const name of wanted) core.programs.set(name, externs.apply(core.programs.get(name)!));

    const owned: Disposable[] = [];
    try {
      let btf: FD | undefined;
      let btfError: Error | undefined;
      if (spec.kernelBtf) {
        try {
          btf = sys.btfLoad(spec.kernelBtf);
          owned.push(btf);
        } catch (err) {
          if (!(err instanceof SyscallError) || err.code === "EPERM") throw err;
          btfError = err; // old kernels refuse newer BTF kinds: load without types
        }
      }
      const maps = new Map<string, BpfMap>();
      const reused = new Set<string>();
      for (const mapSpec of spec.maps.values()) {
        const map = createMap(mapSpec.kconfig ? { ...mapSpec, contents: externs.kconfigData() } : mapSpec, btf, opts.pinPath, reused);
        owned.push(map);
        maps.set(mapSpec.name, map);
      }
      // Maps of maps start with the maps their `values` name, once all exist (libbpf's init_map_in_map_slots).
      fillSlots(spec, maps, reused, "map", (name) => maps.get(name));
      const programs = new Map<string, Program>();
      for (const name of wanted) {
        let program: Program;
        try {
          program = Program.load(core.programs.get(name)!, {
            mapFd: (m) => (maps.get(m) ?? notFound("map", m, maps.keys(), spec.source)).fd.value,
            btfFd: btf,
            logLevel: opts.logLevel,
            fdArray: externs.fdArray(),
          });
        } catch (err) {
          throw explainPoison(explainMissingKfunc(err, externs), core.fixups.get(name));
        }
        owned.push(program);
        programs.set(name, program);
      }
      // Prog arrays start with the programs their `values` name, now loaded (libbpf's init_prog_array_slots).
      fillSlots(spec, maps, reused, "program", (name) => programs.get(name));
      return new Collection(spec, btf, btfError, maps, programs, core.warnings, opts, externs);
    } catch (err) {
      for (const o of owned.reverse()) o[Symbol.dispose]();
      throw err;
    }
  }

  /**
   * Loads program `name` of the spec now, against this collection's maps and BTF,
   * CO-RE relocated as load() does (BCC's load_func). `type` loads it as another
   * program type (a BCC function used as a kprobe or a tracepoint); `kernelName`
   * is the name the kernel shows. Each call loads a new program, closed with the collection.
   */
  loadProgram(name: string, opts: { type?: number; kernelName?: string; logLevel?: 1 | 2 } = {}): Program {
    if (this.#closed) throw new ObjectError(`${this.spec.source}: the collection is closed`);
    this.spec.program(name); // a bad name lists what exists
    const core = applyCoreRelocations(this.spec, this.#options.kernelBtf, { programs: [name] });
    const spec = this.#externs.apply(core.programs.get(name)!);
    const type = opts.type ?? spec.type;
    let program: Program;
    try {
      program = Program.load(
        { ...spec, name: opts.kernelName ?? spec.name, type, expectedAttachType: type === spec.type ? spec.expectedAttachType : 0 },
        {
          mapFd: (m) => this.map(m).fd.value,
          btfFd: this.btf,
          logLevel: opts.logLevel ?? this.#options.logLevel,
          fdArray: this.#externs.fdArray(),
        },
      );
    } catch (err) {
      throw explainPoison(explainMissingKfunc(err, this.#externs), core.fixups.get(name));
    }
    this.#onDemand.push(program);
    return program;
  }

  program(name: string): Program {
    return this.programs.get(name) ?? notFound("loaded program", name, this.programs.keys(), this.spec.source);
  }

  map<K = any, V = any>(name: string): BpfMap<K, V> {
    return (this.maps.get(name) ?? notFound("map", name, this.maps.keys(), this.spec.source)) as BpfMap<K, V>;
  }

  /** A named type (struct, union, typedef...) from the object's BTF, e.g. an event struct to decode records with. */
  type(name: string): Type {
    return this.spec.type(name);
  }

  /** A global variable, read and written in the kernel's copy (.data/.bss; .rodata is read-only). */
  variable(name: string): Variable {
    const spec = this.spec.variable(name);
    return new Variable(spec, this.map(spec.map.name));
  }

  /** Attaches every program whose section names its hook; returns the links. */
  attachAll(): Link[] {
    const links: Link[] = [];
    try {
      for (const p of this.programs.values()) {
        if (p.spec.attach !== "none" && !targetGivenAtAttach(p.spec.attach)) links.push(p.attach());
      }
    } catch (err) {
      for (const l of links) l.close();
      throw err;
    }
    return links;
  }

  /** Detaches and unloads everything: links, programs, maps, BTF. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#onDemand.splice(0)) p.close();
    for (const p of this.programs.values()) p.close();
    for (const m of this.maps.values()) m.close();
    this.btf?.close();
  }

  /**
   * As close(), with every link detached at once off the main thread: each detach waits
   * in the kernel (about 50 ms for a tracepoint), so opensnoop's six take 0.15 s instead of 0.3 s.
   * `await using` a Collection closes it this way.
   */
  async closeAsync(): Promise<void> {
    if (this.#closed) return;
    const failures = await failuresOf([...this.programs.values(), ...this.#onDemand].map((p) => p.closeAsync()));
    this.close();
    if (failures.length) throw failures[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeAsync();
  }
}

function externResolver(spec: ObjectSpec, opts: CollectionOptions): ExternResolver {
  const host = hostExternEnvironment({ kernelBtf: opts.kernelBtf });
  return new ExternResolver(spec.externs, { ...host, ...opts.externs });
}

/** A verifier rejection at a poisoned kfunc call: name the weak kfunc this kernel lacks. */
function explainMissingKfunc(err: unknown, externs: ExternResolver): unknown {
  if (!(err instanceof VerifierError)) return err;
  const m = new RegExp(`unknown#(${String(POISON_CALL_KFUNC_BASE).slice(0, 4)}\\d{6})`).exec(err.log);
  const name = m && externs.poisonedExtern(Number(m[1]));
  if (name) err.message = `the kernel has no kfunc ${name} (a __weak extern) and the program can call it; guard the call with bpf_ksym_exists(${name})\n${err.message}`;
  return err;
}

/** A verifier rejection at a poisoned instruction: say which CO-RE relocation failed, first. */
function explainPoison(err: unknown, fixups: CoreFixup[] | undefined): unknown {
  if (!(err instanceof VerifierError) || !fixups?.some((f) => f.poisoned)) return err;
  const marker = `unknown#${CORE_POISON}`;
  if (!err.log.includes(marker)) return err;
  const at = new Set([...err.log.matchAll(new RegExp(`^(\\d+): \\(85\\) call ${marker}`, "gm"))].map((m) => Number(m[1])));
  const hit = fixups.filter((f) => f.poisoned && (at.has(f.insn) || at.has(f.insn + 1)));
  const named = (hit.length ? hit : fixups.filter((f) => f.poisoned)).map((f) => f.warning).join("\n");
  err.message = `${hit.length ? "a poisoned CO-RE relocation can run" : "a poisoned CO-RE relocation may run"}:\n${named}\n${err.message}`;
  return err;
}

/**
 * Writes the initial slots (`.values = { [i] = &x }`) of every map holding `kind`:
 * each names a map or program of this load. A pinned map reused from bpffs keeps what it holds.
 */
function fillSlots(
  spec: ObjectSpec, maps: Map<string, BpfMap>, reused: Set<string>, kind: "map" | "program", find: (name: string) => BpfMap | Program | undefined,
): void {
  for (const mapSpec of spec.maps.values()) {
    if (reused.has(mapSpec.name)) continue;
    const map = maps.get(mapSpec.name)!;
    for (const slot of mapSpec.initial ?? []) {
      if (slot.kind !== kind) continue;
      const value = find(slot.name);
      const where = `map ${mapSpec.name}: values[${slot.key}] = &${slot.name}`;
      if (!value) {
        throw new ObjectError(
          kind === "program" && spec.programs.has(slot.name)
            ? `${where}: that program is not loaded (options.programs leaves it out); load it too, or drop it from the initial values`
            : `${where}: the object has no ${kind} named "${slot.name}"`,
        );
      }
      try {
        map.update(slot.key, value);
      } catch (err) {
        if (err instanceof SyscallError) err.message = `${where}: ${err.message}`;
        throw err;
      }
    }
  }
}

function createMap(spec: MapSpec, btf: FD | undefined, pinPath = "/sys/fs/bpf", reused?: Set<string>): BpfMap {
  const pinned = spec.pinning === "by-name" ? join(pinPath, spec.name) : undefined;
  if (pinned && existsSync(pinned)) {
    reused?.add(spec.name);
    const map = BpfMap.fromPin(pinned);
    // libbpf's reuse check: these five must match. The kernel does not say which inner maps
    // a pinned map of maps was made for; a wrong one shows when a slot is filled.
    const fields = [
      ["type", map.type, spec.type],
      ["key size", map.keySize, spec.keySize],
      ["value size", map.valueSize, spec.valueSize],
      ["max_entries", map.maxEntries, spec.maxEntries],
      ["flags", map.flags, spec.flags],
    ] as const;
    const differ = fields.filter(([, pinnedValue, wanted]) => pinnedValue !== wanted).map(([what, pinnedValue, wanted]) => `${what} ${pinnedValue}, not ${wanted}`);
    if (differ.length) {
      map.close();
      throw new ObjectError(`map ${spec.name}: the map pinned at ${pinned} has a different definition (${differ.join(", ")}); remove it or change pinPath`);
    }
    return map;
  }
  const map = BpfMap.create(spec, { btfFd: btf });
  try {
    if (spec.contents) {
      map.updateBytes(new Uint8Array(4), spec.contents);
      if (spec.dataSection === "rodata") map.freeze();
    }
    if (pinned) map.pin(pinned);
  } catch (err) {
    map.close();
    throw err;
  }
  return map;
}

/** A global variable after load, read and written through its data section's map. */
export class Variable {
  readonly spec: VariableSpec;
  readonly #map: BpfMap;

  constructor(spec: VariableSpec, map: BpfMap) {
    this.spec = spec;
    this.#map = map;
  }

  get(): unknown {
    return this.spec.read(this.#map.lookupBytes(new Uint8Array(4))!);
  }

  set(value: unknown): void {
    if (this.spec.constant) throw new ObjectError(`variable ${this.spec.name} is in .rodata: set it before load (spec.variable(name).set())`);
    const section = this.#map.lookupBytes(new Uint8Array(4))!;
    this.spec.write(section, value);
    this.#map.updateBytes(new Uint8Array(4), section);
  }
}
