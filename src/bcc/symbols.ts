// Symbolization for BCC's ksym()/sym(): kernel addresses from /proc/kallsyms,
// user addresses through /proc/PID/maps and the ELF symbols of the mapped file.
import { readFileSync } from "node:fs";
import { ElfFile } from "../elf/index.ts";
import { PT_LOAD, STT_FUNC } from "../elf/constants.ts";

export interface SymbolOptions {
  /** Append " [module]" (kernel) or " [path]" (user). */
  showModule?: boolean;
  /** Append "+0xOFFSET" from the symbol's start. */
  showOffset?: boolean;
}

interface Sym {
  addr: bigint;
  name: string;
  module: string;
}

let kallsyms: Sym[] | undefined;

function kernelSymbols(): Sym[] {
  if (kallsyms) return kallsyms;
  const out: Sym[] = [];
  for (const line of readFileSync("/proc/kallsyms", "utf8").split("\n")) {
    const m = /^([0-9a-f]+) (\S) (\S+)(?:\s+\[(\S+)\])?/.exec(line);
    if (!m) continue;
    const type = m[2]!.toLowerCase();
    if (type !== "t" && type !== "w") continue; // text symbols: what stacks point into
    out.push({ addr: BigInt(`0x${m[1]}`), name: m[3]!, module: m[4] ?? "kernel" });
  }
  out.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  return (kallsyms = out);
}

function floor<T extends { addr: bigint }>(list: T[], addr: bigint): T | undefined {
  let lo = 0;
  let hi = list.length - 1;
  let found: T | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.addr <= addr) {
      found = list[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function format(name: string, offset: bigint, module: string, opts: SymbolOptions): string {
  let s = name;
  if (opts.showOffset) s += `+0x${offset.toString(16)}`;
  if (opts.showModule) s += ` [${module}]`;
  return s;
}

/** The kernel symbol containing `addr`, as BCC's BPF.ksym: "[unknown]" when there is none. */
export function ksym(addr: bigint | number, opts: SymbolOptions = {}): string {
  const a = BigInt(addr);
  const syms = kernelSymbols();
  const s = floor(syms, a);
  if (!s || s.addr === 0n) return "[unknown]";
  return format(s.name, a - s.addr, s.module, opts);
}

/** The address of kernel symbol `name`, or -1n (BCC's ksymname). */
export function ksymname(name: string): bigint {
  return kernelSymbols().find((s) => s.name === name)?.addr ?? -1n;
}

interface ElfSyms {
  funcs: { addr: bigint; size: bigint; name: string }[];
  loads: { offset: number; vaddr: number; filesz: number }[];
}
const elfCache = new Map<string, ElfSyms | undefined>();

function elfSymbols(path: string): ElfSyms | undefined {
  if (elfCache.has(path)) return elfCache.get(path);
  let syms: ElfSyms | undefined;
  try {
    const elf = ElfFile.open(path);
    const seen = new Set<string>();
    const funcs = [...elf.symbols(), ...elf.dynamicSymbols()]
      .filter((s) => s.type === STT_FUNC && s.value !== 0 && s.name)
      .filter((s) => !seen.has(`${s.name}@${s.value}`) && !!seen.add(`${s.name}@${s.value}`))
      .map((s) => ({ addr: BigInt(s.value), size: BigInt(s.size), name: s.name }))
      .sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
    const loads = elf.programHeaders.filter((p) => p.type === PT_LOAD).map((p) => ({ offset: p.offset, vaddr: p.vaddr, filesz: p.filesz }));
    syms = { funcs, loads };
  } catch {
    syms = undefined;
  }
  elfCache.set(path, syms);
  return syms;
}

/**
 * The symbol of a user address in process `pid` (BCC's BPF.sym); a negative
 * pid means a kernel address. "[unknown]" when it cannot be resolved.
 */
export function sym(addr: bigint | number, pid: number, opts: SymbolOptions = {}): string {
  if (pid < 0) return ksym(addr, opts);
  const a = BigInt(addr);
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  } catch {
    return "[unknown]";
  }
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    if (a < start || a >= end) continue;
    const path = m[4]!.replace(/ \(deleted\)$/, "");
    const fileOffset = Number(a - start + BigInt(`0x${m[3]}`));
    const elf = elfSymbols(path);
    if (!elf) return opts.showModule ? `[unknown] [${path}]` : "[unknown]";
    const load = elf.loads.find((l) => fileOffset >= l.offset && fileOffset < l.offset + l.filesz);
    const vaddr = BigInt(load ? fileOffset - load.offset + load.vaddr : fileOffset);
    const f = floor(elf.funcs, vaddr);
    if (!f || (f.size > 0n && vaddr >= f.addr + f.size)) return opts.showModule ? `[unknown] [${path}]` : "[unknown]";
    return format(f.name, vaddr - f.addr, path, opts);
  }
  return "[unknown]";
}
