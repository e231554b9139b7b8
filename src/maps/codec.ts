// How a map turns keys and values into bytes: through the BTF codec when the
// map has types, by size otherwise (4 bytes: number, 8: bigint, else raw bytes).
import { codecFor, type Codec } from "../btf/codec.ts";
import type { Type } from "../btf/types.ts";

// Untyped 4- and 8-byte keys and values: the same range rules as the BTF codec
// (signed or unsigned spellings), and a TypeError instead of a silent wrap to
// some other key when the value is not an integer.
function badValue(size: number, value: unknown): TypeError {
  const shown = typeof value === "bigint" ? `${value}n` : typeof value === "string" ? JSON.stringify(value) : String(value);
  return new TypeError(`expected an integer of ${size} bytes (${size === 8 ? "bigint or number" : "number"}), got ${shown}`);
}

const u32: Codec<number> = {
  size: 4,
  decode: (view, offset = 0) => view.getUint32(offset, true),
  encode: (value, view, offset = 0) => {
    const n = typeof value === "bigint" ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n) || n < -(2 ** 31) || n > 2 ** 32 - 1) throw badValue(4, value);
    view.setUint32(offset, n >>> 0, true);
  },
};

const u64: Codec<bigint> = {
  size: 8,
  decode: (view, offset = 0) => view.getBigUint64(offset, true),
  encode: (value, view, offset = 0) => {
    const n = typeof value === "bigint" ? value : typeof value === "number" && Number.isInteger(value) ? BigInt(value) : undefined;
    if (n === undefined || n < -(2n ** 63n) || n > 2n ** 64n - 1n) throw badValue(8, value);
    view.setBigUint64(offset, BigInt.asUintN(64, n), true);
  },
};

function bytesCodec(size: number): Codec<Uint8Array> {
  return {
    size,
    decode: (view, offset = 0) => new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + size)),
    encode: (value, view, offset = 0) => {
      if (!(value instanceof Uint8Array)) throw new TypeError(`expected a Uint8Array of ${size} bytes`);
      if (value.byteLength > size) throw new TypeError(`expected at most ${size} bytes, got ${value.byteLength}`);
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(value);
    },
  };
}

/** An array of u64 addresses, ending at the first zero (stack trace values). */
function addressesCodec(size: number): Codec<bigint[]> {
  return {
    size,
    decode: (view, offset = 0) => {
      const out: bigint[] = [];
      for (let at = offset; at + 8 <= offset + size; at += 8) {
        const ip = view.getBigUint64(at, true);
        if (ip === 0n) break;
        out.push(ip);
      }
      return out;
    },
    encode: (value, view, offset = 0) => value.forEach((ip, i) => view.setBigUint64(offset + i * 8, BigInt(ip), true)),
  };
}

/** What a devmap or cpumap value holds: struct bpf_devmap_val / struct bpf_cpumap_val. */
export interface RedirectValue {
  /** devmap: the interface packets go out of. */
  ifindex?: number;
  /** cpumap: the size of the CPU's queue, in packets. */
  qsize?: number;
  /**
   * Written: a program (`{ fd }`) or its fd, run on each packet after the redirect
   * (SEC("xdp/devmap") / SEC("xdp/cpumap")); values of 8 bytes only.
   */
  prog?: number | { fd: { value: number } };
  /** Read back: the id of that program (0: none). */
  progId?: number;
}

/**
 * struct bpf_devmap_val { u32 ifindex; union { int fd; u32 id; } bpf_prog; } and
 * struct bpf_cpumap_val { u32 qsize; union { int fd; u32 id; } bpf_prog; }: the
 * kernel takes a program fd and gives back its id. With a 4-byte value only the
 * first field exists, and a plain number stands for it.
 */
function redirectCodec(size: number, field: "ifindex" | "qsize"): Codec<RedirectValue | number> {
  return {
    size,
    decode: (view, offset = 0) => {
      const first = view.getUint32(offset, true);
      if (size < 8) return first;
      return { [field]: first, progId: view.getUint32(offset + 4, true) };
    },
    encode: (value, view, offset = 0) => {
      const v: RedirectValue = typeof value === "number" ? { [field]: value } : value;
      const first = v[field];
      if (typeof first !== "number" || !Number.isInteger(first) || first < 0 || first > 2 ** 32 - 1) {
        throw new TypeError(`expected { ${field}: number${size >= 8 ? ", prog?: program or fd" : ""} } or a number, got ${JSON.stringify(value)}`);
      }
      view.setUint32(offset, first, true);
      if (v.prog !== undefined && size < 8) throw new TypeError(`a program needs an 8-byte value (struct bpf_${field === "ifindex" ? "devmap" : "cpumap"}_val), this map's values have ${size} bytes`);
      if (size >= 8) view.setInt32(offset + 4, v.prog === undefined ? 0 : typeof v.prog === "number" ? v.prog : v.prog.fd.value, true);
    },
  };
}

export type MapCodecKind = "plain" | "addresses" | "devmap" | "cpumap";

/** The codec for a key or value of `size` bytes, typed by BTF when known. */
export function mapCodec(size: number, type: Type | undefined, kind: MapCodecKind = "plain"): Codec {
  if (kind === "devmap" || kind === "cpumap") return redirectCodec(size, kind === "devmap" ? "ifindex" : "qsize");
  if (type) {
    const codec = codecFor(type);
    if (codec.size === size) return codec;
  }
  if (kind === "addresses") return addressesCodec(size);
  if (size === 4) return u32;
  if (size === 8) return u64;
  return bytesCodec(size);
}

/** A codec that passes raw bytes through, for the bytes-level API. */
export const rawCodec = bytesCodec;
