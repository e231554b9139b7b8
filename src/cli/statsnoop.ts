// tsbpf statsnoop: stat() family syscalls, with BCC's statsnoop columns and options.
import { tracepointExists } from "../link/tracepoint.ts";
import { NotSupportedError } from "../errors.ts";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";
import { havePrivileges } from "./tool.ts";

const HELP = `usage: tsbpf statsnoop [-h] [-t] [-s] [-x] [-p PID] [-d DURATION] [--json] [--perf-buffer]

Trace stat() syscalls: one line per call, until Ctrl-C.

options:
  -t, --timestamp      include timestamp on output (seconds since the first call)
  -s, --sysname        include the syscall name on output
  -x, --failed         only show failed stats
  -p, --pid PID        trace this PID only
  -d, --duration SECS  stop after this many seconds
      --json           one JSON object per call instead of columns
      --perf-buffer    read events through a perf buffer even where a ring buffer works

hooks: the tracepoints syscalls:sys_enter_/sys_exit_ of stat, statx, statfs, newstat,
newlstat, fstatat64 and newfstatat, each where the architecture has it (no kprobes).

examples:
  tsbpf statsnoop           # trace all stat() syscalls
  tsbpf statsnoop -t        # include timestamps
  tsbpf statsnoop -x        # only show failed stats
  tsbpf statsnoop -p 181    # only trace PID 181
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "t" },
  sysname: { type: "boolean", short: "s" },
  failed: { type: "boolean", short: "x" },
  pid: { type: "string", short: "p" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

const SYS_NAMES = ["N/A", "stat", "statx", "statfs", "newstat", "newlstat", "fstatat64", "newfstatat"];

interface StatEvent {
  ts_ns: bigint;
  pid: number;
  ret: number;
  type: number;
  comm: string;
  fname: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, pid, duration } = parsed;
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("statsnoop")) return 1;
  const syscalls = SYS_NAMES.slice(1).filter((s) => tracepointExists("syscalls", `sys_enter_${s}`));
  if (!syscalls.length) throw new NotSupportedError("syscalls:sys_enter_*stat*", "this tool needs the syscall tracepoints (CONFIG_FTRACE_SYSCALLS), which this kernel does not have");
  let first: bigint | undefined;
  const seconds = (ts: bigint) => Number(ts - (first ??= ts)) / 1e9;
  return runEventTool<StatEvent>({
    tool: "statsnoop",
    durationSec: duration,
    programs: syscalls.flatMap((s) => [`enter_${s}`, `exit_${s}`]),
    constants: { targ_pid: pid ?? 0, targ_failed: o.failed ?? false },
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header: (o.timestamp ? "TIME(s)".padEnd(14) : "") + `${"PID".padEnd(7)} ${"COMM".padEnd(16)} ${"FD".padStart(4)} ${"ERR".padStart(3)}` + (o.sysname ? ` ${"SYSCALL".padEnd(12)}` : "") + " PATH",
    line: (e) => {
      const fd = e.ret >= 0 ? e.ret : -1;
      const err = e.ret >= 0 ? 0 : -e.ret;
      return (
        (o.timestamp ? seconds(e.ts_ns).toFixed(9).padEnd(14) : "") +
        `${String(e.pid).padEnd(7)} ${e.comm.padEnd(16)} ${String(fd).padStart(4)} ${String(err).padStart(3)}` +
        (o.sysname ? ` ${(SYS_NAMES[e.type] ?? "N/A").padEnd(12)}` : "") +
        ` ${e.fname}`
      );
    },
    record: (e) => ({
      time: seconds(e.ts_ns),
      pid: e.pid,
      comm: e.comm,
      fd: e.ret >= 0 ? e.ret : -1,
      err: e.ret >= 0 ? 0 : -e.ret,
      syscall: SYS_NAMES[e.type] ?? "N/A",
      path: e.fname,
    }),
  });
}
