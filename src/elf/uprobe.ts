// Symbol name -> file offset, for attaching uprobes (the kernel wants an
// offset into the file, not a virtual address). Mirrors libbpf's
// elf_find_func_offset: offset = st_value - sh_addr + sh_offset.
import {
  ET_REL, PT_LOAD, SHN_LORESERVE, SHN_UNDEF, SHT_NOBITS, STB_LOCAL, STT_FUNC, STT_GNU_IFUNC,
} from "./constants.ts";
import { ElfError, hex } from "./error.ts";
import type { ElfFile, ElfSymbol } from "./file.ts";

// Names in .symtab of static binaries may carry a version ("memcpy@GLIBC_2.2.5"),
// and users may pass the versioned name `nm -D` prints for a .dynsym entry.
function nameMatches(symbolName: string, wanted: string): boolean {
  if (symbolName === wanted) return true;
  const at = symbolName.indexOf("@");
  if (at >= 0 && !wanted.includes("@")) return symbolName.slice(0, at) === wanted;
  const wantedAt = wanted.indexOf("@");
  return wantedAt >= 0 && !symbolName.includes("@") && symbolName === wanted.slice(0, wantedAt);
}

const isDefinedFunction = (s: ElfSymbol) =>
  (s.type === STT_FUNC || s.type === STT_GNU_IFUNC) && s.shndx !== SHN_UNDEF && s.value !== 0;

function pickOne(elf: ElfFile, name: string, found: ElfSymbol[]): ElfSymbol {
  // Several entries for one address (aliases, .symtab + versions) are fine.
  const globals = found.filter((s) => s.bind !== STB_LOCAL);
  const pool = globals.length > 0 ? globals : found;
  const addresses = [...new Set(pool.map((s) => s.value))];
  if (addresses.length > 1) {
    elf.fail(`symbol '${name}' is ambiguous: defined at ${addresses.map(hex).join(", ")}`);
  }
  return pool[0];
}

function toFileOffset(elf: ElfFile, sym: ElfSymbol): number {
  const sec = sym.shndx < SHN_LORESERVE ? elf.sections[sym.shndx] : undefined;
  if (sec && sec.type !== SHT_NOBITS) {
    if (elf.type === ET_REL) return sec.offset + sym.value; // values are section-relative
    if (sym.value >= sec.addr && sym.value < sec.addr + sec.size) {
      return sym.value - sec.addr + sec.offset;
    }
  }
  for (const ph of elf.programHeaders) {
    if (ph.type === PT_LOAD && sym.value >= ph.vaddr && sym.value < ph.vaddr + ph.filesz) {
      return sym.value - ph.vaddr + ph.offset;
    }
  }
  return elf.fail(`symbol '${sym.name}' at ${hex(sym.value)} is not inside any section or loadable segment`);
}

export function findSymbolFileOffset(elf: ElfFile, name: string): number {
  let undefinedSeen = false;
  for (const table of [elf.symbols(), elf.dynamicSymbols()]) {
    const matches = table.filter((s) => nameMatches(s.name, name));
    const functions = matches.filter(isDefinedFunction);
    if (functions.length > 0) return toFileOffset(elf, pickOne(elf, name, functions));
    if (matches.some((s) => s.shndx === SHN_UNDEF)) undefinedSeen = true;
  }
  if (undefinedSeen) {
    throw new ElfError(`ELF: symbol '${name}' is not defined in ${elf.path} (it is imported from another object)`);
  }
  throw new ElfError(`ELF: symbol '${name}' not found in ${elf.path} (searched .symtab and .dynsym for a defined function)`);
}
