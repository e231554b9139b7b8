import { ObjectError } from "../object/errors.ts";

// Kernel configuration text and kernel version strings, parsed without touching
// the system (the reading is in kernel.ts), so unit tests run on fixture text.

/** libbpf's KERNEL_VERSION(): the sublevel saturates at 255, as the kernel's own macro does since 4.14.256. */
export function kernelVersionCode(major: number, minor: number, patch: number): number {
  return ((major << 16) + (minor << 8) + Math.min(patch, 255)) >>> 0;
}

/** What the version is read from: uname's release and version, and Ubuntu's /proc/version_signature when present. */
export interface KernelVersionSource {
  /** uname -r, e.g. "6.1.0-50-cloud-amd64". */
  release: string;
  /** uname -v, e.g. "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-10)". */
  version: string;
  /** Contents of /proc/version_signature (Ubuntu), e.g. "Ubuntu 5.4.0-12.15-generic 5.4.8". */
  versionSignature?: string;
}

/**
 * LINUX_KERNEL_VERSION as libbpf computes it: Ubuntu's signature first, then
 * Debian's "Debian X.Y.Z" in uname -v (their release strings say X.Y.0), then
 * the release. 0 when none of them holds a version.
 */
export function linuxKernelVersion(src: KernelVersionSource): number {
  const triple = (m: RegExpExecArray | null) => (m ? kernelVersionCode(Number(m[1]), Number(m[2]), Number(m[3])) : 0);
  if (src.versionSignature) {
    // "%*s %*s %u.%u.%u": the third word.
    const v = triple(/^\s*\S+\s+\S+\s+(\d+)\.(\d+)\.(\d+)/.exec(src.versionSignature));
    if (v) return v;
  }
  const debian = src.version.indexOf("Debian ");
  if (debian >= 0) {
    const v = triple(/^Debian (\d+)\.(\d+)\.(\d+)/.exec(src.version.slice(debian)));
    if (v) return v;
  }
  return triple(/^(\d+)\.(\d+)\.(\d+)/.exec(src.release));
}

/**
 * The CONFIG_* lines of a kernel .config (the text of /proc/config.gz or
 * /boot/config-*): name -> raw value as written (y, m, n, 42, 0x10, "str").
 * Comments ("# CONFIG_X is not set") and other lines are skipped; a CONFIG_ line
 * without "=" or without a value is an error, as in libbpf.
 */
export function parseKconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let lineNo = 0;
  for (const raw of text.split("\n")) {
    lineNo++;
    const line = raw.replace(/\r$/, "");
    if (!line.startsWith("CONFIG_")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) throw new ObjectError(`kernel config line ${lineNo}: "${line}" has no "="`);
    const value = line.slice(eq + 1);
    if (value === "") throw new ObjectError(`kernel config line ${lineNo}: "${line}" has no value`);
    const name = line.slice(0, eq);
    if (!out.has(name)) out.set(name, value); // the first one wins, as libbpf keeps the first it sets
  }
  return out;
}

/** The kind of C type a .kconfig extern has (libbpf's kcfg_type). */
export type KconfigType = "bool" | "char" | "tristate" | "int" | "char-array";

export interface KconfigSlot {
  name: string;
  type: KconfigType;
  /** Size in bytes (of the whole array for char-array). */
  size: number;
  signed: boolean;
}

/** libbpf's enum libbpf_tristate. */
export const Tristate = { NO: 0, YES: 1, MODULE: 2 } as const;


/**
 * Encodes the raw config value `value` (as parseKconfig returns it) for an extern
 * of `slot`'s type into `out` (slot.size bytes, little-endian), with libbpf's rules:
 * y/m/n for bool (m refused), tristate and char; "..." for char arrays (truncated
 * to fit with its NUL); numbers (decimal, 0x hex, 0 octal, as strtoull) for int,
 * char and bool (0/1), range-checked.
 */
export function encodeKconfigValue(slot: KconfigSlot, value: string, out: Uint8Array): void {
  const { name, type } = slot;
  const c = value[0];
  if (c === "y" || c === "n" || c === "m") {
    if (value.length !== 1) throw new ObjectError(`${name}: value "${value}" is not y, m or n`);
    switch (type) {
      case "bool":
        if (c === "m") throw new ObjectError(`${name}: value 'm' implies a tristate or char type, not bool`);
        out[0] = c === "y" ? 1 : 0;
        return;
      case "tristate":
        new DataView(out.buffer, out.byteOffset).setUint32(0, c === "y" ? Tristate.YES : c === "m" ? Tristate.MODULE : Tristate.NO, true);
        return;
      case "char":
        out[0] = c.charCodeAt(0);
        return;
      default:
        throw new ObjectError(`${name}: value '${c}' implies a bool, tristate or char type`);
    }
  }
  if (c === '"') {
    if (type !== "char-array") throw new ObjectError(`${name}: value ${value} implies a char array type`);
    if (value.length < 2 || !value.endsWith('"')) throw new ObjectError(`${name}: invalid string value ${value}`);
    const bytes = new TextEncoder().encode(value.slice(1, -1));
    const len = Math.min(bytes.length, slot.size - 1); // libbpf truncates, keeping the NUL
    out.fill(0, 0, slot.size);
    out.set(bytes.subarray(0, len), 0);
    return;
  }
  const num = parseConfigInt(value);
  if (num === undefined) throw new ObjectError(`${name}: value "${value}" is not a valid integer`);
  if (type !== "int" && type !== "char" && type !== "bool") {
    throw new ObjectError(`${name}: value ${value} implies an integer type`);
  }
  encodeKconfigNumber(slot, num, out);
}

/** Encodes a number (LINUX_KERNEL_VERSION and the like, or a config integer) for an int, char or bool extern. */
export function encodeKconfigNumber(slot: KconfigSlot, num: bigint, out: Uint8Array): void {
  const { name, type, size } = slot;
  if (type !== "int" && type !== "char" && type !== "bool") {
    throw new ObjectError(`${name}: value ${num} implies an integer, char or bool type`);
  }
  if (type === "bool" && num > 1n) throw new ObjectError(`${name}: value ${num} is not a boolean`);
  const bits = BigInt(size * 8);
  const u = BigInt.asUintN(64, num);
  // libbpf's is_kcfg_value_in_range, on the value as a u64.
  const fits =
    size === 8 ||
    (slot.signed ? BigInt.asUintN(64, u + (1n << (bits - 1n))) < 1n << bits : u >> bits === 0n);
  if (!fits) throw new ObjectError(`${name}: value ${num} does not fit in ${size} byte${size === 1 ? "" : "s"}`);
  const view = new DataView(out.buffer, out.byteOffset, size);
  switch (size) {
    case 1: view.setUint8(0, Number(u & 0xffn)); break;
    case 2: view.setUint16(0, Number(u & 0xffffn), true); break;
    case 4: view.setUint32(0, Number(u & 0xffffffffn), true); break;
    case 8: view.setBigUint64(0, u, true); break;
    default: throw new ObjectError(`${name}: an integer of ${size} bytes`);
  }
}

/** strtoull(value, &end, 0) that must consume everything: decimal, 0x hex, leading-0 octal; a "-" wraps as in C. */
export function parseConfigInt(value: string): bigint | undefined {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(value);
  if (!m) return undefined;
  const digits = m[2]!;
  let n: bigint;
  if (/^0[xX]/.test(digits)) n = BigInt(digits);
  else if (digits.length > 1 && digits[0] === "0") n = BigInt("0o" + digits.slice(1));
  else n = BigInt(digits);
  if (n > 0xffffffffffffffffn) return undefined; // ERANGE
  return m[1] === "-" ? BigInt.asUintN(64, -n) : n;
}
