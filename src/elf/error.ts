/** Thrown for any malformed, truncated or unsupported ELF input. */
export class ElfError extends Error {
  constructor(message: string) {
    super(message.startsWith("ELF") ? message : `ELF: ${message}`);
    this.name = "ElfError";
  }
}

/** 0x-prefixed hex, the way readelf prints offsets. */
export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
