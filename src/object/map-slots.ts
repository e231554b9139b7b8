// Initial contents of maps of maps and prog arrays (libbpf's init_slots): in C,
// `= { .values = { [0] = &inner_a, [3] = &inner_b } }` on a .maps variable. The
// pointers are 8-byte slots after the definition's last member, each with a
// relocation in .rel.maps naming the map or program; the slot's index is its key.
import type { ElfFile } from "../elf/index.ts";
import { resolve, type Type } from "../btf/types.ts";
import { MapType } from "../internal/sys/constants.ts";
import { traitsOf } from "../maps/traits.ts";
import { ObjectError } from "./errors.ts";
import type { InitialSlot, MapSpec } from "./maps.ts";
import type { ProgramSpec } from "./programs.ts";

const BPF_PTR_SIZE = 8;

/**
 * Reads .rel.maps into each map's `initial` slots. `defs` gives each .maps
 * variable's definition type (for the offset of its `values` member).
 */
export function readMapSlots(
  elf: ElfFile,
  maps: ReadonlyMap<string, MapSpec>,
  defs: ReadonlyMap<string, Type>,
  programs: ReadonlyMap<string, ProgramSpec>,
): void {
  const section = elf.section(".maps");
  if (!section) return;
  const relocations = elf.relocations(section);
  if (relocations.length === 0) return;
  // Each .maps variable's extent: the symbol covers the definition and its initial slots.
  const vars = elf.symbols().filter((s) => s.shndx === section.index && s.name && maps.has(s.name));
  for (const r of relocations) {
    const target = r.symbol;
    const owner = vars.find((v) => v.value <= r.offset && r.offset + BPF_PTR_SIZE <= v.value + v.size);
    if (!owner) throw new ObjectError(`.maps relocation at offset ${r.offset} (to "${target.name}") lies in no map definition`);
    const spec = maps.get(owner.name)!;
    const def = resolve(defs.get(owner.name)!);
    const last = def.kind === "struct" ? def.members.at(-1) : undefined;
    if (!last || last.name !== "values") throw new ObjectError(`map ${spec.name}: it has initial values but no __array(values, ...) member`);
    const at = r.offset - owner.value - last.offset / 8;
    if (at < 0 || at % BPF_PTR_SIZE !== 0) throw new ObjectError(`map ${spec.name}: an initial value at byte ${r.offset - owner.value} is not a slot of "values"`);
    const key = at / BPF_PTR_SIZE;
    const where = `map ${spec.name}: values[${key}] = &${target.name || target.sectionName}`;
    let slot: InitialSlot;
    if (traitsOf(spec.type).holds === "map") {
      if (target.sectionName !== ".maps" || !maps.has(target.name)) throw new ObjectError(`${where}: not a map defined in .maps`);
      if (maps.get(target.name)!.inner) throw new ObjectError(`${where}: a map of maps cannot hold a map of maps`);
      if (spec.type === MapType.HASH_OF_MAPS && spec.keySize !== 4) {
        throw new ObjectError(`${where}: initial values of a hash of maps need a 4-byte key (the slot index is the key), not ${spec.keySize} bytes`);
      }
      slot = { key, kind: "map", name: target.name };
    } else if (spec.type === MapType.PROG_ARRAY) {
      const program = programs.get(target.name);
      if (!program || program.section !== target.sectionName) {
        throw new ObjectError(`${where}: not a program of this object (a function in its own SEC() section; subprograms in .text cannot be tail-called)`);
      }
      slot = { key, kind: "program", name: target.name };
    } else {
      throw new ObjectError(`${where}: only maps of maps and prog arrays take initial values, not ${traitsOf(spec.type).name}`);
    }
    if (key >= spec.maxEntries) throw new ObjectError(`${where}: index ${key} is beyond max_entries ${spec.maxEntries}`);
    spec.initial = [...(spec.initial ?? []).filter((s) => s.key !== key), slot].sort((a, b) => a.key - b.key);
  }
}
