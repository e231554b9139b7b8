import { readFileSync } from "node:fs";
import { PerfType } from "../internal/sys/constants.ts";
import { perfEventOpen } from "../internal/sys/perf.ts";
import { rawTracepointOpen } from "../internal/sys/bpf.ts";
import { badEventName, traceEventId, tracepointExists } from "../tracing/tracefs.ts";
import { AttachError } from "./errors.ts";
import { attachToPerfEvent, Link, type AttachableProgram } from "./link.ts";

// tracefs owns these; re-exported for the callers that found them here.
export { traceEventId, tracepointExists };

/** Splits "category/name" or "category:name". */
export function splitTracepoint(target: string): [string, string] {
  const m = /^([^/:]+)[/:]([^/:]+)$/.exec(target);
  if (!m) {
    throw new AttachError(`"${target}" is not a tracepoint name; expected CATEGORY/NAME, e.g. syscalls/sys_enter_openat`, {
      hook: "tracepoint",
      target,
      reason: "not CATEGORY/NAME",
    });
  }
  return [m[1]!, m[2]!];
}

/** A tracepoint program on CATEGORY:NAME, through a perf event. */
export function attachTracepoint(prog: AttachableProgram, category: string, name: string): Link {
  const id = traceEventId(category, name);
  // pid -1 with cpu 0 is how libbpf opens it: trace events run the program on every CPU.
  const perf = perfEventOpen({ type: PerfType.TRACEPOINT, config: id, samplePeriod: 1, wakeup: 1 }, -1, 0);
  return attachToPerfEvent(prog, perf, `tracepoint:${category}:${name}`);
}

/** A raw tracepoint program (BPF_PROG_TYPE_RAW_TRACEPOINT) on the tracepoint NAME. */
export function attachRawTracepoint(prog: AttachableProgram, name: string): Link {
  const bad = badEventName(name);
  if (bad !== undefined) {
    throw new AttachError(`"${name}" is not a raw tracepoint name: ${bad}`, { hook: "raw_tracepoint", target: name, reason: "invalid name" });
  }
  try {
    return new Link(`raw_tracepoint:${name}`, rawTracepointOpen(prog.fd.value, name));
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") {
      throw new AttachError(
        `raw tracepoint "${name}" does not exist on this kernel (names are those of tracepoints, without category, e.g. sched_switch)`,
        { cause: err, hook: "raw_tracepoint", target: name, reason: "no such tracepoint" },
      );
    }
    throw err;
  }
}

/**
 * A BTF-typed tracing program (tp_btf, fentry, fexit, fmod_ret, lsm): its target was
 * fixed at load time through attach_btf_id, so attaching names nothing.
 */
export function attachTracing(prog: AttachableProgram, target: string): Link {
  try {
    return new Link(target, rawTracepointOpen(prog.fd.value, undefined));
  } catch (err) {
    if ((err as { code?: string }).code === "EPERM" && lockedDown()) {
      throw new AttachError(
        `cannot attach ${target}: the kernel refuses it (EPERM) under lockdown (${lockdownState()}); ` +
          `use a tracepoint, raw tracepoint or tp_btf program instead, or run on a kernel without lockdown`,
        { cause: err, hook: "tracing", target, reason: "kernel lockdown", suggestion: "use a tracepoint, raw tracepoint or tp_btf program" },
      );
    }
    throw err;
  }
}

function lockdownState(): string {
  try {
    return /\[(\w+)\]/.exec(readFileSync("/sys/kernel/security/lockdown", "utf8"))?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

function lockedDown(): boolean {
  const state = lockdownState();
  return state === "integrity" || state === "confidentiality";
}
