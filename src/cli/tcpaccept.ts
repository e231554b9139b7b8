// tsbpf tcpaccept: passive TCP connections (accept()), with BCC's options and
// columns. Hooks: syscalls:sys_exit_accept4 and sys_exit_accept (the accepting
// task; the socket read from its fd table with CO-RE). BCC uses a kretprobe on
// inet_csk_accept, which this host does not have.
import { tracepointExists } from "../link/tracepoint.ts";
import { clockNow, familyOption, formatAddress, ipVersion } from "../internal/net.ts";
import { runEventTool } from "./skeleton.ts";
import { TASK_FILTER_OPTIONS, taskFilter } from "./task-filter.ts";
import { portConstants, sinceFirst, type LocalRemote } from "./tcp-shared.ts";
import { durationOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf tcpaccept [-h] [-T] [-t] [-p PID] [-P PORT] [-4 | -6] [--cgroupmap PATH] [--mntnsmap PATH] [-d SECS] [--json]

Trace TCP passive connections (accept()): one line per accepted connection, until Ctrl-C.

options:
  -T, --time             include a time column (HH:MM:SS)
  -t, --timestamp        include a timestamp column (seconds since the first accept)
  -p, --pid PID          only trace this process
  -P, --port PORTS       only these local ports (comma-separated, at most 8)
  -4, --ipv4             only IPv4
  -6, --ipv6             only IPv6
      --cgroupmap PATH   only tasks in the cgroups whose ids are keys of this pinned BPF hash map
                         (its keys when the tool starts)
      --mntnsmap PATH    only tasks in the mount namespaces whose inode numbers (as in
                         /proc/PID/ns/mnt) are keys of this pinned BPF hash map
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: tracepoints syscalls:sys_exit_accept4 and syscalls:sys_exit_accept, in the
accepting task; the new socket is read from its fd table (CO-RE); no kprobes.
Accepts made without the accept syscalls (io_uring) are not seen.

examples:
  tsbpf tcpaccept              # trace all TCP accept()s
  tsbpf tcpaccept -t           # with timestamps
  tsbpf tcpaccept -P 80,81     # only local ports 80 and 81
  tsbpf tcpaccept -p 181       # only PID 181
`;

const OPTIONS = {
  time: { type: "boolean", short: "T" },
  timestamp: { type: "boolean", short: "t" },
  pid: { type: "string", short: "p" },
  port: { type: "string", short: "P" },
  ipv4: { type: "boolean", short: "4" },
  ipv6: { type: "boolean", short: "6" },
  ...TASK_FILTER_OPTIONS,
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface AcceptEvent extends LocalRemote {
  ts: bigint;
  pid: number;
  tid: number;
  uid: number;
  comm: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const ports = portConstants(o.port, "-P/--port");
  const family = familyOption(o.ipv4, o.ipv6);
  const duration = durationOption(o.duration);
  const tasks = taskFilter(o);
  const seconds = sinceFirst();
  return runEventTool<AcceptEvent>({
    tool: "tcpaccept",
    constants: { targ_pid: pid ?? 0, targ_family: family, ...ports, ...tasks.constants },
    // accept(2) is missing on some architectures (arm64 has only accept4).
    programs: ["exit_accept4", ...(tracepointExists("syscalls", "sys_exit_accept") ? ["exit_accept"] : [])],
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    attach: (coll) => {
      tasks.fill(coll);
      coll.attachAll();
    },
    json: o.json,
    header:
      (o.time ? "TIME".padEnd(9) : "") +
      (o.timestamp ? "TIME(s)".padEnd(9) : "") +
      `${"PID".padEnd(7)} ${"COMM".padEnd(12)} ${"IP".padEnd(2)} ${"RADDR".padEnd(16)} ${"RPORT".padEnd(5)} ${"LADDR".padEnd(16)} ${"LPORT".padEnd(5)}`,
    line: (e) =>
      (o.time ? clockNow().padEnd(9) : "") +
      (o.timestamp ? seconds(e.ts).toFixed(3).padEnd(9) : "") +
      `${String(e.pid).padEnd(7)} ${e.comm.slice(0, 12).padEnd(12)} ${String(ipVersion(e.family)).padEnd(2)} ` +
      `${formatAddress(e.family, e.raddr).padEnd(16)} ${String(e.rport).padEnd(5)} ${formatAddress(e.family, e.laddr).padEnd(16)} ${String(e.lport).padEnd(5)}`,
    record: (e) => ({
      time: seconds(e.ts), pid: e.pid, tid: e.tid, uid: e.uid, comm: e.comm, ip: ipVersion(e.family),
      raddr: formatAddress(e.family, e.raddr), rport: e.rport, laddr: formatAddress(e.family, e.laddr), lport: e.lport,
    }),
  });
}
