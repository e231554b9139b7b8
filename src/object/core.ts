// CO-RE relocations of an ObjectSpec's programs against a target BTF (the
// running kernel's by default). Pure: the spec is left as it is and relocated
// copies of its programs come back, so one spec can be relocated for several
// kernels. Collection.load calls this; tests call it without loading anything.
import { Instructions } from "../asm/instruction.ts";
import { coreRelocate, type CandidateCache, type CoreFixup } from "../btf/core.ts";
import { Spec } from "../btf/spec.ts";
import { moduleBtfSpecs } from "../btf/modules.ts";
import { ObjectError } from "./errors.ts";
import type { ProgramSpec } from "./programs.ts";
import type { ObjectSpec } from "./spec.ts";

/** A target BTF: a parsed Spec, or the path of a raw BTF file (such as /sys/kernel/btf/vmlinux). */
export type TargetBtf = Spec | string;

export interface CoreRelocations {
  /** The target the relocations were resolved against (undefined when no program has any). */
  target: Spec | undefined;
  /** Every program asked for: relocated copies, or the spec's own when it has no CO-RE relocations. */
  programs: Map<string, ProgramSpec>;
  /** What was done to each relocated instruction, by program. */
  fixups: Map<string, CoreFixup[]>;
  /** One message per poisoned instruction (what was not found, in which program). */
  warnings: string[];
}

export interface CoreOptions {
  /** Only these programs (default: all). */
  programs?: string[];
  /** What messages call the target (default: "kernel BTF" for the running kernel's, the path for a file). */
  targetName?: string;
}

const KERNEL_BTF = "/sys/kernel/btf/vmlinux";

/** The Spec of a target: the running kernel's when undefined (parsed once per process). */
export function targetBtf(target: TargetBtf | undefined): { spec: Spec; name: string } {
  if (target instanceof Spec) return { spec: target, name: "the target BTF" };
  const path = target ?? KERNEL_BTF;
  return { spec: Spec.kernel(path), name: path === KERNEL_BTF ? "kernel BTF" : path };
}

/** True when any of these programs (default: all) has CO-RE relocations. */
export function hasCoreRelocations(spec: ObjectSpec, programs?: string[]): boolean {
  const names = programs ?? [...spec.programs.keys()];
  return names.some((n) => spec.program(n).coreRelos.length > 0);
}

/**
 * Applies the CO-RE relocations of `spec`'s programs for `target` (default:
 * the running kernel's BTF). Throws CoreError for relocations that are
 * malformed or ambiguous; what the target lacks is poisoned and reported in
 * `warnings`.
 */
export function applyCoreRelocations(spec: ObjectSpec, target?: TargetBtf, opts: CoreOptions = {}): CoreRelocations {
  const names = opts.programs ?? [...spec.programs.keys()];
  const wanted = names.map((n) => spec.program(n));
  const needed = wanted.some((p) => p.coreRelos.length > 0);
  // Look the target up only when something needs it: objects without CO-RE load without kernel BTF.
  let resolved: ReturnType<typeof targetBtf> | undefined;
  if (needed) {
    try {
      resolved = targetBtf(target);
    } catch (err) {
      const which = wanted.filter((p) => p.coreRelos.length > 0).map((p) => p.name).join(", ");
      throw new ObjectError(
        `${spec.source}: CO-RE relocations (in ${which}) need the target kernel's BTF: ${(err as Error).message}` +
          (target === undefined ? " (a kernel built with CONFIG_DEBUG_INFO_BTF has it; or pass kernelBtf)" : ""),
        { cause: err },
      );
    }
  }
  const out: CoreRelocations = {
    target: resolved?.spec,
    programs: new Map(),
    fixups: new Map(),
    warnings: [],
  };
  const cache: CandidateCache = new Map();
  for (const program of wanted) {
    if (program.coreRelos.length === 0) {
      out.programs.set(program.name, program);
      continue;
    }
    if (!spec.btf) throw new ObjectError(`${spec.source}: program ${program.name} has CO-RE relocations but the object has no BTF`);
    const insns = new Instructions(program.instructions.slice());
    const fixups = coreRelocate(insns, program.coreRelos, spec.btf, resolved!.spec, {
      program: program.name,
      targetName: opts.targetName ?? resolved!.name,
      cache,
      // Module BTF sits on the running kernel's: searched only when that is the target.
      modules: target === undefined ? () => moduleBtfSpecs() : undefined,
    });
    out.programs.set(program.name, { ...program, instructions: insns.bytes });
    out.fixups.set(program.name, fixups);
    for (const f of fixups) if (f.warning) out.warnings.push(f.warning);
  }
  return out;
}
