// tsbpf runqlen: scheduler run queue length as a histogram, sampled at 99 Hz on
// every CPU, as BCC's runqlen. Hook: a cpu-clock perf event (the software PMU,
// present everywhere) running a perf_event program that reads the CPU's
// runqueue nr_running through CO-RE.
import { parseIntervalArgs } from "../histogram/interval.ts";
import { attachPerfEvent, type PerfEventLink } from "../link/perf_event.ts";
import type { Collection } from "../collection.ts";
import { drainMap, runHistogramTool, runIntervalTool } from "./skeleton.ts";
import { parseToolArgs } from "./tool.ts";

const HELP = `usage: tsbpf runqlen [-h] [-T] [-O] [-C] [--json] [interval] [count]

Summarize scheduler run queue length as a histogram.

positional arguments:
  interval         output interval, in seconds
  count            number of outputs

options:
  -T, --timestamp  include timestamp on output
  -O, --runqocc    report run queue occupancy
  -C, --cpus       print output for each CPU separately
      --json       one JSON object per histogram (and per CPU) instead of text

hooks: a cpu-clock perf event at 99 Hz on each CPU (software PMU) with a
perf_event program; the queue length is the runqueue's nr_running, read through
the current task's cfs_rq (CO-RE), minus the running task.

examples:
  tsbpf runqlen            # summarize run queue length as a histogram
  tsbpf runqlen 1 10       # print 1 second summaries, 10 times
  tsbpf runqlen -T 1       # 1s summaries and timestamps
  tsbpf runqlen -O         # report run queue occupancy
  tsbpf runqlen -C         # show each CPU separately
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  runqocc: { type: "boolean", short: "O" },
  cpus: { type: "boolean", short: "C" },
  json: { type: "boolean" },
} as const;

export const FREQUENCY = 99;

/** BCC's run queue occupancy: the share of samples with a queued task, "%6.2f%%"-ready numbers per CPU or overall. */
export function occupancy(entries: Iterable<[number | { cpu: number; slot: number }, bigint]>): { all: number; cpus: Map<number, number> } {
  let idle = 0n;
  let queued = 0n;
  const perCpu = new Map<number, [bigint, bigint]>();
  for (const [key, n] of entries) {
    const [cpu, slot] = typeof key === "number" ? [-1, key] : [key.cpu, key.slot];
    const c = perCpu.get(cpu) ?? [0n, 0n];
    if (slot === 0) {
      idle += n;
      c[0] += n;
    } else {
      queued += n;
      c[1] += n;
    }
    perCpu.set(cpu, c);
  }
  const share = (q: bigint, i: bigint) => (q + i ? (100 * Number(q)) / Number(q + i) : 0);
  const cpus = new Map<number, number>();
  const max = Math.max(-1, ...perCpu.keys());
  for (let c = 0; c <= max; c++) {
    const [i, q] = perCpu.get(c) ?? [0n, 0n];
    cpus.set(c, share(q, i));
  }
  return { all: share(queued, idle), cpus };
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals);
  const perCpu = o.cpus ?? false;
  const map = perCpu ? "dist_cpu" : "dist";
  let link: PerfEventLink | undefined;
  const common = {
    tool: "runqlen",
    constants: { targ_per_cpu: perCpu },
    attach: (coll: Collection) => {
      link = attachPerfEvent(coll.program("do_sample"), { event: "cpu-clock", frequency: FREQUENCY });
    },
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: "Sampling run queue length... Hit Ctrl-C to end.",
  };
  try {
    if (!o.runqocc) return await runHistogramTool({ ...common, histograms: [{ map, kind: "linear", valType: "runqlen", print: { sectionHeader: "cpu", bucketSortFn: (cpus: number[]) => cpus.sort((a, b) => a - b) } }] });
    return await runIntervalTool({
      ...common,
      report(coll) {
        const occ = occupancy(drainMap(coll.map(map)) as [number | { cpu: number; slot: number }, bigint][]);
        if (!perCpu) return { text: `runqocc: ${occ.all.toFixed(2)}%\n`, json: [{ runqocc: occ.all }] };
        return {
          text: [...occ.cpus].map(([c, p]) => `runqocc, CPU ${String(c).padEnd(3)} ${p.toFixed(2).padStart(6)}%`).join("\n") + "\n",
          json: [...occ.cpus].map(([cpu, p]) => ({ cpu, runqocc: p })),
        };
      },
    });
  } finally {
    link?.close();
  }
}
