// Probe patterns as BCC's funccount, stackcount and funclatency take them, and
// their attachment with a BPF cookie per target (so that one program serves
// every matched function and still knows which one fired):
//
//   FUNC, p::FUNC               kernel functions (kprobes; a glob, or a regex with -r)
//   LIB:FUNC, p:LIB:FUNC        user functions of a binary or library (uprobes; c is libc)
//   t:CATEGORY:EVENT            tracepoints (globs in both parts)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../elf/index.ts";
import { NotSupportedError } from "../errors.ts";
import { AttachType, PerfType } from "../internal/sys/constants.ts";
import { linkCreate } from "../internal/sys/bpf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { perfEventOpen } from "../internal/sys/perf.ts";
import type { FD } from "../internal/sys/fd.ts";
import { AttachError } from "../link/errors.ts";
import { Link, type AttachableProgram } from "../link/link.ts";
import { openProbe, probesAvailable } from "../link/probe.ts";
import { traceEventId } from "../link/tracepoint.ts";
import { resolveBinary } from "../link/uprobe.ts";
import { tracefsDir } from "../tracing/tracefs.ts";
import { findLibrary } from "./trace/probe.ts";
import { UsageError } from "./tool.ts";

export type ProbeTarget =
  | { kind: "tracepoint"; category: string; event: string; name: string }
  | { kind: "kprobe"; symbol: string; name: string }
  | { kind: "uprobe"; path: string; symbol: string; offset: number; name: string };

/** A target as BCC's FUNC column shows it: tracepoints as CATEGORY:EVENT, functions by name. */
export function targetLabel(t: ProbeTarget): string {
  return t.kind === "tracepoint" ? t.name : t.symbol;
}

export interface PatternOptions {
  /** The pattern's function part is a regular expression (BCC's -r), not a glob. */
  regexp?: boolean;
  /** At most this many targets (BCC's funccount stops at 1000). */
  max?: number;
  /** What the tool calls itself, for messages. */
  tool: string;
}

/** A glob ("sys_enter_*", "mall?c", "[ab]*") as an anchored RegExp. */
export function globRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

function matcher(text: string, regexp: boolean | undefined): (name: string) => boolean {
  if (!regexp) {
    if (!/[*?[]/.test(text)) return (n) => n === text;
    const re = globRegExp(text);
    return (n) => re.test(n);
  }
  let re: RegExp;
  try {
    re = new RegExp(text);
  } catch (err) {
    throw new UsageError(`-r/--regexp: "${text}" is not a regular expression: ${(err as Error).message}`);
  }
  return (n) => re.test(n);
}

/** Splits BCC's pattern syntax: [p:|t:|u:]... into its kind and parts. */
export function parsePattern(pattern: string): { type: "p" | "t" | "u"; library: string; fn: string } {
  const parts = pattern.split(":");
  if (parts.length === 1) return { type: "p", library: "", fn: parts[0]! };
  if (parts.length === 2) {
    if (parts[0] === "t") throw new UsageError(`"${pattern}": a tracepoint is t:CATEGORY:EVENT, e.g. t:syscalls:sys_enter_open*`);
    if (parts[0] === "p") return { type: "p", library: "", fn: parts[1]! };
    return { type: "p", library: parts[0]!, fn: parts[1]! };
  }
  if (parts.length === 3 && ["p", "t", "u"].includes(parts[0]!)) {
    const type = parts[0] as "p" | "t" | "u";
    if (type === "t") return { type, library: parts[1]!, fn: parts[2]! };
    return { type, library: parts[1]!, fn: parts[2]! };
  }
  throw new UsageError(`"${pattern}": a pattern is FUNC, LIBRARY:FUNC, p:LIBRARY:FUNC, p::FUNC or t:CATEGORY:EVENT`);
}

/** The targets a pattern matches, sorted and without duplicates; a UsageError when none. */
export function resolvePattern(pattern: string, opts: PatternOptions): ProbeTarget[] {
  const p = parsePattern(pattern);
  if (!p.fn) throw new UsageError(`"${pattern}": the function or event name is missing`);
  let targets: ProbeTarget[];
  if (p.type === "u") {
    throw new NotSupportedError("USDT probes", `USDT probes (u:${p.library}:${p.fn}) are not supported; count the function around the probe site (LIBRARY:FUNC) or a tracepoint`);
  } else if (p.type === "t") {
    targets = tracepoints(p.library, p.fn, opts.regexp);
  } else if (p.library) {
    targets = userFunctions(p.library, p.fn, opts.regexp);
  } else {
    targets = kernelFunctions(p.fn, opts.regexp);
  }
  if (targets.length === 0) throw new UsageError(`no functions or events match "${pattern}"`);
  const max = opts.max ?? 1000;
  if (targets.length > max) throw new UsageError(`"${pattern}" matches ${targets.length} targets; at most ${max} can be probed at once, narrow the pattern`);
  return targets;
}

function tracepoints(category: string, event: string, regexp?: boolean): ProbeTarget[] {
  const events = join(tracefsDir(), "events");
  const cat = matcher(category, regexp);
  const ev = matcher(event, regexp);
  const out: ProbeTarget[] = [];
  for (const c of readdirSync(events, { withFileTypes: true })) {
    if (!c.isDirectory() || !cat(c.name)) continue;
    for (const e of readdirSync(join(events, c.name), { withFileTypes: true })) {
      if (e.isDirectory() && ev(e.name)) out.push({ kind: "tracepoint", category: c.name, event: e.name, name: `${c.name}:${e.name}` });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;

/** The binary a LIBRARY part names: a path, "c" (libc) and other ldconfig names, or a program on PATH. */
export function binaryOf(library: string): string {
  if (library.includes("/")) return resolveBinary(library);
  return findLibrary(library) ?? resolveBinary(library);
}

function userFunctions(library: string, fn: string, regexp?: boolean): ProbeTarget[] {
  const path = binaryOf(library);
  const elf = new ElfFile(new Uint8Array(readFileSync(path)), path);
  const match = matcher(fn, regexp);
  // One probe per address: aliases (malloc, __libc_malloc) would count each call twice.
  const byOffset = new Map<number, ProbeTarget>();
  for (const s of [...elf.symbols(), ...elf.dynamicSymbols()]) {
    if ((s.type !== STT_FUNC && s.type !== STT_GNU_IFUNC) || s.shndx === 0 || s.value === 0 || !match(s.name)) continue;
    let offset: number;
    try {
      offset = elf.symbolFileOffset(s.name);
    } catch {
      continue;
    }
    const seen = byOffset.get(offset);
    // Keep the plainest name of an address: "malloc" rather than "__libc_malloc".
    if (!seen || s.name.length < (seen as { symbol: string }).symbol.length) {
      byOffset.set(offset, { kind: "uprobe", path, symbol: s.name, offset, name: `${library}:${s.name}` });
    }
  }
  return [...byOffset.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function kernelFunctions(fn: string, regexp: boolean | undefined): ProbeTarget[] {
  if (!probesAvailable("kprobe")) {
    throw new NotSupportedError(
      "kprobes",
      `this kernel has no kprobes (CONFIG_KPROBES is not set), so kernel functions such as "${fn}" cannot be probed; ` +
        `use a tracepoint instead (t:syscalls:sys_enter_*, t:sched:*, ...: ls /sys/kernel/tracing/events), or run on a kernel with kprobes`,
    );
  }
  const match = matcher(fn, regexp);
  const names = new Set<string>();
  // available_filter_functions lists what kprobes can take; kallsyms where it cannot be read.
  let text: string;
  try {
    text = readFileSync(join(tracefsDir(), "available_filter_functions"), "utf8");
    for (const line of text.split("\n")) {
      const name = line.split(/\s/)[0];
      if (name && match(name)) names.add(name);
    }
  } catch {
    text = readFileSync("/proc/kallsyms", "utf8");
    for (const line of text.split("\n")) {
      const [, type, name] = line.split(/\s+/);
      if (name && (type === "T" || type === "t") && !name.includes(".") && match(name)) names.add(name);
    }
  }
  return [...names].sort().map((symbol) => ({ kind: "kprobe", symbol, name: symbol }));
}

export interface AttachTargetOptions {
  /** A return probe (funclatency's exit; not for tracepoints). */
  retprobe?: boolean;
  /** uprobes: only this process. */
  pid?: number;
}

/**
 * Attaches `prog` to one target through a bpf_link that carries `cookie`
 * (bpf_get_attach_cookie in the program); Linux 5.15+.
 */
export function attachWithCookie(prog: AttachableProgram, t: ProbeTarget, cookie: number, opts: AttachTargetOptions = {}): Link {
  let perf: FD;
  let undo: (() => void)[] = [];
  const label = `${t.kind}${opts.retprobe ? " (return)" : ""}:${t.name}`;
  try {
    if (t.kind === "tracepoint") {
      perf = perfEventOpen({ type: PerfType.TRACEPOINT, config: traceEventId(t.category, t.event), samplePeriod: 1, wakeup: 1 }, -1, 0);
    } else {
      ({ perf, undo } = openProbe(
        t.kind === "kprobe"
          ? { kind: "kprobe", retprobe: opts.retprobe ?? false, symbolOrPath: t.symbol, offset: 0n, pid: -1 }
          : { kind: "uprobe", retprobe: opts.retprobe ?? false, symbolOrPath: t.path, offset: BigInt(t.offset), pid: opts.pid ?? -1 },
      ));
    }
  } catch (err) {
    if (err instanceof AttachError) throw err;
    throw new AttachError(`cannot attach to ${label}: ${(err as Error).message}`, { cause: err, target: t.name });
  }
  try {
    const fd = linkCreate({ progFd: prog.fd.value, targetFd: perf.value, attachType: AttachType.PERF_EVENT, cookie: BigInt(cookie) });
    return new Link(label, fd, [perf], undo);
  } catch (err) {
    perf.close();
    for (const u of undo) u();
    if (err instanceof SyscallError && ["EINVAL", "EOPNOTSUPP", "ENOTSUPP", "E524"].includes(err.code)) {
      throw new NotSupportedError("BPF cookies", `cannot attach to ${label}: this kernel has no bpf_link for perf events with a cookie (Linux 5.15+ has them)`);
    }
    throw err;
  }
}

/** Attaches to every target, cookie = index; on failure the ones attached are closed again. */
export function attachTargets(prog: AttachableProgram, targets: readonly ProbeTarget[], opts: AttachTargetOptions = {}, into: Link[] = []): Link[] {
  const start = into.length;
  try {
    targets.forEach((t, i) => into.push(attachWithCookie(prog, t, i, opts)));
  } catch (err) {
    for (const l of into.splice(start)) l.close();
    throw err;
  }
  return into;
}
