import { accessSync, constants, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { ElfFile } from "../elf/index.ts";
import { which } from "../internal/which.ts";
import { AttachError } from "./errors.ts";
import { attachPerfEvent, type AttachableProgram, type Link } from "./link.ts";
import { openProbe, probesAvailable } from "./probe.ts";

export interface UprobeOptions {
  /** The binary or library: a path, or a name looked up in PATH (executables) or the library dirs. */
  path: string;
  /** Function whose entry is probed (resolved from the ELF symbol tables). */
  symbol?: string;
  /** File offset, or with `symbol`, offset from the symbol's start. */
  offset?: number;
  /** Only this process (default: every process running the binary). */
  pid?: number;
  retprobe?: boolean;
}

/** A uprobe or uretprobe program on a function of a user-space binary. */
export function attachUprobe(prog: AttachableProgram, opts: UprobeOptions): Link {
  const retprobe = opts.retprobe ?? false;
  const kind = retprobe ? "uretprobe" : "uprobe";
  const path = resolveBinary(opts.path);
  if (opts.symbol === undefined && opts.offset === undefined) {
    throw new AttachError(`${kind} on ${path}: give a symbol or an offset`);
  }
  let offset = opts.offset ?? 0;
  if (opts.symbol !== undefined) {
    offset += new ElfFile(new Uint8Array(readFileSync(path)), path).symbolFileOffset(opts.symbol);
  }
  if (!probesAvailable("uprobe")) {
    throw new AttachError(`cannot attach ${kind}: this kernel has no uprobes (CONFIG_UPROBE_EVENTS is not set)`);
  }
  const probe = openProbe({ kind: "uprobe", retprobe, symbolOrPath: path, offset: BigInt(offset), pid: opts.pid ?? -1 });
  const where = opts.symbol !== undefined ? `${opts.symbol}${opts.offset ? `+${opts.offset}` : ""}` : `0x${offset.toString(16)}`;
  return attachPerfEvent(prog, probe.perf, `${kind}:${path}:${where}`, probe.undo);
}

const libraryDirs = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];

/** An absolute path for a binary named by path or by name, as libbpf's resolve_full_path does. */
export function resolveBinary(name: string): string {
  if (isAbsolute(name) || name.includes("/")) {
    if (!canRead(name)) throw new AttachError(`cannot read binary ${name}`);
    return name;
  }
  const found = name.includes(".so") ? libraryDirs.map((dir) => join(dir, name)).find(canRead) : which(name);
  if (found) return found;
  throw new AttachError(`cannot find "${name}" in ${name.includes(".so") ? "the library directories" : "PATH"}; give its full path`);
}

function canRead(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
