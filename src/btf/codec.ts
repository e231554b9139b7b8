// The one decoder/encoder used for map keys/values, ring/perf buffer events
// and global variables. Each type's codec is generated as JavaScript source
// once (see codec-gen.ts) and cached, so decoding an event is a single call
// of straight-line code, not a walk over BTF members.
//
// Values: ints up to 32 bits -> number; 64-bit ints, pointers and enum64 ->
// bigint; bool -> boolean; char[N] -> string (up to the first NUL); other
// arrays -> arrays; structs and unions -> plain objects (anonymous members
// flattened, unions with every member); floats -> number. encode() accepts the
// same shapes, zero-fills whatever the value omits, and throws a TypeError
// naming the field path on a value of the wrong type.
import { zero } from "./codec-runtime.ts";
import { CodecSource } from "./codec-gen.ts";
import { BtfError } from "./error.ts";
import { describe, resolve, sizeof } from "./types.ts";
import type { Type } from "./types.ts";

export interface Codec<T = any> {
  /** Bytes occupied by one value. */
  readonly size: number;
  decode(view: DataView, offset?: number): T;
  encode(value: T, view: DataView, offset?: number): void;
}

const cache = new WeakMap<Type, Codec>();

export function codecFor<T = any>(type: Type): Codec<T> {
  let codec = cache.get(type);
  if (!codec) {
    codec = compile(type);
    cache.set(type, codec);
  }
  return codec as Codec<T>;
}

function compile(type: Type): Codec {
  const t = resolve(type);
  if (t.kind === "datasec" && t.size === 0 && t.vars.length > 0) {
    throw new BtfError(`BTF: DATASEC ${t.name} has size 0; apply fixupDatasecs before decoding it`);
  }
  const size = sizeof(type);
  const { decode, encodeInto } = new CodecSource().compile(type, size);
  return {
    size,
    decode: (view, offset = 0) => decode(view, offset),
    encode(value, view, offset = 0) {
      if (offset < 0 || offset + size > view.byteLength) {
        throw new RangeError(`codec for ${describe(t)}: ${size} bytes at offset ${offset} do not fit in a DataView of ${view.byteLength} bytes`);
      }
      zero(view, offset, size);
      encodeInto(value, view, offset, "");
    },
  };
}
