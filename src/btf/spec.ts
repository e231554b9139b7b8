// A parsed BTF blob: the type table plus name lookups.
import { readFileSync } from "node:fs";
import { BtfError, hex } from "./error.ts";
import { indexBtf, KIND_NAMES, kindNumOf, linkType, parseBtf, readType, voidType } from "./parse.ts";
import type { Bind, BtfHeader, BtfIndex } from "./parse.ts";
import type { Kind, Type, Void } from "./types.ts";

export type TypeOfKind<K extends Kind> = Extract<Type, { kind: K }>;

const kernelSpecs = new Map<string, Spec>();

export interface SpecOptions {
  /**
   * Make each type's object when it is first asked for, and resolve its references on
   * first access. For a kernel's BTF (over 100k types, already checked by the kernel that
   * made it), of which a program touches a few hundred: 50 ms instead of 440 ms for 6.18's.
   * Errors in the data then surface where the type is read. Default false: every type
   * is read and checked at once.
   */
  lazy?: boolean;
  /**
   * The BTF this one is split from (a kernel module's BTF sits on vmlinux's): ids and
   * string offsets continue the base's, and its types may refer to the base's. Split
   * BTF is always read lazily.
   */
  base?: Spec;
}

export class Spec {
  /** The bytes this Spec was parsed from (not copied; do not mutate). */
  readonly raw: Uint8Array;
  readonly header: BtfHeader;

  /** The BTF this one is split from (undefined for standalone BTF such as vmlinux's or an object's). */
  readonly base: Spec | undefined;
  private readonly index: BtfIndex;
  /** Type objects by id - index.idBase; in a lazy Spec, filled as they are asked for. */
  private readonly objects: Type[];
  private complete: boolean;
  /** Names looked up so far, with their type ids. */
  private readonly byName = new Map<string, readonly number[]>();

  constructor(raw: Uint8Array, opts: SpecOptions = {}) {
    this.raw = raw;
    this.base = opts.base;
    if (opts.base) {
      this.index = indexBtf(raw, opts.base.index);
      this.objects = new Array(this.index.kinds.length);
      this.objects[0] = opts.base.typeById(this.index.idBase);
      this.complete = this.objects.length === 1;
    } else if (opts.lazy) {
      this.index = indexBtf(raw);
      this.objects = new Array(this.index.kinds.length);
      this.objects[0] = voidType();
      this.complete = this.objects.length === 1;
    } else {
      const parsed = parseBtf(raw);
      this.index = parsed.index;
      this.objects = parsed.types;
      this.complete = true;
    }
    this.header = this.index.header;
  }

  /**
   * The running kernel's BTF (or another raw BTF file), parsed lazily once per
   * path and cached for the life of the process.
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
      spec = new Spec(raw, { lazy: true });
      kernelSpecs.set(path, spec);
    }
    return spec;
  }

  /**
   * Drops the cached kernel BTF (about 9 MiB for a 6.x vmlinux), for a long-running
   * process that has loaded its programs and will not relocate more: the next
   * `Spec.kernel()` reads it again.
   */
  static releaseKernel(): void {
    kernelSpecs.clear();
  }

  /** How many types there are, void included (ids 0 .. typeCount-1). */
  get typeCount(): number {
    return this.index.idBase + this.objects.length;
  }

  /** Ids of this BTF's own types: 1.. for standalone BTF, from the base's count on for split BTF. */
  get firstOwnId(): number {
    return this.index.idBase + 1;
  }

  /**
   * All types, index = type id; types[0] is Void (split BTF: the base's types first).
   * In a lazy Spec this reads every type: prefer typeById and typesByName.
   */
  get types(): readonly Type[] {
    if (!this.complete) {
      for (let id = this.firstOwnId; id < this.typeCount; id++) this.typeById(id);
      this.complete = true;
    }
    return this.base ? [...this.base.types, ...this.objects.slice(1)] : this.objects;
  }

  /** The kind of type `id`, without reading the rest of it. */
  kindOf(id: number): Kind {
    this.checkId(id);
    return KIND_NAMES[kindNumOf(this.index, id)];
  }

  typeById(id: number): Type {
    if (this.base && id <= this.index.idBase) return this.base.typeById(id);
    const t = this.objects[id - this.index.idBase];
    if (t !== undefined) return t;
    this.checkId(id);
    return this.materialize(id);
  }

  private checkId(id: number): void {
    if (!(Number.isInteger(id) && id >= 0 && id < this.typeCount)) {
      throw new BtfError(`BTF: no type with id ${id} (there are ${this.typeCount} types)`);
    }
  }

  /** Every type with this name (empty when none). */
  typesByName(name: string): readonly Type[] {
    return this.typeIdsByName(name).map((id) => this.typeById(id));
  }

  /**
   * The ids of every type with this name, in id order (empty when none). There is no
   * name index to build: the name is found in the string table, then its offset among
   * the types' name offsets (about 1 ms for a kernel's BTF, and remembered).
   */
  typeIdsByName(name: string): readonly number[] {
    let ids = this.byName.get(name);
    if (!ids) {
      ids = name === "" ? [] : this.idsNamedAt(this.index.strings.offsetsOf(name));
      if (this.base && name !== "") ids = [...this.base.typeIdsByName(name), ...ids];
      this.byName.set(name, ids);
    }
    return ids;
  }

  /** Every type name that contains `part`, with the ids of its types (for CO-RE's `___flavor` names). */
  namesContaining(part: string): Map<string, number[]> {
    const out = this.base ? this.base.namesContaining(part) : new Map<string, number[]>();
    for (const id of this.idsNamedAt(this.index.strings.offsetsContaining(part))) {
      const name = this.string(this.index.names[id - this.index.idBase]);
      const list = out.get(name);
      if (list) list.push(id);
      else out.set(name, [id]);
    }
    return out;
  }

  /** The ids of this BTF's own types whose name starts at one of these string offsets. */
  private idsNamedAt(offsets: number[]): number[] {
    const ids: number[] = [];
    if (offsets.length === 0) return ids;
    const names = this.index.names;
    const idBase = this.index.idBase;
    if (offsets.length === 1) {
      const at = offsets[0];
      for (let i = 1; i < names.length; i++) if (names[i] === at) ids.push(idBase + i);
    } else {
      const set = new Set(offsets);
      for (let i = 1; i < names.length; i++) if (set.has(names[i])) ids.push(idBase + i);
    }
    return ids;
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
    const s = this.index.strings.get(offset);
    if (s === undefined) {
      throw new BtfError(`BTF: string offset ${hex(offset)} outside string section (${hex(this.index.strings.size)} bytes)`);
    }
    return s;
  }

  /** Byte offset of type `id`'s record within `raw` (used to patch BTF in place). */
  typeOffset(id: number): number {
    const i = id - this.index.idBase;
    if (i <= 0 || i >= this.index.offsets.length) throw new BtfError(`BTF: no type record for id ${id} in this BTF`);
    return this.index.offsets[i];
  }

  /** Reads type `id` (lazy Specs only) and binds its references to be read when first followed. */
  private materialize(id: number): Type {
    const t = readType(this.index, id, this.typeById(0) as Void);
    const bind: Bind = (owner, key, to) =>
      Object.defineProperty(owner, key, {
        configurable: true,
        enumerable: true,
        get: () => {
          const target = this.typeById(to);
          Object.defineProperty(owner, key, { value: target, writable: true, enumerable: true, configurable: true });
          return target;
        },
        set: (value: Type) => Object.defineProperty(owner, key, { value, writable: true, enumerable: true, configurable: true }),
      });
    linkType(this.index, t, bind); // binds getters only: no other type is read here
    this.objects[id - this.index.idBase] = t; // after linking, so a record that fails to link fails every time
    return t;
  }
}
