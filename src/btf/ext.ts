// .BTF.ext: per-section func_info, line_info and CO-RE relocation records.
// Section and file names are offsets into the .BTF string table.
import { BtfError, hex } from "./error.ts";
import type { Spec } from "./spec.ts";

export const BTF_EXT_MAGIC = 0xeb9f;
const MIN_HEADER_SIZE = 24; // up to line_info_len

export interface FuncInfo {
  /** Offset of the function's first instruction in its ELF section, in bytes (as stored in the file). */
  insnOff: number;
  typeId: number;
}

export interface LineInfo {
  /** Instruction offset in bytes within the ELF section (as stored in the file). */
  insnOff: number;
  fileName: string;
  /** The source line's text. */
  line: string;
  lineNumber: number;
  column: number;
  /** Raw string offsets, so the record can be re-emitted unchanged. */
  fileNameOff: number;
  lineOff: number;
}

export interface CoreRelo {
  insnOff: number;
  typeId: number;
  /** e.g. "0:1:2" */
  accessStr: string;
  accessStrOff: number;
  /** enum bpf_core_relo_kind (CoreReloKind). */
  kind: number;
}

/** enum bpf_core_relo_kind */
export const CoreReloKind = {
  FIELD_BYTE_OFFSET: 0, FIELD_BYTE_SIZE: 1, FIELD_EXISTS: 2, FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4, FIELD_RSHIFT_U64: 5, TYPE_ID_LOCAL: 6, TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8, TYPE_SIZE: 9, ENUMVAL_EXISTS: 10, ENUMVAL_VALUE: 11, TYPE_MATCHES: 12,
} as const;

export interface BtfExt {
  /** Keyed by ELF section name. */
  funcInfos: Map<string, FuncInfo[]>;
  lineInfos: Map<string, LineInfo[]>;
  coreRelos: Map<string, CoreRelo[]>;
  /** rec_size values from the file (0 when the subsection is absent). */
  funcInfoRecSize: number;
  lineInfoRecSize: number;
  coreReloRecSize: number;
}

interface Subsection {
  what: string;
  start: number;
  end: number;
  minRecSize: number;
}

/**
 * Walks one info subsection: u32 rec_size, then repeated
 * { u32 sec_name_off; u32 num_info; rec_size bytes x num_info }.
 */
function walk<T>(
  view: DataView, spec: Spec, sub: Subsection, read: (record: number) => T,
): { recSize: number; bySection: Map<string, T[]> } {
  const bySection = new Map<string, T[]>();
  if (sub.start === sub.end) return { recSize: 0, bySection };
  if (sub.start + 4 > sub.end) throw new BtfError(`BTF.ext: ${sub.what} subsection is too short for rec_size`);
  const recSize = view.getUint32(sub.start, true);
  if (recSize < sub.minRecSize) {
    throw new BtfError(`BTF.ext: ${sub.what} rec_size ${recSize} is less than ${sub.minRecSize}`);
  }
  let pos = sub.start + 4;
  while (pos < sub.end) {
    if (pos + 8 > sub.end) throw new BtfError(`BTF.ext: truncated ${sub.what} section header at ${hex(pos)}`);
    const nameOff = view.getUint32(pos, true);
    const count = view.getUint32(pos + 4, true);
    const secName = nameOf(spec, nameOff, `${sub.what} section name at ${hex(pos)}`);
    pos += 8;
    if (pos + count * recSize > sub.end) {
      throw new BtfError(`BTF.ext: ${sub.what} for section ${secName}: ${count} records of ${recSize} bytes at ${hex(pos)} run past end of subsection (${hex(sub.end)})`);
    }
    const records = bySection.get(secName) ?? [];
    for (let i = 0; i < count; i++, pos += recSize) records.push(read(pos));
    bySection.set(secName, records);
  }
  return { recSize, bySection };
}

function nameOf(spec: Spec, offset: number, what: string): string {
  try {
    return spec.string(offset);
  } catch (err) {
    throw new BtfError(`BTF.ext: ${what}: ${(err as Error).message.replace(/^BTF: /, "")}`);
  }
}

/** Parses raw .BTF.ext bytes; names are resolved through `spec`'s strings. */
export function parseExt(raw: Uint8Array, spec: Spec): BtfExt {
  if (raw.length < 8) throw new BtfError(`BTF.ext: truncated header: ${raw.length} bytes`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = view.getUint16(0, true);
  if (magic !== BTF_EXT_MAGIC) throw new BtfError(`BTF.ext: bad magic ${hex(magic)}, expected ${hex(BTF_EXT_MAGIC)}`);
  if (raw[2] !== 1) throw new BtfError(`BTF.ext: unsupported version ${raw[2]}`);
  const hdrLen = view.getUint32(4, true);
  if (hdrLen < MIN_HEADER_SIZE) throw new BtfError(`BTF.ext: header length ${hdrLen} is less than ${MIN_HEADER_SIZE}`);
  if (hdrLen > raw.length) throw new BtfError(`BTF.ext: header length ${hdrLen} exceeds data (${raw.length} bytes)`);

  const subsection = (what: string, fieldAt: number, minRecSize: number): Subsection => {
    if (fieldAt + 8 > hdrLen) return { what, start: 0, end: 0, minRecSize };
    const off = view.getUint32(fieldAt, true);
    const len = view.getUint32(fieldAt + 4, true);
    const start = hdrLen + off;
    if (start + len > raw.length) {
      throw new BtfError(`BTF.ext: ${what} at ${hex(start)}+${hex(len)} runs past end of data (${hex(raw.length)} bytes)`);
    }
    return len === 0 ? { what, start: 0, end: 0, minRecSize } : { what, start, end: start + len, minRecSize };
  };
  const typeCount = spec.typeCount;
  const typeId = (id: number, what: string, at: number) => {
    if (id >= typeCount) throw new BtfError(`BTF.ext: ${what} at ${hex(at)} references type ${id}, but there are only ${typeCount} types`);
    return id;
  };

  const funcs = walk(view, spec, subsection("func_info", 8, 8), (r): FuncInfo => ({
    insnOff: view.getUint32(r, true),
    typeId: typeId(view.getUint32(r + 4, true), "func_info", r),
  }));
  const lines = walk(view, spec, subsection("line_info", 16, 16), (r): LineInfo => {
    const fileNameOff = view.getUint32(r + 4, true);
    const lineOff = view.getUint32(r + 8, true);
    const lineCol = view.getUint32(r + 12, true);
    return {
      insnOff: view.getUint32(r, true),
      fileName: nameOf(spec, fileNameOff, `line_info file name at ${hex(r)}`),
      line: nameOf(spec, lineOff, `line_info line at ${hex(r)}`),
      lineNumber: lineCol >>> 10,
      column: lineCol & 0x3ff,
      fileNameOff,
      lineOff,
    };
  });
  // core_relo_off/len exist only when hdr_len covers them (subsection() checks).
  const relos = walk(view, spec, subsection("core_relo", 24, 16), (r): CoreRelo => {
    const accessStrOff = view.getUint32(r + 8, true);
    return {
      insnOff: view.getUint32(r, true),
      typeId: typeId(view.getUint32(r + 4, true), "core_relo", r),
      accessStr: nameOf(spec, accessStrOff, `core_relo access string at ${hex(r)}`),
      accessStrOff,
      kind: view.getUint32(r + 12, true),
    };
  });
  return {
    funcInfos: funcs.bySection,
    lineInfos: lines.bySection,
    coreRelos: relos.bySection,
    funcInfoRecSize: funcs.recSize,
    lineInfoRecSize: lines.recSize,
    coreReloRecSize: relos.recSize,
  };
}
