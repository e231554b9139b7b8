// The fsslower family (BCC's ext4slower, xfsslower, btrfsslower): one implementation and
// one BPF object (bpf/fsslower.bpf.c); the file system is a parameter (its name, super
// block magic and the functions BCC's kprobes time).
import { readFileSync } from "node:fs";
import { tracepointExists } from "../link/tracepoint.ts";
import { haveDynamicProbes } from "../features/index.ts";
import { kallsyms } from "../internal/kallsyms.ts";
import { NotSupportedError } from "../errors.ts";
import { clockTime } from "../histogram/index.ts";
import type { Collection } from "../collection.ts";
import { runEventTool } from "./skeleton.ts";
import { havePrivileges, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

export interface FileSystem {
  /** The tool's name: ext4slower. */
  tool: string;
  /** The name in /proc/filesystems. */
  fs: string;
  /** As BCC's header writes it: "ext4", "XFS", "btrfs". */
  title: string;
  magic: number;
  /** The functions BCC's kprobes time; the first of each list that the kernel has is used. */
  functions: { read: string[]; write: string[]; open: string[]; fsync: string[] };
  /** Width of the PID column (BCC's btrfsslower has 7, the others 6). */
  pidWidth: number;
}

export const FILE_SYSTEMS: Record<string, FileSystem> = {
  ext4: {
    tool: "ext4slower", fs: "ext4", title: "ext4", magic: 0xef53, pidWidth: 6,
    functions: { read: ["ext4_file_read_iter"], write: ["ext4_file_write_iter"], open: ["ext4_file_open"], fsync: ["ext4_sync_file"] },
  },
  xfs: {
    tool: "xfsslower", fs: "xfs", title: "XFS", magic: 0x58465342, pidWidth: 6,
    functions: { read: ["xfs_file_read_iter"], write: ["xfs_file_write_iter"], open: ["xfs_file_open"], fsync: ["xfs_file_fsync"] },
  },
  btrfs: {
    // BCC uses generic_file_read_iter/generic_file_open (kept to btrfs by the magic here);
    // btrfs has had functions of its own for both since 5.x.
    tool: "btrfsslower", fs: "btrfs", title: "btrfs", magic: 0x9123683e, pidWidth: 7,
    functions: {
      read: ["btrfs_file_read_iter", "generic_file_read_iter"], write: ["btrfs_file_write_iter"],
      open: ["btrfs_file_open", "generic_file_open"], fsync: ["btrfs_sync_file"],
    },
  },
};

const TYPES = ["R", "W", "O", "S"];
const FD_CALLS = ["read", "readv", "pread64", "preadv", "write", "writev", "pwrite64", "pwritev", "fsync", "fdatasync"];
const OPEN_CALLS = ["open", "openat", "openat2", "creat"];
const KINDS = ["read", "write", "open", "fsync"] as const;

function help(f: FileSystem): string {
  const fns = KINDS.map((k) => f.functions[k][0]).join(", ");
  return `usage: tsbpf ${f.tool} [-h] [-j] [-p PID] [--json] [--perf-buffer] [min_ms]

Trace common ${f.title} file operations slower than a threshold (default 10 ms; 0 traces all).

positional arguments:
  min_ms             minimum I/O duration to trace, in ms (default 10)

options:
  -j, --csv          just print fields: comma-separated values
  -p, --pid PID      trace this PID only
      --json         one JSON object per operation
      --perf-buffer  read events through a perf buffer even where a ring buffer works

columns: TIME, COMM, PID, T (R read, W write, O open, S fsync), BYTES, OFF_KB,
LAT(ms), FILENAME.

hooks: where the kernel has kprobes, as BCC: a kprobe and a kretprobe on each of
${fns}${f.fs === "btrfs" ? "\n(generic_file_read_iter/generic_file_open where btrfs has none of its own)" : ""}.
Without kprobes (or with TSBPF_FSSLOWER_SYSCALLS=1) this times the syscalls that call
them (read, readv, pread64, preadv, the writes alike, open, openat, openat2, creat,
fsync, fdatasync) through their tracepoints, from entry to exit, and keeps those whose
file is on ${f.fs} (the super block's magic). The latency so includes the syscall's own
work (a few microseconds); I/O that is not a syscall (io_uring, mmap faults, splice)
is not seen. The kernel must have ${f.fs} (/proc/filesystems).

examples:
  tsbpf ${f.tool}             # trace operations slower than 10 ms (default)
  tsbpf ${f.tool} 1           # trace operations slower than 1 ms
  tsbpf ${f.tool} -j 1        # ... 1 ms, parsable output (csv)
  tsbpf ${f.tool} 0           # trace all operations (warning: verbose)
  tsbpf ${f.tool} -p 185      # trace PID 185 only
`;
}

const OPTIONS = {
  csv: { type: "boolean", short: "j" },
  pid: { type: "string", short: "p" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

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

function kernelHasFs(fs: string): boolean {
  try {
    return readFileSync("/proc/filesystems", "utf8").split("\n").some((l) => l.split("\t").at(-1) === fs);
  } catch {
    return true; // no /proc: let the hooks decide
  }
}

/** The kprobe targets, one per kind, when the kernel has kprobes and every function; else undefined. */
export function kprobeTargets(f: FileSystem): Record<(typeof KINDS)[number], string> | undefined {
  if (process.env.TSBPF_FSSLOWER_SYSCALLS === "1" || !haveDynamicProbes("kprobe")) return undefined;
  const syms = kallsyms();
  const out: Partial<Record<(typeof KINDS)[number], string>> = {};
  for (const k of KINDS) {
    const fn = f.functions[k].find((n) => syms.has(n));
    if (!fn) return undefined;
    out[k] = fn;
  }
  return out as Record<(typeof KINDS)[number], string>;
}

export async function runFsSlower(f: FileSystem, args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, help(f));
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`expected at most one argument, [min_ms], got ${positionals.length}`);
  const minMs = intOption(positionals[0], "min_ms", 0, 1e9, "a number of milliseconds") ?? 10;
  const pid = pidOption(o.pid, "-p/--pid");
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges(f.tool)) return 1;
  if (!kernelHasFs(f.fs)) {
    throw new NotSupportedError(f.fs, `this kernel has no ${f.fs} file system (not in /proc/filesystems; load its module, modprobe ${f.fs}, or use a kernel built with it), so there is nothing for ${f.tool} to trace`);
  }
  const targets = kprobeTargets(f);
  const has = (s: string) => tracepointExists("syscalls", `sys_enter_${s}`);
  if (!targets && !has("read")) {
    throw new NotSupportedError("syscalls:sys_enter_read", `this tool needs kprobes on ${KINDS.map((k) => f.functions[k][0]).join(", ")} or the syscall tracepoints (CONFIG_FTRACE_SYSCALLS), and this kernel has neither`);
  }
  const programs = targets
    ? ["fs_read_entry", "fs_write_entry", "fs_open_entry", "fs_fsync_entry", "fs_return"]
    : [...FD_CALLS, ...OPEN_CALLS].filter(has).flatMap((s) => [`enter_${s}`, `exit_${s}`]);
  const attach = targets
    ? (coll: Collection): void => {
        for (const k of KINDS) coll.program(`fs_${k}_entry`).attachKprobe({ symbol: targets[k] });
        for (const k of KINDS) coll.program("fs_return").attachKprobe({ symbol: targets[k], retprobe: true });
      }
    : undefined;
  const w = f.pidWidth;
  const header = o.csv
    ? "ENDTIME_us,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE"
    : `${minMs === 0 ? `Tracing ${f.title} operations` : `Tracing ${f.title} operations slower than ${minMs} ms`}\n` +
      `${"TIME".padEnd(8)} ${"COMM".padEnd(14)} ${"PID".padEnd(w)} T ${"BYTES".padEnd(7)} ${"OFF_KB".padEnd(8)} ${"LAT(ms)".padStart(7)} FILENAME`;
  return runEventTool<SlowEvent>({
    tool: f.tool,
    object: "fsslower",
    programs,
    attach,
    constants: { min_ns: BigInt(minMs) * 1000000n, targ_pid: pid ?? 0, fs_magic: BigInt(f.magic) },
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header,
    line: (e) => {
      const t = TYPES[e.type] ?? "?";
      if (o.csv) return `${e.ts_us},${e.task},${e.pid},${t},${e.size},${e.offset},${e.delta_us},${e.file}`;
      return (
        `${clockTime()} ${e.task.slice(0, 14).padEnd(14)} ${String(e.pid).padEnd(w)} ${t} ${String(e.size).padEnd(7)} ` +
        `${String(e.offset / 1024n).padEnd(8)} ${(Number(e.delta_us) / 1000).toFixed(2).padStart(7)} ${e.file}`
      );
    },
    record: (e) => ({
      time: clockTime(), comm: e.task, pid: e.pid, type: TYPES[e.type] ?? "?", bytes: e.size,
      offset: Number(e.offset), lat_us: Number(e.delta_us), file: e.file,
    }),
  });
}
