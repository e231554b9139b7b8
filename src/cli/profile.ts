// tsbpf profile: BCC's profile. A perf_event program samples stacks on every
// CPU (cpu-clock, 49 Hz by default) and counts them in the kernel; at the end
// the distinct stacks are read, symbolized and printed as BCC prints them, folded
// (-f), as JSON, or drawn as a flame graph (--svg/--html).
import type { Collection } from "../collection.ts";
import { Symbolizer } from "../symbolize/index.ts";
import { attachPerfEvent, onlineCpus, type PerfEventLink } from "../link/perf_event.ts";
import { parseDurationToolArgs, stackCounts, symbolizeStacks, writeStackReport } from "./stacktool.ts";
import { startTool } from "./skeleton.ts";
import { intOption, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf profile [-h] [-p PID | -L TID] [-U | -K] [-F FREQUENCY | -c COUNT] [-d] [-a] [-I] [-f]
                     [--stack-storage-size N] [--hash-storage-size N] [-C CPU] [-A]
                     [--svg FILE] [--html FILE] [--json] [duration]

Profile CPU usage by sampling stack traces at a timed interval, until Ctrl-C or for DURATION seconds.

Hooks: a perf_event program on the software cpu-clock event of each CPU (no hardware PMU needed);
stacks through bpf_get_stackid. Kernel stacks need nothing more; user stacks need frame pointers
(or a JIT's /tmp/perf-PID.map, e.g. node --perf-basic-prof, for its names).

positional arguments:
  duration               duration of trace, in seconds

options:
  -p, --pid PID          profile this process only
  -L, --tid TID          profile this thread only
  -U, --user-stacks-only    show stacks from user space only (no kernel space stacks)
  -K, --kernel-stacks-only  show stacks from kernel space only (no user space stacks)
  -F, --frequency HZ     sample frequency, Hertz (default 49)
  -c, --count N          sample period, number of events
  -d, --delimited        insert delimiter between kernel/user stacks
  -a, --annotations      add _[k] annotations to kernel frames
  -I, --include-idle     include CPU idle stacks
  -f, --folded           output folded format, one line per stack (for flame graphs)
      --stack-storage-size N  the number of unique stack traces that can be stored and displayed (default 16384)
      --hash-storage-size N   the number of hash keys that can be stored (default 40960)
  -C, --cpu CPU          cpu number to run profile on
  -A, --address          show raw addresses
      --svg FILE         also write an interactive flame graph (SVG) to FILE
      --html FILE        also write an interactive flame graph (HTML page) to FILE
      --json             one JSON object per stack: comm, pid, count, kernel and user frames

examples:
  tsbpf profile             # profile stack traces at 49 Hertz until Ctrl-C
  tsbpf profile -F 99       # profile stack traces at 99 Hertz
  tsbpf profile -c 1000000  # profile stack traces every 1 in a million events
  tsbpf profile 5           # profile at 49 Hertz for 5 seconds only
  tsbpf profile -f 5        # output in folded format for flame graphs
  tsbpf profile -p 185      # only profile process with PID 185
  tsbpf profile -L 185      # only profile thread with TID 185
  tsbpf profile -U          # only show user space stacks (no kernel)
  tsbpf profile -K          # only show kernel space stacks (no user)
  tsbpf profile --html out.html 10   # a flame graph of 10 seconds
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  tid: { type: "string", short: "L" },
  "user-stacks-only": { type: "boolean", short: "U" },
  "kernel-stacks-only": { type: "boolean", short: "K" },
  frequency: { type: "string", short: "F" },
  count: { type: "string", short: "c" },
  delimited: { type: "boolean", short: "d" },
  annotations: { type: "boolean", short: "a" },
  "include-idle": { type: "boolean", short: "I" },
  folded: { type: "boolean", short: "f" },
  "stack-storage-size": { type: "string" },
  "hash-storage-size": { type: "string" },
  cpu: { type: "string", short: "C" },
  address: { type: "boolean", short: "A" },
  svg: { type: "string" },
  html: { type: "string" },
  json: { type: "boolean" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseDurationToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, duration } = parsed;
  const pid = pidOption(o.pid, "-p/--pid");
  const tid = pidOption(o.tid, "-L/--tid");
  if (pid !== undefined && tid !== undefined) throw new UsageError("only one of -p/--pid and -L/--tid may be given");
  if (o["user-stacks-only"] && o["kernel-stacks-only"]) throw new UsageError("only one of -U/--user-stacks-only and -K/--kernel-stacks-only may be given");
  const frequency = intOption(o.frequency, "-F/--frequency", 1, 100_000);
  const period = intOption(o.count, "-c/--count", 1);
  if (frequency !== undefined && period !== undefined) throw new UsageError("only one of -F/--frequency and -c/--count may be given");
  const stackStorage = intOption(o["stack-storage-size"], "--stack-storage-size", 1, 1 << 24) ?? 16384;
  const hashStorage = intOption(o["hash-storage-size"], "--hash-storage-size", 1, 1 << 24) ?? 40960;
  const cpus = onlineCpus();
  const cpu = intOption(o.cpu, "-C/--cpu", 0, 4095);
  if (cpu !== undefined && !cpus.includes(cpu)) throw new UsageError(`-C/--cpu: CPU ${cpu} is not online (online: ${cpus.join(",")})`);
  const kernel = !o["user-stacks-only"];
  const user = !o["kernel-stacks-only"];

  let link: PerfEventLink | undefined;
  await using tool = await startTool({
    tool: "profile",
    durationSec: duration,
    constants: {
      targ_tgid: pid ?? 0,
      targ_tid: tid ?? 0,
      include_idle: o["include-idle"] ?? false,
      user_only: !kernel,
      kernel_only: !user,
    },
    prepare(spec) {
      spec.maps.get("stacks")!.maxEntries = stackStorage;
      spec.maps.get("counts")!.maxEntries = hashStorage;
    },
    attach(coll: Collection) {
      link = attachPerfEvent(coll.program("do_perf_event"), {
        event: "cpu-clock",
        ...(period !== undefined ? { samplePeriod: period } : { frequency: frequency ?? 49 }),
        cpus: cpu !== undefined ? [cpu] : undefined,
      });
    },
  });
  if (!tool) return 1;
  const { coll, run } = tool;
  try {
    if (!o.folded && !o.json) {
      const sample = period !== undefined ? `every ${period} events` : `${frequency ?? 49} Hertz`;
      const thread = pid !== undefined ? `PID ${pid}` : tid !== undefined ? `TID ${tid}` : "all threads";
      const stack = !kernel ? "user" : !user ? "kernel" : "user + kernel";
      const where = cpu !== undefined ? ` on CPU#${cpu}` : "";
      run.out.line(`Sampling at ${sample} of ${thread} by ${stack} stack${where}${duration ? ` for ${duration} secs.` : "... Hit Ctrl-C to end."}`);
      run.out.flush();
    }
    await run.stopped;
  } finally {
    // Sampling stops before the report: nothing stays attached while it is written.
    link?.close();
  }
  if (run.out.closed) return 0;
  if (!o.folded && !o.json) run.out.line("");
  const symbolizer = new Symbolizer();
  const cpuBefore = process.cpuUsage();
  const raw = stackCounts(coll.map("counts").entries());
  // BCC's multi-line form names frames with offset and module; folded output and flame graphs use bare names.
  const decorated = !o.folded && !o.json;
  const stacks = symbolizeStacks(coll.map("stacks"), raw, { kernel, user, annotate: o.annotations && o.folded, address: o.address && decorated, offset: decorated, module: decorated }, symbolizer);
  const graphStacks = decorated && (o.svg || o.html) ? symbolizeStacks(coll.map("stacks"), raw, { kernel, user }, symbolizer) : undefined;
  writeStackReport(run.out, stacks, {
    graphStacks,
    tool: "profile", folded: o.folded, delimited: o.delimited, json: o.json, svg: o.svg, html: o.html,
    title: `profile ${args.join(" ")}`.trim(),
  });
  if (raw.length >= hashStorage) process.stderr.write("WARNING: hash table full. Consider increasing --hash-storage-size.\n");
  if (process.env.TSBPF_PROFILE_TIMING) {
    const cpu = process.cpuUsage(cpuBefore);
    process.stderr.write(`tsbpf profile: ${raw.length} stacks symbolized in ${stacks.symbolizeMs.toFixed(1)} ms (report CPU ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms)\n`);
  }
  return 0;
}
