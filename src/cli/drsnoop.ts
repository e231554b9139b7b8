// tsbpf drsnoop: direct reclaim stalls, one line each, BCC's columns. Hooks: the
// vmscan:mm_vmscan_direct_reclaim_begin/end tracepoints (as BCC) and, unless
// --global-only, vmscan:mm_vmscan_memcg_reclaim_begin/end: reclaim a task does
// itself at its memory cgroup's limit.
import { readFileSync } from "node:fs";
import { NotSupportedError } from "../errors.ts";
import { tracepointExists } from "../link/tracepoint.ts";
import { runEventTool } from "./skeleton.ts";
import { durationOption, parseToolArgs, pidOption, uidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf drsnoop [-h] [-T] [-U] [-p PID] [-t TID] [-u UID] [-d SECS] [-n NAME] [-v] [--global-only] [--json]

Trace direct reclaim: one line per reclaim a task did while allocating, until Ctrl-C.

options:
  -T, --timestamp        include a timestamp column (seconds since the first event)
  -U, --print-uid        include a UID column
  -p, --pid PID          only trace this process
  -t, --tid TID          only trace this thread (the column shows TIDs)
  -u, --uid UID          only trace this user id
  -d, --duration SECS    stop after this many seconds
  -n, --name NAME        only print process names containing NAME
  -v, --verbose          show the system's free memory (FREE(KB), read from /proc/meminfo
                         when the event is printed; BCC reads vm_stat at reclaim)
      --global-only      only global direct reclaim, as BCC's drsnoop; by default also
                         reclaim at a memory cgroup's limit
      --json             one JSON object per line instead of columns ("memcg": true for
                         cgroup-limit reclaim)
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: the tracepoints vmscan:mm_vmscan_direct_reclaim_begin/end (global direct
reclaim, as BCC) and vmscan:mm_vmscan_memcg_reclaim_begin/end (a cgroup at its memory
limit: the charging task reclaims itself; left out when the kernel lacks them, or
with --global-only). No kprobes.

examples:
  tsbpf drsnoop                # trace all direct reclaim
  tsbpf drsnoop -T             # include timestamps
  tsbpf drsnoop -U             # include UID
  tsbpf drsnoop -p 181         # only trace PID 181
  tsbpf drsnoop -t 123         # only trace TID 123
  tsbpf drsnoop -u 1000        # only trace UID 1000
  tsbpf drsnoop -d 10          # trace for 10 seconds only
  tsbpf drsnoop -n main        # only print process names containing "main"
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  "print-uid": { type: "boolean", short: "U" },
  pid: { type: "string", short: "p" },
  tid: { type: "string", short: "t" },
  uid: { type: "string", short: "u" },
  duration: { type: "string", short: "d" },
  name: { type: "string", short: "n" },
  verbose: { type: "boolean", short: "v" },
  "global-only": { type: "boolean" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface ReclaimEvent {
  ts: bigint;
  delta_ns: bigint;
  nr_reclaimed: bigint;
  pid: number;
  tid: number;
  uid: number;
  memcg: number;
  comm: string;
}

function freeKb(): number {
  try {
    return Number(/^MemFree:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const tid = pidOption(o.tid, "-t/--tid");
  const uid = uidOption(o.uid, "-u/--uid");
  const duration = durationOption(o.duration);
  if (!tracepointExists("vmscan", "mm_vmscan_direct_reclaim_begin")) {
    throw new NotSupportedError("vmscan:mm_vmscan_direct_reclaim_begin", "drsnoop needs the vmscan:mm_vmscan_direct_reclaim_begin/end tracepoints, which this kernel lacks");
  }
  const memcg = !o["global-only"] && tracepointExists("vmscan", "mm_vmscan_memcg_reclaim_begin");
  let firstTs: bigint | undefined;
  const header =
    (o.timestamp ? "TIME(s)".padEnd(14) : "") +
    (o["print-uid"] ? "UID".padEnd(6) : "") +
    `${"COMM".padEnd(14)} ${(tid ? "TID" : "PID").padEnd(6)} ${"LAT(ms)".padStart(8)} ${"PAGES".padStart(5)}` +
    (o.verbose ? "FREE(KB)".padStart(10) : "");
  return runEventTool<ReclaimEvent>({
    tool: "drsnoop",
    programs: memcg ? ["direct_begin", "direct_end", "memcg_begin", "memcg_end"] : ["direct_begin", "direct_end"],
    constants: { targ_pid: pid ?? 0, targ_tid: tid ?? 0, targ_uid: uid ?? 0xffffffff },
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header,
    line: (e) => {
      firstTs ??= e.ts;
      if (o.name !== undefined && !e.comm.includes(o.name)) return undefined;
      return (
        (o.timestamp ? (Number(e.ts - firstTs) / 1e9).toFixed(9).padEnd(14) : "") +
        (o["print-uid"] ? String(e.uid).padEnd(6) : "") +
        `${e.comm.slice(0, 14).padEnd(14)} ${String(tid ? e.tid : e.pid).padEnd(6)} ${(Number(e.delta_ns) / 1e6).toFixed(2).padStart(8)} ${String(e.nr_reclaimed).padStart(5)}` +
        (o.verbose ? String(freeKb()).padStart(10) : "")
      );
    },
    record: (e) => {
      firstTs ??= e.ts;
      if (o.name !== undefined && !e.comm.includes(o.name)) return undefined;
      return {
        time: Number(e.ts - firstTs) / 1e9, comm: e.comm, pid: e.pid, tid: e.tid, uid: e.uid,
        lat_ms: Number(e.delta_ns) / 1e6, pages: Number(e.nr_reclaimed), memcg: e.memcg !== 0, ...(o.verbose ? { free_kb: freeKb() } : {}),
      };
    },
  });
}
