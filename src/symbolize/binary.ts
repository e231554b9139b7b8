// The symbols of one executable or shared library, found the way gdb and perf
// find them: its own .symtab; else a separate debug file (by build id under
// /usr/lib/debug/.build-id, or by .gnu_debuglink); else MiniDebugInfo
// (.gnu_debugdata, an xz-compressed ELF holding a .symtab); and always .dynsym.
// Cached per build id, and per dev/inode/mtime/size for the path lookups.
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import * as zlib from "node:zlib";
import { bufferSource, ElfImage, FunctionTable, type LoadSegment } from "../elf/symtab.ts";

/** Where the symbols came from, for diagnostics and tests. */
export type SymbolOrigin = "symtab" | "debuglink" | "build-id" | "minidebuginfo" | "dynsym" | "none";

export class BinarySymbols {
  readonly path: string;
  readonly buildId: string | undefined;
  readonly origin: SymbolOrigin;
  /** The file's PT_LOAD segments, to turn a file offset into the address its symbols use. */
  readonly loads: readonly LoadSegment[];
  readonly table: FunctionTable;
  /** The separate debug file used, if any. */
  readonly debugFile: string | undefined;

  constructor(path: string, buildId: string | undefined, origin: SymbolOrigin, loads: LoadSegment[], table: FunctionTable, debugFile?: string) {
    this.path = path;
    this.buildId = buildId;
    this.origin = origin;
    this.loads = loads;
    this.table = table;
    this.debugFile = debugFile;
  }

  /** The ELF virtual address that file offset `fo` is loaded from (the bias of PIE and shared objects). */
  fileOffsetToVaddr(fo: number): number | undefined {
    // The executable segment first: text is what stacks point into.
    let best: LoadSegment | undefined;
    for (const s of this.loads) {
      if (fo >= s.offset && fo < s.offset + Math.max(s.filesz, 1)) {
        if (!best || s.flags & 1) best = s;
      }
    }
    return best ? fo - best.offset + best.vaddr : undefined;
  }

  lookupFileOffset(fo: number): { name: string; offset: number } | undefined {
    const vaddr = this.fileOffsetToVaddr(fo);
    return vaddr === undefined ? undefined : this.table.lookup(vaddr);
  }
}

export interface BinaryOptions {
  /** Roots of separate debug files; default /usr/lib/debug. */
  debugDirs?: readonly string[];
  /** Where the process sees `/` (/proc/PID/root), for debug files of containers. */
  root?: string;
}

const byBuildId = new Map<string, BinarySymbols>();
const byStat = new Map<string, BinarySymbols | null>();

/** Forgets every cached binary (tests, or after packages were upgraded). */
export function clearBinaryCache(): void {
  byBuildId.clear();
  byStat.clear();
}

/**
 * The symbols of the binary at `path` (as this process sees it), or undefined
 * when it cannot be read. `identity` (dev:inode from /proc/PID/maps) saves a stat.
 */
export function binarySymbols(path: string, opts: BinaryOptions = {}): BinarySymbols | undefined {
  let key: string;
  try {
    const st = statSync(path);
    key = `${st.dev}:${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return undefined;
  }
  const hit = byStat.get(key);
  if (hit !== undefined) return hit ?? undefined;
  let result: BinarySymbols | null = null;
  try {
    result = load(path, opts);
  } catch {
    result = null; // not ELF, unreadable: its frames stay [unknown]
  }
  byStat.set(key, result);
  return result ?? undefined;
}

function load(path: string, opts: BinaryOptions): BinarySymbols {
  const image = ElfImage.open(path);
  try {
    const buildId = image.buildId();
    // Copies of one build (a stripped one beside the original) share the id: a
    // cached .dynsym-only table must not stand in for a file with full symbols.
    const cached = buildId ? byBuildId.get(buildId) : undefined;
    if (cached && cached.origin !== "dynsym" && cached.origin !== "none") return cached;
    let result: BinarySymbols;
    if (image.hasSymtab()) {
      result = new BinarySymbols(path, buildId, "symtab", image.loads, image.functions("all"));
    } else {
      result = fromDebugFile(image, path, buildId, opts) ?? fromMiniDebugInfo(image, path, buildId) ??
        new BinarySymbols(path, buildId, image.sections.length ? "dynsym" : "none", image.loads, image.functions("dynsym"));
    }
    if (buildId && (!cached || result.origin !== "dynsym")) byBuildId.set(buildId, result);
    return result;
  } finally {
    image.close();
  }
}

/** Separate debug files, in gdb's order: build id, then debuglink beside the file, in .debug/, under the debug root. */
export function debugFileCandidates(path: string, buildId: string | undefined, link: string | undefined, opts: BinaryOptions = {}): string[] {
  const root = opts.root ?? "";
  const dirs = opts.debugDirs ?? ["/usr/lib/debug"];
  const out: string[] = [];
  if (buildId && buildId.length > 2) for (const d of dirs) out.push(`${root}${d}/.build-id/${buildId.slice(0, 2)}/${buildId.slice(2)}.debug`);
  if (link) {
    const dir = dirname(path);
    out.push(join(dir, link), join(dir, ".debug", link));
    const inRoot = root && dir.startsWith(root) ? dir.slice(root.length) : dir;
    for (const d of dirs) out.push(`${root}${d}${inRoot}/${link}`);
  }
  return out.filter((p) => p !== path);
}

function fromDebugFile(image: ElfImage, path: string, buildId: string | undefined, opts: BinaryOptions): BinarySymbols | undefined {
  const link = image.debuglink();
  for (const candidate of debugFileCandidates(path, buildId, link?.file, opts)) {
    if (!existsSync(candidate)) continue;
    let debug: ElfImage | undefined;
    try {
      debug = ElfImage.open(candidate);
      // The debug file must be this binary's: same build id, else the debuglink's CRC.
      const id = debug.buildId();
      if (buildId && id && id !== buildId) continue;
      if (!buildId && link && !crcMatches(debug, link.crc)) continue;
      if (!debug.hasSymtab()) continue;
      const table = mergeTables(debug, image);
      const origin = buildId && candidate.includes("/.build-id/") ? "build-id" : "debuglink";
      return new BinarySymbols(path, buildId, origin, image.loads, table, candidate);
    } catch {
      // unreadable or not ELF: try the next one
    } finally {
      debug?.close();
    }
  }
  return undefined;
}

function crcMatches(debug: ElfImage, crc: number): boolean {
  const crc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (!crc32) return true; // Node < 20.15: trust the name
  let value = 0;
  const chunk = 1 << 20;
  for (let o = 0; o < debug.source.size; o += chunk) value = crc32(debug.source.read(o, Math.min(chunk, debug.source.size - o)), value);
  return value >>> 0 === crc >>> 0;
}

/** The debug file's .symtab plus the binary's .dynsym (MiniDebugInfo leaves exported functions out). */
function mergeTables(debug: ElfImage, image: ElfImage): FunctionTable {
  const tables: { data: Uint8Array; strings: Uint8Array }[] = [];
  for (const img of [debug, image]) {
    for (const s of img.sections) {
      if ((img === debug ? s.type !== 2 /* SHT_SYMTAB */ : s.type !== 11) /* SHT_DYNSYM */ || s.type === 8) continue;
      const str = img.sections[s.link];
      if (!str || s.offset + s.size > img.source.size || str.offset + str.size > img.source.size) continue;
      tables.push({ data: img.source.read(s.offset, s.size - (s.size % 24)), strings: img.source.read(str.offset, str.size) });
    }
  }
  return FunctionTable.build(tables);
}

type XzDecompress = (input: Uint8Array) => Uint8Array;
let xz: XzDecompress | null | undefined;

/** @napi-rs/lzma's synchronous xz decoder (prebuilt N-API from the npm registry), or null. */
function xzDecoder(): XzDecompress | null {
  if (xz !== undefined) return xz;
  try {
    const mod = createRequire(import.meta.url)("@napi-rs/lzma") as { xz: { decompressSync(input: Uint8Array): Uint8Array } };
    xz = (input) => mod.xz.decompressSync(input);
  } catch {
    xz = null;
  }
  return xz;
}

/** Decompresses .gnu_debugdata (an xz stream) into the ELF image it holds. */
export function miniDebugInfo(image: ElfImage): ElfImage | undefined {
  const data = image.sectionData(".gnu_debugdata");
  const decode = data && xzDecoder();
  if (!data || !decode) return undefined;
  const bytes = decode(data);
  return new ElfImage(bufferSource(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), `${image.name}:.gnu_debugdata`), `${image.name}:.gnu_debugdata`);
}

function fromMiniDebugInfo(image: ElfImage, path: string, buildId: string | undefined): BinarySymbols | undefined {
  let mini: ElfImage | undefined;
  try {
    mini = miniDebugInfo(image);
  } catch {
    return undefined; // corrupt stream: fall back to .dynsym
  }
  if (!mini || !mini.hasSymtab()) return undefined;
  return new BinarySymbols(path, buildId, "minidebuginfo", image.loads, mergeTables(mini, image), `${basename(path)}:.gnu_debugdata`);
}
