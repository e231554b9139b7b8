// How a map turns keys and values into bytes: through the BTF codec when the
// map has types, by size otherwise (4 bytes: number, 8: bigint, else raw bytes).
import { codecFor, type Codec } from "../btf/codec.ts";
import type { Type } from "../btf/types.ts";

const u32: Codec<number> = {
  size: 4,
  decode: (view, offset = 0) => view.getUint32(offset, true),
  encode: (value, view, offset = 0) => view.setUint32(offset, Number(value) >>> 0, true),
};

const u64: Codec<bigint> = {
  size: 8,
  decode: (view, offset = 0) => view.getBigUint64(offset, true),
  encode: (value, view, offset = 0) => view.setBigUint64(offset, BigInt(value), true),
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
