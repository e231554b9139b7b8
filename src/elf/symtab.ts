// What a symbolizer needs of an executable or shared library, read by offset
// (pread) instead of loading the whole file as ElfFile does: a 100 MB binary
// costs its headers, its notes and its symbol tables, nothing else. Function
// symbols are kept as sorted typed arrays; names are decoded on lookup.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import {
  ELFCLASS64, ELFDATA2LSB, ELFMAG, PT_LOAD, PT_NOTE, SHDR_SIZE, SHT_DYNSYM, SHT_NOBITS, SHT_NOTE, SHT_SYMTAB,
  STT_FUNC, STT_GNU_IFUNC, SYM_SIZE, PHDR_SIZE, SHN_UNDEF,
} from "./constants.ts";
import { ElfError } from "./error.ts";

/** Random access to an ELF image: a file (by pread) or bytes in memory. */
export interface ElfSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export function fileSource(path: string): ElfSource {
  const fd = openSync(path, "r");
  const size = fstatSync(fd).size;
  return {
    size,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) throw new ElfError(`${path}: read of ${length} bytes at ${offset} past the end (${size} bytes)`);
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buf, done, length - done, offset + done);
        if (n <= 0) throw new ElfError(`${path}: short read at ${offset + done}`);
        done += n;
      }
      return buf;
    },
    close: () => closeSync(fd),
  };
}

export function bufferSource(bytes: Uint8Array, name = "<buffer>"): ElfSource {
  return {
    size: bytes.byteLength,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.byteLength) throw new ElfError(`${name}: read of ${length} bytes at ${offset} past the end (${bytes.byteLength} bytes)`);
      return bytes.subarray(offset, offset + length);
    },
    close() {},
  };
}

export interface LoadSegment {
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  /** PF_X = 1, PF_W = 2, PF_R = 4 */
  flags: number;
}

interface SectionHeader {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
}

function u64(v: DataView, o: number): number {
  return v.getUint32(o, true) + v.getUint32(o + 4, true) * 0x1_0000_0000;
}
function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
const utf8 = new TextDecoder();

/** The headers of an ELF image and what hangs off them, each read when first asked for. */
export class ElfImage {
  readonly source: ElfSource;
  readonly name: string;
  readonly type: number;
  readonly loads: LoadSegment[];
  readonly #phdrs: { type: number; offset: number; filesz: number }[];
  #sections: SectionHeader[] | undefined;

  constructor(source: ElfSource, name: string) {
    this.source = source;
    this.name = name;
    if (source.size < 64) throw new ElfError(`${name}: too short for an ELF header`);
    const ehdr = source.read(0, 64);
    const v = dv(ehdr);
    if (v.getUint32(0, true) !== ELFMAG) throw new ElfError(`${name}: not an ELF file`);
    if (ehdr[4] !== ELFCLASS64 || ehdr[5] !== ELFDATA2LSB) throw new ElfError(`${name}: only 64-bit little-endian ELF is supported`);
    this.type = v.getUint16(16, true);
    const phoff = u64(v, 32);
    const phnum = v.getUint16(56, true);
    this.loads = [];
    this.#phdrs = [];
    if (phoff && phnum) {
      const ph = dv(source.read(phoff, phnum * PHDR_SIZE));
      for (let i = 0; i < phnum; i++) {
        const o = i * PHDR_SIZE;
        const type = ph.getUint32(o, true);
        const seg = { offset: u64(ph, o + 8), vaddr: u64(ph, o + 16), filesz: u64(ph, o + 32), memsz: u64(ph, o + 40), flags: ph.getUint32(o + 4, true) };
        this.#phdrs.push({ type, offset: seg.offset, filesz: seg.filesz });
        if (type === PT_LOAD) this.loads.push(seg);
      }
    }
    this.#ehdr = v;
  }
  readonly #ehdr: DataView;

  static open(path: string): ElfImage {
    const src = fileSource(path);
    try {
      return new ElfImage(src, path);
    } catch (err) {
      src.close();
      throw err;
    }
  }

  close(): void {
    this.source.close();
  }

  get sections(): SectionHeader[] {
    if (this.#sections) return this.#sections;
    const v = this.#ehdr;
    const shoff = u64(v, 40);
    const shnum = v.getUint16(60, true);
    const shstrndx = v.getUint16(62, true);
    const out: SectionHeader[] = [];
    if (shoff && shnum && shoff + shnum * SHDR_SIZE <= this.source.size) {
      const sh = dv(this.source.read(shoff, shnum * SHDR_SIZE));
      const raw = [];
      for (let i = 0; i < shnum; i++) {
        const o = i * SHDR_SIZE;
        raw.push({ nameOff: sh.getUint32(o, true), type: sh.getUint32(o + 4, true), addr: u64(sh, o + 16), offset: u64(sh, o + 24), size: u64(sh, o + 32), link: sh.getUint32(o + 40, true) });
      }
      const strSec = raw[shstrndx];
      const names = strSec && strSec.type !== SHT_NOBITS && strSec.offset + strSec.size <= this.source.size ? this.source.read(strSec.offset, strSec.size) : new Uint8Array(0);
      for (const s of raw) out.push({ name: cstr(names, s.nameOff), type: s.type, addr: s.addr, offset: s.offset, size: s.size, link: s.link });
    }
    return (this.#sections = out);
  }

  section(name: string): SectionHeader | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** The bytes of a section (undefined when absent, NOBITS or outside the file). */
  sectionData(name: string): Uint8Array | undefined {
    const s = this.section(name);
    if (!s || s.type === SHT_NOBITS || s.offset + s.size > this.source.size) return undefined;
    return this.source.read(s.offset, s.size);
  }

  /** The GNU build id (NT_GNU_BUILD_ID) as hex, from the notes segments or sections. */
  buildId(): string | undefined {
    const notes: Uint8Array[] = [];
    for (const p of this.#phdrs) if (p.type === PT_NOTE && p.offset + p.filesz <= this.source.size) notes.push(this.source.read(p.offset, p.filesz));
    if (!notes.length) for (const s of this.sections) if (s.type === SHT_NOTE && s.offset + s.size <= this.source.size) notes.push(this.source.read(s.offset, s.size));
    for (const n of notes) {
      const id = findBuildId(n);
      if (id) return id;
    }
    return undefined;
  }

  /** .gnu_debuglink: the separate debug file's name and the CRC32 of its contents. */
  debuglink(): { file: string; crc: number } | undefined {
    const d = this.sectionData(".gnu_debuglink");
    if (!d) return undefined;
    const file = cstr(d, 0);
    const crcAt = (file.length + 4) & ~3;
    if (!file || crcAt + 4 > d.length) return undefined;
    return { file, crc: dv(d).getUint32(crcAt, true) };
  }

  hasSymtab(): boolean {
    return this.sections.some((s) => s.type === SHT_SYMTAB && s.size > 0);
  }

  /** Function symbols of .symtab and .dynsym (`which` narrows it). */
  functions(which: "all" | "symtab" | "dynsym" = "all"): FunctionTable {
    const tables: { data: Uint8Array; strings: Uint8Array }[] = [];
    for (const s of this.sections) {
      const want = s.type === SHT_SYMTAB ? which !== "dynsym" : s.type === SHT_DYNSYM ? which !== "symtab" : false;
      if (!want || s.type === SHT_NOBITS || s.offset + s.size > this.source.size) continue;
      const str = this.sections[s.link];
      if (!str || str.offset + str.size > this.source.size) continue;
      tables.push({ data: this.source.read(s.offset, s.size - (s.size % SYM_SIZE)), strings: this.source.read(str.offset, str.size) });
    }
    return FunctionTable.build(tables);
  }
}

function cstr(b: Uint8Array, off: number): string {
  if (off >= b.length) return "";
  let end = b.indexOf(0, off);
  if (end < 0) end = b.length;
  return utf8.decode(b.subarray(off, end));
}

/** Walks Elf64_Nhdr records for NT_GNU_BUILD_ID (type 3, name "GNU"). */
export function findBuildId(notes: Uint8Array): string | undefined {
  const v = dv(notes);
  let o = 0;
  while (o + 12 <= notes.length) {
    const namesz = v.getUint32(o, true);
    const descsz = v.getUint32(o + 4, true);
    const type = v.getUint32(o + 8, true);
    const nameAt = o + 12;
    const descAt = nameAt + ((namesz + 3) & ~3);
    const next = descAt + ((descsz + 3) & ~3);
    if (next > notes.length) break;
    if (type === 3 && namesz === 4 && notes[nameAt] === 0x47 && notes[nameAt + 1] === 0x4e && notes[nameAt + 2] === 0x55) {
      let s = "";
      for (let i = 0; i < descsz; i++) s += notes[descAt + i]!.toString(16).padStart(2, "0");
      return s;
    }
    o = next;
  }
  return undefined;
}

/** Function symbols sorted by address, with sizes; names decoded when looked up. */
export class FunctionTable {
  readonly addrs: Float64Array;
  readonly sizes: Float64Array;
  readonly #nameOffs: Uint32Array;
  readonly #tableOf: Uint8Array;
  readonly #strings: Uint8Array[];
  readonly #names: (string | undefined)[];

  private constructor(addrs: Float64Array, sizes: Float64Array, nameOffs: Uint32Array, tableOf: Uint8Array, strings: Uint8Array[]) {
    this.addrs = addrs;
    this.sizes = sizes;
    this.#nameOffs = nameOffs;
    this.#tableOf = tableOf;
    this.#strings = strings;
    this.#names = new Array(addrs.length);
  }

  static build(tables: { data: Uint8Array; strings: Uint8Array }[]): FunctionTable {
    let count = 0;
    for (const t of tables) count += t.data.length / SYM_SIZE;
    const addrs = new Float64Array(count);
    const sizes = new Float64Array(count);
    const nameOffs = new Uint32Array(count);
    const tableOf = new Uint8Array(count);
    const rank = new Uint8Array(count);
    let n = 0;
    tables.forEach((t, ti) => {
      const v = dv(t.data);
      for (let o = 0; o + SYM_SIZE <= t.data.length; o += SYM_SIZE) {
        const type = t.data[o + 4]! & 0xf;
        if (type !== STT_FUNC && type !== STT_GNU_IFUNC) continue;
        if (v.getUint16(o + 6, true) === SHN_UNDEF) continue;
        const value = u64(v, o + 8);
        const nameOff = v.getUint32(o, true);
        if (value === 0 || nameOff === 0) continue;
        addrs[n] = value;
        sizes[n] = u64(v, o + 16);
        nameOffs[n] = nameOff;
        tableOf[n] = ti;
        // Aliases share an address (getppid, __GI_getppid): global, then weak, then local names.
        const bind = t.data[o + 4]! >> 4;
        rank[n] = bind === 1 ? 0 : bind === 2 ? 1 : 2;
        n++;
      }
    });
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    // Same address: the sized one first, then global before weak before local, then the first table's.
    order.sort((a, b) => addrs[a]! - addrs[b]! || (sizes[a]! > 0 ? 0 : 1) - (sizes[b]! > 0 ? 0 : 1) || rank[a]! - rank[b]! || a - b);
    // One entry per address.
    const keep: number[] = [];
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      if (keep.length && addrs[keep[keep.length - 1]!] === addrs[i]) continue;
      keep.push(i);
    }
    const A = new Float64Array(keep.length);
    const S = new Float64Array(keep.length);
    const N = new Uint32Array(keep.length);
    const T = new Uint8Array(keep.length);
    keep.forEach((i, k) => {
      A[k] = addrs[i]!;
      S[k] = sizes[i]!;
      N[k] = nameOffs[i]!;
      T[k] = tableOf[i]!;
    });
    return new FunctionTable(A, S, N, T, tables.map((t) => t.strings));
  }

  get length(): number {
    return this.addrs.length;
  }

  name(i: number): string {
    let s = this.#names[i];
    if (s === undefined) {
      s = cstr(this.#strings[this.#tableOf[i]!]!, this.#nameOffs[i]!);
      // Versioned definitions in .symtab ("memcpy@@GLIBC_2.14"): the name as callers know it.
      const at = s.indexOf("@");
      if (at > 0) s = s.slice(0, at);
      this.#names[i] = s;
    }
    return s;
  }

  /** The function containing `vaddr` (an address in the file's own layout), or undefined. */
  lookup(vaddr: number): { name: string; address: number; offset: number } | undefined {
    const a = this.addrs;
    if (!a.length || vaddr < a[0]!) return undefined;
    let lo = 0;
    let hi = a.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid]! <= vaddr) lo = mid;
      else hi = mid - 1;
    }
    const size = this.sizes[lo]!;
    if (size > 0 && vaddr >= a[lo]! + size) return undefined;
    return { name: this.name(lo), address: a[lo]!, offset: vaddr - a[lo]! };
  }
}
