// Typed wrappers of the bpf() commands tsbpf uses: each lays out its
// `union bpf_attr` member byte for byte (offsets from include/uapi/linux/bpf.h)
// and returns plain values or owned FDs. No policy lives here.
import { BpfCmd } from "./constants.ts";
import { wrapSyscallError } from "./errors.ts";
import { FD } from "./fd.ts";
import { native } from "./native.ts";

const ATTR_SIZE = 160; // covers every member we use; the kernel accepts zero tails

/** A zeroed bpf_attr with typed setters; holds the buffers its pointers refer to. */
export class Attr {
  readonly bytes = new Uint8Array(ATTR_SIZE);
  readonly view = new DataView(this.bytes.buffer);
  // Buffers whose addresses are in the attr stay referenced until the call returns.
  readonly #pinned: (ArrayBufferView | ArrayBuffer)[] = [];

  u32(offset: number, value: number): this {
    this.view.setUint32(offset, value >>> 0, true);
    return this;
  }

  u64(offset: number, value: number | bigint): this {
    this.view.setBigUint64(offset, BigInt(value), true);
    return this;
  }

  /** Stores the address of `buffer` (or NULL for undefined). */
  ptr(offset: number, buffer: ArrayBufferView | ArrayBuffer | undefined): this {
    if (buffer === undefined) return this.u64(offset, 0n);
    this.#pinned.push(buffer);
    return this.u64(offset, native().addressOf(buffer));
  }

  /** A NUL-terminated copy of `text` behind a pointer. */
  cstring(offset: number, text: string): this {
    return this.ptr(offset, cstring(text));
  }

  /** Copies `text` into a fixed char array (object names: 16 bytes, NUL-terminated). */
  name(offset: number, text: string, size = 16): this {
    const encoded = new TextEncoder().encode(text).subarray(0, size - 1);
    this.bytes.set(encoded, offset);
    return this;
  }
}

export function cstring(text: string): Uint8Array {
  const encoded = new TextEncoder().encode(text);
  const out = new Uint8Array(encoded.length + 1);
  out.set(encoded);
  return out;
}

const commandNames = Object.fromEntries(Object.entries(BpfCmd).map(([k, v]) => [v, `BPF_${k}`])) as Record<
  number,
  string
>;

/** Runs one bpf() command; errors name the command. */
export function bpf(cmd: number, attr: Attr): number {
  try {
    return native().bpf(cmd, attr.bytes);
  } catch (err) {
    throw wrapSyscallError(err, "bpf", `bpf(${commandNames[cmd] ?? cmd})`);
  }
}

function bpfFD(cmd: number, attr: Attr): FD {
  return new FD(bpf(cmd, attr));
}

// ---- maps ----

export interface MapCreateAttr {
  mapType: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags?: number;
  innerMapFd?: number;
  numaNode?: number;
  name?: string;
  btfFd?: number;
  btfKeyTypeId?: number;
  btfValueTypeId?: number;
  mapExtra?: bigint;
}

export function mapCreate(a: MapCreateAttr): FD {
  const attr = new Attr()
    .u32(0, a.mapType)
    .u32(4, a.keySize)
    .u32(8, a.valueSize)
    .u32(12, a.maxEntries)
    .u32(16, a.mapFlags ?? 0)
    .u32(20, a.innerMapFd ?? 0)
    .u32(24, a.numaNode ?? 0)
    .name(28, a.name ?? "")
    .u32(48, a.btfFd ?? 0)
    .u32(52, a.btfKeyTypeId ?? 0)
    .u32(56, a.btfValueTypeId ?? 0)
    .u64(64, a.mapExtra ?? 0n);
  return bpfFD(BpfCmd.MAP_CREATE, attr);
}

function elemAttr(fd: number, key: Uint8Array | undefined, value: Uint8Array | undefined, flags: number): Attr {
  return new Attr().u32(0, fd).ptr(8, key).ptr(16, value).u64(24, flags);
}

/** Returns false when the key does not exist (ENOENT). */
export function mapLookupElem(fd: number, key: Uint8Array | undefined, value: Uint8Array, flags = 0): boolean {
  return notFoundIsFalse(() => bpf(BpfCmd.MAP_LOOKUP_ELEM, elemAttr(fd, key, value, flags)));
}

export function mapUpdateElem(fd: number, key: Uint8Array | undefined, value: Uint8Array, flags = 0): void {
  bpf(BpfCmd.MAP_UPDATE_ELEM, elemAttr(fd, key, value, flags));
}

/** Returns false when the key does not exist (ENOENT). */
export function mapDeleteElem(fd: number, key: Uint8Array): boolean {
  return notFoundIsFalse(() => bpf(BpfCmd.MAP_DELETE_ELEM, elemAttr(fd, key, undefined, 0)));
}

/** Returns false when the map is empty (queue, stack) or the key absent (ENOENT). */
export function mapLookupAndDeleteElem(fd: number, key: Uint8Array | undefined, value: Uint8Array): boolean {
  return notFoundIsFalse(() => bpf(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, elemAttr(fd, key, value, 0)));
}

/** Writes the key after `key` (or the first key for undefined) into `next`; false at the end. */
export function mapGetNextKey(fd: number, key: Uint8Array | undefined, next: Uint8Array): boolean {
  return notFoundIsFalse(() => bpf(BpfCmd.MAP_GET_NEXT_KEY, elemAttr(fd, key, next, 0)));
}

export function mapFreeze(fd: number): void {
  bpf(BpfCmd.MAP_FREEZE, new Attr().u32(0, fd));
}

export interface BatchResult {
  /** Number of elements processed. */
  count: number;
  /** False once the whole map has been walked (ENOENT). */
  more: boolean;
}

/**
 * BPF_MAP_{LOOKUP,LOOKUP_AND_DELETE,UPDATE,DELETE}_BATCH. `inBatch`/`outBatch` are
 * opaque cursors of the map's key size (NULL in_batch starts from the beginning).
 */
export function mapBatch(
  cmd: number,
  fd: number,
  args: { inBatch?: Uint8Array; outBatch?: Uint8Array; keys?: Uint8Array; values?: Uint8Array; count: number },
  elemFlags = 0,
): BatchResult {
  const attr = new Attr()
    .ptr(0, args.inBatch)
    .ptr(8, args.outBatch)
    .ptr(16, args.keys)
    .ptr(24, args.values)
    .u32(32, args.count)
    .u32(36, fd)
    .u64(40, elemFlags);
  try {
    bpf(cmd, attr);
    return { count: attr.view.getUint32(32, true), more: true };
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return { count: attr.view.getUint32(32, true), more: false };
    throw err;
  }
}

function notFoundIsFalse(call: () => number): boolean {
  try {
    call();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return false;
    throw err;
  }
}

// ---- programs ----

export interface ProgLoadAttr {
  progType: number;
  insns: Uint8Array;
  license: string;
  logLevel?: number;
  logBuf?: Uint8Array;
  kernVersion?: number;
  progFlags?: number;
  name?: string;
  expectedAttachType?: number;
  progBtfFd?: number;
  funcInfo?: Uint8Array;
  funcInfoCount?: number;
  lineInfo?: Uint8Array;
  lineInfoCount?: number;
  attachBtfId?: number;
  attachBtfObjFd?: number;
  /** fds that instructions index (kfunc calls into modules: insn.off). */
  fdArray?: Int32Array;
}

export const FUNC_INFO_SIZE = 8;
export const LINE_INFO_SIZE = 16;

/**
 * BPF_PROG_LOAD. With a log buffer, `out.logTrueSize` receives the size the whole
 * log needs (kernels >= 6.4), also when the load fails, so a retry can size it.
 */
export function progLoad(a: ProgLoadAttr, out?: { logTrueSize: number }): FD {
  const attr = new Attr()
    .u32(0, a.progType)
    .u32(4, a.insns.byteLength / 8)
    .ptr(8, a.insns)
    .cstring(16, a.license)
    .u32(24, a.logBuf ? (a.logLevel ?? 1) : 0)
    .u32(28, a.logBuf?.byteLength ?? 0)
    .ptr(32, a.logBuf)
    .u32(40, a.kernVersion ?? 0)
    .u32(44, a.progFlags ?? 0)
    .name(48, a.name ?? "")
    .u32(68, a.expectedAttachType ?? 0)
    .u32(72, a.progBtfFd ?? 0)
    .u32(108, a.attachBtfId ?? 0)
    .u32(112, a.attachBtfObjFd ?? 0);
  if (a.funcInfo && a.funcInfoCount) {
    attr.u32(76, FUNC_INFO_SIZE).ptr(80, a.funcInfo).u32(88, a.funcInfoCount);
  }
  if (a.lineInfo && a.lineInfoCount) {
    attr.u32(92, LINE_INFO_SIZE).ptr(96, a.lineInfo).u32(104, a.lineInfoCount);
  }
  if (a.fdArray) attr.ptr(120, a.fdArray);
  try {
    return bpfFD(BpfCmd.PROG_LOAD, attr);
  } finally {
    if (out) out.logTrueSize = attr.view.getUint32(140, true);
  }
}

// ---- BTF ----

export function btfLoad(btf: Uint8Array, logBuf?: Uint8Array): FD {
  const attr = new Attr()
    .ptr(0, btf)
    .ptr(8, logBuf)
    .u32(16, btf.byteLength)
    .u32(20, logBuf?.byteLength ?? 0)
    .u32(24, logBuf ? 1 : 0);
  return bpfFD(BpfCmd.BTF_LOAD, attr);
}

// ---- pinning ----

export function objPin(fd: number, path: string): void {
  bpf(BpfCmd.OBJ_PIN, new Attr().cstring(0, path).u32(8, fd));
}

export function objGet(path: string, fileFlags = 0): FD {
  return bpfFD(BpfCmd.OBJ_GET, new Attr().cstring(0, path).u32(12, fileFlags));
}

// ---- links and attachment ----

export function rawTracepointOpen(progFd: number, name: string | undefined): FD {
  const attr = new Attr().u32(8, progFd);
  if (name !== undefined) attr.cstring(0, name);
  return bpfFD(BpfCmd.RAW_TRACEPOINT_OPEN, attr);
}

export function linkCreate(a: { progFd: number; targetFd: number; attachType: number; flags?: number; cookie?: bigint }): FD {
  const attr = new Attr()
    .u32(0, a.progFd)
    .u32(4, a.targetFd)
    .u32(8, a.attachType)
    .u32(12, a.flags ?? 0)
    .u64(16, a.cookie ?? 0n);
  return bpfFD(BpfCmd.LINK_CREATE, attr);
}

// ---- object info and enumeration ----

/** BPF_OBJ_GET_INFO_BY_FD into `info` (the kernel fills what it knows). Returns info_len. */
export function objGetInfoByFd(fd: number, info: Uint8Array): number {
  const attr = new Attr().u32(0, fd).u32(4, info.byteLength).ptr(8, info);
  bpf(BpfCmd.OBJ_GET_INFO_BY_FD, attr);
  return attr.view.getUint32(4, true);
}

/** Every id of one kind of object (PROG/MAP/BTF/LINK_GET_NEXT_ID), in order. */
export function listIds(cmd: number): number[] {
  const ids: number[] = [];
  let start = 0;
  for (;;) {
    const attr = new Attr().u32(0, start);
    if (!notFoundIsFalse(() => bpf(cmd, attr))) return ids;
    start = attr.view.getUint32(4, true);
    ids.push(start);
  }
}

/** PROG/MAP/BTF/LINK_GET_FD_BY_ID. */
export function fdById(cmd: number, id: number): FD {
  return bpfFD(cmd, new Attr().u32(0, id));
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
}

export function mapInfo(fd: number): MapInfo {
  const info = new Uint8Array(88);
  objGetInfoByFd(fd, info);
  const v = new DataView(info.buffer);
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    keySize: v.getUint32(8, true),
    valueSize: v.getUint32(12, true),
    maxEntries: v.getUint32(16, true),
    flags: v.getUint32(20, true),
    name: cstringAt(info, 24, 16),
    btfId: v.getUint32(64, true),
    btfKeyTypeId: v.getUint32(68, true),
    btfValueTypeId: v.getUint32(72, true),
  };
}

export interface ProgInfo {
  type: number;
  id: number;
  name: string;
  xlatedProgLen: number;
  jitedProgLen: number;
  /** Runs the kernel skipped because a BPF program was already running on that CPU (5.12+; 0 before). */
  recursionMisses: bigint;
}

export function progInfo(fd: number): ProgInfo {
  const info = new Uint8Array(232);
  objGetInfoByFd(fd, info);
  const v = new DataView(info.buffer);
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    jitedProgLen: v.getUint32(16, true),
    xlatedProgLen: v.getUint32(20, true),
    name: cstringAt(info, 64, 16),
    recursionMisses: v.getBigUint64(208, true),
  };
}

export interface ProgTestRunAttr {
  progFd: number;
  dataIn?: Uint8Array;
  /** Receives the packet as the program left it (XDP, tc, socket filters). */
  dataOut?: Uint8Array;
  ctxIn?: Uint8Array;
  ctxOut?: Uint8Array;
  repeat?: number;
  flags?: number;
  cpu?: number;
}

export interface ProgTestRunResult {
  retval: number;
  /** Mean run time per repetition, in ns. */
  duration: number;
  dataSizeOut: number;
  ctxSizeOut: number;
}

/** BPF_PROG_TEST_RUN: runs a loaded program once (or `repeat` times) on data and a context the caller gives. */
export function progTestRun(a: ProgTestRunAttr): ProgTestRunResult {
  const attr = new Attr()
    .u32(0, a.progFd)
    .u32(8, a.dataIn?.byteLength ?? 0)
    .u32(12, a.dataOut?.byteLength ?? 0)
    .ptr(16, a.dataIn)
    .ptr(24, a.dataOut)
    .u32(32, a.repeat ?? 0)
    .u32(40, a.ctxIn?.byteLength ?? 0)
    .u32(44, a.ctxOut?.byteLength ?? 0)
    .ptr(48, a.ctxIn)
    .ptr(56, a.ctxOut)
    .u32(64, a.flags ?? 0)
    .u32(68, a.cpu ?? 0);
  bpf(BpfCmd.PROG_TEST_RUN, attr);
  const v = attr.view;
  return { retval: v.getUint32(4, true), duration: v.getUint32(36, true), dataSizeOut: v.getUint32(12, true), ctxSizeOut: v.getUint32(44, true) };
}

export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
}

export function linkInfo(fd: number): LinkInfo {
  const info = new Uint8Array(64);
  objGetInfoByFd(fd, info);
  const v = new DataView(info.buffer);
  return { type: v.getUint32(0, true), id: v.getUint32(4, true), progId: v.getUint32(8, true) };
}

/** BTF object info: the raw BTF bytes the kernel holds for `fd`. */
export function btfBytes(fd: number): Uint8Array {
  const info = new Uint8Array(48);
  const v = new DataView(info.buffer);
  objGetInfoByFd(fd, info);
  const size = v.getUint32(8, true);
  const data = new Uint8Array(size);
  info.fill(0);
  v.setBigUint64(0, native().addressOf(data), true);
  v.setUint32(8, size, true);
  objGetInfoByFd(fd, info);
  return data;
}

function cstringAt(bytes: Uint8Array, offset: number, max: number): string {
  const slice = bytes.subarray(offset, offset + max);
  const end = slice.indexOf(0);
  return new TextDecoder().decode(end < 0 ? slice : slice.subarray(0, end));
}
