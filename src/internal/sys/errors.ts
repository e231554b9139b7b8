import { readFileSync } from "node:fs";
import { Capability } from "./constants.ts";
import { TsbpfError } from "../../errors.ts";

/** A failed system call, with the errno the kernel returned; `code` is the errno's name ("EPERM"). */
export class SyscallError extends TsbpfError {
  readonly errno: number;
  readonly syscall: string;

  constructor(message: string, errno: number, code: string, syscall: string, options?: ErrorOptions) {
    super(code, message, options);
    this.errno = errno;
    this.syscall = syscall;
  }
}

interface NativeError extends Error {
  errno?: number;
  code?: string;
}

/** The effective capability set of this process, from /proc/self/status. */
export function effectiveCapabilities(): bigint {
  const status = readFileSync("/proc/self/status", "utf8");
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return match ? BigInt(`0x${match[1]}`) : 0n;
}

function hasCapability(caps: bigint, bit: number): boolean {
  return ((caps >> BigInt(bit)) & 1n) === 1n;
}

/** A sentence saying what is missing when the kernel says EPERM, or "" if nothing is. */
export function privilegeHint(): string {
  const caps = effectiveCapabilities();
  if (hasCapability(caps, Capability.SYS_ADMIN)) return "";
  if (hasCapability(caps, Capability.BPF) && hasCapability(caps, Capability.PERFMON)) return "";
  return (
    "tsbpf needs root, or the capabilities CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8): " +
    "run it with sudo"
  );
}

/**
 * Wraps an errno-carrying error from the native layer in a SyscallError whose
 * message names the operation, and says what to do where we know.
 */
export function wrapSyscallError(err: unknown, syscall: string, operation: string): SyscallError {
  const e = err as NativeError;
  if (typeof e?.errno !== "number") throw err;
  const code = e.code ?? `E${e.errno}`;
  let message = `${operation}: ${describeErrno(code, e.message)}`;
  if (code === "EPERM" || code === "EACCES") {
    const hint = privilegeHint();
    if (hint) message += `. ${hint}`;
  }
  return new SyscallError(message, e.errno, code, syscall, { cause: err });
}

function describeErrno(code: string, nativeMessage: string): string {
  // The kernel's ENOTSUPP (524) has no libc name; strerror prints "Unknown error 524".
  if (code === "ENOTSUPP" || code === "E524") return "operation not supported for this object or by this kernel (ENOTSUPP)";
  const text = nativeMessage.replace(/^[a-z_]+: /, "");
  return text.includes(code) ? text : `${text} (${code})`;
}
