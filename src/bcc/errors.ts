// Errors of the BCC layer.
import { TsbpfError } from "../errors.ts";

/**
 * A construct of BCC's C dialect that tsbpf does not translate (or that is
 * malformed), with the line of the user's program it is on.
 */
export class BccError extends TsbpfError {
  readonly file: string;
  readonly line: number;
  /** The construct, as written: "BPF_PROG_ARRAY", "prog_array.call()", ... */
  readonly construct: string;

  constructor(file: string, line: number, construct: string, detail: string) {
    super("ERR_TSBPF_BCC", `${file}:${line}: ${construct}: ${detail}`);
    this.file = file;
    this.line = line;
    this.construct = construct;
  }
}

/**
 * Thrown by the blocking calls of the BPF facade (`tracePrint`, `perfBufferPoll`,
 * `sleep`, ...) when the process gets SIGINT: BCC's Python programs catch
 * KeyboardInterrupt, their TypeScript ports catch this.
 */
export class KeyboardInterrupt extends TsbpfError {
  constructor() {
    super("ERR_TSBPF_INTERRUPTED", "interrupted (SIGINT)");
  }
}
