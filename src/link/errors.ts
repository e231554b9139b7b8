import { TsbpfError } from "../errors.ts";

export interface AttachErrorDetails {
  /** The hook, as the registry names it: "kprobe", "tracepoint", "uprobe"... */
  hook?: string;
  /** The target: "syscalls:sys_enter_openat", "do_sys_openat2", "/bin/bash:readline". */
  target?: string;
  /** Why, in a few words: "kprobes are not compiled into this kernel". */
  reason?: string;
  /** What to do instead: "use the syscalls:sys_enter_openat tracepoint". */
  suggestion?: string;
}

/** A program could not be attached: says to what, why, and what to do instead. */
export class AttachError extends TsbpfError {
  readonly hook?: string;
  readonly target?: string;
  readonly reason?: string;
  readonly suggestion?: string;

  constructor(message: string, options?: ErrorOptions & AttachErrorDetails) {
    super("ERR_TSBPF_ATTACH", message, options);
    this.hook = options?.hook;
    this.target = options?.target;
    this.reason = options?.reason;
    this.suggestion = options?.suggestion;
  }
}
