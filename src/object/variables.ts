import { codecFor } from "../btf/codec.ts";
import { describe, sizeof, type Type } from "../btf/types.ts";
import type { MapSpec } from "./maps.ts";
import { ObjectError } from "./errors.ts";

/**
 * A global variable of the object, before load: its bytes live in the data
 * section's map contents, so `set()` here is what the kernel gets at load
 * (the way a libbpf skeleton sets `rodata->x` before `__load`).
 */
export class VariableSpec {
  readonly name: string;
  readonly map: MapSpec;
  readonly offset: number;
  readonly size: number;
  readonly type: Type | undefined;

  constructor(name: string, map: MapSpec, offset: number, size: number, type: Type | undefined) {
    this.name = name;
    this.map = map;
    this.offset = offset;
    this.size = size;
    this.type = type;
  }

  /** True for `const volatile` variables (in .rodata): fixed once loaded, known to the verifier. */
  get constant(): boolean {
    return this.map.dataSection === "rodata";
  }

  /** The value as set so far (the section's initial contents otherwise). */
  get(): unknown {
    return this.read(this.map.contents!);
  }

  /** Sets the value the kernel will get at load. */
  set(value: unknown): void {
    this.write(this.map.contents!, value);
  }

  /** Decodes the variable out of a copy of its whole data section. */
  read(section: Uint8Array): unknown {
    return codecFor(this.#type()).decode(this.#view(section), 0);
  }

  /** Encodes `value` into a copy of its whole data section. */
  write(section: Uint8Array, value: unknown): void {
    section.fill(0, this.offset, this.offset + this.size);
    codecFor(this.#type()).encode(value, this.#view(section), 0);
  }

  /** The variable's bytes inside the section contents (a live view). */
  bytes(): Uint8Array {
    return this.map.contents!.subarray(this.offset, this.offset + this.size);
  }

  #view(section: Uint8Array): DataView {
    return new DataView(section.buffer, section.byteOffset + this.offset, this.size);
  }

  #type(): Type {
    if (!this.type) throw new ObjectError(`variable ${this.name} has no BTF type; compile with -g, or use bytes()`);
    const size = sizeof(this.type);
    if (size > this.size) {
      throw new ObjectError(`variable ${this.name}: its BTF type ${describe(this.type)} is ${size} bytes, but the variable is ${this.size}`);
    }
    return this.type;
  }
}
