// A process's executable mappings, from /proc/PID/maps, sorted for lookups.
import { existsSync, readFileSync } from "node:fs";

export interface Mapping {
  start: number;
  end: number;
  /** File offset of `start`. */
  pgoff: number;
  /** The path as the process sees it; "" for anonymous memory; "[vdso]" and such for special ones. */
  path: string;
  /** dev:inode */
  inode: string;
  /** The file as this process can open it (through /proc/PID/root, for other mount namespaces). */
  hostPath: string;
}

export class ProcessMaps {
  readonly pid: number;
  readonly mappings: Mapping[];
  readonly #starts: Float64Array;

  private constructor(pid: number, mappings: Mapping[]) {
    this.pid = pid;
    this.mappings = mappings;
    this.#starts = Float64Array.from(mappings, (m) => m.start);
  }

  /** The executable mappings of `pid`, or undefined when the process is gone. */
  static read(pid: number): ProcessMaps | undefined {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/maps`, "utf8");
    } catch {
      return undefined;
    }
    const root = `/proc/${pid}/root`;
    const out: Mapping[] = [];
    for (const line of text.split("\n")) {
      // 55d0c8a4e000-55d0c8a52000 r-xp 00002000 fe:00 1234   /usr/bin/cat
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/.exec(line);
      if (!m || m[3]![2] !== "x") continue;
      const path = m[7]!.replace(/ \(deleted\)$/, "");
      const hostPath = path.startsWith("/") && existsSync(root + path) ? root + path : path;
      out.push({ start: Number.parseInt(m[1]!, 16), end: Number.parseInt(m[2]!, 16), pgoff: Number.parseInt(m[4]!, 16), path, inode: `${m[5]}:${m[6]}`, hostPath });
    }
    out.sort((a, b) => a.start - b.start);
    return new ProcessMaps(pid, out);
  }

  find(addr: number): Mapping | undefined {
    const s = this.#starts;
    let lo = 0;
    let hi = s.length - 1;
    if (hi < 0 || addr < s[0]!) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= addr) lo = mid;
      else hi = mid - 1;
    }
    const m = this.mappings[lo]!;
    return addr < m.end ? m : undefined;
  }
}

/** The pid of `pid` inside its own pid namespace (the last NSpid), for its perf map's name. */
export function namespacePid(pid: number): number {
  try {
    const m = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    const last = m?.[1]!.trim().split(/\s+/).pop();
    return last ? Number.parseInt(last, 10) : pid;
  } catch {
    return pid;
  }
}
