import { existsSync } from "node:fs";
import { join } from "node:path";
import { SyscallError } from "../internal/sys/errors.ts";
import { tracefsDir } from "../tracing/tracefs.ts";
import { AttachError } from "./errors.ts";
import { attachPerfEvent, type AttachableProgram, type Link } from "./link.ts";
import { openProbe, probesAvailable } from "./probe.ts";
import { syscallOfFunction, syscallPrefix } from "./syscall.ts";

export interface KprobeOptions {
  /** Kernel function to probe. */
  symbol: string;
  /** Byte offset into the function (kprobes only). */
  offset?: number;
  retprobe?: boolean;
}

/** A kprobe or kretprobe program on a kernel function. */
export function attachKprobe(prog: AttachableProgram, opts: KprobeOptions): Link {
  const retprobe = opts.retprobe ?? false;
  const kind = retprobe ? "kretprobe" : "kprobe";
  if (!probesAvailable("kprobe")) throw new AttachError(noKprobesMessage(kind, opts.symbol), { hook: kind, target: opts.symbol, reason: "this kernel has no kprobes (CONFIG_KPROBES is not set)" });
  let probe;
  try {
    probe = openProbe({ kind: "kprobe", retprobe, symbolOrPath: opts.symbol, offset: BigInt(opts.offset ?? 0), pid: -1 });
  } catch (err) {
    if (err instanceof SyscallError && (err.code === "ENOENT" || err.code === "EINVAL")) {
      throw new AttachError(
        `cannot place a ${kind} on "${opts.symbol}": no such kernel function, or it cannot be probed ` +
          `(inlined, static and renamed, or blacklisted); check /proc/kallsyms`,
        { cause: err },
      );
    }
    throw err;
  }
  return attachPerfEvent(prog, probe.perf, `${kind}:${opts.symbol}${opts.offset ? `+${opts.offset}` : ""}`, probe.undo);
}

/** A ksyscall/kretsyscall program: a kprobe on the syscall's wrapper function. */
export function attachKsyscall(prog: AttachableProgram, syscall: string, retprobe = false): Link {
  return attachKprobe(prog, { symbol: `${syscallPrefix()}${syscall}`, retprobe });
}

function noKprobesMessage(kind: string, symbol: string): string {
  let message =
    `cannot attach ${kind} to ${symbol}: this kernel has no kprobes ` +
    `(CONFIG_KPROBES is not set: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs).`;
  const syscall = syscallOfFunction(symbol);
  if (syscall) {
    const event = `${kind === "kretprobe" ? "sys_exit_" : "sys_enter_"}${syscall}`;
    const exists = (() => {
      try {
        return existsSync(join(tracefsDir(), "events", "syscalls", event));
      } catch {
        return true;
      }
    })();
    if (exists) {
      message += ` Use the tracepoint syscalls:${event} instead (SEC("tracepoint/syscalls/${event}")), which sees the same ${kind === "kretprobe" ? "return value" : "arguments"}.`;
      return message;
    }
  }
  return message + " Use a tracepoint, a raw tracepoint or tp_btf program on this kernel, or run on a kernel with kprobes.";
}
