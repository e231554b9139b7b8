// tsbpf funccount: BCC's funccount. Counts calls of the functions or events a
// pattern matches (uprobes, tracepoints; kprobes on kernels that have them),
// printed per interval or at Ctrl-C.
import { clockTime, FOREVER, intervalHeader, intervalTicks } from "../histogram/interval.ts";
import type { Link } from "../link/link.ts";
import { attachWithCookie, resolvePattern, targetLabel, type ProbeTarget } from "./probes.ts";
import { startTool } from "./skeleton.ts";
import { durationOption, havePrivileges, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf funccount [-h] [-p PID] [-i INTERVAL] [-d DURATION] [-T] [-r] [-c CPU] [--json] pattern

Count functions, tracepoints and user functions, until Ctrl-C, per interval (-i) or for -d seconds.

pattern:
  LIBRARY:FUNC, p:LIBRARY:FUNC   user functions of a binary or library (uprobes; c is libc): c:malloc, c:mall*, /bin/bash:read*
  t:CATEGORY:EVENT               tracepoints: t:syscalls:sys_enter_*, t:sched:sched_*
  FUNC, p::FUNC                  kernel functions (kprobes; this needs a kernel with kprobes)
  Globs (* ? [..]) match several; with -r the function part is a regular expression.

Hooks: uprobes and tracepoints (kprobes where the kernel has them), one BPF program per kind
with the target in each link's BPF cookie (Linux 5.15+). On kernels without kprobes, count a
kernel function's tracepoint instead (e.g. t:syscalls:sys_enter_openat for do_sys_openat2).

options:
  -p, --pid PID          trace this PID only
  -i, --interval SECS    summary interval, seconds
  -d, --duration SECS    total duration of trace, seconds
  -T, --timestamp        include timestamp on output
  -r, --regexp           use regular expressions; default is "*" wildcards only
  -c, --cpu CPU          trace this CPU only
      --json             one JSON object per interval: {time, counts: [{func, count}]}

examples:
  tsbpf funccount 'c:malloc'                # count libc malloc() calls
  tsbpf funccount 'c:mall*' -p 181          # malloc, mallopt... of PID 181
  tsbpf funccount -i 1 't:syscalls:sys_enter_*'   # syscall entries, each second
  tsbpf funccount -r 'c:^str(cmp|len)$'     # regular expression
  tsbpf funccount 'vfs_*'                   # kernel functions (needs kprobes)
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  interval: { type: "string", short: "i" },
  duration: { type: "string", short: "d" },
  timestamp: { type: "boolean", short: "T" },
  regexp: { type: "boolean", short: "r" },
  cpu: { type: "string", short: "c" },
  debug: { type: "boolean", short: "D" },
  json: { type: "boolean" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError("give a pattern, e.g. 'c:malloc' or 't:syscalls:sys_enter_open*'");
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const pattern = positionals[0]!;
  const pid = pidOption(o.pid, "-p/--pid");
  let interval = intOption(o.interval, "-i/--interval", 1, FOREVER, "a number of seconds");
  const duration = durationOption(o.duration);
  const cpu = intOption(o.cpu, "-c/--cpu", 0, 4095);
  // BCC: -d without -i prints once, after the duration.
  if (duration && !interval) interval = duration;
  if (!havePrivileges("funccount")) return 1;
  const targets = resolvePattern(pattern, { regexp: o.regexp, tool: "funccount" });

  const links: Link[] = [];
  try {
    await using tool = await startTool({
      tool: "funccount",
      durationSec: duration,
      programs: [...new Set(targets.map((t) => (t.kind === "tracepoint" ? "count_tracepoint" : "count_probe")))],
      constants: { targ_tgid: pid ?? 0, targ_cpu: cpu ?? -1 },
      prepare(spec) {
        spec.maps.get("counts")!.maxEntries = targets.length;
      },
      attach(coll) {
        // Each link's cookie is its target's index in `targets`.
        targets.forEach((t, i) => links.push(attachWithCookie(coll.program(t.kind === "tracepoint" ? "count_tracepoint" : "count_probe"), t, i, { pid })));
      },
    });
    if (!tool) return 1;
    const { coll, run } = tool;
    // Folded and JSON output stay data only: the line that says tracing has begun goes to stderr.
    const banner = `Tracing ${targets.length} functions for "${pattern}"... Hit Ctrl-C to end.`;
    if (o.json) process.stderr.write(`${banner}\n`);
    else run.out.line(banner);
    run.out.flush();
    const counts = coll.map("counts");
    for await (const tick of intervalTicks({ interval: interval ?? FOREVER, count: FOREVER, signal: run.signal })) {
      if (run.out.closed) break;
      const rows: { func: string; count: number }[] = [];
      for (const [k, v] of counts.entries() as Iterable<[number, bigint]>) {
        if (v > 0n) rows.push({ func: targetLabel(targets[k]!), count: Number(v) });
      }
      rows.sort((a, b) => a.count - b.count);
      if (o.json) {
        run.out.json({ time: clockTime(tick.time), counts: rows });
      } else {
        let text = intervalHeader(o.timestamp ?? false, tick.time);
        text += `${"FUNC".padEnd(36)} ${"COUNT".padStart(8)}\n`;
        for (const r of rows) text += `${r.func.padEnd(36)} ${String(r.count).padStart(8)}\n`;
        run.out.line(text.replace(/\n$/, ""));
        if (tick.last) run.out.line("Detaching...");
      }
      run.out.flush();
      if (tick.last) break;
      for (let i = 0; i < targets.length; i++) counts.update(i, 0n);
    }
    return 0;
  } finally {
    for (const l of links) await l.closeAsync();
  }
}

