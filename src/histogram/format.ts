// BCC's histogram text, byte for byte: _print_log2_hist and _print_linear_hist
// of src/python/bcc/table.py (the layout of every BCC tool's *_example.txt).
// Counts are integers (number or bigint); rows are returned without newlines.

/** BCC's stars_max: the width of the distribution bar (half of it when the histogram needs 64-bit columns). */
export const STARS_MAX = 40;

export type Count = number | bigint;

const big = (v: Count): bigint => (typeof v === "bigint" ? v : BigInt(Math.trunc(v)));

// Python's `(width * val / val_max) - 1` is a true division of integers; for
// values below 2^53 a float division of the same integers rounds the same way.
function stars(val: bigint, valMax: bigint, width: number): string {
  const limit = (width * Number(val)) / Number(valMax) - 1;
  let text = "";
  for (let i = 0; !(i > limit || i > width - 1); i++) text += "*";
  if (val > valMax) text = text.slice(0, -1) + "+";
  return text;
}

function extent(vals: readonly Count[]): { idxMax: number; valMax: bigint } {
  let idxMax = -1;
  let valMax = 0n;
  vals.forEach((v, i) => {
    const b = big(v);
    if (b > 0n) idxMax = i;
    if (b > valMax) valMax = b;
  });
  return { idxMax, valMax };
}

const left = (s: unknown, n: number) => String(s).padEnd(n);
const right = (s: unknown, n: number) => String(s).padStart(n);

/**
 * BCC's `_print_log2_hist(vals, val_type, strip_leading_zero)`: `vals[slot]` is
 * the count of log2 slot `slot` (see log2l). Slot 0 is never printed, as in BCC.
 */
export function log2HistLines(vals: readonly Count[], valType = "value", stripLeadingZero = false): string[] {
  const { idxMax, valMax } = extent(vals);
  const wide = idxMax > 32;
  const width = wide ? STARS_MAX / 2 : STARS_MAX;
  const out: string[] = [];
  if (idxMax > 0) out.push(wide ? `               ${left(valType, 29)} : count     distribution` : `     ${left(valType, 19)} : count     distribution`);
  let strip = stripLeadingZero;
  for (let i = 1; i <= idxMax; i++) {
    let low = (1n << BigInt(i)) >> 1n;
    const high = (1n << BigInt(i)) - 1n;
    if (low === high) low -= 1n;
    const val = big(vals[i] ?? 0);
    if (strip && !val) continue;
    strip = false;
    const n = wide ? 20 : 10;
    out.push(`${right(low, n)} -> ${left(high, n)} : ${left(val, 8)} |${left(stars(val, valMax, width), width)}|`);
  }
  return out;
}

/** BCC's `_print_linear_hist(vals, val_type, strip_leading_zero)`: `vals[i]` is the count of value i. */
export function linearHistLines(vals: readonly Count[], valType = "value", stripLeadingZero = false): string[] {
  const { idxMax, valMax } = extent(vals);
  const out: string[] = [];
  if (idxMax >= 0) out.push(`     ${left(valType, 13)} : count     distribution`);
  let strip = stripLeadingZero;
  for (let i = 0; i <= idxMax; i++) {
    const val = big(vals[i] ?? 0);
    if (strip && !val) continue;
    strip = false;
    out.push(`        ${left(i, 10)} : ${left(val, 8)} |${left(stars(val, valMax, STARS_MAX), STARS_MAX)}|`);
  }
  return out;
}

/**
 * Python's `%r` of a section's bucket, which BCC prints when a tool gives no
 * section_print_fn: integers as they are, strings quoted ('sda'), byte strings b'...'.
 */
export function pythonRepr(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null || value === undefined) return "None";
  if (typeof value === "string") return quote(value, false);
  if (value instanceof Uint8Array) return "b" + quote(String.fromCharCode(...value), true);
  if (Array.isArray(value)) return `(${value.map(pythonRepr).join(", ")}${value.length === 1 ? "," : ""})`;
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v));
}

// CPython's unicode_repr / bytes_repr: single quotes unless the text has a ' and no ".
function quote(s: string, bytes: boolean): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === q || ch === "\\") out += "\\" + ch;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || c === 0x7f || (bytes && c > 0x7f) || (!bytes && c >= 0x80 && c < 0xa0)) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + q;
}
