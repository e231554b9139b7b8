// tsbpf runqlat: run queue (scheduler) latency as a histogram, as BCC's runqlat.
// Hooks: sched_wakeup, sched_wakeup_new and sched_switch as tp_btf programs where
// the kernel has BTF (5.5+), else as raw tracepoints (4.17+); BCC falls back to
// kprobes on ttwu_do_wakeup/finish_task_switch, which tsbpf does not need.
import { existsSync } from "node:fs";
import { release } from "node:os";
import { parseIntervalToolArgs, runHistogramTool } from "./skeleton.ts";
import { UsageError } from "./tool.ts";

const HELP = `usage: tsbpf runqlat [-h] [-T] [-m] [-P] [--pidnss] [-L] [-p PID] [--json] [interval] [count]

Summarize run queue (scheduler) latency as a histogram.

positional arguments:
  interval          output interval, in seconds
  count             number of outputs

options:
  -T, --timestamp     include timestamp on output
  -m, --milliseconds  millisecond histogram
  -P, --pids          print a histogram per process ID
      --pidnss        print a histogram per PID namespace
  -L, --tids          print a histogram per thread ID
  -p, --pid PID       trace this PID only
      --json          one JSON object per histogram (and per section) instead of text

hooks: tp_btf sched_wakeup, sched_wakeup_new, sched_switch (kernels with BTF, 5.5+);
raw tracepoints of the same names otherwise (4.17+; TSBPF_SCHED_RAW_TP=1 forces them).

examples:
  tsbpf runqlat            # summarize run queue latency as a histogram
  tsbpf runqlat 1 10       # print 1 second summaries, 10 times
  tsbpf runqlat -mT 1      # 1s summaries, milliseconds, and timestamps
  tsbpf runqlat -P         # show each PID separately
  tsbpf runqlat -p 185     # trace PID 185 only
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  milliseconds: { type: "boolean", short: "m" },
  pids: { type: "boolean", short: "P" },
  pidnss: { type: "boolean" },
  tids: { type: "boolean", short: "L" },
  pid: { type: "string", short: "p" },
  json: { type: "boolean" },
} as const;

/**
 * Which flavour of a scheduler tool's programs to load: "btf_NAME" (tp_btf: the
 * kernel's BTF types the arguments) where the kernel has BTF and is 5.5 or newer,
 * else "raw_NAME" (raw_tp, read through BPF_CORE_READ).
 */
export function schedPrograms(names: string[]): string[] {
  const [major = 0, minor = 0] = release().split(/[.-]/).map(Number);
  // TSBPF_SCHED_RAW_TP=1 forces the raw_tp set (the tests run both).
  const btf = !process.env.TSBPF_SCHED_RAW_TP && existsSync("/sys/kernel/btf/vmlinux") && (major > 5 || (major === 5 && minor >= 5));
  return names.map((n) => `${btf ? "btf" : "raw"}_${n}`);
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseIntervalToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, intervals, pid } = parsed;
  if ([o.pids, o.tids, o.pidnss].filter(Boolean).length > 1) throw new UsageError("-P, -L and --pidnss are exclusive: give one of them");
  const by = o.pids ? 1 : o.tids ? 2 : o.pidnss ? 3 : 0;
  const section = ["", "pid", "tid", "pidns"][by]!;
  return runHistogramTool({
    tool: "runqlat",
    programs: schedPrograms(["wakeup", "wakeup_new", "switch"]),
    constants: { targ_tgid: pid ?? 0, targ_ms: o.milliseconds ?? false, targ_by: by },
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: "Tracing run queue latency... Hit Ctrl-C to end.",
    histograms: [
      by
        ? { map: "dist_by", valType: o.milliseconds ? "msecs" : "usecs", print: { sectionHeader: section, sectionPrintFn: (id: number) => String(id) } }
        : { map: "dist", valType: o.milliseconds ? "msecs" : "usecs" },
    ],
  });
}
