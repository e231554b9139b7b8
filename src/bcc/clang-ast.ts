// clang's JSON AST of a translated BCC program, for the rewrites that need
// clang's own view of the code (kernelreads.ts, packetreads.ts).
//
// The whole AST of a program that includes vmlinux.h is ~180 MB; the run
// here dumps only the declarations the caller names (their names are
// renamed by macros to carry a mark, so that one -ast-dump-filter matches
// them all), against a precompiled prefix header, and maps clang's offsets
// back to the caller's text.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { packageRoot } from "../internal/package.ts";
import { clangTimeoutMs, precompiledHeaders } from "../compile/compile.ts";
import type { VmlinuxHeader } from "../compile/vmlinux.ts";

export type AstNode = {
  id?: string;
  kind?: string;
  name?: string;
  type?: { qualType?: string; desugaredQualType?: string };
  valueCategory?: string;
  castKind?: string;
  opcode?: string;
  isArrow?: boolean;
  isBitfield?: boolean;
  value?: string;
  loc?: AstLoc;
  range?: { begin: AstLoc; end: AstLoc };
  referencedDecl?: { id: string; kind: string; name?: string };
  inner?: AstNode[];
};
type BareLoc = { offset?: number; file?: string; tokLen?: number };
export type AstLoc = BareLoc & { spellingLoc?: BareLoc; expansionLoc?: BareLoc };

export interface AstRunOptions {
  /** Where the user's text starts in `code` (the prelude before it is not dumped). */
  userStart: number;
  /** The declarations to dump: the user's functions, and any struct the caller needs. */
  names: string[];
  /** The suffix the run gives those names. */
  mark: string;
  clang: string;
  clangVersion: string;
  vmlinux: VmlinuxHeader;
  cacheDir: string;
  cflags?: string[];
  includeDirs?: string[];
  arch: string;
}

export interface AstRun {
  decls: AstNode[];
  /** The user's text: offsets into it, and which files clang calls it. */
  text: UserText;
}

/** Runs clang on `code` and returns the JSON AST of the named declarations (empty when nothing parsed). */
export async function dumpAst(code: string, opts: AstRunOptions): Promise<AstRun> {
  const { clang, vmlinux, cacheDir } = opts;
  const flags = ["-target", "bpf", `-D__TARGET_ARCH_${opts.arch}`, "-fno-color-diagnostics", "-w"];
  for (const dir of opts.includeDirs ?? []) flags.push("-I", dir);
  flags.push("-I", join(packageRoot, "include"), "-I", dirname(vmlinux.path));
  // The prefix (vmlinux.h, libbpf's headers) does not depend on the user's -D/-U: one PCH
  // per kernel and clang, not one per -DTARGET_PID=... (a 15 MB header, 1-2 s to build).
  const pchFlags = [...flags, ...(opts.cflags ?? []).filter((f) => /^-I/.test(f))];
  flags.push(...(opts.cflags ?? []).filter((f) => /^-[DUI]/.test(f)));
  const pch = await precompiledHeaders(clang, pchFlags, PREFIX_HEADERS, opts.clangVersion, vmlinux.btfHash, cacheDir);

  const defines = opts.names.map((f) => `#define ${f} ${f}${opts.mark}\n`).join("");
  const astText = code.slice(0, opts.userStart) + defines + code.slice(opts.userStart);
  const shift = (offset: number) => (offset >= opts.userStart + defines.length ? offset - defines.length : -1);

  await mkdir(join(cacheDir, "tmp"), { recursive: true });
  const tmp = await mkdtemp(join(cacheDir, "tmp", "ast-"));
  const input = join(tmp, "program.c");
  let json: string;
  try {
    await writeFile(input, astText);
    const args = [...flags, ...(pch ? ["-include-pch", pch, "-Xclang", "-fno-validate-pch"] : []), "-fsyntax-only", "-Xclang", "-ast-dump=json", "-Xclang", `-ast-dump-filter=${opts.mark}`, "-x", "c", input];
    json = await new Promise<string>((resolve, reject) => {
      execFile(clang, args, { encoding: "utf8", maxBuffer: 512 * 1024 * 1024, timeout: clangTimeoutMs() }, (error, stdout) => {
        // Errors are the compile's to report, with the user's lines: dump what parsed.
        if (error && !stdout) reject(error);
        else resolve(stdout);
      });
    }).catch(() => "");
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  // The user's text is under #line "FILE" directives, or in the input itself.
  const mainFiles = new Set([input, ...[...code.matchAll(/^#line \d+ "([^"]+)"$/gm)].map((m) => m[1]!)]);
  return { decls: splitJson(json), text: new UserText(code, shift, mainFiles) };
}

/** What the AST run precompiles: then it parses only the program. */
const PREFIX_HEADERS = ['"vmlinux.h"', "<bpf/bpf_helpers.h>", "<bpf/bpf_tracing.h>", "<bpf/bpf_core_read.h>", "<bpf/bpf_endian.h>"];

/** clang prints one JSON document per matched declaration, back to back. */
export function splitJson(text: string): AstNode[] {
  const out: AstNode[] = [];
  for (const part of text.split(/\n(?=\{\n)/)) {
    const t = part.trim();
    if (!t) continue;
    try {
      out.push(JSON.parse(t) as AstNode);
    } catch {
      // a truncated dump: ignore
    }
  }
  return out;
}

/**
 * Where AST nodes are in the user's text. clang writes a location's file only
 * when it changes, in document order: `walk` every declaration first, then
 * ask for a node's range.
 */
export class UserText {
  readonly #ranges = new Map<AstNode, [number, number] | null>();
  #file = "";

  constructor(
    readonly code: string,
    /** An offset in clang's input to one in `code`; -1 before the user's text. */
    readonly shift: (offset: number) => number,
    readonly mainFiles: Set<string>,
  ) {}

  /** Records the ranges of `n` and everything under it. */
  walk(n: AstNode): void {
    if (n.loc) this.#offset(n.loc, "begin");
    if (n.range) {
      const b = this.#offset(n.range.begin, "begin");
      const e = this.#offset(n.range.end, "end");
      this.#ranges.set(n, b !== undefined && e !== undefined && e > b ? [b, e] : null);
    }
    for (const c of n.inner ?? []) this.walk(c);
  }

  /** [begin, end) of a walked node in `code`, or undefined when it is not the user's own text. */
  range(n: AstNode): [number, number] | undefined {
    return this.#ranges.get(n) ?? undefined;
  }

  /** The user's text of a walked node ("" when it has none). */
  text(n: AstNode): string {
    const r = this.range(n);
    return r ? this.code.slice(r[0], r[1]) : "";
  }

  /** Offset in `code` of a range end, or undefined when it is not in the user's text (or inside a macro's body). */
  #offset(l: AstLoc, which: "begin" | "end"): number | undefined {
    const see = (b: BareLoc | undefined) => {
      if (b?.file !== undefined) this.#file = b.file;
      return b;
    };
    const at = (offset: number, tokLen = 0) => (which === "begin" ? offset : offset + tokLen);
    if (l.spellingLoc || l.expansionLoc) {
      const sp = see(l.spellingLoc);
      const spFile = this.#file;
      const ex = see(l.expansionLoc);
      if (!ex || ex.offset === undefined || sp?.offset === undefined) return undefined;
      // A macro argument (ntohs(sk->x)): its tokens are spelled in the user's text.
      if (this.mainFiles.has(spFile)) {
        const o = this.shift(sp.offset);
        if (o >= 0) return at(o, sp.tokLen);
      }
      // A token of an object-like macro (sk_state, an alias) stands for itself;
      // a function-like macro's invocation cannot be split.
      const off = this.shift(ex.offset);
      if (off < 0 || /^\s*\(/.test(this.code.slice(off + (ex.tokLen ?? 0)))) return undefined;
      return at(off, ex.tokLen);
    }
    see(l);
    if (l.offset === undefined || !this.mainFiles.has(this.#file)) return undefined;
    const off = this.shift(l.offset);
    return off < 0 ? undefined : at(off, l.tokLen);
  }
}
