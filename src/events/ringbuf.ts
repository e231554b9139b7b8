// The BPF ring buffer (BPF_MAP_TYPE_RINGBUF) read in place from its mapping,
// as libbpf's ringbuf.c and cilium/ebpf's ringbuf/ring.go do, with no system
// call per record: the consumer page (RW, offset 0) holds consumer_pos; the
// producer page (RO, offset page_size) holds producer_pos and is followed by
// the data pages, mapped twice back to back so no record wraps.
import { BpfCmd, MapType, PROT_READ, PROT_WRITE } from "../internal/sys/constants.ts";
import { fdById } from "../internal/sys/bpf.ts";
import type { FD } from "../internal/sys/fd.ts";
import { native } from "../internal/sys/native.ts";
import { pageSize } from "../internal/sys/system.ts";
import type { BpfMap } from "../maps/map.ts";
import { EventReader, type RawHandler, type ReaderOptions } from "./reader.ts";

const BUSY = 0x80000000; // BPF_RINGBUF_BUSY_BIT: the producer has not committed it yet
const DISCARD = 0x40000000; // BPF_RINGBUF_DISCARD_BIT: committed as discarded
const HEADER = 8; // BPF_RINGBUF_HDR_SZ

/** One mapped ring. Positions are kept as JS numbers: exact up to 2^53 bytes of traffic. */
class Ring {
  /** Our own fd for the map: libuv polls an fd for one watcher only, and the map may be read twice. */
  readonly #fd: FD;
  readonly #consumerMap: ArrayBuffer;
  readonly #producerMap: ArrayBuffer;
  readonly #consumer: BigInt64Array;
  readonly #producer: BigInt64Array;
  readonly #headers: Int32Array;
  readonly #view: DataView;
  readonly #mask: number;
  readonly #dataStart: number;
  #pos: number;

  constructor(map: BpfMap) {
    if (map.type !== MapType.RINGBUF) throw new TypeError(`${map.name} is not a ring buffer map (BPF_MAP_TYPE_RINGBUF)`);
    const page = pageSize();
    const size = map.maxEntries;
    this.#fd = fdById(BpfCmd.MAP_GET_FD_BY_ID, map.info().id);
    try {
      this.#consumerMap = native().mmap(this.fd, page, PROT_READ | PROT_WRITE, 0);
      try {
        this.#producerMap = native().mmap(this.fd, page + 2 * size, PROT_READ, page);
      } catch (err) {
        native().munmap(this.#consumerMap);
        throw err;
      }
    } catch (err) {
      this.#fd.close();
      throw err;
    }
    this.#consumer = new BigInt64Array(this.#consumerMap, 0, 1);
    this.#producer = new BigInt64Array(this.#producerMap, 0, 1);
    this.#headers = new Int32Array(this.#producerMap);
    this.#view = new DataView(this.#producerMap);
    this.#mask = size - 1;
    this.#dataStart = page;
    this.#pos = Number(Atomics.load(this.#consumer, 0));
  }

  get fd(): number {
    return this.#fd.value;
  }

  /** Bytes the producer has committed or reserved beyond the consumer. */
  pending(): number {
    return Number(Atomics.load(this.#producer, 0)) - this.#pos;
  }

  drain(sink: RawHandler, reader: { readonly closed: boolean }): number {
    // Acquire: record headers written before producer_pos are visible after this load.
    const producer = Number(Atomics.load(this.#producer, 0));
    let pos = this.#pos;
    let count = 0;
    try {
      while (pos < producer && !reader.closed) {
        const offset = this.#dataStart + (pos & this.#mask);
        const header = Atomics.load(this.#headers, offset >> 2) >>> 0;
        if (header & BUSY) break; // not committed yet: later records wait behind it
        const length = header & ~(BUSY | DISCARD);
        pos += (length + HEADER + 7) & ~7;
        if (header & DISCARD) continue;
        count++;
        sink(this.#view, offset + HEADER, length);
      }
    } finally {
      // Release: the producer may reuse the space only after our reads above.
      if (pos !== this.#pos) {
        this.#pos = pos;
        Atomics.store(this.#consumer, 0, BigInt(pos));
      }
    }
    return count;
  }

  release(): void {
    native().munmap(this.#producerMap);
    native().munmap(this.#consumerMap);
    this.#fd.close();
  }
}

/**
 * Reads one or more ring buffer maps (like libbpf's ring_buffer__add): with
 * `onEvent`/`onRaw` callbacks, BCC-style `poll()`/`consume()`, or `for await`.
 */
export class RingBufReader<T = Uint8Array> extends EventReader<T> {
  readonly #rings: Ring[] = [];

  constructor(map: BpfMap | BpfMap[], opts: ReaderOptions<T> = {}) {
    super(opts);
    try {
      for (const m of Array.isArray(map) ? map : [map]) this.add(m);
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** Adds another ring buffer to this reader (before it starts watching). */
  add(map: BpfMap): this {
    this.#rings.push(new Ring(map));
    return this;
  }

  /** Bytes waiting to be read, over all rings. */
  pending(): number {
    return this.#rings.reduce((n, r) => n + r.pending(), 0);
  }

  protected drain(sink: RawHandler): number {
    let n = 0;
    for (const ring of this.#rings) n += ring.drain(sink, this);
    return n;
  }

  protected fds(): number[] {
    return this.#rings.map((r) => r.fd);
  }

  protected release(): void {
    for (const ring of this.#rings.splice(0)) ring.release();
  }
}
