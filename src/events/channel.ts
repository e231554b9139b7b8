// The two halves of an event channel declared with TSBPF_EVENTS (include/tsbpf.h):
// a ring buffer where the kernel has one, a perf buffer otherwise. Before load
// `chooseEventTransport` fixes the map's type and the program's branch; after
// load `openEvents` opens the matching reader.
import type { Collection } from "../collection.ts";
import type { ObjectSpec } from "../object/spec.ts";
import { ObjectError } from "../object/errors.ts";
import { MapType } from "../internal/sys/constants.ts";
import { haveRingBuf } from "../features/index.ts";
import type { EventReader } from "./reader.ts";
import { RingBufReader } from "../ringbuf/reader.ts";
import { PerfReader, type PerfReaderOptions } from "../perf/reader.ts";

export type EventTransport = "ringbuf" | "perf";

/**
 * Picks the transport of the TSBPF_EVENTS map `name` in `spec` (before load):
 * `prefer` if given ("perf" always works; "ringbuf" needs Linux 5.8), else the
 * ring buffer when the kernel has one.
 */
export function chooseEventTransport(spec: ObjectSpec, name = "events", prefer?: EventTransport): EventTransport {
  const map = spec.maps.get(name);
  const flag = spec.variables.get(`${name}_is_ringbuf`);
  if (!map || !flag) {
    throw new ObjectError(`${spec.source} has no event channel "${name}": declare it with TSBPF_EVENTS(${name}, bytes) from <tsbpf.h>`);
  }
  const transport = prefer ?? (haveRingBuf() ? "ringbuf" : "perf");
  if (transport === "perf") {
    Object.assign(map, { type: MapType.PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, maxEntries: 0 });
    flag.set(false);
  } else if (map.type !== MapType.RINGBUF) {
    throw new ObjectError(`event channel "${name}" was already made a perf buffer`);
  }
  return transport;
}

/** Opens the reader for the event channel `name` of a loaded collection, whichever transport it got. */
export function openEvents<T = Uint8Array>(coll: Collection, name = "events", opts: PerfReaderOptions<T> = {}): EventReader<T> {
  const map = coll.map(name);
  if (map.type === MapType.RINGBUF) return new RingBufReader<T>(map, opts);
  return new PerfReader<T>(map, opts);
}
