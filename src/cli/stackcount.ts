// tsbpf stackcount: BCC's stackcount. Counts the distinct stacks that lead to
// the functions or events a pattern matches (uprobes, tracepoints; kprobes on
// kernels that have them), printed per interval or at the end.
import { clockTime, FOREVER, intervalTicks } from "../histogram/interval.ts";
import type { Link } from "../link/link.ts";
import { formatFolded } from "../report/stacks.ts";
import { Symbolizer } from "../symbolize/index.ts";
import { attachWithCookie, resolvePattern } from "./probes.ts";
import { drainMap, startTool } from "./skeleton.ts";
import { stackCounts, symbolizeStacks, tracepointFrame } from "./stacktool.ts";
import { durationOption, havePrivileges, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf stackcount [-h] [-p PID] [-c CPU] [-i INTERVAL] [-D DURATION] [-T] [-r] [-s] [-P]
                        [-K] [-U] [-v] [-d] [-f] [--json] pattern

Count events and their stack traces, until Ctrl-C, per interval (-i) or for -D seconds.

pattern:
  LIBRARY:FUNC, p:LIBRARY:FUNC   user functions (uprobes; c is libc): c:malloc, /bin/bash:readline
  t:CATEGORY:EVENT               tracepoints: t:sched:sched_switch, t:syscalls:sys_enter_write
  FUNC, p::FUNC                  kernel functions (kprobes; this needs a kernel with kprobes)
  Globs (* ? [..]) match several; with -r the function part is a regular expression.

Hooks: uprobes and tracepoints (kprobes where the kernel has them), stacks through
bpf_get_stackid. Kernels without kprobes: count a tracepoint near the kernel function instead.

options:
  -p, --pid PID          trace this PID only
  -c, --cpu CPU          trace this CPU only
  -i, --interval SECS    summary interval, seconds
  -D, --duration SECS    total duration of trace, seconds
  -T, --timestamp        include timestamp on output
  -r, --regexp           use regular expressions; default is "*" wildcards only
  -s, --offset           show address offsets
  -P, --perpid           display stacks separately for each process
  -K, --kernel-stacks-only   kernel stack only
  -U, --user-stacks-only     user stack only
  -v, --verbose          show raw addresses
  -d, --delimited        insert delimiter between kernel/user stacks
  -f, --folded           output folded format
      --json             one JSON object per stack: comm, pid, count, kernel and user frames

examples:
  tsbpf stackcount 't:sched:sched_switch'     # stacks that lead to a context switch
  tsbpf stackcount -P 'c:malloc'              # malloc() stacks, per process
  tsbpf stackcount -U -p 185 'c:mall*'        # user stacks of malloc & co in PID 185
  tsbpf stackcount -f -D 5 't:syscalls:sys_enter_write'   # folded, for a flame graph
  tsbpf stackcount 'submit_bio'               # a kernel function (needs kprobes)
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  cpu: { type: "string", short: "c" },
  interval: { type: "string", short: "i" },
  duration: { type: "string", short: "D" },
  timestamp: { type: "boolean", short: "T" },
  regexp: { type: "boolean", short: "r" },
  offset: { type: "boolean", short: "s" },
  perpid: { type: "boolean", short: "P" },
  "kernel-stacks-only": { type: "boolean", short: "K" },
  "user-stacks-only": { type: "boolean", short: "U" },
  verbose: { type: "boolean", short: "v" },
  delimited: { type: "boolean", short: "d" },
  folded: { type: "boolean", short: "f" },
  debug: { type: "boolean" },
  json: { type: "boolean" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError("give a pattern, e.g. 'c:malloc' or 't:sched:sched_switch'");
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const pattern = positionals[0]!;
  if (o["kernel-stacks-only"] && o["user-stacks-only"]) {
    throw new UsageError("-K and -U are mutually exclusive. If you want both stacks, that is the default.");
  }
  const pid = pidOption(o.pid, "-p/--pid");
  const cpu = intOption(o.cpu, "-c/--cpu", 0, 4095);
  let interval = intOption(o.interval, "-i/--interval", 1, FOREVER, "a number of seconds");
  const duration = durationOption(o.duration, "-D/--duration");
  if (duration && !interval) interval = duration;
  const kernel = !o["user-stacks-only"];
  const user = !o["kernel-stacks-only"];
  // BCC: tracing one process shows its stacks per process.
  const perpid = o.perpid || pid !== undefined;
  const delimited = (o.delimited ?? false) && kernel && user;
  if (!havePrivileges("stackcount")) return 1;
  const targets = resolvePattern(pattern, { regexp: o.regexp, tool: "stackcount" });

  const links: Link[] = [];
  try {
    await using tool = await startTool({
      tool: "stackcount",
      durationSec: duration,
      programs: [...new Set(targets.map((t) => (t.kind === "tracepoint" ? "count_tracepoint" : "count_probe")))],
      constants: { targ_tgid: pid ?? 0, targ_cpu: cpu ?? -1, kernel_stack: kernel, user_stack: user },
      attach(coll) {
        targets.forEach((t, i) => links.push(attachWithCookie(coll.program(t.kind === "tracepoint" ? "count_tracepoint" : "count_probe"), t, i, { pid })));
      },
    });
    if (!tool) return 1;
    const { coll, run } = tool;
    // Folded and JSON output stay data only: the line that says tracing has begun goes to stderr.
    const banner = `Tracing ${targets.length} functions for "${pattern}"... Hit Ctrl-C to end.`;
    if (o.folded || o.json) process.stderr.write(`${banner}\n`);
    else run.out.line(banner);
    run.out.flush();
    const counts = coll.map("counts");
    const symbolizer = new Symbolizer();
    for await (const tick of intervalTicks({ interval: interval ?? FOREVER, count: FOREVER, signal: run.signal })) {
      if (run.out.closed) break;
      if (tick.last) for (const l of links.splice(0)) await l.closeAsync(); // the last report of a quiet kernel
      const raw = stackCounts(drainMap(counts));
      const s = symbolizeStacks(coll.map("stacks"), raw, { kernel, user, offset: o.offset, address: o.verbose, skipKernel: tracepointFrame }, symbolizer);
      // Without -P, the same frames from different processes are one stack (BCC keys them so).
      const merged = new Map<string, (typeof s.samples)[number]>();
      for (const x of s.samples) {
        const sample = perpid ? x : { ...x, pid: undefined };
        const id = JSON.stringify([sample.kernel, sample.user, perpid ? [x.pid, x.comm] : []]);
        const seen = merged.get(id);
        if (seen) seen.count = BigInt(seen.count) + BigInt(x.count);
        else merged.set(id, { ...sample });
      }
      const stacks = [...merged.values()].sort((a, b) => (BigInt(a.count) < BigInt(b.count) ? -1 : BigInt(a.count) > BigInt(b.count) ? 1 : 0));
      if (o.json) {
        for (const x of stacks) {
          run.out.json({
            time: clockTime(tick.time), ...(perpid ? { comm: x.comm, pid: x.pid } : {}), count: x.count,
            ...(kernel ? { kernel: x.kernel === "missed" ? null : (x.kernel ?? []) } : {}),
            ...(user ? { user: x.user === "missed" ? null : (x.user ?? []) } : {}),
          });
        }
      } else if (o.folded) {
        const text = formatFolded(stacks.map((x) => ({ ...x, comm: x.comm ?? "" })), { delimited, sort: "none" });
        if (text) run.out.line(text.replace(/\n$/, ""));
      } else {
        const lines: string[] = [""];
        if (o.timestamp) lines.push(clockTime(tick.time).padEnd(8));
        for (const x of stacks) {
          // BCC's stackcount layout: frames indented by two, "--", "comm [pid]" with -P, the count by four.
          for (const f of x.kernel === "missed" ? ["[Missed Kernel Stack]"] : (x.kernel ?? [])) lines.push(`  ${f}`);
          if (delimited) lines.push("    --");
          for (const f of x.user === "missed" ? ["[Missed User Stack]"] : (x.user ?? [])) lines.push(`  ${f}`);
          if (perpid && pid === undefined) lines.push(`    ${x.comm} [${x.pid}]`);
          lines.push(`    ${x.count}`, "");
        }
        if (tick.last) lines.push("Detaching...");
        run.out.line(lines.join("\n"));
      }
      run.out.flush();
      if (s.missing) process.stderr.write(`WARNING: ${s.missing} stack traces could not be displayed.${s.collision ? " The stack map is full or had collisions." : ""}\n`);
      if (tick.last) break;
    }
    return 0;
  } finally {
    for (const l of links) await l.closeAsync();
  }
}
