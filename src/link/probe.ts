// kprobes and uprobes: the dynamic probe PMUs of perf_event_open (4.17+), with
// tracefs kprobe_events/uprobe_events as the fallback, as cilium/ebpf and libbpf do.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PerfType } from "../internal/sys/constants.ts";
import { perfEventOpen } from "../internal/sys/perf.ts";
import type { FD } from "../internal/sys/fd.ts";
import { onExit } from "../internal/cleanup.ts";
import { haveDynamicProbes, pmuType as featurePmuType } from "../features/index.ts";
import { addProbeEvent, probeEventsFile, traceEventId, type DynamicProbeKind } from "../tracing/tracefs.ts";
import { AttachError } from "./errors.ts";

export type { DynamicProbeKind } from "../tracing/tracefs.ts";

export interface ProbeTarget {
  kind: DynamicProbeKind;
  retprobe: boolean;
  /** kprobe: the kernel symbol; uprobe: the binary's path. */
  symbolOrPath: string;
  /** kprobe: offset from the symbol; uprobe: file offset in the binary. */
  offset: bigint;
  /** uprobe: only this process (-1: all). */
  pid: number;
  /** uprobe: file offset of a USDT semaphore the kernel counts up while the probe is attached (0 or absent: none). */
  refCtrOffset?: bigint;
}

const PMU_DIR = "/sys/bus/event_source/devices";

/** The dynamic PMU's type number, or undefined when the kernel has none. */
export function pmuType(kind: DynamicProbeKind): number | undefined {
  return featurePmuType(kind);
}

/** The config bit that makes a PMU probe a return probe ("config:0" in format/retprobe). */
function retprobeBit(kind: DynamicProbeKind): bigint {
  const text = readFileSync(join(PMU_DIR, kind, "format", "retprobe"), "utf8");
  const m = /config:(\d+)/.exec(text);
  return 1n << BigInt(m ? m[1] : 0);
}

/** Where tracefs defines probes of this kind, or undefined when it cannot. */
export function tracefsProbeFile(kind: DynamicProbeKind): string | undefined {
  return probeEventsFile(kind);
}

/** True when the kernel can place this kind of probe by either mechanism. */
export function probesAvailable(kind: DynamicProbeKind): boolean {
  return haveDynamicProbes(kind);
}

let counter = 0;

/**
 * Opens a perf event for the probe. `undo` (tracefs fallback only) removes the
 * probe definition and must run after the fd is closed.
 */
export function openProbe(t: ProbeTarget): { perf: FD; undo: (() => void)[] } {
  const cpu = t.pid >= 0 ? -1 : 0;
  const type = pmuType(t.kind);
  if (type !== undefined) {
    const perf = perfEventOpen(
      {
        type,
        // The uprobe PMU reads ref_ctr_offset from config's upper half ("config:32-63" in its format).
        config: (t.retprobe ? retprobeBit(t.kind) : 0n) | ((t.refCtrOffset ?? 0n) << 32n),
        config1: t.symbolOrPath,
        config2: t.offset,
        samplePeriod: 1,
        wakeup: 1,
      },
      t.pid,
      cpu,
    );
    return { perf, undo: [] };
  }
  if (!probeEventsFile(t.kind)) {
    throw new AttachError(`no ${t.kind} support (no ${t.kind} PMU and no ${t.kind}_events in tracefs)`, {
      hook: t.kind,
      target: t.symbolOrPath,
      reason: `the kernel has no ${t.kind}s`,
    });
  }
  const event = `tsbpf_${process.pid}_${counter++}_${t.symbolOrPath.replace(/[^A-Za-z0-9_]/g, "_").slice(-32)}`;
  const refCtr = t.refCtrOffset ? `(0x${t.refCtrOffset.toString(16)})` : "";
  const location = t.kind === "kprobe" ? `${t.symbolOrPath}+${t.offset}` : `${t.symbolOrPath}:0x${t.offset.toString(16)}${refCtr}`;
  // Checked and written by the tracefs owner: a newline in a path cannot add a definition.
  const removeDefinition = addProbeEvent({ kind: t.kind, retprobe: t.retprobe, group: "tsbpf", event, location });
  const remove = onExit(removeDefinition);
  try {
    const id = traceEventId("tsbpf", event);
    const perf = perfEventOpen({ type: PerfType.TRACEPOINT, config: id, samplePeriod: 1, wakeup: 1 }, t.pid, cpu);
    return { perf, undo: [remove] };
  } catch (err) {
    remove();
    throw err;
  }
}
