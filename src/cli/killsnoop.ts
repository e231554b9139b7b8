// tsbpf killsnoop: signals sent by kill(), tkill() and tgkill(), BCC's options
// and columns. Hooks: syscalls:sys_enter_/sys_exit_ kill, tkill and tgkill.
import { readFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { tracepointExists } from "../link/tracepoint.ts";
import { clockNow } from "../internal/net.ts";
import { runEventTool } from "./skeleton.ts";
import { durationOption, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf killsnoop [-h] [-x] [-p PID] [-T TPID] [-s SIGNAL] [-d SECS] [--json]

Trace signals issued by the kill() syscalls: one line per signal sent, until Ctrl-C.

options:
  -x, --failed           only show failed kill syscalls
  -p, --pid PID          only trace signals sent by this process
  -T, --tpid TPID        only trace signals sent to this process (or thread)
  -s, --signal SIGNAL    only this signal (a number or a name: 9, KILL, SIGTERM)
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: the tracepoints syscalls:sys_enter_kill/tkill/tgkill and their sys_exit_;
signals the kernel sends itself (SIGSEGV, SIGPIPE, timers) are not kill() calls
and are not shown.

examples:
  tsbpf killsnoop              # trace all kill() signals
  tsbpf killsnoop -x           # only failed kills
  tsbpf killsnoop -p 181       # only kills sent by PID 181
  tsbpf killsnoop -s 9         # only SIGKILL
`;

const OPTIONS = {
  failed: { type: "boolean", short: "x" },
  pid: { type: "string", short: "p" },
  tpid: { type: "string", short: "T" },
  signal: { type: "string", short: "s" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface KillEvent {
  pid: number;
  tpid: number;
  sig: number;
  ret: number;
  comm: string;
}

function signalOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return intOption(value, "-s/--signal", 1, 64);
  const name = `SIG${value.toUpperCase().replace(/^SIG/, "")}` as keyof typeof osConstants.signals;
  const n = osConstants.signals[name];
  if (n === undefined) throw new UsageError(`-s/--signal: unknown signal "${value}"`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const tpid = pidOption(o.tpid, "-T/--tpid");
  const sig = signalOption(o.signal);
  const duration = durationOption(o.duration);
  let pidWidth = 7;
  try {
    pidWidth = readFileSync("/proc/sys/kernel/pid_max", "utf8").trim().length + 1;
  } catch {}
  const programs = ["kill", "tkill", "tgkill"].filter((s) => tracepointExists("syscalls", `sys_enter_${s}`)).flatMap((s) => [`enter_${s}`, `exit_${s}`]);
  return runEventTool<KillEvent>({
    tool: "killsnoop",
    programs,
    constants: { targ_pid: pid ?? 0, targ_tpid: tpid ?? 0, targ_sig: sig ?? 0, targ_failed: o.failed ?? false },
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header: `${"TIME".padEnd(9)} ${"PID".padEnd(pidWidth)} ${"COMM".padEnd(16)} ${"SIG".padEnd(4)} ${"TPID".padEnd(pidWidth)} RESULT`,
    line: (e) => `${clockNow().padEnd(9)} ${String(e.pid).padEnd(pidWidth)} ${e.comm.padEnd(16)} ${String(e.sig).padEnd(4)} ${String(e.tpid).padEnd(pidWidth)} ${e.ret}`,
    record: (e) => ({ time: clockNow(), pid: e.pid, comm: e.comm, sig: e.sig, tpid: e.tpid, ret: e.ret }),
  });
}
