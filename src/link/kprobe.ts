import { SyscallError } from "../internal/sys/errors.ts";
import { AttachError } from "./errors.ts";
import { attachToPerfEvent, type AttachableProgram, type Link } from "./link.ts";
import { openProbe } from "./probe.ts";
import { syscallPrefix } from "./syscall.ts";

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
  // Whether the kernel has kprobes at all, and the tracepoint instead, is the registry's check (hooks.ts).
  let probe;
  try {
    probe = openProbe({ kind: "kprobe", retprobe, symbolOrPath: opts.symbol, offset: BigInt(opts.offset ?? 0), pid: -1 });
  } catch (err) {
    if (err instanceof SyscallError && (err.code === "ENOENT" || err.code === "EINVAL")) {
      throw new AttachError(
        `cannot place a ${kind} on "${opts.symbol}": no such kernel function, or it cannot be probed ` +
          `(inlined, static and renamed, or blacklisted); check /proc/kallsyms`,
        { cause: err, hook: kind, target: opts.symbol, reason: "no such function, or not probe-able" },
      );
    }
    throw err;
  }
  return attachToPerfEvent(prog, probe.perf, `${kind}:${opts.symbol}${opts.offset ? `+${opts.offset}` : ""}`, probe.undo);
}

/** A ksyscall/kretsyscall program: a kprobe on the syscall's wrapper function. */
export function attachKsyscall(prog: AttachableProgram, syscall: string, retprobe = false): Link {
  return attachKprobe(prog, { symbol: `${syscallPrefix()}${syscall}`, retprobe });
}
