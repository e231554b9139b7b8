// The `args` struct of BCC's TRACEPOINT_PROBE(category, event), generated
// from the tracepoint's format file as BCC does: the 8 bytes of common fields
// become `u64 __do_not_use__`, `__data_loc` fields become `int data_loc_NAME`,
// and every field sits at the offset the format file gives.
import { readTracepointFormat } from "../tracing/tracefs.ts";

export interface FormatField {
  /** The declaration as the format file writes it, e.g. "const char * filename". */
  decl: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
}

/** The fields of a tracepoint format file (common_* fields included). */
export function parseFormat(text: string): FormatField[] {
  const fields: FormatField[] = [];
  const re = /field:([^;]+);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const decl = m[1]!.trim();
    const name = /([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*$/.exec(decl)?.[1] ?? "";
    fields.push({ decl, name, offset: Number(m[2]), size: Number(m[3]), signed: m[4] === "1" });
  }
  return fields;
}

/** The format file of CATEGORY:EVENT, or undefined when there is no such tracepoint (tracefs owns the read). */
export function readFormat(category: string, event: string): string | undefined {
  return readTracepointFormat(category, event);
}

const BUILTIN_SIZES: Record<string, number> = {
  char: 1, "signed char": 1, "unsigned char": 1, bool: 1, _Bool: 1,
  short: 2, "short int": 2, "unsigned short": 2, "short unsigned int": 2, "unsigned short int": 2,
  int: 4, "unsigned int": 4, unsigned: 4, "signed int": 4,
  long: 8, "long int": 8, "unsigned long": 8, "long unsigned int": 8, "unsigned long int": 8,
  "long long": 8, "long long int": 8, "unsigned long long": 8, "long long unsigned int": 8,
  u8: 1, s8: 1, __u8: 1, __s8: 1, u16: 2, s16: 2, __u16: 2, __s16: 2,
  u32: 4, s32: 4, __u32: 4, __s32: 4, u64: 8, s64: 8, __u64: 8, __s64: 8,
};
const CHAR_TYPES = new Set(["char", "signed char", "unsigned char", "u8", "__u8", "s8", "__s8"]);
const BUILTIN_WORDS = new Set(["void", "char", "short", "int", "long", "signed", "unsigned", "float", "double", "_Bool", "bool", "const", "volatile", "__user"]);

function intType(size: number, signed: boolean): string | undefined {
  return size === 1 || size === 2 || size === 4 || size === 8 ? `${signed ? "s" : "u"}${size * 8}` : undefined;
}

/** A pointer type whose every word C or vmlinux.h knows for sure; others become void *. */
function pointerType(type: string): string {
  const words = type.replace(/\*/g, " ").trim().split(/\s+/);
  const ok = words.every((w, i) => BUILTIN_WORDS.has(w) || ["struct", "union", "enum"].includes(words[i - 1] ?? "") || ["struct", "union", "enum"].includes(w));
  return ok ? type : "void *";
}

/** C for `struct NAME { ... };` laid out as the format file says. */
export function tracepointStruct(structName: string, fields: FormatField[]): string {
  const members: string[] = [];
  let at = 0;
  let pad = 0;
  const place = (offset: number, size: number, align: number, decl: string) => {
    if (offset < at) return; // overlapping field: keep the first
    if (offset > at) members.push(`char __pad_${pad++}[${offset - at}];`);
    members.push(offset % align === 0 ? `${decl};` : `${decl} __attribute__((packed));`);
    at = offset + size;
  };
  for (const f of fields) {
    if (f.offset < 8 || f.name.startsWith("common_")) {
      if (at === 0) place(0, 8, 8, "u64 __do_not_use__");
      continue;
    }
    if (f.decl.startsWith("__data_loc")) {
      place(f.offset, f.size, Math.min(f.size, 4), `${f.size === 4 ? "int" : intType(f.size, false) ?? "int"} data_loc_${f.name}`);
      continue;
    }
    const m = /^(.*?)([A-Za-z_]\w*)\s*(?:\[([^\]]*)\])?\s*$/.exec(f.decl);
    const type = (m?.[1] ?? "").trim().replace(/\s+/g, " ");
    const isArray = m?.[3] !== undefined;
    if (isArray) {
      const elem = type.replace(/\b(const|volatile)\b/g, "").trim();
      if (CHAR_TYPES.has(elem)) {
        place(f.offset, f.size, 1, `char ${f.name}[${f.size}]`);
        continue;
      }
      const count = Number(m![3]);
      const elemSize = BUILTIN_SIZES[elem] ?? (count > 0 && f.size % count === 0 ? f.size / count : 0);
      const elemType = elemSize ? intType(elemSize, f.signed) : undefined;
      if (elemType && f.size % elemSize === 0) place(f.offset, f.size, elemSize, `${elemType} ${f.name}[${f.size / elemSize}]`);
      else place(f.offset, f.size, 1, `u8 ${f.name}[${f.size}]`);
      continue;
    }
    if (type.includes("*") && f.size === 8) {
      place(f.offset, 8, 8, `${pointerType(type)} ${f.name}`);
      continue;
    }
    // Scalars: the kernel's type when it has this size, else an integer of the field's size
    // (syscall arguments are 8 bytes whatever the declared type).
    const plain = type.replace(/\b(const|volatile)\b/g, "").trim();
    const scalar = BUILTIN_SIZES[plain] === f.size ? plain : intType(f.size, f.signed);
    if (scalar) place(f.offset, f.size, f.size, `${scalar} ${f.name}`);
    else place(f.offset, f.size, 1, `u8 ${f.name}[${f.size}]`);
  }
  return `struct ${structName} { ${members.join(" ")} };`;
}
