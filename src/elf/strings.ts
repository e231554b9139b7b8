// NUL-terminated string tables (ELF .strtab/.shstrtab, BTF string section).
// The whole table is decoded once as latin1 (one fast native call) and names are
// sliced out of it; only strings with bytes >= 0x80 are re-decoded as UTF-8.
import { Buffer } from "node:buffer";

const utf8 = new TextDecoder("utf-8");

export class StringTable {
  readonly size: number;
  private readonly bytes: Uint8Array;
  private text: string | undefined;
  private hasHighBytes = false;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.size = bytes.length;
  }

  /**
   * The string starting at `offset`, or undefined when `offset` is outside the
   * table or the string has no terminating NUL inside it.
   */
  get(offset: number): string | undefined {
    if (!(offset >= 0 && offset < this.size)) return undefined;
    const text = this.decoded();
    const end = text.indexOf("\0", offset);
    if (end < 0) return undefined;
    if (end === offset) return "";
    const s = text.slice(offset, end);
    if (this.hasHighBytes && /[\x80-\xff]/.test(s)) {
      return utf8.decode(this.bytes.subarray(offset, end));
    }
    return s;
  }

  private decoded(): string {
    if (this.text === undefined) {
      const b = this.bytes;
      this.text = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
      this.hasHighBytes = /[\x80-\xff]/.test(this.text);
    }
    return this.text;
  }
}
