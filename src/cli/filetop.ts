// tsbpf filetop: file reads and writes by thread, top-style (BCC's filetop).
import { tracepointExists } from "../link/tracepoint.ts";
import { NotSupportedError } from "../errors.ts";
import { parseIntervalArgs } from "../histogram/index.ts";
import { drainMap, runTopTool } from "./skeleton.ts";
import { havePrivileges, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf filetop [-h] [-a] [-C] [-r MAXROWS] [-s {all,reads,writes,rbytes,wbytes}] [-p PID]
                     [--read-only] [--write-only] [--json] [interval] [count]

File reads and writes by thread and file, top-style: a table every interval (default 1 s).

positional arguments:
  interval             output interval, in seconds (default 1)
  count                number of outputs

options:
  -a, --all-files      include non-regular file types (sockets, FIFOs, etc)
  -C, --noclear        don't clear the screen
  -r, --maxrows ROWS   maximum rows to print (default 20)
  -s, --sort COLUMN    sort column: all (default), reads, writes, rbytes, wbytes
  -p, --pid PID        trace this PID only
      --read-only      trace only reads
      --write-only     trace only writes
      --json           one JSON object per interval: {time, rows: [...]}

columns: TID, COMM, READS, WRITES, R_Kb, W_Kb, T (R regular, S socket, O other), FILE.

hooks: BCC uses kprobes on vfs_read and vfs_write. Without kprobes this uses the
syscall tracepoints of read, readv, pread64, preadv, preadv2 and of the writes: the
file is the one behind the fd at exit, and the Kbytes are those the call moved (BCC
counts the bytes asked for). I/O that is not a syscall (io_uring, sendfile, splice,
kernel threads) is not counted.

examples:
  tsbpf filetop              # file I/O top, 1 second refresh
  tsbpf filetop -C           # don't clear the screen
  tsbpf filetop -p 181       # PID 181 only
  tsbpf filetop 5            # 5 second summaries
  tsbpf filetop -s reads     # sort on reads
`;

const OPTIONS = {
  "all-files": { type: "boolean", short: "a" },
  noclear: { type: "boolean", short: "C" },
  maxrows: { type: "string", short: "r" },
  sort: { type: "string", short: "s" },
  pid: { type: "string", short: "p" },
  "read-only": { type: "boolean" },
  "write-only": { type: "boolean" },
  json: { type: "boolean" },
} as const;

const SORTS = ["all", "reads", "writes", "rbytes", "wbytes"] as const;
const READS = ["read", "readv", "pread64", "preadv", "preadv2"];
const WRITES = ["write", "writev", "pwrite64", "pwritev", "pwritev2"];
const NAME_LEN = 64;

interface Key {
  inode: bigint;
  dev: number;
  rdev: number;
  pid: number;
  name_len: number;
  comm: string;
  name: string;
  type: number | string;
}

interface Val {
  reads: bigint;
  writes: bigint;
  rbytes: bigint;
  wbytes: bigint;
}

export interface FiletopRow {
  tid: number;
  comm: string;
  reads: number;
  writes: number;
  r_kb: number;
  w_kb: number;
  type: string;
  file: string;
  inode: number;
  dev: number;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals.length ? positionals : ["1"]);
  const maxRows = intOption(o.maxrows, "-r/--maxrows", 1) ?? 20;
  const pid = pidOption(o.pid, "-p/--pid");
  const sort = (o.sort ?? "all") as (typeof SORTS)[number];
  if (!SORTS.includes(sort)) throw new UsageError(`-s/--sort: one of ${SORTS.join(", ")}, got "${o.sort}"`);
  if (o["read-only"] && o["write-only"]) throw new UsageError("--read-only and --write-only cannot be used together");
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("filetop")) return 1;
  const has = (s: string) => tracepointExists("syscalls", `sys_enter_${s}`);
  if (!has("read")) throw new NotSupportedError("syscalls:sys_enter_read", "this tool needs the syscall tracepoints (CONFIG_FTRACE_SYSCALLS) on a kernel without kprobes, and this kernel has neither");
  const syscalls = [...(o["write-only"] ? [] : READS), ...(o["read-only"] ? [] : WRITES)].filter(has);
  const key = (r: FiletopRow): number =>
    sort === "all" ? r.reads + r.writes + r.r_kb + r.w_kb : sort === "rbytes" ? r.r_kb : sort === "wbytes" ? r.w_kb : r[sort];
  return runTopTool<FiletopRow>({
    tool: "filetop",
    intervals,
    noclear: o.noclear,
    maxRows,
    json: o.json,
    programs: syscalls.flatMap((s) => [`enter_${s}`, `exit_${s}`]),
    constants: { targ_pid: pid ?? 0, regular_file_only: !o["all-files"] },
    banner: `Tracing... Output every ${intervals.interval} secs. Hit Ctrl-C to end`,
    header: `${"TID".padEnd(7)} ${"COMM".padEnd(16)} ${"READS".padEnd(6)} ${"WRITES".padEnd(6)} ${"R_Kb".padEnd(7)} ${"W_Kb".padEnd(7)} T FILE`,
    rows: (coll) =>
      (drainMap(coll.map("counts")) as [Key, Val][])
        .map(([k, v]) => ({
          tid: k.pid,
          comm: k.comm,
          reads: Number(v.reads),
          writes: Number(v.writes),
          r_kb: Math.floor(Number(v.rbytes) / 1024),
          w_kb: Math.floor(Number(v.wbytes) / 1024),
          type: typeof k.type === "number" ? String.fromCharCode(k.type) : k.type,
          file: k.name_len >= NAME_LEN ? `${k.name.slice(0, NAME_LEN - 4)}...` : k.name,
          inode: Number(k.inode),
          dev: k.dev,
        }))
        .sort((a, b) => key(b) - key(a)),
    line: (r) =>
      `${String(r.tid).padEnd(7)} ${r.comm.padEnd(16)} ${String(r.reads).padEnd(6)} ${String(r.writes).padEnd(6)} ${String(r.r_kb).padEnd(7)} ${String(r.w_kb).padEnd(7)} ${r.type} ${r.file}`,
  });
}
