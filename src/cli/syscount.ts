// tsbpf syscount: syscalls counted by name or by process, with their total
// latency (-L), as BCC's syscount prints them. Hooks: raw_syscalls:sys_enter
// (only with -L) and raw_syscalls:sys_exit; both are in every kernel since 3.x.
import { readFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { clockTime, FOREVER, type IntervalArgs } from "../histogram/interval.ts";
import { syscallLabel, syscallNames, syscallNumber } from "../internal/syscalls.ts";
import { drainMap, runIntervalTool } from "./skeleton.ts";
import { durationOption, intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf syscount [-h] [-p PID] [-t TID] [-c PPID] [-i INTERVAL] [-d DURATION] [-T TOP] [-x] [-e ERRNO]
                      [-L] [-m] [-P] [-l] [--syscall SYSCALL] [--json]

Summarize syscall counts and latencies.

options:
  -p, --pid PID           trace only this pid
  -t, --tid TID           trace only this tid
  -c, --ppid PPID         trace only children of this pid
  -i, --interval SECS     print a summary every SECS seconds
  -d, --duration SECS     total duration of the trace, in seconds
  -T, --top N             print only the top N syscalls by count or latency (default 10)
  -x, --failures          trace only failed syscalls (return < 0)
  -e, --errno ERRNO       trace only syscalls that return this error (a number, or EPERM...)
  -L, --latency           collect syscall latency
  -m, --milliseconds      display latency in milliseconds (default: microseconds)
  -P, --process           count by process and not by syscall
  -l, --list              print the list of recognized syscalls and exit
      --syscall NAME      trace only this syscall
      --json              one JSON object per interval instead of the table

hooks: tracepoints raw_syscalls:sys_exit, and raw_syscalls:sys_enter with -L.
Syscall names are x86_64's table (built in, extended from <asm/unistd_64.h>);
numbers it does not know print as "[unknown: N]".

examples:
  tsbpf syscount                 # top 10 syscalls, at Ctrl-C
  tsbpf syscount -P              # top 10 processes by syscall count
  tsbpf syscount -L -i 1         # with latency, every second
  tsbpf syscount -p 181 -x       # failed syscalls of PID 181
  tsbpf syscount -e ENOENT       # syscalls that failed with ENOENT
  tsbpf syscount --syscall getppid -P
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  tid: { type: "string", short: "t" },
  ppid: { type: "string", short: "c" },
  interval: { type: "string", short: "i" },
  duration: { type: "string", short: "d" },
  top: { type: "string", short: "T" },
  failures: { type: "boolean", short: "x" },
  errno: { type: "string", short: "e" },
  latency: { type: "boolean", short: "L" },
  milliseconds: { type: "boolean", short: "m" },
  process: { type: "boolean", short: "P" },
  list: { type: "boolean", short: "l" },
  syscall: { type: "string" },
  json: { type: "boolean" },
} as const;

interface Data {
  count: bigint;
  total_ns: bigint;
}

/** -e: a number or an errno name, as BCC's handle_errno. */
export function errnoOption(text: string): number {
  if (/^-?\d+$/.test(text)) {
    const n = Math.abs(Number(text));
    if (n < 1 || n > 4095) throw new UsageError(`-e/--errno expects an error number from 1 to 4095 or a name such as ENOENT, got "${text}"`);
    return n;
  }
  const n = (osConstants.errno as Record<string, number>)[text.toUpperCase()];
  if (n === undefined) throw new UsageError(`-e/--errno: couldn't map ${text} to an errno`);
  return n;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "latin1").trim();
  } catch {
    return "[unknown]";
  }
}

/** BCC's list: sorted names, four to a line, each "%-22s", joined by three spaces. */
export function syscallList(names: string[]): string {
  const lines: string[] = [];
  for (let i = 0; i < names.length; i += 4) lines.push(names.slice(i, i + 4).map((n) => n.padEnd(22)).join("   "));
  return lines.join("\n");
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (the interval is -i SECS, the duration -d SECS)`);
  if (o.list) {
    process.stdout.write(`${syscallList(syscallNames())}\n`);
    return 0;
  }
  const pid = pidOption(o.pid, "-p/--pid");
  const tid = pidOption(o.tid, "-t/--tid");
  const ppid = pidOption(o.ppid, "-c/--ppid");
  if ([pid, tid, ppid].filter((x) => x !== undefined).length > 1) throw new UsageError("-p, -t and -c are exclusive: give one of them");
  const duration = durationOption(o.duration);
  let interval = intOption(o.interval, "-i/--interval", 1, 0xffffffff, "a number of seconds");
  const top = intOption(o.top, "-T/--top", 1, 1_000_000, "a number of rows") ?? 10;
  const errno = o.errno === undefined ? 0 : errnoOption(o.errno);
  let nr = -1;
  if (o.syscall !== undefined) {
    const n = syscallNumber(o.syscall);
    if (n === undefined) throw new UsageError(`--syscall: syscall '${o.syscall}' not found (tsbpf syscount -l lists them)`);
    nr = n;
  }
  // BCC: a duration without an interval is one summary at its end.
  if (duration && !interval) interval = duration;
  const intervals: IntervalArgs = {
    interval: interval ?? FOREVER,
    count: duration && interval ? Math.max(1, Math.ceil(duration / interval)) : FOREVER,
    periodic: interval !== undefined,
  };
  const latency = o.latency ?? false;
  const ms = o.milliseconds ?? false;
  const aggColname = o.process ? "PID    COMM" : "SYSCALL";
  const timeColname = ms ? "TIME (ms)" : "TIME (us)";
  const failed = o.failures ? "failed " : "";

  return runIntervalTool({
    tool: "syscount",
    programs: latency ? ["sys_enter", "sys_exit"] : ["sys_exit"],
    constants: {
      targ_pid: pid ?? 0,
      targ_tid: tid ?? 0,
      targ_ppid: ppid ?? 0,
      targ_failed: o.failures ?? false,
      targ_errno: errno,
      targ_nr: nr,
      targ_by_process: o.process ?? false,
      targ_latency: latency,
    },
    // The exporter's maps (its count_enter program, which the tool never loads) at one entry each:
    // open_counts preallocated would hold 10,240 entries per CPU for nothing.
    prepare(spec) {
      for (const name of ["open_counts", "counts_by_nr"]) spec.maps.get(name)!.maxEntries = 1;
    },
    intervals,
    json: o.json,
    bare: true,
    banner: o.syscall !== undefined ? `Tracing ${failed}syscall '${o.syscall}'... Ctrl+C to quit.` : `Tracing ${failed}syscalls, printing top ${top}... Ctrl+C to quit.`,
    footer: "Detaching...",
    report(coll, tick) {
      const rows = drainMap(coll.map<number, Data>("data"))
        .filter(([k]) => k !== 0xffffffff) // BCC skips it too: seen now and then
        .sort((a, b) => {
          const [x, y] = latency ? [a[1].total_ns, b[1].total_ns] : [a[1].count, b[1].count];
          return x === y ? a[0] - b[0] : x > y ? -1 : 1;
        })
        .slice(0, top);
      const divisor = ms ? 1e6 : 1e3;
      const lines = [`[${clockTime(tick.time)}]`, latency ? `${aggColname.padEnd(22)} ${"COUNT".padStart(8)} ${timeColname.padStart(16)}` : `${aggColname.padEnd(22)} ${"COUNT".padStart(8)}`];
      const json: unknown[] = [];
      for (const [key, v] of rows) {
        const comm = o.process ? commOf(key) : "";
        const agg = o.process ? `${String(key).padEnd(6)} ${comm.padEnd(15)}` : syscallLabel(key);
        const time = Number(v.total_ns) / divisor;
        let line = `${agg.padEnd(22)} ${String(v.count).padStart(8)}`;
        if (latency) line += ` ${time.toFixed(ms ? 6 : 3).padStart(16)}`;
        lines.push(line);
        json.push({
          ...(o.process ? { pid: key, comm } : { syscall: syscallLabel(key), nr: key }),
          count: Number(v.count),
          ...(latency ? { [ms ? "total_ms" : "total_us"]: time } : {}),
        });
      }
      return { text: `${lines.join("\n")}\n\n`, json: [{ rows: json }] };
    },
  });
}
