// tsbpf tcpretrans: TCP retransmits, one line each (or counts per flow with -c),
// with BCC's columns. Hook: the tcp:tcp_retransmit_skb tracepoint.
import { NotSupportedError } from "../errors.ts";
import { clockNow, familyOption, formatAddress, ipVersion, tcpStateName } from "../internal/net.ts";
import { runEventTool, startTool } from "./skeleton.ts";
import { endsFields, type LocalRemote } from "./tcp-shared.ts";
import { durationOption, parseToolArgs, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf tcpretrans [-h] [-s] [-l] [-c] [-4 | -6] [-d SECS] [--json]

Trace TCP retransmits: one line per retransmitted segment, until Ctrl-C.

options:
  -s, --sequence         include the segment's sequence number
  -l, --lossprobe        include tail loss probe attempts (needs a kprobe: not supported, see below)
  -c, --count            count retransmits per flow; print at the end
  -4, --ipv4             only IPv4
  -6, --ipv6             only IPv6
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: the tcp:tcp_retransmit_skb tracepoint (T is always R). The PID is the task the
retransmit ran in (usually 0: a timer or softirq). -l would need a kprobe on
tcp_send_loss_probe (no tracepoint covers tail loss probes): tsbpf's tcpretrans does
not offer it.

examples:
  tsbpf tcpretrans             # trace TCP retransmits
  tsbpf tcpretrans -s          # with sequence numbers
  tsbpf tcpretrans -c          # count per flow, print at Ctrl-C
`;

const OPTIONS = {
  sequence: { type: "boolean", short: "s" },
  lossprobe: { type: "boolean", short: "l" },
  count: { type: "boolean", short: "c" },
  ipv4: { type: "boolean", short: "4" },
  ipv6: { type: "boolean", short: "6" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface RetransEvent {
  ts: bigint;
  pid: number;
  state: number;
  seq: number;
  flow: LocalRemote;
}

const endpoint = (family: number, addr: number[], port: number) => `${formatAddress(family, addr)}:${port}`;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (o.lossprobe) {
    throw new NotSupportedError("kprobes", "tcpretrans: -l/--lossprobe needs a kprobe on tcp_send_loss_probe, and tsbpf's tcpretrans has none (no tracepoint reports tail loss probes); run without -l");
  }
  const family = familyOption(o.ipv4, o.ipv6);
  const duration = durationOption(o.duration);
  const constants = { targ_family: family, targ_count: o.count ?? false };

  if (o.count) {
    await using tool = await startTool({ tool: "tcpretrans", constants, durationSec: duration });
    if (!tool) return 1;
    const { coll, run } = tool;
    if (!o.json) run.out.line("Tracing retransmits ... Hit Ctrl-C to end");
    run.out.flush();
    await run.stopped;
    const rows = [...coll.map("counts").entries()] as [LocalRemote, bigint][];
    rows.sort((a, b) => Number(a[1] - b[1])); // BCC: ascending
    if (!o.json) run.out.line(`\n${"LADDR:LPORT".padEnd(25)} ${"RADDR:RPORT".padEnd(25)} ${"RETRANSMITS".padEnd(10)}`);
    for (const [f, n] of rows) {
      if (o.json) {
        run.out.json({ ...endsFields(f), retransmits: Number(n) });
      } else {
        const l = `[${formatAddress(f.family, f.laddr)}]#${f.lport}`;
        const r = `[${formatAddress(f.family, f.raddr)}]#${f.rport}`;
        run.out.line(`${l.padEnd(20)} <-> ${r.padEnd(20)} ${String(n).padStart(10)}`);
      }
    }
    return 0;
  }

  return runEventTool<RetransEvent>({
    tool: "tcpretrans",
    constants,
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header:
      `${"TIME".padEnd(8)} ${"PID".padEnd(7)} ${"IP".padEnd(2)} ${"LADDR:LPORT".padEnd(20)} T> ${"RADDR:RPORT".padEnd(20)}` +
      (o.sequence ? ` ${"STATE".padEnd(12)} ${"SEQ".padEnd(10)}` : ` ${"STATE".padEnd(4)}`),
    line: (e) => {
      const f = e.flow;
      return (
        `${clockNow().padEnd(8)} ${String(e.pid).padEnd(7)} ${String(ipVersion(f.family)).padEnd(2)} ${endpoint(f.family, f.laddr, f.lport).padEnd(20)} R> ` +
        `${endpoint(f.family, f.raddr, f.rport).padEnd(20)}` +
        (o.sequence ? ` ${tcpStateName(e.state).padEnd(12)} ${e.seq >>> 0}` : ` ${tcpStateName(e.state)}`)
      );
    },
    record: (e) => {
      const f = e.flow;
      return {
        time: clockNow(), pid: e.pid, ip: ipVersion(f.family), laddr: formatAddress(f.family, f.laddr), lport: f.lport, type: "R",
        raddr: formatAddress(f.family, f.raddr), rport: f.rport, state: tcpStateName(e.state), seq: e.seq >>> 0,
      };
    },
  });
}
