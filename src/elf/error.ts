import { TsbpfError } from "../errors.ts";

/** Thrown for any malformed, truncated or unsupported ELF input. */
export class ElfError extends TsbpfError {
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_ELF", message.startsWith("ELF") ? message : `ELF: ${message}`, options);
  }
}

/** 0x-prefixed hex, the way readelf prints offsets. */
export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
