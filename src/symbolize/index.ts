// Symbolization of stack addresses: kernel ones through kallsyms, user ones
// through the process's mappings, the mapped files' ELF symbols (and their
// debug files, MiniDebugInfo) and JIT perf maps. Unresolved frames are
// "[unknown]", as BCC prints them, never an error: a process may have exited
// before its stacks were read.
import { existsSync } from "node:fs";
import { kallsyms, type Kallsyms } from "../internal/kallsyms.ts";
import { binarySymbols, type BinaryOptions, type BinarySymbols } from "./binary.ts";
import { demangle } from "./demangle.ts";
import { PerfMap } from "./perfmap.ts";
import { namespacePid, ProcessMaps, type Mapping } from "./process.ts";

export { BinarySymbols, binarySymbols, clearBinaryCache, debugFileCandidates, miniDebugInfo, type SymbolOrigin } from "./binary.ts";
export { demangle, isMangled } from "./demangle.ts";
export { PerfMap } from "./perfmap.ts";
export { ProcessMaps, type Mapping } from "./process.ts";

export const UNKNOWN = "[unknown]";

export interface Frame {
  readonly address: bigint;
  /** The function (demangled unless asked not to), or "[unknown]". */
  readonly name: string;
  /** Bytes from the function's start (0 when unknown). */
  readonly offset: number;
  /** The kernel module ("kernel" for the image), the mapped file, "[perf-map]" or "" when unknown. */
  readonly module: string;
}

export interface SymbolizerOptions extends BinaryOptions {
  /** Demangle C++ and Rust names (default true). */
  demangle?: boolean;
  /** Read /tmp/perf-PID.map for addresses in anonymous executable memory (default true). */
  perfMaps?: boolean;
  /** The kallsyms table (default: /proc/kallsyms, parsed once per process). */
  kallsyms?: Kallsyms;
}

interface ProcessState {
  maps: ProcessMaps | undefined;
  /** Each mapping's binary, resolved once (a stat per frame cost more than the lookup). */
  binaries: Map<Mapping, BinarySymbols | undefined>;
  perfMap: PerfMap | undefined;
  /** Maps were re-read for an address outside every mapping (dlopen, JIT): once per state. */
  reread: boolean;
}

/**
 * Keeps what it read per process (mappings, perf map) until `forget(pid)`;
 * binaries' symbols are cached for the whole process, by build id.
 */
export class Symbolizer {
  readonly #opts: SymbolizerOptions;
  readonly #procs = new Map<number, ProcessState>();

  constructor(opts: SymbolizerOptions = {}) {
    this.#opts = opts;
  }

  get #ksyms(): Kallsyms {
    return this.#opts.kallsyms ?? kallsyms();
  }

  /** A kernel address. */
  kernelFrame(addr: bigint | number): Frame {
    const address = BigInt(addr);
    const s = this.#ksyms.lookup(address);
    if (!s) return { address, name: UNKNOWN, offset: 0, module: "" };
    return { address, name: s.name, offset: s.offset, module: s.module ?? "kernel" };
  }

  kernelStack(addrs: readonly (bigint | number)[]): Frame[] {
    return addrs.map((a) => this.kernelFrame(a));
  }

  /** A user address in process `pid`. */
  userFrame(pid: number, addr: bigint | number): Frame {
    const address = BigInt(addr);
    const a = Number(address);
    const st = this.#process(pid);
    let m = st.maps?.find(a);
    if (!m && st.maps && !st.reread) {
      st.reread = true; // a library loaded since: read the mappings again, once
      st.maps = ProcessMaps.read(pid) ?? st.maps;
      m = st.maps.find(a);
    }
    if (m && m.path.startsWith("/")) {
      let bin = st.binaries.get(m);
      if (bin === undefined && !st.binaries.has(m)) st.binaries.set(m, (bin = binarySymbols(m.hostPath, this.#binaryOpts(pid))));
      const s = bin?.lookupFileOffset(a - m.start + m.pgoff);
      if (s) return { address, name: this.#name(s.name), offset: s.offset, module: m.path };
      return { address, name: UNKNOWN, offset: 0, module: m.path };
    }
    // Anonymous executable memory (or the process is gone): JIT code from the perf map.
    if (this.#opts.perfMaps !== false) {
      const pm = this.#perfMap(pid, st);
      let s = pm?.lookup(a);
      if (!s && pm && pm.refresh()) s = pm.lookup(a);
      if (s) return { address, name: s.name, offset: s.offset, module: "[perf-map]" };
    }
    return { address, name: UNKNOWN, offset: 0, module: m?.path ?? "" };
  }

  userStack(pid: number, addrs: readonly (bigint | number)[]): Frame[] {
    return addrs.map((a) => this.userFrame(pid, a));
  }

  /** Drops what was read of `pid` (its mappings may have changed, or it exited). */
  forget(pid: number): void {
    this.#procs.delete(pid);
  }

  clear(): void {
    this.#procs.clear();
  }

  #name(name: string): string {
    return this.#opts.demangle === false ? name : demangle(name);
  }

  #binaryOpts(pid: number): BinaryOptions {
    return { debugDirs: this.#opts.debugDirs, root: this.#opts.root ?? (existsSync(`/proc/${pid}/root`) ? `/proc/${pid}/root` : undefined) };
  }

  #process(pid: number): ProcessState {
    let st = this.#procs.get(pid);
    if (!st) {
      st = { maps: ProcessMaps.read(pid), binaries: new Map(), perfMap: undefined, reread: false };
      this.#procs.set(pid, st);
    }
    return st;
  }

  #perfMap(pid: number, st: ProcessState): PerfMap | undefined {
    if (!st.perfMap) {
      const nspid = st.maps ? namespacePid(pid) : pid;
      const inRoot = `/proc/${pid}/root/tmp/perf-${nspid}.map`;
      st.perfMap = new PerfMap(st.maps && existsSync(inRoot) ? inRoot : `/tmp/perf-${pid}.map`);
      st.perfMap.refresh();
    }
    return st.perfMap;
  }
}

export interface FormatOptions {
  /** Append "+0xOFFSET" (BCC's show_offset). */
  offset?: boolean;
  /** Append " [module]" (BCC's show_module). */
  module?: boolean;
}

/** A frame as BCC prints it: "name", "name+0x1a", "name [module]". */
export function formatFrame(f: Frame, opts: FormatOptions = {}): string {
  let s = f.name;
  if (opts.offset && f.name !== UNKNOWN) s += `+0x${f.offset.toString(16)}`;
  if (opts.module && f.module) s += ` [${f.module}]`;
  return s;
}

let shared: Symbolizer | undefined;

/** One process-wide Symbolizer, for callers that need no options. */
export function defaultSymbolizer(): Symbolizer {
  return (shared ??= new Symbolizer());
}
