// tsbpf biotop: block I/O by process, top-style (BCC's biotop).
import { tracepointExists } from "../link/tracepoint.ts";
import { DiskNames, mkdev } from "../internal/disks.ts";
import { parseIntervalArgs } from "../histogram/index.ts";
import { requireBlockTracepoints } from "./biolatency.ts";
import { drainMap, runTopTool } from "./skeleton.ts";
import { havePrivileges, intOption, parseToolArgs, pidOption } from "./tool.ts";

const HELP = `usage: tsbpf biotop [-h] [-C] [-r MAXROWS] [-p PID] [--json] [interval] [count]

Block device (disk) I/O by process, top-style: a table every interval (default 1 s).

positional arguments:
  interval             output interval, in seconds (default 1)
  count                number of outputs

options:
  -C, --noclear        don't clear the screen
  -r, --maxrows ROWS   maximum rows to print (default 20)
  -p, --pid PID        trace this PID only
      --json           one JSON object per interval: {time, rows: [...]}

columns: PID, COMM (the process that submitted the I/O), D (R/W), MAJ, MIN, DISK,
I/O (count), Kbytes, AVGms (average latency from issue to completion).

hooks: tp_btf/block_io_start (the submitting process, 6.5+; before that the process
current at issue), tp_btf/block_rq_issue, tp_btf/block_rq_complete.

examples:
  tsbpf biotop            # block device I/O top, 1 second refresh
  tsbpf biotop -C         # don't clear the screen
  tsbpf biotop -p 181     # only PID 181
  tsbpf biotop 5          # 5 second summaries
`;

const OPTIONS = {
  noclear: { type: "boolean", short: "C" },
  maxrows: { type: "string", short: "r" },
  pid: { type: "string", short: "p" },
  json: { type: "boolean" },
} as const;

interface Key {
  pid: number;
  rwflag: number;
  major: number;
  minor: number;
  name: string;
}

interface Val {
  bytes: bigint;
  us: bigint;
  io: number;
}

export interface BiotopRow {
  pid: number;
  comm: string;
  d: "R" | "W";
  major: number;
  minor: number;
  disk: string;
  io: number;
  kbytes: number;
  avg_ms: number;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals.length ? positionals : ["1"]);
  const maxRows = intOption(o.maxrows, "-r/--maxrows", 1) ?? 20;
  const pid = pidOption(o.pid, "-p/--pid");
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("biotop")) return 1;
  requireBlockTracepoints("biotop", ["block_rq_issue", "block_rq_complete"]);
  const programs = ["block_rq_issue", "block_rq_complete"];
  if (tracepointExists("block", "block_io_start")) programs.push("block_io_start");
  const disks = new DiskNames();
  return runTopTool<BiotopRow>({
    tool: "biotop",
    intervals,
    noclear: o.noclear,
    maxRows,
    json: o.json,
    programs,
    constants: { targ_pid: pid ?? 0, have_io_start: programs.includes("block_io_start") },
    banner: `Tracing... Output every ${intervals.interval} secs. Hit Ctrl-C to end`,
    header:
      `${"PID".padEnd(7)} ${"COMM".padEnd(16)} D ${"MAJ".padEnd(3)} ${"MIN".padEnd(3)} ${"DISK".padEnd(8)} ` +
      `${"I/O".padStart(5)} ${"Kbytes".padStart(7)} ${"AVGms".padStart(6)}`,
    rows: (coll) =>
      (drainMap(coll.map("counts")) as [Key, Val][])
        .sort((a, b) => (b[1].bytes > a[1].bytes ? 1 : b[1].bytes < a[1].bytes ? -1 : 0))
        .map(([k, v]) => ({
          pid: k.pid,
          comm: k.name,
          d: k.rwflag ? "W" : "R",
          major: k.major,
          minor: k.minor,
          disk: disks.name(mkdev(k.major, k.minor)),
          io: v.io,
          kbytes: Math.floor(Number(v.bytes) / 1024),
          avg_ms: v.io ? Number(v.us) / 1000 / v.io : 0,
        })),
    line: (r) =>
      `${String(r.pid).padEnd(7)} ${r.comm.padEnd(16)} ${r.d} ${String(r.major).padEnd(3)} ${String(r.minor).padEnd(3)} ${r.disk.padEnd(8)} ` +
      `${String(r.io).padStart(5)} ${String(r.kbytes).padStart(7)} ${r.avg_ms.toFixed(2).padStart(6)}`,
  });
}
