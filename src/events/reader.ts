// What the ring buffer and perf buffer readers share: how records reach the
// user (a callback, BCC-style poll/consume, or `for await`), decoding through
// a compiled BTF codec, readiness from the event loop, and disposal. The
// subclasses only know how to walk their memory (`drain`).
import type { Codec } from "../btf/codec.ts";
import { codecFor } from "../btf/codec.ts";
import type { Type } from "../btf/types.ts";
import { native, type FdWatcher } from "../internal/sys/native.ts";
import { MapType } from "../internal/sys/constants.ts";
import { possibleCpus } from "../internal/sys/system.ts";
import type { BpfMap } from "../maps/map.ts";

/**
 * Zero-copy access to one record: `size` bytes at `offset` in `view`. Valid
 * only during the call — the kernel reuses the memory once the reader moves on.
 * `cpu`: the CPU whose ring held it (perf buffers only).
 */
export type RawHandler = (view: DataView, offset: number, size: number, cpu?: number) => void;

export interface ReaderOptions<T> {
  /** Decode records with this BTF type (e.g. `coll.type("event")`) or codec; without it records are bytes. */
  decode?: Type | Codec<T>;
  /**
   * Also drain on a timer every `latencyMs`: with batched wake-ups (the kernel
   * wakes the reader only per batch) this bounds how long a record can wait.
   */
  latencyMs?: number;
  /** Stops the reader (as `close()`), ending iteration. */
  signal?: AbortSignal;
  /**
   * Called with the number of records the kernel dropped because the buffer was
   * full: perf LOST records (per CPU, as they are read), or a ring buffer's
   * per-CPU failure counter (include/tsbpf.h's tsbpf_lost, read at most every
   * `LOST_POLL_MS` while records flow, and at close).
   */
  onLost?: (count: number, cpu: number) => void;
  /**
   * The object's tsbpf_lost map (`coll.map("tsbpf_lost")`, declared by
   * <tsbpf.h>): its per-CPU counts of outputs that failed become this reader's
   * `lost` and `onLost`, counted from the object's load for all the object's
   * buffers together. A ring buffer cannot know its losses without it. A perf
   * reader given one uses it instead of LOST records, which the kernel writes
   * only when a later record finds room (so a flood's last losses would never
   * show), and which miss outputs to a CPU with no reader yet.
   */
  lostCounter?: BpfMap;
}

/** The per-CPU counter of records include/tsbpf.h's ring helpers could not write. */
export const LOST_COUNTER_MAP = "tsbpf_lost";

/** Reads a PERCPU_ARRAY of one u64 (key 0) with one lookup, and gives each CPU's increase since the last read. */
class LostCounter {
  readonly #map: BpfMap;
  readonly #key = new Uint8Array(4);
  readonly #seen: bigint[];

  constructor(map: BpfMap) {
    if (map.type !== MapType.PERCPU_ARRAY || map.valueSize !== 8 || map.keySize !== 4) {
      throw new TypeError(`${map.name} is not a lost counter: expected a BPF_MAP_TYPE_PERCPU_ARRAY of u32 -> u64, as ${LOST_COUNTER_MAP} in <tsbpf.h>`);
    }
    this.#map = map;
    this.#seen = new Array<bigint>(possibleCpus()).fill(0n);
  }

  /** Calls `report(count, cpu)` for each CPU whose count rose. Nothing once the map is closed. */
  read(report: (count: number, cpu: number) => void): void {
    if (this.#map.fd.closed) return;
    const bytes = this.#map.lookupBytes(this.#key);
    if (!bytes) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let cpu = 0; cpu < this.#seen.length && cpu * 8 + 8 <= bytes.byteLength; cpu++) {
      const now = view.getBigUint64(cpu * 8, true);
      const delta = now - this.#seen[cpu]!;
      if (delta > 0n) {
        this.#seen[cpu] = now;
        report(Number(delta), cpu);
      }
    }
  }
}

/** How often a reader whose loss count costs a system call looks at it, while records flow. */
export const LOST_POLL_MS = 250;

export abstract class EventReader<T = Uint8Array> implements AsyncIterable<T>, Disposable {
  /** Records handed to a handler or iterator so far. */
  delivered = 0;
  #lost = 0;
  readonly #onLost: ((count: number, cpu: number) => void) | undefined;
  readonly #counter: LostCounter | undefined;
  readonly #report = (count: number, cpu: number): void => this.addLost(count, cpu);
  #lostCheckedAt = 0;
  readonly #codec: Codec<T> | undefined;
  readonly #latencyMs: number | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.close();
  #sink: RawHandler | undefined;
  /** Push mode: records are consumed as soon as they are readable (onEvent/onRaw). */
  #push = false;
  /** Pull mode: callers waiting for readability (poll, for await). */
  readonly #waiters = new Set<() => void>();
  #watchers: FdWatcher[] | undefined;
  #watching = false;
  #timer: NodeJS.Timeout | undefined;
  #iterating = false;
  /** Inside drain(): a close() from a handler must not unmap the memory being walked. */
  #draining = false;
  #closed = false;

  protected constructor(opts: ReaderOptions<T>) {
    const d = opts.decode;
    this.#codec = d === undefined ? undefined : "decode" in d ? (d as Codec<T>) : codecFor<T>(d as Type);
    this.#latencyMs = opts.latencyMs;
    this.#signal = opts.signal;
    this.#onLost = opts.onLost;
    this.#counter = opts.lostCounter && new LostCounter(opts.lostCounter);
    if (this.#signal?.aborted) queueMicrotask(this.#onAbort);
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Walks every record available now, calling `sink` for each; returns how many.
   * Stops early once `closed` (a handler may close the reader).
   */
  protected abstract drain(sink: RawHandler): number;

  /** The fds that become readable when records arrive. */
  protected abstract fds(): number[];

  /** Releases mappings and fds; called once by close(). */
  protected abstract release(): void;

  /**
   * Reads the loss count kept outside the buffer (the `lostCounter` map) and
   * reports what it gained through `addLost`. A system call: the base calls it
   * at most every LOST_POLL_MS from consume(), from `lost`, and at close.
   */
  protected checkLost(): void {
    this.#counter?.read(this.#report);
  }

  /** Whether losses come from a counter map (then a perf reader ignores LOST records). */
  protected get counted(): boolean {
    return this.#counter !== undefined;
  }

  /** Records the kernel dropped on `cpu`; subclasses report them here. */
  protected addLost(count: number, cpu: number): void {
    if (count <= 0) return;
    this.#lost += count;
    this.#onLost?.(count, cpu);
  }

  /**
   * Records lost before reaching the reader: perf LOST records, or for a ring
   * buffer its tsbpf_lost counter (up to date when read; 0 if it has none).
   */
  get lost(): number {
    if (!this.#closed) this.#refreshLost();
    return this.#lost;
  }

  #refreshLost(): void {
    this.#lostCheckedAt = performance.now();
    this.checkLost();
  }

  /**
   * Whether records may be waiting that the fds did not (or will not) signal.
   * Perf event fds report a wake-up once: the poll epoll makes when the fd is
   * added consumes it, so records written before that are never reported.
   * Ring buffer maps poll level-triggered and need no second look.
   */
  protected unsignalled(): boolean {
    return false;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Calls `handler` with each decoded record (or a copy of its bytes) as records arrive. */
  onEvent(handler: (event: T) => void): this {
    const decode = this.#decoder();
    return this.onRaw((view, offset, size) => handler(decode(view, offset, size)));
  }

  /** Calls `handler` with each record in place (zero-copy) as records arrive. */
  onRaw(handler: RawHandler): this {
    if (this.#iterating) throw new Error("this reader is being iterated with for await; one consumer per reader");
    this.#sink = handler;
    this.#push = true;
    this.#sync();
    // Records already waiting may never signal readiness again (perf wakes once per batch).
    setImmediate(() => this.#push && this.consume());
    return this;
  }

  /**
   * Delivers every record available now to the onEvent/onRaw handler
   * (BCC's ring_buffer_consume / perf_buffer_consume). Returns how many.
   */
  consume(): number {
    if (this.#closed) return 0;
    // A signal aborted before the constructor's listener could run (it closes in a microtask).
    if (this.#signal?.aborted) {
      this.close();
      return 0;
    }
    if (!this.#sink) throw new Error("no handler: call onEvent() or onRaw() first, or iterate with for await");
    let n = 0;
    this.#draining = true;
    try {
      n = this.drain(this.#sink);
    } finally {
      this.#draining = false;
      if (this.#closed) this.release(); // closed by a handler during the drain
    }
    this.delivered += n;
    // Only readers with a counter map pay for the clock.
    if (this.#counter && !this.#closed && performance.now() - this.#lostCheckedAt >= LOST_POLL_MS) this.#refreshLost();
    // poll() waiters in push mode: records handled by any drain count as arrived.
    if (n > 0) for (const wake of [...this.#waiters]) wake();
    return n;
  }

  /**
   * Waits until records are readable or `timeoutMs` passes (-1: no limit), then
   * consumes them (BCC's perf_buffer_poll / ring_buffer_poll). Resolves to how many were handled.
   */
  async poll(timeoutMs = -1): Promise<number> {
    const before = this.delivered;
    if (this.consume() > 0 || timeoutMs === 0) return this.delivered - before;
    await this.#readable(timeoutMs);
    this.consume();
    return this.delivered - before;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#push || this.#iterating) throw new Error("this reader already has a consumer (onEvent/onRaw or another for await)");
    const decode = this.#decoder();
    const queue: T[] = [];
    this.#sink = (view, offset, size) => queue.push(decode(view, offset, size));
    this.#iterating = true;
    try {
      while (!this.#closed) {
        if (this.consume() === 0) {
          await this.#readable(-1);
          continue;
        }
        // Hand out this batch; records arriving meanwhile wait in the kernel's buffer.
        const batch = queue.splice(0);
        for (const event of batch) yield event;
      }
    } finally {
      this.#iterating = false;
      this.#sink = undefined;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#push = false;
    for (const wake of [...this.#waiters]) wake();
    this.#sync();
    for (const w of this.#watchers ?? []) w.close();
    this.#watchers = undefined;
    // The last count, while the counter can still be read.
    this.#refreshLost();
    if (!this.#draining) this.release(); // else consume() releases once the drain has stopped
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Decoded object, or a copy of the bytes (views into the ring do not outlive the call). */
  #decoder(): (view: DataView, offset: number, size: number) => T {
    const codec = this.#codec;
    if (codec) return (view, offset) => codec.decode(view, offset);
    return (view, offset, size) => new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + size)) as T;
  }

  /** Resolves when an fd is readable (or the latency timer fires), after `timeoutMs` (>= 0), or on close. */
  #readable(timeoutMs: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      if (timeoutMs >= 0) timer = setTimeout(wake, timeoutMs);
      this.#waiters.add(wake);
      this.#sync();
    });
  }

  /** One wake-up of the event loop: drain in push mode, wake pull-mode waiters. */
  #onReadable = (): void => {
    if (this.#push) this.consume();
    for (const wake of [...this.#waiters]) wake();
    this.#sync();
  };

  /** After the fds were (re)added to epoll: catch up on records written before that. */
  #recheck = (): void => {
    if (this.#watching && this.unsignalled()) this.#onReadable();
  };

  /** Watch the fds exactly while someone wants records: level-triggered polls must not spin. */
  #sync(): void {
    const want = !this.#closed && (this.#push || this.#waiters.size > 0);
    if (want === this.#watching) return;
    this.#watching = want;
    if (want) {
      this.#watchers ??= this.fds().map((fd) => native().watch(fd, this.#onReadable));
      for (const w of this.#watchers) w.start(true, false);
      if (this.#latencyMs !== undefined) this.#timer = setInterval(this.#onReadable, this.#latencyMs);
      // libuv adds the fds to epoll in its next poll phase; look again after it
      // (two check phases apart, whichever phase this runs in).
      setImmediate(() => setImmediate(this.#recheck));
    } else {
      for (const w of this.#watchers ?? []) w.stop();
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
