// tsbpf oomkill: OOM killer victims and the task that triggered each kill,
// BCC's line. Hook: the oom:mark_victim tracepoint (BCC: a kprobe on oom_kill_process).
import { readFileSync } from "node:fs";
import { clockNow } from "../internal/net.ts";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";

const HELP = `usage: tsbpf oomkill [-h] [-d SECS] [--json]

Trace OOM killer kills: one line per victim, until Ctrl-C.

options:
  -d, --duration SECS    stop after this many seconds
      --json             one JSON object per line instead of the line
      --perf-buffer      read events through a perf buffer even where a ring buffer works

hooks: the oom:mark_victim tracepoint, which runs in the task whose allocation
triggered the kill. Unlike BCC (a kprobe on oom_kill_process, which prints the OOM's
total pages), the pages printed are the victim's resident pages (anon + file + shmem
rss) that mark_victim reports; kernels before 6.8 report the victim's pid only.

examples:
  tsbpf oomkill                # trace OOM kills
`;

const OPTIONS = {
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface OomEvent {
  tpid: number;
  vpid: number;
  total_vm_kb: bigint;
  rss_kb: bigint;
  tcomm: string;
  vcomm: string;
}

const loadavg = () => {
  try {
    return readFileSync("/proc/loadavg", "utf8").trim();
  } catch {
    return "";
  }
};

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, duration } = parsed;
  const pages = (kb: bigint) => kb / 4n;
  return runEventTool<OomEvent>({
    tool: "oomkill",
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header: "Tracing OOM kills... Ctrl-C to stop.",
    line: (e) => `${clockNow()} Triggered by PID ${e.tpid} ("${e.tcomm}"), OOM kill of PID ${e.vpid} ("${e.vcomm}"), ${pages(e.rss_kb)} pages, loadavg: ${loadavg()}`,
    record: (e) => ({
      time: clockNow(), trigger_pid: e.tpid, trigger_comm: e.tcomm, victim_pid: e.vpid, victim_comm: e.vcomm,
      total_vm_kb: Number(e.total_vm_kb), rss_kb: Number(e.rss_kb), loadavg: loadavg(),
    }),
  });
}
