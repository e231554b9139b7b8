// Programs of an object file: one per function symbol in a program section,
// linked with the bpf-to-bpf functions they call (appended after the caller, as
// libbpf does), with their map references and BTF func/line info rebased.
import { Instructions, INSN_SIZE, Opcode } from "../asm/instruction.ts";
import type { ElfFile, ElfRelocation, ElfSection, ElfSymbol } from "../elf/index.ts";
import { R_BPF_64_64, SHN_UNDEF, SHT_NOBITS, STT_FUNC, STT_SECTION } from "../elf/index.ts";
import { sectionDef, commonSectionNames, type AttachKind } from "./sections.ts";
import { ObjectError } from "./errors.ts";
import type { ProgramCoreRelo } from "../btf/core.ts";
import type { ExternReference, ExternSpec } from "./externs.ts";

/** An instruction that needs a map's fd (or the address of a value in it) at load time. */
export interface MapReference {
  /** Index of the ld_imm64 instruction in the linked program. */
  insn: number;
  /** Name of the map in the object (a `.maps` variable, or a data section such as ".rodata"). */
  map: string;
  /** "fd": BPF_PSEUDO_MAP_FD; "value": BPF_PSEUDO_MAP_VALUE at `offset` into the value. */
  kind: "fd" | "value";
  offset: number;
}

/** func_info / line_info records in the kernel's layout (insn_off in instructions). */
export interface FuncInfoRecord {
  insnOff: number;
  typeId: number;
}

export interface LineInfoRecord {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  lineCol: number;
  /** The source line, for messages. */
  line: string;
}

export interface ProgramSpec {
  /** The C function's name. */
  name: string;
  /** The ELF section, e.g. "tracepoint/syscalls/sys_enter_openat". */
  section: string;
  type: number;
  expectedAttachType: number;
  /** How `attach()` without arguments attaches it, and to what (the section name's tail). */
  attach: AttachKind;
  attachTarget: string;
  sleepable: boolean;
  /** For fentry/fexit/tp_btf/lsm/iter: the kernel BTF entity to resolve at load. */
  btfTarget?: { name: string; kind: "func" | "typedef" };
  /** Linked instructions; map references are filled in at load. */
  instructions: Uint8Array;
  references: MapReference[];
  funcInfo: FuncInfoRecord[];
  lineInfo: LineInfoRecord[];
  /** CO-RE relocations (from .BTF.ext), by instruction of the linked program; applied at load. */
  coreRelos: ProgramCoreRelo[];
  /** Instructions that use externs (ksym and kfunc ones are patched at load; .kconfig ones are also map references). */
  externs: ExternReference[];
  license: string;
  kernelVersion: number;
}

/** A function in an executable section: a program, or a subprogram it may call. */
interface FunctionSym {
  section: ElfSection;
  name: string;
  /** First instruction index within the section. */
  start: number;
  /** Number of instructions. */
  count: number;
}

/** What the spec layer passes in: BTF.ext records of one section, in file units (bytes). */
export interface SectionExt {
  funcInfo: { insnOff: number; typeId: number }[];
  lineInfo: { insnOff: number; fileNameOff: number; lineOff: number; lineCol: number; line: string }[];
  coreRelos: { insnOff: number; typeId: number; accessStr: string; kind: number }[];
}

export interface LinkContext {
  elf: ElfFile;
  license: string;
  kernelVersion: number;
  /** Map name for a relocation's symbol, or undefined when the symbol is not a map. */
  mapForSymbol(sym: ElfSymbol): { map: string; kind: "fd" | "value"; offset: number } | undefined;
  ext(section: string): SectionExt | undefined;
  /** The extern an undefined symbol names, if it is one. */
  externForSymbol(sym: ElfSymbol): ExternSpec | undefined;
}

/** BPF_COMPLEXITY_LIMIT_INSNS: the most instructions the kernel loads in one program. */
export const MAX_INSNS = 1_000_000;

export function readPrograms(ctx: LinkContext): Map<string, ProgramSpec> {
  const { elf } = ctx;
  const code = elf.sections.filter((s) => isCodeSection(s) && s.size > 0);
  for (const sec of code) {
    if (sec.type === SHT_NOBITS || sec.size % INSN_SIZE !== 0) {
      throw new ObjectError(`code section ${sec.name} is ${sec.size} bytes${sec.type === SHT_NOBITS ? " with no data in the file" : ""}; it must hold whole ${INSN_SIZE}-byte instructions`);
    }
    if (sec.size / INSN_SIZE > MAX_INSNS) {
      throw new ObjectError(`code section ${sec.name} holds ${sec.size / INSN_SIZE} instructions, more than the kernel's limit of ${MAX_INSNS}`);
    }
  }
  const functions = new Map<number, FunctionSym[]>(); // by section index
  for (const sec of code) functions.set(sec.index, []);
  for (const sym of elf.symbols()) {
    if (sym.type !== STT_FUNC || !functions.has(sym.shndx)) continue;
    const section = elf.sections[sym.shndx];
    if (sym.value % INSN_SIZE !== 0 || sym.size % INSN_SIZE !== 0 || sym.value + sym.size > section.size) {
      throw new ObjectError(`function ${sym.name} in ${section.name} has a misaligned or out-of-range extent`);
    }
    functions.get(sym.shndx)!.push({
      section,
      name: sym.name,
      start: sym.value / INSN_SIZE,
      count: sym.size / INSN_SIZE,
    });
  }
  for (const list of functions.values()) list.sort((a, b) => a.start - b.start);

  const relocations = new Map<number, Map<number, ElfRelocation>>(); // section index -> byte offset -> reloc
  for (const sec of code) {
    relocations.set(sec.index, new Map(elf.relocations(sec).map((r) => [r.offset, r])));
  }

  const programs = new Map<string, ProgramSpec>();
  for (const sec of code) {
    if (sec.name === ".text") continue; // subprograms only
    const def = sectionDef(sec.name);
    if (!def) {
      const names = functions.get(sec.index)!.map((f) => f.name).join(", ");
      throw new ObjectError(
        `unknown section "${sec.name}" (program ${names || "?"}): tsbpf cannot tell the program type from it. ` +
          `Use a libbpf section name, such as ${commonSectionNames.join(", ")}`,
      );
    }
    for (const fn of functions.get(sec.index)!) {
      if (programs.has(fn.name)) throw new ObjectError(`two programs are named ${fn.name}`);
      const linked = link(fn, functions, relocations, ctx);
      // "xdp/foo" matches the prefix "xdp": drop the separator. A prefix ending in
      // "/" already has it, and what follows is the target as written: in
      // "uprobe//bin/bash:readline" the path is "/bin/bash".
      const rest = sec.name.slice(def.prefix.length);
      const target = def.prefix.endsWith("/") ? rest : rest.replace(/^\//, "");
      programs.set(fn.name, {
        name: fn.name,
        section: sec.name,
        type: def.progType,
        expectedAttachType: def.attachType ?? 0,
        attach: def.attach,
        attachTarget: target,
        sleepable: def.sleepable ?? false,
        btfTarget: def.btfTarget && target ? { name: def.btfTarget.prefix + target.split("+")[0], kind: def.btfTarget.kind } : undefined,
        ...linked,
        license: ctx.license,
        kernelVersion: ctx.kernelVersion,
      });
    }
  }
  return programs;
}

function isCodeSection(sec: ElfSection): boolean {
  const SHF_EXECINSTR = 0x4;
  return (sec.flags & SHF_EXECINSTR) !== 0;
}

/** Copies `entry` and every function it reaches into one instruction stream. */
function link(
  entry: FunctionSym,
  functions: Map<number, FunctionSym[]>,
  relocations: Map<number, Map<number, ElfRelocation>>,
  ctx: LinkContext,
): Pick<ProgramSpec, "instructions" | "references" | "funcInfo" | "lineInfo" | "coreRelos" | "externs"> {
  const placed = new Map<FunctionSym, number>([[entry, 0]]);
  const order: FunctionSym[] = [entry];
  let total = entry.count;
  const chunks: Uint8Array[] = [];
  const references: MapReference[] = [];
  const funcInfo: FuncInfoRecord[] = [];
  const lineInfo: LineInfoRecord[] = [];
  const coreRelos: ProgramCoreRelo[] = [];
  const externs: ExternReference[] = [];

  for (let f = 0; f < order.length; f++) {
    const fn = order[f];
    const base = placed.get(fn)!;
    const secData = fn.section.data();
    const bytes = secData.slice(fn.start * INSN_SIZE, (fn.start + fn.count) * INSN_SIZE);
    const insns = new Instructions(bytes);
    const relocs = relocations.get(fn.section.index)!;

    for (let i = 0; i < insns.length; i++) {
      const sectionOffset = (fn.start + i) * INSN_SIZE;
      const reloc = relocs.get(sectionOffset);
      const where = `${fn.name}+${i} (${fn.section.name})`;

      if (reloc && insns.isLdImm64(i) && reloc.type === R_BPF_64_64 && !isCodeSym(reloc.symbol, functions)) {
        const sym = reloc.symbol;
        if (sym.shndx === SHN_UNDEF) {
          const ext = ctx.externForSymbol(sym);
          if (!ext) throw new ObjectError(`${where}: reference to undefined symbol "${sym.name}", which is not an extern`);
          externs.push({ insn: base + i, name: ext.name, use: "ld64" });
          // A .kconfig value is an address in the .kconfig map, as any global (libbpf ignores the addend too).
          if (ext.kconfig && !ext.problem) references.push({ insn: base + i, map: ".kconfig", kind: "value", offset: ext.kconfig.offset });
          i++;
          continue;
        }
        const target = ctx.mapForSymbol(sym);
        if (!target) {
          throw new ObjectError(`${where}: reference to "${sym.name || sym.sectionName}" in section ${sym.sectionName}, which is not a map or global data`);
        }
        const offset = target.kind === "value" ? target.offset + insns.imm(i) : 0;
        references.push({ insn: base + i, map: target.map, kind: target.kind, offset });
        i++; // the second half of ld_imm64
        continue;
      }

      if (reloc && reloc.symbol.shndx === SHN_UNDEF && insns.code(i) === Opcode.CALL) {
        const ext = ctx.externForSymbol(reloc.symbol);
        if (!ext) throw new ObjectError(`${where}: call to undefined function "${reloc.symbol.name}", which is not an extern`);
        externs.push({ insn: base + i, name: ext.name, use: "call" });
        continue;
      }
      const isCall = insns.isPseudoCall(i);
      // clang leaves src_reg 0 on a relocated function address; the kernel wants BPF_PSEUDO_FUNC.
      const isFunc = insns.isPseudoFunc(i) || (reloc !== undefined && insns.isLdImm64(i) && isCodeSym(reloc.symbol, functions));
      if (isFunc) insns.setSrc(i, 4);
      if (reloc && !isCall && !isFunc) {
        throw new ObjectError(`${where}: unexpected relocation (type ${reloc.type}) against "${reloc.symbol.name}"`);
      }
      if (!isCall && !isFunc) {
        if (insns.isLdImm64(i)) i++;
        continue;
      }

      // A bpf-to-bpf call or function address: find the callee's section and index.
      let targetSection = fn.section;
      let targetIndex: number;
      if (reloc) {
        const sym = reloc.symbol;
        if (sym.shndx === SHN_UNDEF) throw new ObjectError(`${where}: call to undefined function "${sym.name}"`);
        const section = ctx.elf.sections[sym.shndx];
        if (!section) throw new ObjectError(`${where}: call to "${sym.name}", which has no section (section index ${sym.shndx})`);
        targetSection = section;
        const symInsn = sym.value / INSN_SIZE;
        // Calls encode imm relative to the next instruction; function addresses (ld_imm64) in bytes.
        targetIndex = isCall ? symInsn + insns.imm(i) + 1 : symInsn + insns.imm(i) / INSN_SIZE;
        if (sym.type !== STT_SECTION && sym.type !== STT_FUNC) {
          throw new ObjectError(`${where}: call relocation against "${sym.name}", which is not a function`);
        }
      } else {
        targetIndex = fn.start + i + insns.imm(i) + 1;
      }
      const callee = (functions.get(targetSection.index) ?? []).find((c) => c.start <= targetIndex && targetIndex < c.start + c.count);
      if (!callee || callee.start !== targetIndex) {
        throw new ObjectError(`${where}: call into ${targetSection.name} at instruction ${targetIndex}, which is not the start of a function`);
      }
      if (!placed.has(callee)) {
        if (total + callee.count > MAX_INSNS) {
          throw new ObjectError(`program ${entry.name} (${entry.section.name}) links to more than ${MAX_INSNS} instructions, the kernel's limit`);
        }
        placed.set(callee, total);
        order.push(callee);
        total += callee.count;
      }
      insns.setImm(i, placed.get(callee)! - (base + i) - 1);
      if (isFunc) i++;
    }
    chunks.push(bytes);

    const ext = ctx.ext(fn.section.name);
    if (ext) {
      const lo = fn.start * INSN_SIZE;
      const hi = (fn.start + fn.count) * INSN_SIZE;
      for (const r of ext.funcInfo) {
        if (r.insnOff >= lo && r.insnOff < hi) funcInfo.push({ insnOff: base + (r.insnOff - lo) / INSN_SIZE, typeId: r.typeId });
      }
      for (const r of ext.lineInfo) {
        if (r.insnOff >= lo && r.insnOff < hi) {
          lineInfo.push({ ...r, insnOff: base + (r.insnOff - lo) / INSN_SIZE });
        }
      }
      // Each copy of a subprogram brings its relocations along.
      for (const r of ext.coreRelos) {
        if (r.insnOff < lo || r.insnOff >= hi) continue;
        if (r.insnOff % INSN_SIZE !== 0) {
          throw new ObjectError(`${fn.name} (${fn.section.name}): CO-RE relocation at byte ${r.insnOff} is not on an instruction boundary`);
        }
        coreRelos.push({ insn: base + (r.insnOff - lo) / INSN_SIZE, typeId: r.typeId, accessStr: r.accessStr, kind: r.kind });
      }
    }
  }

  const instructions = new Uint8Array(total * INSN_SIZE);
  let at = 0;
  for (const chunk of chunks) {
    instructions.set(chunk, at);
    at += chunk.byteLength;
  }
  coreRelos.sort((a, b) => a.insn - b.insn);
  return { instructions, references, funcInfo, lineInfo, coreRelos, externs };
}

function isCodeSym(sym: ElfSymbol, functions: Map<number, FunctionSym[]>): boolean {
  return functions.has(sym.shndx);
}
