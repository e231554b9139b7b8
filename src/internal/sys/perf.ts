// perf_event_open(2): the attr layout (struct perf_event_attr) and the call.
import { native } from "./native.ts";
import { wrapSyscallError } from "./errors.ts";
import { FD } from "./fd.ts";
import { PERF_FLAG_FD_CLOEXEC } from "./constants.ts";

const PERF_ATTR_SIZE = 128; // PERF_ATTR_SIZE_VER7

/** Bits of the u64 flag word at offset 40. */
export const PerfAttrFlag = {
  disabled: 1n << 0n,
  inherit: 1n << 1n,
  excludeUser: 1n << 4n,
  excludeKernel: 1n << 5n,
  freq: 1n << 10n,
  watermark: 1n << 14n,
} as const;

export interface PerfEventAttr {
  type: number;
  config?: bigint | number;
  samplePeriod?: bigint | number;
  sampleType?: bigint | number;
  flags?: bigint;
  /** wakeup_events, or wakeup_watermark (bytes) when flags has `watermark`. */
  wakeup?: number;
  /** config1: kprobe_func / uprobe_path as a string, or a number. */
  config1?: string | bigint;
  /** config2: probe offset or address. */
  config2?: bigint | number;
}

export function perfEventOpen(a: PerfEventAttr, pid: number, cpu: number, groupFd = -1): FD {
  const bytes = new Uint8Array(PERF_ATTR_SIZE);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, a.type, true);
  v.setUint32(4, PERF_ATTR_SIZE, true);
  v.setBigUint64(8, BigInt(a.config ?? 0), true);
  v.setBigUint64(16, BigInt(a.samplePeriod ?? 0), true);
  v.setBigUint64(24, BigInt(a.sampleType ?? 0), true);
  v.setBigUint64(40, a.flags ?? 0n, true);
  v.setUint32(48, a.wakeup ?? 0, true);
  // The string behind config1 must stay alive until the syscall returns.
  let keep: Uint8Array | undefined;
  if (typeof a.config1 === "string") {
    keep = new TextEncoder().encode(`${a.config1}\0`);
    v.setBigUint64(56, native().addressOf(keep), true);
  } else {
    v.setBigUint64(56, a.config1 ?? 0n, true);
  }
  v.setBigUint64(64, BigInt(a.config2 ?? 0), true);
  try {
    const fd = native().perfEventOpen(bytes, pid, cpu, groupFd, PERF_FLAG_FD_CLOEXEC);
    return new FD(fd);
  } catch (err) {
    throw wrapSyscallError(err, "perf_event_open", "perf_event_open");
  } finally {
    keep = undefined;
  }
}

export function ioctl(fd: number, request: number, arg = 0): number {
  try {
    return native().ioctl(fd, request, arg);
  } catch (err) {
    throw wrapSyscallError(err, "ioctl", `ioctl(0x${request.toString(16)})`);
  }
}
