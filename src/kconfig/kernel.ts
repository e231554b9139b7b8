// The running kernel as .kconfig and __ksym externs see it: its version (uname,
// Ubuntu's /proc/version_signature), its config (/boot/config-$(uname -r), else
// /proc/config.gz), kallsyms and BTF. Every read happens on first use.
import { readFileSync } from "node:fs";
import { release, version } from "node:os";
import { haveHelper } from "../features/index.ts";
import { loadedModuleBtfs } from "../btf/modules.ts";
import { ProgType } from "../internal/sys/constants.ts";
import { kallsyms } from "../internal/kallsyms.ts";
import { targetBtf, type TargetBtf } from "../object/core.ts";
import { ObjectError } from "../object/errors.ts";
import type { ExternEnvironment } from "../object/resolve-externs.ts";
import { readKernelConfigText } from "./file.ts";
import { linuxKernelVersion, parseKconfig } from "./parse.ts";

export { readKernelConfigText };

const BPF_FUNC_get_attach_cookie = 174;

/** LINUX_KERNEL_VERSION of the running kernel, as libbpf computes it. */
export function runningKernelVersion(): number {
  let versionSignature: string | undefined;
  try {
    versionSignature = readFileSync("/proc/version_signature", "utf8");
  } catch {
    // Not Ubuntu.
  }
  return linuxKernelVersion({ release: release(), version: version(), versionSignature });
}

let config: ReadonlyMap<string, string> | undefined;

/** The running kernel's CONFIG_* values, read once per process. */
export function runningKernelConfig(): ReadonlyMap<string, string> {
  return (config ??= parseKconfig(readKernelConfigText().text));
}

/** The syscall wrapper prefix libbpf probes for on this architecture. */
function syscallPrefix(): string | undefined {
  switch (process.arch) {
    case "x64": return "x64";
    case "arm64": return "arm64";
    case "s390x": return "s390x";
    case "riscv64": return "riscv";
    case "arm": return "arm";
    case "ppc64": return "powerpc";
    default: return undefined;
  }
}

/**
 * The running kernel as an ExternEnvironment. `kernelBtf` overrides where typed
 * ksyms and kfuncs are looked up (the default is /sys/kernel/btf/vmlinux).
 */
export function hostExternEnvironment(opts: { kernelBtf?: TargetBtf } = {}): ExternEnvironment {
  return {
    kernelVersion: runningKernelVersion,
    kconfig: runningKernelConfig,
    hasBpfCookie: () => haveHelper(ProgType.TRACEPOINT, BPF_FUNC_get_attach_cookie),
    // libbpf probes this with a kprobe on __<arch>_sys_bpf; kallsyms answers the same question without kprobes.
    hasSyscallWrapper: () => {
      const prefix = syscallPrefix();
      return prefix !== undefined && kallsyms().has(`__${prefix}_sys_bpf`);
    },
    kernelBtf: () => targetBtf(opts.kernelBtf).spec,
    // Modules' BTF sits on the running kernel's: not searched when another kernel's BTF is the target (as libbpf).
    ...(opts.kernelBtf === undefined ? { moduleBtfs: () => loadedModuleBtfs().map((m) => ({ name: m.name, spec: m.spec, fd: m.fd.value })) } : {}),
    ksymAddress: (name) => {
      const table = kallsyms();
      if (table.restricted) return undefined;
      return table.address(name);
    },
    kallsymsHasData: () => {
      const table = kallsyms();
      if (table.restricted) return undefined;
      // Every kernel has the per-CPU runqueues and jiffies; kallsyms lists them only with CONFIG_KALLSYMS_ALL.
      return table.has("runqueues") || table.has("jiffies");
    },
  };
}
