// tsbpf trace: BCC's trace. Each probe (a tracepoint, or a uprobe/uretprobe on a
// function of a binary; kprobes where the kernel has them) prints a line per
// hit, with an optional C filter and a printf-style message. All probes become
// one generated BPF program (src/cli/trace/generate.ts); the messages are
// formatted here, from the raw values each event carries.
import { closeSync, constants, existsSync, openSync, statfsSync, statSync } from "node:fs";
import { availableParallelism, endianness } from "node:os";
import { basename, join, resolve } from "node:path";
import { readStack } from "../maps/stack.ts";
import { Symbolizer, UNKNOWN } from "../symbolize/index.ts";
import { Collection } from "../collection.ts";
import { compile } from "../compile/index.ts";
import { CompileError, formatDiagnostic } from "../compile/diagnostics.ts";
import { ObjectSpec } from "../object/spec.ts";
import { chooseEventTransport, openEvents, type EventTransport } from "../events/channel.ts";
import { AttachError } from "../link/errors.ts";
import { cgroup2Root, cgroupDir } from "../link/cgroup.ts";
import { fallbackFor, type HookTarget } from "../link/hooks.ts";
import { parseFormat as parseTracepointFormat, readFormat } from "../bcc/tracepoint.ts";
import { isKernelHeader } from "../bcc/dialect.ts";
import { ksym, sym } from "../bcc/symbols.ts";
import { which } from "../internal/which.ts";
import { tracefsDir } from "../tracing/tracefs.ts";
import { durationOption, finishEvents, havePrivileges, intOption, parseToolArgs, pidOption, ToolRun, uidOption, UsageError } from "./tool.ts";
import { formatMessage, type Value } from "./trace/format.ts";
import { generateProgram, HEADER, type EventLayout } from "./trace/generate.ts";
import { findLibrary, parseProbe, resolveProbe, type Probe } from "./trace/probe.ts";

const HELP = `usage: tsbpf trace [-h] [-p PID] [-L TID] [--uid UID] [-v] [-Z STRING_SIZE] [-S] [-M MAX_EVENTS]
                   [-t] [-u] [-T] [-C] [-c CGROUP_PATH] [-n NAME] [-f MSG_FILTER] [-B] [-I HEADER]
                   [-K] [-U] [-a] [-A] [-b PAGES] [-d SECS] [--json]
                   PROBE [PROBE ...]

Attach to tracepoints and functions and print a trace message for each hit, until Ctrl-C.

PROBE:
  t:CATEGORY:EVENT [(FILTER)] ["FORMAT"[, ARG...]]       a tracepoint (also tracepoint:..., or just CATEGORY:EVENT)
  p:LIBRARY:FUNCTION[+OFF] [(FILTER)] ["FORMAT"[, ARG...]]  entry of a user function (uprobe:LIBRARY:FUNCTION)
  r:LIBRARY:FUNCTION [(FILTER)] ["FORMAT"[, ARG...]]       return of a user function (uretprobe:LIBRARY:FUNCTION)
  p::FUNCTION, r::FUNCTION, FUNCTION                       a kernel function (kprobe/kretprobe; not on kernels without kprobes)
  u:LIBRARY:[PROVIDER:]PROBE [(FILTER)] ["FORMAT"[, ARG...]] a USDT probe (arg1 ... argN: its arguments)
  LIBRARY is a path (/bin/bash), a library name as BCC takes it (c for libc, found with ldconfig -p) or a program on PATH.
  LIBRARY:FUNCTION(TYPE NAME, ...) names and types a function's arguments, for the filter and the arguments.

  Values, in the filter and the arguments (C expressions):
    args->FIELD        a tracepoint's field (cat /sys/kernel/tracing/events/CATEGORY/EVENT/format)
    arg1 ... arg6      a function's arguments (arg2@user: a kernel function's pointer to user memory),
                       or a USDT probe's (read where the binary's notes place them)
    retval             the return value (r: probes)
    $pid $tgid $uid $gid $cpu $task   thread id, process id, user id, group id, CPU, current task_struct
    STRCMP("text", EXPR)   true when the string at EXPR starts with text (as BCC compares it)
  FORMAT: printf conversions %d %i %u %x %X %o %c %s %p, with flags -0+ #, widths and h hh l ll;
    %s reads a string (user memory for uprobes and syscalls tracepoints); %K and %U print a kernel or
    user symbol. arg1...arg6 and retval are unsigned 64-bit: cast them in filters, e.g. ((int)retval < 0).

options:
  -p, --pid PID          only this process
  -L, --tid TID          only this thread
      --uid UID          only this user id
  -v, --verbose          print the generated BPF C before running it
  -Z, --string-size N    bytes read of each %s string (default 80)
  -S, --include-self     do not exclude tsbpf trace's own process
  -M, --max-events N     stop after printing N events
  -t, --timestamp        a TIME column: seconds since the trace started
  -u, --unix-timestamp   with -t, the UNIX time instead
  -T, --time             a TIME column: HH:MM:SS
  -C, --print_cpu        a CPU column
  -n, --name NAME        only processes whose name contains NAME
  -c, --cgroup-path PATH only tasks in this cgroup v2 directory or below it (a path, or relative to the cgroup2 mount)
  -K, --kernel-stack     output kernel stack trace (bpf_get_stackid)
  -U, --user-stack       output user stack trace (frame pointers; JIT names from /tmp/perf-PID.map)
  -a, --address          print virtual address in stacks
  -B, --bin_cmp          STRCMP's quotes hold a C initializer of bytes: STRCMP("{0x7f, 'E'}", arg1)
  -f, --msg-filter TEXT  only events whose message contains TEXT
  -I, --include HEADER   a header to include (kernel headers need none: vmlinux.h has every kernel type)
  -A, --aggregate        count identical events (with -M) and print each once with its count, most frequent first
  -b, --buffer-pages N   pages per CPU of the perf buffer (default 64; the ring buffer gets as many bytes in all)
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per event instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

examples:
  tsbpf trace 't:syscalls:sys_enter_openat "%s", args->filename'
        every file opened, with the process that opened it
  tsbpf trace 't:syscalls:sys_enter_openat (args->flags & 0100) "created %s", args->filename'
        only opens with O_CREAT
  tsbpf trace 't:syscalls:sys_enter_openat (STRCMP("/etc/", args->filename)) "%s", args->filename'
        opens of files under /etc
  tsbpf trace 't:syscalls:sys_exit_read (args->ret > 20000) "read %d bytes", args->ret'
        large reads
  tsbpf trace 'r:bash:readline "%s", retval'
        every line typed in bash
  tsbpf trace 'c:malloc "size = %d", arg1' -p 181 -M 10
        ten malloc() calls of process 181
  tsbpf trace 'r:c:open ((int)retval < 0) "open failed: %d", retval' -T
        failed open() calls of libc, with the time
  tsbpf trace -t 't:sched:sched_process_exec "%s", args->filename' 't:sched:sched_process_exit'
        programs started and processes exiting, with timestamps
  tsbpf trace -K -U 't:syscalls:sys_enter_fsync'
        every fsync(), with the kernel and user stacks that made it
  tsbpf trace -p 181 'u:/usr/bin/python3:function__entry "%s %s", arg1, arg2'
        python functions called by process 181 (while a profile or trace function is set), file and name
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  tid: { type: "string", short: "L" },
  uid: { type: "string" },
  verbose: { type: "boolean", short: "v" },
  "string-size": { type: "string", short: "Z" },
  "include-self": { type: "boolean", short: "S" },
  "max-events": { type: "string", short: "M" },
  timestamp: { type: "boolean", short: "t" },
  "unix-timestamp": { type: "boolean", short: "u" },
  time: { type: "boolean", short: "T" },
  print_cpu: { type: "boolean", short: "C" },
  name: { type: "string", short: "n" },
  "msg-filter": { type: "string", short: "f" },
  "buffer-pages": { type: "string", short: "b" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
  "kernel-stack": { type: "boolean", short: "K" },
  "user-stack": { type: "boolean", short: "U" },
  address: { type: "boolean", short: "a" },
  // BCC's options that tsbpf trace does not have: known, so that the answer says so.
  include: { type: "string", short: "I", multiple: true },
  "cgroup-path": { type: "string", short: "c" },
  sym_file_list: { type: "string", short: "s" },
  aggregate: { type: "boolean", short: "A" },
  bin_cmp: { type: "boolean", short: "B" },
} as const;

const UNSUPPORTED: [keyof typeof OPTIONS, string][] = [
  ["sym_file_list", "-s/--sym_file_list (symbol files for stacks)"],
];

const STRING_MAX = 4096;
/** -b: 65536 pages are 256 MiB per CPU (and the ring buffer stops at 256 MiB in all). */
const PAGES_MAX = 65536;
const EVENT_MAX = 32 * 1024;

const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * -I HEADER, as BCC's trace takes it ("x.h", <x.h> or "\"x.h\""): a kernel header is left out
 * (vmlinux.h has every kernel type), a file that exists is included by its full path, any other
 * name as <HEADER> from the system's include directories, where it must be.
 */
function includeOption(text: string): string[] {
  const name = text.replace(/^[<"](.*)[>"]$/, "$1").trim();
  if (!name) throw new UsageError("-I/--include expects a header, e.g. -I linux/fs.h or -I ./my.h");
  if (isKernelHeader(name)) return [];
  if (existsSync(name)) return [JSON.stringify(resolve(name))];
  const dirs = ["/usr/local/include", "/usr/include", `/usr/include/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`];
  if (!dirs.some((d) => existsSync(join(d, name)))) {
    throw new UsageError(`-I/--include: cannot find ${name}: it is not a kernel header (vmlinux.h has those), not a file, and not in ${dirs.join(", ")}`);
  }
  return [`<${name}>`];
}

/** -c: a cgroup v2 directory, as BCC's trace takes it (a path, or relative to the cgroup2 root). */
function cgroupOption(path: string): string {
  const dir = cgroupDir(path);
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new UsageError(`-c/--cgroup-path: ${dir} is not a directory; give a cgroup v2 directory such as ${cgroupRootHint()}/system.slice`);
  if (statfsSync(dir).type !== CGROUP2_SUPER_MAGIC) throw new UsageError(`-c/--cgroup-path: ${dir} is not on a cgroup v2 file system (cgroup v2 is at ${cgroupRootHint()})`);
  return dir;
}

function cgroupRootHint(): string {
  try {
    return cgroup2Root();
  } catch {
    return "/sys/fs/cgroup";
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseToolArgs(argv, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  for (const [key, what] of UNSUPPORTED) {
    if (o[key] !== undefined) throw new UsageError(`${what} is not supported by tsbpf trace`);
  }
  if (positionals.length === 0) throw new UsageError(`give at least one probe, e.g. 't:syscalls:sys_enter_openat "%s", args->filename'`);
  const tgid = pidOption(o.pid, "-p/--pid");
  const tid = pidOption(o.tid, "-L/--tid");
  if (tgid !== undefined && tid !== undefined) throw new UsageError("only one of -p/--pid and -L/--tid may be given");
  const uid = uidOption(o.uid, "--uid");
  const cgroup = o["cgroup-path"] === undefined ? undefined : cgroupOption(o["cgroup-path"]);
  const includes = (o.include ?? []).flatMap(includeOption);
  const stringSize = intOption(o["string-size"], "-Z/--string-size", 1, STRING_MAX) ?? 80;
  const maxEvents = intOption(o["max-events"], "-M/--max-events", 1);
  if (o.aggregate && maxEvents === undefined) throw new UsageError("-M/--max-events should be specified with -A/--aggregate");
  const duration = durationOption(o.duration);
  const pages = intOption(o["buffer-pages"], "-b/--buffer-pages", 1, PAGES_MAX) ?? 64;
  if ((pages & (pages - 1)) !== 0) throw new UsageError(`-b/--buffer-pages expects a power of two, got ${pages}`);
  if (o["unix-timestamp"] && !o.timestamp) throw new UsageError("-u/--unix-timestamp goes with -t/--timestamp");

  // The probes' syntax needs nothing from the kernel: checked first. Resolving
  // them reads tracefs, which only root can, so privileges come before that.
  const syntax = positionals.map((text) => parseProbe(text));
  if (!havePrivileges("trace")) return 1;
  syntax.forEach(refuseProbeOnTracepoint);
  // Every probe is read and checked (names, fields, binaries) before anything is compiled.
  const probes = positionals.map((text, i) => resolveProbe(text, i));
  if (o.address && !o["kernel-stack"] && !o["user-stack"]) throw new UsageError("-a/--address goes with -K/--kernel-stack or -U/--user-stack");
  const { text, layouts } = generateProgram(probes, { stringSize, ringBytes: ringBytes(pages), kernelStack: o["kernel-stack"], userStack: o["user-stack"], binaryStrcmp: o.bin_cmp, cgroupFilter: cgroup !== undefined, includes });
  if (layouts.some((l) => l.size > EVENT_MAX)) throw new UsageError(`the strings of one probe need more than ${EVENT_MAX} bytes per event: lower -Z/--string-size`);
  if (o.verbose) process.stderr.write(`${text}\n`);

  let object;
  try {
    object = await compile({ text, name: "trace.bpf.c" });
  } catch (err) {
    throw err instanceof CompileError ? explainCompileError(err) : err;
  }
  const spec = ObjectSpec.fromBytes(object.bytes, "trace.bpf.c");
  const transport: EventTransport | undefined = o["perf-buffer"] ? "perf" : undefined;
  chooseEventTransport(spec, "events", transport);
  await using coll = Collection.load(spec, {
    constants: {
      trace_targ_tgid: tgid ?? 0,
      trace_targ_pid: tid ?? 0,
      trace_targ_uid: uid ?? 0xffffffff,
      trace_self_tgid: o["include-self"] ? 0 : process.pid,
    },
  });
  if (cgroup !== undefined) {
    // The map keeps its own reference to the cgroup: the directory's fd is not needed after.
    const fd = openSync(cgroup, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      coll.map("trace_cgroup").update(0, fd);
    } finally {
      closeSync(fd);
    }
  }
  using run = new ToolRun({ durationSec: duration });
  for (const p of probes) attach(coll, p, tgid);

  const start = process.hrtime.bigint();
  const startReal = Date.now() / 1000;
  const out = run.out;
  const showTime = o.timestamp || o.time;
  if (!o.json) {
    const trivial = probes.every((p) => p.format === undefined);
    out.line(
      (showTime ? (o["unix-timestamp"] ? "TIME".padEnd(17) : "TIME".padEnd(8)) + " " : "") +
        (o.print_cpu ? `${"CPU".padEnd(3)} ` : "") +
        `${"PID".padEnd(7)} ${"TID".padEnd(7)} ${"COMM".padEnd(15)} ${"FUNC".padEnd(16)} ${trivial ? "" : "-"}`.trimEnd(),
    );
  }

  const le = endianness() === "LE";
  const decoder = new TextDecoder();
  const cString = (view: DataView, offset: number, size: number) => {
    const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, size);
    const end = bytes.indexOf(0);
    return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
  };
  let printed = 0;
  const aggregated = o.aggregate ? new Map<string, { count: number; record: object }>() : undefined;
  // Stacks are read as their events arrive, while their processes still run.
  const symbolizer = new Symbolizer();
  const stackMap = o["kernel-stack"] || o["user-stack"] ? coll.map("stacks") : undefined;
  const stackFrames = (id: number, tgid: number): string[] => {
    if (id < 0 || !stackMap) return [String(id)];
    return readStack(stackMap, id).map((addr) => {
      const f = tgid < 0 ? symbolizer.kernelFrame(addr) : symbolizer.userFrame(tgid, addr);
      const name = f.name === UNKNOWN ? UNKNOWN : `${f.name}+0x${f.offset.toString(16)}`;
      const module = f.module ? ` [${f.module === "[perf-map]" ? "perf-map" : basename(f.module)}]` : "";
      return `${o.address ? `${addr.toString(16).padStart(16)} ` : ""}${name}${module}`;
    });
  };
  // Not the run's signal: a stop (Ctrl-C, -d) must leave the reader open for
  // finishEvents' last drain, or the last batch would be dropped unsaid.
  using reader = openEvents(coll, "events", { pageCount: pages });
  reader.onRaw((view, offset, size) => {
    if (maxEvents !== undefined && printed >= maxEvents) return;
    const index = view.getUint32(offset + HEADER.probe, le);
    const probe = probes[index];
    const layout: EventLayout | undefined = layouts[index];
    if (!probe || !layout || size < layout.size) return;
    const tgidOf = view.getUint32(offset + HEADER.tgid, le);
    const comm = cString(view, offset + HEADER.comm, HEADER.commSize);
    if (o.name !== undefined && !comm.includes(o.name)) return;
    const values: Value[] = layout.values.map((slot) => {
      const at = offset + slot.offset;
      switch (slot.conversion.storage) {
        case "string":
          return cString(view, at, slot.size);
        case "signed":
          return view.getBigInt64(at, le);
        default:
          return view.getBigUint64(at, le);
      }
    });
    const message = probe.format
      ? formatMessage(probe.format, values, {
          ksym: (a) => ksym(a, { showOffset: true }),
          usym: (a) => sym(a, tgidOf, { showModule: true, showOffset: true }),
        })
      : "";
    if (o["msg-filter"] !== undefined && !message.includes(o["msg-filter"])) return;
    const pid = view.getUint32(offset + HEADER.pid, le);
    const ts = view.getBigUint64(offset + HEADER.ts, le);
    const cpu = view.getUint32(offset + HEADER.cpu, le);
    const seconds = Number(ts - start) / 1e9;
    const kstack = o["kernel-stack"] ? stackFrames(view.getInt32(offset + HEADER.kstack, le), -1) : undefined;
    const ustack = o["user-stack"] ? stackFrames(view.getInt32(offset + HEADER.ustack, le), tgidOf) : undefined;
    if (aggregated) {
      // -A: identical events (line and stacks, as BCC compares them) counted, printed at the end.
      const text = [
        `${String(tgidOf).padEnd(7)} ${String(pid).padEnd(7)} ${comm.padEnd(15)} ${probe.display.padEnd(16)} ${message}`,
        ...[...(kstack ?? []), ...(ustack ?? [])].map((f) => `        ${f}`),
      ].join("\n");
      const seen = aggregated.get(text);
      if (seen) seen.count++;
      else aggregated.set(text, { count: 1, record: { pid: tgidOf, tid: pid, comm, func: probe.display, probe: index + 1, message, ...(kstack ? { kernel_stack: kstack } : {}), ...(ustack ? { user_stack: ustack } : {}) } });
    } else if (o.json) {
      out.json({
        ...(showTime ? { time: o.timestamp ? (o["unix-timestamp"] ? startReal + seconds : seconds) : clock() } : {}),
        cpu, pid: tgidOf, tid: pid, uid: view.getUint32(offset + HEADER.uid, le), comm, func: probe.display, probe: index + 1,
        message, values: values.map((v) => (typeof v === "bigint" && BigInt.asIntN(53, v) !== v ? v.toString() : v)),
        ...(kstack ? { kernel_stack: kstack } : {}),
        ...(ustack ? { user_stack: ustack } : {}),
      });
    } else {
      let time = "";
      if (showTime) {
        time = o.timestamp ? (o["unix-timestamp"] ? (startReal + seconds).toFixed(6).slice(0, 17).padEnd(17) : seconds.toFixed(6).slice(0, 8).padEnd(8)) : clock();
        time += " ";
      }
      out.line(
        time + (o.print_cpu ? `${String(cpu).padEnd(3)} ` : "") +
          `${String(tgidOf).padEnd(7)} ${String(pid).padEnd(7)} ${comm.padEnd(15)} ${probe.display.padEnd(16)} ${message}`,
      );
      // BCC's layout: each frame indented by 8, an error id as the number, an empty line after the stacks.
      if (kstack || ustack) {
        for (const f of [...(kstack ?? []), ...(ustack ?? [])]) out.line(`        ${f}`);
        out.line("");
      }
    }
    if (maxEvents !== undefined && ++printed >= maxEvents) run.stop("max events");
  });
  await run.stopped;
  finishEvents("trace", run, reader, { json: o.json, hint: "with a perf buffer, -b gives it more pages" });
  if (aggregated) {
    // BCC's order and form: the most frequent first, "EVENT-->COUNT N" and a blank line.
    for (const [text, { count, record }] of [...aggregated].sort((a, b) => b[1].count - a[1].count)) {
      if (o.json) out.json({ ...record, count });
      else out.line(`${text}\n-->COUNT ${count}\n`);
    }
  }
  return 0;
}

/** HH:MM:SS, local time (BCC's -T). */
function clock(): string {
  const d = new Date();
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

/** The ring buffer's size for -b PAGES: as many bytes as the perf buffers of all CPUs would have, a power of two. */
function ringBytes(pages: number): number {
  let bytes = 4096;
  while (bytes < pages * 4096 * availableParallelism()) bytes *= 2;
  return Math.min(bytes, 1 << 28);
}

/** Each probe through the hook registry (Program.attachTo), its uprobes limited to -p's process. */
function attach(coll: Collection, p: Probe, tgid: number | undefined): void {
  const program = coll.program(p.programName);
  const target: HookTarget = p.target.hook === "uprobe" || p.target.hook === "uretprobe" || p.target.hook === "usdt" ? { ...p.target, pid: tgid } : p.target;
  try {
    program.attachTo(target);
  } catch (err) {
    if (!(err instanceof AttachError)) throw err;
    throw new AttachError(`probe '${p.raw}': ${traceHint(err, p)}`, {
      cause: err,
      hook: err.hook,
      target: err.target,
      reason: err.reason,
      suggestion: err.suggestion,
    });
  }
}

/** The library's advice, in tsbpf trace's terms: where the registry falls back to a tracepoint, name it as a probe with its fields. */
function traceHint(err: AttachError, p: Probe): string {
  const text = err.message.replace(/ \(SEC\("[^"]*"\)\)/, "");
  const alt = err.suggestion ? fallbackFor(p.target) : undefined;
  if (alt?.hook !== "tracepoint") return text;
  const format = readFormat(alt.category, alt.event);
  if (!format) return text;
  const fields = parseTracepointFormat(format).filter((f) => f.offset >= 8 && !f.name.startsWith("common_") && f.name !== "__syscall_nr").map((f) => `args->${f.name}`);
  return `${text} In tsbpf trace: 't:${alt.category}:${alt.event}', whose values are ${fields.join(", ")}.`;
}

/**
 * p: and r: name functions; BCC reads r:syscalls:sys_exit_openat as the function
 * sys_exit_openat of a library "syscalls". When the "library" is a tracepoint
 * category and no library has that name, say what was meant: a tracepoint,
 * whose return is its sys_exit_ twin.
 */
function refuseProbeOnTracepoint(s: ReturnType<typeof parseProbe>): void {
  if ((s.type !== "p" && s.type !== "r") || s.where !== undefined || s.parts.length !== 2) return;
  const [category, name] = s.parts as [string, string];
  if (!category || category.includes("/") || !tracepointCategoryExists(category) || findLibrary(category) || which(category)) return;
  const exit = name.startsWith("sys_exit_") ? name : `sys_exit_${name.replace(/^sys_enter_/, "")}`; // r:syscalls:openat too
  const hint =
    s.type === "r"
      ? category === "syscalls"
        ? `a tracepoint has no return probe; a syscall's return is the tracepoint t:syscalls:${exit} (its value is args->ret)`
        : `a tracepoint has no return probe; write t:${category}:${name} for the tracepoint`
      : `p: is a function's entry; write t:${category}:${name} for the tracepoint`;
  throw new UsageError(`probe '${s.raw}': "${category}" is a tracepoint category, not a library: ${hint}`);
}

function tracepointCategoryExists(category: string): boolean {
  try {
    return existsSync(join(tracefsDir(), "events", category));
  } catch {
    return false;
  }
}

/** clang's complaints about the user's C (lines marked "probe N ...") as a usage error naming the probe. */
function explainCompileError(err: CompileError): Error {
  const errors = err.diagnostics.filter((d) => d.severity === "error" || d.severity === "fatal error");
  if (errors.length === 0 || !errors.every((d) => d.file.startsWith("probe "))) return err;
  const lines = errors.slice(0, 5).map((d) => `  ${formatDiagnostic(d)}`);
  return new UsageError(`the C of the probes does not compile:\n${lines.join("\n")}\n(-v prints the generated program)`);
}
