// tsbpf sockfilter DEV: HTTP request and status lines seen on DEV, through a
// socket filter on a raw socket (BCC's examples/networking/http_filter/http-parse-simple.py).
import { Collection } from "../collection.ts";
import { openRawSocket } from "../link/socket.ts";
import { durationOption, havePrivileges, parseToolArgs, toolObject, ToolRun, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf sockfilter [-h] [-d SECS] [--json] DEV

Prints the first line of each HTTP request and response crossing DEV (lo, eth0...).
The filtering runs in the kernel: a socket filter on a raw socket keeps only TCP
packets whose payload starts with GET, POST, PUT, DELETE, HEAD or HTTP.

  -d SECS        stop after SECS seconds
  --json         a JSON object per line`;

/** The HTTP line of an Ethernet+IPv4+TCP frame, with its addresses. */
export function httpLine(frame: Buffer): { src: string; dst: string; line: string } | undefined {
  if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) return undefined;
  const ihl = (frame[14]! & 0x0f) * 4;
  const tcp = 14 + ihl;
  if (frame.length < tcp + 20) return undefined;
  const payload = tcp + (frame[tcp + 12]! >> 4) * 4;
  const text = frame.subarray(payload).toString("latin1");
  const end = text.indexOf("\r\n");
  const addr = (o: number): string => `${frame[o]}.${frame[o + 1]}.${frame[o + 2]}.${frame[o + 3]}`;
  return { src: `${addr(26)}:${frame.readUInt16BE(tcp)}`, dst: `${addr(30)}:${frame.readUInt16BE(tcp + 2)}`, line: end < 0 ? text : text.slice(0, end) };
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, { duration: { type: "string", short: "d" }, json: { type: "boolean" } }, HELP);
  if (!parsed) return 0;
  const [dev, extra] = parsed.positionals;
  if (!dev) throw new UsageError("name the interface: tsbpf sockfilter DEV");
  if (extra) throw new UsageError(`unexpected argument "${extra}"`);
  const durationSec = durationOption(parsed.values.duration);
  const json = parsed.values.json ?? false;
  if (!havePrivileges("sockfilter")) return 1;
  await using coll = Collection.load((await toolObject("sockfilter")).bytes);
  using sock = openRawSocket(coll.program("http_filter"), dev);
  using run = new ToolRun({ durationSec });
  if (!json) run.out.line(`Printing HTTP lines on ${sock.interface}, hit Ctrl-C to stop`);
  for await (const frame of sock.packets(run.signal)) {
    const http = httpLine(frame);
    if (!http) continue;
    if (json) run.out.json(http);
    else run.out.line(`${http.src.padEnd(21)} -> ${http.dst.padEnd(21)} ${http.line}`);
  }
  return 0;
}
