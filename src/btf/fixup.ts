// What libbpf's btf_fixup_datasec does before BTF is loaded: clang 14 emits
// every DATASEC with size 0 and global VARs at offset 0 (the real values are
// only known from the ELF section and symbol table), and the kernel rejects
// that. Static VARs already carry their offsets and are left alone, as libbpf does.
import { SHT_NULL, STB_LOCAL, STT_FUNC, STT_OBJECT, STV_HIDDEN } from "../elf/constants.ts";
import type { ElfFile } from "../elf/file.ts";
import { BtfError } from "./error.ts";
import type { Spec } from "./spec.ts";

export interface SectionLayout {
  /** ELF section size in bytes. */
  size: number;
  /** Offsets of the section's variables (ELF symbol values), by name. */
  symbols: ReadonlyMap<string, number>;
}

// Extern-backed datasecs are laid out by the loader itself, not from the ELF.
const EXTERN_DATASECS = new Set([".kconfig", ".ksyms"]);

/** Section sizes and object symbol offsets of an ELF file, keyed by section name. */
export function sectionLayouts(elf: ElfFile): Map<string, SectionLayout> {
  const symbolsBySection = new Map<number, Map<string, number>>();
  // Locals first so that a global of the same name wins, like find_elf_var_sym.
  const objects = elf.symbols().filter((s) => s.type === STT_OBJECT && s.name !== "");
  objects.sort((a, b) => Number(a.bind !== STB_LOCAL) - Number(b.bind !== STB_LOCAL));
  for (const sym of objects) {
    let map = symbolsBySection.get(sym.shndx);
    if (!map) symbolsBySection.set(sym.shndx, (map = new Map()));
    map.set(sym.name, sym.value);
  }
  const layouts = new Map<string, SectionLayout>();
  for (const sec of elf.sections) {
    if (sec.type === SHT_NULL || layouts.has(sec.name)) continue;
    layouts.set(sec.name, { size: sec.size, symbols: symbolsBySection.get(sec.index) ?? new Map() });
  }
  return layouts;
}

/**
 * Returns a copy of `spec.raw` with DATASEC sizes and VAR offsets filled in
 * from `layouts` (see sectionLayouts) and each DATASEC's entries sorted by
 * offset, as the kernel requires.
 */
export function fixupDatasecs(spec: Spec, layouts: ReadonlyMap<string, SectionLayout>): Uint8Array {
  const out = new Uint8Array(spec.raw); // a copy even when raw is a Buffer (whose slice() is a view)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const t of spec.types) {
    if (t.kind !== "datasec" || EXTERN_DATASECS.has(t.name)) continue;
    const pos = spec.typeOffset(t.id);
    const entries = t.vars.map((v) => ({ typeId: v.type.id, offset: v.offset, size: v.size }));
    if (t.size === 0) {
      const layout = layouts.get(t.name);
      if (!layout || layout.size === 0) {
        throw new BtfError(`BTF: cannot fix up DATASEC ${t.name}: no non-empty ELF section of that name`);
      }
      if (layout.size > 0xffffffff) {
        throw new BtfError(`BTF: cannot fix up DATASEC ${t.name}: its ELF section is ${layout.size} bytes, more than BTF can describe (u32)`);
      }
      view.setUint32(pos + 8, layout.size, true);
      t.vars.forEach((v, i) => {
        const variable = v.type;
        if (variable.kind !== "var" || variable.linkage !== "global") return;
        const offset = layout.symbols.get(variable.name);
        if (offset === undefined) {
          throw new BtfError(`BTF: cannot fix up DATASEC ${t.name}: no ELF symbol for VAR '${variable.name}'`);
        }
        // Where it lies in its section is the object's to check; here only that BTF can hold it.
        if (offset > 0xffffffff) {
          throw new BtfError(`BTF: cannot fix up DATASEC ${t.name}: VAR '${variable.name}' is at ${offset}, more than BTF can describe (u32)`);
        }
        entries[i].offset = offset;
      });
    }
    entries.sort((a, b) => a.offset - b.offset); // stable: ties keep their order
    entries.forEach((e, i) => {
      const at = pos + 12 + i * 12;
      view.setUint32(at, e.typeId, true);
      view.setUint32(at + 4, e.offset, true);
      view.setUint32(at + 8, e.size, true);
    });
  }
  return out;
}

/**
 * Marks the BTF of hidden global functions (`__hidden`, as usdt.bpf.h's
 * bpf_usdt_arg) static in place, as libbpf does (mark_btf_static): the kernel
 * verifies a global function on its own, without its caller's argument types,
 * and rejects usdt.bpf.h's helpers that way. `btf` is the fixed-up copy.
 */
export function markHiddenFuncsStatic(btf: Uint8Array, spec: Spec, elf: ElfFile): void {
  const hidden = new Set(elf.symbols().filter((s) => s.type === STT_FUNC && s.bind !== STB_LOCAL && s.visibility === STV_HIDDEN).map((s) => s.name));
  if (!hidden.size) return;
  const view = new DataView(btf.buffer, btf.byteOffset, btf.byteLength);
  for (const t of spec.types) {
    if (t.kind !== "func" || t.linkage !== "global" || !hidden.has(t.name)) continue;
    const at = spec.typeOffset(t.id) + 4; // the info word: vlen (the linkage) in its low 16 bits
    view.setUint32(at, view.getUint32(at, true) & ~0xffff, true);
  }
}
