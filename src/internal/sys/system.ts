import { readFileSync } from "node:fs";

/** Parses a kernel CPU list such as "0-3,5,7-8". */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(",")) {
    if (!part) continue;
    const [lo, hi] = part.split("-").map((n) => Number.parseInt(n, 10));
    for (let cpu = lo; cpu <= (hi ?? lo); cpu++) cpus.push(cpu);
  }
  return cpus;
}

let possible: number | undefined;

/** Number of possible CPUs: the size of per-CPU map values and perf event arrays. */
export function possibleCpus(): number {
  possible ??= parseCpuList(readFileSync("/sys/devices/system/cpu/possible", "utf8")).length;
  return possible;
}

/** CPUs online now: where per-CPU perf events can be opened. */
export function onlineCpus(): number[] {
  return parseCpuList(readFileSync("/sys/devices/system/cpu/online", "utf8"));
}

let page: number | undefined;

/** The kernel's page size: the unit of ring and perf buffer mappings. */
export function pageSize(): number {
  if (page === undefined) {
    // Node has no sysconf; the aux vector's AT_PAGESZ (6) says it without running anything.
    const auxv = readFileSync("/proc/self/auxv");
    const view = new DataView(auxv.buffer, auxv.byteOffset, auxv.byteLength);
    for (let at = 0; at + 16 <= view.byteLength; at += 16) {
      if (view.getBigUint64(at, true) === 6n) page = Number(view.getBigUint64(at + 8, true));
    }
    page ??= 4096;
  }
  return page;
}
