// tsbpf funclatency: BCC's funclatency. The time from entry to return of the
// functions a pattern matches, as a log2 histogram per interval or at the end:
// uprobe + uretprobe pairs on user functions, kprobe + kretprobe on kernels
// that have kprobes.
import { clockTime, FOREVER, intervalHeader, intervalTicks } from "../histogram/interval.ts";
import { formatLog2Hist, histogramJson } from "../histogram/index.ts";
import type { Link } from "../link/link.ts";
import { attachWithCookie, resolvePattern, targetLabel, type ProbeTarget } from "./probes.ts";
import { counterDeltas, drainMap, startTool } from "./skeleton.ts";
import { durationOption, havePrivileges, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf funclatency [-h] [-p PID] [-i INTERVAL] [-d DURATION] [-T] [-u] [-m] [-F] [-r] [--json] pattern

Time functions and print latency as a histogram, until Ctrl-C, per interval (-i) or for -d seconds.

pattern:
  LIBRARY:FUNC, p:LIBRARY:FUNC   user functions of a binary or library (uprobes; c is libc): c:read, c:*printf
  FUNC, p::FUNC                  kernel functions (kprobes; this needs a kernel with kprobes)
  Globs (* ? [..]) match several; with -r the function part is a regular expression.

Hooks: a uprobe and a uretprobe per function (kprobe and kretprobe for kernel functions, on kernels
that have kprobes); each return probe's link carries its function's index (BPF cookie, Linux 5.15+).
A kernel without kprobes cannot time kernel functions: time a syscall with the tracepoints
syscalls:sys_enter_NAME and sys_exit_NAME (e.g. tsbpf syscount -L).

options:
  -p, --pid PID          trace this PID only
  -i, --interval SECS    summary interval, in seconds
  -d, --duration SECS    total duration of trace, in seconds
  -T, --timestamp        include timestamp on output
  -u, --microseconds     microsecond histogram
  -m, --milliseconds     millisecond histogram
  -F, --function         show a separate histogram per function
  -r, --regexp           use regular expressions; default is "*" wildcards only
      --json             the histograms as JSON (BCC's print_json_hist shape), with avg, total and count

examples:
  tsbpf funclatency c:read             # time libc read(), nanoseconds
  tsbpf funclatency -u c:read          # time libc read(), microseconds
  tsbpf funclatency -m -i 5 c:usleep   # milliseconds, every 5 seconds
  tsbpf funclatency -p 181 c:malloc    # only PID 181
  tsbpf funclatency -F 'c:*printf'     # one histogram per printf function
  tsbpf funclatency do_sys_open        # a kernel function (needs kprobes)
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  interval: { type: "string", short: "i" },
  duration: { type: "string", short: "d" },
  timestamp: { type: "boolean", short: "T" },
  microseconds: { type: "boolean", short: "u" },
  milliseconds: { type: "boolean", short: "m" },
  function: { type: "boolean", short: "F" },
  regexp: { type: "boolean", short: "r" },
  level: { type: "string", short: "l" },
  verbose: { type: "boolean", short: "v" },
  json: { type: "boolean" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError("give a pattern, e.g. 'c:read' or 'do_sys_open'");
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  if (o.microseconds && o.milliseconds) throw new UsageError("only one of -u/--microseconds and -m/--milliseconds may be given");
  if (o.level !== undefined) throw new UsageError("-l/--level (nested calls) is not supported by tsbpf funclatency");
  const pattern = positionals[0]!;
  if (pattern.startsWith("t:")) throw new UsageError(`"${pattern}": a tracepoint has no return; funclatency times functions (LIBRARY:FUNC or a kernel FUNC)`);
  const pid = pidOption(o.pid, "-p/--pid");
  let interval = intOption(o.interval, "-i/--interval", 1, FOREVER, "a number of seconds");
  const duration = durationOption(o.duration);
  if (duration && !interval) interval = duration;
  const label = o.milliseconds ? "msecs" : o.microseconds ? "usecs" : "nsecs";
  const div = o.milliseconds ? 1_000_000n : o.microseconds ? 1000n : 1n;
  if (!havePrivileges("funclatency")) return 1;
  const targets = resolvePattern(pattern, { regexp: o.regexp, tool: "funclatency" });

  const links: Link[] = [];
  try {
    await using tool = await startTool({
      tool: "funclatency",
      durationSec: duration,
      constants: { targ_tgid: pid ?? 0, unit_div: div, per_function: o.function ?? false },
      attach(coll) {
        targets.forEach((t, i) => {
          links.push(attachWithCookie(coll.program("func_entry"), t, i, { pid }));
          links.push(attachWithCookie(coll.program("func_return"), t, i, { pid, retprobe: true }));
        });
      },
    });
    if (!tool) return 1;
    const { coll, run } = tool;
    // Folded and JSON output stay data only: the line that says tracing has begun goes to stderr.
    const banner = `Tracing ${targets.length} functions for "${pattern}"... Hit Ctrl-C to end.`;
    if (o.json) process.stderr.write(`${banner}\n`);
    else run.out.line(banner);
    run.out.flush();
    const dist = coll.map("dist");
    const avg = counterDeltas(coll.map("avg"));
    const histOpts = o.function
      ? { valType: label, sectionHeader: "Function", sectionPrintFn: (i: number) => targetLabel(targets[i]!) }
      : { valType: label };
    for await (const tick of intervalTicks({ interval: interval ?? FOREVER, count: FOREVER, signal: run.signal })) {
      if (run.out.closed) break;
      // Without -F every key is {func: 0, slot}: the plain histogram BCC prints.
      const entries = (drainMap(dist) as [{ func: number; slot: number }, bigint][]).map(([k, v]) =>
        o.function ? ([k, v] as const) : ([k.slot, v] as const),
      );
      const total = avg(0);
      const count = avg(1);
      const totalIn = Number(total) / Number(div);
      if (o.json) {
        for (const h of histogramJson("log2", entries, histOpts)) run.out.json({ time: clockTime(tick.time), ...h });
        run.out.json({ time: clockTime(tick.time), avg: count ? Math.trunc(totalIn / Number(count)) : 0, total: Math.trunc(totalIn), count: Number(count), unit: label });
      } else {
        let text = intervalHeader(o.timestamp ?? false, tick.time);
        text += formatLog2Hist(entries, histOpts);
        // BCC: "%ld" of Python floats truncates.
        if (count > 0n) text += `\navg = ${Math.trunc(totalIn / Number(count))} ${label}, total: ${Math.trunc(totalIn)} ${label}, count: ${count}\n\n`;
        run.out.line(text.replace(/\n$/, ""));
        if (tick.last) run.out.line("Detaching...");
      }
      run.out.flush();
      if (tick.last) break;
    }
    return 0;
  } finally {
    for (const l of links) await l.closeAsync();
  }
}
