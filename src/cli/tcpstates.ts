// tsbpf tcpstates: every TCP state change with the time spent in the old
// state, BCC's options and columns. Hook: the sock:inet_sock_set_state tracepoint.
import { familyOption, ipVersion, tcpStateName } from "../internal/net.ts";
import { runEventTool } from "./skeleton.ts";
import { endsColumns, endsFields, endsHeader, localRemotePortConstants, timeColumns, type LocalRemote } from "./tcp-shared.ts";
import { durationOption, parseToolArgs, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf tcpstates [-h] [-T] [-t] [-w] [-s] [-L LPORTS] [-D RPORTS] [-4 | -6] [-d SECS] [--json]

Trace TCP session state changes and durations: one line per change, until Ctrl-C.

options:
  -T, --time             include a time column on output (HH:MM:SS)
  -t, --timestamp        include a timestamp column (seconds since the first line)
  -w, --wide             wide column output (fits IPv6 addresses)
  -s, --csv              comma separated values output
  -L, --localport PORTS  only these local ports (comma-separated, at most 8)
  -D, --remoteport PORTS only these remote ports (comma-separated, at most 8)
  -4, --ipv4             only IPv4
  -6, --ipv6             only IPv6
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: the sock:inet_sock_set_state tracepoint. C-PID and C-COMM are the task the change
ran in (often a softirq's: not the socket's owner). MS is the time in the old state
(0 for a socket first seen). No -Y/--journal.

examples:
  tsbpf tcpstates              # trace all TCP state changes
  tsbpf tcpstates -t           # with timestamps
  tsbpf tcpstates -L 80        # only local port 80
`;

const OPTIONS = {
  time: { type: "boolean", short: "T" },
  timestamp: { type: "boolean", short: "t" },
  wide: { type: "boolean", short: "w" },
  csv: { type: "boolean", short: "s" },
  localport: { type: "string", short: "L" },
  remoteport: { type: "string", short: "D" },
  ipv4: { type: "boolean", short: "4" },
  ipv6: { type: "boolean", short: "6" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface StateEvent extends LocalRemote {
  ts: bigint;
  skaddr: bigint;
  span_ns: bigint;
  pid: number;
  oldstate: number;
  newstate: number;
  comm: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const ports = localRemotePortConstants(o);
  const family = familyOption(o.ipv4, o.ipv6);
  const duration = durationOption(o.duration);
  const time = timeColumns(o);
  const ms = (e: StateEvent) => (Number(e.span_ns) / 1e6).toFixed(3);
  const hex = (e: StateEvent) => e.skaddr.toString(16);
  const st = tcpStateName;
  let header: string;
  let line: (e: StateEvent) => string;
  if (o.csv) {
    header = "SKADDR,C-PID,C-COMM,IP,LADDR,LPORT,RADDR,RPORT,OLDSTATE,NEWSTATE,MS";
    line = (e) => [hex(e), e.pid, e.comm, ...Object.values(endsFields(e)), st(e.oldstate), st(e.newstate), ms(e)].join(",");
  } else {
    const w = o.wide ? { comm: 16, addr: 39 } : { comm: 10, addr: 15 };
    header =
      `${"SKADDR".padEnd(16)} ${"C-PID".padEnd(5)} ${"C-COMM".padEnd(w.comm)} ${o.wide ? "IP".padEnd(2) + " " : ""}${endsHeader(w.addr)} ` +
      `${"OLDSTATE".padEnd(11)} -> ${"NEWSTATE".padEnd(11)} MS`;
    line = (e) =>
      `${hex(e).padEnd(16)} ${String(e.pid).padEnd(5)} ${e.comm.slice(0, w.comm).padEnd(w.comm)} ${o.wide ? String(ipVersion(e.family)).padEnd(2) + " " : ""}` +
      `${endsColumns(e, w.addr)} ` +
      `${st(e.oldstate).padEnd(11)} -> ${st(e.newstate).padEnd(11)} ${ms(e)}`;
  }
  return runEventTool<StateEvent>({
    tool: "tcpstates",
    constants: { targ_family: family, ...ports },
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header: time.header() + header,
    line: (e) => time.line(e.ts) + line(e),
    record: (e) => ({
      time: time.seconds(e.ts), skaddr: hex(e), pid: e.pid, comm: e.comm, ...endsFields(e),
      oldstate: st(e.oldstate), newstate: st(e.newstate), ms: Number(e.span_ns) / 1e6,
    }),
  });
}
