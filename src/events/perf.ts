// The perf buffer (BPF_MAP_TYPE_PERF_EVENT_ARRAY) read in place, as libbpf's
// perf_buffer does: one PERF_COUNT_SW_BPF_OUTPUT event per CPU, stored in the
// map at key = cpu, each with a mapped ring of `pageCount` pages. Records may
// wrap around the end of a ring (it is not double-mapped) and are then joined
// in a scratch buffer.
import { MapType, PerfIoctl, PerfSwConfig, PerfType, PERF_SAMPLE_RAW, PROT_READ, PROT_WRITE } from "../internal/sys/constants.ts";
import type { FD } from "../internal/sys/fd.ts";
import { native } from "../internal/sys/native.ts";
import { ioctl, perfEventOpen, PerfAttrFlag } from "../internal/sys/perf.ts";
import { onlineCpus, pageSize } from "../internal/sys/system.ts";
import type { BpfMap } from "../maps/map.ts";
import { codecFor, type Codec } from "../btf/codec.ts";
import type { Type } from "../btf/types.ts";
import { EventReader, type RawHandler, type ReaderOptions } from "./reader.ts";

const PERF_RECORD_LOST = 2;
const PERF_RECORD_SAMPLE = 9;
// struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size.
const DATA_HEAD = 1024;
const DATA_TAIL = 1032;

export interface PerfReaderOptions<T> extends ReaderOptions<T> {
  /** Data pages per CPU (a power of two; default 64 = 256 KiB with 4 KiB pages). */
  pageCount?: number;
  /**
   * Wake the reader after this many records (wakeup_events; default 1, libbpf's).
   * Larger values mean fewer wake-ups; set `latencyMs` so a quiet CPU's records still arrive.
   */
  wakeupEvents?: number;
  /** Or: wake the reader when this many bytes are waiting (wakeup_watermark). */
  wakeupBytes?: number;
}

class CpuRing {
  readonly cpu: number;
  readonly event: FD;
  readonly #mapping: ArrayBuffer;
  readonly #head: BigInt64Array;
  readonly #tail: BigInt64Array;
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  readonly #dataStart: number;
  readonly #dataSize: number;
  #scratch = new DataView(new ArrayBuffer(256));
  #tailPos: number;

  constructor(cpu: number, event: FD, pages: number) {
    this.cpu = cpu;
    this.event = event;
    const page = pageSize();
    this.#mapping = native().mmap(event.value, (pages + 1) * page, PROT_READ | PROT_WRITE, 0);
    this.#head = new BigInt64Array(this.#mapping, DATA_HEAD, 1);
    this.#tail = new BigInt64Array(this.#mapping, DATA_TAIL, 1);
    this.#view = new DataView(this.#mapping);
    this.#bytes = new Uint8Array(this.#mapping);
    this.#dataStart = page;
    this.#dataSize = pages * page;
    this.#tailPos = Number(Atomics.load(this.#tail, 0));
  }

  drain(sink: RawHandler, onLost: (count: number, cpu: number) => void, reader: { readonly closed: boolean }): number {
    const head = Number(Atomics.load(this.#head, 0)); // acquire
    let tail = this.#tailPos;
    let count = 0;
    const mask = this.#dataSize - 1;
    try {
      while (tail < head && !reader.closed) {
        const at = tail & mask;
        const offset = this.#dataStart + at;
        // Headers are 8-byte aligned in a ring of whole pages: a header never wraps.
        const type = this.#view.getUint32(offset, true);
        const size = this.#view.getUint16(offset + 6, true);
        if (size === 0) break; // not a record: never advance by nothing
        let view = this.#view;
        let base = offset;
        if (at + size > this.#dataSize) {
          view = this.#joined(at, size);
          base = 0;
        }
        tail += size;
        if (type === PERF_RECORD_SAMPLE) {
          count++;
          sink(view, base + 12, view.getUint32(base + 8, true), this.cpu);
        } else if (type === PERF_RECORD_LOST) {
          onLost(Number(view.getBigUint64(base + 16, true)), this.cpu);
        }
      }
    } finally {
      if (tail !== this.#tailPos) {
        this.#tailPos = tail;
        Atomics.store(this.#tail, 0, BigInt(tail)); // release: the kernel may overwrite what we read
      }
    }
    return count;
  }

  /** Whether the kernel has written anything we have not read. */
  pending(): boolean {
    return Number(Atomics.load(this.#head, 0)) !== this.#tailPos;
  }

  /** A record that runs past the end of the ring, copied into one piece. */
  #joined(at: number, size: number): DataView {
    if (this.#scratch.byteLength < size) this.#scratch = new DataView(new ArrayBuffer(Math.max(size, this.#scratch.byteLength * 2)));
    const out = new Uint8Array(this.#scratch.buffer);
    const first = this.#dataSize - at;
    out.set(this.#bytes.subarray(this.#dataStart + at, this.#dataStart + this.#dataSize), 0);
    out.set(this.#bytes.subarray(this.#dataStart, this.#dataStart + size - first), first);
    return this.#scratch;
  }

  release(): void {
    native().munmap(this.#mapping);
    this.event.close();
  }
}

/**
 * A record of `bpf_perf_event_output(skb, &map, BPF_F_CURRENT_CPU | (len << 32), &meta,
 * sizeof(meta))` (or `bpf_skb_output`, or BCC's `perf_submit_skb`): the kernel writes
 * the user's struct, then the first `len` bytes of the packet, in one raw sample whose
 * size it pads to 8 bytes (with the u32 size in front). `packet` is a view into the
 * ring (or into the reader's scratch buffer for a record that wrapped): no copy, and
 * valid only during the handler; copy it (`packet.slice()`) to keep it. It holds the
 * bytes after the struct up to the end of the record, padding included (up to 7 bytes
 * more than `len`), unless `length(event)` says how many are packet: pass it when the
 * struct records the length (as `meta.len = len` before the output).
 */
export function splitPacketRecord<T>(
  codec: Codec<T>, view: DataView, offset: number, size: number, length?: (event: T) => number,
): { event: T; packet: Uint8Array } {
  if (size < codec.size) throw new RangeError(`a perf record of ${size} bytes is shorter than its struct (${codec.size} bytes)`);
  const event = codec.decode(view, offset);
  const rest = size - codec.size;
  const wanted = length ? length(event) : rest;
  const n = Number.isInteger(wanted) && wanted >= 0 ? Math.min(wanted, rest) : rest;
  return { event, packet: new Uint8Array(view.buffer, view.byteOffset + offset + codec.size, n) };
}

export interface PacketOptions<T> {
  /** How many bytes after the struct are packet (e.g. `(e) => e.len`); default: all of them, padding included. */
  length?: (event: T) => number;
}

/**
 * Reads a perf event array map: opens and maps one BPF output event per online
 * CPU and stores it in the map, so `bpf_perf_event_output(ctx, &map,
 * BPF_F_CURRENT_CPU, ...)` reaches it.
 */
export class PerfReader<T = Uint8Array> extends EventReader<T> {
  readonly #rings: CpuRing[] = [];
  readonly #onLost: (count: number, cpu: number) => void;
  readonly #map: BpfMap;
  readonly #decode: Type | Codec<T> | undefined;

  constructor(map: BpfMap, opts: PerfReaderOptions<T> = {}) {
    super(opts);
    this.#map = map;
    this.#decode = opts.decode;
    if (map.type !== MapType.PERF_EVENT_ARRAY) throw new TypeError(`${map.name} is not a perf event array map (BPF_MAP_TYPE_PERF_EVENT_ARRAY)`);
    const pages = opts.pageCount ?? 64;
    if (pages < 1 || (pages & (pages - 1)) !== 0) throw new RangeError(`pageCount must be a power of two, got ${pages}`);
    // With a counter map the program counts every failed output itself (LOST records come late, if at all).
    this.#onLost = (count, cpu) => {
      if (!this.counted) this.addLost(count, cpu);
    };
    try {
      for (const cpu of onlineCpus()) {
        if (cpu >= map.maxEntries) continue; // the map has a slot per CPU it was sized for
        const event = perfEventOpen(
          {
            type: PerfType.SOFTWARE,
            config: PerfSwConfig.BPF_OUTPUT,
            sampleType: PERF_SAMPLE_RAW,
            samplePeriod: 1,
            flags: opts.wakeupBytes ? PerfAttrFlag.watermark : 0n,
            wakeup: opts.wakeupBytes ?? opts.wakeupEvents ?? 1,
          },
          -1,
          cpu,
        );
        let ring: CpuRing;
        try {
          ring = new CpuRing(cpu, event, pages);
        } catch (err) {
          event.close();
          throw err;
        }
        this.#rings.push(ring);
        map.updateBytes(u32(cpu), u32(event.value));
        ioctl(event.value, PerfIoctl.ENABLE, 0);
      }
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /**
   * Calls `handler` with each record split in two (see splitPacketRecord): the
   * user's struct decoded with the `decode` type, and the packet bytes after it as
   * a Uint8Array view into the ring, valid only during the call. For programs that
   * output packet data (`bpf_perf_event_output(skb, ...)` with a length in the flags'
   * upper 32 bits, `bpf_skb_output`, BCC's `perf_submit_skb`). `poll()`/`consume()` drive it as onEvent.
   */
  onPacket(handler: (event: T, packet: Uint8Array, cpu: number) => void, opts: PacketOptions<T> = {}): this {
    const d = this.#decode;
    if (d === undefined) throw new TypeError(`${this.#map.name}: onPacket needs the struct that precedes the packet: open the reader with { decode: coll.type("...") }`);
    const codec = "decode" in d ? (d as Codec<T>) : codecFor<T>(d as Type);
    return this.onRaw((view, offset, size, cpu) => {
      const { event, packet } = splitPacketRecord(codec, view, offset, size, opts.length);
      handler(event, packet, cpu ?? -1);
    });
  }

  protected drain(sink: RawHandler): number {
    let n = 0;
    for (const ring of this.#rings) n += ring.drain(sink, this.#onLost, this);
    return n;
  }

  protected fds(): number[] {
    return this.#rings.map((r) => r.event.value);
  }

  protected override unsignalled(): boolean {
    return this.#rings.some((r) => r.pending());
  }

  protected release(): void {
    for (const ring of this.#rings.splice(0)) {
      // The map holds the event's file too: take it out, or the event outlives the reader.
      if (!this.#map.fd.closed) this.#map.deleteBytes(u32(ring.cpu));
      ring.release();
    }
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
