// Perf events for BPF_PROG_TYPE_PERF_EVENT programs (and any program a perf event
// can run): one event per CPU (or one per process), each attached through a
// bpf_link (BPF_LINK_CREATE, 5.15+) or PERF_EVENT_IOC_SET_BPF before that.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { NotSupportedError, UsageError } from "../errors.ts";
import { AttachType, PerfIoctl, PerfType } from "../internal/sys/constants.ts";
import { linkCreate } from "../internal/sys/bpf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import type { FD } from "../internal/sys/fd.ts";
import { ioctl, PerfAttrFlag, perfEventOpen } from "../internal/sys/perf.ts";
import { AttachError } from "./errors.ts";
import { Link, type AttachableProgram } from "./link.ts";
import { traceEventId, splitTracepoint } from "./tracepoint.ts";

/** perf's names for PERF_TYPE_SOFTWARE configs. */
export const SOFTWARE_EVENTS: Readonly<Record<string, number>> = {
  "cpu-clock": 0,
  "task-clock": 1,
  "page-faults": 2,
  faults: 2,
  "context-switches": 3,
  cs: 3,
  "cpu-migrations": 4,
  migrations: 4,
  "minor-faults": 5,
  "major-faults": 6,
  "alignment-faults": 7,
  "emulation-faults": 8,
  dummy: 9,
  "bpf-output": 10,
};

/** perf's names for PERF_TYPE_HARDWARE configs (they need the CPU's PMU). */
export const HARDWARE_EVENTS: Readonly<Record<string, number>> = {
  "cpu-cycles": 0,
  cycles: 0,
  instructions: 1,
  "cache-references": 2,
  "cache-misses": 3,
  "branch-instructions": 4,
  branches: 4,
  "branch-misses": 5,
  "bus-cycles": 6,
  "stalled-cycles-frontend": 7,
  "stalled-cycles-backend": 8,
  "ref-cycles": 9,
};

/** Which event: a perf name ("cpu-clock", "cycles", "tracepoint:sched:sched_switch") or the numbers. */
export type PerfEventSpec =
  | string
  | { type: "software" | "hardware"; config: number | string }
  | { type: "tracepoint"; category: string; name: string }
  | { type: "raw"; config: bigint | number }
  /** Any PMU by its number (/sys/bus/event_source/devices/NAME/type), or its name. */
  | { type: "pmu"; pmu: number | string; config: bigint | number; config1?: bigint; config2?: bigint | number };

export interface PerfEventOptions {
  /** The event; default cpu-clock. */
  event?: PerfEventSpec;
  /** One sample every N events (N ns for the clock events). */
  samplePeriod?: number | bigint;
  /** Samples per second (the kernel adjusts the period); default 49 when no samplePeriod is given. */
  frequency?: number;
  /** Only this process (its threads: all of them, through inherit). Default: every process. */
  pid?: number;
  /** The CPUs to sample on; default every online CPU (with `pid`: any CPU, one event). */
  cpus?: number[];
  /** Follow children created after attach (perf's inherit); only with `pid`. */
  inherit?: boolean;
}

/** A Link over one perf event per CPU; closing it closes every link and event. */
export class PerfEventLink extends Link {
  /** The CPU of each event (-1: any CPU, for a per-process event). */
  readonly cpus: readonly number[];
  /** The perf event fds, in the order of `cpus` (for reading counters). */
  readonly events: readonly FD[];
  constructor(target: string, linkFds: FD[], events: FD[], cpus: number[]) {
    // Links first, then the events under them (Link closes `owned` in order).
    super(target, linkFds.length === 1 ? linkFds[0] : undefined, linkFds.length === 1 ? events : [...linkFds, ...events]);
    this.cpus = cpus;
    this.events = events;
  }
}

/** The online CPUs, from /sys/devices/system/cpu/online ("0-3,5"). */
export function onlineCpus(): number[] {
  const text = readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
  return parseCpuList(text);
}

export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    if (!part.trim()) continue;
    const [a, b] = part.split("-").map((x) => Number.parseInt(x, 10));
    if (!Number.isInteger(a) || (b !== undefined && !Number.isInteger(b))) throw new UsageError(`bad CPU list "${text}"`);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

const PMU_DIR = "/sys/bus/event_source/devices";

function pmus(): string[] {
  try {
    return readdirSync(PMU_DIR).sort();
  } catch {
    return [];
  }
}

interface ResolvedEvent {
  type: number;
  config: bigint;
  config1?: bigint;
  config2?: bigint;
  label: string;
  /** The PMU it needs, for messages ("cpu" for hardware and raw events). */
  pmu: string;
}

/** Turns an event spec into perf_event_attr's type and config. */
export function resolvePerfEvent(spec: PerfEventSpec = "cpu-clock"): ResolvedEvent {
  if (typeof spec === "string") {
    if (spec in SOFTWARE_EVENTS) return { type: PerfType.SOFTWARE, config: BigInt(SOFTWARE_EVENTS[spec]!), label: `software:${spec}`, pmu: "software" };
    if (spec in HARDWARE_EVENTS) return { type: PerfType.HARDWARE, config: BigInt(HARDWARE_EVENTS[spec]!), label: `hardware:${spec}`, pmu: "cpu" };
    const tp = /^(?:tracepoint|t):(.+)$/.exec(spec);
    if (tp) {
      const [category, name] = splitTracepoint(tp[1]!);
      return resolvePerfEvent({ type: "tracepoint", category, name });
    }
    const raw = /^r([0-9a-fA-F]+)$/.exec(spec);
    if (raw) return { type: PerfType.RAW, config: BigInt(`0x${raw[1]}`), label: `raw:${spec}`, pmu: "cpu" };
    throw new UsageError(
      `unknown perf event "${spec}": use a software event (${Object.keys(SOFTWARE_EVENTS).join(", ")}), ` +
        `a hardware event (${Object.keys(HARDWARE_EVENTS).join(", ")}), tracepoint:CATEGORY:NAME or rNNNN (raw)`,
    );
  }
  switch (spec.type) {
    case "software":
    case "hardware": {
      const table = spec.type === "software" ? SOFTWARE_EVENTS : HARDWARE_EVENTS;
      const config = typeof spec.config === "number" ? spec.config : table[spec.config];
      if (config === undefined) throw new UsageError(`unknown ${spec.type} event "${spec.config}" (known: ${Object.keys(table).join(", ")})`);
      return {
        type: spec.type === "software" ? PerfType.SOFTWARE : PerfType.HARDWARE,
        config: BigInt(config),
        label: `${spec.type}:${spec.config}`,
        pmu: spec.type === "software" ? "software" : "cpu",
      };
    }
    case "tracepoint":
      return { type: PerfType.TRACEPOINT, config: BigInt(traceEventId(spec.category, spec.name)), label: `tracepoint:${spec.category}:${spec.name}`, pmu: "tracepoint" };
    case "raw":
      return { type: PerfType.RAW, config: BigInt(spec.config), label: `raw:0x${BigInt(spec.config).toString(16)}`, pmu: "cpu" };
    case "pmu": {
      let type = spec.pmu;
      if (typeof type === "string") {
        const file = `${PMU_DIR}/${type}/type`;
        if (!existsSync(file)) throw missingPmu(type, `pmu:${spec.pmu}`);
        type = Number.parseInt(readFileSync(file, "utf8"), 10);
      }
      return {
        type,
        config: BigInt(spec.config),
        config1: spec.config1,
        config2: spec.config2 === undefined ? undefined : BigInt(spec.config2),
        label: `pmu:${spec.pmu}:0x${BigInt(spec.config).toString(16)}`,
        pmu: String(spec.pmu),
      };
    }
  }
}

function missingPmu(pmu: string, label: string, cause?: unknown): NotSupportedError {
  const have = pmus();
  return new NotSupportedError(
    `the ${pmu} PMU`,
    `cannot open perf event ${label}: this machine has no "${pmu}" PMU ` +
      `(${PMU_DIR} has ${have.length ? have.join(", ") : "nothing"}; a virtual machine often exposes no hardware counters); ` +
      `software events work: use cpu-clock for CPU sampling`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Attaches `prog` (a perf_event program, or any a perf event can run) to a
 * sampling perf event: on every online CPU by default, or in one process.
 */
export function attachPerfEvent(prog: AttachableProgram, opts: PerfEventOptions = {}): PerfEventLink {
  const ev = resolvePerfEvent(opts.event);
  if (opts.samplePeriod !== undefined && opts.frequency !== undefined) throw new UsageError("give a sample period or a frequency, not both");
  if (opts.inherit && opts.pid === undefined) throw new UsageError("inherit needs a pid");
  if (ev.pmu === "cpu" && !existsSync(`${PMU_DIR}/cpu`)) throw missingPmu("cpu", ev.label);
  const byFreq = opts.samplePeriod === undefined && ev.type !== PerfType.TRACEPOINT;
  const period = opts.samplePeriod !== undefined ? BigInt(opts.samplePeriod) : byFreq ? BigInt(opts.frequency ?? 49) : 1n;
  if (period <= 0n) throw new UsageError(`sample ${byFreq ? "frequency" : "period"} must be positive, got ${period}`);
  const pid = opts.pid ?? -1;
  const cpus = opts.cpus ?? (opts.pid !== undefined ? [-1] : onlineCpus());
  if (pid === -1 && cpus.includes(-1)) throw new UsageError("a system-wide perf event needs CPUs, not -1");
  const target = `perf_event:${ev.label}${opts.pid !== undefined ? `:pid=${opts.pid}` : ""}`;
  let flags = 0n;
  if (byFreq) flags |= PerfAttrFlag.freq;
  if (opts.inherit) flags |= PerfAttrFlag.inherit;

  const events: FD[] = [];
  const links: FD[] = [];
  let useIoctl = false;
  try {
    for (const cpu of cpus) {
      let fd: FD;
      try {
        fd = perfEventOpen({ type: ev.type, config: ev.config, config1: ev.config1, config2: ev.config2, samplePeriod: period, flags }, pid, cpu);
      } catch (err) {
        throw openError(err, ev, pid, cpu);
      }
      events.push(fd);
      if (!useIoctl) {
        try {
          links.push(linkCreate({ progFd: prog.fd.value, targetFd: fd.value, attachType: AttachType.PERF_EVENT }));
          continue;
        } catch (err) {
          if (!(err instanceof SyscallError) || !["EINVAL", "EOPNOTSUPP", "ENOTSUPP", "E524"].includes(err.code) || links.length) {
            throw err;
          }
          useIoctl = true; // no perf-event links before 5.15
        }
      }
      try {
        ioctl(fd.value, PerfIoctl.SET_BPF, prog.fd.value);
      } catch (err) {
        throw attachError(err, prog, target); // EINVAL here: a program type a perf event cannot run
      }
      ioctl(fd.value, PerfIoctl.ENABLE, 0);
    }
  } catch (err) {
    for (const fd of [...links, ...events]) fd.close();
    throw err;
  }
  return new PerfEventLink(target, links, events, cpus);
}

function openError(err: unknown, ev: ResolvedEvent, pid: number, cpu: number): unknown {
  if (!(err instanceof SyscallError)) return err;
  // ENOENT: no such event/PMU; EOPNOTSUPP: the PMU cannot sample; ENODEV: no such PMU type.
  if (ev.pmu === "cpu" && ["ENOENT", "EOPNOTSUPP", "ENODEV", "EINVAL"].includes(err.code)) return missingPmu("cpu", ev.label, err);
  if (err.code === "ESRCH") return new UsageError(`perf event ${ev.label}: no process ${pid}`, { cause: err });
  if (err.code === "ENODEV" && cpu >= 0) return new UsageError(`perf event ${ev.label}: CPU ${cpu} is not online`, { cause: err });
  return err;
}

function attachError(err: unknown, prog: AttachableProgram, target: string): unknown {
  if (err instanceof SyscallError && err.code === "EINVAL") {
    return new AttachError(`cannot attach program ${prog.name} to ${target}: the kernel refused it (${err.code}); a perf event takes perf_event, kprobe or tracepoint programs`, {
      cause: err,
      hook: "perf_event",
      target,
      reason: "the program type does not fit a perf event",
      suggestion: 'put the program in SEC("perf_event")',
    });
  }
  return err;
}
