// Map definitions of an object: BTF-defined maps in ".maps" (libbpf's
// __uint/__type/__array macros) and one single-entry array per global data
// section (.rodata, .data, .bss and their ".name" variants).
import type { Spec } from "../btf/spec.ts";
import { resolve, sizeof, type Datasec, type Type } from "../btf/types.ts";
import { MapFlag, MapType } from "../internal/sys/constants.ts";
import { ObjectError } from "./errors.ts";
import { traitsOf } from "../maps/traits.ts";

export interface MapSpec {
  /** The name in the object: the `.maps` variable, or the data section (".rodata"). */
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** LIBBPF_PIN_BY_NAME: pinned at <pin path>/<name> and reused when already there. */
  pinning: "none" | "by-name";
  numaNode: number;
  mapExtra: bigint;
  /** BTF types of key and value, from the object (for the kernel and for decoding). */
  key?: Type;
  value?: Type;
  /** Global data: the section's initial bytes (zeroes for .bss); set through variables. */
  contents?: Uint8Array;
  /** Global data: "rodata" maps are frozen after loading so the verifier can trust them. */
  dataSection?: "rodata" | "data" | "bss";
  /** The .kconfig map: its contents are the values of the object's .kconfig externs, filled at load. */
  kconfig?: true;
  /**
   * Map-in-map (array/hash of maps): the definition of the maps it holds, from
   * `__array(values, struct inner_def)`. The kernel needs one such map at create
   * (inner_map_fd), as a template: it is created, used and closed.
   */
  inner?: MapSpec;
  /**
   * Initial contents of a map-in-map or a prog array: `.values = { [0] = &map, [3] = &map2 }`
   * or `{ [1] = (void *)&prog }`, filled at load (maps once created, programs once loaded).
   */
  initial?: InitialSlot[];
}

/** One slot of a map's initial `values`: the index, and the map or program put there. */
export interface InitialSlot {
  key: number;
  kind: "map" | "program";
  /** The map (a .maps variable) or program (its function) the slot holds. */
  name: string;
}

const LIBBPF_PIN_BY_NAME = 1;

/** Reads one `.maps` variable's struct: each member encodes one attribute. `inner`: the struct is another map's __array(values, ...). */
export function btfMapSpec(name: string, def: Type, inner = false): MapSpec {
  const struct = resolve(def);
  if (struct.kind !== "struct") throw new ObjectError(`map ${name}: its definition in .maps is not a struct`);
  const spec: MapSpec = {
    name,
    type: MapType.UNSPEC,
    keySize: 0,
    valueSize: 0,
    maxEntries: 0,
    flags: 0,
    pinning: "none",
    numaNode: 0,
    mapExtra: 0n,
  };
  struct.members.forEach((member, at) => {
    const attr = member.name;
    switch (attr) {
      case "type":
        spec.type = uintAttr(name, attr, member.type);
        break;
      case "max_entries":
        spec.maxEntries = uintAttr(name, attr, member.type);
        break;
      case "map_flags":
        spec.flags = uintAttr(name, attr, member.type);
        break;
      case "numa_node":
        spec.numaNode = uintAttr(name, attr, member.type);
        break;
      case "map_extra":
        spec.mapExtra = BigInt(uintAttr(name, attr, member.type));
        break;
      case "key_size":
        spec.keySize = uintAttr(name, attr, member.type);
        break;
      case "value_size":
        spec.valueSize = uintAttr(name, attr, member.type);
        break;
      case "key":
      case "value": {
        const target = pointee(name, attr, member.type);
        if (attr === "key") {
          spec.key = target;
          spec.keySize = sizeof(target);
        } else {
          spec.value = target;
          spec.valueSize = sizeof(target);
        }
        break;
      }
      case "pinning": {
        const pinning = uintAttr(name, attr, member.type);
        if (pinning > LIBBPF_PIN_BY_NAME) throw new ObjectError(`map ${name}: unknown pinning ${pinning}`);
        spec.pinning = pinning === LIBBPF_PIN_BY_NAME ? "by-name" : "none";
        break;
      }
      case "values":
        if (at !== struct.members.length - 1) throw new ObjectError(`map ${name}: "values" must be the last member of its definition (__array(values, ...) goes last)`);
        valuesAttr(spec, member.type, inner);
        break;
      default:
        throw new ObjectError(`map ${name}: unknown attribute "${attr}" in its .maps definition`);
    }
  });
  if (spec.type === MapType.UNSPEC) throw new ObjectError(`map ${name}: no type (use __uint(type, BPF_MAP_TYPE_...))`);
  applyDefaults(spec);
  return spec;
}

/**
 * `__array(values, T)` is `typeof(T) *values[]`: for a map-in-map, T is the inner
 * map's definition (a struct read as a map); for a prog array, a function type.
 */
function valuesAttr(spec: MapSpec, type: Type, inner: boolean): void {
  const name = spec.name;
  const arr = resolve(type);
  const ptr = arr.kind === "array" ? resolve(arr.type) : undefined;
  if (arr.kind !== "array" || ptr?.kind !== "pointer") throw new ObjectError(`map ${name}: attribute values is not declared with __array()`);
  const target = resolve(ptr.type);
  const traits = traitsOf(spec.type);
  if (traits.holds === "map") {
    if (inner) throw new ObjectError(`map ${name}: a map-in-map inside a map-in-map is not supported (the kernel refuses it as an inner map)`);
    if (target.kind !== "struct") throw new ObjectError(`map ${name}: __array(values, ...) of a map-in-map must name a map definition (a struct with __uint(type, ...))`);
    spec.inner = btfMapSpec(`${name}.inner`, target, true);
    if (spec.valueSize !== 0 && spec.valueSize !== 4) throw new ObjectError(`map ${name}: a map-in-map's values are 4-byte map fds, not ${spec.valueSize} bytes`);
    spec.valueSize = 4;
    return;
  }
  if (spec.type === MapType.PROG_ARRAY) {
    if (target.kind !== "func_proto") throw new ObjectError(`map ${name}: __array(values, ...) of a prog array must be a function type, e.g. __array(values, int (void *))`);
    return;
  }
  throw new ObjectError(
    `map ${name}: "values" (__array) is only for maps of maps and prog arrays, not ${traits.name}` +
      (spec.type === MapType.UNSPEC ? " (or __uint(type, ...) comes after it: put values last)" : ""),
  );
}

/** Sizes the kernel requires that libbpf fills in for the user. */
function applyDefaults(spec: MapSpec): void {
  // fd-valued arrays (perf event array, prog array...): u32 index, u32 fd, whatever the C said.
  const traits = traitsOf(spec.type);
  if (traits.fdValues && traits.fixedEntries) {
    spec.keySize ||= 4;
    spec.valueSize ||= 4;
  }
}

/** `__uint(name, N)` is `int (*name)[N]`: N is the array's length. */
function uintAttr(map: string, attr: string, type: Type): number {
  const ptr = resolve(type);
  const arr = ptr.kind === "pointer" ? resolve(ptr.type) : undefined;
  if (!arr || arr.kind !== "array") throw new ObjectError(`map ${map}: attribute ${attr} is not declared with __uint()`);
  return arr.nelems;
}

/** `__type(name, T)` is `T *name`. */
function pointee(map: string, attr: string, type: Type): Type {
  const ptr = resolve(type);
  if (ptr.kind !== "pointer") throw new ObjectError(`map ${map}: attribute ${attr} is not declared with __type()`);
  return ptr.type;
}

/** The kind of global data a section holds, or undefined if it holds none. */
export function dataSectionKind(section: string): MapSpec["dataSection"] | undefined {
  for (const kind of ["rodata", "data", "bss"] as const) {
    if (section === `.${kind}` || section.startsWith(`.${kind}.`)) return kind;
  }
  return undefined;
}

/**
 * The largest value of an array map (kernel/bpf/arraymap.c refuses value_size
 * above INT_MAX; kernels before 6.x stopped at KMALLOC_MAX_SIZE, 4 MiB). A data
 * section is one such value.
 */
export const MAX_DATA_SECTION_SIZE = 0x7fffffff;

/** Throws unless a global data section of `size` bytes fits in one map value. */
export function checkDataSectionSize(section: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_DATA_SECTION_SIZE) {
    throw new ObjectError(
      `global data section ${section} is ${size} bytes, more than the kernel allows in one map value ` +
        `(${MAX_DATA_SECTION_SIZE} bytes, INT_MAX); the object is damaged or its globals need to shrink`,
    );
  }
}

/**
 * A single-entry array map holding a data section (libbpf's internal maps).
 * Its contents are allocated when first used (set, read or loaded): a .bss is
 * only a size in the file, and parsing allocates nothing for it.
 */
export function dataMapSpec(section: string, size: number, initial: Uint8Array | undefined, btf: Spec | undefined): MapSpec {
  const kind = dataSectionKind(section)!;
  checkDataSectionSize(section, size);
  if (initial && initial.length < size) {
    throw new ObjectError(`global data section ${section} is ${size} bytes but the file holds only ${initial.length}`);
  }
  let value: Datasec | undefined;
  if (btf) {
    const found = btf.typesByName(section).find((t) => t.kind === "datasec");
    if (found?.kind === "datasec") value = found;
  }
  const spec: MapSpec = {
    name: section,
    type: MapType.ARRAY,
    keySize: 4,
    valueSize: size,
    maxEntries: 1,
    // MMAPABLE lets user space read and write .data/.bss without a syscall later on.
    flags: kind === "rodata" ? MapFlag.RDONLY_PROG | MapFlag.MMAPABLE : MapFlag.MMAPABLE,
    pinning: "none",
    numaNode: 0,
    mapExtra: 0n,
    value,
    dataSection: kind,
  };
  let contents: Uint8Array | undefined;
  Object.defineProperty(spec, "contents", {
    enumerable: true,
    configurable: true,
    get: () => {
      if (!contents) {
        contents = new Uint8Array(size);
        if (initial) contents.set(initial.subarray(0, size));
      }
      return contents;
    },
    set: (bytes: Uint8Array) => (contents = bytes),
  });
  return spec;
}

/**
 * The .kconfig map (libbpf's LIBBPF_MAP_KCONFIG): one read-only value holding every
 * .kconfig extern at its slot, written at load and frozen, so the verifier can
 * treat the values as constants. `btf`'s .kconfig DATASEC (fixed up) types it.
 */
export function kconfigMapSpec(size: number, btf: Spec | undefined): MapSpec {
  const found = btf?.typesByName(".kconfig").find((t) => t.kind === "datasec");
  return {
    name: ".kconfig",
    type: MapType.ARRAY,
    keySize: 4,
    valueSize: size,
    maxEntries: 1,
    flags: MapFlag.RDONLY_PROG | MapFlag.MMAPABLE,
    pinning: "none",
    numaNode: 0,
    mapExtra: 0n,
    value: found?.kind === "datasec" ? found : undefined,
    contents: new Uint8Array(size),
    dataSection: "rodata",
    kconfig: true,
  };
}
