// tsbpf bashreadline: commands typed into bash, BCC's columns. Hook: a uretprobe
// on readline() in /bin/bash (or in -s's libreadline, for a bash linked to it).
import { clockNow } from "../internal/net.ts";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";

const HELP = `usage: tsbpf bashreadline [-h] [-s SHARED] [-d SECS] [--json]

Print entered bash commands from all running shells, until Ctrl-C.

options:
  -s, --shared SHARED    the library that holds readline() (libreadline.so), when bash
                         is linked to it; default /bin/bash
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of columns

hooks: a uretprobe on readline() in /bin/bash (or -s LIBRARY); only interactive
shells call readline. Lines are cut at 79 bytes.

examples:
  tsbpf bashreadline           # commands typed into every bash
`;

const OPTIONS = {
  shared: { type: "string", short: "s" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
} as const;

interface ReadlineEvent {
  pid: number;
  comm: string;
  str: string;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, duration } = parsed;
  const path = o.shared ?? "/bin/bash";
  return runEventTool<ReadlineEvent>({
    tool: "bashreadline",
    durationSec: duration,
    json: o.json,
    attach: (coll) => void coll.program("readline_exit").attachUprobe({ path, symbol: "readline", retprobe: true }),
    header: `${"TIME".padEnd(9)} ${"PID".padEnd(7)} COMMAND`,
    // Other programs may link readline too (the -s library): BCC keeps only bash's.
    line: (e) => (e.comm === "bash" || o.shared === undefined ? `${clockNow().padEnd(9)} ${String(e.pid).padEnd(7)} ${e.str}` : undefined),
    record: (e) => ({ time: clockNow(), pid: e.pid, comm: e.comm, command: e.str }),
  });
}
