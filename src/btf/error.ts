/** Thrown for malformed or unsupported BTF / BTF.ext, and for types a caller cannot use. */
export class BtfError extends Error {
  constructor(message: string) {
    super(message.startsWith("BTF") ? message : `BTF: ${message}`);
    this.name = "BtfError";
  }
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
