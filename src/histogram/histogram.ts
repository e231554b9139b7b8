// Histograms from a map's entries, printed as BCC's table.print_log2_hist and
// print_linear_hist print them, or as JSON. The entries are what iterating a
// BpfMap gives ([key, value] pairs) or any such list:
//
//   slot -> count                      one histogram (key: number or bigint)
//   { bucket, slot } -> count          one section per bucket, as BCC does for a
//                                      struct key: its first field is the section,
//                                      its second the slot (sectionField/slotField
//                                      name others)
//
// A count may be a number, a bigint, an array of them (a per-CPU value: summed)
// or an object with one numeric field (a struct value).
import { UsageError } from "../errors.ts";
import { linearHistLines, log2HistLines, pythonRepr, type Count } from "./format.ts";
import { LINEAR_SLOTS, LOG2_SLOTS, log2Range, log2l } from "./slots.ts";

export type HistogramKind = "log2" | "linear";

/** How entries become sections (BCC's decode_c_struct). */
export interface CollectOptions {
  /** The key field that names a section. Default: the key object's first field. */
  sectionField?: string;
  /** The key field that holds the slot. Default: the key object's second field (BCC skips a `__pad_1` third). */
  slotField?: string;
  /** Maps a section's raw value to the bucket it is counted under (BCC's bucket_fn). */
  bucketFn?: (bucket: any) => unknown;
  /** Orders the buckets (BCC's bucket_sort_fn). Default: the order the entries came in. */
  bucketSortFn?: (buckets: any[]) => any[];
}

export interface PrintOptions extends CollectOptions {
  /** The label of the value column ("usecs", "msecs", "kbytes"). Default "value". */
  valType?: string;
  /** Printed before each section's bucket ("disk", "pid"). Default "Bucket ptr", as BCC. */
  sectionHeader?: string;
  /** Formats a section's bucket. Default: Python's repr, as BCC (`'sda'`, `1234`). */
  sectionPrintFn?: (bucket: any) => string;
  /** Leave out the empty slots before the first one that has a count. */
  stripLeadingZero?: boolean;
}

export interface HistogramSection {
  /** The section's bucket; undefined for a histogram without sections. */
  bucket: unknown;
  /** counts[slot]. */
  counts: bigint[];
}

/** One histogram as JSON (the shape of BCC's print_json_hist, one object per section). */
export interface HistogramJson {
  /** The value column's label. */
  val_type: string;
  /** Slots in order, from the first (log2: 0 -> 1; linear: 0) to the last with a count. */
  data: { "interval-start": number | string; "interval-end": number | string; count: number | string }[];
  /** "YYYY-MM-DD HH:MM:SS", only when asked for (BCC always adds it). */
  ts?: string;
  /** For a section: its header's name holds its bucket, e.g. { "disk": "sda" }. */
  [sectionHeader: string]: unknown;
}

type Entry = readonly [unknown, unknown];

function toCount(v: unknown, where: string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (Array.isArray(v)) return v.reduce((a: bigint, b) => a + toCount(b, where), 0n);
  if (v && typeof v === "object") {
    const fields = Object.values(v);
    if (fields.length === 1) return toCount(fields[0], where);
  }
  throw new UsageError(`histogram count for ${where} is not an integer: ${describe(v)}`);
}

function toSlot(v: unknown, limit: number, kind: HistogramKind): number {
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n >= limit) {
    throw new UsageError(`${kind} histogram slot ${describe(v)} is outside 0..${limit - 1}`);
  }
  return n;
}

function describe(v: unknown): string {
  return typeof v === "bigint" ? `${v}n` : typeof v === "object" ? JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x)) : String(v);
}

// Python dict keys: 1 and 1n, or two equal byte strings, are the same bucket.
function identity(v: unknown): string {
  if (typeof v === "bigint" || typeof v === "number") return `n:${v}`;
  if (v instanceof Uint8Array) return `b:${Buffer.from(v).toString("hex")}`;
  return `j:${JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x instanceof Uint8Array ? Buffer.from(x).toString("hex") : x))}`;
}

function keyFields(key: object, opts: CollectOptions): [string, string] {
  const names = Object.keys(key);
  const section = opts.sectionField ?? names[0];
  let slot = opts.slotField;
  if (slot === undefined) {
    slot = names[1];
    if (slot === "__pad_1" && names.length === 3) slot = names[2];
  }
  if (section === undefined || slot === undefined || !(section in key) || !(slot in key)) {
    throw new UsageError(`a sectioned histogram's key needs a section field and a slot field; got ${describe(key)}`);
  }
  return [section, slot];
}

/** Entries -> sections of counts, BCC's way. A histogram without sections is one section whose bucket is undefined. */
export function collectHistogram(entries: Iterable<Entry>, kind: HistogramKind = "log2", opts: CollectOptions = {}): { sectioned: boolean; sections: HistogramSection[] } {
  const limit = kind === "log2" ? LOG2_SLOTS : LINEAR_SLOTS;
  const plain = new Array<bigint>(limit).fill(0n);
  const byId = new Map<string, HistogramSection>();
  let sectioned: boolean | undefined;
  for (const [key, value] of entries) {
    const isObject = typeof key === "object" && key !== null;
    if (sectioned === undefined) sectioned = isObject;
    else if (sectioned !== isObject) throw new UsageError(`histogram keys mix plain slots and {section, slot} objects (${describe(key)})`);
    if (!isObject) {
      plain[toSlot(key, limit, kind)] = toCount(value, `slot ${describe(key)}`);
      continue;
    }
    const [sf, lf] = keyFields(key, opts);
    const k = key as Record<string, unknown>;
    const bucket = opts.bucketFn ? opts.bucketFn(k[sf]) : k[sf];
    const id = identity(bucket);
    let section = byId.get(id);
    if (!section) byId.set(id, (section = { bucket, counts: new Array<bigint>(limit).fill(0n) }));
    section.counts[toSlot(k[lf], limit, kind)] = toCount(value, describe(key));
  }
  if (!sectioned) return { sectioned: false, sections: [{ bucket: undefined, counts: plain }] };
  let buckets = [...byId.values()].map((s) => s.bucket);
  if (opts.bucketSortFn) buckets = opts.bucketSortFn(buckets);
  return { sectioned: true, sections: buckets.map((b) => byId.get(identity(b))!).filter((s) => s !== undefined) };
}

function histogramText(kind: HistogramKind, entries: Iterable<Entry>, opts: PrintOptions): string {
  const { sectioned, sections } = collectHistogram(entries, kind, opts);
  const lines = kind === "log2" ? log2HistLines : linearHistLines;
  const out: string[] = [];
  for (const s of sections) {
    if (sectioned) {
      const shown = opts.sectionPrintFn ? opts.sectionPrintFn(s.bucket) : pythonRepr(s.bucket);
      out.push("", `${opts.sectionHeader ?? "Bucket ptr"} = ${shown}`);
    }
    out.push(...lines(s.counts, opts.valType ?? "value", opts.stripLeadingZero ?? false));
  }
  return out.map((l) => l + "\n").join("");
}

/** The text BCC's `table.print_log2_hist(...)` prints for these entries (newline-terminated lines). */
export function formatLog2Hist(entries: Iterable<Entry>, opts: PrintOptions = {}): string {
  return histogramText("log2", entries, opts);
}

/** The text BCC's `table.print_linear_hist(...)` prints for these entries (newline-terminated lines). */
export function formatLinearHist(entries: Iterable<Entry>, opts: PrintOptions = {}): string {
  return histogramText("linear", entries, opts);
}

const jsonInt = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v));

function jsonBucket(v: unknown): unknown {
  if (typeof v === "bigint") return jsonInt(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString("latin1").replace(/\0+$/, "");
  return v;
}

export interface JsonOptions extends CollectOptions {
  valType?: string;
  sectionHeader?: string;
  sectionPrintFn?: (bucket: any) => string;
  /** Add BCC's "ts" field (local time, "YYYY-MM-DD HH:MM:SS") from this date. */
  timestamp?: Date;
}

/**
 * The histogram as JSON objects, one per section, in BCC's print_json_hist shape:
 * `{ val_type, data: [{ "interval-start", "interval-end", count }], [sectionHeader]: bucket, ts? }`.
 * Log2 intervals are the printed ranges (0-1, 2-3, 4-7...); linear ones are one value each.
 * Integers above 2^53 are strings.
 */
export function histogramJson(kind: HistogramKind, entries: Iterable<Entry>, opts: JsonOptions = {}): HistogramJson[] {
  const { sectioned, sections } = collectHistogram(entries, kind, opts);
  return sections.map((s) => {
    let last = -1;
    s.counts.forEach((c, i) => {
      if (c !== 0n) last = i;
    });
    const data: HistogramJson["data"] = [];
    for (let i = kind === "log2" ? 1 : 0; i <= last; i++) {
      const [lo, hi] = kind === "log2" ? log2Range(i) : [BigInt(i), BigInt(i)];
      data.push({ "interval-start": jsonInt(lo), "interval-end": jsonInt(hi), count: jsonInt(s.counts[i]!) });
    }
    const out: HistogramJson = { val_type: opts.valType ?? "value", data };
    if (opts.timestamp) out.ts = dateTime(opts.timestamp);
    if (sectioned) out[opts.sectionHeader ?? "Bucket ptr"] = opts.sectionPrintFn ? opts.sectionPrintFn(s.bucket) : jsonBucket(s.bucket);
    return out;
  });
}

const two = (n: number) => String(n).padStart(2, "0");
function dateTime(d: Date): string {
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/**
 * Counts raw values into slots in user space (for values that arrive as events
 * rather than in a map): returns [slot, count] entries for the format functions.
 */
export function bucketize(values: Iterable<number | bigint>, kind: HistogramKind = "log2"): [number, bigint][] {
  const counts = new Map<number, bigint>();
  for (const v of values) {
    const slot = kind === "log2" ? log2l(v) : Number(v);
    counts.set(slot, (counts.get(slot) ?? 0n) + 1n);
  }
  return [...counts.entries()].sort((a, b) => a[0] - b[0]);
}

export type { Count };
