// ELF64 little-endian reader. Every offset read from the file is checked
// against the file (or the table it indexes) before use, so malformed input
// fails with an ElfError naming the bad field, never with a RangeError.
import { readFileSync } from "node:fs";
import {
  EHDR_SIZE, ELFCLASS64, ELFDATA2LSB, ELFMAG, PHDR_SIZE, REL_SIZE, RELA_SIZE,
  SHDR_SIZE, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_DYNSYM, SHT_NOBITS, SHT_NULL,
  SHT_NOTE, SHT_REL, SHT_RELA, SHT_STRTAB, SHT_SYMTAB, SHT_SYMTAB_SHNDX, SYM_SIZE,
} from "./constants.ts";
import { ElfError, hex } from "./error.ts";
import { StringTable } from "./strings.ts";
import { findSymbolFileOffset } from "./uprobe.ts";

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  readonly addr: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
  /** A view (not a copy) of the section's bytes; empty for SHT_NOBITS and SHT_NULL. */
  data(): Uint8Array;
}

export interface ElfSymbol {
  /** Index in its symbol table. */
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly size: number;
  /** STT_* */
  readonly type: number;
  /** STB_* */
  readonly bind: number;
  /** STV_* */
  readonly visibility: number;
  /** Section index, or a special SHN_* value (SHN_UNDEF, SHN_ABS, SHN_COMMON). */
  readonly shndx: number;
  /** Name of the section the symbol is defined in; undefined for special indices. */
  readonly sectionName: string | undefined;
}

export interface ElfRelocation {
  /** Offset of the patched location within the target section. */
  readonly offset: number;
  /** R_* (for BPF objects R_BPF_*). */
  readonly type: number;
  readonly symbol: ElfSymbol;
  /** Explicit addend for SHT_RELA, 0 for SHT_REL (BPF uses REL; the addend is in the insn). */
  readonly addend: number;
}

/** One record of a SHT_NOTE section (Elf64_Nhdr, its name and its descriptor). */
export interface ElfNote {
  /** The owner ("GNU", "stapsdt"), without its NUL. */
  readonly name: string;
  readonly type: number;
  /** A view (not a copy) of the descriptor's bytes. */
  readonly desc: Uint8Array;
  /** Offset of the record in its section. */
  readonly offset: number;
}

export interface ElfProgramHeader {
  /** PT_* */
  readonly type: number;
  /** PF_* */
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: number;
  readonly paddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
}

// 64-bit fields as numbers: exact below 2^53, which covers every file offset
// and size; only addresses above 2^53 (kernel images) lose low bits.
function u64(view: DataView, off: number): number {
  return view.getUint32(off, true) + view.getUint32(off + 4, true) * 0x1_0000_0000;
}
// Offsets and sizes must be exact: 2^53 or more is refused, not rounded (no file is that big).
const MAX_EXACT_HIGH = 0x20_0000; // 2^53 / 2^32
function s64(view: DataView, off: number): number {
  return view.getUint32(off, true) + view.getInt32(off + 4, true) * 0x1_0000_0000;
}

const EMPTY = new Uint8Array(0);
// Note names and descriptors are padded to 4 bytes (lengths up to 2^32 stay exact in a number).
const align4 = (n: number) => Math.ceil(n / 4) * 4;

export class ElfFile {
  /** The file name used in error messages. */
  readonly path: string;
  readonly bytes: Uint8Array;
  /** e_type: ET_REL, ET_EXEC, ET_DYN, ... */
  readonly type: number;
  /** e_machine: EM_BPF, EM_X86_64, ... */
  readonly machine: number;
  readonly entry: number;
  readonly flags: number;
  readonly sections: readonly ElfSection[];
  readonly programHeaders: readonly ElfProgramHeader[];

  private readonly view: DataView;
  private readonly symbolTables = new Map<number, ElfSymbol[]>();
  private readonly stringTables = new Map<number, StringTable>();

  static open(path: string): ElfFile {
    return new ElfFile(readFileSync(path), path);
  }

  constructor(bytes: Uint8Array, path = "<buffer>") {
    this.path = path;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const v = this.view;
    const len = bytes.length;
    if (len < 4) this.fail(`file is ${len} bytes, too short for an ELF header`);
    if (v.getUint32(0, true) !== ELFMAG) this.fail(`bad magic ${hex(v.getUint32(0, false))}, not an ELF file`);
    if (len < 6) this.fail(`file is ${len} bytes, too short for an ELF header`);
    if (bytes[4] !== ELFCLASS64) this.fail(`ELF class ${bytes[4]} not supported (only ELF64)`);
    if (bytes[5] !== ELFDATA2LSB) this.fail(`data encoding ${bytes[5]} not supported (only little-endian)`);
    if (len < EHDR_SIZE) this.fail(`truncated ELF header: file is ${len} bytes, header needs ${EHDR_SIZE}`);
    this.type = v.getUint16(16, true);
    this.machine = v.getUint16(18, true);
    this.entry = u64(v, 24);
    this.flags = v.getUint32(48, true);
    this.sections = this.readSections();
    this.programHeaders = this.readProgramHeaders();
  }

  /** The first section with this name. */
  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Symbols of .symtab (empty when the file is stripped). */
  symbols(): ElfSymbol[] {
    const tab = this.sections.find((s) => s.type === SHT_SYMTAB);
    return tab ? this.symbolTable(tab) : [];
  }

  /** Symbols of .dynsym (empty when there is none). */
  dynamicSymbols(): ElfSymbol[] {
    const tab = this.sections.find((s) => s.type === SHT_DYNSYM);
    return tab ? this.symbolTable(tab) : [];
  }

  /** Relocations of every SHT_REL/SHT_RELA section whose sh_info is `target`. */
  relocations(target: ElfSection | string | number): ElfRelocation[] {
    const sec = this.resolveSection(target);
    const out: ElfRelocation[] = [];
    for (const rel of this.sections) {
      if ((rel.type === SHT_REL || rel.type === SHT_RELA) && rel.info === sec.index && sec.index !== 0) {
        this.readRelocations(rel, out);
      }
    }
    return out;
  }

  /**
   * File offset of function `name` for uprobes: looked up in .symtab, then
   * .dynsym, and its address translated through its section (as libbpf does).
   */
  symbolFileOffset(name: string): number {
    return findSymbolFileOffset(this, name);
  }

  /**
   * The records of the note section `name` (".note.stapsdt", ".note.gnu.build-id"),
   * empty when there is no such section. Names and descriptors are 4-byte aligned,
   * as every ELF64 producer writes them for SHT_NOTE.
   */
  notes(name: string): ElfNote[] {
    const sec = this.section(name);
    if (!sec || sec.type !== SHT_NOTE) return [];
    const data = sec.data();
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const out: ElfNote[] = [];
    const decoder = new TextDecoder();
    for (let o = 0; o < data.length; ) {
      if (o + 12 > data.length) this.fail(`note at ${hex(o)} in ${name} is truncated (${data.length - o} bytes left, a header is 12)`);
      const namesz = v.getUint32(o, true);
      const descsz = v.getUint32(o + 4, true);
      const nameAt = o + 12;
      const descAt = nameAt + align4(namesz);
      const next = descAt + align4(descsz);
      if (next > data.length) this.fail(`note at ${hex(o)} in ${name} runs past the section (name ${namesz} bytes, descriptor ${descsz} bytes, section ${data.length})`);
      const nameBytes = data.subarray(nameAt, nameAt + namesz);
      const nul = nameBytes.indexOf(0);
      out.push({ name: decoder.decode(nul >= 0 ? nameBytes.subarray(0, nul) : nameBytes), type: v.getUint32(o + 8, true), desc: data.subarray(descAt, descAt + descsz), offset: o });
      o = next;
    }
    return out;
  }

  /** A u64 offset or size field, refused when 2^53 or more (a number would not hold it exactly). */
  private size64(off: number, what: () => string): number {
    const high = this.view.getUint32(off + 4, true);
    if (high >= MAX_EXACT_HIGH) this.fail(`${what()} is ${hex(this.view.getBigUint64(off, true))}, more than any file can hold (2^53 bytes or more)`);
    return this.view.getUint32(off, true) + high * 0x1_0000_0000;
  }

  /** Throws an ElfError naming the file (when it has a path). */
  fail(message: string): never {
    throw new ElfError(this.path === "<buffer>" ? `ELF: ${message}` : `ELF: ${this.path}: ${message}`);
  }

  private readSections(): ElfSection[] {
    const v = this.view;
    const len = this.bytes.length;
    const shoff = this.size64(40, () => "e_shoff");
    const shentsize = v.getUint16(58, true);
    let shnum = v.getUint16(60, true);
    let shstrndx = v.getUint16(62, true);
    if (shoff === 0) return [];
    if (shentsize !== SHDR_SIZE) this.fail(`section header size ${shentsize}, expected ${SHDR_SIZE}`);
    if (shoff + SHDR_SIZE > len) {
      this.fail(`section header table at ${hex(shoff)} runs past end of file (${hex(len)} bytes)`);
    }
    // Extended numbering: the real counts live in section 0's header.
    if (shnum === 0) shnum = this.size64(shoff + 32, () => "the extended section count");
    if (shstrndx === SHN_XINDEX) shstrndx = v.getUint32(shoff + 40, true);
    const tableSize = shnum * SHDR_SIZE;
    if (shoff + tableSize > len) {
      this.fail(`section header table at ${hex(shoff)}+${hex(tableSize)} (${shnum} entries) runs past end of file (${hex(len)} bytes)`);
    }
    const raw = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * SHDR_SIZE;
      raw.push({
        index: i,
        nameOffset: v.getUint32(o, true),
        type: v.getUint32(o + 4, true),
        flags: u64(v, o + 8),
        addr: u64(v, o + 16),
        offset: this.size64(o + 24, () => `section ${i}'s sh_offset`),
        size: this.size64(o + 32, () => `section ${i}'s sh_size`),
        link: v.getUint32(o + 40, true),
        info: v.getUint32(o + 44, true),
        addralign: u64(v, o + 48),
        entsize: this.size64(o + 56, () => `section ${i}'s sh_entsize`),
      });
    }
    const hasData = (s: { type: number }) => s.type !== SHT_NOBITS && s.type !== SHT_NULL;
    let names: StringTable | undefined;
    if (shstrndx !== SHN_UNDEF) {
      const strSec = raw[shstrndx];
      if (!strSec) this.fail(`section name table index ${shstrndx} out of range (${shnum} sections)`);
      if (!hasData(strSec)) this.fail(`section name table (index ${shstrndx}) has no data`);
      if (strSec.offset + strSec.size > len) {
        this.fail(`section name table (index ${shstrndx}) at ${hex(strSec.offset)}+${hex(strSec.size)} runs past end of file (${hex(len)} bytes)`);
      }
      names = new StringTable(this.bytes.subarray(strSec.offset, strSec.offset + strSec.size));
    }
    const bytes = this.bytes;
    return raw.map((s) => {
      let name = "";
      if (names && (s.nameOffset !== 0 || s.type !== SHT_NULL)) {
        const n = names.get(s.nameOffset);
        if (n === undefined) {
          this.fail(`section ${s.index} name offset ${hex(s.nameOffset)} outside section name table (${hex(names.size)} bytes)`);
        }
        name = n;
      }
      const dataful = hasData(s);
      if (dataful && s.offset + s.size > len) {
        this.fail(`section ${name} (index ${s.index}) data at ${hex(s.offset)}+${hex(s.size)} runs past end of file (${hex(len)} bytes)`);
      }
      const { nameOffset: _, ...fields } = s;
      const section: ElfSection = {
        ...fields,
        name,
        data: () => (dataful ? bytes.subarray(s.offset, s.offset + s.size) : EMPTY),
      };
      return section;
    });
  }

  private readProgramHeaders(): ElfProgramHeader[] {
    const v = this.view;
    const len = this.bytes.length;
    const phoff = this.size64(32, () => "e_phoff");
    const phentsize = v.getUint16(54, true);
    const phnum = v.getUint16(56, true);
    if (phoff === 0 || phnum === 0) return [];
    if (phentsize !== PHDR_SIZE) this.fail(`program header size ${phentsize}, expected ${PHDR_SIZE}`);
    if (phoff + phnum * PHDR_SIZE > len) {
      this.fail(`program header table at ${hex(phoff)}+${hex(phnum * PHDR_SIZE)} (${phnum} entries) runs past end of file (${hex(len)} bytes)`);
    }
    const out: ElfProgramHeader[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * PHDR_SIZE;
      out.push({
        type: v.getUint32(o, true),
        flags: v.getUint32(o + 4, true),
        offset: this.size64(o + 8, () => `program header ${i}'s p_offset`),
        vaddr: u64(v, o + 16),
        paddr: u64(v, o + 24),
        filesz: this.size64(o + 32, () => `program header ${i}'s p_filesz`),
        memsz: u64(v, o + 40),
        align: u64(v, o + 48),
      });
    }
    return out;
  }

  private resolveSection(target: ElfSection | string | number): ElfSection {
    if (typeof target === "object") return target;
    const sec = typeof target === "string" ? this.section(target) : this.sections[target];
    if (!sec) this.fail(`no section ${typeof target === "string" ? `named ${target}` : `with index ${target}`}`);
    return sec;
  }

  private strings(index: number, user: ElfSection): StringTable {
    let table = this.stringTables.get(index);
    if (table) return table;
    const sec = this.sections[index];
    if (!sec || sec.type !== SHT_STRTAB) {
      this.fail(`${user.name} (index ${user.index}) links to section ${index}, which is not a string table`);
    }
    table = new StringTable(sec.data());
    this.stringTables.set(index, table);
    return table;
  }

  private symbolTable(tab: ElfSection): ElfSymbol[] {
    const cached = this.symbolTables.get(tab.index);
    if (cached) return cached;
    if (tab.type !== SHT_SYMTAB && tab.type !== SHT_DYNSYM) {
      this.fail(`section ${tab.name} (index ${tab.index}) is not a symbol table`);
    }
    if (tab.entsize !== SYM_SIZE && tab.entsize !== 0) {
      this.fail(`symbol table ${tab.name} entry size ${tab.entsize}, expected ${SYM_SIZE}`);
    }
    if (tab.size % SYM_SIZE !== 0) {
      this.fail(`symbol table ${tab.name} size ${hex(tab.size)} is not a multiple of ${SYM_SIZE}`);
    }
    const names = this.strings(tab.link, tab);
    const extIndex = this.extendedIndexes(tab);
    const v = this.view;
    const count = tab.size / SYM_SIZE;
    const symbols: ElfSymbol[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const o = tab.offset + i * SYM_SIZE;
      const nameOffset = v.getUint32(o, true);
      const name = names.get(nameOffset);
      if (name === undefined) {
        this.fail(`symbol ${i} in ${tab.name} has name offset ${hex(nameOffset)} outside its string table (${hex(names.size)} bytes)`);
      }
      const info = this.bytes[o + 4];
      let shndx = v.getUint16(o + 6, true);
      if (shndx === SHN_XINDEX && extIndex) shndx = extIndex.getUint32(i * 4, true);
      let sectionName: string | undefined;
      if (shndx !== SHN_UNDEF && (shndx < SHN_LORESERVE || extIndex)) {
        const sec = this.sections[shndx];
        if (!sec) {
          this.fail(`symbol '${name}' (index ${i}) in ${tab.name} refers to section ${shndx}, but there are only ${this.sections.length} sections`);
        }
        sectionName = sec.name;
      }
      symbols[i] = {
        index: i,
        name,
        value: u64(v, o + 8),
        size: u64(v, o + 16),
        type: info & 0xf,
        bind: info >> 4,
        visibility: this.bytes[o + 5] & 0x3,
        shndx,
        sectionName,
      };
    }
    this.symbolTables.set(tab.index, symbols);
    return symbols;
  }

  // SHT_SYMTAB_SHNDX holds the real section index of symbols whose st_shndx is SHN_XINDEX.
  private extendedIndexes(tab: ElfSection): DataView | undefined {
    const sec = this.sections.find((s) => s.type === SHT_SYMTAB_SHNDX && s.link === tab.index);
    if (!sec) return undefined;
    if (sec.size < (tab.size / SYM_SIZE) * 4) this.fail(`${sec.name} is too small for ${tab.name}`);
    const d = sec.data();
    return new DataView(d.buffer, d.byteOffset, d.byteLength);
  }

  private readRelocations(rel: ElfSection, out: ElfRelocation[]): void {
    const rela = rel.type === SHT_RELA;
    const entsize = rela ? RELA_SIZE : REL_SIZE;
    if (rel.entsize !== entsize && rel.entsize !== 0) {
      this.fail(`relocation section ${rel.name} entry size ${rel.entsize}, expected ${entsize}`);
    }
    if (rel.size % entsize !== 0) {
      this.fail(`relocation section ${rel.name} size ${hex(rel.size)} is not a multiple of ${entsize}`);
    }
    const symtab = this.sections[rel.link];
    if (!symtab || (symtab.type !== SHT_SYMTAB && symtab.type !== SHT_DYNSYM)) {
      this.fail(`relocation section ${rel.name} links to section ${rel.link}, which is not a symbol table`);
    }
    const symbols = this.symbolTable(symtab);
    const v = this.view;
    for (let i = 0; i < rel.size / entsize; i++) {
      const o = rel.offset + i * entsize;
      const symIndex = v.getUint32(o + 12, true);
      const symbol = symbols[symIndex];
      if (!symbol) {
        this.fail(`relocation ${i} in ${rel.name} refers to symbol ${symIndex}, but ${symtab.name} has only ${symbols.length} symbols`);
      }
      out.push({
        offset: u64(v, o),
        type: v.getUint32(o + 8, true),
        symbol,
        addend: rela ? s64(v, o + 16) : 0,
      });
    }
  }
}
