// Helpers called from generated codec code. They take plain arguments and
// never build error paths themselves: generated code builds the path string
// only on the failure branch, so the happy path allocates nothing extra.

const utf8Decoder = new TextDecoder("utf-8");
const utf8Encoder = new TextEncoder();

/** A NUL-terminated char[n] as a string (UTF-8; ASCII without TextDecoder). */
export function readString(v: DataView, o: number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    const c = v.getUint8(o + i);
    if (c === 0) return s;
    if (c > 0x7f) return readUtf8(v, o, n);
    s += String.fromCharCode(c);
  }
  return s;
}

function readUtf8(v: DataView, o: number, n: number): string {
  const bytes = new Uint8Array(v.buffer, v.byteOffset + o, n);
  const nul = bytes.indexOf(0);
  return utf8Decoder.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

/** Writes a string into zeroed char[n], truncated (on a character boundary) to keep a NUL. */
export function writeString(v: DataView, o: number, n: number, s: string): void {
  if (n <= 1) return;
  const max = n - 1;
  let i = 0;
  for (; i < s.length && i < max; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    v.setUint8(o + i, c);
  }
  if (i < s.length && i < max) {
    utf8Encoder.encodeInto(s.slice(i), new Uint8Array(v.buffer, v.byteOffset + o + i, max - i));
  }
}

/** Copies raw bytes (at most n) into a char[n] / opaque field. */
export function writeBytes(v: DataView, o: number, n: number, b: Uint8Array): void {
  new Uint8Array(v.buffer, v.byteOffset + o, n).set(b.length > n ? b.subarray(0, n) : b);
}

export function readBytes(v: DataView, o: number, n: number): Uint8Array {
  return new Uint8Array(v.buffer.slice(v.byteOffset + o, v.byteOffset + o + n));
}

export function zero(v: DataView, o: number, n: number): void {
  if (n <= 16) for (let i = 0; i < n; i++) v.setUint8(o + i, 0);
  else new Uint8Array(v.buffer, v.byteOffset + o, n).fill(0);
}

/** number/bigint/boolean -> integer in [min, max], or NaN when it is not one. */
export function toInt(x: unknown, min: number, max: number): number {
  if (typeof x === "number") return Number.isInteger(x) && x >= min && x <= max ? x : NaN;
  if (typeof x === "bigint") return x >= BigInt(min) && x <= BigInt(max) ? Number(x) : NaN;
  if (typeof x === "boolean") return x ? 1 : 0;
  return NaN;
}

/** number/bigint/boolean -> bigint in [min, max], or undefined when it is not one. */
export function toBig(x: unknown, min: bigint, max: bigint): bigint | undefined {
  let b: bigint;
  if (typeof x === "bigint") b = x;
  else if (typeof x === "number" && Number.isInteger(x)) b = BigInt(x);
  else if (typeof x === "boolean") b = x ? 1n : 0n;
  else return undefined;
  return b >= min && b <= max ? b : undefined;
}

/** 1/0 for booleans and 0/1-like numbers, -1 otherwise. */
export function toBool(x: unknown): number {
  if (typeof x === "boolean") return x ? 1 : 0;
  if (typeof x === "number" || typeof x === "bigint") return x ? 1 : 0;
  return -1;
}

/** Bits [shift, shift+width) of the little-endian bytes at p; shift+width <= 53. */
export function getBits(v: DataView, p: number, shift: number, width: number, signed: boolean): number {
  const last = Math.ceil((shift + width) / 8) - 1;
  // Drop the bits above the field first so that n stays below 2^53 (exact).
  let n = v.getUint8(p + last) & ((1 << (shift + width - 8 * last)) - 1);
  for (let i = last - 1; i >= 0; i--) n = n * 256 + v.getUint8(p + i);
  n = Math.floor(n / 2 ** shift);
  return signed && n >= 2 ** (width - 1) ? n - 2 ** width : n;
}

export function getBitsBig(v: DataView, p: number, shift: number, width: number, signed: boolean): bigint {
  let n = 0n;
  for (let i = Math.ceil((shift + width) / 8) - 1; i >= 0; i--) n = (n << 8n) | BigInt(v.getUint8(p + i));
  n = BigInt.asUintN(width, n >> BigInt(shift));
  return signed ? BigInt.asIntN(width, n) : n;
}

/** Read-modify-write of a bitfield; `value` is range-checked and shift+width <= 53. */
export function setBits(v: DataView, p: number, shift: number, width: number, value: number): void {
  let bits = (value < 0 ? value + 2 ** width : value) * 2 ** shift;
  let mask = (2 ** width - 1) * 2 ** shift;
  for (let i = 0, n = Math.ceil((shift + width) / 8); i < n; i++) {
    const m = mask % 256;
    const b = bits % 256;
    v.setUint8(p + i, (v.getUint8(p + i) & ~m) | b);
    bits = (bits - b) / 256;
    mask = (mask - m) / 256;
  }
}

/** setBits for fields too wide for exact number arithmetic. */
export function setBitsBig(v: DataView, p: number, shift: number, width: number, value: bigint): void {
  let bits = BigInt.asUintN(width, value) << BigInt(shift);
  let mask = ((1n << BigInt(width)) - 1n) << BigInt(shift);
  for (let i = 0, n = Math.ceil((shift + width) / 8); i < n; i++) {
    const m = Number(mask & 0xffn);
    v.setUint8(p + i, (v.getUint8(p + i) & ~m) | Number(bits & 0xffn));
    bits >>= 8n;
    mask >>= 8n;
  }
}

export function getInt128(v: DataView, o: number, signed: boolean): bigint {
  const n = (v.getBigUint64(o + 8, true) << 64n) | v.getBigUint64(o, true);
  return signed ? BigInt.asIntN(128, n) : n;
}

export function setInt128(v: DataView, o: number, x: bigint): void {
  v.setBigUint64(o, BigInt.asUintN(64, x), true);
  v.setBigUint64(o + 8, BigInt.asUintN(64, x >> 64n), true);
}

function show(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "array";
  if (typeof x === "string") return `string ${JSON.stringify(x.length > 20 ? `${x.slice(0, 20)}…` : x)}`;
  if (typeof x === "number" || typeof x === "bigint" || typeof x === "boolean") return `${typeof x} ${String(x)}`;
  return typeof x;
}

/** Throws the encode TypeError: "<path>: expected <what>, got <value>". */
export function fail(path: string, expected: string, got: unknown): never {
  const where = path.startsWith(".") ? path.slice(1) : path || "value";
  throw new TypeError(`${where}: expected ${expected}, got ${show(got)}`);
}

export function failUnknown(path: string, key: string, known: ReadonlySet<string>): never {
  const where = path.startsWith(".") ? path.slice(1) : path;
  const field = where ? `${where}.${key}` : key;
  throw new TypeError(`${field}: unknown field (known: ${[...known].join(", ")})`);
}

export function failRange(o: number, size: number, v: DataView): never {
  throw new RangeError(`codec: ${size} bytes at offset ${o} do not fit in a DataView of ${v.byteLength} bytes`);
}
