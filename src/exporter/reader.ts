// Reading one metric's map: raw keys and values in batches into buffers kept
// from read to read, labels decoded once per distinct key (the series object
// is cached by the key's bytes), values summed over CPUs, and at most
// `seriesLimit` series per metric (the rest counted as dropped). A series keeps
// its label text preformatted for the exposition format, so a scrape of
// 10,000 series allocates little more than one short string per key.
import { BpfCmd, MapType } from "../internal/sys/constants.ts";
import * as sys from "../internal/sys/bpf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { possibleCpus } from "../internal/sys/system.ts";
import type { BpfMap } from "../maps/map.ts";
import type { MetricConfig } from "./config.ts";
import { DROP, makeDecoder, uintOf, type Decoder } from "./decoders.ts";

/** One series of a metric: live, its values change at every read. */
export interface Series {
  readonly labels: readonly string[];
  /** `name="value",...` escaped for the exposition format ("" with no labels). */
  readonly text: string;
  /** Scalars: [value]. Histograms: a count per bound, the count above the last bound, then the sum. */
  readonly v: Float64Array;
}

export interface Snapshot {
  metric: MetricConfig;
  labelNames: string[];
  /** Upper bounds of a histogram's buckets. */
  bounds: number[];
  /** The series seen in this read (live objects: the next read changes them). */
  series: readonly Series[];
  /** Series over the limit in this read. */
  dropped: number;
  readSeconds: number;
}

const PER_CPU = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH]);
const ARRAY = new Set<number>([MapType.ARRAY, MapType.PERCPU_ARRAY]);
const BATCH = 4096;
const DECODE_CACHE_MAX = 200_000;
const NONE: readonly string[] = [];
const EMPTY = new Float64Array(0);

/** Called per entry: the keys buffer and the entry's offset in it, the value summed over CPUs. */
type EntryFn = (keys: Uint8Array, at: number, value: number) => void;

/**
 * Walks a map's entries in batches (5.6+; else get_next_key + lookup) through
 * buffers allocated once and reused for every walk.
 */
export class MapWalker {
  readonly map: BpfMap;
  readonly #cpus: number;
  readonly #stride: number;
  readonly #valueBytes: number;
  readonly #wide: boolean;
  readonly #count: number;
  readonly #keys: Uint8Array;
  readonly #values: Uint8Array;
  readonly #vview: DataView;
  readonly #inBatch: Uint8Array;
  readonly #outBatch: Uint8Array;
  #noBatch = false;

  constructor(map: BpfMap) {
    this.map = map;
    this.#cpus = PER_CPU.has(map.type) ? possibleCpus() : 1;
    this.#stride = PER_CPU.has(map.type) ? Math.ceil(map.valueSize / 8) * 8 : map.valueSize;
    this.#valueBytes = this.#stride * this.#cpus;
    this.#wide = map.valueSize >= 8;
    this.#count = Math.max(1, Math.min(BATCH, map.maxEntries));
    this.#keys = new Uint8Array(map.keySize * this.#count);
    this.#values = new Uint8Array(this.#valueBytes * this.#count);
    this.#vview = new DataView(this.#values.buffer);
    this.#inBatch = new Uint8Array(Math.max(map.keySize, 8));
    this.#outBatch = new Uint8Array(Math.max(map.keySize, 8));
  }

  #sum(base: number): number {
    const v = this.#vview;
    let n = 0;
    for (let c = 0; c < this.#cpus; c++) {
      const at = base + c * this.#stride;
      n += this.#wide ? v.getUint32(at, true) + v.getUint32(at + 4, true) * 0x1_0000_0000 : v.getUint32(at, true);
    }
    return n;
  }

  forEach(fn: EntryFn): void {
    if (this.#noBatch) return this.#slow(fn);
    const fd = this.map.fd.value;
    const ks = this.map.keySize;
    for (let first = true; ; first = false) {
      let r: sys.BatchResult;
      try {
        r = sys.mapBatch(BpfCmd.MAP_LOOKUP_BATCH, fd, { inBatch: first ? undefined : this.#inBatch, outBatch: this.#outBatch, keys: this.#keys, values: this.#values, count: this.#count });
      } catch (err) {
        if (first && err instanceof SyscallError && (err.code === "EINVAL" || err.code === "ENOTSUPP" || err.code === "EOPNOTSUPP" || err.code === "ENOSPC")) {
          this.#noBatch = true;
          return this.#slow(fn);
        }
        throw err;
      }
      for (let i = 0; i < r.count; i++) fn(this.#keys, i * ks, this.#sum(i * this.#valueBytes));
      if (!r.more) return;
      this.#inBatch.set(this.#outBatch);
    }
  }

  #slow(fn: EntryFn): void {
    const fd = this.map.fd.value;
    const ks = this.map.keySize;
    const value = this.#values.subarray(0, this.#valueBytes);
    let prev: Uint8Array | undefined;
    let next = this.#keys.subarray(0, ks);
    const other = this.#inBatch.subarray(0, ks);
    for (;;) {
      if (!sys.mapGetNextKey(fd, prev, next)) return;
      if (sys.mapLookupElem(fd, next, value)) fn(next, 0, this.#sum(0));
      prev = next;
      next = next === other ? this.#keys.subarray(0, ks) : other;
    }
  }
}

/** A map's raw entries: [key bytes, value summed over CPUs] (copies; the reader itself uses MapWalker). */
export function rawEntries(map: BpfMap): [Uint8Array, number][] {
  const out: [Uint8Array, number][] = [];
  new MapWalker(map).forEach((keys, at, value) => out.push([keys.slice(at, at + map.keySize), value]));
  return out;
}

interface LabelPlan {
  offset: number;
  size: number;
  chain: Decoder[];
}

interface SeriesState extends Series {
  /** The read that last zeroed it; -1: over the limit (dropped). */
  epoch: number;
}

/** Reads one metric from one map; keeps the series it admitted under the limit, and counts it carries over a reload. */
export class MetricReader {
  readonly metric: MetricConfig;
  readonly map: BpfMap;
  readonly bounds: number[];
  readonly labelNames: string[];
  readonly #labels: LabelPlan[];
  readonly #bucket: LabelPlan | undefined;
  readonly #walker: MapWalker;
  /** Key bytes (of the labels, bucket excluded) -> its series (or a dropped one), or null when a decoder dropped it. */
  #cache = new Map<number | string, SeriesState | null>();
  /** Series admitted under the limit, by joined label values. */
  readonly #admitted = new Map<string, SeriesState>();
  /** Series over the limit, by joined label values: counted once per read. */
  readonly #over = new Map<string, SeriesState>();
  /** Counts carried from before a reload: added to what the new map holds. */
  #base = new Map<SeriesState, Float64Array>();
  #active: SeriesState[] = [];
  #epoch = 0;
  #dropped = 0;
  readonly #bucketIndex: (key: number) => number;
  readonly #width: number;

  constructor(metric: MetricConfig, map: BpfMap) {
    this.metric = metric;
    this.map = map;
    const plans: LabelPlan[] = [];
    let offset = 0;
    for (const l of metric.labels) {
      plans.push({ offset, size: l.size, chain: l.decoders.map(makeDecoder) });
      offset += l.size + l.padding;
    }
    if (metric.kind === "histogram") this.#bucket = plans.pop();
    this.#labels = plans;
    this.labelNames = (metric.kind === "histogram" ? metric.labels.slice(0, -1) : metric.labels).map((l) => l.name);
    const { bounds, index } = histogramLayout(metric);
    this.bounds = bounds;
    this.#bucketIndex = index;
    this.#width = metric.kind === "histogram" ? bounds.length + 2 : 1;
    this.#walker = new MapWalker(map);
  }

  /** Takes over the counts of the reader this one replaces (same metric and labels, reloaded program). */
  carryFrom(old: MetricReader): void {
    if (this.metric.kind === "gauge") return;
    for (const [sk, s] of old.#admitted) {
      const mine = this.#series(sk, s.labels, false);
      if (s.epoch === old.#epoch && s.v.length === this.#width) this.#base.set(mine, Float64Array.from(s.v));
    }
  }

  #series(sk: string, labels: readonly string[], over: boolean): SeriesState {
    if (over) {
      const s: SeriesState = { labels: NONE, text: "", v: EMPTY, epoch: -1 };
      this.#over.set(sk, s);
      return s;
    }
    const names = this.labelNames;
    let text = "";
    for (let i = 0; i < names.length; i++) text += `${i ? "," : ""}${names[i]}="${escapeLabel(labels[i])}"`;
    const s: SeriesState = { labels, text, v: new Float64Array(this.#width), epoch: 0 };
    this.#admitted.set(sk, s);
    return s;
  }

  /** The series for a key's label bytes: from the cache, else decoded and admitted (or refused) now. */
  #lookup(keys: Uint8Array, at: number, labelBytes: number): SeriesState | null {
    const id = keyId(keys, at, labelBytes);
    const hit = this.#cache.get(id);
    if (hit !== undefined) return hit;
    const labels = this.#decode(keys.subarray(at, at + this.map.keySize));
    let s: SeriesState | null = null;
    if (labels) {
      const sk = labels.join("\u0000");
      s = this.#admitted.get(sk) ?? this.#over.get(sk) ?? this.#series(sk, labels, this.#admitted.size >= this.metric.seriesLimit);
    }
    if (this.#cache.size >= DECODE_CACHE_MAX) this.#cache.clear();
    this.#cache.set(id, s);
    return s;
  }

  read(): Snapshot {
    const t0 = process.hrtime.bigint();
    const m = this.metric;
    const epoch = ++this.#epoch;
    const overEpoch = -1 - epoch; // dropped series: counted once per read
    const nb = this.bounds.length;
    const active = this.#active;
    active.length = 0;
    this.#dropped = 0;
    const skipZero = ARRAY.has(this.map.type);
    const bucket = this.#bucket;
    const labelBytes = bucket ? bucket.offset : this.map.keySize;
    const mult = m.bucketMultiplier ?? 1;
    this.#walker.forEach((keys, at, value) => {
      if (value === 0 && skipZero) return;
      const s = this.#lookup(keys, at, labelBytes);
      if (s === null) return;
      if (s.epoch < 0) {
        if (s.epoch !== overEpoch) {
          s.epoch = overEpoch;
          this.#dropped++;
        }
        return;
      }
      if (s.epoch !== epoch) {
        s.epoch = epoch;
        s.v.fill(0);
        active.push(s);
      }
      if (!bucket) {
        s.v[0] += value;
        return;
      }
      const b = at + bucket.offset;
      const slot = bucket.size === 4 || bucket.size === 8 && keys[b + 4] === 0 && keys[b + 5] === 0 && keys[b + 6] === 0 && keys[b + 7] === 0
        ? (keys[b] | (keys[b + 1] << 8) | (keys[b + 2] << 16) | (keys[b + 3] << 24)) >>> 0
        : Number(uintOf(keys.subarray(b, b + bucket.size)));
      const i = this.#bucketIndex(slot);
      if (i === -2) s.v[nb + 1] += value * mult; // the sum key
      else if (i >= 0) s.v[i] += value;
      else s.v[nb] += value; // above the last bound: +Inf only
    });
    // Counts of a program before its reload: added, also to series the new map has not seen yet.
    for (const [s, base] of this.#base) {
      if (s.epoch !== epoch) {
        s.epoch = epoch;
        s.v.fill(0);
        active.push(s);
      }
      for (let i = 0; i < base.length; i++) s.v[i] += base[i];
    }
    return { metric: m, labelNames: this.labelNames, bounds: this.bounds, series: active, dropped: this.#dropped, readSeconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  }

  #decode(key: Uint8Array): string[] | null {
    const out: string[] = [];
    for (const plan of this.#labels) {
      let v: Uint8Array | string = key.subarray(plan.offset, plan.offset + plan.size);
      for (const d of plan.chain) {
        const r = d(v);
        if (r === DROP) return null;
        v = r;
      }
      out.push(typeof v === "string" ? v : Buffer.from(v).toString("hex"));
    }
    return out;
  }
}

/**
 * A key's label bytes as a Map key: a number when they fit 53 bits (no
 * allocation for most keys), else a latin1 string of the bytes.
 */
function keyId(keys: Uint8Array, at: number, n: number): number | string {
  if (n <= 6 || (n <= 8 && keys[at + 6] < 0x20 && (n === 7 || keys[at + 7] === 0))) {
    let id = 0;
    for (let i = Math.min(n, 7) - 1; i >= 0; i--) id = id * 256 + keys[at + i];
    return id; // one reader's keys all have the same length n
  }
  return Buffer.from(keys.buffer, keys.byteOffset + at, n).toString("latin1");
}

/** A label value escaped for the text format: backslash, double quote and newline. */
export function escapeLabel(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : v;
}


/**
 * A histogram's bucket bounds, and its bucket key -> index in them: -1 above the
 * last bound, -2 for the key one past bucket_max (ebpf_exporter's optional sum).
 */
export function histogramLayout(m: MetricConfig): { bounds: number[]; index: (key: number) => number } {
  if (m.kind !== "histogram") return { bounds: [], index: () => -1 };
  const mult = m.bucketMultiplier ?? 1;
  if (m.bucketType === "fixed") {
    const keys = m.bucketKeys!;
    const pos = new Map(keys.map((k, i) => [k, i]));
    return { bounds: keys.map((k) => k * mult), index: (k) => pos.get(k) ?? -1 };
  }
  const min = m.bucketMin!, max = m.bucketMax!;
  const le = (i: number) => (m.bucketType === "exp2" ? 2 ** i * mult : m.bucketType === "exp2zero" ? (i === 0 ? 0 : 2 ** (i - 1) * mult) : i * mult);
  const bounds: number[] = [];
  for (let i = min; i <= max; i++) bounds.push(le(i));
  return { bounds, index: (k) => (k === max + 1 ? -2 : k > max ? -1 : Math.max(0, k - min)) };
}
