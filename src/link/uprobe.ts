import { readFileSync } from "node:fs";
import { ElfFile } from "../elf/index.ts";
import { findBinary, searchedFor } from "../internal/binaries.ts";
import { AttachError } from "./errors.ts";
import { attachToPerfEvent, type AttachableProgram, type Link } from "./link.ts";
import { openProbe } from "./probe.ts";

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
    throw new AttachError(`${kind} on ${path}: give a symbol or an offset`, { hook: kind, target: path, reason: "no symbol and no offset" });
  }
  let offset = opts.offset ?? 0;
  if (opts.symbol !== undefined) {
    offset += new ElfFile(new Uint8Array(readFileSync(path)), path).symbolFileOffset(opts.symbol);
  }
  const probe = openProbe({ kind: "uprobe", retprobe, symbolOrPath: path, offset: BigInt(offset), pid: opts.pid ?? -1 });
  const where = opts.symbol !== undefined ? `${opts.symbol}${opts.offset ? `+${opts.offset}` : ""}` : `0x${offset.toString(16)}`;
  return attachToPerfEvent(prog, probe.perf, `${kind}:${path}:${where}`, probe.undo);
}

/** An absolute path for a binary named by path, library name or program name (internal/binaries.ts has the rule). */
export function resolveBinary(name: string): string {
  const found = findBinary(name);
  if (found) return found;
  throw new AttachError(`cannot find ${searchedFor(name)}; give the binary's full path`, {
    hook: "uprobe",
    target: name,
    reason: "no such binary",
    suggestion: "give the binary's full path",
  });
}
