// tsbpf opensnoop: every open(), openat() and openat2() on the system, with the
// options and columns of BCC's opensnoop. The filters run in the kernel.
import { constants as osConstants } from "node:os";
import { Spec } from "../btf/spec.ts";
import { Collection } from "../collection.ts";
import { ObjectSpec } from "../object/spec.ts";
import { resolve, type Type } from "../btf/types.ts";
import { chooseEventTransport, keepUpOptions, openEvents, type EventTransport } from "../events/channel.ts";
import { tracepointExists } from "../link/tracepoint.ts";
import { durationOption, finishEvents, havePrivileges, parseToolArgs, pidOption, toolObject, ToolRun, uidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf opensnoop [-h] [-T] [-U] [-x] [-p PID] [-t TID] [-u UID] [-d DURATION] [-n NAME] [-e] [-f FLAG] [--json]

Trace open() family syscalls: one line per open, until Ctrl-C.

options:
  -T, --timestamp        include a timestamp column (seconds since the first event)
  -U, --print-uid        include a UID column
  -x, --failed           only show failed opens
  -p, --pid PID          only trace this process
  -t, --tid TID          only trace this thread
  -u, --uid UID          only trace this user id
  -d, --duration SECS    stop after this many seconds
  -n, --name NAME        only processes whose name contains NAME
  -e, --extended-fields  include the open flags (O_* names)
  -f, --flag-filter FLAG only opens with this flag or access mode (O_WRONLY, O_CREAT, ...;
                         several -f: any of them)
      --json             one JSON object per line instead of columns
      --perf-buffer      read events through a perf buffer even where a ring buffer works

Events the kernel could not deliver (a full buffer) are counted: "N events lost" on
stderr at the end and, with --json, a last record {"lost": N}.

examples:
  tsbpf opensnoop              # trace all opens
  tsbpf opensnoop -T -x        # failed opens, with timestamps
  tsbpf opensnoop -p 181 -e    # opens of PID 181, with flags
  tsbpf opensnoop -n main      # processes whose name contains "main"
  tsbpf opensnoop -f O_WRONLY -f O_RDWR   # opens for writing
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  "print-uid": { type: "boolean", short: "U" },
  failed: { type: "boolean", short: "x" },
  pid: { type: "string", short: "p" },
  tid: { type: "string", short: "t" },
  uid: { type: "string", short: "u" },
  duration: { type: "string", short: "d" },
  name: { type: "string", short: "n" },
  "extended-fields": { type: "boolean", short: "e" },
  "flag-filter": { type: "string", short: "f", multiple: true },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

/** struct event in bpf/opensnoop.bpf.c, as its codec decodes it. */
interface OpenEvent {
  ts: bigint;
  pid: number;
  tid: number;
  uid: number;
  ret: number;
  flags: number;
  mode: number;
  comm: string;
  fname: string;
}

const SYSCALLS = ["open", "openat", "openat2"];

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const tid = pidOption(o.tid, "-t/--tid");
  const uid = uidOption(o.uid, "-u/--uid");
  const duration = durationOption(o.duration);
  if (o.name !== undefined && Buffer.byteLength(o.name) > 15) throw new UsageError("-n/--name: a command name has at most 15 bytes");
  const flagFilter = flagFilterOf(o["flag-filter"] ?? []);
  if (!havePrivileges("opensnoop")) return 1;

  const spec = ObjectSpec.fromBytes((await toolObject("opensnoop")).bytes);
  const transport: EventTransport | undefined = o["perf-buffer"] ? "perf" : undefined;
  chooseEventTransport(spec, "events", transport, keepUpOptions());
  const programs = SYSCALLS.filter((s) => tracepointExists("syscalls", `sys_enter_${s}`)).flatMap((s) => [`enter_${s}`, `exit_${s}`]);
  await using coll = Collection.load(spec, {
    programs,
    constants: {
      targ_pid: pid ?? 0,
      targ_tid: tid ?? 0,
      targ_uid: uid ?? 0xffffffff,
      targ_failed: o.failed ?? false,
      targ_comm: o.name ?? "",
      targ_flags: flagFilter.flags,
      targ_accmodes: flagFilter.accmodes,
    },
  });
  Spec.releaseKernel(); // every relocation is done: 9 MiB less for the rest of the run
  using run = new ToolRun({ durationSec: duration });
  // The reader first: a perf buffer drops what is written before its events are in the map.
  using reader = openEvents(coll, "events", keepUpOptions());
  coll.attachAll();

  const out = run.out;
  const decode = eventReader(coll.type("event"));
  let firstTs: bigint | undefined;
  if (!o.json) {
    out.line(
      (o.timestamp ? "TIME(s)".padEnd(14) : "") +
        (o["print-uid"] ? "UID".padEnd(6) : "") +
        `${(tid ? "TID" : "PID").padEnd(6)} ${"COMM".padEnd(16)} ${"FD".padStart(4)} ${"ERR".padStart(3)} ` +
        (o["extended-fields"] ? `${"FLAGS".padEnd(9)}` : "") +
        "PATH",
    );
  }
  const wantTime = Boolean(o.timestamp || o.json);
  reader.onRaw((view, offset, size) => {
    const e = decode(view, offset, size, wantTime);
    let seconds = 0;
    if (wantTime) {
      firstTs ??= e.ts;
      seconds = Number(e.ts - firstTs) / 1e9;
    }
    const fd = e.ret >= 0 ? e.ret : -1;
    const err = e.ret >= 0 ? 0 : -e.ret;
    if (o.json) {
      out.json({
        time: seconds, uid: e.uid, pid: e.pid, tid: e.tid, comm: e.comm, fd, err, errno: err ? errnoName(err) : undefined,
        flags: e.flags, flag_names: openFlags(e.flags), mode: e.mode, path: e.fname,
      });
      return;
    }
    out.line(
      (o.timestamp ? seconds.toFixed(9).padEnd(14) : "") +
        (o["print-uid"] ? String(e.uid).padEnd(6) : "") +
        `${String(tid ? e.tid : e.pid).padEnd(6)} ${e.comm.padEnd(16)} ${String(fd).padStart(4)} ${String(err).padStart(3)} ` +
        (o["extended-fields"] ? `${openFlags(e.flags).join("|").padEnd(8)} ` : "") +
        e.fname,
    );
  });
  await run.stopped;
  finishEvents("opensnoop", run, reader, { json: o.json });
  return 0;
}

/**
 * struct event read in place at the offsets its BTF gives: about half the cost of
 * the generic codec (a flood is a million of them), strings cut at their NUL by
 * Buffer's native search. `ts` only when asked (a bigint allocation).
 */
function eventReader(type: Type): (view: DataView, offset: number, size: number, withTs: boolean) => OpenEvent {
  const struct = resolve(type);
  if (struct.kind !== "struct") throw new TypeError("opensnoop's event is not a struct");
  const at = (name: string) => {
    const m = struct.members.find((x) => x.name === name);
    if (!m) throw new TypeError(`opensnoop's struct event has no ${name}`);
    return m.offset / 8;
  };
  const [ts, pid, tid, uid, ret, flags, mode, comm, fname] = ["ts", "pid", "tid", "uid", "ret", "flags", "mode", "comm", "fname"].map(at) as number[];
  const commEnd = fname!, fnameEnd = struct.size;
  let buffer: ArrayBufferLike | undefined;
  let bytes = Buffer.alloc(0);
  const text = (start: number, end: number): string => {
    const nul = bytes.indexOf(0, start);
    return bytes.toString("utf8", start, nul < 0 || nul > end ? end : nul);
  };
  // A record ends after the path's NUL (the program sends no more of fname than that).
  return (view, offset, size, withTs) => {
    // One Buffer per mapping: the readers hand out views of the same memory each time.
    if (view.buffer !== buffer) {
      buffer = view.buffer;
      bytes = Buffer.from(view.buffer as ArrayBuffer);
    }
    const base = view.byteOffset + offset;
    return {
      ts: withTs ? view.getBigUint64(offset + ts!, true) : 0n,
      pid: view.getUint32(offset + pid!, true),
      tid: view.getUint32(offset + tid!, true),
      uid: view.getUint32(offset + uid!, true),
      ret: view.getInt32(offset + ret!, true),
      flags: view.getInt32(offset + flags!, true),
      mode: view.getUint32(offset + mode!, true),
      comm: text(base + comm!, base + commEnd),
      fname: text(base + fname!, base + Math.min(size, fnameEnd)),
    };
  };
}

// The open flags, by value (asm-generic, as on x86_64; arm64 moves four of them).
const arm64 = process.arch === "arm64";
const OPEN_FLAGS: [string, number][] = [
  ["O_CREAT", 0o100], ["O_EXCL", 0o200], ["O_NOCTTY", 0o400], ["O_TRUNC", 0o1000], ["O_APPEND", 0o2000],
  ["O_NONBLOCK", 0o4000], ["O_DSYNC", 0o10000], ["O_ASYNC", 0o20000],
  ["O_DIRECT", arm64 ? 0o200000 : 0o40000], ["O_LARGEFILE", arm64 ? 0o400000 : 0o100000],
  ["O_DIRECTORY", arm64 ? 0o40000 : 0o200000], ["O_NOFOLLOW", arm64 ? 0o100000 : 0o400000],
  ["O_NOATIME", 0o1000000], ["O_CLOEXEC", 0o2000000], ["O_SYNC", 0o4000000], ["O_PATH", 0o10000000], ["O_TMPFILE", 0o20000000],
];

const ACCESS_MODES = ["O_RDONLY", "O_WRONLY", "O_RDWR"];

/**
 * -f names as the kernel filter's two masks: flag bits, and access modes as `1 << mode`
 * (O_RDONLY is 0, so it cannot be a bit of the flags; BCC's -f O_RDONLY matches nothing).
 */
export function flagFilterOf(names: string[]): { flags: number; accmodes: number } {
  let flags = 0;
  let accmodes = 0;
  for (const name of names.flatMap((n) => n.split(","))) {
    const upper = name.trim().toUpperCase();
    const mode = ACCESS_MODES.indexOf(upper);
    const bit = OPEN_FLAGS.find(([n]) => n === upper)?.[1];
    if (mode >= 0) accmodes |= 1 << mode;
    else if (bit !== undefined) flags |= bit;
    else throw new UsageError(`-f/--flag-filter: unknown flag "${name}"; one of ${[...ACCESS_MODES, ...OPEN_FLAGS.map(([n]) => n)].join(", ")}`);
  }
  return { flags, accmodes };
}

/** open(2) flags as names: the access mode first, then each flag set, then any bits left as octal. */
export function openFlags(flags: number): string[] {
  const names = [["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"][flags & 3]];
  let rest = flags & ~3;
  for (const [name, bit] of OPEN_FLAGS) {
    if (rest & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push(`0${(rest >>> 0).toString(8)}`);
  return names;
}

const errnoNames = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}
