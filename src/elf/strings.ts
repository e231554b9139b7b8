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

  /** Every offset at which the whole string `s` starts (more than one when the table repeats it). */
  offsetsOf(s: string): number[] {
    if (s === "") return [0];
    const text = this.decoded();
    const needle = `\0${this.hasHighBytes ? Buffer.from(s, "utf8").toString("latin1") : s}\0`;
    const out: number[] = [];
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) out.push(i + 1);
    return out;
  }

  /** The start offset of every string that contains `part` (not empty). */
  offsetsContaining(part: string): number[] {
    const text = this.decoded();
    const out: number[] = [];
    for (let i = text.indexOf(part); i >= 0; ) {
      const start = text.lastIndexOf("\0", i) + 1;
      const end = text.indexOf("\0", i);
      if (end < 0) break;
      out.push(start);
      i = text.indexOf(part, end);
    }
    return out;
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
