// What the running kernel supports, found by asking it (cilium/ebpf's features
// package): each probe creates and frees a tiny object once, and the answer is cached.
import * as sys from "../internal/sys/bpf.ts";
import { MapType } from "../internal/sys/constants.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { pageSize } from "../internal/sys/system.ts";

const mapTypes = new Map<number, boolean>();

/**
 * Whether the kernel can create maps of `type`. False when it answers EINVAL
 * (unknown type); a permission error is thrown, since it says nothing about support.
 */
export function haveMapType(type: number): boolean {
  let known = mapTypes.get(type);
  if (known !== undefined) return known;
  const probe = probeAttrs(type);
  try {
    sys.mapCreate({ mapType: type, ...probe, name: "tsbpf_probe" }).close();
    known = true;
  } catch (err) {
    if (!(err instanceof SyscallError) || (err.code !== "EINVAL" && err.code !== "E2BIG" && err.code !== "EOPNOTSUPP")) throw err;
    known = false;
  }
  mapTypes.set(type, known);
  return known;
}

/** The smallest valid key, value and size for a map type. */
function probeAttrs(type: number): { keySize: number; valueSize: number; maxEntries: number } {
  switch (type) {
    case MapType.RINGBUF:
    case MapType.USER_RINGBUF:
      return { keySize: 0, valueSize: 0, maxEntries: pageSize() }; // a power-of-two number of pages
    default:
      return { keySize: 4, valueSize: 4, maxEntries: 1 };
  }
}

/** Ring buffers (BPF_MAP_TYPE_RINGBUF) arrived in Linux 5.8. */
export function haveRingBuf(): boolean {
  return haveMapType(MapType.RINGBUF);
}
