// tsbpf capable: security capability checks, BCC's columns and options. Hook:
// fentry on cap_capable(), else a kprobe on it (BCC: the kprobe). No tracepoint
// or tp_btf event reports capability checks, so a kernel with neither (this
// project's CI host: no kprobes, fentry refused by lockdown) cannot serve it:
// the tool says so in one sentence.
import { NotSupportedError } from "../errors.ts";
import { haveDynamicProbes } from "../features/index.ts";
import type { Collection } from "../collection.ts";
import { clockNow } from "../internal/net.ts";
import { readStack } from "../maps/stack.ts";
import { formatFrame, Symbolizer } from "../symbolize/index.ts";
import { runEventTool } from "./skeleton.ts";
import { TASK_FILTER_OPTIONS, taskFilter } from "./task-filter.ts";
import { durationOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf capable [-h] [-v] [-p PID] [-K] [-U] [-x] [--cgroupmap PATH] [--mntnsmap PATH] [--unique] [-d SECS] [--json]

Trace security capability checks: one line per check, until Ctrl-C.

options:
  -v, --verbose          include non-audit checks
  -p, --pid PID          trace this PID only
  -K, --kernel-stack     output kernel stack trace
  -U, --user-stack       output user stack trace
  -x, --extra            show extra fields in TID and INSETID columns
      --cgroupmap PATH   trace cgroups in this BPF map only (its keys: cgroup ids)
      --mntnsmap PATH    trace mount namespaces in this BPF map only (keys: mount ns inode numbers)
      --unique           don't repeat stacks for the same pid or cgroup
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: fentry on the kernel function cap_capable (where the kernel loads fentry
programs: BTF, no lockdown), else a kprobe on it (BCC's hook). No tracepoint reports
capability checks: on a kernel without kprobes that refuses fentry, capable exits 1
saying so. The tool's own checks are not shown.

examples:
  tsbpf capable                # trace capability checks
  tsbpf capable -v             # verbose: include non-audit checks
  tsbpf capable -p 181         # only trace PID 181
  tsbpf capable -K             # add kernel stacks to trace
  tsbpf capable -U             # add user-space stacks to trace
  tsbpf capable -x             # extra fields: show TID and INSETID columns
  tsbpf capable --unique       # don't repeat stacks for the same pid or cgroup
  tsbpf capable --cgroupmap mappath  # only trace cgroups in this BPF map
  tsbpf capable --mntnsmap mappath   # only trace mount namespaces in the map
`;

const OPTIONS = {
  verbose: { type: "boolean", short: "v" },
  pid: { type: "string", short: "p" },
  "kernel-stack": { type: "boolean", short: "K" },
  "user-stack": { type: "boolean", short: "U" },
  extra: { type: "boolean", short: "x" },
  ...TASK_FILTER_OPTIONS,
  unique: { type: "boolean" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

/** Capability numbers to names (include/uapi/linux/capability.h). */
export const CAPABILITIES = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
  "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
  "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
  "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

interface CapEvent {
  pid: number;
  tid: number;
  uid: number;
  cap: number;
  audit: number;
  insetid: number;
  kernel_stack_id: bigint;
  user_stack_id: bigint;
  comm: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const duration = durationOption(o.duration);
  const tasks = taskFilter(o);
  const constants = {
    targ_pid: pid ?? 0,
    self_pid: process.pid,
    targ_verbose: o.verbose ?? false,
    kernel_stacks: o["kernel-stack"] ?? false,
    user_stacks: o["user-stack"] ?? false,
    targ_unique: o.unique ?? false,
    ...tasks.constants,
  };
  const symbolizer = o["kernel-stack"] || o["user-stack"] ? new Symbolizer() : undefined;
  let coll: Collection | undefined;
  const stack = (id: bigint, kind: "Kernel" | "User", tgid: number): string[] => {
    // -EFAULT: no stack of that kind here (a kernel thread's user stack): BCC prints nothing.
    if (id < 0n) return id === -14n ? [] : [`[Missed ${kind} Stack]`];
    const addrs = readStack(coll!.map("stacks"), Number(id));
    const frames = kind === "Kernel" ? symbolizer!.kernelStack(addrs) : symbolizer!.userStack(tgid, addrs);
    return frames.map((f) => formatFrame(f, { offset: true, module: true }));
  };
  const stacks = (e: CapEvent): string[] => [
    ...(o["kernel-stack"] ? stack(e.kernel_stack_id, "Kernel", -1) : []),
    ...(o["user-stack"] ? stack(e.user_stack_id, "User", e.pid) : []),
  ];
  const header = o.extra
    ? `${"TIME".padEnd(9)} ${"UID".padEnd(6)} ${"PID".padEnd(6)} ${"TID".padEnd(6)} ${"COMM".padEnd(16)} ${"CAP".padEnd(4)} ${"NAME".padEnd(20)} ${"AUDIT".padEnd(6)} INSETID`
    : `${"TIME".padEnd(9)} ${"UID".padEnd(6)} ${"PID".padEnd(6)} ${"COMM".padEnd(16)} ${"CAP".padEnd(4)} ${"NAME".padEnd(20)} ${"AUDIT".padEnd(6)}`;
  const go = (program: "cap_fentry" | "cap_kprobe") =>
    runEventTool<CapEvent>({
      tool: "capable",
      programs: [program],
      constants,
      durationSec: duration,
      transport: o["perf-buffer"] ? "perf" : undefined,
      attach: (c) => {
        coll = c;
        tasks.fill(c);
        c.attachAll();
      },
      json: o.json,
      header,
      line: (e) => {
        const name = CAPABILITIES[e.cap] ?? "?";
        const head = o.extra
          ? `${clockNow().padEnd(9)} ${String(e.uid).padEnd(6)} ${String(e.pid).padEnd(6)} ${String(e.tid).padEnd(6)} ${e.comm.padEnd(16)} ${String(e.cap).padEnd(4)} ${name.padEnd(20)} ${String(e.audit).padEnd(6)} ${e.insetid}`
          : `${clockNow().padEnd(9)} ${String(e.uid).padEnd(6)} ${String(e.pid).padEnd(6)} ${e.comm.padEnd(16)} ${String(e.cap).padEnd(4)} ${name.padEnd(20)} ${String(e.audit).padEnd(6)}`;
        return [head, ...stacks(e).map((f) => `        ${f}`)].join("\n");
      },
      record: (e) => ({
        time: clockNow(), uid: e.uid, pid: e.pid, tid: e.tid, comm: e.comm, cap: e.cap, name: CAPABILITIES[e.cap] ?? "?",
        audit: e.audit, insetid: e.insetid,
        ...(o["kernel-stack"] ? { kernel_stack: stack(e.kernel_stack_id, "Kernel", -1) } : {}),
        ...(o["user-stack"] ? { user_stack: stack(e.user_stack_id, "User", e.pid) } : {}),
      }),
    });
  let fentryError: unknown;
  try {
    return await go("cap_fentry");
  } catch (err) {
    fentryError = err;
  }
  if (!haveDynamicProbes("kprobe")) {
    throw new NotSupportedError(
      "fentry or kprobes",
      `capable needs fentry or a kprobe on cap_capable, and this kernel has neither (no kprobes; fentry: ${firstSentence(fentryError)}); no tracepoint reports capability checks`,
      { cause: fentryError },
    );
  }
  return go("cap_kprobe");
}

function firstSentence(err: unknown): string {
  const text = String((err as Error)?.message ?? err).split("\n")[0]!;
  return /lockdown/.test(text) ? "refused under kernel lockdown" : text.replace(/\.$/, "");
}
