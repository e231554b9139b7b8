// ObjectSpec: everything in a BPF ELF object, parsed and linked, with no
// syscall (cilium/ebpf's CollectionSpec, aya's aya-obj). Loading it into the
// kernel is the job of Collection.
import { readFileSync } from "node:fs";
import { ElfFile, EM_BPF, ET_REL, SHT_NOBITS, STT_OBJECT, STT_SECTION, type ElfSymbol } from "../elf/index.ts";
import { Spec, parseExt, fixupDatasecs, fixupExternDatasecs, sectionLayouts, type BtfExt, type Type } from "../btf/index.ts";
import { readMapSlots } from "./map-slots.ts";
import { btfMapSpec, checkDataSectionSize, dataMapSpec, dataSectionKind, kconfigMapSpec, type MapSpec } from "./maps.ts";
import { collectExterns, kconfigSize, KCONFIG_SECTION, type ExternSpec } from "./externs.ts";
import { markHiddenFuncsStatic } from "../btf/fixup.ts";
import { readPrograms, type ProgramSpec, type SectionExt } from "./programs.ts";
import { VariableSpec } from "./variables.ts";
import { ObjectError, notFound } from "./errors.ts";

// Sections that carry nothing to load, or that we read through other sections.
const IGNORED = /^(\.BTF(\.ext)?|\.symtab|\.strtab|\.shstrtab|\.llvm_addrsig|\.debug_.*|\.rel.*|\.eh_frame|\.comment|\.note.*|)$/;

export class ObjectSpec {
  /** Where it came from, for messages. */
  readonly source: string;
  readonly programs: ReadonlyMap<string, ProgramSpec>;
  readonly maps: ReadonlyMap<string, MapSpec>;
  /** Global variables (in .rodata/.data/.bss), settable before load. */
  readonly variables: ReadonlyMap<string, VariableSpec>;
  readonly license: string;
  /** The object's BTF, if compiled with -g. */
  readonly btf: Spec | undefined;
  /** The object's BTF as the kernel wants it (data section sizes and offsets filled in). */
  readonly kernelBtf: Uint8Array | undefined;
  readonly btfExt: BtfExt | undefined;
  /**
   * `extern` declarations (.kconfig values, __ksym variables, kfuncs), by name. They are
   * resolved at load; a program using one that does not resolve fails to load, the others load.
   */
  readonly externs: ReadonlyMap<string, ExternSpec>;

  private constructor(source: string, elf: ElfFile) {
    this.source = source;
    if (elf.machine !== EM_BPF) {
      throw new ObjectError(`${source} is not a BPF object (ELF machine ${elf.machine}); compile it with clang -target bpf`);
    }
    if (elf.type !== ET_REL) throw new ObjectError(`${source} is not a relocatable object (ELF type ${elf.type}); build it with -c`);

    this.license = cstringSection(elf, "license") ?? "";
    const versionSection = elf.section("version");
    const kernelVersion =
      versionSection && versionSection.size >= 4 ? new DataView(versionSection.data().buffer, versionSection.data().byteOffset).getUint32(0, true) : 0;

    // Sizes first: the BTF fixup below writes them into DATASECs.
    for (const sec of elf.sections) if (dataSectionKind(sec.name)) checkDataSectionSize(sec.name, sec.size);

    // clang leaves data section sizes and variable offsets out of BTF; with them filled
    // in, the same bytes serve the kernel and our own decoding.
    const btfSection = elf.section(".BTF");
    const asCompiled = btfSection ? new Spec(btfSection.data().slice()) : undefined;
    // Externs are read from the BTF as compiled: the kernel's copy turns .ksyms entries into ints.
    const externs = collectExterns(elf, asCompiled);
    this.externs = externs;
    const kconfigBytes = kconfigSize(externs);
    let fixed = asCompiled ? fixupDatasecs(asCompiled, sectionLayouts(elf)) : undefined;
    // Hidden global functions (usdt.bpf.h's helpers) become static, as libbpf does: the
    // verifier checks global functions on their own, without their callers' context.
    if (asCompiled && fixed) markHiddenFuncsStatic(fixed, asCompiled, elf);
    if (fixed && externs.size) {
      const kconfigOffsets = new Map([...externs.values()].filter((e) => e.kconfig).map((e) => [e.name, e.kconfig!.offset]));
      fixed = fixupExternDatasecs(new Spec(fixed), { kconfigOffsets, kconfigSize: kconfigBytes });
    }
    this.kernelBtf = fixed;
    this.btf = this.kernelBtf ? new Spec(this.kernelBtf) : undefined;
    const extSection = elf.section(".BTF.ext");
    this.btfExt = extSection && this.btf ? parseExt(extSection.data(), this.btf) : undefined;

    const symbols = elf.symbols();
    const maps = new Map<string, MapSpec>();
    const variables = new Map<string, VariableSpec>();
    const mapDefs = new Map<string, Type>();

    for (const sec of elf.sections) {
      if (sec.index === 0 || IGNORED.test(sec.name) || (sec.flags & 0x4) !== 0) continue;
      if (sec.name === "license" || sec.name === "version") continue;
      if (sec.name === "maps") {
        throw new ObjectError(`${source}: legacy "maps" section (struct bpf_map_def) is not supported; declare maps with BTF in SEC(".maps")`);
      }
      if (sec.name === ".maps") {
        if (!this.btf) throw new ObjectError(`${source}: .maps needs BTF to be read; compile with -g`);
        const datasec = this.btf.typesByName(".maps").find((t) => t.kind === "datasec");
        if (datasec?.kind !== "datasec") throw new ObjectError(`${source}: no BTF description of .maps`);
        for (const v of datasec.vars) {
          if (v.type.kind !== "var") throw new ObjectError(`${source}: .maps entry ${v.type.id} is not a variable`);
          const spec = btfMapSpec(v.type.name, v.type.type);
          maps.set(spec.name, spec);
          mapDefs.set(spec.name, v.type.type);
        }
        continue;
      }
      const kind = dataSectionKind(sec.name);
      if (kind) {
        const initial = sec.type === SHT_NOBITS ? undefined : sec.data();
        const spec = dataMapSpec(sec.name, sec.size, initial, this.btf);
        maps.set(spec.name, spec);
        for (const sym of symbols) {
          if (sym.shndx !== sec.index || sym.type !== STT_OBJECT || !sym.name) continue;
          if (sym.value + sym.size > sec.size) {
            throw new ObjectError(
              `${source}: global variable ${sym.name} at ${sym.value}+${sym.size} lies outside its section ${sec.name} (${sec.size} bytes)`,
            );
          }
          variables.set(sym.name, new VariableSpec(sym.name, spec, sym.value, sym.size, this.#varType(sec.name, sym.name)));
        }
        continue;
      }
      if (sec.name.startsWith(".struct_ops")) {
        throw new ObjectError(`${source}: section ${sec.name} is not supported yet`);
      }
      // Other sections (custom metadata, notes) hold nothing the kernel needs; aya documents
      // the same choice. They stay readable through the ELF layer.
    }

    if (kconfigBytes > 0) maps.set(KCONFIG_SECTION, kconfigMapSpec(kconfigBytes, this.btf));
    this.maps = maps;
    this.variables = variables;

    const ext = this.btfExt;
    this.programs = readPrograms({
      elf,
      license: this.license,
      kernelVersion,
      mapForSymbol: (sym) => mapForSymbol(sym, elf, maps),
      externForSymbol: (sym) => externs.get(sym.name),
      ext: (section): SectionExt | undefined =>
        ext && {
          funcInfo: ext.funcInfos.get(section) ?? [],
          lineInfo: (ext.lineInfos.get(section) ?? []).map((l) => ({
            insnOff: l.insnOff,
            fileNameOff: l.fileNameOff,
            lineOff: l.lineOff,
            lineCol: ((l.lineNumber << 10) | (l.column & 0x3ff)) >>> 0, // a u32, even past line 2^21
            line: l.line,
          })),
          coreRelos: ext.coreRelos.get(section) ?? [],
        },
    });
    // Initial values of maps of maps and prog arrays name maps and programs: read last.
    readMapSlots(elf, maps, mapDefs, this.programs);
  }

  /** Parses an object from its bytes. `source` names it in messages. */
  static fromBytes(bytes: Uint8Array, source = "<object>"): ObjectSpec {
    return new ObjectSpec(source, new ElfFile(bytes, source));
  }

  static fromFile(path: string): ObjectSpec {
    return ObjectSpec.fromBytes(new Uint8Array(readFileSync(path)), path);
  }

  program(name: string): ProgramSpec {
    return this.programs.get(name) ?? notFound("program", name, this.programs.keys(), this.source);
  }

  map(name: string): MapSpec {
    return this.maps.get(name) ?? notFound("map", name, this.maps.keys(), this.source);
  }

  /**
   * A named type from the object's BTF (struct and union names without the keyword).
   * clang only emits types that globals, maps or function signatures use.
   */
  type(name: string): Type {
    if (!this.btf) throw new ObjectError(`${this.source} has no BTF; compile it with -g`);
    const found = this.btf.typesByName(name).filter((t) => t.kind !== "func" && t.kind !== "var" && t.kind !== "fwd");
    if (found.length === 0) {
      throw new ObjectError(
        `${this.source} has no type named "${name}" in its BTF. clang emits only the types that globals, maps ` +
          `and function signatures use: declare one, e.g. "const struct ${name} *unused_${name} __attribute__((unused));"`,
      );
    }
    return found.find((t) => t.kind === "struct" || t.kind === "union") ?? found[0];
  }

  variable(name: string): VariableSpec {
    return this.variables.get(name) ?? notFound("global variable", name, this.variables.keys(), this.source);
  }

  #varType(section: string, name: string): Type | undefined {
    const datasec = this.btf?.typesByName(section).find((t) => t.kind === "datasec");
    if (datasec?.kind !== "datasec") return undefined;
    const v = datasec.vars.find((s) => s.type.kind === "var" && s.type.name === name);
    return v?.type.kind === "var" ? v.type.type : undefined;
  }
}

function cstringSection(elf: ElfFile, name: string): string | undefined {
  const sec = elf.section(name);
  if (!sec) return undefined;
  const data = sec.data();
  const end = data.indexOf(0);
  return new TextDecoder().decode(end < 0 ? data : data.subarray(0, end));
}

/** Which map a relocated ld_imm64 refers to: a .maps variable, or a place in global data. */
function mapForSymbol(sym: ElfSymbol, elf: ElfFile, maps: Map<string, MapSpec>) {
  const section = elf.sections[sym.shndx];
  if (!section) return undefined;
  if (section.name === ".maps") {
    if (!maps.has(sym.name)) return undefined;
    return { map: sym.name, kind: "fd" as const, offset: 0 };
  }
  if (maps.get(section.name)?.dataSection) {
    return { map: section.name, kind: "value" as const, offset: sym.type === STT_SECTION ? 0 : sym.value };
  }
  return undefined;
}
