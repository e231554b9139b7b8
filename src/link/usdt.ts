// USDT probes attached the way libbpf's usdt.c does it, for programs written
// with <bpf/usdt.bpf.h> (BPF_USDT, bpf_usdt_arg, bpf_usdt_cookie) and for the
// BCC facade's bpf_usdt_readarg (bcc/usdt.ts emits the same protocol):
//   - every location of provider:name gets a uprobe (the uprobe PMU, else tracefs),
//     with the semaphore's file offset as its ref_ctr_offset, so the kernel
//     counts the semaphore up while attached and down at detach;
//   - each location's argument specs go into the __bpf_usdt_specs array under a
//     spec id, and the uprobe's bpf_link carries that id as its BPF cookie
//     (5.15+; usdt.bpf.h's LINUX_HAS_BPF_COOKIE path). Without cookies libbpf
//     falls back to an IP -> spec id map; tsbpf refuses instead, saying so.
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { NotSupportedError } from "../errors.ts";
import { ElfFile } from "../elf/index.ts";
import { findUsdtProbe, parseUsdtArgs, readUsdtProbes, USDT_MAX_ARGS, type UsdtArg, type UsdtProbe } from "../elf/usdt.ts";
import { linkCreate, mapInfo, mapUpdateElem } from "../internal/sys/bpf.ts";
import { AttachType } from "../internal/sys/constants.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import type { FD } from "../internal/sys/fd.ts";
import { failuresOf } from "../internal/settle.ts";
import { AttachError } from "./errors.ts";
import { Link, type AttachableProgram } from "./link.ts";
import { openProbe } from "./probe.ts";
import { resolveBinary } from "./uprobe.ts";

export interface UsdtOptions {
  /** The binary or library holding the probe: a path, a program on PATH or a library name. */
  binary: string;
  provider: string;
  name: string;
  /** Only this process (default: every process running the binary). */
  pid?: number;
  /** What bpf_usdt_cookie() returns in the program (default 0). */
  cookie?: bigint;
}

/** The maps of usdt.bpf.h, by their names in the object. */
export const USDT_SPECS_MAP = "__bpf_usdt_specs";
export const USDT_IP_MAP = "__bpf_usdt_ip_to_spec_id";

// struct __bpf_usdt_arg_spec (usdt.bpf.h): u64 val_off; enum arg_type (u32);
// short reg_off; bool arg_signed; char arg_bitshift = 16 bytes. Newer libbpf packs
// SIB fields into the enum's upper bits; a value below 256 there means the same.
const ARG_SPEC_SIZE = 16;
// struct __bpf_usdt_spec: args[12]; u64 usdt_cookie; short arg_cnt (+ padding to 8).
export const USDT_SPEC_SIZE = ARG_SPEC_SIZE * USDT_MAX_ARGS + 8 + 8;
const ARG_CONST = 0;
const ARG_REG = 1;
const ARG_REG_DEREF = 2;

/** The bytes of one __bpf_usdt_spec for a location's arguments (pure). */
export function encodeUsdtSpec(args: readonly UsdtArg[], cookie = 0n): Uint8Array {
  if (args.length > USDT_MAX_ARGS) throw new AttachError(`a USDT probe with ${args.length} arguments: usdt.bpf.h takes at most ${USDT_MAX_ARGS}`, { hook: "usdt", reason: "too many arguments" });
  const bytes = new Uint8Array(USDT_SPEC_SIZE);
  const v = new DataView(bytes.buffer);
  args.forEach((a, i) => {
    const o = i * ARG_SPEC_SIZE;
    const valOff = a.kind === "const" ? a.value : a.kind === "mem" ? a.offset : 0n;
    v.setBigUint64(o, BigInt.asUintN(64, valOff), true);
    v.setUint32(o + 8, a.kind === "const" ? ARG_CONST : a.kind === "reg" ? ARG_REG : ARG_REG_DEREF, true);
    v.setInt16(o + 12, a.kind === "const" ? 0 : a.reg.offset, true);
    v.setUint8(o + 14, a.signed ? 1 : 0);
    v.setInt8(o + 15, 64 - a.size * 8);
  });
  v.setBigUint64(ARG_SPEC_SIZE * USDT_MAX_ARGS, BigInt.asUintN(64, cookie), true);
  v.setInt16(ARG_SPEC_SIZE * USDT_MAX_ARGS + 8, args.length, true);
  return bytes;
}

// Spec ids in use per specs map (by the map's kernel id: every program of an
// object shares the map, so they share its ids, as libbpf's usdt_manager does).
const usedIds = new Map<number, Set<number>>();

function allocateIds(mapId: number, capacity: number, count: number): number[] {
  const used = usedIds.get(mapId) ?? new Set<number>();
  usedIds.set(mapId, used);
  const ids: number[] = [];
  for (let id = 0; id < capacity && ids.length < count; id++) if (!used.has(id)) ids.push(id);
  if (ids.length < count) {
    throw new AttachError(`the object's ${USDT_SPECS_MAP} map has ${capacity} entries and ${used.size} are in use; this probe needs ${count} more`, {
      hook: "usdt",
      reason: "no free USDT spec ids",
      suggestion: "#define BPF_USDT_MAX_SPEC_CNT to a larger number before including usdt.bpf.h",
    });
  }
  for (const id of ids) used.add(id);
  return ids;
}

function freeIds(mapId: number, ids: readonly number[]): void {
  const used = usedIds.get(mapId);
  for (const id of ids) used?.delete(id);
  if (used?.size === 0) usedIds.delete(mapId);
}

/** A USDT attachment: a uprobe link per location, and the spec ids it holds. */
export class UsdtLink extends Link {
  /** One link per probe location. */
  readonly links: readonly Link[];
  /** The probe locations, in the order of `links`. */
  readonly probes: readonly UsdtProbe[];
  readonly #release: () => unknown;

  constructor(target: string, links: Link[], probes: UsdtProbe[], release: () => unknown) {
    super(target, undefined);
    this.links = links;
    this.probes = probes;
    this.#release = release;
  }

  override close(): void {
    if (this.closed) return;
    super.close();
    const errors: unknown[] = [];
    for (const l of this.links) {
      try {
        l.close();
      } catch (err) {
        errors.push(err);
      }
    }
    this.#release();
    if (errors.length) throw errors[0];
  }

  override async closeAsync(): Promise<void> {
    if (this.closed) return;
    await super.closeAsync();
    const failures = await failuresOf(this.links.map((l) => l.closeAsync()));
    this.#release();
    if (failures.length) throw failures[0];
  }
}

type UsdtCapable = AttachableProgram & { referencedMapFd?(name: string): number | undefined };

/** The binary a pid-only target means: what /proc/PID/exe points at. */
function binaryOf(path: string, pid: number | undefined): string {
  if (path === "" && pid !== undefined) {
    try {
      return realpathSync(`/proc/${pid}/exe`);
    } catch (err) {
      throw new AttachError(`cannot find process ${pid}'s binary: ${(err as Error).message}`, { cause: err, hook: "usdt", target: `pid ${pid}`, reason: "no such process" });
    }
  }
  return realpathSync(resolveBinary(path));
}

/** The probe locations of provider:name in a binary, or an AttachError naming what the binary has. */
export function usdtLocations(path: string, provider: string, name: string): UsdtProbe[] {
  const elf = new ElfFile(new Uint8Array(readFileSync(path)), path);
  const found = findUsdtProbe(elf, provider || undefined, name);
  if (found.length) return found;
  const all = readUsdtProbes(elf);
  const have = [...new Set(all.map((p) => `${p.provider}:${p.name}`))];
  const target = `${path}:${provider}:${name}`;
  throw new AttachError(
    all.length
      ? `no USDT probe ${provider}:${name} in ${path}; it has ${have.slice(0, 12).join(", ")}${have.length > 12 ? ` and ${have.length - 12} more` : ""}`
      : `no USDT probe ${provider}:${name} in ${path}: it has no USDT probes at all (no .note.stapsdt section)`,
    { hook: "usdt", target, reason: "no such USDT probe", suggestion: all.length ? "use one of the probes the binary has" : "probe a binary built with <sys/sdt.h> probes" },
  );
}

/** Attaches `prog` (written with usdt.bpf.h) to every location of USDT probe provider:name. */
export function attachUsdt(prog: AttachableProgram, opts: UsdtOptions): UsdtLink {
  const path = binaryOf(opts.binary, opts.pid);
  const target = `usdt:${path}:${opts.provider}:${opts.name}`;
  // A program that reads no arguments (no usdt.bpf.h spec map) still gets its uprobes and semaphores.
  const specsFd = (prog as UsdtCapable).referencedMapFd?.(USDT_SPECS_MAP);
  const probes = usdtLocations(path, opts.provider, opts.name);
  // Identical specs share an id, as in libbpf (one per distinct argument text).
  const specTexts = [...new Set(probes.map((p) => p.argText))];
  const specs = specsFd !== undefined ? specTexts.map((t) => encodeUsdtSpec(parseUsdtArgs(t), opts.cookie ?? 0n)) : [];
  const info = specsFd !== undefined ? mapInfo(specsFd) : undefined;
  if (info && info.valueSize !== USDT_SPEC_SIZE) {
    throw new AttachError(`program ${prog.name}'s ${USDT_SPECS_MAP} map has ${info.valueSize}-byte values, not the ${USDT_SPEC_SIZE} bytes of usdt.bpf.h's struct __bpf_usdt_spec`, { hook: "usdt", target, reason: "unknown usdt.bpf.h layout" });
  }
  const ids = info ? allocateIds(info.id, info.maxEntries, specs.length) : specTexts.map(() => 0);
  const release = () => info && freeIds(info.id, ids);
  const links: Link[] = [];
  try {
    if (specsFd !== undefined) {
      specs.forEach((spec, i) => {
        const key = new Uint8Array(4);
        new DataView(key.buffer).setInt32(0, ids[i]!, true);
        mapUpdateElem(specsFd, key, spec);
      });
    }
    // Only the uprobe PMU takes a ref_ctr_offset; tracefs's "(0xOFF)" syntax came with it (4.20).
    if (probes.some((p) => p.semaphoreOffset) && !existsSync("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset")) missingRefCtr(target);
    for (const p of probes) {
      const spec = ids[specTexts.indexOf(p.argText)]!;
      links.push(attachWithCookie(prog, path, p, opts.pid ?? -1, spec, `${target}@0x${p.fileOffset.toString(16)}`));
    }
  } catch (err) {
    for (const l of links) l.close();
    release();
    throw err;
  }
  return new UsdtLink(target, links, probes, release);
}

function missingRefCtr(target: string): never {
  throw new NotSupportedError("uprobe ref_ctr_offset", `cannot attach to ${target}: the probe has a semaphore and this kernel's uprobe PMU takes no ref_ctr_offset (Linux 4.20+ has it)`);
}

function attachWithCookie(prog: AttachableProgram, path: string, p: UsdtProbe, pid: number, cookie: number, label: string): Link {
  const { perf, undo } = openProbe({ kind: "uprobe", retprobe: false, symbolOrPath: path, offset: BigInt(p.fileOffset), pid, refCtrOffset: BigInt(p.semaphoreOffset) });
  let fd: FD;
  try {
    fd = linkCreate({ progFd: prog.fd.value, targetFd: perf.value, attachType: AttachType.PERF_EVENT, cookie: BigInt(cookie) });
  } catch (err) {
    perf.close();
    for (const u of undo) u();
    if (err instanceof SyscallError && ["EINVAL", "EOPNOTSUPP", "ENOTSUPP", "E524"].includes(err.code)) {
      throw new NotSupportedError("BPF cookies", `cannot attach to ${label}: USDT programs need a bpf_link for perf events with a BPF cookie (Linux 5.15+), which this kernel lacks`, { cause: err });
    }
    throw err;
  }
  return new Link(label, fd, [perf], undo);
}
