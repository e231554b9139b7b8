// tsbpf offcputime: BCC's offcputime. Time threads spend off CPU (blocked,
// sleeping, preempted), summed by kernel and user stack at the moment they left,
// in microseconds. sched_switch through tp_btf, or raw_tp on kernels without BTF.
import { existsSync } from "node:fs";
import type { Link } from "../link/link.ts";
import { parseDurationToolArgs, stackCounts, symbolizeStacks, tracepointFrame, writeStackReport } from "./stacktool.ts";
import { startTool } from "./skeleton.ts";
import { intOption, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf offcputime [-h] [-p PID | -t TID | -u | -k] [-U | -K] [-d] [-f] [-s]
                        [--stack-storage-size N] [-m MIN_BLOCK_TIME] [-M MAX_BLOCK_TIME] [--state STATE]
                        [--svg FILE] [--html FILE] [--json] [duration]

Summarize off-CPU time by stack trace (microseconds), until Ctrl-C or for DURATION seconds.

Hooks: the sched:sched_switch tracepoint as tp_btf (typed task_structs), or raw_tp where the
kernel has no BTF; stacks through bpf_get_stackid. No kprobe needed (BCC uses finish_task_switch).

positional arguments:
  duration               duration of trace, in seconds

options:
  -p, --pid PID          trace this PID only
  -t, --tid TID          trace this TID only
  -u, --user-threads-only    user threads only (no kernel threads)
  -k, --kernel-threads-only  kernel threads only (no user threads)
  -U, --user-stacks-only     show stacks from user space only (no kernel space stacks)
  -K, --kernel-stacks-only   show stacks from kernel space only (no user space stacks)
  -d, --delimited        insert delimiter between kernel/user stacks
  -f, --folded           output folded format
  -s, --offset           show address offsets
      --stack-storage-size N  the number of unique stack traces that can be stored and displayed (default 16384)
  -m, --min-block-time US    the amount of time in microseconds over which we store traces (default 1)
  -M, --max-block-time US    the amount of time in microseconds under which we store traces (default U64_MAX)
      --state STATE      filter on this thread state bitmask (eg, 2 == TASK_UNINTERRUPTIBLE); see include/linux/sched.h
      --svg FILE         also write an interactive flame graph (SVG) to FILE
      --html FILE        also write an interactive flame graph (HTML page) to FILE
      --json             one JSON object per stack: comm, pid (thread), count (us), kernel and user frames

examples:
  tsbpf offcputime             # trace off-CPU stack time until Ctrl-C
  tsbpf offcputime 5           # trace for 5 seconds only
  tsbpf offcputime -f 5        # 5 seconds, and output in folded format
  tsbpf offcputime -m 1000     # trace only events that last more than 1000 usec
  tsbpf offcputime -M 10000    # trace only events that last less than 10000 usec
  tsbpf offcputime -p 185      # only trace threads for PID 185
  tsbpf offcputime -t 188      # only trace thread 188
  tsbpf offcputime -u          # only trace user threads (no kernel)
  tsbpf offcputime -k          # only trace kernel threads (no user)
  tsbpf offcputime -U          # only show user space stacks (no kernel)
  tsbpf offcputime -K          # only show kernel space stacks (no user)
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  tid: { type: "string", short: "t" },
  "user-threads-only": { type: "boolean", short: "u" },
  "kernel-threads-only": { type: "boolean", short: "k" },
  "user-stacks-only": { type: "boolean", short: "U" },
  "kernel-stacks-only": { type: "boolean", short: "K" },
  delimited: { type: "boolean", short: "d" },
  folded: { type: "boolean", short: "f" },
  offset: { type: "boolean", short: "s" },
  "stack-storage-size": { type: "string" },
  "min-block-time": { type: "string", short: "m" },
  "max-block-time": { type: "string", short: "M" },
  state: { type: "string" },
  svg: { type: "string" },
  html: { type: "string" },
  json: { type: "boolean" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseDurationToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, duration } = parsed;
  const pid = pidOption(o.pid, "-p/--pid");
  const tid = pidOption(o.tid, "-t/--tid");
  const threadOpts = [pid !== undefined, tid !== undefined, o["user-threads-only"], o["kernel-threads-only"]].filter(Boolean).length;
  if (threadOpts > 1) throw new UsageError("only one of -p/--pid, -t/--tid, -u/--user-threads-only and -k/--kernel-threads-only may be given");
  if (o["user-stacks-only"] && o["kernel-stacks-only"]) throw new UsageError("only one of -U/--user-stacks-only and -K/--kernel-stacks-only may be given");
  if (o.folded && o.offset) throw new UsageError("only one of -f/--folded and -s/--offset may be given");
  if (o["kernel-threads-only"] && o["user-stacks-only"]) {
    throw new UsageError("displaying user stacks for kernel threads doesn't make sense (-k with -U)");
  }
  const stackStorage = intOption(o["stack-storage-size"], "--stack-storage-size", 1, 1 << 24) ?? 16384;
  const minUs = intOption(o["min-block-time"], "-m/--min-block-time", 0) ?? 1;
  const maxUs = o["max-block-time"] === undefined ? 2n ** 64n - 1n : BigInt(intOption(o["max-block-time"], "-M/--max-block-time", 0)!);
  if (BigInt(minUs) > maxUs) throw new UsageError("-m/--min-block-time is above -M/--max-block-time");
  const state = intOption(o.state, "--state", 0, 0xffff);
  const kernel = !o["user-stacks-only"];
  const user = !o["kernel-stacks-only"];
  // tp_btf needs the kernel's BTF; raw_tp reads the same arguments without it.
  const program = existsSync("/sys/kernel/btf/vmlinux") ? "sched_switch" : "sched_switch_raw";

  let links: Link[] = [];
  await using tool = await startTool({
    tool: "offcputime",
    durationSec: duration,
    programs: [program],
    constants: {
      targ_tgid: pid ?? 0,
      targ_tid: tid ?? 0,
      user_threads_only: o["user-threads-only"] ?? false,
      kernel_threads_only: o["kernel-threads-only"] ?? false,
      user_stacks_only: !kernel,
      kernel_stacks_only: !user,
      min_block_us: BigInt(minUs),
      max_block_us: maxUs,
      targ_state: BigInt(state ?? -1),
    },
    prepare(spec) {
      spec.maps.get("stacks")!.maxEntries = stackStorage;
    },
    attach(coll) {
      links = coll.attachAll();
    },
  });
  if (!tool) return 1;
  const { coll, run } = tool;
  if (!o.folded && !o.json) {
    const thread =
      pid !== undefined ? `PID ${pid}` : tid !== undefined ? `TID ${tid}` : o["user-threads-only"] ? "user threads" : o["kernel-threads-only"] ? "kernel threads" : "all threads";
    const stack = !kernel ? "user" : !user ? "kernel" : "user + kernel";
    run.out.line(`Tracing off-CPU time (us) of ${thread} by ${stack} stack${duration ? ` for ${duration} secs.` : "... Hit Ctrl-C to end."}`);
    run.out.flush();
  }
  await run.stopped;
  // Detach before the report: the maps stop changing and nothing stays attached.
  for (const l of links) await l.closeAsync();
  if (run.out.closed) return 0;
  if (!o.folded && !o.json) run.out.line("");
  const raw = stackCounts(coll.map("counts").entries());
  const stacks = symbolizeStacks(coll.map("stacks"), raw, { kernel, user, offset: o.offset, skipKernel: tracepointFrame });
  writeStackReport(run.out, stacks, {
    tool: "offcputime", folded: o.folded, delimited: o.delimited && kernel && user, json: o.json, svg: o.svg, html: o.html,
    title: `offcputime ${args.join(" ")}`.trim(), countName: "us",
  });
  return 0;
}
