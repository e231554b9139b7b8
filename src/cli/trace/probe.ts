// The probes of `tsbpf trace`, as BCC's trace writes them:
//
//   [{p,r}]:[LIBRARY]:FUNCTION[+OFFSET][(SIGNATURE)] [(FILTER)] ["FORMAT"[, ARG...]]
//   t:CATEGORY:EVENT [(FILTER)] ["FORMAT"[, ARG...]]
//
// `parseProbe` splits the text (no file system, no kernel); `resolveProbe`
// finds the tracepoint's fields or the binary, and rewrites the filter and the
// arguments into C (argN, retval, args->FIELD, $pid...), so that every mistake
// is reported here, naming the probe, before anything is compiled.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ElfError, ElfFile } from "../../elf/index.ts";
import { parseUsdtArgs, readUsdtProbes, type UsdtProbe } from "../../elf/usdt.ts";
import { which } from "../../internal/which.ts";
import { findBinary as findBinaryByRule, findLibrary as findLibraryByRule } from "../../internal/binaries.ts";
import { syscallOfFunction, syscallPrefix } from "../../link/syscall.ts";
import type { HookKind, HookTarget } from "../../link/hooks.ts";
import { AttachError } from "../../link/errors.ts";
import { parseFormat as parseTracepointFormat, readFormat, type FormatField } from "../../bcc/tracepoint.ts";
import { traceEventId, tracefsDir, tracepointExists } from "../../tracing/tracefs.ts";
import { UsageError } from "../tool.ts";
import { FormatError, parseFormat, unescapeC, type Conversion, type ParsedFormat } from "./format.ts";

/** The hook kinds of the registry (link/hooks.ts) that tsbpf trace writes. */
export type ProbeKind = Extract<HookKind, "tracepoint" | "kprobe" | "kretprobe" | "uprobe" | "uretprobe" | "usdt">;

/** A probe as written, split into its parts. */
export interface ProbeSyntax {
  raw: string;
  /** "t" tracepoint, "p" entry, "r" return, "u" USDT; undefined when the text gives none. */
  type: "p" | "r" | "t" | "u" | undefined;
  /** Whether the type was a long word (tracepoint:, kprobe:, uprobe:...), which also says kernel or user. */
  where: "kernel" | "user" | undefined;
  /** The colon-separated parts after the type (a library may itself contain colons: kept joined). */
  parts: string[];
  offset: number;
  /** The signature's parameters: "(int fd, char *buf)" after a function. */
  signature: { type: string; name: string }[];
  filter: string | undefined;
  /** The format as written between the quotes (escapes not yet applied). */
  format: string | undefined;
  args: string[];
}

/** A value the probe prints: its C expression and how the kernel side stores it. */
export interface ProbeValue {
  source: string;
  conversion: Conversion;
  /** The C expression. */
  c: string;
  /** For %s: where the string is read from; "array" is a char array inside the tracepoint record. */
  read?: "user" | "kernel" | "array";
}

/** A probe ready for code generation. */
export interface Probe {
  raw: string;
  /** 0-based position on the command line. */
  index: number;
  kind: ProbeKind;
  category?: string;
  event?: string;
  /** The tracepoint's fields (common_* excluded). */
  fields?: FormatField[];
  /** Every field of the tracepoint's format file, for its struct. */
  allFields?: FormatField[];
  /** uprobes: the binary, resolved. kprobes: undefined. */
  path?: string;
  /** kprobes and uprobes: the function. USDT: the probe's name. */
  symbol?: string;
  /** USDT: the probe's provider and how many arguments it has. */
  provider?: string;
  usdtArgs?: number;
  offset: number;
  /** The signature's parameters, each with the C of its argument (the value of argN). */
  signature: { type: string; name: string; c: string }[];
  /** The filter in C ("" for none). */
  filter: string;
  format: ParsedFormat | undefined;
  values: ProbeValue[];
  /** The FUNC column: the event or function name. */
  display: string;
  /** The BPF program's name (the kernel keeps 15 characters). */
  programName: string;
  /** Where it attaches, as the hook registry takes it. */
  target: HookTarget;
  /** STRCMP("literal", expr) of the filter and arguments: a compare function each, named in the C. */
  strcmps: StrCmp[];
}

/** BCC trace's STRCMP: whether the string at an address starts with the literal's bytes. */
export interface StrCmp {
  /** The C function (a macro over it) that the expression calls. */
  name: string;
  /** The literal as written, quotes included. */
  literal: string;
  /** The memory the string is read from. */
  read: "user" | "kernel";
}

const TYPES: Record<string, { type: ProbeSyntax["type"]; where?: "kernel" | "user" }> = {
  p: { type: "p" }, r: { type: "r" }, t: { type: "t" }, u: { type: "u" },
  tracepoint: { type: "t" }, usdt: { type: "u" },
  kprobe: { type: "p", where: "kernel" }, kretprobe: { type: "r", where: "kernel" },
  uprobe: { type: "p", where: "user" }, uretprobe: { type: "r", where: "user" },
};

const fail = (raw: string, message: string): never => {
  throw new UsageError(`probe '${raw}': ${message}`);
};

/** Splits a probe's text into its parts; throws UsageError naming the probe for malformed text. */
export function parseProbe(raw: string): ProbeSyntax {
  const text = raw.trim();
  if (!text) throw new UsageError("an empty probe; write e.g. 't:syscalls:sys_enter_openat \"%s\", args->filename'");
  // The probe specifier runs to the first blank or "(" (BCC's rule).
  const m = /^([^ \t(]+)(\([^()]*\))?(.*)$/s.exec(text);
  if (!m) return fail(raw, "cannot find the probe specifier (TYPE:LIBRARY:FUNCTION or t:CATEGORY:EVENT) at its start");
  const [, spec, sig, restText] = m;
  let parts = spec.split(":");
  let type: ProbeSyntax["type"];
  let where: ProbeSyntax["where"];
  const head = Object.hasOwn(TYPES, parts[0]) ? TYPES[parts[0]] : undefined;
  if (parts.length === 1) {
    // "func": a kprobe (BCC's p::func).
    type = "p";
    where = "kernel";
  } else if (head && parts[0].length > 1) {
    // tracepoint:CAT:EVENT, kprobe:FUNC, uprobe:LIB:FUNC...
    ({ type, where } = head);
    parts = parts.slice(1);
    if (where === "kernel" && parts.length === 2 && parts[0] === "") parts = parts.slice(1); // kprobe::func
    if (where === "user" && parts.length < 2) return fail(raw, `a ${spec.split(":")[0]} is ${spec.split(":")[0]}:LIBRARY:FUNCTION, e.g. uprobe:c:malloc or uprobe:/bin/bash:readline`);
  } else if (head && parts.length === 2) {
    // "p:func" and "r:func" are kernel functions (BCC would read "p" as a library, which no one has).
    if (parts[0] === "t") return fail(raw, "a tracepoint is t:CATEGORY:EVENT, e.g. t:sched:sched_process_exec");
    if (parts[0] === "u") return fail(raw, "a USDT probe is u:LIBRARY:PROBE");
    type = head.type;
    where = "kernel";
    parts = parts.slice(1);
  } else if (head || (parts[0] === "" && parts.length > 2)) {
    // p:LIB:FUNC, r::FUNC, t:CAT:EVENT, ::FUNC
    type = head?.type ?? "p";
    parts = parts.slice(1);
  } else if (parts.length === 2) {
    type = undefined; // CATEGORY:EVENT or LIBRARY:FUNCTION, decided by what exists
  } else {
    return fail(raw, `unknown probe type "${parts[0]}": use p (function entry), r (function return), t (tracepoint), or the words tracepoint, kprobe, kretprobe, uprobe, uretprobe`);
  }
  if (!parts[parts.length - 1]) return fail(raw, "the function or event name is missing after the last \":\"");

  let offset = 0;
  const last = parts[parts.length - 1];
  const plus = last.indexOf("+");
  if (plus >= 0) {
    const off = last.slice(plus + 1);
    if (!/^(\d+|0x[0-9a-f]+)$/i.test(off)) return fail(raw, `invalid offset "${off}": write it in decimal or hexadecimal (0x12)`);
    offset = Number(off);
    parts = [...parts.slice(0, -1), last.slice(0, plus)];
  }

  const signature: ProbeSyntax["signature"] = [];
  if (sig && type === "t") return fail(raw, `a tracepoint has no signature; a filter goes after a blank: '${spec} ${sig} ...'`);
  if (sig) {
    const inner = sig.slice(1, -1).trim();
    for (const param of inner && inner !== "void" ? inner.split(",") : []) {
      const p = /^(.*?[\s*])([A-Za-z_]\w*)\s*$/s.exec(param.trim());
      if (!p || !p[1].trim()) return fail(raw, `cannot read the parameter "${param.trim()}" of the signature: write TYPE NAME, e.g. (int fd, const char *buf); a filter goes after a blank: '${spec} ${sig} ...'`);
      signature.push({ type: p[1].trim(), name: p[2] });
    }
  }

  let rest = restText.trim();
  let filter: string | undefined;
  if (rest.startsWith("(")) {
    let depth = 0;
    let end = -1;
    for (let i = 0; i < rest.length && end < 0; i++) {
      if (rest[i] === "(") depth++;
      else if (rest[i] === ")" && --depth === 0) end = i;
    }
    if (end < 0) return fail(raw, "the filter has no closing \")\"");
    filter = rest.slice(1, end).trim();
    if (!filter) return fail(raw, "the filter \"()\" is empty");
    rest = rest.slice(end + 1).trim();
  }

  let format: string | undefined;
  const args: string[] = [];
  if (rest) {
    if (!rest.startsWith('"')) {
      return fail(raw, `expected a format string in double quotes after the ${filter !== undefined ? "filter" : "probe specifier"}, found "${rest}"`);
    }
    let i = 1;
    while (i < rest.length && rest[i] !== '"') i += rest[i] === "\\" ? 2 : 1;
    if (i >= rest.length) return fail(raw, "the format string has no closing double quote");
    format = rest.slice(1, i);
    const after = rest.slice(i + 1).trim();
    if (after) {
      if (!after.startsWith(",")) return fail(raw, `expected "," and the arguments after the format string, found "${after}"`);
      for (const arg of splitArgs(after.slice(1))) {
        if (!arg) return fail(raw, "an empty argument after the format string (two commas in a row, or a comma at the end)");
        args.push(arg);
      }
    }
  }
  return { raw, type, where, parts, offset, signature, filter, format, args };
}

/** Splits on the commas outside parentheses, brackets and quotes. */
function splitArgs(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = "";
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "(" || ch === "[") depth++;
    else if (ch === ")" || ch === "]") depth--;
    else if (ch === "," && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out;
}

export interface ResolveOptions {
  /** -Z: bytes kept of each string. */
  stringSize: number;
}

/** The BPF program name of the probe at `index` showing `display` (sanitized, as BCC's probe_FUNC_N). */
export function programName(index: number, display: string): string {
  return `trace_${index + 1}_${display}`.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 64);
}

/** Parses and resolves a probe: throws UsageError (bad text or names) or AttachError (no such tracepoint). */
export function resolveProbe(raw: string, index: number): Probe {
  const s = parseProbe(raw);
  let kind: ProbeKind;
  let category: string | undefined;
  let event: string | undefined;
  let path: string | undefined;
  let symbol: string | undefined;
  let provider: string | undefined;
  let usdtArgs: number | undefined;
  if (s.type === "u") {
    // u:LIBRARY:PROBE or u:LIBRARY:PROVIDER:PROBE, as BCC's trace takes them.
    if (s.parts.length < 2 || s.parts.length > 3 || !s.parts[0]) return fail(raw, "a USDT probe is u:LIBRARY:PROBE or u:LIBRARY:PROVIDER:PROBE, e.g. u:/usr/bin/python3:function__entry");
    if (s.offset) return fail(raw, "a USDT probe takes no +OFFSET");
    if (s.signature.length) return fail(raw, "a USDT probe has no function signature: its values are arg1 ... argN of the probe");
    kind = "usdt";
    path = findBinary(raw, s.parts[0], undefined);
    const wanted = s.parts[s.parts.length - 1]!;
    const wantedProvider = s.parts.length === 3 ? s.parts[1] : undefined;
    let probes: UsdtProbe[];
    try {
      probes = readUsdtProbes(ElfFile.open(path));
    } catch (err) {
      if (err instanceof ElfError) return fail(raw, err.message.replace(/^ELF: /, ""));
      throw err;
    }
    const found = probes.filter((p) => p.name === wanted && (wantedProvider === undefined || p.provider === wantedProvider));
    const providers = [...new Set(found.map((p) => p.provider))];
    if (!found.length) {
      const names = [...new Set(probes.map((p) => `${p.provider}:${p.name}`))];
      return fail(raw, `${path} has no USDT probe ${wantedProvider ? `${wantedProvider}:` : ""}${wanted}; ${names.length ? `its probes: ${names.slice(0, 20).join(", ")}${names.length > 20 ? ", ..." : ""}` : "it has no USDT probes (.note.stapsdt)"}`);
    }
    if (providers.length > 1) return fail(raw, `${wanted} is a probe of several providers in ${path} (${providers.join(", ")}): write u:LIBRARY:PROVIDER:${wanted}`);
    provider = providers[0]!;
    symbol = wanted;
    usdtArgs = Math.max(...found.map((p) => parseUsdtArgs(p.argText).length));
  } else if (s.type === "t" || (s.type === undefined && tracepointPresent(s.parts[0], s.parts[1]))) {
    if (s.parts.length !== 2 || !s.parts[0]) return fail(raw, "a tracepoint is t:CATEGORY:EVENT, e.g. t:syscalls:sys_enter_openat");
    if (s.offset) return fail(raw, "a tracepoint takes no +OFFSET");
    if (s.signature.length) return fail(raw, "a tracepoint has no function signature: its values are args->FIELD");
    kind = "tracepoint";
    [category, event] = s.parts;
  } else {
    const library = s.where === "kernel" ? "" : s.parts.slice(0, -1).join(":");
    symbol = s.parts[s.parts.length - 1];
    const ret = s.type === "r";
    if (s.where === "kernel" && s.parts.length > 1 && s.parts.slice(0, -1).join("")) {
      return fail(raw, `a kernel function takes no library: write ${ret ? "r" : "p"}::${symbol}`);
    }
    if (library === "") {
      kind = ret ? "kretprobe" : "kprobe";
    } else {
      kind = ret ? "uretprobe" : "uprobe";
      path = findBinary(raw, library, s.type === undefined ? s.parts : undefined);
      try {
        ElfFile.open(path).symbolFileOffset(symbol);
      } catch (err) {
        // ElfError has a code too (ERR_TSBPF_ELF): look at the class first, then at errno codes.
        if (err instanceof ElfError) return fail(raw, err.message.replace(/^ELF: /, ""));
        const code = (err as NodeJS.ErrnoException).code;
        if (typeof code === "string") return fail(raw, `cannot read ${path}: ${code}`);
        throw err;
      }
    }
  }

  const display = kind === "tracepoint" ? event! : symbol!;
  const probe: Probe = {
    raw, index, kind, category, event, path, symbol, provider, usdtArgs,
    offset: s.offset,
    signature: [],
    filter: "",
    strcmps: [],
    format: undefined,
    values: [],
    display,
    programName: programName(index, display),
    target:
      kind === "tracepoint"
        ? { hook: kind, category: category!, event: event! }
        : kind === "kprobe" || kind === "kretprobe"
          ? { hook: kind, symbol: symbol!, offset: s.offset }
          : kind === "usdt"
            ? { hook: kind, path: path!, provider: provider!, name: symbol! }
            : { hook: kind, path: path!, symbol: symbol!, offset: s.offset || undefined },
  };
  if (kind === "tracepoint") {
    const text = readFormat(category!, event!);
    if (text === undefined) {
      traceEventId(category!, event!); // throws the library's AttachError, naming what exists
      throw new AttachError(`cannot read the format of tracepoint ${category}:${event} in ${join(tracefsDir(), "events")}`);
    }
    probe.allFields = parseTracepointFormat(text);
    probe.fields = probe.allFields.filter((f) => f.offset >= 8 && !f.name.startsWith("common_"));
  }

  const rewriter = new Rewriter(probe);
  if (s.signature.length > 6) return fail(raw, "a signature names at most 6 arguments (arg1 ... arg6)");
  probe.signature = s.signature.map((param, i) => ({ ...param, c: rewriter.rewrite(`arg${i + 1}`, "the signature").c }));
  if (s.filter !== undefined) probe.filter = rewriter.rewrite(s.filter, "the filter").c;
  if (s.format !== undefined) {
    try {
      probe.format = parseFormat(unescapeC(s.format));
    } catch (err) {
      if (err instanceof FormatError) return fail(raw, err.message);
      throw err;
    }
    const convs = probe.format.conversions;
    if (convs.length !== s.args.length) {
      return fail(
        raw,
        `the format has ${convs.length} conversion${convs.length === 1 ? "" : "s"}${convs.length ? ` (${convs.map((c) => c.text).join(" ")})` : ""} ` +
          `but ${s.args.length} argument${s.args.length === 1 ? "" : "s"} follow${s.args.length === 1 ? "s" : ""} it`,
      );
    }
    probe.values = s.args.map((arg, i) => rewriter.value(arg, convs[i]));
  }
  return probe;
}

function tracepointPresent(category: string, event: string): boolean {
  return tracepointExists(category, event);
}

/**
 * A library named as BCC's trace names them ("c" is libc: the first libc.so* in
 * the ld.so cache for this architecture, as bcc_procutils_which_so does), or
 * undefined. internal/binaries.ts has the one rule.
 */
export function findLibrary(name: string): string | undefined {
  return findLibraryByRule(name);
}

/** The path of a uprobe's binary: a path, a library name (c, pthread, libssl.so.3) or a program on PATH. */
function findBinary(raw: string, library: string, ambiguous: string[] | undefined): string {
  if (library.includes("/")) {
    if (!existsSync(library)) return fail(raw, `the binary ${library} does not exist`);
  }
  const found = findBinaryByRule(library);
  if (found) return found;
  if (ambiguous) {
    return fail(
      raw,
      `there is no tracepoint ${ambiguous[0]}:${ambiguous[1]}, nor a library or program "${ambiguous[0]}" for a uprobe; ` +
        `write t:CATEGORY:EVENT for a tracepoint (see ${join(tracefsDir(), "events")}) or p:/path/to/binary:FUNCTION for a uprobe`,
    );
  }
  return fail(raw, `cannot find "${library}": no lib${library}.so in the ld.so cache (ldconfig -p) and no program "${library}" on PATH; give the binary's full path`);
}

/** BCC's built-in variables. */
const BUILTINS: Record<string, string> = {
  $pid: "__pid", // the thread id, as BCC (and the kernel) call it
  $tgid: "__tgid",
  $uid: "__uid",
  $gid: "(u32)(bpf_get_current_uid_gid() >> 32)",
  $cpu: "bpf_get_smp_processor_id()",
  $task: "bpf_get_current_task_btf()",
};

const TOKEN = /\s+|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|\$?[A-Za-z_]\w*(?:@\w+)?|->|\d[\w.]*|./gsy;

/** Rewrites one probe's C expressions: argN, retval, args->FIELD, $builtins. */
class Rewriter {
  readonly #probe: Probe;
  readonly #syscallWrapper: boolean;
  readonly #strings: "user" | "kernel";

  constructor(probe: Probe) {
    this.#probe = probe;
    const fn = probe.symbol ?? "";
    this.#syscallWrapper = probe.kind.startsWith("k") && fn.startsWith(syscallPrefix()) && syscallOfFunction(fn) !== undefined;
    this.#strings =
      probe.kind.startsWith("u") || probe.category === "syscalls" || probe.category === "raw_syscalls" ? "user" : "kernel";
  }

  #fail(message: string): never {
    return fail(this.#probe.raw, message);
  }

  #fieldList(): string {
    return this.#probe.fields!.map((f) => f.name).join(", ");
  }

  #field(name: string): FormatField {
    const field = this.#probe.fields!.find((f) => f.name === name);
    if (!field) {
      const { category, event } = this.#probe;
      this.#fail(`tracepoint ${category}:${event} has no field "${name}"; its fields are: ${this.#fieldList()}`);
    }
    return field!;
  }

  /** C for an expression; `user` when it used argN@user. */
  rewrite(expr: string, what: string): { c: string; user: boolean } {
    const p = this.#probe;
    const tokens = expr.match(TOKEN) ?? [];
    const out: string[] = [];
    let user = false;
    let prev = "";
    const isTracepoint = p.kind === "tracepoint";
    const isReturn = p.kind === "kretprobe" || p.kind === "uretprobe";
    const next = (i: number) => {
      while (i < tokens.length && /^\s+$/.test(tokens[i])) i++;
      return i;
    };
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (/^\s+$/.test(t)) {
        out.push(t);
        continue;
      }
      if ((t.startsWith('"') || t.startsWith("'")) && (t.length < 2 || !t.endsWith(t[0]))) this.#fail(`${what} has an unterminated ${t[0] === '"' ? "string" : "character"} literal`);
      const member = prev === "->" || prev === ".";
      const ident = /^(\$?[A-Za-z_]\w*)(?:@(\w+))?$/.exec(t);
      if (!ident || member) {
        out.push(t);
        prev = t;
        continue;
      }
      const [, name, suffix] = ident;
      prev = t;
      if (suffix !== undefined) {
        if (suffix !== "user" || !/^arg[1-6]$/.test(name)) this.#fail(`"${t}" in ${what}: only arg1@user ... arg6@user are allowed (to read that argument's string from user memory)`);
        user = true;
      }
      if (name === "STRCMP") {
        // STRCMP("literal", expr): the literal and its comma go into a compare function of its
        // own; expr stays in place as that function's argument, rewritten as the rest is.
        const open = next(i + 1);
        const literal = next(open + 1);
        const comma = next(literal + 1);
        if (tokens[open] !== "(" || !/^".*"$/s.test(tokens[literal] ?? "") || tokens[comma] !== ",") {
          this.#fail(`STRCMP in ${what} takes a string literal and an expression: STRCMP("text", arg1)`);
        }
        const name = `tsbpf_strcmp_${p.index + 1}_${p.strcmps.length + 1}`;
        p.strcmps.push({ name, literal: tokens[literal]!, read: this.#strings });
        out.push(`${name}(`);
        i = comma;
        prev = ",";
        continue;
      }
      if (name.startsWith("$")) {
        const builtin = Object.hasOwn(BUILTINS, name) ? BUILTINS[name] : undefined;
        if (!builtin) this.#fail(`unknown built-in "${name}" in ${what}; the built-ins are ${Object.keys(BUILTINS).join(" ")}`);
        out.push(builtin);
        continue;
      }
      if (/^arg[1-6]$/.test(name)) {
        const n = Number(name[3]);
        if (isTracepoint) this.#fail(`"${name}" in ${what}: a tracepoint's values are args->FIELD; the fields of ${p.category}:${p.event} are: ${this.#fieldList()}`);
        if (p.kind === "usdt") {
          if (n > p.usdtArgs!) this.#fail(`"${name}" in ${what}: the USDT probe ${p.provider}:${p.symbol} has ${p.usdtArgs} argument${p.usdtArgs === 1 ? "" : "s"}`);
          // usdt.bpf.h reads the argument as its spec in the binary's note says (register, memory, constant).
          out.push(`({ long __a = 0; bpf_usdt_arg(ctx, ${n - 1}, &__a); (u64)__a; })`);
          continue;
        }
        if (this.#syscallWrapper) {
          if (n > 5) this.#fail(`arg6 of a syscall function is not supported; use the tracepoint syscalls:sys_enter_${syscallOfFunction(p.symbol!)}`);
          out.push(`((u64)PT_REGS_PARM${n}_CORE_SYSCALL(PT_REGS_SYSCALL_REGS(ctx)))`);
        } else out.push(`((u64)PT_REGS_PARM${n}(ctx))`);
        continue;
      }
      if (name === "retval") {
        if (!isReturn) {
          this.#fail(
            isTracepoint
              ? `"retval" in ${what}: a tracepoint's values are args->FIELD (sys_exit_* tracepoints have args->ret)`
              : `"retval" in ${what}: only return probes (r:) have a return value`,
          );
        }
        out.push("((u64)PT_REGS_RC(ctx))");
        continue;
      }
      if (name === "args") {
        if (!isTracepoint) this.#fail(`"args" in ${what}: args->FIELD is for tracepoints; a function's arguments are arg1 ... arg6${isReturn ? " (at entry) and its return value retval" : ""}`);
        const arrow = next(i + 1);
        const fieldAt = next(arrow + 1);
        if (tokens[arrow] === "->" && /^[A-Za-z_]\w*$/.test(tokens[fieldAt] ?? "")) {
          const field = this.#field(tokens[fieldAt]);
          out.push(field.decl.startsWith("__data_loc") ? `((char *)args + (args->data_loc_${field.name} & 0xffff))` : `args->${field.name}`);
          i = fieldAt;
          prev = tokens[fieldAt];
          continue;
        }
        if (tokens[arrow] === "->") this.#fail(`"args->" in ${what} must be followed by a field name; the fields of ${p.category}:${p.event} are: ${this.#fieldList()}`);
        out.push("args");
        continue;
      }
      out.push(name);
    }
    return { c: out.join("").trim(), user };
  }

  /** One argument printed with conversion `conv`. */
  value(source: string, conv: Conversion): ProbeValue {
    const p = this.#probe;
    const where = `the argument "${source}"`;
    const { c, user } = this.rewrite(source, where);
    const exact = /^args\s*->\s*([A-Za-z_]\w*)$/.exec(source.trim());
    const field = exact && p.fields ? this.#field(exact[1]) : undefined;
    const isArray = field ? /\[[^\]]*\]\s*$/.test(field.decl) && !field.decl.startsWith("__data_loc") : false;
    const isDataLoc = field?.decl.startsWith("__data_loc") ?? false;
    if (conv.storage !== "string") {
      if (isArray || isDataLoc) this.#fail(`args->${field!.name} is a string (${field!.decl}): print it with %s, not ${conv.text}`);
      return { source, conversion: conv, c };
    }
    let read: ProbeValue["read"] = user ? "user" : this.#strings;
    if (field) {
      if (isArray) read = "array";
      else if (isDataLoc) read = "kernel";
      else if (field.size !== 8) this.#fail(`args->${field.name} is ${field.decl} (${field.size} bytes), not a pointer to a string: print it with %d, %u or %x`);
    }
    return { source, conversion: conv, c, read };
  }
}
