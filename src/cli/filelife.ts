// tsbpf filelife: short-lived files, with BCC's filelife columns.
import { tracepointExists } from "../link/tracepoint.ts";
import { haveDynamicProbes } from "../features/index.ts";
import { kallsyms } from "../internal/kallsyms.ts";
import { NotSupportedError } from "../errors.ts";
import { clockTime } from "../histogram/index.ts";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";
import { havePrivileges } from "./tool.ts";

const HELP = `usage: tsbpf filelife [-h] [-p PID] [-d DURATION] [--json] [--perf-buffer]

Trace the lifespan of short-lived files: a line when a file created while tracing
is deleted, with its age, until Ctrl-C.

options:
  -p, --pid PID        trace this PID only (the deleting process)
  -d, --duration SECS  stop after this many seconds
      --json           one JSON object per file instead of columns
      --perf-buffer    read events through a perf buffer even where a ring buffer works

columns: TIME, PID and COMM of the process that deleted the file, AGE(s), FILE.

hooks: BCC uses kprobes on vfs_create, security_inode_create and vfs_unlink. Here,
creation is an open, openat, openat2 or creat that created its file (the syscalls'
exit tracepoints, FMODE_CREATED: any file system; files made by mknod are not seen);
deletion is a kprobe on vfs_unlink where the kernel has kprobes (any file system),
else tp_btf/ext4_unlink_enter: without kprobes, files are seen on ext4 only, since
no other file system has an unlink tracepoint.

examples:
  tsbpf filelife          # trace all short-lived files
  tsbpf filelife -p 181   # files deleted by PID 181
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface LifeEvent {
  delta_ns: bigint;
  pid: number;
  task: string;
  file: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, pid, duration } = parsed;
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("filelife")) return 1;
  const unlink = haveDynamicProbes("kprobe") && kallsyms().has("vfs_unlink") ? "vfs_unlink" : tracepointExists("ext4", "ext4_unlink_enter") ? "ext4_unlink_enter" : undefined;
  if (!unlink) {
    throw new NotSupportedError(
      "kprobes",
      "this tool needs a kprobe on vfs_unlink or the tracepoint ext4:ext4_unlink_enter, and this kernel has neither kprobes nor ext4 tracepoints",
    );
  }
  const opens = ["open", "openat", "openat2", "creat"].filter((s) => tracepointExists("syscalls", `sys_exit_${s}`));
  return runEventTool<LifeEvent>({
    tool: "filelife",
    durationSec: duration,
    programs: [unlink, ...opens.map((s) => `exit_${s}`)],
    constants: { targ_pid: pid ?? 0 },
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header: `${"TIME".padEnd(8)} ${"PID".padEnd(7)} ${"COMM".padEnd(16)} ${"AGE(s)".padEnd(7)} FILE`,
    line: (e) => `${clockTime()} ${String(e.pid).padEnd(7)} ${e.task.padEnd(16)} ${(Number(e.delta_ns) / 1e9).toFixed(2).padEnd(7)} ${e.file}`,
    record: (e) => ({ time: clockTime(), pid: e.pid, comm: e.task, age_s: Number(e.delta_ns) / 1e9, file: e.file }),
  });
}

