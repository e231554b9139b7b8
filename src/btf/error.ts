import { TsbpfError } from "../errors.ts";

/** Thrown for malformed or unsupported BTF / BTF.ext, and for types a caller cannot use. */
export class BtfError extends TsbpfError {
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_BTF", message.startsWith("BTF") ? message : `BTF: ${message}`, options);
  }
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
