// The two halves of an event channel declared with TSBPF_EVENTS (include/tsbpf.h):
// a ring buffer where the kernel has one, a perf buffer otherwise. Before load
// `chooseEventTransport` fixes the map's type, the program's branch and its
// wake-up batching; after load `openEvents` opens the matching reader, with the
// object's loss counter and a latency bound when wake-ups are batched.
// The top of the events layer: it imports the readers, they never import it.
import type { Collection } from "../collection.ts";
import type { ObjectSpec } from "../object/spec.ts";
import { ObjectError } from "../object/errors.ts";
import { MapType } from "../internal/sys/constants.ts";
import { onlineCpus, pageSize } from "../internal/sys/system.ts";
import { haveRingBuf } from "../features/index.ts";
import { LOST_COUNTER_MAP, type EventReader } from "./reader.ts";
import { RingBufReader } from "./ringbuf.ts";
import { PerfReader, type PerfReaderOptions } from "./perf.ts";

export type EventTransport = "ringbuf" | "perf";

export interface EventTransportOptions {
  /**
   * Batched wake-ups: the reader is woken once per this many bytes of records
   * (ring buffer: `NAME_wakeup_bytes` of TSBPF_EVENTS; perf buffer: the
   * watermark), and `openEvents` drains on a timer so no record waits longer
   * than its `latencyMs`. 0 or absent: a wake-up per record, as the kernel does.
   * Capped at a quarter of the buffer, so that a late reader still finds room.
   */
  wakeupBytes?: number;
}

/** The drain timer openEvents uses when wake-ups are batched and no `latencyMs` is given. */
export const DEFAULT_LATENCY_MS = 50;

/**
 * Picks the transport of the TSBPF_EVENTS map `name` in `spec` (before load):
 * `prefer` if given ("perf" always works; "ringbuf" needs Linux 5.8), else the
 * ring buffer when the kernel has one.
 */
export function chooseEventTransport(spec: ObjectSpec, name = "events", prefer?: EventTransport, opts: EventTransportOptions = {}): EventTransport {
  const map = spec.maps.get(name);
  const flag = spec.variables.get(`${name}_is_ringbuf`);
  if (!map || !flag) {
    throw new ObjectError(`${spec.source} has no event channel "${name}": declare it with TSBPF_EVENTS(${name}, bytes) from <tsbpf.h>`);
  }
  const transport = prefer ?? (haveRingBuf() ? "ringbuf" : "perf");
  const ringBytes = map.maxEntries;
  if (transport === "perf") {
    Object.assign(map, { type: MapType.PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, maxEntries: 0 });
    flag.set(false);
  } else if (map.type !== MapType.RINGBUF) {
    throw new ObjectError(`event channel "${name}" was already made a perf buffer`);
  }
  if (opts.wakeupBytes) {
    const wakeup = spec.variables.get(`${name}_wakeup_bytes`);
    if (!wakeup) throw new ObjectError(`${spec.source} was built with an older <tsbpf.h>: its channel "${name}" has no ${name}_wakeup_bytes`);
    // The perf reader caps it again against its own per-CPU ring (openEvents).
    wakeup.set(BigInt(transport === "ringbuf" ? Math.min(opts.wakeupBytes, ringBytes / 4) : opts.wakeupBytes));
  }
  return transport;
}

export type EventChannelOptions<T> = PerfReaderOptions<T>;

/**
 * Opens the reader for the event channel `name` of a loaded collection, whichever
 * transport it got. The reader counts its losses with the object's tsbpf_lost
 * map (tsbpf_events_output() counts each output that failed); batched wake-ups (chooseEventTransport's `wakeupBytes`) get a
 * drain timer (`latencyMs`, default DEFAULT_LATENCY_MS).
 */
export function openEvents<T = Uint8Array>(coll: Collection, name = "events", opts: EventChannelOptions<T> = {}): EventReader<T> {
  const map = coll.map(name);
  const batched = Number(coll.spec.variables.get(`${name}_wakeup_bytes`)?.get() ?? 0n);
  const latencyMs = opts.latencyMs ?? (batched ? DEFAULT_LATENCY_MS : undefined);
  // tsbpf_events_output() counts every output that failed, on either transport.
  const lostCounter = opts.lostCounter ?? coll.maps.get(LOST_COUNTER_MAP);
  if (map.type === MapType.RINGBUF) return new RingBufReader<T>(map, { ...opts, latencyMs, lostCounter });
  const pages = opts.pageCount ?? DEFAULT_PERF_PAGES;
  const wanted = opts.wakeupBytes ?? batched;
  const wakeupBytes = wanted ? Math.min(wanted, (pages * pageSize()) / 4) : undefined;
  return new PerfReader<T>(map, { ...opts, latencyMs, wakeupBytes, pageCount: pages, lostCounter });
}

/**
 * Opens channel `name` for records that carry packet bytes after their struct
 * (`bpf_perf_event_output(skb, ...)`, `bpf_skb_output`): only a perf buffer can
 * hold them, so a TSBPF_EVENTS channel must have been given "perf" by
 * chooseEventTransport before load. Read them with the reader's `onPacket`.
 */
export function openPacketEvents<T>(coll: Collection, name = "events", opts: EventChannelOptions<T> = {}): PerfReader<T> {
  const map = coll.map(name);
  if (map.type !== MapType.PERF_EVENT_ARRAY) {
    throw new ObjectError(
      `map ${name} is not a perf event array: packet data goes out only through a perf buffer ` +
        `(declare it BPF_MAP_TYPE_PERF_EVENT_ARRAY, or pass "perf" to chooseEventTransport() before load)`,
    );
  }
  return openEvents<T>(coll, name, opts) as PerfReader<T>;
}

/** PerfReader's own default (64 pages per CPU). */
const DEFAULT_PERF_PAGES = 64;

/**
 * Options that keep a reader up with a flood (what the CLI tools use): batched
 * wake-ups, once per 256 KiB instead of per record (the wake-up, not the read,
 * is what costs a reader), bounded by a 50 ms drain timer; and, for kernels
 * without a ring buffer, perf rings of 8 MiB in all (64 to 1024 pages per CPU).
 * For both chooseEventTransport() and openEvents().
 */
export function keepUpOptions(): { wakeupBytes: number; latencyMs: number; pageCount: number } {
  const pages = (8 << 20) / pageSize() / Math.max(1, onlineCpus().length);
  const pageCount = Math.min(1024, Math.max(64, 2 ** Math.floor(Math.log2(pages))));
  return { wakeupBytes: 256 << 10, latencyMs: 50, pageCount };
}
