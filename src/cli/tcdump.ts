// tsbpf tcdump DEV: bytes and packets per IPv4 flow at tc egress (or ingress), each interval.
import { Collection } from "../collection.ts";
import { attachTc } from "../link/tc.ts";
import { durationOption, havePrivileges, intOption, parseToolArgs, toolObject, ToolRun, UsageError } from "./tool.ts";
import { describeAttachment, IP_PROTOCOLS, tick } from "./packets.ts";

const HELP = `usage: tsbpf tcdump [-h] [--ingress] [--netlink] [-i SECS] [-d SECS] [--json] DEV

Counts bytes and packets per IPv4 flow (protocol, addresses, ports) leaving DEV
(tc egress; --ingress for arriving), and prints the flows each interval.

  DEV            the interface
  --ingress      count arriving packets instead
  --netlink      a clsact qdisc and bpf filter even where tcx links exist
  -i SECS        interval (default 1)
  -d SECS        stop after SECS seconds
  --json         a JSON object per flow per interval

With a tcx link (Linux 6.6+), even a killed process leaves nothing behind; on
the netlink path the tool says how to remove its filter.`;

interface Flow {
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
  proto: number;
}

const ip = (n: number): string => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join(".");

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(
    args,
    { ingress: { type: "boolean" }, netlink: { type: "boolean" }, interval: { type: "string", short: "i" }, duration: { type: "string", short: "d" }, json: { type: "boolean" } },
    HELP,
  );
  if (!parsed) return 0;
  const [dev, extra] = parsed.positionals;
  if (!dev) throw new UsageError("name the interface: tsbpf tcdump DEV");
  if (extra) throw new UsageError(`unexpected argument "${extra}"`);
  const durationSec = durationOption(parsed.values.duration);
  const interval = intOption(parsed.values.interval, "-i/--interval", 1, 3600, "a number of seconds") ?? 1;
  const json = parsed.values.json ?? false;
  if (!havePrivileges("tcdump")) return 1;
  await using coll = Collection.load((await toolObject("tcdump")).bytes);
  const direction = parsed.values.ingress ? "ingress" : "egress";
  using link = attachTc(coll.program("tc_count"), { interface: dev, direction, method: parsed.values.netlink ? "netlink" : "auto" });
  using run = new ToolRun({ durationSec });
  process.stderr.write(describeAttachment("tcdump", link));
  const flows = coll.map<Flow, { bytes: bigint; packets: bigint }>("flows");
  while (await tick(interval * 1000, run.signal)) {
    const rows = [...flows.lookupBatch(256, { andDelete: true })].sort((a, b) => Number(b[1].bytes - a[1].bytes));
    if (!json) run.out.line(`${new Date().toTimeString().slice(0, 8)} ${direction} ${dev}: ${rows.length} flows\n${"PROTO".padEnd(6)} ${"SOURCE".padEnd(21)} ${"DESTINATION".padEnd(21)} ${"PACKETS".padStart(8)} ${"BYTES".padStart(10)}`);
    for (const [k, v] of rows) {
      const proto = IP_PROTOCOLS[k.proto] ?? String(k.proto);
      if (json) run.out.json({ proto, saddr: ip(k.saddr), sport: k.sport, daddr: ip(k.daddr), dport: k.dport, packets: v.packets, bytes: v.bytes });
      else run.out.line(`${proto.padEnd(6)} ${`${ip(k.saddr)}:${k.sport}`.padEnd(21)} ${`${ip(k.daddr)}:${k.dport}`.padEnd(21)} ${String(v.packets).padStart(8)} ${String(v.bytes).padStart(10)}`);
    }
  }
  return 0;
}
