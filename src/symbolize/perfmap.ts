// Perf map files (/tmp/perf-PID.map): "START SIZE name" lines in hex, written
// by JITs (Node's --perf-basic-prof, the JVM's perf-map-agent, LuaJIT...).
// Kept sorted; read again when the file grew, since JITs append as they compile.
import { readFileSync, statSync } from "node:fs";

export class PerfMap {
  readonly path: string;
  #starts = new Float64Array(0);
  #ends = new Float64Array(0);
  #names: string[] = [];
  #size = -1;

  constructor(path: string) {
    this.path = path;
  }

  /** Re-reads the file if it changed; false when there is none. */
  refresh(): boolean {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return false;
    }
    if (size === this.#size) return true;
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch {
      return false;
    }
    this.#size = size;
    const entries: [number, number, string][] = [];
    for (const line of text.split("\n")) {
      const a = line.indexOf(" ");
      const b = a < 0 ? -1 : line.indexOf(" ", a + 1);
      if (b < 0) continue;
      const start = Number.parseInt(line.slice(0, a), 16);
      const len = Number.parseInt(line.slice(a + 1, b), 16);
      if (!Number.isFinite(start) || !Number.isFinite(len)) continue;
      entries.push([start, start + len, line.slice(b + 1)]);
    }
    // Later entries win at the same start (code regenerated in place).
    entries.sort((x, y) => x[0] - y[0]);
    this.#starts = Float64Array.from(entries, (e) => e[0]);
    this.#ends = Float64Array.from(entries, (e) => e[1]);
    this.#names = entries.map((e) => e[2]);
    return true;
  }

  get length(): number {
    return this.#names.length;
  }

  lookup(addr: number): { name: string; address: number; offset: number } | undefined {
    const s = this.#starts;
    if (!s.length || addr < s[0]!) return undefined;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= addr) lo = mid;
      else hi = mid - 1;
    }
    // Entries may nest or repeat: walk back over ones starting at the same place.
    for (let i = lo; i >= 0 && i > lo - 4; i--) {
      if (addr >= s[i]! && addr < this.#ends[i]!) return { name: this.#names[i]!, address: s[i]!, offset: addr - s[i]! };
    }
    return undefined;
  }
}
