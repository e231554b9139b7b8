// tsbpf tcplife: TCP sessions as they close, with their lifespan and bytes,
// BCC's options and columns. Hook: the sock:inet_sock_set_state tracepoint
// alone (as BCC's tracepoint variant); bytes read from the tcp_sock with CO-RE.
import { familyOption, ipVersion } from "../internal/net.ts";
import { runEventTool } from "./skeleton.ts";
import { endsColumns, endsFields, endsHeader, localRemotePortConstants, timeColumns, type LocalRemote } from "./tcp-shared.ts";
import { durationOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf tcplife [-h] [-T] [-t] [-w] [-s] [-p PID] [-L LPORTS] [-D RPORTS] [-4 | -6] [-d SECS] [--json]

Trace the lifespan of TCP sessions: one line per session when it closes, until Ctrl-C.

options:
  -T, --time             include a time column on output (HH:MM:SS)
  -t, --timestamp        include a timestamp column (seconds since the first line)
  -w, --wide             wide column output (fits IPv6 addresses)
  -s, --csv              comma separated values output
  -p, --pid PID          only trace this process
  -L, --localport PORTS  only these local ports (comma-separated, at most 8)
  -D, --remoteport PORTS only these remote ports (comma-separated, at most 8)
  -4, --ipv4             only IPv4
  -6, --ipv6             only IPv6
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: the sock:inet_sock_set_state tracepoint (BCC's tracepoint variant); the PID and
COMM are the task that connected (SYN_SENT) or else the one that closed (FIN_WAIT1,
LAST_ACK); TX_KB/RX_KB are tcp_sock bytes_acked/bytes_received, read with CO-RE (as
BCC: sequence space, so the SYN and FIN count a byte each).
Sessions opened before the tool started are not shown.

examples:
  tsbpf tcplife                # trace all TCP connect()s
  tsbpf tcplife -t -w          # with timestamps, wide columns
  tsbpf tcplife -L 80          # only sessions with local port 80
  tsbpf tcplife -D 80,443      # only sessions with remote ports 80 and 443
`;

const OPTIONS = {
  time: { type: "boolean", short: "T" },
  timestamp: { type: "boolean", short: "t" },
  wide: { type: "boolean", short: "w" },
  csv: { type: "boolean", short: "s" },
  pid: { type: "string", short: "p" },
  localport: { type: "string", short: "L" },
  remoteport: { type: "string", short: "D" },
  ipv4: { type: "boolean", short: "4" },
  ipv6: { type: "boolean", short: "6" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface LifeEvent extends LocalRemote {
  ts: bigint;
  span_ns: bigint;
  tx_b: bigint;
  rx_b: bigint;
  pid: number;
  comm: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const ports = localRemotePortConstants(o);
  const family = familyOption(o.ipv4, o.ipv6);
  const duration = durationOption(o.duration);
  const time = timeColumns(o);
  const kb = (b: bigint) => String(b / 1024n);
  const ms = (e: LifeEvent) => (Number(e.span_ns) / 1e6).toFixed(2);
  let header: string;
  let line: (e: LifeEvent) => string;
  if (o.csv) {
    header = "PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS";
    line = (e) => [e.pid, e.comm, ...Object.values(endsFields(e)), kb(e.tx_b), kb(e.rx_b), ms(e)].join(",");
  } else if (o.wide) {
    header = `${"PID".padEnd(5)} ${"COMM".padEnd(16)} ${"IP".padEnd(2)} ${endsHeader(39)} ${"TX_KB".padStart(6)} ${"RX_KB".padStart(6)} MS`;
    line = (e) =>
      `${String(e.pid).padEnd(5)} ${e.comm.slice(0, 16).padEnd(16)} ${String(ipVersion(e.family)).padEnd(2)} ${endsColumns(e, 39)} ` +
      `${kb(e.tx_b).padStart(6)} ${kb(e.rx_b).padStart(6)} ${ms(e)}`;
  } else {
    header = `${"PID".padEnd(5)} ${"COMM".padEnd(10)} ${endsHeader(15)} ${"TX_KB".padStart(5)} ${"RX_KB".padStart(5)} MS`;
    line = (e) =>
      `${String(e.pid).padEnd(5)} ${e.comm.slice(0, 10).padEnd(10)} ${endsColumns(e, 15)} ${kb(e.tx_b).padStart(5)} ${kb(e.rx_b).padStart(5)} ${ms(e)}`;
  }
  return runEventTool<LifeEvent>({
    tool: "tcplife",
    constants: { targ_pid: pid ?? 0, targ_family: family, ...ports },
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header: time.header() + header,
    line: (e) => time.line(e.ts) + line(e),
    record: (e) => ({
      time: time.seconds(e.ts), pid: e.pid, comm: e.comm, ...endsFields(e),
      tx_bytes: Number(e.tx_b), rx_bytes: Number(e.rx_b), ms: Number(e.span_ns) / 1e6,
    }),
  });
}
