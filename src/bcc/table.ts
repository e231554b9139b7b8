// BCC's table objects (b["name"] in Python, b.get("name") here): a BpfMap
// with BCC's methods — items/keys/values/clear, histograms printed as BCC
// prints them, per-CPU sums, stack walks, and the perf/ring buffer entry
// points whose records `event()` decodes with the struct the program submitted.
import { codecFor, type Codec } from "../btf/codec.ts";
import { resolve, type Type } from "../btf/types.ts";
import { traitsOf } from "../maps/traits.ts";
import { onlineCpus, pageSize } from "../internal/sys/system.ts";
import type { BpfMap } from "../maps/map.ts";
import { mapCodec } from "../maps/codec.ts";
import type { StorageOwner } from "../maps/storage.ts";
import { PerfReader } from "../events/perf.ts";
import { RingBufReader } from "../events/ringbuf.ts";
import type { EventReader } from "../events/reader.ts";
import type { TableInfo, TableKind } from "./dialect.ts";

/** BCC's perf buffer callback: `print_event(cpu, data, size)`. */
export type PerfCallback = (cpu: number, data: Uint8Array, size: number) => void;
/** BCC's ring buffer callback: `callback(ctx, data, size)` (ctx is always null here). */
export type RingCallback = (ctx: null, data: Uint8Array, size: number) => void;
/** Called with the number of records lost since the last call. */
export type LostCallback = (lost: number) => void;

export interface PerfBufferOptions {
  /** Pages per CPU ring (a power of two). Default 8, as BCC. */
  pageCnt?: number;
  /** Called with lost-record counts; default: "Possibly lost N samples" on stderr. */
  lostCb?: LostCallback;
  /** Wake up after this many records (BCC's wakeup_events). Default 1. */
  wakeupEvents?: number;
}

export interface HistOptions {
  /** Header of each section when the key is a struct { bucket; slot }. Default "Bucket ptr". */
  sectionHeader?: string;
  sectionPrintFn?: (bucket: any) => string;
  bucketFn?: (bucket: any) => any;
  /** Skip the zero rows before the first non-zero one. */
  stripLeadingZero?: boolean;
  bucketSortFn?: (buckets: any[]) => any[];
}

/** What a table needs from the BPF object that owns it. */
export interface TableHost {
  /** The struct a perf/ring table's program submits (from the object's BTF), if known. */
  eventType(table: string): Type | undefined;
  /** A new event buffer to poll. */
  addBuffer(buffer: EventBuffer): void;
  /** Records arrived in some buffer. */
  notify(): void;
  /** The object's tsbpf_lost map (ring buffer records a full ring dropped), if it has one. */
  lostCounter?(): BpfMap | undefined;
}

// BCC's table kinds are the map types' names (maps/traits.ts), but for two.
const BCC_NAMES: Partial<Record<string, TableKind>> = { stack_trace: "stacktrace", perf_event_array: "perf_output" };
const SAME_NAMES = new Set<string>([
  "hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash", "ringbuf", "queue", "stack",
  // packet and socket tables (issue 17)
  "devmap", "cpumap", "xskmap", "sockmap", "sockhash", "sk_storage", "inode_storage", "task_storage",
  // maps of maps (issue 16, item 8)
  "array_of_maps", "hash_of_maps",
]);

function kindOfMap(type: number): TableKind | undefined {
  const { name } = traitsOf(type);
  return BCC_NAMES[name] ?? (SAME_NAMES.has(name) ? (name as TableKind) : undefined);
}

const STARS_MAX = 40;
const LOG2_INDEX_MAX = 65;
const LINEAR_INDEX_MAX = 1025;

/** Records copied out of a perf or ring buffer, waiting for the next poll. */
export class EventBuffer {
  readonly kind: "perf" | "ring";
  readonly table: string;
  readonly reader: EventReader;
  readonly #deliver: (cpu: number, data: Uint8Array) => void;
  readonly #lostCb: LostCallback | undefined;
  readonly #limit: number;
  #queue: { cpu: number; data: Uint8Array }[] = [];
  #bytes = 0;
  #lost = 0;

  constructor(kind: "perf" | "ring", table: string, reader: EventReader, limit: number, deliver: (cpu: number, data: Uint8Array) => void, lostCb: LostCallback | undefined, host: TableHost) {
    this.kind = kind;
    this.table = table;
    this.reader = reader;
    this.#deliver = deliver;
    this.#lostCb = lostCb;
    this.#limit = limit;
    // Records are taken out of the kernel's buffer as soon as they arrive, so none are
    // lost while the program sleeps between polls; callbacks still run only in poll/consume.
    reader.onRaw((view, offset, size, cpu) => {
      if (this.#bytes + size > this.#limit) {
        this.#lost++;
        return;
      }
      const data = new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + size));
      this.#queue.push({ cpu: cpu ?? -1, data });
      this.#bytes += size;
      host.notify();
    });
  }

  /** Records lost by the kernel (a full perf or ring buffer) are counted too. */
  addLost(n: number): void {
    this.#lost += n;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Pulls what the kernel has now, then hands every queued record to the callback. */
  deliver(): number {
    this.reader.consume();
    // Brings the reader's loss count up to date: ring buffer drops reach addLost through onLost.
    void this.reader.lost;
    const batch = this.#queue;
    this.#queue = [];
    this.#bytes = 0;
    if (this.#lost > 0) {
      const lost = this.#lost;
      this.#lost = 0;
      if (this.#lostCb) this.#lostCb(lost);
      else process.stderr.write(`Possibly lost ${lost} samples\n`);
    }
    for (const r of batch) this.#deliver(r.cpu, r.data);
    return batch.length;
  }

  close(): void {
    this.#queue = [];
    this.reader.close();
  }
}

export class Table<K = any, V = any> implements Iterable<[K, V]> {
  readonly name: string;
  readonly map: BpfMap<K, V>;
  readonly kind: TableKind | undefined;
  readonly #host: TableHost;
  #codec: Codec | undefined;

  constructor(name: string, map: BpfMap<K, V>, info: TableInfo | undefined, host: TableHost) {
    this.name = name;
    this.map = map;
    this.kind = info?.kind ?? kindOfMap(map.type);
    this.#host = host;
  }

  toString(): string {
    return `Table(${this.name}, ${this.kind ?? `map type ${this.map.type}`})`;
  }

  // ---- elements (BCC: t[k], t[k] = v, del t[k]) ----

  /** The value at `key`, or undefined. Per-CPU tables: an array with one value per CPU. */
  get(key: K): V | undefined {
    return this.map.lookup(key);
  }

  /** Maps of maps also take a table, a BpfMap or a map's fd as the value (BCC's t[k] = inner.get_fd()). */
  set(key: K, value: V | Table): void {
    this.map.update(key, (value instanceof Table ? value.map : value) as V);
  }

  has(key: K): boolean {
    return this.map.lookup(key) !== undefined;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: K): boolean {
    return this.map.delete(key);
  }

  keys(): K[] {
    return [...this.map.keys()];
  }

  values(): V[] {
    return [...this.map.values()];
  }

  /** Every [key, value] (BCC's items()). */
  items(): [K, V][] {
    return [...this.map.entries()];
  }

  [Symbol.iterator](): Iterator<[K, V]> {
    return this.map.entries();
  }

  /** Deletes every key (array tables: zeroes every value). */
  clear(): void {
    this.map.clear();
  }

  /** Sets every existing key's value to zero (BCC's zero()). */
  zero(): void {
    const keyCodec = mapCodec(this.map.keySize, this.map.keyType);
    for (const k of this.keys()) {
      const key = new Uint8Array(this.map.keySize);
      keyCodec.encode(k, new DataView(key.buffer), 0);
      const value = this.map.lookupBytes(key);
      if (value) this.map.updateBytes(key, new Uint8Array(value.length));
    }
  }

  // ---- packet and socket tables (issue 17) ----
  // devmap/cpumap/xskmap/sockmap/sockhash: t.set(index, ifindex | { ifindex, prog } | { qsize, prog } | fd), as BCC's t[k] = v.
  // Local storage (sk/task/inode storage): keyed by the owner, not walkable.

  /** A storage table's value for `owner` (a socket, `{ pid }`, `{ path }` or an fd; see maps/storage.ts). */
  getFor(owner: StorageOwner): V | undefined {
    return this.map.getFor(owner);
  }

  setFor(owner: StorageOwner, value: V): void {
    this.map.setFor(owner, value);
  }

  deleteFor(owner: StorageOwner): boolean {
    return this.map.deleteFor(owner);
  }

  // ---- maps of maps (issue 16, item 8) ----
  // t.set(k, b.get("inner")) puts a table in; t.get(k) reads back the kernel id of the map there.

  /** The map at `key` of a map-of-maps table, opened by its id (a new fd: close it), or undefined when the slot is empty. */
  innerMap(key: K): BpfMap | undefined {
    return this.map.innerMap(key);
  }

  // ---- per-CPU tables ----

  /** The sum over CPUs of a per-CPU table's value at `key`. */
  sum(key: K): number | bigint {
    return this.#perCpu(key).reduce<number | bigint>((a, b) => add(a, b), 0);
  }

  max(key: K): number | bigint {
    return this.#perCpu(key).reduce<number | bigint>((a, b) => (b > a ? b : a), 0);
  }

  average(key: K): number {
    const values = this.#perCpu(key);
    return values.length ? Number(this.sum(key)) / values.length : 0;
  }

  #perCpu(key: K): (number | bigint)[] {
    if (!this.map.perCpu) throw new TypeError(`${this} is not a per-CPU table`);
    return (this.map.lookup(key) as unknown as (number | bigint)[] | undefined) ?? [];
  }

  // ---- stack traces ----

  /** The addresses of stack `stackId` (from .get_stackid()), innermost first; [] when it is not there. */
  walk(stackId: number): bigint[] {
    if (this.kind !== "stacktrace") throw new TypeError(`${this} is not a stack trace table (BPF_STACK_TRACE)`);
    if (stackId < 0) return [];
    return ((this.map.lookup(stackId as K) as unknown as bigint[] | undefined) ?? []).slice();
  }

  // ---- queues and stacks ----

  push(value: V): void {
    this.map.push(value);
  }

  pop(): V | undefined {
    return this.map.pop();
  }

  peek(): V | undefined {
    return this.map.peek();
  }

  // ---- event buffers ----

  /** Calls `callback(cpu, data, size)` for each record of this BPF_PERF_OUTPUT table, from perfBufferPoll(). */
  openPerfBuffer(callback: PerfCallback, opts: PerfBufferOptions = {}): void {
    if (kindOfMap(this.map.type) !== "perf_output") throw new TypeError(`${this} is not a perf output table (BPF_PERF_OUTPUT)`);
    const pageCnt = opts.pageCnt ?? 8;
    let buffer: EventBuffer | undefined;
    const reader = new PerfReader(this.map, { pageCount: pageCnt, wakeupEvents: opts.wakeupEvents, onLost: (n) => buffer?.addLost(n) });
    // Up to what the kernel rings hold queues in memory between polls; more is dropped and reported as lost.
    const limit = Math.max(pageCnt * pageSize() * onlineCpus().length, 1 << 20);
    buffer = new EventBuffer("perf", this.name, reader, limit, (cpu, data) => callback(cpu, data, data.length), opts.lostCb, this.#host);
    this.#host.addBuffer(buffer);
  }

  /** Calls `callback(ctx, data, size)` for each record of this BPF_RINGBUF_OUTPUT table, from ringBufferPoll(). */
  openRingBuffer(callback: RingCallback): void {
    if (kindOfMap(this.map.type) !== "ringbuf") throw new TypeError(`${this} is not a ring buffer table (BPF_RINGBUF_OUTPUT)`);
    let buffer: EventBuffer | undefined;
    // Records the program's ring_output/ring_reserve could not write (a full ring), counted in the kernel.
    const reader = new RingBufReader(this.map, { lostCounter: this.#host.lostCounter?.(), onLost: (n) => buffer?.addLost(n) });
    const limit = Math.max(this.map.maxEntries * 2, 1 << 20);
    buffer = new EventBuffer("ring", this.name, reader, limit, (_cpu, data) => callback(null, data, data.length), undefined, this.#host);
    this.#host.addBuffer(buffer);
  }

  /**
   * The record a perf/ring callback got, decoded as the struct the program
   * submitted (found in the object's BTF): char arrays are strings, 64-bit
   * integers bigints, nested structs objects.
   */
  event(data: Uint8Array | DataView): any {
    if (!this.#codec) {
      const type = this.#host.eventType(this.name);
      if (!type) {
        throw new TypeError(
          `${this}: no event struct is known for this table: the program submits nothing through it, or submits a void pointer ` +
            `(pass a typed pointer, e.g. ${this.name}.perf_submit(ctx, &data, sizeof(data)))`,
        );
      }
      this.#codec = codecFor(type);
    }
    const view = data instanceof DataView ? data : new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (view.byteLength < this.#codec.size) {
      throw new RangeError(`${this}: a record of ${view.byteLength} bytes is shorter than its struct (${this.#codec.size} bytes)`);
    }
    return this.#codec.decode(view, 0);
  }

  // ---- histograms ----

  /** BCC's print_log2_hist: the table holds log2 slots (from bpf_log2l) and their counts. */
  printLog2Hist(valType = "value", opts: HistOptions = {}): void {
    for (const line of this.formatLog2Hist(valType, opts)) console.log(line);
  }

  /** BCC's print_linear_hist: the table holds integer slots and their counts. */
  printLinearHist(valType = "value", opts: HistOptions = {}): void {
    for (const line of this.formatLinearHist(valType, opts)) console.log(line);
  }

  formatLog2Hist(valType = "value", opts: HistOptions = {}): string[] {
    return this.#histogram(LOG2_INDEX_MAX, opts, (vals) => log2HistLines(vals, valType, opts.stripLeadingZero ?? false));
  }

  formatLinearHist(valType = "value", opts: HistOptions = {}): string[] {
    return this.#histogram(LINEAR_INDEX_MAX, opts, (vals) => linearHistLines(vals, valType));
  }

  #histogram(slots: number, opts: HistOptions, lines: (vals: number[]) => string[]): string[] {
    const value = (v: unknown): number =>
      Array.isArray(v) ? v.reduce((a: number, b) => a + Number(b), 0) : typeof v === "object" && v !== null ? Number(Object.values(v)[0]) : Number(v);
    const keyType = this.map.keyType ? resolve(this.map.keyType) : undefined;
    if (keyType?.kind === "struct" && keyType.members.length >= 2) {
      const f1 = keyType.members[0]!.name;
      let f2 = keyType.members[1]!.name;
      if (f2 === "__pad_1" && keyType.members.length === 3) f2 = keyType.members[2]!.name;
      const buckets = new Map<unknown, number[]>();
      for (const [k, v] of this.items()) {
        const key = k as Record<string, unknown>;
        let bucket = key[f1];
        if (opts.bucketFn) bucket = opts.bucketFn(bucket);
        const id = typeof bucket === "bigint" ? `${bucket}n` : JSON.stringify(bucket);
        let entry = [...buckets.entries()].find(([b]) => (typeof b === "bigint" ? `${b}n` : JSON.stringify(b)) === id);
        if (!entry) {
          entry = [bucket, new Array(slots).fill(0)];
          buckets.set(bucket, entry[1]);
        }
        const slot = Number(key[f2]);
        if (slot >= 0 && slot < slots) entry[1][slot] = value(v);
      }
      let order = [...buckets.keys()];
      if (opts.bucketSortFn) order = opts.bucketSortFn(order);
      const out: string[] = [];
      for (const bucket of order) {
        const shown = opts.sectionPrintFn ? opts.sectionPrintFn(bucket) : String(bucket);
        out.push("", `${opts.sectionHeader ?? "Bucket ptr"} = ${shown}`);
        out.push(...lines(buckets.get(bucket)!));
      }
      return out;
    }
    const vals = new Array(slots).fill(0);
    for (const [k, v] of this.items()) {
      const slot = Number(k);
      if (!Number.isInteger(slot) || slot < 0 || slot >= slots) {
        throw new RangeError(`${this}: histogram slot ${String(k)} is outside 0..${slots - 1}`);
      }
      vals[slot] = value(v);
    }
    return lines(vals);
  }
}

function add(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === "bigint" || typeof b === "bigint") return BigInt(a) + BigInt(b);
  return a + b;
}

const padEnd = (s: string | number | bigint, n: number) => String(s).padEnd(n);
const padStart = (s: string | number | bigint, n: number) => String(s).padStart(n);

function stars(val: number, valMax: number, width: number): string {
  let text = "";
  for (let i = 0; ; i++) {
    if (i > (width * val) / valMax - 1 || i > width - 1) break;
    text += "*";
  }
  if (val > valMax) text = text.slice(0, -1) + "+";
  return text;
}

/** BCC's _print_log2_hist, line for line. */
export function log2HistLines(vals: number[], valType: string, stripLeadingZero: boolean): string[] {
  let idxMax = -1;
  let valMax = 0;
  vals.forEach((v, i) => {
    if (v > 0) idxMax = i;
    if (v > valMax) valMax = v;
  });
  const wide = idxMax > 32;
  const out: string[] = [];
  const width = wide ? STARS_MAX / 2 : STARS_MAX;
  if (idxMax > 0) out.push(wide ? `               ${padEnd(valType, 29)} : count     distribution` : `     ${padEnd(valType, 19)} : count     distribution`);
  let strip = stripLeadingZero;
  for (let i = 1; i <= idxMax; i++) {
    let low = (1n << BigInt(i)) >> 1n;
    const high = (1n << BigInt(i)) - 1n;
    if (low === high) low -= 1n;
    const val = vals[i]!;
    const row = wide
      ? `${padStart(low, 20)} -> ${padEnd(high, 20)} : ${padEnd(val, 8)} |${padEnd(stars(val, valMax, width), width)}|`
      : `${padStart(low, 10)} -> ${padEnd(high, 10)} : ${padEnd(val, 8)} |${padEnd(stars(val, valMax, width), width)}|`;
    if (strip) {
      if (val) {
        out.push(row);
        strip = false;
      }
    } else out.push(row);
  }
  return out;
}

/** BCC's _print_linear_hist, line for line. */
export function linearHistLines(vals: number[], valType: string): string[] {
  let idxMax = -1;
  let valMax = 0;
  vals.forEach((v, i) => {
    if (v > 0) idxMax = i;
    if (v > valMax) valMax = v;
  });
  const out: string[] = [];
  if (idxMax >= 0) out.push(`     ${padEnd(valType, 13)} : count     distribution`);
  for (let i = 0; i <= idxMax; i++) {
    const val = vals[i]!;
    out.push(`        ${padEnd(i, 10)} : ${padEnd(val, 8)} |${padEnd(stars(val, valMax, STARS_MAX), STARS_MAX)}|`);
  }
  return out;
}
