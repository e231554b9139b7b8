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

/** The codec for a key or value of `size` bytes, typed by BTF when known. */
export function mapCodec(size: number, type: Type | undefined, kind: "plain" | "addresses" = "plain"): Codec {
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
