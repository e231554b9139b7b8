// The one error base. Every error tsbpf throws on purpose is a TsbpfError with
// a stable `code`, and its message says what went wrong and what to do. The CLI
// prints such errors as one sentence; anything else is a bug and keeps its stack.
//
// Codes are stable API: match on `code` (or the class), never on message text.
// System-call failures (SyscallError) carry the errno's name ("EPERM", "E2BIG"),
// as Node's own system errors do; every other class has an ERR_TSBPF_* code.

export type TsbpfErrorCode =
  | "ERR_TSBPF_USAGE" // bad arguments to a command or API call
  | "ERR_TSBPF_ELF" // malformed or unsupported ELF input
  | "ERR_TSBPF_BTF" // malformed or unsupported BTF, or a type a caller cannot use
  | "ERR_TSBPF_CORE" // a CO-RE relocation that cannot be carried out
  | "ERR_TSBPF_OBJECT" // an object tsbpf cannot use as it is (sections, maps, externs, names)
  | "ERR_TSBPF_VERIFIER" // the kernel's verifier rejected a program
  | "ERR_TSBPF_ATTACH" // a program could not be attached to its hook
  | "ERR_TSBPF_COMPILE" // clang failed
  | "ERR_TSBPF_TOOL_NOT_FOUND" // an external tool (clang, bpftool, qemu) is missing
  | "ERR_TSBPF_BCC" // a construct of BCC's C dialect that is not translated
  | "ERR_TSBPF_NOT_SUPPORTED" // the kernel lacks a feature (a map type, a hook, a PMU)
  | "ERR_TSBPF_PERMISSION" // not root / missing capabilities
  | "ERR_TSBPF_CACHE" // the compile cache cannot be trusted or used
  | "ERR_TSBPF_VM" // the QEMU harness failed
  | "ERR_TSBPF_INTERRUPTED" // SIGINT during a blocking call (BCC's KeyboardInterrupt)
  | (string & {}); // errno names for SyscallError

export class TsbpfError extends Error {
  /** Stable identifier of the kind of failure: ERR_TSBPF_* or, for system calls, the errno name. */
  readonly code: TsbpfErrorCode;

  constructor(code: TsbpfErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    // Subclasses name themselves (err.name === "AttachError"...) without repeating it.
    this.name = new.target.name;
  }
}

/** Raised for input that is wrong before anything is tried: options, arguments. Exit code 2 in the CLI. */
export class UsageError extends TsbpfError {
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_USAGE", message, options);
  }
}

/** The kernel (or this machine) lacks what is asked for: a map or program type, a hook, a PMU. */
export class NotSupportedError extends TsbpfError {
  /** What is missing, in a few words ("kprobes", "the cpu PMU"). */
  readonly feature: string;
  constructor(feature: string, message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_NOT_SUPPORTED", message, options);
    this.feature = feature;
  }
}

export function isTsbpfError(err: unknown): err is TsbpfError {
  return err instanceof TsbpfError;
}
