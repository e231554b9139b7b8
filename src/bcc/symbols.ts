// Symbolization for BCC's ksym()/sym()/ksymname(), over the library's
// symbolizer (src/symbolize/) and the one kallsyms table (src/internal/kallsyms.ts).
import { kallsyms } from "../internal/kallsyms.ts";
import { defaultSymbolizer, formatFrame, UNKNOWN } from "../symbolize/index.ts";

export interface SymbolOptions {
  /** Append " [module]" (kernel) or " [path]" (user). */
  showModule?: boolean;
  /** Append "+0xOFFSET" from the symbol's start. */
  showOffset?: boolean;
}

/** The kernel symbol containing `addr`, as BCC's BPF.ksym: "[unknown]" when there is none. */
export function ksym(addr: bigint | number, opts: SymbolOptions = {}): string {
  const f = defaultSymbolizer().kernelFrame(addr);
  if (f.name === UNKNOWN) return UNKNOWN;
  return formatFrame(f, { offset: opts.showOffset, module: opts.showModule });
}

/** The address of kernel symbol `name`, or -1n (BCC's ksymname). */
export function ksymname(name: string): bigint {
  return kallsyms().address(name) ?? -1n;
}

/**
 * The symbol of a user address in process `pid` (BCC's BPF.sym); a negative
 * pid means a kernel address. "[unknown]" when it cannot be resolved.
 */
export function sym(addr: bigint | number, pid: number, opts: SymbolOptions = {}): string {
  if (pid < 0) return ksym(addr, opts);
  // Cached per pid as BCC's sym caches are; mappings are re-read once for an address outside them all.
  const f = defaultSymbolizer().userFrame(pid, addr);
  if (f.name === UNKNOWN) return opts.showModule && f.module ? `${UNKNOWN} [${f.module}]` : UNKNOWN;
  return formatFrame(f, { offset: opts.showOffset, module: opts.showModule });
}
