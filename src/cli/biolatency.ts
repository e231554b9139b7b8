// tsbpf biolatency: block I/O latency histograms, with BCC's biolatency options.
import { Spec } from "../btf/spec.ts";
import { parseIntervalArgs } from "../histogram/index.ts";
import { tracepointExists } from "../link/tracepoint.ts";
import { NotSupportedError } from "../errors.ts";
import { DiskNames, diskByName, reqFlagBits, requestFlags } from "../internal/disks.ts";
import { runHistogramTool } from "./skeleton.ts";
import { havePrivileges, parseToolArgs, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf biolatency [-h] [-T] [-Q] [-m] [-D] [-F] [-d DISK] [-j] [interval] [count]

Summarize block device I/O latency as a histogram.

positional arguments:
  interval          output interval, in seconds
  count             number of outputs

options:
  -T, --timestamp     include timestamp on output
  -Q, --queued        include OS queued time in I/O time
  -m, --milliseconds  millisecond histogram
  -D, --disks         print a histogram per disk device
  -F, --flags         print a histogram per set of I/O flags
  -d, --disk DISK     trace this disk only (vda, /dev/vda or 254:0)
  -j, --json          one JSON object per histogram (BCC's print_json_hist shape)

hooks: tp_btf/block_rq_insert (-Q), tp_btf/block_rq_issue and tp_btf/block_rq_complete,
which hand over the request (disk and flags read through CO-RE). BCC's kprobes on
blk_account_io_* are not needed; kernels without BTF tracing programs (before 5.5)
are not served.

examples:
  tsbpf biolatency              # summarize block I/O latency as a histogram
  tsbpf biolatency 1 10         # print 1 second summaries, 10 times
  tsbpf biolatency -mT 1        # 1s summaries, milliseconds, and timestamps
  tsbpf biolatency -Q           # include OS queued time in I/O time
  tsbpf biolatency -D           # show each disk device separately
  tsbpf biolatency -F           # show I/O flags separately
  tsbpf biolatency -d vda       # trace vda only
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  queued: { type: "boolean", short: "Q" },
  milliseconds: { type: "boolean", short: "m" },
  disks: { type: "boolean", short: "D" },
  flags: { type: "boolean", short: "F" },
  disk: { type: "string", short: "d" },
  json: { type: "boolean", short: "j" },
} as const;

/** The block tracepoints these tools hook, or a NotSupportedError naming what is missing. */
export function requireBlockTracepoints(tool: string, names: string[]): void {
  const missing = names.filter((n) => !tracepointExists("block", n));
  if (missing.length) {
    throw new NotSupportedError(
      `block:${missing[0]}`,
      `this tool needs the tracepoint${missing.length > 1 ? "s" : ""} ${missing.map((n) => `block:${n}`).join(", ")}, which this kernel does not have (CONFIG_BLK_DEV and tracing); nothing else gives a request's start and end`,
    );
  }
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (o.disks && o.flags) throw new UsageError("-D and -F cannot be used together");
  const intervals = parseIntervalArgs(positionals);
  const dev = o.disk !== undefined ? diskByName(o.disk) : 0;
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("biolatency")) return 1;
  requireBlockTracepoints("biolatency", ["block_rq_issue", "block_rq_complete", ...(o.queued ? ["block_rq_insert"] : [])]);
  const sections = Boolean(o.disks || o.flags);
  const disks = new DiskNames();
  let bits: Record<string, number> | undefined;
  const flagText = (flags: number) => {
    if (!bits) {
      let values: { name: string; value: number }[] | undefined;
      try {
        const t = Spec.kernel().typesByName("req_flag_bits")[0];
        if (t?.kind === "enum") values = [...t.values];
      } catch {
        // no kernel BTF readable: 6.x's numbering
      }
      bits = reqFlagBits(values);
    }
    return requestFlags(flags >>> 0, bits);
  };
  return runHistogramTool({
    tool: "biolatency",
    intervals,
    timestamp: o.timestamp,
    json: o.json,
    banner: "Tracing block device I/O... Hit Ctrl-C to end.",
    programs: ["block_rq_issue", "block_rq_complete", ...(o.queued ? ["block_rq_insert"] : [])],
    constants: {
      targ_queued: o.queued ?? false,
      targ_per_disk: o.disks ?? false,
      targ_per_flag: o.flags ?? false,
      targ_ms: o.milliseconds ?? false,
      targ_dev: dev,
    },
    histograms: [
      {
        map: sections ? "hist_sections" : "hist",
        valType: o.milliseconds ? "msecs" : "usecs",
        print: sections
          ? {
              sectionHeader: o.disks ? "disk" : "flags",
              sectionPrintFn: (v: number) => (o.disks ? disks.name(v, "<unknown>") : flagText(v)),
            }
          : undefined,
      },
    ],
  });
}
