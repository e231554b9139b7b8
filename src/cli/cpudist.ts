// tsbpf cpudist: on-CPU time per task switch (or, with -O, off-CPU time) as a
// histogram, as BCC's cpudist. Hook: sched_switch as tp_btf (raw_tp before 5.5),
// where BCC uses a kprobe on finish_task_switch (none on this host).
import { readFileSync } from "node:fs";
import { schedPrograms } from "./runqlat.ts";
import { parseIntervalToolArgs, runHistogramTool } from "./skeleton.ts";
import { UsageError } from "./tool.ts";

const HELP = `usage: tsbpf cpudist [-h] [-O] [-T] [-m] [-P] [-L] [-p PID] [-I] [-e] [--json] [interval] [count]

Summarize on- and off-CPU time per task as a histogram.

positional arguments:
  interval             output interval, in seconds
  count                number of outputs

options:
  -O, --offcpu         measure off-CPU time
  -T, --timestamp      include timestamp on output
  -m, --milliseconds   millisecond histogram
  -P, --pids           print a histogram per process ID
  -L, --tids           print a histogram per thread ID
  -p, --pid PID        trace this PID only
  -I, --include-idle   include CPU idle time
  -e, --extension      show extension summary (average/total/count)
      --json           one JSON object per histogram (and per section) instead of text

hooks: tp_btf sched_switch (kernels with BTF, 5.5+), else raw_tp sched_switch
(4.17+; TSBPF_SCHED_RAW_TP=1 forces it). BCC's kprobe on finish_task_switch is not needed.

examples:
  tsbpf cpudist              # summarize on-CPU time as a histogram
  tsbpf cpudist -O           # summarize off-CPU time as a histogram
  tsbpf cpudist 1 10         # print 1 second summaries, 10 times
  tsbpf cpudist -mT 1        # 1s summaries, milliseconds, and timestamps
  tsbpf cpudist -P           # show each PID separately
  tsbpf cpudist -p 185       # trace PID 185 only
  tsbpf cpudist -I           # include CPU idle time
  tsbpf cpudist -e           # show extension summary (average/total/count)
`;

const OPTIONS = {
  offcpu: { type: "boolean", short: "O" },
  timestamp: { type: "boolean", short: "T" },
  milliseconds: { type: "boolean", short: "m" },
  pids: { type: "boolean", short: "P" },
  tids: { type: "boolean", short: "L" },
  pid: { type: "string", short: "p" },
  "include-idle": { type: "boolean", short: "I" },
  extension: { type: "boolean", short: "e" },
  json: { type: "boolean" },
} as const;

/** BCC's pid_to_comm: "PID COMM" while the process lives, else the PID alone. */
function pidToComm(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/comm`, "latin1").trim()}`;
  } catch {
    return String(pid);
  }
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseIntervalToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, intervals, pid } = parsed;
  if (o.pids && o.tids) throw new UsageError("-P and -L are exclusive: give one of them");
  const by = o.pids ? 1 : o.tids ? 2 : 0;
  const label = o.milliseconds ? "msecs" : "usecs";
  return runHistogramTool({
    tool: "cpudist",
    programs: schedPrograms(["switch"]),
    constants: {
      targ_tgid: pid ?? 0,
      targ_offcpu: o.offcpu ?? false,
      targ_ms: o.milliseconds ?? false,
      targ_idle: o["include-idle"] ?? false,
      targ_by: by,
    },
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: `Tracing ${o.offcpu ? "off" : "on"}-CPU time... Hit Ctrl-C to end.`,
    histograms: [
      by
        ? { map: "dist_by", valType: label, print: { sectionHeader: by === 1 ? "pid" : "tid", sectionPrintFn: pidToComm } }
        : { map: "dist", valType: label },
    ],
    after(coll) {
      if (!o.extension) return undefined;
      const ext = coll.map<number, { total: bigint; count: bigint }>("extension");
      const v = ext.lookup(0);
      ext.update(0, { total: 0n, count: 0n });
      if (!v || v.count === 0n) return undefined;
      // BCC: "\navg = %ld %s, total: %ld %s, count: %ld\n", avg truncated.
      return `\navg = ${v.total / v.count} ${label}, total: ${v.total} ${label}, count: ${v.count}\n\n`;
    },
  });
}
