// Load-time resolution of an object's externs (libbpf's bpf_object__resolve_externs
// and the RELO_EXTERN_* cases of bpf_object__relocate_data), against a kernel
// environment that is passed in: the running kernel's by default
// (kconfig/kernel.ts), fixture BTF, kallsyms and config text in unit tests.
// Nothing here makes a syscall. An extern that does not resolve is recorded
// with the reason; only the programs that use it fail, when they are loaded.
import { Instructions } from "../asm/instruction.ts";
import { coreTypesCompatible, essentialName } from "../btf/core.ts";
import type { Spec } from "../btf/spec.ts";
import { describe, resolve } from "../btf/types.ts";
import { Pseudo } from "../internal/sys/constants.ts";
import { encodeKconfigNumber, encodeKconfigValue } from "../kconfig/parse.ts";
import { ObjectError } from "./errors.ts";
import { kconfigSize, type ExternSpec } from "./externs.ts";
import type { ProgramSpec } from "./programs.ts";

/** What externs are resolved against. Each part is asked for only when an extern needs it. */
export interface ExternEnvironment {
  /** LINUX_KERNEL_VERSION (KERNEL_VERSION(a, b, c)); 0 when unknown. */
  kernelVersion(): number;
  /** The kernel's CONFIG_* values as written in its .config; throws when there is none to read. */
  kconfig(): ReadonlyMap<string, string>;
  /** LINUX_HAS_BPF_COOKIE: the kernel has bpf_get_attach_cookie(). */
  hasBpfCookie(): boolean;
  /** LINUX_HAS_SYSCALL_WRAPPER: syscalls enter through __<arch>_sys_* wrappers taking a pt_regs. */
  hasSyscallWrapper(): boolean;
  /** The kernel's BTF (vmlinux), for typed __ksym variables and kfuncs. */
  kernelBtf(): Spec;
  /**
   * The BTF of the kernel's loaded modules, searched after vmlinux's (libbpf's order).
   * Asked for only when vmlinux lacks an extern; absent: vmlinux alone.
   */
  moduleBtfs?(): readonly ModuleBtfSource[];
  /** A kernel symbol's address (kallsyms), for untyped __ksym variables. */
  ksymAddress(name: string): bigint | undefined;
  /** False when kallsyms holds no data symbols (no CONFIG_KALLSYMS_ALL); undefined when unknown. */
  kallsymsHasData?(): boolean | undefined;
}

/** One module's BTF as externs see it: split on vmlinux's, and an fd of it in the kernel. */
export interface ModuleBtfSource {
  readonly name: string;
  readonly spec: Spec;
  /** The fd of the module's BTF object (a number, so fixtures can give one). */
  readonly fd: number;
}

/** What an extern resolved to. */
export type ResolvedExtern =
  /**
   * A kernel BTF id (typed ksym, kfunc); `btfObjFd` 0 is vmlinux, else the fd of `module`'s
   * BTF; a kfunc in a module has `fdIndex`, its slot in the load's fd_array (insn.off).
   */
  | { state: "btf"; btfId: number; btfObjFd: number; module?: string; fdIndex?: number }
  /** An address (untyped ksym). */
  | { state: "address"; address: bigint }
  /** A .kconfig value, written into the .kconfig map. */
  | { state: "kconfig" }
  /** A __weak extern the kernel lacks: 0, and calls to it poisoned. */
  | { state: "missing" }
  /** Cannot be used: programs that refer to it fail to load with `reason`. */
  | { state: "failed"; reason: string };

/** libbpf's POISON_CALL_KFUNC_BASE: a helper id no kernel has, so a poisoned kfunc call fails only when it can run. */
export const POISON_CALL_KFUNC_BASE = 2002000000;

export class ExternResolver {
  readonly #externs: ReadonlyMap<string, ExternSpec>;
  readonly #env: ExternEnvironment;
  readonly #resolved = new Map<string, ResolvedExtern>();
  #kconfig: Uint8Array | undefined;
  /** fd_array for BPF_PROG_LOAD: module BTF fds of kfunc calls; slot 0 unused (insn.off 0 is vmlinux). */
  readonly #fdArray: number[] = [0];

  constructor(externs: ReadonlyMap<string, ExternSpec>, env: ExternEnvironment) {
    this.#externs = externs;
    this.#env = env;
  }

  /** The .kconfig map's contents with every .kconfig extern that resolves written in (0 for the rest). */
  kconfigData(): Uint8Array {
    if (!this.#kconfig) {
      const data = new Uint8Array(kconfigSize(this.#externs));
      for (const e of this.#externs.values()) if (e.kconfig) this.#resolved.set(e.name, this.#resolveKconfig(e, data));
      this.#kconfig = data;
    }
    return this.#kconfig;
  }

  /** What extern `name` resolves to (resolved once, on first use). */
  resolve(name: string): ResolvedExtern {
    let r = this.#resolved.get(name);
    if (!r) {
      const e = this.#externs.get(name);
      if (!e) r = { state: "failed", reason: "no such extern in the object" };
      else if (e.problem) r = { state: "failed", reason: e.problem };
      else if (e.kconfig) {
        this.kconfigData();
        r = this.#resolved.get(name)!;
      } else r = this.#resolveKsym(e);
      this.#resolved.set(name, r);
    }
    return r;
  }

  /**
   * A copy of `program` with its extern references patched: kfunc calls and typed
   * ksyms to kernel BTF ids, untyped ksyms to their address, missing weak ones to 0
   * (and their calls poisoned). Throws an ObjectError naming the first extern the
   * program needs that does not resolve.
   */
  apply(program: ProgramSpec): ProgramSpec {
    if (program.externs.length === 0) return program;
    const insns = new Instructions(program.instructions.slice());
    const order = [...this.#externs.keys()];
    for (const ref of program.externs) {
      const ext = this.#externs.get(ref.name);
      const r = this.resolve(ref.name);
      if (r.state === "failed") {
        throw new ObjectError(`program ${program.name}: failed to resolve extern ${ref.name}: ${r.reason}`);
      }
      if (ext?.kconfig) continue; // a map value reference, filled in with the other maps
      if (ref.use === "call") {
        insns.setOff(ref.insn, 0);
        if (r.state === "btf") {
          insns.setSrc(ref.insn, Pseudo.KFUNC_CALL);
          insns.setImm(ref.insn, r.btfId);
          insns.setOff(ref.insn, r.fdIndex ?? 0);
        } else {
          // libbpf's poison_kfunc_call: a call to a helper no kernel has, rejected only if reachable.
          insns.setSrc(ref.insn, 0);
          insns.setImm(ref.insn, POISON_CALL_KFUNC_BASE + order.indexOf(ref.name));
        }
        continue;
      }
      if (r.state === "btf") {
        insns.setSrc(ref.insn, Pseudo.BTF_ID);
        insns.setImm(ref.insn, r.btfId);
        insns.setImm(ref.insn + 1, r.btfObjFd);
      } else {
        const address = r.state === "address" ? r.address : 0n;
        insns.setSrc(ref.insn, 0);
        insns.setImm(ref.insn, Number(BigInt.asIntN(32, address & 0xffffffffn)));
        insns.setImm(ref.insn + 1, Number(BigInt.asIntN(32, address >> 32n)));
      }
    }
    return { ...program, instructions: insns.bytes };
  }

  /**
   * The fd_array every program of the object loads with (libbpf keeps one per object):
   * undefined when no kfunc call resolved to a module. Complete once apply() has run
   * for the program being loaded.
   */
  fdArray(): Int32Array | undefined {
    return this.#fdArray.length > 1 ? Int32Array.from(this.#fdArray) : undefined;
  }

  /** The extern behind a poisoned kfunc call's helper id, for explaining a verifier rejection. */
  poisonedExtern(helperId: number): string | undefined {
    return [...this.#externs.keys()][helperId - POISON_CALL_KFUNC_BASE];
  }

  #resolveKconfig(e: ExternSpec, data: Uint8Array): ResolvedExtern {
    const slot = e.kconfig!;
    if (e.problem) return { state: "failed", reason: e.problem };
    const out = data.subarray(slot.offset, slot.offset + slot.size);
    try {
      if (e.name.startsWith("CONFIG_")) {
        let config: ReadonlyMap<string, string>;
        try {
          config = this.#env.kconfig();
        } catch (err) {
          if (e.weak) return { state: "missing" };
          return { state: "failed", reason: (err as Error).message };
        }
        const value = config.get(e.name);
        if (value === undefined) {
          return e.weak ? { state: "missing" } : { state: "failed", reason: `${e.name} is not in the kernel's config (declare it __weak to default to 0)` };
        }
        encodeKconfigValue(slot, value, out);
        return { state: "kconfig" };
      }
      let value: bigint;
      switch (e.name) {
        case "LINUX_KERNEL_VERSION": {
          const v = this.#env.kernelVersion();
          if (!v) return { state: "failed", reason: "cannot tell the kernel's version from uname" };
          value = BigInt(v);
          break;
        }
        case "LINUX_HAS_BPF_COOKIE":
          value = this.#env.hasBpfCookie() ? 1n : 0n;
          break;
        case "LINUX_HAS_SYSCALL_WRAPPER":
          value = this.#env.hasSyscallWrapper() ? 1n : 0n;
          break;
        default:
          // An unknown LINUX_ name is 0 when weak; anything else is an error (libbpf's rule).
          if (e.name.startsWith("LINUX_") && e.weak) return { state: "missing" };
          return { state: "failed", reason: `unrecognized .kconfig extern (libbpf fills in CONFIG_* and LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE, LINUX_HAS_SYSCALL_WRAPPER)` };
      }
      encodeKconfigNumber(slot, value, out);
      return { state: "kconfig" };
    } catch (err) {
      out.fill(0);
      if (!(err instanceof ObjectError)) throw err;
      return { state: "failed", reason: err.message };
    }
  }

  #resolveKsym(e: ExternSpec): ResolvedExtern {
    const name = essentialName(e.name);
    if (!e.typed) {
      const address = this.#env.ksymAddress(name);
      if (address !== undefined) return { state: "address", address };
      return e.weak ? { state: "missing" } : { state: "failed", reason: `${name} is not in /proc/kallsyms` };
    }
    let btf: Spec;
    try {
      btf = this.#env.kernelBtf();
    } catch (err) {
      return e.weak ? { state: "missing" } : { state: "failed", reason: `no kernel BTF to find it in: ${(err as Error).message}` };
    }
    const want = e.kind === "kfunc" ? "func" : "var";
    let found = btf.typesByName(name).find((t) => t.kind === want);
    let module: ModuleBtfSource | undefined;
    let searched: string[] | undefined;
    if (!found && this.#env.moduleBtfs) {
      // libbpf's find_ksym_btf_id: vmlinux first, then each loaded module's own types.
      let modules: readonly ModuleBtfSource[];
      try {
        modules = this.#env.moduleBtfs();
      } catch (err) {
        return e.weak ? { state: "missing" } : { state: "failed", reason: `the kernel's BTF has no ${want === "func" ? "function" : "variable"} ${name}, and the modules' BTF cannot be listed: ${(err as Error).message}` };
      }
      searched = modules.map((m) => m.name);
      for (const m of modules) {
        const own = m.spec.firstOwnId;
        found = m.spec.typesByName(name).find((t) => t.kind === want && t.id >= own);
        if (found) {
          module = m;
          break;
        }
      }
    }
    if (!found) {
      const where = searched === undefined ? "" : searched.length ? `, nor the BTF of the loaded modules (${searched.join(", ")})` : " and no loaded module has BTF";
      return e.weak ? { state: "missing" } : { state: "failed", reason: `the kernel's BTF has no ${want === "func" ? "function" : "variable"} ${name}${where}` };
    }
    const targetType = found.kind === "func" ? found.proto : found.kind === "var" ? found.type : undefined;
    if (e.type && targetType && !coreTypesCompatible(resolve(e.type), resolve(targetType))) {
      return { state: "failed", reason: `its type in the object (${describe(resolve(e.type))}) does not match the kernel's (${describe(resolve(targetType))})` };
    }
    // The kernel finds a variable's address by name in kallsyms (check_pseudo_btf_id): without
    // CONFIG_KALLSYMS_ALL data symbols are not there and the load would fail with a bare ENOENT.
    if (found.kind === "var" && this.#env.ksymAddress(name) === undefined && this.#env.kallsymsHasData?.() === false) {
      return e.weak
        ? { state: "missing" }
        : { state: "failed", reason: `the kernel's BTF has ${name} but /proc/kallsyms lists no data symbols (a kernel without CONFIG_KALLSYMS_ALL), so the kernel cannot give its address` };
    }
    if (!module) return { state: "btf", btfId: found.id, btfObjFd: 0 };
    if (found.kind !== "func") return { state: "btf", btfId: found.id, btfObjFd: module.fd, module: module.name };
    let fdIndex = this.#fdArray.indexOf(module.fd, 1);
    if (fdIndex < 0) fdIndex = this.#fdArray.push(module.fd) - 1;
    if (fdIndex > 0x7fff) return { state: "failed", reason: `more than ${0x7fff} module BTFs in one object's fd_array` };
    return { state: "btf", btfId: found.id, btfObjFd: module.fd, module: module.name, fdIndex };
  }
}
