// tsbpf execsnoop: every execve() with its parent, result and arguments, with the
// options and columns of BCC's execsnoop. uid, ppid, name and failure filters run in the kernel.
import { codecFor } from "../btf/codec.ts";
import { sizeof } from "../btf/types.ts";
import { Spec } from "../btf/spec.ts";
import { Collection } from "../collection.ts";
import { ObjectSpec } from "../object/spec.ts";
import { chooseEventTransport, keepUpOptions, openEvents } from "../events/channel.ts";
import { durationOption, finishEvents, havePrivileges, intOption, parseToolArgs, pidOption, toolObject, ToolRun, uidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf execsnoop [-h] [-T] [-t] [-x] [-q] [-U] [-u UID] [-P PPID] [-n NAME] [-l LINE] [--max-args N] [-d SECS] [--json]

Trace exec() syscalls: one line per new program, until Ctrl-C.

options:
  -T, --time             include a time column (HH:MM:SS)
  -t, --timestamp        include a timestamp column (seconds since the tool started)
  -x, --fails            include failed exec()s
  -q, --quote            put quotemarks (") around arguments
  -U, --print-uid        include a UID column
  -u, --uid UID          only trace this user id
  -P, --ppid PPID        only trace children of this parent PID
  -n, --name NAME        only commands whose name contains NAME
  -l, --line REGEX       only commands with an argument matching REGEX
      --max-args N       arguments read per exec (default 20, at most 60)
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

Events the kernel could not deliver (a full buffer) are counted: "N events lost" on
stderr at the end and, with --json, a last record {"lost": N}.

examples:
  tsbpf execsnoop              # trace all exec() syscalls
  tsbpf execsnoop -x           # include failed exec()s
  tsbpf execsnoop -T -U        # with time and UID columns
  tsbpf execsnoop -u 1000      # only user 1000
  tsbpf execsnoop -l tpkg      # only commands with an argument containing "tpkg"
`;

const OPTIONS = {
  time: { type: "boolean", short: "T" },
  timestamp: { type: "boolean", short: "t" },
  fails: { type: "boolean", short: "x" },
  quote: { type: "boolean", short: "q" },
  "print-uid": { type: "boolean", short: "U" },
  uid: { type: "string", short: "u" },
  ppid: { type: "string", short: "P" },
  name: { type: "string", short: "n" },
  line: { type: "string", short: "l" },
  "max-args": { type: "string" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

/** struct exec_header in bpf/execsnoop.bpf.c, as its codec decodes it. */
interface ExecHeader {
  ts: bigint;
  pid: number;
  ppid: number;
  uid: number;
  ret: number;
  args_count: number;
  args_size: number;
  comm: string;
}

const TOTAL_MAX_ARGS = 60;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const uid = uidOption(o.uid, "-u/--uid");
  const ppid = pidOption(o.ppid, "-P/--ppid");
  const maxArgs = intOption(o["max-args"], "--max-args", 1, TOTAL_MAX_ARGS) ?? 20;
  const duration = durationOption(o.duration);
  if (o.name !== undefined && Buffer.byteLength(o.name) > 15) throw new UsageError("-n/--name: a command name has at most 15 bytes");
  let line: RegExp | undefined;
  try {
    line = o.line === undefined ? undefined : new RegExp(o.line);
  } catch (err) {
    throw new UsageError(`-l/--line: ${(err as Error).message}`);
  }
  if (!havePrivileges("execsnoop")) return 1;

  const spec = ObjectSpec.fromBytes((await toolObject("execsnoop")).bytes);
  chooseEventTransport(spec, "events", o["perf-buffer"] ? "perf" : undefined, keepUpOptions());
  await using coll = Collection.load(spec, {
    programs: ["enter_execve", "exit_execve"], // count_execs is the exporter's
    constants: {
      max_args: maxArgs,
      targ_uid: uid ?? 0xffffffff,
      targ_ppid: ppid ?? 0,
      ignore_failed: !o.fails,
      targ_comm: o.name ?? "",
    },
  });
  Spec.releaseKernel(); // every relocation is done: 9 MiB less for the rest of the run
  const headerType = coll.type("exec_header");
  const header = codecFor<ExecHeader>(headerType);
  const headerSize = sizeof(headerType);
  using run = new ToolRun({ durationSec: duration });
  // The reader first: a perf buffer drops what is written before its events are in the map.
  // Records vary in length (the header, then the arguments): read them in place.
  using reader = openEvents(coll, "events", keepUpOptions());
  coll.attachAll();

  const out = run.out;
  const started = process.hrtime.bigint();
  if (!o.json) {
    out.line(
      (o.time ? "TIME".padEnd(9) : "") +
        (o.timestamp ? "TIME(s)".padEnd(9) : "") +
        (o["print-uid"] ? "UID".padEnd(6) : "") +
        `${"PCOMM".padEnd(16)} ${"PID".padEnd(7)} ${"PPID".padEnd(7)} ${"RET".padStart(3)} ARGS`,
    );
  }
  reader.onRaw((view, offset, size) => {
    const h = header.decode(view, offset);
    const bytes = Buffer.from(view.buffer, view.byteOffset + offset + headerSize, Math.min(h.args_size, size - headerSize));
    const argv = bytes.toString("utf8").split("\0");
    if (argv.at(-1) === "") argv.pop();
    const truncated = h.args_count > maxArgs;
    if (line && !argv.some((a) => line.test(a))) return;
    if (o.json) {
      out.json({ time: new Date().toISOString(), uid: h.uid, pid: h.pid, ppid: h.ppid, comm: h.comm, ret: h.ret, argv, truncated });
      return;
    }
    const shown = argv.map((a) => (o.quote ? `"${a.replaceAll('"', '\\"')}"` : a)).join(" ") + (truncated ? " ..." : "");
    out.line(
      (o.time ? new Date().toTimeString().slice(0, 8).padEnd(9) : "") +
        (o.timestamp ? (Number(process.hrtime.bigint() - started) / 1e9).toFixed(3).padEnd(9) : "") +
        (o["print-uid"] ? String(h.uid).padEnd(6) : "") +
        `${h.comm.padEnd(16)} ${String(h.pid).padEnd(7)} ${String(h.ppid).padEnd(7)} ${String(h.ret).padStart(3)} ${shown}`,
    );
  });
  await run.stopped;
  finishEvents("execsnoop", run, reader, { json: o.json });
  return 0;
}
