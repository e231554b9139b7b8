// tsbpf tcpaccept: passive TCP connections (accept()), with BCC's options and
// columns. Hooks: syscalls:sys_exit_accept4 and sys_exit_accept (the accepting
// task; the socket read from its fd table with CO-RE). BCC uses a kretprobe on
// inet_csk_accept, which this host does not have.
import { tracepointExists } from "../link/tracepoint.ts";
import { clockNow, familyOption, formatAddress, ipVersion, portListOption } from "../internal/net.ts";
import { runEventTool } from "./skeleton.ts";
import { cgroupIdsOf } from "./tcpconnect.ts";
import { durationOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf tcpaccept [-h] [-T] [-t] [-p PID] [-P PORT] [-4 | -6] [--cgroupmap PATH] [-d SECS] [--json]

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
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: tracepoints syscalls:sys_exit_accept4 and syscalls:sys_exit_accept, in the
accepting task; the new socket is read from its fd table (CO-RE); no kprobes.
Accepts made without the accept syscalls (io_uring) are not seen. No --mntnsmap.

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
  cgroupmap: { type: "string" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface AcceptEvent {
  ts: bigint;
  pid: number;
  tid: number;
  uid: number;
  family: number;
  lport: number;
  rport: number;
  laddr: number[];
  raddr: number[];
  comm: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const ports = portListOption(o.port, "-P/--port");
  const family = familyOption(o.ipv4, o.ipv6);
  const duration = durationOption(o.duration);
  const cgroups = o.cgroupmap === undefined ? undefined : cgroupIdsOf(o.cgroupmap);
  let firstTs: bigint | undefined;
  const seconds = (e: AcceptEvent) => Number(e.ts - (firstTs ??= e.ts)) / 1e9;
  return runEventTool<AcceptEvent>({
    tool: "tcpaccept",
    constants: {
      targ_pid: pid ?? 0,
      targ_family: family,
      targ_ports: [...ports, ...Array(8 - ports.length).fill(0)],
      targ_nports: ports.length,
      targ_cgroups: cgroups !== undefined,
    },
    // accept(2) is missing on some architectures (arm64 has only accept4).
    programs: ["exit_accept4", ...(tracepointExists("syscalls", "sys_exit_accept") ? ["exit_accept"] : [])],
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    attach: (coll) => {
      for (const id of cgroups ?? []) coll.map("cgroups").update(id, 1);
      coll.attachAll();
    },
    json: o.json,
    header:
      (o.time ? "TIME".padEnd(9) : "") +
      (o.timestamp ? "TIME(s)".padEnd(9) : "") +
      `${"PID".padEnd(7)} ${"COMM".padEnd(12)} ${"IP".padEnd(2)} ${"RADDR".padEnd(16)} ${"RPORT".padEnd(5)} ${"LADDR".padEnd(16)} ${"LPORT".padEnd(5)}`,
    line: (e) =>
      (o.time ? clockNow().padEnd(9) : "") +
      (o.timestamp ? seconds(e).toFixed(3).padEnd(9) : "") +
      `${String(e.pid).padEnd(7)} ${e.comm.slice(0, 12).padEnd(12)} ${String(ipVersion(e.family)).padEnd(2)} ` +
      `${formatAddress(e.family, e.raddr).padEnd(16)} ${String(e.rport).padEnd(5)} ${formatAddress(e.family, e.laddr).padEnd(16)} ${String(e.lport).padEnd(5)}`,
    record: (e) => ({
      time: seconds(e), pid: e.pid, tid: e.tid, uid: e.uid, comm: e.comm, ip: ipVersion(e.family),
      raddr: formatAddress(e.family, e.raddr), rport: e.rport, laddr: formatAddress(e.family, e.laddr), lport: e.lport,
    }),
  });
}
