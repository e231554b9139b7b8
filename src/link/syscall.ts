import { kallsyms } from "../internal/kallsyms.ts";

// Prefixes of syscall wrapper functions, by architecture, newest convention first.
const prefixes = ["__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_", "__ia32_sys_", "__se_sys_", "sys_"];

let cachedPrefix: string | undefined;

/**
 * The prefix of syscall functions in this kernel ("__x64_sys_" on x86_64 since
 * 4.17), found in /proc/kallsyms as BCC's get_syscall_prefix does.
 */
export function syscallPrefix(): string {
  if (cachedPrefix !== undefined) return cachedPrefix;
  // An empty table (unreadable kallsyms) falls back to the architecture's convention below.
  const table = kallsyms();
  for (const prefix of prefixes) {
    if (table.has(`${prefix}bpf`)) return (cachedPrefix = prefix);
  }
  return (cachedPrefix = process.arch === "x64" ? "__x64_sys_" : process.arch === "arm64" ? "__arm64_sys_" : "sys_");
}

/** The syscall that a kernel function wraps ("__x64_sys_openat" -> "openat"), or undefined. */
export function syscallOfFunction(fn: string): string | undefined {
  for (const prefix of [...prefixes, "__do_sys_", "do_sys_", "ksys_"]) {
    if (fn.startsWith(prefix) && fn.length > prefix.length) return fn.slice(prefix.length);
  }
  return undefined;
}

/**
 * The syscall whose entry function `fn` is, with the syscall's own arguments
 * ("__x64_sys_openat", "__se_sys_openat", "__do_sys_openat", "sys_openat" ->
 * "openat"), or undefined. Narrower than syscallOfFunction: do_sys_openat2 and
 * ksys_read take other arguments, so their syscall's tracepoint cannot stand in.
 */
export function syscallOfEntry(fn: string): string | undefined {
  for (const prefix of [...prefixes, "__do_sys_"]) {
    if (fn.startsWith(prefix) && fn.length > prefix.length) return fn.slice(prefix.length);
  }
  return undefined;
}
