// tsbpf hardirqs: hard interrupt handler time (or counts) by action name, as
// totals or histograms, as BCC's hardirqs. Hooks: the irq:irq_handler_entry and
// irq:irq_handler_exit tracepoints (device interrupt handlers; the timer and IPI
// vectors have no handler action and do not show, as in BCC's tracepoint version).
import { runIrqTool } from "./irqtool.ts";
import { parseToolArgs } from "./tool.ts";

const HELP = `usage: tsbpf hardirqs [-h] [-T] [-N] [-C] [-d] [-c CPU] [--json] [interval] [outputs]

Summarize hard irq event time as histograms.

positional arguments:
  interval           output interval, in seconds
  outputs            number of outputs

options:
  -T, --timestamp    include timestamp on output
  -N, --nanoseconds  output in nanoseconds
  -C, --count        show event counts instead of timing
  -d, --dist         show distributions as histograms
  -c, --cpu CPU      trace this CPU only
      --json         one JSON object per interval (per histogram with -d) instead of text

hooks: tracepoints irq:irq_handler_entry and irq:irq_handler_exit.

examples:
  tsbpf hardirqs            # sum hard irq event time
  tsbpf hardirqs -d         # show hard irq event time as histograms
  tsbpf hardirqs 1 10       # print 1 second summaries, 10 times
  tsbpf hardirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
  tsbpf hardirqs -C         # count irq events
  tsbpf hardirqs -c 1       # trace CPU 1 only
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  nanoseconds: { type: "boolean", short: "N" },
  count: { type: "boolean", short: "C" },
  dist: { type: "boolean", short: "d" },
  cpu: { type: "string", short: "c" },
  json: { type: "boolean" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  return runIrqTool<{ name: string }, string>(parsed.values, parsed.positionals, {
    tool: "hardirqs",
    kind: "hard",
    countFlag: "--count",
    column: "HARDIRQ",
    width: 26,
    sectionHeader: "hardirq",
    sectionPrintFn: String,
    bucketSortFn: (names) => names.sort(),
    name: (k) => k.name,
    compare: (a, b) => (a.name < b.name ? -1 : 1),
    json: (k) => ({ hardirq: k.name }),
  });
}
