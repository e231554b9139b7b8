// tsbpf ext4slower: ext4 operations slower than a threshold (BCC's ext4slower).
import { tracepointExists } from "../link/tracepoint.ts";
import { NotSupportedError } from "../errors.ts";
import { clockTime } from "../histogram/index.ts";
import { runEventTool } from "./skeleton.ts";
import { havePrivileges, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf ext4slower [-h] [-j] [-p PID] [--json] [--perf-buffer] [min_ms]

Trace common ext4 file operations slower than a threshold (default 10 ms; 0 traces all).

positional arguments:
  min_ms             minimum I/O duration to trace, in ms (default 10)

options:
  -j, --csv          just print fields: comma-separated values
  -p, --pid PID      trace this PID only
      --json         one JSON object per operation
      --perf-buffer  read events through a perf buffer even where a ring buffer works

columns: TIME, COMM, PID, T (R read, W write, O open, S fsync), BYTES, OFF_KB,
LAT(ms), FILENAME.

hooks: BCC times ext4_file_read_iter, ext4_file_write_iter, ext4_file_open and
ext4_sync_file with kprobes. Without kprobes this times the syscalls that call them
(read, readv, pread64, preadv, the writes alike, open, openat, openat2, creat, fsync,
fdatasync) through their tracepoints, from entry to exit, and keeps those whose file is
on ext4 (the super block's magic). The latency so includes the syscall's own work
(a few microseconds); I/O that is not a syscall (io_uring, mmap faults, splice) is
not seen.

examples:
  tsbpf ext4slower             # trace operations slower than 10 ms (default)
  tsbpf ext4slower 1           # trace operations slower than 1 ms
  tsbpf ext4slower -j 1        # ... 1 ms, parsable output (csv)
  tsbpf ext4slower 0           # trace all operations (warning: verbose)
  tsbpf ext4slower -p 185      # trace PID 185 only
`;

const OPTIONS = {
  csv: { type: "boolean", short: "j" },
  pid: { type: "string", short: "p" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

const TYPES = ["R", "W", "O", "S"];
const FD_CALLS = ["read", "readv", "pread64", "preadv", "write", "writev", "pwrite64", "pwritev", "fsync", "fdatasync"];
const OPEN_CALLS = ["open", "openat", "openat2", "creat"];

interface SlowEvent {
  ts_us: bigint;
  delta_us: bigint;
  type: number;
  size: number;
  offset: bigint;
  pid: number;
  task: string;
  file: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`expected at most one argument, [min_ms], got ${positionals.length}`);
  const minMs = intOption(positionals[0], "min_ms", 0, 1e9, "a number of milliseconds") ?? 10;
  const pid = pidOption(o.pid, "-p/--pid");
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("ext4slower")) return 1;
  const has = (s: string) => tracepointExists("syscalls", `sys_enter_${s}`);
  if (!has("read")) throw new NotSupportedError("syscalls:sys_enter_read", "this tool needs the syscall tracepoints (CONFIG_FTRACE_SYSCALLS) on a kernel without kprobes, and this kernel has neither");
  const programs = [...FD_CALLS, ...OPEN_CALLS].filter(has).flatMap((s) => [`enter_${s}`, `exit_${s}`]);
  const header = o.csv
    ? "ENDTIME_us,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE"
    : `${minMs === 0 ? "Tracing ext4 operations" : `Tracing ext4 operations slower than ${minMs} ms`}\n` +
      `${"TIME".padEnd(8)} ${"COMM".padEnd(14)} ${"PID".padEnd(6)} T ${"BYTES".padEnd(7)} ${"OFF_KB".padEnd(8)} ${"LAT(ms)".padStart(7)} FILENAME`;
  return runEventTool<SlowEvent>({
    tool: "ext4slower",
    programs,
    constants: { min_ns: BigInt(minMs) * 1000000n, targ_pid: pid ?? 0 },
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header,
    line: (e) => {
      const t = TYPES[e.type] ?? "?";
      if (o.csv) return `${e.ts_us},${e.task},${e.pid},${t},${e.size},${e.offset},${e.delta_us},${e.file}`;
      return (
        `${clockTime()} ${e.task.slice(0, 14).padEnd(14)} ${String(e.pid).padEnd(6)} ${t} ${String(e.size).padEnd(7)} ` +
        `${String(e.offset / 1024n).padEnd(8)} ${(Number(e.delta_us) / 1000).toFixed(2).padStart(7)} ${e.file}`
      );
    },
    record: (e) => ({
      time: clockTime(), comm: e.task, pid: e.pid, type: TYPES[e.type] ?? "?", bytes: e.size,
      offset: Number(e.offset), lat_us: Number(e.delta_us), file: e.file,
    }),
  });
}
