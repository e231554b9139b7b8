import { TsbpfError } from "../errors.ts";
/**
 * The kernel refused a program. `log` is the verifier's whole log; with the
 * object's BTF line info loaded it interleaves the C source lines (`; ...`).
 */
export class VerifierError extends TsbpfError {
  readonly program: string;
  readonly log: string;
  readonly errno: number;
  /** The errno name of the failed load: EACCES (rejected), EINVAL, E2BIG, ENOSPC. */
  readonly errnoCode: string;

  constructor(program: string, code: string, errno: number, log: string, options?: ErrorOptions) {
    const tail = tailOf(log, 30);
    super(
      "ERR_TSBPF_VERIFIER",
      `program ${program} was rejected by the kernel verifier (${code})` +
        (tail ? `:\n${tail}` : ": no verifier log (the kernel refused it before verifying)"),
      options,
    );
    this.program = program;
    this.log = log;
    this.errno = errno;
    this.errnoCode = code;
  }
}

/** The last lines of the log: where the verifier gave up, with its reason. */
function tailOf(log: string, lines: number): string {
  const all = log.trimEnd().split("\n");
  const kept = all.slice(-lines);
  return (all.length > lines ? `... (${all.length - lines} earlier lines in .log)\n` : "") + kept.join("\n");
}
