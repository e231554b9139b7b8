// tsbpf bitesize: block I/O size histograms per process name (BCC's bitesize).
import { requireBlockTracepoints } from "./biolatency.ts";
import { parseIntervalToolArgs, runHistogramTool } from "./skeleton.ts";
import { havePrivileges, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf bitesize [-h] [-T] [-c COMM] [-p PID] [-j] [interval] [count]

Summarize block I/O sizes as a histogram of Kbytes per process name, until Ctrl-C
(or every interval seconds, count times).

options:
  -T, --timestamp   include a timestamp before each output
  -c, --comm COMM   only processes whose name contains COMM
  -p, --pid PID     only this process
  -j, --json        one JSON object per process histogram

The process is the one current when the request is issued to the device: the
writer for direct I/O, often a kernel thread (kworker) for buffered writes.

hooks: the tracepoint block:block_rq_issue (its bytes and comm fields), as BCC.

examples:
  tsbpf bitesize           # histograms until Ctrl-C
  tsbpf bitesize 5 2       # two 5-second histograms
  tsbpf bitesize -c dd     # only dd
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  comm: { type: "string", short: "c" },
  pid: { type: "string", short: "p" },
  json: { type: "boolean", short: "j" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseIntervalToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, intervals, pid } = parsed;
  if (o.comm !== undefined && Buffer.byteLength(o.comm) > 15) throw new UsageError("-c/--comm: a command name has at most 15 bytes");
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("bitesize")) return 1;
  requireBlockTracepoints("bitesize", ["block_rq_issue"]);
  return runHistogramTool({
    tool: "bitesize",
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: "Tracing block I/O... Hit Ctrl-C to end.",
    constants: { targ_comm: o.comm ?? "", targ_pid: pid ?? 0 },
    histograms: [{ map: "dist", valType: "Kbytes", print: { sectionHeader: "Process Name", sectionPrintFn: (name: string) => name } }],
  });
}
