// Finding the binaries and libraries that uprobes go into, by one rule for every
// caller (Program.attachUprobe, the BCC facade, tsbpf trace), BCC's:
//   - a name with a "/" is a path;
//   - else a library: "c" is libc (the first libc.so* of this architecture in the
//     ld.so cache, as bcc_procutils_which_so does), "libssl.so.3" that exact name;
//     then the same names in the usual library directories (no ld.so cache);
//   - else a program on PATH ("bash").
import { execFileSync } from "node:child_process";
import { accessSync, constants, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { which } from "./which.ts";

export interface LdCacheEntry {
  name: string;
  /** "libc6,x86-64" */
  flags: string;
  path: string;
}

let ldCache: LdCacheEntry[] | undefined;

/** The ld.so cache (`ldconfig -p`), read once; empty when there is no ldconfig. */
export function ldCacheEntries(): readonly LdCacheEntry[] {
  if (ldCache) return ldCache;
  const ldconfig = which("ldconfig", ["/sbin", "/usr/sbin"]);
  let text = "";
  try {
    if (ldconfig) text = execFileSync(ldconfig, ["-p"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    // No cache: the library directories below are searched instead.
  }
  ldCache = [];
  for (const line of text.split("\n")) {
    const m = /^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)$/.exec(line);
    if (m) ldCache.push({ name: m[1]!, flags: m[2]!, path: m[3]! });
  }
  return ldCache;
}

const ARCH_FLAG: Partial<Record<string, string>> = { x64: "x86-64", arm64: "AArch64", riscv64: "RISC-V", ppc64: "64bit" };
const ARCH_DIR: Partial<Record<string, string>> = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu", riscv64: "riscv64-linux-gnu" };

/** Library directories searched when the ld.so cache has no answer, this architecture's first. */
export function libraryDirs(): string[] {
  const multiarch = ARCH_DIR[process.arch];
  return [...(multiarch ? [`/lib/${multiarch}`, `/usr/lib/${multiarch}`] : []), "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
}

/** A library by BCC's names ("c", "pthread", "libssl.so.3"), or undefined. */
export function findLibrary(name: string): string | undefined {
  if (name.includes("/")) return undefined;
  const arch = ARCH_FLAG[process.arch];
  const exact = name.includes(".so");
  const matches = exact ? (n: string) => n === name : (n: string) => n === `lib${name}.so` || n.startsWith(`lib${name}.so.`);
  const cached = ldCacheEntries().find((e) => matches(e.name) && (!arch || e.flags.includes(arch)));
  if (cached) return cached.path;
  for (const dir of libraryDirs()) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    // The shortest match: libc.so.6 before libc.so.6.debug.
    const found = entries.filter(matches).sort((a, b) => a.length - b.length)[0];
    if (found && readable(join(dir, found))) return join(dir, found);
  }
  return undefined;
}

/** The binary or library `name` stands for, by the rule above, or undefined. */
export function findBinary(name: string): string | undefined {
  if (name.includes("/")) {
    const path = resolve(name);
    return readable(path) ? path : undefined;
  }
  return findLibrary(name) ?? which(name);
}

/** Where findBinary looked, for messages. */
export function searchedFor(name: string): string {
  if (name.includes("/")) return `${name} (no such readable file)`;
  return name.includes(".so")
    ? `${name} in the ld.so cache (ldconfig -p) and ${libraryDirs().join(", ")}`
    : `lib${name}.so in the ld.so cache and the library directories, and a program "${name}" on PATH`;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
