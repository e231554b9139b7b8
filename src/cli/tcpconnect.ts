// tsbpf tcpconnect: active TCP connections (connect()), with BCC's options and
// columns. Hooks: the sock:inet_sock_set_state tracepoint (to SYN_SENT, in the
// connecting task) and syscalls:sys_exit_connect (the local port, once bound);
// BCC uses kprobes on tcp_v4_connect/tcp_v6_connect, which this needs none of.
import type { Collection } from "../collection.ts";
import { formatAddress, familyOption, ipVersion } from "../internal/net.ts";
import { runEventTool, startTool } from "./skeleton.ts";
import { TASK_FILTER_OPTIONS, taskFilter } from "./task-filter.ts";
import { portConstants, sinceFirst, type SourceDest } from "./tcp-shared.ts";
import { durationOption, parseToolArgs, pidOption, uidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf tcpconnect [-h] [-t] [-p PID] [-P PORT] [-4 | -6] [-L] [-U] [-u UID] [-c] [--cgroupmap PATH] [--mntnsmap PATH] [-d SECS] [--json]

Trace TCP active connections (connect()): one line per connect, until Ctrl-C.

options:
  -t, --timestamp        include a timestamp column (seconds since the first connect)
  -p, --pid PID          only trace this process
  -P, --port PORTS       only these destination ports (comma-separated, at most 8)
  -4, --ipv4             only IPv4
  -6, --ipv6             only IPv6
  -L, --lport            include the local port (LPORT)
  -U, --print-uid        include a UID column
  -u, --uid UID          only trace this user id
  -c, --count            count connects per source address, destination and port; print at the end
      --cgroupmap PATH   only tasks in the cgroups whose ids are keys of this pinned BPF hash map
                         (its keys when the tool starts)
      --mntnsmap PATH    only tasks in the mount namespaces whose inode numbers (as in
                         /proc/PID/ns/mnt) are keys of this pinned BPF hash map
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: tracepoints sock:inet_sock_set_state (newstate SYN_SENT runs in the connecting
task) and syscalls:sys_exit_connect (the local port, read from the socket with CO-RE);
no kprobes. Connects made without connect() (io_uring, in-kernel) are not seen.
Not in BCC's tool here: -d/--dns (tsbpf's -d is --duration).

examples:
  tsbpf tcpconnect             # trace all TCP connect()s
  tsbpf tcpconnect -t -L       # with timestamps and local ports
  tsbpf tcpconnect -p 181      # only PID 181
  tsbpf tcpconnect -P 80,81    # only ports 80 and 81
  tsbpf tcpconnect -c          # count connects per destination
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "t" },
  pid: { type: "string", short: "p" },
  port: { type: "string", short: "P" },
  ipv4: { type: "boolean", short: "4" },
  ipv6: { type: "boolean", short: "6" },
  lport: { type: "boolean", short: "L" },
  "print-uid": { type: "boolean", short: "U" },
  uid: { type: "string", short: "u" },
  count: { type: "boolean", short: "c" },
  ...TASK_FILTER_OPTIONS,
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface ConnectEvent extends SourceDest {
  ts: bigint;
  pid: number;
  tid: number;
  uid: number;
  comm: string;
}

type CountKey = Omit<SourceDest, "lport">;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const uid = uidOption(o.uid, "-u/--uid");
  const ports = portConstants(o.port, "-P/--port");
  const family = familyOption(o.ipv4, o.ipv6);
  const duration = durationOption(o.duration);
  const tasks = taskFilter(o);
  const constants = {
    targ_pid: pid ?? 0,
    targ_uid: uid ?? 0xffffffff,
    targ_family: family,
    ...ports,
    targ_count: o.count ?? false,
    ...tasks.constants,
  };
  const fillCgroups = (coll: Collection) => {
    tasks.fill(coll);
    coll.attachAll();
  };

  if (o.count) {
    await using tool = await startTool({ tool: "tcpconnect", constants, durationSec: duration, attach: fillCgroups });
    if (!tool) return 1;
    const { coll, run } = tool;
    if (!o.json) run.out.line("Tracing connect ... Hit Ctrl-C to end");
    run.out.flush();
    await run.stopped;
    const rows = [...coll.map("counts").entries()] as [CountKey, bigint][];
    rows.sort((a, b) => Number(b[1] - a[1]));
    if (o.json) {
      for (const [k, n] of rows) run.out.json({ ip: ipVersion(k.family), saddr: formatAddress(k.family, k.saddr), daddr: formatAddress(k.family, k.daddr), dport: k.dport, connects: Number(n) });
    } else {
      run.out.line(`\n${"LADDR".padEnd(25)} ${"RADDR".padEnd(25)} ${"RPORT".padEnd(20)} ${"CONNECTS".padEnd(10)}`);
      for (const [k, n] of rows) {
        run.out.line(`${formatAddress(k.family, k.saddr).padEnd(25)} ${formatAddress(k.family, k.daddr).padEnd(25)} ${String(k.dport).padEnd(20)} ${String(n).padEnd(10)}`);
      }
    }
    return 0;
  }

  const seconds = sinceFirst();
  const header =
    (o.timestamp ? "TIME(s)".padEnd(9) : "") +
    (o["print-uid"] ? "UID".padEnd(6) : "") +
    `${"PID".padEnd(7)} ${"COMM".padEnd(12)} ${"IP".padEnd(2)} ${"SADDR".padEnd(16)} ` +
    (o.lport ? `${"LPORT".padEnd(6)} ` : "") +
    `${"DADDR".padEnd(16)} ${"DPORT".padEnd(6)}`;
  return runEventTool<ConnectEvent>({
    tool: "tcpconnect",
    constants,
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    attach: fillCgroups,
    json: o.json,
    header,
    line: (e) =>
      (o.timestamp ? seconds(e.ts).toFixed(3).padEnd(9) : "") +
      (o["print-uid"] ? String(e.uid).padEnd(6) : "") +
      `${String(e.pid).padEnd(7)} ${e.comm.slice(0, 12).padEnd(12)} ${String(ipVersion(e.family)).padEnd(2)} ${formatAddress(e.family, e.saddr).padEnd(16)} ` +
      (o.lport ? `${String(e.lport).padEnd(6)} ` : "") +
      `${formatAddress(e.family, e.daddr).padEnd(16)} ${String(e.dport).padEnd(6)}`,
    record: (e) => ({
      time: seconds(e.ts), pid: e.pid, tid: e.tid, uid: e.uid, comm: e.comm, ip: ipVersion(e.family),
      saddr: formatAddress(e.family, e.saddr), lport: e.lport, daddr: formatAddress(e.family, e.daddr), dport: e.dport,
    }),
  });
}
