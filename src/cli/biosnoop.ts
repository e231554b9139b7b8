// tsbpf biosnoop: a line per block I/O, with BCC's biosnoop columns and options.
import { tracepointExists } from "../link/tracepoint.ts";
import { DiskNames, diskByName } from "../internal/disks.ts";
import { requireBlockTracepoints } from "./biolatency.ts";
import { runEventTool } from "./skeleton.ts";
import { havePrivileges, parseToolArgs, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf biosnoop [-h] [-Q] [-d DISK] [--json] [--perf-buffer]

Trace block I/O: a line per request, from issue to completion, until Ctrl-C.

options:
  -Q, --queue        include OS queued time (QUE(ms): insert to issue)
  -d, --disk DISK    trace this disk only (vda, /dev/vda or 254:0)
      --json         one JSON object per I/O instead of columns
      --perf-buffer  read events through a perf buffer even where a ring buffer works

columns: TIME(s) since the first I/O, COMM and PID of the process that submitted it,
DISK, T (R or W), SECTOR, BYTES, [QUE(ms)], LAT(ms) from issue to completion.

hooks: tp_btf/block_io_start (the submitting process, kernels 6.5+; before that the
process current at insert or issue, which for writeback is a kernel thread),
tp_btf/block_rq_insert, tp_btf/block_rq_issue, tp_btf/block_rq_complete, and
tp_btf/block_rq_merge and block_rq_requeue to keep its request map exact.
Events the kernel could not deliver are counted: "N events lost" on stderr at the end,
as are requests whose completion was never seen (their line cannot be made) and
requests not traced because the tool's request map was full.

examples:
  tsbpf biosnoop           # trace all block I/O
  tsbpf biosnoop -Q        # include OS queued time
  tsbpf biosnoop -d vda    # trace vda only
`;

const OPTIONS = {
  queue: { type: "boolean", short: "Q" },
  disk: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface BioEvent {
  ts: bigint;
  delta: bigint;
  qdelta: bigint;
  sector: bigint;
  len: number;
  pid: number;
  dev: number;
  rwflag: number;
  comm: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const dev = o.disk !== undefined ? diskByName(o.disk) : 0;
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("biosnoop")) return 1;
  requireBlockTracepoints("biosnoop", ["block_rq_insert", "block_rq_issue", "block_rq_complete"]);
  const programs = ["block_rq_insert", "block_rq_issue", "block_rq_complete"];
  if (tracepointExists("block", "block_io_start")) programs.push("block_io_start");
  // Merged-away and requeued requests: without these a later reuse of the request reads as a missed completion.
  for (const tp of ["block_rq_merge", "block_rq_requeue"]) if (tracepointExists("block", tp)) programs.push(tp);
  const disks = new DiskNames();
  let first: bigint | undefined;
  const seconds = (ts: bigint) => Number(ts - (first ??= ts)) / 1e9;
  const ms = (ns: bigint) => (Number(ns) / 1e6).toFixed(2).padStart(7);
  return runEventTool<BioEvent>({
    tool: "biosnoop",
    programs,
    constants: { targ_queued: o.queue ?? false, targ_dev: dev, have_io_start: programs.includes("block_io_start") },
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header:
      `${"TIME(s)".padEnd(11)} ${"COMM".padEnd(14)} ${"PID".padEnd(7)} ${"DISK".padEnd(9)} T ${"SECTOR".padEnd(10)} ${"BYTES".padEnd(7)} ` +
      (o.queue ? `${"QUE(ms)".padStart(7)} ` : "") +
      "LAT(ms)".padStart(7),
    line: (e) =>
      `${seconds(e.ts).toFixed(6).padEnd(11)} ${e.comm.slice(0, 14).padEnd(14)} ${String(e.pid).padEnd(7)} ${disks.name(e.dev, "<unknown>").padEnd(9)} ` +
      `${e.rwflag ? "W" : "R"} ${String(e.sector).padEnd(10)} ${String(e.len).padEnd(7)} ` +
      (o.queue ? `${ms(e.qdelta)} ` : "") +
      ms(e.delta),
    record: (e) => ({
      time: seconds(e.ts),
      comm: e.comm,
      pid: e.pid,
      disk: disks.name(e.dev, "<unknown>"),
      dev: e.dev,
      type: e.rwflag ? "W" : "R",
      sector: Number(e.sector),
      bytes: e.len,
      ...(o.queue ? { queue_ms: Number(e.qdelta) / 1e6 } : {}),
      lat_ms: Number(e.delta) / 1e6,
    }),
  });
}
