// tsbpf vfsstat: VFS calls per second by kind (BCC's vfsstat), from syscall tracepoints.
import { tracepointExists } from "../link/tracepoint.ts";
import { NotSupportedError } from "../errors.ts";
import { clockTime, intervalTicks } from "../histogram/index.ts";
import { counterDeltas, parseIntervalToolArgs, startTool } from "./skeleton.ts";
import { havePrivileges } from "./tool.ts";

const HELP = `usage: tsbpf vfsstat [-h] [-p PID] [--json] [interval] [count]

Count some VFS calls per second, by kind: a line every interval (default 1 s).

positional arguments:
  interval       output interval, in seconds (default 1)
  count          number of outputs

options:
  -p, --pid PID  trace this PID only
      --json     one JSON object per interval

columns: READ/s WRITE/s FSYNC/s OPEN/s CREATE/s UNLINK/s MKDIR/s RMDIR/s, as BCC.

hooks: BCC counts vfs_read, vfs_write, vfs_fsync, vfs_open, vfs_create, vfs_unlink,
vfs_mkdir and vfs_rmdir with kprobes. Without kprobes, this counts the syscalls that
call them, through their tracepoints: read/readv/pread64/preadv/preadv2 and the writes
alike (at entry), fsync/fdatasync, open/openat/openat2/creat (at exit; CREATE when the
open created the file: FMODE_CREATED), and unlink/unlinkat, mkdir/mkdirat, rmdir/
unlinkat(AT_REMOVEDIR) that succeeded. I/O that is not a syscall (io_uring, sendfile,
splice, kernel threads) is not counted.

examples:
  tsbpf vfsstat          # every second, until Ctrl-C
  tsbpf vfsstat 5 10     # every 5 seconds, 10 times
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  json: { type: "boolean" },
} as const;

const STATS = ["READ", "WRITE", "FSYNC", "OPEN", "CREATE", "UNLINK", "MKDIR", "RMDIR"];

const ENTER = ["read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "fsync", "fdatasync"];
const OPEN_EXIT = ["open", "openat", "openat2", "creat"];
const SETTLED = ["unlink", "unlinkat", "mkdir", "mkdirat", "rmdir"];

export async function run(args: string[]): Promise<number> {
  const parsed = parseIntervalToolArgs(args, OPTIONS, HELP, ["1"]);
  if (!parsed) return 0;
  const { o, intervals, pid } = parsed;
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("vfsstat")) return 1;
  const has = (s: string) => tracepointExists("syscalls", `sys_enter_${s}`);
  if (!has("read")) throw new NotSupportedError("syscalls:sys_enter_read", "this tool needs the syscall tracepoints (CONFIG_FTRACE_SYSCALLS) on a kernel without kprobes, and this kernel has neither");
  const programs = [
    ...ENTER.filter(has).map((s) => `enter_${s}`),
    ...OPEN_EXIT.filter(has).map((s) => `exit_${s}`),
    ...SETTLED.filter(has).flatMap((s) => [`enter_${s}`, `exit_${s}`]),
  ];
  await using tool = await startTool({ tool: "vfsstat", programs, constants: { targ_pid: pid ?? 0 } });
  if (!tool) return 1;
  const { coll, run } = tool;
  const gained = counterDeltas(coll.map("stats"));
  if (!o.json) run.out.line(`${"TIME".padEnd(8)}  ${STATS.map((s) => ` ${`${s}/s`.padStart(8)}`).join("")}`);
  run.out.flush();
  let last = Date.now();
  for await (const tick of intervalTicks({ interval: intervals.interval, count: intervals.count, signal: run.signal })) {
    if (run.out.closed) break;
    // BCC divides by the interval; the last, cut short by Ctrl-C, by the time it lasted.
    const now = Date.now();
    const seconds = tick.last && !intervals.periodic ? (now - last) / 1000 : intervals.interval;
    last = now;
    const values = STATS.map((_, i) => Math.floor(Number(gained(i + 1)) / Math.max(seconds, 1e-3)));
    if (o.json) run.out.json({ time: clockTime(tick.time), ...Object.fromEntries(STATS.map((s, i) => [`${s.toLowerCase()}_per_s`, values[i]])) });
    else run.out.line(`${clockTime(tick.time).padEnd(8)}: ${values.map((v) => ` ${String(v).padStart(8)}`).join("")}`);
    run.out.flush();
    if (tick.last) break;
  }
  return 0;
}
