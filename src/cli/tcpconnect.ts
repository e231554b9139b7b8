// tsbpf tcpconnect: active TCP connections (connect()), with BCC's options and
// columns. Hooks: the sock:inet_sock_set_state tracepoint (to SYN_SENT, in the
// connecting task) and syscalls:sys_exit_connect (the local port, once bound);
// BCC uses kprobes on tcp_v4_connect/tcp_v6_connect, which this needs none of.
import { BpfMap } from "../maps/map.ts";
import { formatAddress, familyOption, ipVersion, portListOption } from "../internal/net.ts";
import { runEventTool, startTool } from "./skeleton.ts";
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
  cgroupmap: { type: "string" },
  mntnsmap: { type: "string" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface ConnectEvent {
  ts: bigint;
  pid: number;
  tid: number;
  uid: number;
  family: number;
  lport: number;
  dport: number;
  saddr: number[];
  daddr: number[];
  comm: string;
}

interface CountKey {
  family: number;
  dport: number;
  saddr: number[];
  daddr: number[];
}

/**
 * The keys of a pinned BPF hash map of 8-byte keys (BCC's --cgroupmap and
 * --mntnsmap: cgroup ids, mount namespace inode numbers), read once when the
 * tool starts, for the tool's own filter map.
 */
export function pinnedKeysOf(path: string, option: string, what: string): bigint[] {
  let map: BpfMap;
  try {
    map = BpfMap.fromPin(path);
  } catch (err) {
    throw new UsageError(`${option}: cannot open the pinned map ${path}: ${(err as Error).message}`);
  }
  try {
    if (map.keySize !== 8) throw new UsageError(`${option}: ${path} has ${map.keySize}-byte keys, not 8-byte ${what}`);
    return [...map.keys()].map((k) => (typeof k === "bigint" || typeof k === "number" ? BigInt(k) : Buffer.from(k as Uint8Array).readBigUInt64LE(0)));
  } finally {
    map.close();
  }
}

/** The cgroup ids of a pinned map's keys (BCC's --cgroupmap), for the tool's own filter map. */
export function cgroupIdsOf(path: string): bigint[] {
  return pinnedKeysOf(path, "--cgroupmap", "cgroup ids");
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const uid = uidOption(o.uid, "-u/--uid");
  const ports = portListOption(o.port, "-P/--port");
  const family = familyOption(o.ipv4, o.ipv6);
  const duration = durationOption(o.duration);
  const cgroups = o.cgroupmap === undefined ? undefined : cgroupIdsOf(o.cgroupmap);
  const mntns = o.mntnsmap === undefined ? undefined : pinnedKeysOf(o.mntnsmap, "--mntnsmap", "mount namespace ids");
  const portsConst = [...ports, ...Array(8 - ports.length).fill(0)];
  const constants = {
    targ_pid: pid ?? 0,
    targ_uid: uid ?? 0xffffffff,
    targ_family: family,
    targ_ports: portsConst,
    targ_nports: ports.length,
    targ_count: o.count ?? false,
    targ_cgroups: cgroups !== undefined,
    targ_mntns: mntns !== undefined,
  };
  const fillCgroups = (coll: import("../collection.ts").Collection) => {
    for (const id of cgroups ?? []) coll.map("cgroups").update(id, 1);
    for (const id of mntns ?? []) coll.map("mntns").update(id, 1);
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

  let firstTs: bigint | undefined;
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
    line: (e) => {
      firstTs ??= e.ts;
      return (
        (o.timestamp ? (Number(e.ts - firstTs) / 1e9).toFixed(3).padEnd(9) : "") +
        (o["print-uid"] ? String(e.uid).padEnd(6) : "") +
        `${String(e.pid).padEnd(7)} ${e.comm.slice(0, 12).padEnd(12)} ${String(ipVersion(e.family)).padEnd(2)} ${formatAddress(e.family, e.saddr).padEnd(16)} ` +
        (o.lport ? `${String(e.lport).padEnd(6)} ` : "") +
        `${formatAddress(e.family, e.daddr).padEnd(16)} ${String(e.dport).padEnd(6)}`
      );
    },
    record: (e) => {
      firstTs ??= e.ts;
      return {
        time: Number(e.ts - firstTs) / 1e9, pid: e.pid, tid: e.tid, uid: e.uid, comm: e.comm, ip: ipVersion(e.family),
        saddr: formatAddress(e.family, e.saddr), lport: e.lport, daddr: formatAddress(e.family, e.daddr), dport: e.dport,
      };
    },
  });
}
