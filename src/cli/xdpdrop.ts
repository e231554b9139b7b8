// tsbpf xdpdrop DEV: drop every packet arriving on DEV and print, each second,
// the packets per IP protocol (BCC's examples/networking/xdp/xdp_drop_count.py).
import { Collection } from "../collection.ts";
import { attachXdp } from "../link/xdp.ts";
import { durationOption, havePrivileges, parseToolArgs, toolObject, ToolRun, UsageError } from "./tool.ts";
import { describeAttachment, IP_PROTOCOLS, tick } from "./packets.ts";

const HELP = `usage: tsbpf xdpdrop [-h] [-S] [--pass] [-d SECS] [--json] DEV

Drops the packets arriving on DEV with XDP and prints, each second, how many
of each IP protocol it dropped. Removes its program on Ctrl-C, SIGTERM, -d and errors.

  DEV            the interface (eth0, veth1...)
  -S, --skb      generic (skb) mode; default: native, else generic (said)
  --pass         count only: let the packets through (XDP_PASS)
  -d SECS        stop after SECS seconds
  --json         a JSON object per protocol per second

With an XDP link (Linux 5.9+), even a killed process leaves no program behind;
otherwise the tool says how to remove one.`;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, { skb: { type: "boolean", short: "S" }, pass: { type: "boolean" }, duration: { type: "string", short: "d" }, json: { type: "boolean" } }, HELP);
  if (!parsed) return 0;
  const [dev, extra] = parsed.positionals;
  if (!dev) throw new UsageError("name the interface: tsbpf xdpdrop DEV");
  if (extra) throw new UsageError(`unexpected argument "${extra}"`);
  const durationSec = durationOption(parsed.values.duration);
  const json = parsed.values.json ?? false;
  if (!havePrivileges("xdpdrop")) return 1;
  await using coll = Collection.load((await toolObject("xdpdrop")).bytes, { constants: { pass_only: parsed.values.pass ?? false } });
  using link = attachXdp(coll.program("xdp_drop_count"), { interface: dev, mode: parsed.values.skb ? "generic" : "auto" });
  using run = new ToolRun({ durationSec });
  process.stderr.write(describeAttachment("xdpdrop", link));
  if (!json) run.out.line(`Printing ${parsed.values.pass ? "passed" : "dropped"} packets per IP protocol, hit Ctrl-C to stop`);
  const counts = coll.map<number, bigint[]>("dropcnt");
  const last = new Map<number, bigint>();
  while (await tick(1000, run.signal)) {
    const now = new Date().toISOString();
    for (let proto = 0; proto < 256; proto++) {
      const total = (counts.lookup(proto) ?? []).reduce((a, b) => a + b, 0n);
      const delta = total - (last.get(proto) ?? 0n);
      last.set(proto, total);
      if (delta === 0n) continue;
      if (json) run.out.json({ time: now, proto, name: IP_PROTOCOLS[proto] ?? String(proto), packets: delta, total });
      else run.out.line(`${IP_PROTOCOLS[proto] ?? proto}: ${delta} pkt/s`);
    }
  }
  return 0;
}
