// A BPF map in the kernel: create, open pinned, and every element operation,
// with keys and values encoded through the map's BTF types (or raw bytes).
import type { Codec } from "../btf/codec.ts";
import { Spec } from "../btf/spec.ts";
import type { Type } from "../btf/types.ts";
import { BpfCmd, MapFlag, MapType, UpdateFlag } from "../internal/sys/constants.ts";
import { UsageError } from "../errors.ts";
import * as sys from "../internal/sys/bpf.ts";
import { FD } from "../internal/sys/fd.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { possibleCpus } from "../internal/sys/system.ts";
import type { MapSpec } from "../object/maps.ts";
import { mapCodec } from "./codec.ts";
import { ensureBpffs } from "./pin.ts";
import { traitsOf } from "./traits.ts";
import { checkInodeStorage, storageKey, type StorageOwner } from "./storage.ts";

export type UpdateMode = "any" | "noexist" | "exist" | number;

/** What `BpfMap.create` needs: a MapSpec from an object, or the same fields by hand. */
export interface MapDefinition {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  name?: string;
  key?: Type;
  value?: Type;
  numaNode?: number;
  mapExtra?: bigint;
  /**
   * Maps of maps: the maps it will hold, as a definition (a template map is created
   * for the kernel and closed) or an open map of that shape (used as the template).
   */
  inner?: MapDefinition | BpfMap;
}

export interface CreateOptions {
  /** Loaded BTF whose type ids `key`/`value` are (the object's BTF in a Collection). */
  btfFd?: FD;
}

function updateFlags(mode: UpdateMode): number {
  if (typeof mode === "number") return mode;
  return { any: UpdateFlag.ANY, noexist: UpdateFlag.NOEXIST, exist: UpdateFlag.EXIST }[mode];
}

function kernelName(name: string): string {
  // The kernel accepts [A-Za-z0-9_.] and 15 characters.
  return name.replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 15);
}

export class BpfMap<K = any, V = any> implements Disposable {
  readonly fd: FD;
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly keyType: Type | undefined;
  readonly valueType: Type | undefined;
  /** Per-CPU maps hold one value per possible CPU; lookups return an array. */
  readonly perCpu: boolean;
  readonly #key: Codec;
  readonly #value: Codec;
  /** Bytes of one CPU's value in per-CPU buffers (value size rounded up to 8). */
  readonly #stride: number;

  private constructor(fd: FD, def: MapDefinition & { name: string }) {
    this.fd = fd;
    this.name = def.name;
    this.type = def.type;
    this.keySize = def.keySize;
    this.valueSize = def.valueSize;
    this.maxEntries = def.maxEntries;
    this.flags = def.flags ?? 0;
    this.keyType = def.key;
    this.valueType = def.value;
    this.perCpu = traitsOf(def.type).perCpu ?? false;
    this.#key = mapCodec(def.keySize, def.key);
    const traits = traitsOf(def.type);
    this.#value = mapCodec(def.valueSize, def.value, traits.addresses ? "addresses" : traits.valueLayout ?? "plain");
    this.#stride = Math.ceil(def.valueSize / 8) * 8;
  }

  /** Creates a map. BTF types go to the kernel when `btfFd` is given and the map type allows. */
  static create(def: MapDefinition | MapSpec, opts: CreateOptions = {}): BpfMap {
    const name = def.name ?? "";
    const traits = traitsOf(def.type);
    let maxEntries = def.maxEntries;
    let flags = def.flags ?? 0;
    if (def.type === MapType.PERF_EVENT_ARRAY && maxEntries === 0) maxEntries = possibleCpus();
    if (traits.localStorage) {
      // The kernel's rules for local storage, said before it answers a bare EINVAL.
      const what = `map ${name || "(anonymous)"} (${traits.name})`;
      if (maxEntries !== 0) throw new UsageError(`${what}: max_entries must be 0 (a value lives with each ${traits.localStorage === "sk" ? "socket" : traits.localStorage}), got ${maxEntries}`);
      if (def.keySize !== 4) throw new UsageError(`${what}: the key is an int (an fd from user space), got key_size ${def.keySize}`);
      if (!opts.btfFd || !def.value) {
        throw new UsageError(`${what}: the kernel requires the key and value BTF at create: declare it in C (__type(key, int); __type(value, ...)) and load it with its object, whose BTF this kernel must accept`);
      }
      if (traits.localStorage === "inode") checkInodeStorage(name);
      flags |= MapFlag.NO_PREALLOC; // required; libbpf users write it by hand
    }
    const attr: sys.MapCreateAttr = {
      mapType: def.type,
      keySize: def.keySize,
      valueSize: def.valueSize,
      maxEntries,
      mapFlags: flags,
      numaNode: def.numaNode ?? 0,
      mapExtra: def.mapExtra ?? 0n,
      name: kernelName(name),
    };
    const withBtf = opts.btfFd && !traitsOf(def.type).btfRefused && def.value !== undefined;
    // Maps of maps: the kernel takes the shape of what they hold from a map given at create.
    using template = traits.holds === "map" ? innerTemplate(name, def, opts) : undefined;
    if (template) attr.innerMapFd = template.fd.value;
    let fd: FD;
    try {
      fd = sys.mapCreate(
        withBtf ? { ...attr, btfFd: opts.btfFd!.value, btfKeyTypeId: def.key?.id ?? 0, btfValueTypeId: def.value!.id } : attr,
      );
    } catch (err) {
      if (!withBtf || traits.btfRequired || !(err instanceof SyscallError) || err.code !== "EINVAL") throw mapCreateError(name, err);
      // Some kernels refuse some types (a DATASEC, a type tag): the map works without them.
      try {
        fd = sys.mapCreate(attr);
      } catch (err2) {
        throw mapCreateError(name, err2);
      }
    }
    return new BpfMap(fd, { ...def, name, maxEntries, flags });
  }

  /**
   * Maps of maps: the map at `key`, opened by the id the kernel gives back (a new fd:
   * close it), or undefined when the slot is empty or that map is gone.
   */
  innerMap(key: K): BpfMap | undefined {
    if (traitsOf(this.type).holds !== "map") throw new UsageError(`${this}: innerMap() is for maps of maps; this is a ${traitsOf(this.type).name} map`);
    const id = this.lookup(key) as unknown;
    if (typeof id !== "number" || id === 0) return undefined;
    try {
      return BpfMap.fromId(id);
    } catch (err) {
      // Removed from the outer map and freed between the lookup and the open.
      if (err instanceof SyscallError && err.code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** Opens a map pinned on bpffs, with its BTF types when it has them. */
  static fromPin(path: string): BpfMap {
    const fd = sys.objGet(path);
    try {
      return BpfMap.#fromFd(fd);
    } catch (err) {
      fd.close();
      throw err;
    }
  }

  /** Opens a map by its kernel id (as listed by `bpftool map`). */
  static fromId(id: number): BpfMap {
    const fd = sys.fdById(BpfCmd.MAP_GET_FD_BY_ID, id);
    try {
      return BpfMap.#fromFd(fd);
    } catch (err) {
      fd.close();
      throw err;
    }
  }

  static #fromFd(fd: FD): BpfMap {
    const info = sys.mapInfo(fd.value);
    let key: Type | undefined;
    let value: Type | undefined;
    if (info.btfId) {
      using btfFd = sys.fdById(BpfCmd.BTF_GET_FD_BY_ID, info.btfId);
      const btf = new Spec(sys.btfBytes(btfFd.value));
      key = info.btfKeyTypeId ? btf.typeById(info.btfKeyTypeId) : undefined;
      value = info.btfValueTypeId ? btf.typeById(info.btfValueTypeId) : undefined;
    }
    return new BpfMap(fd, { ...info, name: info.name, key, value });
  }

  // ---- element operations ----

  /** The value for `key`, or undefined. Per-CPU maps: an array with one value per CPU. */
  lookup(key: K): V | undefined {
    const out = this.#valueBuffer();
    if (!sys.mapLookupElem(this.#fdValue(), this.#encodeKey(key), out)) return undefined;
    return this.#decodeValue(out);
  }

  /** Writes `value` at `key`. `mode`: "any" (default), "noexist" (insert only), "exist" (replace only). */
  update(key: K, value: V, mode: UpdateMode = "any"): void {
    sys.mapUpdateElem(this.#fdValue(), this.#encodeKey(key), this.#encodeValue(value), updateFlags(mode));
  }

  /** Removes `key`; false if it was not there. */
  delete(key: K): boolean {
    return sys.mapDeleteElem(this.#fdValue(), this.#encodeKey(key));
  }

  /** Looks up and removes `key` in one step (hash maps on 5.14+). */
  lookupAndDelete(key: K): V | undefined {
    const out = this.#valueBuffer();
    if (!sys.mapLookupAndDeleteElem(this.#fdValue(), this.#encodeKey(key), out)) return undefined;
    return this.#decodeValue(out);
  }

  /** Queue/stack: adds a value. */
  push(value: V, mode: UpdateMode = "any"): void {
    sys.mapUpdateElem(this.#fdValue(), undefined, this.#encodeValue(value), updateFlags(mode));
  }

  /** Queue/stack: removes and returns the next value, or undefined when empty. */
  pop(): V | undefined {
    const out = this.#valueBuffer();
    return sys.mapLookupAndDeleteElem(this.#fdValue(), undefined, out) ? this.#decodeValue(out) : undefined;
  }

  /** Queue/stack: the next value without removing it. */
  peek(): V | undefined {
    const out = this.#valueBuffer();
    return sys.mapLookupElem(this.#fdValue(), undefined, out) ? this.#decodeValue(out) : undefined;
  }

  /** Every key. Keys deleted or added while iterating may be missed or seen, as with any BPF map walk. */
  *keys(): IterableIterator<K> {
    for (const raw of this.#rawKeys()) yield this.#key.decode(view(raw), 0) as K;
  }

  /** Every [key, value]. */
  *entries(): IterableIterator<[K, V]> {
    const out = this.#valueBuffer();
    for (const raw of this.#rawKeys()) {
      if (sys.mapLookupElem(this.#fdValue(), raw, out)) yield [this.#key.decode(view(raw), 0) as K, this.#decodeValue(out)];
    }
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** Deletes every key (arrays cannot delete: their values are zeroed instead). */
  clear(): void {
    if (this.type === MapType.ARRAY || this.type === MapType.PERCPU_ARRAY) {
      const zero = new Uint8Array(this.#valueBytes());
      for (const raw of this.#rawKeys()) sys.mapUpdateElem(this.#fdValue(), raw, zero, 0);
      return;
    }
    for (const raw of [...this.#rawKeys()]) sys.mapDeleteElem(this.#fdValue(), raw);
  }

  // ---- local storage (sk, task, inode, cgrp): keyed by the owner's fd ----

  /**
   * The value stored for `owner` (a socket, `{ pid }`, `{ path }`, or an fd: see
   * StorageOwner), or undefined when its program has stored none.
   */
  getFor(owner: StorageOwner): V | undefined {
    return this.#withOwner(owner, (fd) => this.lookup(fd as K));
  }

  /** Stores `value` for `owner` (the program then finds it with bpf_*_storage_get). */
  setFor(owner: StorageOwner, value: V, mode: UpdateMode = "any"): void {
    this.#withOwner(owner, (fd) => this.update(fd as K, value, mode));
  }

  /** Removes the value stored for `owner`; false if there was none. */
  deleteFor(owner: StorageOwner): boolean {
    return this.#withOwner(owner, (fd) => this.delete(fd as K));
  }

  #withOwner<R>(owner: StorageOwner, f: (fd: number) => R): R {
    const kind = traitsOf(this.type).localStorage;
    if (!kind) throw new UsageError(`${this}: getFor/setFor/deleteFor are for local storage maps (sk, task, inode, cgrp storage); this is a ${traitsOf(this.type).name} map`);
    const key = storageKey(kind, owner, this.name);
    try {
      return f(key.fd);
    } finally {
      key.close?.();
    }
  }

  // ---- batch operations (5.6+; not every map type has them) ----

  /**
   * Reads every entry with BPF_MAP_LOOKUP_BATCH, `batchSize` elements per syscall
   * (more when one hash bucket holds more than that: the kernel returns whole buckets).
   */
  *lookupBatch(batchSize = 256, { andDelete = false } = {}): IterableIterator<[K, V]> {
    const cmd = andDelete ? BpfCmd.MAP_LOOKUP_AND_DELETE_BATCH : BpfCmd.MAP_LOOKUP_BATCH;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`${this}: batchSize must be a positive integer, got ${batchSize}`);
    const valueBytes = this.#valueBytes();
    let keys = new Uint8Array(this.keySize * batchSize);
    let values = new Uint8Array(valueBytes * batchSize);
    const cursor = Math.max(this.keySize, 8);
    let inBatch: Uint8Array | undefined;
    for (;;) {
      const outBatch = new Uint8Array(cursor);
      let r: sys.BatchResult;
      try {
        r = sys.mapBatch(cmd, this.#fdValue(), { inBatch, outBatch, keys, values, count: batchSize });
      } catch (err) {
        // ENOSPC: the next hash bucket alone has more elements than fit; nothing was
        // copied (or deleted). Retry the same position with room for twice as many.
        if (!(err instanceof SyscallError) || err.code !== "ENOSPC" || batchSize >= this.maxEntries) throw err;
        batchSize = Math.min(batchSize * 2, Math.max(this.maxEntries, 1));
        keys = new Uint8Array(this.keySize * batchSize);
        values = new Uint8Array(valueBytes * batchSize);
        continue;
      }
      for (let i = 0; i < r.count; i++) {
        const k = keys.subarray(i * this.keySize, (i + 1) * this.keySize);
        const v = values.subarray(i * valueBytes, (i + 1) * valueBytes);
        yield [this.#key.decode(view(k), 0) as K, this.#decodeValue(v)];
      }
      if (!r.more) return;
      inBatch = outBatch;
    }
  }

  /**
   * Writes many entries with one BPF_MAP_UPDATE_BATCH. Returns how many were written.
   * The kernel's batch update takes no noexist/exist mode (only BPF_F_LOCK): use
   * update() per key for those.
   */
  updateBatch(entries: Iterable<[K, V]>, mode: UpdateMode = "any"): number {
    const flags = updateFlags(mode);
    if (flags & (UpdateFlag.NOEXIST | UpdateFlag.EXIST)) {
      throw new TypeError(`${this}: updateBatch cannot use mode ${JSON.stringify(mode)}: BPF_MAP_UPDATE_BATCH only accepts BPF_F_LOCK; use update() per key`);
    }
    const list = [...entries];
    if (list.length === 0) return 0;
    const keys = new Uint8Array(this.keySize * list.length);
    const values = new Uint8Array(this.#valueBytes() * list.length);
    list.forEach(([k, v], i) => {
      keys.set(this.#encodeKey(k), i * this.keySize);
      values.set(this.#encodeValue(v), i * this.#valueBytes());
    });
    const attr = { keys, values, count: list.length };
    return sys.mapBatch(BpfCmd.MAP_UPDATE_BATCH, this.#fdValue(), attr, flags).count;
  }

  /**
   * Deletes many keys with BPF_MAP_DELETE_BATCH. Returns how many were deleted;
   * keys that are not in the map are skipped (as delete() returns false for them).
   */
  deleteBatch(keys: Iterable<K>): number {
    const list = [...keys];
    const raw = new Uint8Array(this.keySize * list.length);
    list.forEach((k, i) => raw.set(this.#encodeKey(k), i * this.keySize));
    let deleted = 0;
    for (let at = 0; at < list.length; ) {
      const rest = raw.subarray(at * this.keySize);
      const r = sys.mapBatch(BpfCmd.MAP_DELETE_BATCH, this.#fdValue(), { keys: rest, count: list.length - at });
      deleted += r.count;
      if (r.more) break; // every key of `rest` was deleted
      // ENOENT: the kernel stopped at the first missing key, after r.count deletions.
      at += r.count + 1;
    }
    return deleted;
  }

  // ---- raw bytes ----

  /** Lookup with the key and value as bytes (per-CPU: all CPUs' values back to back). */
  lookupBytes(key: Uint8Array): Uint8Array | undefined {
    const out = this.#valueBuffer();
    return sys.mapLookupElem(this.#fdValue(), key, out) ? out : undefined;
  }

  updateBytes(key: Uint8Array, value: Uint8Array, mode: UpdateMode = "any"): void {
    sys.mapUpdateElem(this.#fdValue(), key, value, updateFlags(mode));
  }

  deleteBytes(key: Uint8Array): boolean {
    return sys.mapDeleteElem(this.#fdValue(), key);
  }

  // ---- the map itself ----

  /** Pins the map at `path` on bpffs (mounting /sys/fs/bpf if needed). */
  pin(path: string): void {
    ensureBpffs(path);
    sys.objPin(this.#fdValue(), path);
  }

  /** Makes the map read-only for user space from now on (.rodata after load). */
  freeze(): void {
    sys.mapFreeze(this.#fdValue());
  }

  info(): sys.MapInfo {
    return sys.mapInfo(this.#fdValue());
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `BpfMap(${this.name})`;
  }

  /** The fd number; a clear error naming the map once it is closed. */
  #fdValue(): number {
    if (this.fd.closed) throw new Error(`${this}: the map was closed (used after close() or dispose)`);
    return this.fd.value;
  }

  // ---- encoding ----

  #valueBytes(): number {
    return this.perCpu ? this.#stride * possibleCpus() : this.valueSize;
  }

  #valueBuffer(): Uint8Array {
    return new Uint8Array(this.#valueBytes());
  }

  #encodeKey(key: K): Uint8Array {
    const out = new Uint8Array(this.keySize);
    this.#key.encode(key, view(out), 0);
    return out;
  }

  #encodeValue(value: V): Uint8Array {
    const out = new Uint8Array(this.#valueBytes());
    const v = view(out);
    if (!this.perCpu) {
      this.#value.encode(toKernelValue(value), v, 0);
      return out;
    }
    const cpus = possibleCpus();
    const perCpu = Array.isArray(value) ? value : new Array(cpus).fill(value);
    if (perCpu.length !== cpus) throw new TypeError(`${this.name}: expected ${cpus} per-CPU values, got ${perCpu.length}`);
    perCpu.forEach((item, cpu) => this.#value.encode(item, v, cpu * this.#stride));
    return out;
  }

  #decodeValue(bytes: Uint8Array): V {
    const v = view(bytes);
    if (!this.perCpu) return this.#value.decode(v, 0) as V;
    const out = [];
    for (let cpu = 0; cpu < possibleCpus(); cpu++) out.push(this.#value.decode(v, cpu * this.#stride));
    return out as V;
  }

  *#rawKeys(): IterableIterator<Uint8Array> {
    const kind = traitsOf(this.type).localStorage;
    if (kind) throw new UsageError(`${this}: a ${kind} storage map cannot be walked (its values live with their owners): look one up with getFor(owner)`);
    let prev: Uint8Array | undefined;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      if (!sys.mapGetNextKey(this.#fdValue(), prev, next)) return;
      yield next;
      prev = next;
    }
  }
}

/**
 * The inner map template of a map of maps: the given map itself (not closed after),
 * or one made from the definition (closed once the outer map exists).
 */
function innerTemplate(name: string, def: MapDefinition, opts: CreateOptions): { fd: FD; [Symbol.dispose](): void } {
  const inner = def.inner;
  const what = `map ${name || "(anonymous)"} (${traitsOf(def.type).name})`;
  if (!inner) {
    throw new UsageError(`${what} needs the definition of the maps it holds: pass inner (a definition or a BpfMap); in C, __array(values, struct inner_def)`);
  }
  if (inner instanceof BpfMap) return { fd: inner.fd, [Symbol.dispose]: () => {} };
  if (traitsOf(inner.type).holds === "map") throw new UsageError(`${what}: its inner maps cannot be maps of maps (the kernel refuses them)`);
  try {
    return BpfMap.create({ ...inner, name: inner.name ?? `${name}.inner` }, opts);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    const t = traitsOf(inner.type);
    err.message =
      `${what}: the kernel refused the definition of its inner maps (${t.name}, key ${inner.keySize} bytes, value ${inner.valueSize} bytes, ` +
      `max_entries ${inner.maxEntries}${inner.flags ? `, flags 0x${inner.flags.toString(16)}` : ""}): ${err.message}`;
    throw err;
  }
}

/** Programs and maps stored in prog arrays / map-in-maps go in as their fds. */
function toKernelValue(value: unknown): unknown {
  if (value && typeof value === "object" && "fd" in value && (value as { fd: unknown }).fd instanceof FD) {
    return (value as { fd: FD }).fd.value;
  }
  return value;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function mapCreateError(name: string, err: unknown): unknown {
  if (err instanceof SyscallError) {
    err.message = `creating map ${name || "(anonymous)"}: ${err.message}`;
  }
  return err;
}
