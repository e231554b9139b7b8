// The one owner of /proc/kallsyms: parsed once per process (about 120,000 lines),
// kept as sorted arrays for address lookups and a lazily built name index.
// Kernel addresses do not fit a double, so each is kept as its distance from
// the lowest address (the kernel and its modules span far less than 2^53).
import { readFileSync } from "node:fs";

export interface KernelSymbol {
  readonly name: string;
  readonly address: bigint;
  /** kallsyms' type letter: T/t text, W/w weak, D/d data, ... */
  readonly type: string;
  /** The module's name, or undefined for the kernel image. */
  readonly module: string | undefined;
}

export interface KernelLookup {
  readonly name: string;
  /** Start of the symbol. */
  readonly address: bigint;
  /** addr - address. */
  readonly offset: number;
  readonly module: string | undefined;
}

export class Kallsyms {
  /** Lowest address (0n when there are none). */
  readonly base: bigint;
  /** Entries sorted by address: address - base. */
  readonly #offsets: Float64Array;
  readonly #names: string[];
  readonly #types: string;
  /** Index into #modules, 0 = kernel image. */
  readonly #moduleIds: Uint16Array;
  readonly #modules: (string | undefined)[];
  #byName: Map<string, number> | undefined;
  /** True when every address read 0 (kptr_restrict, or not root): nothing can be resolved. */
  readonly restricted: boolean;

  /** Parses kallsyms text (the format of /proc/kallsyms). */
  constructor(text: string) {
    // Addresses as two 32-bit halves (BigInt parsing and comparing 120,000 of them took seconds).
    const his: number[] = [];
    const los: number[] = [];
    const names: string[] = [];
    const types: string[] = [];
    const mods: number[] = [];
    const modules: (string | undefined)[] = [undefined];
    const moduleIndex = new Map<string, number>();
    let zero = 0;
    let pos = 0;
    while (pos < text.length) {
      let end = text.indexOf("\n", pos);
      if (end < 0) end = text.length;
      // "ffffffff81000000 T _stext" or "ffffffffc0201000 t fn\t[module]"
      const sp1 = text.indexOf(" ", pos);
      if (sp1 > pos && sp1 + 3 < end) {
        // Only module symbols have a tab; an unbounded indexOf would scan to the modules for every line.
        const tab = text.charCodeAt(end - 1) === 0x5d /* ] */ ? text.lastIndexOf("\t", end) : -1;
        const nameEnd = tab > sp1 ? tab : end;
        const split = Math.max(pos, sp1 - 8);
        const hi = split > pos ? Number.parseInt(text.slice(pos, split), 16) : 0;
        const lo = Number.parseInt(text.slice(split, sp1), 16);
        if (hi === 0 && lo === 0) zero++;
        his.push(hi);
        los.push(lo);
        types.push(text[sp1 + 1]!);
        names.push(text.slice(sp1 + 3, nameEnd));
        let mod = 0;
        if (nameEnd < end) {
          const m = text.slice(nameEnd + 1, end).replace(/^\[|\]$/g, "");
          mod = moduleIndex.get(m) ?? 0;
          if (!mod) {
            mod = modules.push(m) - 1;
            moduleIndex.set(m, mod);
          }
        }
        mods.push(mod);
      }
      pos = end + 1;
    }
    const n = names.length;
    this.restricted = n > 0 && zero === n;
    let minHi = Infinity;
    let minLo = Infinity;
    // The base is the lowest kernel-half address: per-CPU symbols ("0000000000001000 A cpu_debug_store",
    // listed by Debian's kernels) would put it at 0, and offsets from 0 lose precision in a double.
    const kernelHalf = his.some((h) => h >= 0x80000000);
    for (let i = 0; i < n; i++) {
      if (kernelHalf && his[i]! < 0x80000000) continue;
      if (his[i]! < minHi || (his[i] === minHi && los[i]! < minLo)) {
        minHi = his[i]!;
        minLo = los[i]!;
      }
    }
    this.base = n ? (BigInt(minHi) << 32n) + BigInt(minLo) : 0n;
    const rel = new Float64Array(n);
    for (let i = 0; i < n; i++) rel[i] = (his[i]! - minHi) * 0x1_0000_0000 + (los[i]! - minLo);
    const order = Array.from({ length: n }, (_, i) => i);
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = rel[i - 1]! <= rel[i]!;
    if (!sorted) order.sort((a, b) => rel[a]! - rel[b]! || a - b);
    this.#offsets = new Float64Array(n);
    this.#moduleIds = new Uint16Array(n);
    this.#names = new Array(n);
    const typeChars: string[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      this.#offsets[k] = rel[i]!;
      this.#names[k] = names[i]!;
      this.#moduleIds[k] = mods[i]!;
      typeChars[k] = types[i]!;
    }
    this.#types = typeChars.join("");
    this.#modules = modules;
  }

  get size(): number {
    return this.#names.length;
  }

  /** The symbol containing `addr`: the last one at or below it, preferring text symbols at equal addresses. */
  lookup(addr: bigint | number): KernelLookup | undefined {
    if (this.restricted || this.#names.length === 0) return undefined;
    const a = BigInt(addr);
    if (a < this.base) return undefined;
    const rel = Number(a - this.base);
    const offs = this.#offsets;
    let lo = 0;
    let hi = offs.length - 1;
    if (rel < offs[0]!) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offs[mid]! <= rel) lo = mid;
      else hi = mid - 1;
    }
    // Aliases share an address (_stext, _text): keep the first text one of the run.
    let k = lo;
    while (k > 0 && offs[k - 1] === offs[lo]) k--;
    let pick = lo;
    for (let j = k; j <= lo; j++) {
      const t = this.#types[j]!;
      if (t === "T" || t === "t" || t === "W" || t === "w") {
        pick = j;
        break;
      }
    }
    return {
      name: this.#names[pick]!,
      address: this.base + BigInt(offs[pick]!),
      offset: rel - offs[pick]!,
      module: this.#modules[this.#moduleIds[pick]!],
    };
  }

  /** The address of `name` (the first symbol of that name), or undefined. */
  address(name: string): bigint | undefined {
    if (!this.#byName) {
      this.#byName = new Map();
      for (let i = 0; i < this.#names.length; i++) if (!this.#byName.has(this.#names[i]!)) this.#byName.set(this.#names[i]!, i);
    }
    const i = this.#byName.get(name);
    return i === undefined ? undefined : this.base + BigInt(this.#offsets[i]!);
  }

  has(name: string): boolean {
    return this.address(name) !== undefined;
  }

  /** Every symbol, in address order (types: only these letters, case-insensitive, when given). */
  *symbols(types?: string): IterableIterator<KernelSymbol> {
    const want = types?.toLowerCase();
    for (let i = 0; i < this.#names.length; i++) {
      const type = this.#types[i]!;
      if (want && !want.includes(type.toLowerCase())) continue;
      yield { name: this.#names[i]!, address: this.base + BigInt(this.#offsets[i]!), type, module: this.#modules[this.#moduleIds[i]!] };
    }
  }
}

let cached: Kallsyms | undefined;

/** /proc/kallsyms, parsed on first use and kept; an empty table when it cannot be read. */
export function kallsyms(): Kallsyms {
  if (cached) return cached;
  let text = "";
  try {
    text = readFileSync("/proc/kallsyms", "utf8");
  } catch {
    // Unreadable (no procfs): nothing resolves, callers fall back.
  }
  return (cached = new Kallsyms(text));
}

/** Drops the parsed table, so the next kallsyms() reads the file again (after modules load). */
export function reloadKallsyms(): Kallsyms {
  cached = undefined;
  return kallsyms();
}
