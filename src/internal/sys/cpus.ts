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
