// tsbpf softirqs: soft interrupt time (or counts) by vector, as totals or
// histograms, as BCC's softirqs. Hooks: the irq:softirq_entry and
// irq:softirq_exit tracepoints.
import { parseIntervalArgs } from "../histogram/interval.ts";
import { irqMode } from "./hardirqs.ts";
import { drainMap, runHistogramTool, runIntervalTool } from "./skeleton.ts";
import { parseToolArgs } from "./tool.ts";

const HELP = `usage: tsbpf softirqs [-h] [-T] [-N] [-C] [-d] [-c CPU] [--json] [interval] [count]

Summarize soft irq event time as histograms.

positional arguments:
  interval           output interval, in seconds
  count              number of outputs

options:
  -T, --timestamp    include timestamp on output
  -N, --nanoseconds  output in nanoseconds
  -C, --events       show the number of soft irq events
  -d, --dist         show distributions as histograms
  -c, --cpu CPU      trace this CPU only
      --json         one JSON object per interval (per histogram with -d) instead of text

hooks: tracepoints irq:softirq_entry and irq:softirq_exit.

examples:
  tsbpf softirqs            # sum soft irq event time
  tsbpf softirqs -C         # show the number of soft irq events
  tsbpf softirqs -d         # show soft irq event time as histograms
  tsbpf softirqs 1 10       # print 1 second summaries, 10 times
  tsbpf softirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
  tsbpf softirqs -c 1       # trace CPU 1 only
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  nanoseconds: { type: "boolean", short: "N" },
  events: { type: "boolean", short: "C" },
  dist: { type: "boolean", short: "d" },
  cpu: { type: "string", short: "c" },
  json: { type: "boolean" },
} as const;

/** The kernel's softirq_to_name[] (include/linux/interrupt.h's order), as BCC's vec_to_name. */
export const SOFTIRQ_NAMES = ["hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu"];

export function vecToName(vec: number): string {
  return SOFTIRQ_NAMES[vec] ?? `vec${vec}`;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals);
  const m = irqMode({ ...o, count: o.events }, "--events");
  const common = {
    tool: "softirqs",
    constants: m.constants,
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: o.events ? "Tracing soft irq events... Hit Ctrl-C to end." : "Tracing soft irq event time... Hit Ctrl-C to end.",
  };
  if (m.mode === 2) {
    return runHistogramTool({
      ...common,
      histograms: [{ map: "dist", valType: m.label, print: { sectionHeader: "softirq", sectionPrintFn: vecToName, bucketSortFn: (v: number[]) => v.sort((a, b) => a - b) } }],
    });
  }
  return runIntervalTool({
    ...common,
    report(coll) {
      const rows = drainMap(coll.map<number, bigint>("totals"))
        .map(([vec, v]) => ({ vec, value: v / m.factor }))
        .sort((a, b) => (a.value === b.value ? a.vec - b.vec : a.value > b.value ? -1 : 1));
      const lines = [`${"SOFTIRQ".padEnd(16)} ${`TOTAL_${m.label}`.padStart(11)}`, ...rows.map((r) => `${vecToName(r.vec).padEnd(16)} ${String(r.value).padStart(11)}`)];
      return { text: lines.join("\n") + "\n", json: [{ rows: rows.map((r) => ({ softirq: vecToName(r.vec), vec: r.vec, [`total_${m.label}`]: Number(r.value) })) }] };
    },
  });
}
