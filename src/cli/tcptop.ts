// tsbpf tcptop: TCP throughput by process and connection, refreshed every
// interval, BCC's columns. Hooks: sock:sock_send_length and sock:sock_recv_length
// (6.3+), else BCC's kprobes on tcp_sendmsg/tcp_cleanup_rbuf (this host has no kprobes).
import { NotSupportedError } from "../errors.ts";
import { parseIntervalArgs } from "../histogram/interval.ts";
import { haveDynamicProbes } from "../features/index.ts";
import { tracepointExists } from "../link/tracepoint.ts";
import { AF_INET, familyOption, formatAddress } from "../internal/net.ts";
import { drainMap, runTopTool } from "./skeleton.ts";
import { intOption, parseToolArgs, pidOption } from "./tool.ts";
import { TASK_FILTER_OPTIONS, taskFilter } from "./task-filter.ts";
import type { SourceDest } from "./tcp-shared.ts";

const HELP = `usage: tsbpf tcptop [-h] [-C] [-S] [-p PID] [--cgroupmap PATH] [--mntnsmap PATH] [-4 | -6] [-r MAXROWS] [--json] [interval [count]]

Summarize TCP send/recv throughput by host and process, every interval (default 1 s).

positional arguments:
  interval               output interval, in seconds (default 1)
  count                  number of outputs

options:
  -C, --noclear          don't clear the screen
  -S, --nosummary        skip the system summary line (the loadavg)
  -p, --pid PID          only trace this process
  -4, --ipv4             only IPv4
  -6, --ipv6             only IPv6
      --cgroupmap PATH   only tasks in the cgroups whose ids are keys of this pinned BPF hash map
                         (its keys when the tool starts)
      --mntnsmap PATH    only tasks in the mount namespaces whose inode numbers are keys of
                         this pinned BPF hash map
  -r, --maxrows MAXROWS  rows to print (default 20)
      --json             one JSON object per interval

hooks: the tracepoints sock:sock_send_length and sock:sock_recv_length (Linux 6.3+):
the bytes each sendmsg/recvmsg/read/write on a TCP socket returned, in the calling
task. Bytes moved by sendfile/splice/io_uring without sock_sendmsg are not counted.
Older kernels: BCC's kprobes on tcp_sendmsg (the bytes asked) and tcp_cleanup_rbuf
(the bytes copied to the reader).

examples:
  tsbpf tcptop                 # trace TCP send/recv by host
  tsbpf tcptop -C 5 10         # 5 s summaries, 10 times, no screen clears
  tsbpf tcptop -p 181          # only PID 181
`;

const OPTIONS = {
  noclear: { type: "boolean", short: "C" },
  nosummary: { type: "boolean", short: "S" },
  ...TASK_FILTER_OPTIONS,
  pid: { type: "string", short: "p" },
  ipv4: { type: "boolean", short: "4" },
  ipv6: { type: "boolean", short: "6" },
  maxrows: { type: "string", short: "r" },
  json: { type: "boolean" },
} as const;

interface Flow extends SourceDest {
  pid: number;
  comm: string;
}

interface Row {
  pid: number;
  comm: string;
  ip: number;
  laddr: string;
  raddr: string;
  rx_kb: number;
  tx_kb: number;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals);
  if (!intervals.periodic) intervals.interval = 1;
  const pid = pidOption(o.pid, "-p/--pid");
  const family = familyOption(o.ipv4, o.ipv6);
  const maxRows = intOption(o.maxrows, "-r/--maxrows", 1, 100_000) ?? 20;
  // The tracepoints where the kernel has them (6.3+), else BCC's kprobes.
  const programs = tracepointExists("sock", "sock_send_length")
    ? ["send_length", "recv_length"]
    : haveDynamicProbes("kprobe")
      ? ["kprobe_sendmsg", "kprobe_cleanup_rbuf"]
      : undefined;
  if (!programs) {
    throw new NotSupportedError("sock:sock_send_length", "tcptop needs the sock:sock_send_length and sock:sock_recv_length tracepoints (Linux 6.3+) or kprobes on tcp_sendmsg and tcp_cleanup_rbuf, and this kernel has neither");
  }
  const tasks = taskFilter(o);
  const key = (f: Flow) => `${f.pid}/${f.family}/${f.saddr}/${f.lport}/${f.daddr}/${f.dport}`;
  return runTopTool<Row>({
    tool: "tcptop",
    intervals,
    noclear: o.noclear,
    summary: !o.nosummary,
    maxRows,
    json: o.json,
    constants: { targ_pid: pid ?? 0, targ_family: family, ...tasks.constants },
    programs,
    attach: (coll) => {
      tasks.fill(coll);
      coll.attachAll();
    },
    banner: "Tracing... Output every " + intervals.interval + " secs. Hit Ctrl-C to end",
    header: `${"PID".padEnd(7)} ${"COMM".padEnd(12)} ${"LADDR".padEnd(21)} ${"RADDR".padEnd(21)} ${"RX_KB".padStart(6)} ${"TX_KB".padStart(6)}`,
    rows: (coll) => {
      const rows = new Map<string, Row>();
      const add = (map: string, field: "rx_kb" | "tx_kb") => {
        for (const [f, n] of drainMap(coll.map(map)) as [Flow, bigint][]) {
          const k = key(f);
          let r = rows.get(k);
          if (!r) {
            const ep = (a: number[], p: number) => (f.family === AF_INET ? `${formatAddress(f.family, a)}:${p}` : `[${formatAddress(f.family, a)}]:${p}`);
            r = { pid: f.pid, comm: f.comm, ip: f.family === AF_INET ? 4 : 6, laddr: ep(f.saddr, f.lport), raddr: ep(f.daddr, f.dport), rx_kb: 0, tx_kb: 0 };
            rows.set(k, r);
          }
          r[field] += Number(n) / 1024;
        }
      };
      add("received", "rx_kb");
      add("sent", "tx_kb");
      return [...rows.values()].sort((a, b) => b.rx_kb + b.tx_kb - (a.rx_kb + a.tx_kb));
    },
    line: (r) => `${String(r.pid).padEnd(7)} ${r.comm.slice(0, 12).padEnd(12)} ${r.laddr.padEnd(21)} ${r.raddr.padEnd(21)} ${String(Math.floor(r.rx_kb)).padStart(6)} ${String(Math.floor(r.tx_kb)).padStart(6)}`,
  });
}
