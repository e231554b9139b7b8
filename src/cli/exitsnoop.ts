// tsbpf exitsnoop: process exits with their age and exit status, BCC's options
// and columns. Hook: the sched:sched_process_exit tracepoint (exit_code,
// start_time and the parent read from the task with CO-RE).
import { constants as osConstants } from "node:os";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";

const HELP = `usage: tsbpf exitsnoop [-h] [-t] [--utc] [-p PID] [--label LABEL] [-x] [--per-thread] [-d SECS] [--json]

Trace all process termination (exit, fatal signal): one line per exit, until Ctrl-C.

options:
  -t, --timestamp        include a timestamp (local time)
      --utc              include a timestamp in UTC (-t implied)
  -p, --pid PID          only trace this process
      --label LABEL      label each line
  -x, --failed           only exits with a failure or a signal (not exit(0))
      --per-thread       trace each thread's termination, not only processes'
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: the sched:sched_process_exit tracepoint; no fallback needed.

examples:
  tsbpf exitsnoop              # trace all process termination
  tsbpf exitsnoop -x           # only failed or signalled exits
  tsbpf exitsnoop -t           # with timestamps
  tsbpf exitsnoop -p 181       # only PID 181
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "t" },
  utc: { type: "boolean" },
  pid: { type: "string", short: "p" },
  label: { type: "string" },
  failed: { type: "boolean", short: "x" },
  "per-thread": { type: "boolean" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface ExitEvent {
  start_time: bigint;
  exit_time: bigint;
  pid: number;
  tid: number;
  ppid: number;
  exit_code: number;
  comm: string;
}

const signalNames = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name.replace(/^SIG/, "")]));

/** BCC's EXIT_CODE column: "0", "code N", "signal N (NAME)", ", core dumped". */
export function exitStatus(status: number): string {
  const sig = status & 0x7f;
  if (!(status & 0xff)) return status ? `code ${status >> 8}` : "0";
  let s = sig ? `signal ${sig} (${signalNames.get(sig) ?? "?"})` : "";
  if (status & 0x80) s += ", core dumped ";
  return s;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, pid, duration } = parsed;
  const stamp = o.timestamp || o.utc;
  const now = () => {
    const d = new Date();
    const [h, m, s, ms] = o.utc ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()] : [d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
    return `${[h, m, s].map((n) => String(n).padStart(2, "0")).join(":")}.${String(ms).padStart(3, "0")}`;
  };
  const zone = o.utc ? "UTC" : new Date().toLocaleTimeString("en-US", { timeZoneName: "short" }).split(" ").pop();
  const label = o.label === undefined ? undefined : o.label || "exit";
  const age = (e: ExitEvent) => Number(e.exit_time - e.start_time) / 1e9;
  return runEventTool<ExitEvent>({
    tool: "exitsnoop",
    constants: { targ_pid: pid ?? 0, targ_failed: o.failed ?? false, targ_threads: o["per-thread"] ?? false },
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header:
      (stamp ? `TIME-${zone}`.padEnd(13) : "") +
      (label !== undefined ? "LABEL".padEnd(6) : "") +
      `${"PCOMM".padEnd(16)} ${"PID".padEnd(7)} ${"PPID".padEnd(7)} ${"TID".padEnd(7)} ${"AGE(s)".padEnd(7)} ${"EXIT_CODE".padEnd(10)}`,
    line: (e) =>
      (stamp ? now().padEnd(13) : "") +
      (label !== undefined ? label.padEnd(6) : "") +
      `${e.comm.padEnd(16)} ${String(e.pid).padEnd(7)} ${String(e.ppid).padEnd(7)} ${String(e.tid).padEnd(7)} ${age(e).toFixed(2).padEnd(7)} ${exitStatus(e.exit_code)}`,
    record: (e) => ({
      time: new Date().toISOString(), comm: e.comm, pid: e.pid, ppid: e.ppid, tid: e.tid, age: age(e),
      exit_code: e.exit_code & 0xff ? undefined : e.exit_code >> 8, signal: e.exit_code & 0x7f || undefined, core_dumped: Boolean(e.exit_code & 0x80), status: exitStatus(e.exit_code).trim(),
    }),
  });
}
