// A parsed BTF blob: the type table plus name lookups.
import { readFileSync } from "node:fs";
import type { StringTable } from "../elf/strings.ts";
import { BtfError, hex } from "./error.ts";
import { parseBtf } from "./parse.ts";
import type { BtfHeader } from "./parse.ts";
import type { Kind, Type } from "./types.ts";

export type TypeOfKind<K extends Kind> = Extract<Type, { kind: K }>;

const kernelSpecs = new Map<string, Spec>();

export class Spec {
  /** The bytes this Spec was parsed from (not copied; do not mutate). */
  readonly raw: Uint8Array;
  readonly header: BtfHeader;
  /** All types, index = type id; types[0] is Void. */
  readonly types: readonly Type[];

  private readonly strings: StringTable;
  private readonly offsets: Uint32Array;
  private nameIndex: Map<string, Type[]> | undefined;

  constructor(raw: Uint8Array) {
    const parsed = parseBtf(raw);
    this.raw = raw;
    this.header = parsed.header;
    this.types = parsed.types;
    this.strings = parsed.strings;
    this.offsets = parsed.offsets;
  }

  /**
   * The running kernel's BTF (or another raw BTF file), parsed once per path
   * and cached for the life of the process.
   */
  static kernel(path = "/sys/kernel/btf/vmlinux"): Spec {
    let spec = kernelSpecs.get(path);
    if (!spec) {
      let raw: Uint8Array;
      try {
        raw = readFileSync(path);
      } catch (err) {
        throw new BtfError(`BTF: cannot read kernel BTF ${path}: ${(err as Error).message}`);
      }
      spec = new Spec(raw);
      kernelSpecs.set(path, spec);
    }
    return spec;
  }

  typeById(id: number): Type {
    const t = this.types[id];
    if (t === undefined) throw new BtfError(`BTF: no type with id ${id} (there are ${this.types.length} types)`);
    return t;
  }

  /** Every type with this name (empty when none). */
  typesByName(name: string): readonly Type[] {
    if (!this.nameIndex) this.nameIndex = this.buildNameIndex();
    return this.nameIndex.get(name) ?? [];
  }

  /** The one type with this name (and kind); throws when missing or ambiguous. */
  typeByName<K extends Kind>(name: string, kind: K): TypeOfKind<K>;
  typeByName(name: string): Type;
  typeByName(name: string, kind?: Kind): Type {
    let found = this.typesByName(name);
    if (kind) found = found.filter((t) => t.kind === kind);
    const what = kind ? `${kind} named '${name}'` : `type named '${name}'`;
    if (found.length === 0) throw new BtfError(`BTF: no ${what}`);
    if (found.length > 1) {
      const ids = found.map((t) => `${t.id} (${t.kind})`).join(", ");
      throw new BtfError(`BTF: ${found.length} types match ${what}: ${ids}${kind ? "" : "; pass a kind"}`);
    }
    return found[0];
  }

  /** The string at `offset` in the string section (for .BTF.ext names). */
  string(offset: number): string {
    const s = this.strings.get(offset);
    if (s === undefined) {
      throw new BtfError(`BTF: string offset ${hex(offset)} outside string section (${hex(this.strings.size)} bytes)`);
    }
    return s;
  }

  /** Byte offset of type `id`'s record within `raw` (used to patch BTF in place). */
  typeOffset(id: number): number {
    if (id <= 0 || id >= this.offsets.length) throw new BtfError(`BTF: no type record for id ${id}`);
    return this.offsets[id];
  }

  private buildNameIndex(): Map<string, Type[]> {
    const index = new Map<string, Type[]>();
    for (const t of this.types) {
      if (t.name === "") continue;
      const list = index.get(t.name);
      if (list) list.push(t);
      else index.set(t.name, [t]);
    }
    return index;
  }
}
