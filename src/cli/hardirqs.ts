// tsbpf hardirqs: hard interrupt handler time (or counts) by action name, as
// totals or histograms, as BCC's hardirqs. Hooks: the irq:irq_handler_entry and
// irq:irq_handler_exit tracepoints (device interrupt handlers; the timer and IPI
// vectors have no handler action and do not show, as in BCC's tracepoint version).
import { parseIntervalArgs } from "../histogram/interval.ts";
import { drainMap, runHistogramTool, runIntervalTool } from "./skeleton.ts";
import { intOption, parseToolArgs, UsageError } from "./tool.ts";

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

/** The options every irq tool shares: mode, unit and CPU, checked as BCC checks them. */
export function irqMode(o: { count?: boolean; nanoseconds?: boolean; dist?: boolean; cpu?: string }, countFlag: string) {
  if (o.count && (o.dist || o.nanoseconds)) throw new UsageError(`the ${countFlag} option can't be used with time-based options (-d, -N)`);
  const cpu = intOption(o.cpu, "-c/--cpu", 0, 8191, "a CPU number");
  const factor = o.count || o.nanoseconds ? 1n : 1000n;
  const label = o.count ? "count" : o.nanoseconds ? "nsecs" : "usecs";
  const mode = o.count ? 1 : o.dist ? 2 : 0;
  return { cpu: cpu ?? -1, factor, label, mode, constants: { targ_mode: mode, targ_factor: factor, targ_cpu: cpu ?? -1 } };
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals);
  const m = irqMode(o, "--count");
  const common = {
    tool: "hardirqs",
    constants: m.constants,
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: o.count ? "Tracing hard irq events... Hit Ctrl-C to end." : "Tracing hard irq event time... Hit Ctrl-C to end.",
  };
  if (m.mode === 2) {
    return runHistogramTool({
      ...common,
      histograms: [{ map: "dist", valType: m.label, print: { sectionHeader: "hardirq", sectionPrintFn: String, bucketSortFn: (names: string[]) => names.sort() } }],
    });
  }
  return runIntervalTool({
    ...common,
    report(coll) {
      const rows = drainMap(coll.map<{ name: string }, bigint>("totals"))
        .map(([k, v]) => ({ name: k.name, value: v / m.factor }))
        .sort((a, b) => (a.value === b.value ? (a.name < b.name ? -1 : 1) : a.value > b.value ? -1 : 1));
      const lines = [`${"HARDIRQ".padEnd(26)} ${`TOTAL_${m.label}`.padStart(11)}`, ...rows.map((r) => `${r.name.padEnd(26)} ${String(r.value).padStart(11)}`)];
      return { text: lines.join("\n") + "\n", json: [{ rows: rows.map((r) => ({ hardirq: r.name, [`total_${m.label}`]: Number(r.value) })) }] };
    },
  });
}
