// tsbpf threadsnoop: thread creation with pthread_create(), BCC's columns.
// Hook: a uprobe on libc's pthread_create (the start routine symbolized in its process).
import { formatFrame, Symbolizer } from "../symbolize/index.ts";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";

const HELP = `usage: tsbpf threadsnoop [-h] [-d SECS] [--json]

Trace thread creation via pthread_create(): one line per new thread, until Ctrl-C.

options:
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns

hooks: a uprobe on pthread_create in libc.so.6 (glibc 2.34+ has it there; older
systems' libpthread is not probed). Threads made with clone() directly (Go, some
runtimes) are not seen: sched:sched_process_fork shows those.

examples:
  tsbpf threadsnoop            # trace pthread_create() calls
`;

const OPTIONS = {
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
} as const;

interface ThreadEvent {
  ts: bigint;
  start: bigint;
  pid: number;
  comm: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, duration } = parsed;
  const symbolizer = new Symbolizer();
  let first: bigint | undefined;
  const ms = (e: ThreadEvent) => Number(e.ts - (first ??= e.ts)) / 1e6;
  const func = (e: ThreadEvent) => formatFrame(symbolizer.userFrame(e.pid, e.start));
  return runEventTool<ThreadEvent>({
    tool: "threadsnoop",
    durationSec: duration,
    json: o.json,
    attach: (coll) => void coll.program("pthread_create_enter").attachUprobe({ path: "libc.so.6", symbol: "pthread_create" }),
    header: `${"TIME(ms)".padEnd(10)} ${"PID".padEnd(7)} ${"COMM".padEnd(16)} FUNC`,
    line: (e) => `${ms(e).toFixed(0).padEnd(10)} ${String(e.pid).padEnd(7)} ${e.comm.padEnd(16)} ${func(e)}`,
    record: (e) => ({ time_ms: ms(e), pid: e.pid, comm: e.comm, func: func(e), start: `0x${e.start.toString(16)}` }),
  });
}
