import { AttachType } from "../internal/sys/constants.ts";
import { PerfIoctl } from "../internal/sys/constants.ts";
import { linkCreate, linkInfo, type LinkInfo } from "../internal/sys/bpf.ts";
import type { FD } from "../internal/sys/fd.ts";
import { ioctl } from "../internal/sys/perf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { failuresOf } from "../internal/settle.ts";
import { AttachError } from "./errors.ts";

/** What the attach functions need of a loaded program. */
export interface AttachableProgram {
  readonly fd: FD;
  readonly name: string;
}

/**
 * An attachment of a program to a hook. Detaches when closed or disposed; the
 * kernel also detaches when the process exits, since it owns every fd involved.
 */
export class Link implements Disposable, AsyncDisposable {
  /** What it is attached to, for messages: "tracepoint:syscalls:sys_enter_openat". */
  readonly target: string;
  /** The bpf_link fd, when the kernel gave one (absent for perf events attached by ioctl). */
  readonly fd: FD | undefined;
  readonly #owned: FD[];
  readonly #undo: (() => void)[];
  #closed = false;

  constructor(target: string, fd: FD | undefined, owned: FD[] = [], undo: (() => void)[] = []) {
    this.target = target;
    this.fd = fd;
    this.#owned = owned;
    this.#undo = undo;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The kernel's view of the link (id, type, program id); only for bpf_link-backed links. */
  info(): LinkInfo | undefined {
    return this.fd ? linkInfo(this.fd.value) : undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    // The bpf_link first, then the perf event it used, then tracefs entries.
    for (const fd of [this.fd, ...this.#owned]) {
      try {
        fd?.close();
      } catch (err) {
        errors.push(err);
      }
    }
    this.#undoAll(errors);
  }

  /** As close(), its descriptors closed at once off the main thread (FD.closeAsync): detaching takes the kernel tens of ms. */
  async closeAsync(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#undoAll(await failuresOf([this.fd, ...this.#owned].map((fd) => fd?.closeAsync()))); // tracefs entries only once nothing uses them
  }

  /** Runs the undo steps (tracefs entries), then throws the first of `errors` and theirs. */
  #undoAll(errors: unknown[]): void {
    for (const undo of this.#undo) {
      try {
        undo();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw errors[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeAsync();
  }

  toString(): string {
    return `Link(${this.target})`;
  }
}

/**
 * Attaches `prog` to an open perf event (tracepoint, kprobe or uprobe): a
 * bpf_link where the kernel has BPF_LINK_CREATE for perf events (5.15+), else
 * the older PERF_EVENT_IOC_SET_BPF. The Link owns `perf` either way.
 */
export function attachToPerfEvent(prog: AttachableProgram, perf: FD, target: string, undo: (() => void)[] = []): Link {
  try {
    try {
      const fd = linkCreate({ progFd: prog.fd.value, targetFd: perf.value, attachType: AttachType.PERF_EVENT });
      return new Link(target, fd, [perf], undo);
    } catch (err) {
      if (!(err instanceof SyscallError) || !["EINVAL", "EOPNOTSUPP", "ENOTSUPP", "E524"].includes(err.code)) throw err;
    }
    ioctl(perf.value, PerfIoctl.SET_BPF, prog.fd.value);
    ioctl(perf.value, PerfIoctl.ENABLE, 0);
    return new Link(target, undefined, [perf], undo);
  } catch (err) {
    perf.close();
    for (const u of undo) u();
    throw explainPerfAttachFailure(err, prog, target);
  }
}

/** The kernel's limit of programs on one trace event (BPF_TRACE_MAX_PROGS in kernel/trace/bpf_trace.c). */
export const BPF_TRACE_MAX_PROGS = 64;

function explainPerfAttachFailure(err: unknown, prog: AttachableProgram, target: string): unknown {
  if (!(err instanceof SyscallError) || err.code !== "E2BIG") return err;
  // A bare E2BIG here means the event's program array is full.
  const hook = target.slice(0, Math.max(0, target.indexOf(":"))) || undefined;
  return new AttachError(
    `cannot attach program ${prog.name} to ${target}: the kernel allows at most ${BPF_TRACE_MAX_PROGS} BPF programs on one ` +
      `trace event (BPF_TRACE_MAX_PROGS), and ${target} has them (E2BIG); detach some, or attach one program that does the work of several`,
    {
      cause: err,
      hook,
      target,
      reason: `more than ${BPF_TRACE_MAX_PROGS} programs on one trace event`,
      suggestion: "detach programs from this event, or merge them into one",
    },
  );
}
