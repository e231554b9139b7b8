// What the running kernel supports, found by asking it (cilium/ebpf's features
// package): each probe creates and frees a tiny object once, and the answer is
// cached for the process. The hook registry (link/hooks.ts) reads its "the kernel
// must have" from here.
//
// Probe-able: map types (create one), program types (load `r0 = 0; exit`), attach
// types of program types that take an expected attach type at load (cgroup,
// sk_*, flow dissector...), helpers (load a call; the verifier names unknown ones),
// perf PMUs (sysfs), kernel BTF. Not probe-able without a target: tracing, LSM,
// ext and struct_ops program types (their load needs a kernel function's BTF id,
// and lockdown refuses them anyway); haveProgType throws NotSupportedError for those.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as sys from "../internal/sys/bpf.ts";
import { MapFlag, MapType, ProgType } from "../internal/sys/constants.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { pageSize } from "../internal/sys/system.ts";
import { NotSupportedError } from "../errors.ts";
import { traitsOf } from "../maps/traits.ts";
import { probeEventsFile, type DynamicProbeKind } from "../tracing/tracefs.ts";

const cache = new Map<string, boolean>();

function cached(key: string, probe: () => boolean): boolean {
  let known = cache.get(key);
  if (known === undefined) {
    known = probe();
    cache.set(key, known);
  }
  return known;
}

/** Errors that mean "not this kernel" (as opposed to "not allowed", which is thrown). */
function unsupported(err: unknown): boolean {
  return err instanceof SyscallError && ["EINVAL", "E2BIG", "EOPNOTSUPP", "ENOTSUPP", "E524"].includes(err.code);
}

/**
 * Whether the kernel can create maps of `type`. False when it answers EINVAL
 * (unknown type); a permission error is thrown, since it says nothing about support.
 */
export function haveMapType(type: number): boolean {
  return cached(`map:${type}`, () => {
    try {
      if (traitsOf(type).localStorage) {
        createStorageProbe(type);
      } else {
        // Maps of maps need a map of what they hold (inner_map_fd); without one the kernel says EBADF.
        using inner = traitsOf(type).holds === "map" ? sys.mapCreate({ mapType: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, name: "tsbpf_probe" }) : undefined;
        sys.mapCreate({ mapType: type, ...probeAttrs(type), name: "tsbpf_probe", innerMapFd: inner?.value }).close();
      }
      return true;
    } catch (err) {
      if (!unsupported(err)) throw err;
      return false;
    }
  });
}

/**
 * BTF of one type, `int` (id 1): the key and value type a local storage map's
 * probe needs. The kernel refuses such a map without key/value BTF (EINVAL, which
 * read as "no such map type"), as libbpf's and cilium/ebpf's probes know.
 */
export function intOnlyBtf(): Uint8Array {
  const strings = new TextEncoder().encode("\0int\0");
  const typeLen = 16; // btf_type (12) + the int's encoding (4)
  const bytes = new Uint8Array(24 + typeLen + strings.length);
  const v = new DataView(bytes.buffer);
  v.setUint16(0, 0xeb9f, true); // magic
  v.setUint8(2, 1); // version
  v.setUint32(4, 24, true); // hdr_len
  v.setUint32(8, 0, true); // type_off
  v.setUint32(12, typeLen, true); // type_len
  v.setUint32(16, typeLen, true); // str_off
  v.setUint32(20, strings.length, true); // str_len
  v.setUint32(24, 1, true); // name_off: "int"
  v.setUint32(28, 1 << 24, true); // info: BTF_KIND_INT
  v.setUint32(32, 4, true); // size
  v.setUint32(36, (1 << 24) | 32, true); // BTF_INT_SIGNED, 32 bits
  bytes.set(strings, 24 + typeLen);
  return bytes;
}

/** Creates (and frees) a local storage map: BPF_F_NO_PREALLOC, max_entries 0, int key and value BTF. */
function createStorageProbe(type: number): void {
  using btf = sys.btfLoad(intOnlyBtf());
  sys
    .mapCreate({
      mapType: type,
      keySize: 4,
      valueSize: 4,
      maxEntries: 0,
      mapFlags: MapFlag.NO_PREALLOC,
      name: "tsbpf_probe",
      btfFd: btf.value,
      btfKeyTypeId: 1,
      btfValueTypeId: 1,
    })
    .close();
}

/** The smallest valid key, value and size for a map type, from its traits. */
function probeAttrs(type: number): { keySize: number; valueSize: number; maxEntries: number } {
  const t = traitsOf(type);
  if (t.byteSized) return { keySize: 0, valueSize: 0, maxEntries: pageSize() }; // a power-of-two number of pages
  return { keySize: t.noKey ? 0 : 4, valueSize: 4, maxEntries: 1 };
}

/** Ring buffers (BPF_MAP_TYPE_RINGBUF) arrived in Linux 5.8. */
export function haveRingBuf(): boolean {
  return haveMapType(MapType.RINGBUF);
}

// r0 = 0; exit
const RETURN_0 = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

const NEEDS_BTF_TARGET = new Set<number>([ProgType.TRACING, ProgType.LSM, ProgType.EXT, ProgType.STRUCT_OPS]);

function load(progType: number, insns: Uint8Array, expectedAttachType = 0, logBuf?: Uint8Array): void {
  sys.progLoad({ progType, insns, license: "GPL", expectedAttachType, name: "tsbpf_probe", logBuf, logLevel: logBuf ? 1 : 0 }).close();
}

function checkProbeable(progType: number): void {
  if (NEEDS_BTF_TARGET.has(progType)) {
    throw new NotSupportedError(
      "program type probe",
      `program type ${progType} cannot be probed without a kernel function to attach to; load the program and see`,
    );
  }
}

/** Whether the kernel loads programs of `type` (kprobe, tracepoint, xdp...). */
export function haveProgType(type: number): boolean {
  checkProbeable(type);
  return cached(`prog:${type}`, () => {
    try {
      load(type, RETURN_0);
      return true;
    } catch (err) {
      if (!unsupported(err)) throw err;
      return false;
    }
  });
}

/** Whether programs of `progType` load with expected attach type `attachType` (cgroup hooks, sk_lookup...). */
export function haveAttachType(progType: number, attachType: number): boolean {
  checkProbeable(progType);
  return cached(`attach:${progType}:${attachType}`, () => {
    // The cgroup and sockopt programs must return 1 to be valid; r0 = 1; exit.
    const insns = RETURN_0.slice();
    insns[4] = 1;
    try {
      load(progType, insns, attachType);
      return true;
    } catch (err) {
      if (!unsupported(err)) throw err;
      return false;
    }
  });
}

/**
 * Whether programs of `progType` may call helper `helperId` (BPF_FUNC_*). The
 * verifier rejects an unknown or forbidden helper with "invalid func" or
 * "unknown func"; any other rejection means the helper is there (its
 * arguments are wrong, which is what a probe with no arguments gives).
 */
export function haveHelper(progType: number, helperId: number): boolean {
  checkProbeable(progType);
  return cached(`helper:${progType}:${helperId}`, () => {
    if (!haveProgType(progType)) return false;
    // call helperId; r0 = 0; exit
    const insns = new Uint8Array(24);
    insns[0] = 0x85;
    new DataView(insns.buffer).setInt32(4, helperId, true);
    insns.set(RETURN_0, 8);
    const log = new Uint8Array(4096);
    try {
      load(progType, insns, 0, log);
      return true;
    } catch (err) {
      if (!(err instanceof SyscallError)) throw err;
      if (err.code !== "EINVAL" && err.code !== "EACCES" && err.code !== "ENOSPC") throw err;
      const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0))));
      return !/invalid func|unknown func|program of this type cannot use helper/.test(text);
    }
  });
}

const PMU_DIR = "/sys/bus/event_source/devices";

/** A perf PMU's type number (sysfs), or undefined when the kernel has none ("kprobe", "uprobe", "cpu"...). */
export function pmuType(name: string): number | undefined {
  const file = join(PMU_DIR, name, "type");
  if (!existsSync(file)) return undefined;
  return Number.parseInt(readFileSync(file, "utf8"), 10);
}

/** Whether the kernel has the perf PMU `name`. */
export function havePmu(name: string): boolean {
  return pmuType(name) !== undefined;
}

/** The kernel's own BTF (/sys/kernel/btf/vmlinux): needed by tp_btf, fentry/fexit, lsm, iter and CO-RE. */
export function haveKernelBtf(): boolean {
  return existsSync("/sys/kernel/btf/vmlinux");
}

/**
 * Whether the kernel can place kprobes (or uprobes): a dynamic PMU of
 * perf_event_open (4.17+), or tracefs's kprobe_events/uprobe_events.
 */
export function haveDynamicProbes(kind: DynamicProbeKind): boolean {
  return havePmu(kind) || probeEventsFile(kind) !== undefined;
}
