// The printf-style format strings of `tsbpf trace` probes: parsed once into
// literal text and conversions, each conversion saying how the kernel side
// stores its value (a string buffer, or a 64-bit slot holding a value cast to
// the conversion's C type), and formatted in TypeScript for every event.
import { UsageError } from "../../errors.ts";

/** One %-conversion of a format string. */
export interface Conversion {
  /** The conversion as written, e.g. "%-8lld". */
  text: string;
  /** d i u x X o c s p K U */
  conv: string;
  /** "", "hh", "h", "l", "ll", "z", "j" or "t". */
  length: string;
  flags: string;
  width?: number;
  precision?: number;
  /** How the kernel stores the value: a string buffer, a signed or an unsigned 64-bit slot. */
  storage: "string" | "signed" | "unsigned";
  /** The C type the value is cast to before it is widened into its slot. */
  ctype: string;
}

export interface ParsedFormat {
  /** Literal text and conversions, in order. */
  parts: (string | Conversion)[];
  conversions: Conversion[];
}

/** A format string that cannot be used; the message says why and what works. */
export class FormatError extends UsageError {}

const SUPPORTED = "%d %i %u %x %X %o %c %s %p %K %U (with flags -0+ #, a width, a .precision, and h hh l ll z)";

const SIGNED: Record<string, string> = { hh: "signed char", h: "short", "": "int", l: "long", ll: "long long", z: "long", j: "long", t: "long" };
const UNSIGNED: Record<string, string> = {
  hh: "unsigned char", h: "unsigned short", "": "unsigned int", l: "unsigned long", ll: "unsigned long long", z: "unsigned long", j: "unsigned long", t: "unsigned long",
};

/** The text between the quotes of a probe's format, with C's escapes (\n \t \\ \" \xHH \NNN) applied. */
export function unescapeC(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === "x") return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return { n: "\n", t: "\t", r: "\r", a: "\x07", b: "\b", f: "\f", v: "\v", e: "\x1b" }[e] ?? e;
  });
}

/** Parses a printf format (already unescaped). Throws FormatError for conversions tsbpf trace cannot print. */
export function parseFormat(format: string): ParsedFormat {
  const parts: (string | Conversion)[] = [];
  const conversions: Conversion[] = [];
  let literal = "";
  const re = /%(?:(%)|([-0+ #]*)(\d+|\*)?(?:\.(\*|\d*))?(hh|h|ll|l|z|j|t)?([a-zA-Z])?)/g;
  let at = 0;
  for (let m = re.exec(format); m; m = re.exec(format)) {
    literal += format.slice(at, m.index);
    at = re.lastIndex;
    if (m[1]) {
      literal += "%";
      continue;
    }
    const [text, , flags = "", width, precision, length = "", conv] = m;
    if (!conv) throw new FormatError(`"${text}" in the format has no conversion letter; write %% for a literal %. Supported: ${SUPPORTED}`);
    if (width === "*" || precision === "*") throw new FormatError(`"${text}": a width or precision from an argument (*) is not supported; write the number into the format`);
    let storage: Conversion["storage"];
    let ctype: string;
    switch (conv) {
      case "d":
      case "i":
        storage = "signed";
        ctype = SIGNED[length];
        break;
      case "u":
      case "x":
      case "X":
      case "o":
        storage = "unsigned";
        ctype = UNSIGNED[length];
        break;
      case "c":
        if (length) throw new FormatError(`"${text}": %c takes no length modifier`);
        storage = "signed";
        ctype = "char";
        break;
      case "s":
        if (length) throw new FormatError(`"${text}": %s takes no length modifier (wide strings are not supported)`);
        storage = "string";
        ctype = "char *";
        break;
      case "p":
      case "K":
      case "U":
        if (length) throw new FormatError(`"${text}": %${conv} takes no length modifier`);
        storage = "unsigned";
        ctype = "unsigned long long";
        break;
      default:
        throw new FormatError(`"${text}": the conversion %${conv} is not supported. Supported: ${SUPPORTED}`);
    }
    if (literal) parts.push(literal);
    literal = "";
    const c: Conversion = {
      text, conv, length, flags, storage, ctype,
      width: width === undefined ? undefined : Number(width),
      precision: precision === undefined ? undefined : Number(precision || "0"),
    };
    parts.push(c);
    conversions.push(c);
  }
  literal += format.slice(at);
  if (literal) parts.push(literal);
  return { parts, conversions };
}

/** A value read from an event: a string, or a 64-bit integer (signed or unsigned per the conversion). */
export type Value = string | bigint;

export interface FormatContext {
  /** Symbol of a kernel address (%K). */
  ksym?: (addr: bigint) => string;
  /** Symbol of a user address in the event's process (%U). */
  usym?: (addr: bigint) => string;
}

function pad(body: string, c: Conversion, numeric: boolean): string {
  const width = c.width ?? 0;
  if (body.length >= width) return body;
  if (c.flags.includes("-")) return body.padEnd(width);
  if (numeric && c.flags.includes("0") && c.precision === undefined) {
    // Zeros go after the sign or the 0x prefix.
    const m = /^([-+ ]|0[xX])?(.*)$/.exec(body)!;
    const prefix = m[1] ?? "";
    return prefix + m[2].padStart(width - prefix.length, "0");
  }
  return body.padStart(width);
}

/** One conversion of one value, as C's printf writes it. */
export function formatValue(c: Conversion, value: Value, ctx: FormatContext = {}): string {
  if (c.conv === "s") {
    const s = String(value);
    return pad(c.precision === undefined ? s : s.slice(0, c.precision), c, false);
  }
  const n = typeof value === "bigint" ? value : BigInt(value);
  switch (c.conv) {
    case "c":
      return pad(String.fromCharCode(Number(BigInt.asUintN(8, n))), c, false);
    case "K":
      return pad(ctx.ksym ? ctx.ksym(n) : `0x${n.toString(16)}`, c, false);
    case "U":
      return pad(ctx.usym ? ctx.usym(n) : `0x${n.toString(16)}`, c, false);
    case "p":
      return pad(n === 0n ? "(nil)" : `0x${BigInt.asUintN(64, n).toString(16)}`, c, true);
  }
  const negative = n < 0n;
  let digits = (negative ? -n : n).toString(c.conv === "x" || c.conv === "X" ? 16 : c.conv === "o" ? 8 : 10);
  if (c.conv === "X") digits = digits.toUpperCase();
  if (c.precision !== undefined) digits = c.precision === 0 && n === 0n ? "" : digits.padStart(c.precision, "0");
  let prefix = "";
  if (negative) prefix = "-";
  else if (c.conv === "d" || c.conv === "i") prefix = c.flags.includes("+") ? "+" : c.flags.includes(" ") ? " " : "";
  if (c.flags.includes("#") && n !== 0n) {
    if (c.conv === "x") prefix = "0x";
    else if (c.conv === "X") prefix = "0X";
    else if (c.conv === "o" && !digits.startsWith("0")) digits = `0${digits}`;
  }
  return pad(prefix + digits, c, true);
}

/** The message of one event: the format with each conversion replaced by its value. */
export function formatMessage(format: ParsedFormat, values: Value[], ctx: FormatContext = {}): string {
  let out = "";
  let i = 0;
  for (const part of format.parts) out += typeof part === "string" ? part : formatValue(part, values[i++], ctx);
  return out;
}
