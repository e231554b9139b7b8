// tsbpf softirqs: soft interrupt time (or counts) by vector, as totals or
// histograms, as BCC's softirqs. Hooks: the irq:softirq_entry and
// irq:softirq_exit tracepoints.
import { runIrqTool } from "./irqtool.ts";
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
  const { events, ...o } = parsed.values;
  return runIrqTool<number, number>({ ...o, count: events }, parsed.positionals, {
    tool: "softirqs",
    kind: "soft",
    countFlag: "--events",
    column: "SOFTIRQ",
    width: 16,
    sectionHeader: "softirq",
    sectionPrintFn: vecToName,
    bucketSortFn: (v) => v.sort((a, b) => a - b),
    name: vecToName,
    compare: (a, b) => a - b,
    json: (vec) => ({ softirq: vecToName(vec), vec }),
  });
}
