// tsbpf gethostlatency: latency of host name lookups through libc, BCC's columns.
// Hooks: uprobes and uretprobes on libc's getaddrinfo, gethostbyname and
// gethostbyname2 (BCC uses the same): no kernel hook, so it works wherever
// uprobes do.
import { readFileSync } from "node:fs";
import { clockNow } from "../internal/net.ts";
import type { Collection } from "../collection.ts";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";
import { UsageError } from "./tool.ts";

const HELP = `usage: tsbpf gethostlatency [-h] [-p PID] [-d SECS] [--json]

Show latency for getaddrinfo/gethostbyname[2] calls: one line per lookup, until Ctrl-C.

options:
  -p, --pid PID          only trace this process
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: uprobes at entry and uretprobes at return of getaddrinfo, gethostbyname and
gethostbyname2 in libc.so.6 (with -p, the libc that process maps). No kernel hook is
needed; lookups by programs that resolve names without libc (Go, static musl) or
through another library (c-ares, systemd-resolved over D-Bus) are not seen.
Host names are cut at 79 bytes.

examples:
  tsbpf gethostlatency         # time getaddrinfo/gethostbyname[2] calls
  tsbpf gethostlatency -p 181  # only trace PID 181
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface LookupEvent {
  delta_ns: bigint;
  pid: number;
  tid: number;
  comm: string;
  host: string;
}

/** The libc a process maps, as a path its probes can use (it may live in another mount namespace). */
export function libcOf(pid: number): string {
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  } catch {
    throw new UsageError(`-p/--pid: no process ${pid}`);
  }
  const path = maps.split("\n").map((l) => l.split(/\s+/)[5] ?? "").find((p) => /\/libc(\.so|-[\d.]+\.so)/.test(p));
  return path ? `/proc/${pid}/root${path}` : "libc.so.6";
}

const FUNCTIONS = ["getaddrinfo", "gethostbyname", "gethostbyname2"];

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, pid, duration } = parsed;
  const libc = pid === undefined ? "libc.so.6" : libcOf(pid);
  const attach = (coll: Collection) => {
    // Return probes first: a lookup whose entry is seen always has its return seen too.
    for (const symbol of FUNCTIONS) coll.program("lookup_return").attachUprobe({ path: libc, symbol, pid, retprobe: true });
    for (const symbol of FUNCTIONS) coll.program("lookup_enter").attachUprobe({ path: libc, symbol, pid });
  };
  return runEventTool<LookupEvent>({
    tool: "gethostlatency",
    constants: { targ_pid: pid ?? 0 },
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    attach,
    json: o.json,
    header: `${"TIME".padEnd(9)} ${"PID".padEnd(7)} ${"COMM".padEnd(16)} ${"LATms".padStart(10)} HOST`,
    line: (e) => `${clockNow().padEnd(9)} ${String(e.pid).padEnd(7)} ${e.comm.padEnd(16)} ${(Number(e.delta_ns) / 1e6).toFixed(2).padStart(10)} ${e.host}`,
    record: (e) => ({ time: clockNow(), pid: e.pid, tid: e.tid, comm: e.comm, lat_ms: Number(e.delta_ns) / 1e6, host: e.host }),
  });
}
