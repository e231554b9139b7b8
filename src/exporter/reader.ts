// Reading one metric's map: raw keys and values in batches, labels decoded
// once per distinct key, values summed over CPUs, histograms made cumulative,
// and at most `seriesLimit` series per metric (the rest counted as dropped).
import { BpfCmd, MapType } from "../internal/sys/constants.ts";
import * as sys from "../internal/sys/bpf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { possibleCpus } from "../internal/sys/system.ts";
import type { BpfMap } from "../maps/map.ts";
import type { MetricConfig } from "./config.ts";
import { DROP, makeDecoder, uintOf, type Decoder } from "./decoders.ts";

export interface ScalarSeries {
  labels: string[];
  value: number;
}

export interface HistogramSeries {
  labels: string[];
  /** Cumulative counts, one per bound in `bounds` (the +Inf bucket is `count`). */
  cumulative: number[];
  sum: number;
  count: number;
}

export interface Snapshot {
  metric: MetricConfig;
  labelNames: string[];
  /** Upper bounds of a histogram's buckets. */
  bounds: number[];
  scalars: ScalarSeries[];
  histograms: HistogramSeries[];
  /** Series over the limit in this read. */
  dropped: number;
  readSeconds: number;
}

const PER_CPU = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH]);
const ARRAY = new Set<number>([MapType.ARRAY, MapType.PERCPU_ARRAY]);
const BATCH = 4096;
const DECODE_CACHE_MAX = 200_000;

/**
 * Iterates a map's raw entries: [key bytes, value summed over CPUs]. Batched
 * lookups where the kernel has them (5.6+), else get_next_key + lookup.
 */
export function* rawEntries(map: BpfMap): Generator<[Uint8Array, number]> {
  const cpus = PER_CPU.has(map.type) ? possibleCpus() : 1;
  const stride = cpus > 1 || PER_CPU.has(map.type) ? Math.ceil(map.valueSize / 8) * 8 : map.valueSize;
  const valueBytes = stride * cpus;
  const wide = map.valueSize >= 8;
  const sum = (values: DataView, base: number): number => {
    let n = 0;
    for (let c = 0; c < cpus; c++) {
      const at = base + c * stride;
      n += wide ? values.getUint32(at, true) + values.getUint32(at + 4, true) * 0x1_0000_0000 : values.getUint32(at, true);
    }
    return n;
  };
  const fd = map.fd.value;
  const count = Math.max(1, Math.min(BATCH, map.maxEntries));
  const keys = new Uint8Array(map.keySize * count);
  const values = new Uint8Array(valueBytes * count);
  const vview = new DataView(values.buffer);
  let inBatch: Uint8Array | undefined;
  const outBatch = new Uint8Array(Math.max(map.keySize, 8));
  for (let first = true; ; first = false) {
    let r: sys.BatchResult;
    try {
      r = sys.mapBatch(BpfCmd.MAP_LOOKUP_BATCH, fd, { inBatch, outBatch, keys, values, count });
    } catch (err) {
      if (first && err instanceof SyscallError && (err.code === "EINVAL" || err.code === "ENOTSUPP" || err.code === "EOPNOTSUPP" || err.code === "ENOSPC")) {
        yield* slowEntries(map, valueBytes, sum);
        return;
      }
      throw err;
    }
    for (let i = 0; i < r.count; i++) yield [keys.slice(i * map.keySize, (i + 1) * map.keySize), sum(vview, i * valueBytes)];
    if (!r.more) return;
    inBatch = outBatch.slice();
  }
}

function* slowEntries(map: BpfMap, valueBytes: number, sum: (v: DataView, base: number) => number): Generator<[Uint8Array, number]> {
  const fd = map.fd.value;
  const value = new Uint8Array(valueBytes);
  const view = new DataView(value.buffer);
  let prev: Uint8Array | undefined;
  for (;;) {
    const next = new Uint8Array(map.keySize);
    if (!sys.mapGetNextKey(fd, prev, next)) return;
    if (sys.mapLookupElem(fd, next, value)) yield [next, sum(view, 0)];
    prev = next;
  }
}

interface LabelPlan {
  offset: number;
  size: number;
  chain: Decoder[];
}

/** Reads one metric from one map; keeps the series it admitted under the limit, and counts it carries over a reload. */
export class MetricReader {
  readonly metric: MetricConfig;
  readonly map: BpfMap;
  readonly bounds: number[];
  readonly #labels: LabelPlan[];
  readonly #bucket: LabelPlan | undefined;
  /** Key bytes (of the labels, bucket excluded) -> decoded label values, or null when dropped. */
  #cache = new Map<string, string[] | null>();
  /** Series admitted under the limit, by joined label values. */
  readonly #admitted = new Set<string>();
  /** Counts carried from before a reload, by series: added to what the new map holds. */
  #base = new Map<string, number[]>();
  /** The last values read, by series (for a reload to carry). */
  #last = new Map<string, number[]>();
  readonly #bucketIndex: (key: number) => number;

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
    const { bounds, index } = histogramLayout(metric);
    this.bounds = bounds;
    this.#bucketIndex = index;
  }

  /** Takes over the counts of the reader this one replaces (same metric, reloaded program). */
  carryFrom(old: MetricReader): void {
    if (this.metric.kind === "gauge") return;
    for (const [k, v] of old.#last) this.#base.set(k, v);
    for (const k of old.#admitted) this.#admitted.add(k);
  }

  read(): Snapshot {
    const t0 = process.hrtime.bigint();
    const m = this.metric;
    const histogram = m.kind === "histogram";
    const nb = this.bounds.length;
    // series key -> [value] for scalars; [count per bound..., +Inf, sum] for histograms
    const acc = new Map<string, { labels: string[]; v: number[] }>();
    let dropped = 0;
    const droppedKeys = new Set<string>();
    const skipZero = ARRAY.has(this.map.type);
    const labelsBytes = this.#bucket ? this.#bucket.offset : this.map.keySize;
    for (const [key, value] of rawEntries(this.map)) {
      if (value === 0 && skipZero) continue;
      const id = Buffer.from(key.buffer, key.byteOffset, labelsBytes).toString("latin1");
      let labels = this.#cache.get(id);
      if (labels === undefined) {
        labels = this.#decode(key);
        if (this.#cache.size >= DECODE_CACHE_MAX) this.#cache.clear();
        this.#cache.set(id, labels);
      }
      if (labels === null) continue;
      const sk = labels.join("\u0000");
      let entry = acc.get(sk);
      if (!entry) {
        if (!this.#admitted.has(sk)) {
          if (this.#admitted.size >= m.seriesLimit) {
            if (!droppedKeys.has(sk)) {
              droppedKeys.add(sk);
              dropped++;
            }
            continue;
          }
          this.#admitted.add(sk);
        }
        entry = { labels, v: new Array(histogram ? nb + 2 : 1).fill(0) };
        acc.set(sk, entry);
      }
      if (!histogram) {
        entry.v[0] += value;
        continue;
      }
      const slot = Number(uintOf(key.subarray(this.#bucket!.offset, this.#bucket!.offset + this.#bucket!.size)));
      const i = this.#bucketIndex(slot);
      if (i === -2) entry.v[nb + 1] += value * (m.bucketMultiplier ?? 1); // the sum key
      else if (i >= 0) entry.v[i] += value;
      else entry.v[nb] += value; // above the last bound: +Inf only
    }
    // Series of a program before its reload that the new map has not seen yet.
    for (const [sk, base] of this.#base) {
      if (!acc.has(sk)) acc.set(sk, { labels: sk.split("\u0000"), v: new Array(base.length).fill(0) });
    }
    const scalars: ScalarSeries[] = [];
    const histograms: HistogramSeries[] = [];
    const last = new Map<string, number[]>();
    for (const [sk, { labels, v }] of acc) {
      const base = this.#base.get(sk);
      if (base) for (let i = 0; i < v.length && i < base.length; i++) v[i] += base[i];
      last.set(sk, v);
      if (!histogram) {
        scalars.push({ labels: labels.length ? labels : [], value: v[0] });
        continue;
      }
      const cumulative = new Array<number>(nb);
      let c = 0;
      for (let i = 0; i < nb; i++) cumulative[i] = c += v[i];
      histograms.push({ labels, cumulative, sum: v[nb + 1], count: c + v[nb] });
    }
    this.#last = last;
    const labelNames = (histogram ? m.labels.slice(0, -1) : m.labels).map((l) => l.name);
    return { metric: m, labelNames, bounds: this.bounds, scalars, histograms, dropped, readSeconds: Number(process.hrtime.bigint() - t0) / 1e9 };
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
