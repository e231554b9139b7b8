// Externs of an object (libbpf's bpf_object__collect_externs), parse side only:
// which undefined symbols are `.kconfig` values, `__ksym` variables or kfuncs,
// with their BTF, and where each .kconfig value lives in the .kconfig map. What
// they resolve to is decided at load (resolve-externs.ts), against a kernel.
import type { ElfFile } from "../elf/index.ts";
import { SHN_UNDEF, STB_GLOBAL, STB_WEAK, STT_NOTYPE } from "../elf/constants.ts";
import type { Spec } from "../btf/spec.ts";
import { alignof, resolve, sizeof, type Type } from "../btf/types.ts";
import type { KconfigSlot, KconfigType } from "../kconfig/parse.ts";

export const KCONFIG_SECTION = ".kconfig";
export const KSYMS_SECTION = ".ksyms";

/** "kconfig": a value in .kconfig; "ksym": a kernel variable (`__ksym`); "kfunc": a kernel function called from BPF. */
export type ExternKind = "kconfig" | "ksym" | "kfunc";

export interface ExternSpec {
  name: string;
  kind: ExternKind;
  /** `__weak`: resolves to 0 when the kernel lacks it, instead of failing the programs that use it. */
  weak: boolean;
  /** The VAR or FUNC in the object's BTF (0 when the object has no BTF for it). */
  btfId: number;
  /** ksym: false for `extern const void x __ksym` (an address from kallsyms), true when BTF gives its type. */
  typed: boolean;
  /** kconfig: its slot in the .kconfig map. */
  kconfig?: KconfigSlot & { offset: number; align: number };
  /** The extern's C type in the object's BTF as compiled (a kfunc's prototype), for checking it against the kernel's. */
  type?: Type;
  /** Why it can never resolve (no BTF, a type libbpf does not support): programs using it fail to load with this. */
  problem?: string;
}

/** An instruction of a linked program that refers to an extern; patched at load. */
export interface ExternReference {
  /** Index of the ld_imm64 or call instruction in the linked program. */
  insn: number;
  name: string;
  /** "ld64": the address of a ksym/kfunc or a .kconfig value; "call": a kfunc call. */
  use: "ld64" | "call";
}

/** libbpf's sym_is_extern: an undefined global or weak symbol without a type. */
export function isExternSymbol(sym: { shndx: number; bind: number; type: number; name: string }): boolean {
  return sym.shndx === SHN_UNDEF && (sym.bind === STB_GLOBAL || sym.bind === STB_WEAK) && sym.type === STT_NOTYPE && sym.name !== "";
}

/** The externs of `elf`, by name, with .kconfig slots laid out (libbpf's order: by alignment, then size, then name). */
export function collectExterns(elf: ElfFile, btf: Spec | undefined): Map<string, ExternSpec> {
  const externs = new Map<string, ExternSpec>();
  for (const sym of elf.symbols()) {
    if (!isExternSymbol(sym) || externs.has(sym.name)) continue;
    externs.set(sym.name, describeExtern(sym.name, sym.bind === STB_WEAK, btf));
  }
  const kconfig = [...externs.values()].filter((e) => e.kconfig);
  kconfig.sort((a, b) => b.kconfig!.align - a.kconfig!.align || a.kconfig!.size - b.kconfig!.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let off = 0;
  for (const e of kconfig) {
    const slot = e.kconfig!;
    slot.offset = Math.ceil(off / slot.align) * slot.align;
    off = slot.offset + slot.size;
  }
  return externs;
}

/** The size of the .kconfig map's value: the end of its last slot. */
export function kconfigSize(externs: ReadonlyMap<string, ExternSpec>): number {
  let end = 0;
  for (const e of externs.values()) if (e.kconfig) end = Math.max(end, e.kconfig.offset + e.kconfig.size);
  return end;
}

function describeExtern(name: string, weak: boolean, btf: Spec | undefined): ExternSpec {
  const base = { name, weak, btfId: 0, typed: false };
  if (!btf) return { ...base, kind: "ksym", problem: `extern ${name} has no BTF to tell what it is; compile with -g` };
  const found = btf.typesByName(name).find((t) => t.kind === "var" || t.kind === "func");
  if (!found || (found.kind !== "var" && found.kind !== "func")) {
    return { ...base, kind: "ksym", problem: `extern ${name} has no BTF variable or function in the object` };
  }
  if (found.linkage !== "extern") return { ...base, kind: "ksym", problem: `BTF ${found.kind} ${name} is not an extern` };
  const section = datasecOf(btf, found.id);
  if (section === KCONFIG_SECTION) {
    if (found.kind !== "var") return { ...base, btfId: found.id, kind: "kconfig", problem: `extern function ${name} cannot be in ${KCONFIG_SECTION}` };
    const size = sizeof(found.type);
    const align = alignof(found.type);
    const { type, signed } = kconfigType(found.type);
    const spec: ExternSpec = { ...base, btfId: found.id, kind: "kconfig", type: found.type, kconfig: { name, type: type ?? "int", size, signed, offset: 0, align } };
    if (!type) spec.problem = `extern ${name} in ${KCONFIG_SECTION} has a type libbpf does not support (bool, char, int, enum libbpf_tristate, char[N])`;
    return spec;
  }
  if (section === KSYMS_SECTION) {
    if (found.kind === "func") return { ...base, btfId: found.id, kind: "kfunc", typed: true, type: found.proto };
    return { ...base, btfId: found.id, kind: "ksym", typed: resolve(found.type).kind !== "void", type: found.type };
  }
  return { ...base, btfId: found.id, kind: "ksym", problem: `extern ${name} is in ${section ?? "no section"}; externs go in ${KCONFIG_SECTION} (__kconfig) or ${KSYMS_SECTION} (__ksym)` };
}

function datasecOf(btf: Spec, id: number): string | undefined {
  for (const name of [KCONFIG_SECTION, KSYMS_SECTION]) {
    for (const t of btf.typesByName(name)) if (t.kind === "datasec" && t.vars.some((v) => v.type.id === id)) return name;
  }
  for (const t of btf.types) if (t.kind === "datasec" && t.vars.some((v) => v.type.id === id)) return t.name;
  return undefined;
}

/** libbpf's find_kcfg_type. */
function kconfigType(type: Type): { type: KconfigType | undefined; signed: boolean } {
  const t = resolve(type);
  switch (t.kind) {
    case "int":
      if (t.encoding === "bool") return { type: t.size === 1 ? "bool" : undefined, signed: false };
      if (t.size === 1) return { type: "char", signed: t.encoding === "signed" };
      if (t.size > 8 || (t.size & (t.size - 1)) !== 0) return { type: undefined, signed: false };
      return { type: "int", signed: t.encoding === "signed" };
    case "enum":
      return { type: t.size === 4 && t.name === "libbpf_tristate" ? "tristate" : undefined, signed: false };
    case "enum64":
      return { type: t.name === "libbpf_tristate" ? "tristate" : undefined, signed: false };
    case "array":
      if (t.nelems === 0 || kconfigType(t.type).type !== "char") return { type: undefined, signed: false };
      return { type: "char-array", signed: false };
    default:
      return { type: undefined, signed: false };
  }
}
