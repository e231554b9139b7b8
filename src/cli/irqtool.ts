// What hardirqs and softirqs share: the mode, unit and CPU options as BCC checks
// them, and the run: log2 histograms per interrupt with -d, else a table of
// totals (time or counts) per interrupt, sorted by total. Each tool says how its
// interrupts are keyed (an action name, a vector) and named.
import { parseIntervalArgs } from "../histogram/interval.ts";
import { drainMap, runHistogramTool, runIntervalTool } from "./skeleton.ts";
import { intOption, UsageError } from "./tool.ts";

export interface IrqOptions {
  timestamp?: boolean;
  /** -C: counts instead of time (hardirqs' --count, softirqs' --events). */
  count?: boolean;
  nanoseconds?: boolean;
  dist?: boolean;
  cpu?: string;
  json?: boolean;
}

/** The options every irq tool shares: mode, unit and CPU, checked as BCC checks them. */
export function irqMode(o: IrqOptions, countFlag: string) {
  if (o.count && (o.dist || o.nanoseconds)) throw new UsageError(`the ${countFlag} option can't be used with time-based options (-d, -N)`);
  const cpu = intOption(o.cpu, "-c/--cpu", 0, 8191, "a CPU number");
  const factor = o.count || o.nanoseconds ? 1n : 1000n;
  const label = o.count ? "count" : o.nanoseconds ? "nsecs" : "usecs";
  const mode = o.count ? 1 : o.dist ? 2 : 0;
  return { cpu: cpu ?? -1, factor, label, mode, constants: { targ_mode: mode, targ_factor: factor, targ_cpu: cpu ?? -1 } };
}

export interface IrqTool<K, S> {
  tool: string;
  /** "hard", "soft": the banner's "Tracing hard irq events...". */
  kind: string;
  countFlag: string;
  /** The name column: "HARDIRQ" and its width. */
  column: string;
  width: number;
  /** The section of -d's histograms ("hardirq") and how a section (the key's first field) prints and sorts. */
  sectionHeader: string;
  sectionPrintFn(section: S): string;
  bucketSortFn(sections: S[]): S[];
  /** The totals map's key: its name, its order among equal totals, its JSON fields. */
  name(key: K): string;
  compare(a: K, b: K): number;
  json(key: K): Record<string, unknown>;
}

export async function runIrqTool<K, S>(o: IrqOptions, positionals: string[], t: IrqTool<K, S>): Promise<number> {
  const intervals = parseIntervalArgs(positionals);
  const m = irqMode(o, t.countFlag);
  const common = {
    tool: t.tool,
    constants: m.constants,
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: `Tracing ${t.kind} irq event${o.count ? "s" : " time"}... Hit Ctrl-C to end.`,
  };
  if (m.mode === 2) {
    return runHistogramTool({
      ...common,
      histograms: [{ map: "dist", valType: m.label, print: { sectionHeader: t.sectionHeader, sectionPrintFn: t.sectionPrintFn, bucketSortFn: t.bucketSortFn } }],
    });
  }
  return runIntervalTool({
    ...common,
    report(coll) {
      const rows = drainMap(coll.map<K, bigint>("totals"))
        .map(([key, v]) => ({ key, value: v / m.factor }))
        .sort((a, b) => (a.value === b.value ? t.compare(a.key, b.key) : a.value > b.value ? -1 : 1));
      const lines = [`${t.column.padEnd(t.width)} ${`TOTAL_${m.label}`.padStart(11)}`, ...rows.map((r) => `${t.name(r.key).padEnd(t.width)} ${String(r.value).padStart(11)}`)];
      return { text: lines.join("\n") + "\n", json: [{ rows: rows.map((r) => ({ ...t.json(r.key), [`total_${m.label}`]: Number(r.value) })) }] };
    },
  });
}
