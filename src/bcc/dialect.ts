// BCC's C dialect -> plain libbpf C. A front end, not a second loader: the
// output is compiled by compile() and loaded by ObjectSpec/Collection like any
// other object. What it rewrites:
//   - BCC's kernel-header includes are dropped (types come from vmlinux.h) and
//     a prelude (helpers, BCC macros, bpf_log2l...) goes first;
//   - BPF_HASH(...) & co. become BTF-defined maps in SEC(".maps");
//   - table.method(args) calls become helper calls;
//   - functions become programs in their own sections: kprobe__/kretprobe__,
//     tracepoint__CAT__EVENT, raw_tracepoint__EVENT, TRACEPOINT_PROBE and
//     RAW_TRACEPOINT_PROBE, and every other non-static function;
//   - extra parameters of kprobe functions are read from the registers (for
//     syscall__ functions, from the syscall wrapper's inner pt_regs);
//   - on kernels without kprobes each kprobe function also gets a twin
//     compiled for the syscalls:sys_enter_* / sys_exit_* tracepoints.
// Line numbers of the user's text are kept (rewrites are padded to the same
// number of lines, and #line directives frame what is added), so clang's
// diagnostics and the verifier's source lines point at the user's code.
import { release } from "node:os";
import { Spec } from "../btf/spec.ts";
import { BccError } from "./errors.ts";
import { LexError, matching, splitArgs, tokenize, type Token } from "./lexer.ts";
import { rewriteKernelReads } from "./kernelreads.ts";
import { rewritePacketReads } from "./packetreads.ts";
import { configMacros, deadTokens, macrosOfCflags, type MacroValue } from "./conditionals.ts";
import { prelude } from "./prelude.ts";
import { parseKconfig } from "../kconfig/parse.ts";
import { readConfigFile, readKernelConfigText } from "../kconfig/file.ts";
import { usdtPrelude } from "./usdt.ts";
import { parseFormat, tracepointStruct } from "./tracepoint.ts";

export type TableKind =
  | "hash"
  | "array"
  | "percpu_hash"
  | "percpu_array"
  | "lru_hash"
  | "lru_percpu_hash"
  | "histogram"
  | "stacktrace"
  | "perf_output"
  | "ringbuf"
  | "queue"
  | "stack"
  // perf counters, build-id stacks, tail calls, LPM tries (issue 16, item 8)
  | "perf_array"
  | "stacktrace_buildid"
  | "prog"
  | "lpm_trie"
  // packet and socket tables (issue 17)
  | "devmap"
  | "cpumap"
  | "xskmap"
  | "sockmap"
  | "sockhash"
  | "sk_storage"
  | "inode_storage"
  | "task_storage"
  // maps of maps (issue 16, item 8)
  | "array_of_maps"
  | "hash_of_maps";

export interface TableInfo {
  name: string;
  kind: TableKind;
  /** C text of the key and leaf types ("" for tables without one). */
  keyType: string;
  leafType: string;
  line: number;
  /** Maps of maps: the table whose definition the maps it holds share (BCC's "inner_table"). */
  inner?: string;
}

export type AutoAttach =
  | { type: "kprobe" | "kretprobe"; event: string }
  | { type: "tracepoint"; tp: string }
  | { type: "raw_tracepoint"; tp: string }
  /** fentry/fexit/lsm/fmod_ret: the section names the hook (KFUNC_PROBE, KRETFUNC_PROBE, LSM_PROBE, KMOD_RET). */
  | { type: "tracing"; section: string };

export interface FunctionInfo {
  name: string;
  line: number;
  /** How the function is compiled: for kprobes/uprobes (pt_regs context), a tracepoint, or a raw tracepoint. */
  kind: "kprobe" | "tracepoint" | "raw_tracepoint" | "perf_event" | "tracing";
  /** Its arguments are the syscall's (syscall__NAME, or kprobe__ on a syscall function). */
  syscall: boolean;
  /** The twin compiled for the syscall tracepoints (kernels without kprobes). */
  tracepointVariant?: string;
  /** BCC attaches it when the program loads (kprobe__, kretprobe__, tracepoint__, raw_tracepoint__). */
  autoAttach?: AutoAttach;
}

export interface TranslateOptions {
  /** The file named in #line directives: it should hold the user's text, for BTF line info. */
  file: string;
  /** How errors name the program. Default: `file`. */
  displayName?: string;
  /** The kernel has kprobes. Without them kprobe functions get tracepoint twins. Default true. */
  kprobes?: boolean;
  /** The kernel's syscall functions are wrappers taking a pt_regs (x86_64 4.17+, arm64 4.19+). Default true. */
  syscallWrappers?: boolean;
  /** Prefix of syscall functions ("__x64_sys_"), for kprobe__ names. */
  syscallPrefix?: string;
  /** __TARGET_ARCH: "x86" or "arm64". Default from the running Node. */
  arch?: string;
  /** LINUX_VERSION_CODE (KERNEL_VERSION(a, b, c)). Default: the running kernel's. */
  kernelVersion?: number;
  /** Page size, for BPF_RINGBUF_OUTPUT's page count. Default 4096. */
  pageSize?: number;
  /** The format file of a tracepoint, or undefined when it does not exist. */
  tracepointFormat: (category: string, event: string) => string | undefined;
  /** vmlinux.h defines `struct name` (the kernel's BTF has it). Default: asks the running kernel's BTF. */
  kernelHasStruct?: (name: string) => boolean;
  /** The cflags of the compile: their -D/-U decide #if groups, as they will for clang. */
  cflags?: string[];
  /**
   * The target kernel's config (CONFIG_* name -> value as in .config), or the path of its
   * config file, or null when it is not known (no CONFIG_* is then defined, and #ifs on
   * them stay undecided). Default: the running kernel's (/boot/config-*, /proc/config.gz)
   * when `kernelVersion` is unset or the running kernel's, else null.
   */
  kconfig?: ReadonlyMap<string, string> | string | null;
}

export interface Translation {
  /** The libbpf-style C to compile. */
  code: string;
  tables: Map<string, TableInfo>;
  /** Program functions by name (twins are not listed; see `tracepointVariant`). */
  functions: Map<string, FunctionInfo>;
  /** Offset in `code` where the prelude ends (the tracepoint structs, then the user's text, follow). */
  userStart: number;
  /** Every function defined in the user's part, as named in `code`; `program`: its first parameter is the context. */
  definitions: { name: string; program: boolean }[];
}

/** Name of the BTF section in which the struct submitted to each perf/ring table is recorded. */
export const EVENT_SECTION = ".tsbpf.events";
/** Prefix of the typed variable recording table T's event struct: `__tsbpf_event_T`. */
export const EVENT_VAR_PREFIX = "__tsbpf_event_";
/** Suffix of the tracepoint twin of kprobe function F: `F__tp`. */
export const TRACEPOINT_VARIANT_SUFFIX = "__tp";

const DROPPED_INCLUDE = /^(uapi\/|linux\/|net\/|asm\/|asm-generic\/|trace\/|generated\/|bcc\/helpers\.h$)/;

/** Whether `#include <path>` names a kernel header, whose types vmlinux.h already has (BCC programs and trace -I include them). */
export function isKernelHeader(path: string): boolean {
  return DROPPED_INCLUDE.test(path);
}

const HASH_METHODS = ["lookup", "lookup_or_try_init", "lookup_or_init", "update", "insert", "delete", "increment", "atomic_increment"];
const METHODS: Record<TableKind, string[]> = {
  hash: HASH_METHODS,
  array: HASH_METHODS,
  percpu_hash: HASH_METHODS,
  percpu_array: HASH_METHODS,
  lru_hash: HASH_METHODS,
  lru_percpu_hash: HASH_METHODS,
  histogram: HASH_METHODS,
  stacktrace: ["get_stackid"],
  perf_output: ["perf_submit", "perf_submit_skb"],
  ringbuf: ["ringbuf_output", "ringbuf_reserve", "ringbuf_submit", "ringbuf_discard"],
  queue: ["push", "pop", "peek"],
  stack: ["push", "pop", "peek"],
  perf_array: ["perf_read", "perf_counter_value"],
  stacktrace_buildid: ["get_stackid"],
  prog: ["call"],
  lpm_trie: HASH_METHODS,
  // packet and socket tables (issue 17)
  devmap: ["redirect_map", "lookup"],
  cpumap: ["redirect_map", "lookup"],
  xskmap: ["redirect_map", "lookup"],
  sockmap: ["update", "delete", "sock_map_update"],
  sockhash: ["update", "delete", "sock_hash_update", "msg_redirect_hash", "sk_redirect_hash"],
  sk_storage: ["sk_storage_get", "sk_storage_delete"],
  inode_storage: ["inode_storage_get", "inode_storage_delete"],
  task_storage: ["task_storage_get", "task_storage_delete"],
  // maps of maps: programs may only look up (the verifier refuses the rest); the result is used as a map
  array_of_maps: ["lookup"],
  hash_of_maps: ["lookup"],
};

const MAP_TYPES: Record<TableKind, string> = {
  hash: "BPF_MAP_TYPE_HASH",
  array: "BPF_MAP_TYPE_ARRAY",
  percpu_hash: "BPF_MAP_TYPE_PERCPU_HASH",
  percpu_array: "BPF_MAP_TYPE_PERCPU_ARRAY",
  lru_hash: "BPF_MAP_TYPE_LRU_HASH",
  lru_percpu_hash: "BPF_MAP_TYPE_LRU_PERCPU_HASH",
  histogram: "BPF_MAP_TYPE_HASH",
  stacktrace: "BPF_MAP_TYPE_STACK_TRACE",
  perf_output: "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
  ringbuf: "BPF_MAP_TYPE_RINGBUF",
  queue: "BPF_MAP_TYPE_QUEUE",
  stack: "BPF_MAP_TYPE_STACK",
  perf_array: "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
  stacktrace_buildid: "BPF_MAP_TYPE_STACK_TRACE",
  prog: "BPF_MAP_TYPE_PROG_ARRAY",
  lpm_trie: "BPF_MAP_TYPE_LPM_TRIE",
  // packet and socket tables (issue 17)
  devmap: "BPF_MAP_TYPE_DEVMAP",
  cpumap: "BPF_MAP_TYPE_CPUMAP",
  xskmap: "BPF_MAP_TYPE_XSKMAP",
  sockmap: "BPF_MAP_TYPE_SOCKMAP",
  sockhash: "BPF_MAP_TYPE_SOCKHASH",
  sk_storage: "BPF_MAP_TYPE_SK_STORAGE",
  inode_storage: "BPF_MAP_TYPE_INODE_STORAGE",
  task_storage: "BPF_MAP_TYPE_TASK_STORAGE",
  array_of_maps: "BPF_MAP_TYPE_ARRAY_OF_MAPS",
  hash_of_maps: "BPF_MAP_TYPE_HASH_OF_MAPS",
};

/** BPF_TABLE("type", ...) names. */
const TABLE_TYPE_NAMES: Record<string, TableKind> = {
  hash: "hash",
  array: "array",
  percpu_hash: "percpu_hash",
  percpu_array: "percpu_array",
  lru_hash: "lru_hash",
  lru_percpu_hash: "lru_percpu_hash",
  histogram: "histogram",
  stacktrace: "stacktrace",
  perf_output: "perf_output",
  ringbuf: "ringbuf",
  queue: "queue",
  stack: "stack",
  perf_array: "perf_array",
  prog: "prog",
  lpm_trie: "lpm_trie",
  // packet and socket tables (issue 17)
  devmap: "devmap",
  cpumap: "cpumap",
  xskmap: "xskmap",
  sockmap: "sockmap",
  sockhash: "sockhash",
  sk_storage: "sk_storage",
  inode_storage: "inode_storage",
  task_storage: "task_storage",
};

const TABLE_MACROS = new Set([
  "BPF_HASH", "BPF_PERCPU_HASH", "BPF_ARRAY", "BPF_PERCPU_ARRAY", "BPF_HISTOGRAM", "BPF_STACK_TRACE",
  "BPF_PERF_OUTPUT", "BPF_RINGBUF_OUTPUT", "BPF_TABLE", "BPF_F_TABLE", "BPF_QUEUE", "BPF_STACK",
  "BPF_PERF_ARRAY", "BPF_STACK_TRACE_BUILDID", "BPF_PROG_ARRAY", "BPF_LPM_TRIE",
  // packet and socket tables (issue 17)
  "BPF_DEVMAP", "BPF_CPUMAP", "BPF_XSKMAP", "BPF_SOCKMAP", "BPF_SOCKHASH", "BPF_SK_STORAGE", "BPF_INODE_STORAGE", "BPF_TASK_STORAGE",
  // maps of maps (issue 16, item 8)
  "BPF_ARRAY_OF_MAPS", "BPF_HASH_OF_MAPS",
]);

/** BCC declarations tsbpf does not translate, and why (for the error). */
const UNSUPPORTED_MACROS: Record<string, string> = {
  BPF_PERCPU_CGROUP_STORAGE: "cgroup storage is not translated",
  BPF_CGROUP_STORAGE: "cgroup storage is not translated",
  BPF_CGROUP_ARRAY: "cgroup arrays are not translated",
  BPF_TABLE_PINNED: "pinned tables are not translated",
  BPF_TABLE_SHARED: "shared tables are not translated",
  BPF_TABLE_PUBLIC: "public tables are not translated",
  BPF_HASH_PINNED: "pinned tables are not translated",
  MODULE_KFUNC_PROBE: "fentry programs on module functions are not translated",
  MODULE_KRETFUNC_PROBE: "fexit programs on module functions are not translated",
  BPF_ITER: "BPF iterators are not translated",
  USDT_PROBE: "USDT probes are not translated",
};

const UNSUPPORTED_CALLS: Record<string, string> = {
};

/** KFUNC_PROBE(fn, args...) & co.: the program's name (as BCC's, for auto-attach) and section prefix. */
const TRACING_MACROS: Record<string, { prefix: string; section: string }> = {
  KFUNC_PROBE: { prefix: "kfunc__vmlinux__", section: "fentry/" },
  KRETFUNC_PROBE: { prefix: "kretfunc__vmlinux__", section: "fexit/" },
  LSM_PROBE: { prefix: "lsm__", section: "lsm/" },
  KMOD_RET: { prefix: "kmod_ret__", section: "fmod_ret/" },
};

/** Syscall-function prefixes whose arguments are the syscall's (not ksys_/do_sys_ helpers). */
const SYSCALL_FN_PREFIXES = ["__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_", "__se_sys_", "__do_sys_", "sys_"];

/** "openat" for "__x64_sys_openat" and the other spellings of a syscall's own function, else undefined. */
export function syscallOfEvent(event: string): string | undefined {
  for (const prefix of SYSCALL_FN_PREFIXES) {
    if (event.startsWith(prefix) && event.length > prefix.length) return event.slice(prefix.length);
  }
  return undefined;
}

const ATTRIBUTE_WORDS = new Set(["__attribute__", "__attribute", "SEC", "__section", "__always_inline", "__noinline", "__weak"]);

interface FunctionSyntax {
  /** First token of the declaration (return type...), or the TRACEPOINT_PROBE macro. */
  declStart: number;
  nameTok: number;
  paramsOpen: number;
  paramsClose: number;
  bodyOpen: number;
  bodyClose: number;
  isStatic: boolean;
  isInline: boolean;
  hasSection: boolean;
  /** TRACEPOINT_PROBE(cat, ev) / RAW_TRACEPOINT_PROBE(ev): the macro's arguments. */
  probeMacro?:
    | { kind: "tracepoint"; category: string; event: string }
    | { kind: "raw_tracepoint"; event: string }
    /** KFUNC_PROBE(fn, args...) & co.: BCC's BPF_PROG, libbpf's here. */
    | { kind: "tracing"; name: string; section: string; args: string };
}

type Item =
  | { type: "replace"; from: number; to: number; text: string } // tokens [from, to]
  | { type: "function"; fn: FunctionSyntax };

interface Param {
  type: string;
  name: string;
}

/** Whether a C declaration text is "struct pt_regs *" (possibly const). */
function isPtRegs(type: string): boolean {
  return /^(const\s+)?struct\s+pt_regs\s*\*$/.test(type.trim());
}

export function translate(text: string, options: TranslateOptions): Translation {
  return new Translator(text, options).run();
}

class Translator {
  readonly text: string;
  readonly opts: Required<Omit<TranslateOptions, "displayName" | "kernelHasStruct" | "cflags" | "kconfig">> &
    Pick<TranslateOptions, "kernelHasStruct" | "cflags" | "kconfig"> & { displayName: string };
  tokens: Token[] = [];
  readonly tables = new Map<string, TableInfo>();
  readonly functions = new Map<string, FunctionInfo>();
  readonly tracepointStructs = new Map<string, string>();
  readonly items: Item[] = [];

  constructor(text: string, options: TranslateOptions) {
    this.text = text;
    this.opts = {
      kprobes: true,
      syscallWrappers: true,
      syscallPrefix: "__x64_sys_",
      arch: process.arch === "arm64" ? "arm64" : "x86",
      pageSize: 4096,
      kernelVersion: runningKernelVersion(),
      ...options,
      displayName: options.displayName ?? options.file,
    };
  }

  fail(line: number, construct: string, detail: string): never {
    throw new BccError(this.opts.displayName, line, construct, detail);
  }

  /** #if groups around each directive line: [group, branch] pairs, outermost first. */
  condPaths: { line: number; path: [number, number][] }[] = [];

  run(): Translation {
    try {
      this.tokens = tokenize(this.text);
    } catch (err) {
      if (err instanceof LexError) this.fail(err.line, "C text", err.message);
      throw err;
    }
    const config = this.kernelConfig();
    this.dropDeadBranches(config);
    this.conditionals();
    this.scan();
    const fns = this.items.filter((i): i is Extract<Item, { type: "function" }> => i.type === "function").map((i) => i.fn);
    const called = this.calledNames(fns);
    for (const fn of fns) this.classify(fn, called);
    this.collectTracepointStructs();
    const renames = this.clashingStructs(fns);
    const body = this.emit();
    const license = /SEC\(\s*"license"\s*\)|section\(\s*"license"\s*\)/.test(this.text) ? "" : '\nchar LICENSE[] SEC("license") = "GPL";\n';
    // USDT readers (bcc/usdt.ts) when the text reads probe arguments.
    const preludeText = prelude(this.opts.arch, this.opts.kernelVersion, this.configDefines(config)) + usdtPrelude(this.text);
    const head =
      preludeText +
      // Ring buffer outputs go through tsbpf.h's helpers, which count what a full ring drops.
      ([...this.tables.values()].some((t) => t.kind === "ringbuf") ? "#include <tsbpf.h>\n" : "") +
      [...this.tracepointStructs.values()].join("\n") +
      "\n#include <bcc/compat.h>\n" +
      packetInclude() +
      // A tool's own copy of a kernel-private struct (dcsnoop's nameidata, mountsnoop's
      // mnt_namespace) would clash with vmlinux.h's: it is renamed, and keeps its own
      // layout, as the tool meant under BCC.
      renames.map((n) => `#define ${n} ${n}___bcc\n`).join("");
    const code = head + `#line 1 "${this.opts.file}"\n` + body + license;
    const definitions: { name: string; program: boolean }[] = [];
    for (const fn of fns) {
      const program = this.programs.get(fn);
      if (!program) definitions.push({ name: this.tokens[fn.nameTok]!.text, program: false });
      else {
        definitions.push({ name: program.info.name, program: true });
        if (program.info.tracepointVariant) definitions.push({ name: program.info.tracepointVariant, program: true });
      }
    }
    return { code, tables: this.tables, functions: this.functions, userStart: preludeText.length, definitions };
  }

  /** The target kernel's CONFIG_* macros (autoconf.h's), or undefined when its config is not known. */
  kernelConfig(): Map<string, string> | undefined {
    let source = this.opts.kconfig;
    if (source === undefined) source = this.opts.kernelVersion === runningKernelVersion() ? runningConfigText() : null;
    if (source === null || source === undefined) return undefined;
    if (typeof source === "string") {
      const path = source;
      try {
        source = configByPath.get(path) ?? parseKconfig(readConfigFile(path));
        configByPath.set(path, source);
      } catch (err) {
        this.fail(1, "kernel config", `cannot read ${path}: ${(err as Error).message}`);
      }
    }
    // Thousands of options: converted once per config, not per translation.
    let macros = macrosOfConfig.get(source);
    if (!macros) macrosOfConfig.set(source, (macros = configMacros(source)));
    return macros;
  }

  /** Drops from the scan the tokens of #if branches that the known macros rule out (the emitted text keeps them, for clang). */
  dropDeadBranches(config: Map<string, string> | undefined): void {
    const known = new Map<string, MacroValue>();
    // The prelude's, and clang's for -target bpf (it defines no host architecture macro).
    known.set("LINUX_VERSION_CODE", String(this.opts.kernelVersion));
    known.set("KERNEL_VERSION", "\0function");
    known.set("__BPF__", "1");
    known.set("__bpf__", "1");
    known.set(`__TARGET_ARCH_${this.opts.arch}`, "1");
    for (const arch of ["__x86_64__", "__i386__", "__s390x__", "__aarch64__", "__arm__", "__powerpc64__", "__riscv", "__mips__"]) known.set(arch, undefined);
    for (const [name, value] of macrosOfCflags(this.opts.cflags)) known.set(name, value);
    const dead = deadTokens(this.tokens, { known, ...(config ? { base: config } : {}), undefinedPrefixes: config ? ["CONFIG_"] : [] });
    if (dead.size) this.tokens = this.tokens.filter((_, k) => !dead.has(k));
  }

  /** #defines of the CONFIG_* macros the user's text names (the whole config would be thousands of lines in every compile). */
  configDefines(config: Map<string, string> | undefined): string {
    if (!config) return "";
    const names = new Set(this.text.match(/\bCONFIG_\w+/g) ?? []);
    const lines: string[] = [];
    for (const name of [...names].sort()) {
      const value = config.get(name);
      if (value !== undefined) lines.push(`#define ${name} ${value}`);
    }
    return lines.join("\n");
  }

  /** Structs the user's text defines at top level that vmlinux.h defines too. */
  clashingStructs(fns: FunctionSyntax[]): string[] {
    const toks = this.tokens;
    const inBody = (k: number) => fns.some((f) => k > f.bodyOpen && k < f.bodyClose);
    const names = new Set<string>();
    for (let k = 0; k + 2 < toks.length; k++) {
      if (toks[k]!.text !== "struct" || toks[k + 1]!.kind !== "ident" || toks[k + 2]!.text !== "{") continue;
      const name = toks[k + 1]!.text;
      if (names.has(name) || name.startsWith("tracepoint__") || inBody(k)) continue;
      names.add(name);
    }
    if (names.size === 0) return [];
    const has = this.opts.kernelHasStruct ?? kernelHasStruct;
    return [...names].filter((n) => has(n));
  }

  // ---- pass 1: top-level structure ----

  /** Records which #if/#elif/#else branch each line is in, so a table or function defined in two branches is not "declared twice". */
  conditionals(): void {
    const stack: [number, number][] = [];
    let groups = 0;
    for (const t of this.tokens) {
      if (t.kind !== "directive") continue;
      const d = /^#\s*(\w+)/.exec(t.text)?.[1];
      if (d === "if" || d === "ifdef" || d === "ifndef") stack.push([groups++, 0]);
      else if ((d === "elif" || d === "else") && stack.length) stack[stack.length - 1]![1]++;
      else if (d === "endif") stack.pop();
      else continue;
      this.condPaths.push({ line: t.line, path: stack.map((x) => [x[0], x[1]] as [number, number]) });
    }
  }

  condPath(line: number): [number, number][] {
    let path: [number, number][] = [];
    for (const c of this.condPaths) {
      if (c.line >= line) break;
      path = c.path;
    }
    return path;
  }

  /** Lines a and b are in different branches of one #if: at most one of them is compiled. */
  exclusive(a: number, b: number): boolean {
    const pa = this.condPath(a);
    const pb = this.condPath(b);
    for (let k = 0; k < Math.min(pa.length, pb.length); k++) {
      if (pa[k]![0] !== pb[k]![0]) return false;
      if (pa[k]![1] !== pb[k]![1]) return true;
    }
    return false;
  }

  scan(): void {
    const toks = this.tokens;
    let i = 0;
    while (i < toks.length) {
      const t = toks[i]!;
      if (t.kind === "directive") {
        this.directive(i);
        i++;
        continue;
      }
      const next = toks[i + 1];
      if (t.kind === "ident" && next?.text === "(") {
        if (TABLE_MACROS.has(t.text)) {
          i = this.tableMacro(i) + 1;
          continue;
        }
        if (UNSUPPORTED_MACROS[t.text]) {
          this.fail(t.line, t.text, `${UNSUPPORTED_MACROS[t.text]} by tsbpf's BCC front end (see the supported subset in src/bcc/README.md)`);
        }
        if (t.text === "TRACEPOINT_PROBE" || t.text === "RAW_TRACEPOINT_PROBE" || TRACING_MACROS[t.text]) {
          i = this.probeMacro(i) + 1;
          continue;
        }
      }
      i = this.declaration(i);
    }
  }

  directive(i: number): void {
    const t = this.tokens[i]!;
    const inc = /^#\s*include\s*([<"])([^>"]+)[>"]/.exec(t.text);
    if (inc) {
      const path = inc[2]!;
      if (path.startsWith("bcc/") && path !== "bcc/proto.h" && path !== "bcc/helpers.h") {
        this.fail(t.line, `#include <${path}>`, `BCC's header ${path} is not available in tsbpf (BCC headers it has: bcc/helpers.h, bcc/proto.h)`);
      }
      if (inc[1] === "<" && DROPPED_INCLUDE.test(path)) {
        // Kernel headers: vmlinux.h has their types, <bcc/compat.h> their macros.
        const comment = t.text.replace(/\*\//g, "").replace(/\\?\n/g, " ");
        this.items.push({ type: "replace", from: i, to: i, text: `/* ${comment}: types come from vmlinux.h */` + "\n".repeat(countNewlines(t.text)) });
      }
      return;
    }
    // Table method calls inside macro definitions are rewritten too.
    if (/^#\s*define\b/.test(t.text) && /\.\s*[A-Za-z_]\w*\s*\(|bpf_trace_printk/.test(t.text)) {
      const sub = new Translator(t.text, { ...this.opts, tracepointFormat: this.opts.tracepointFormat });
      sub.tokens = tokenize(t.text).map((tok) => ({ ...tok, line: tok.line + t.line - 1 }));
      for (const [name, info] of this.tables) sub.tables.set(name, info);
      const rewritten = sub.rewrite(0, sub.tokens.length, { compact: false, start: 0, end: t.text.length, newline: "\\\n" }, undefined);
      if (rewritten !== t.text) this.items.push({ type: "replace", from: i, to: i, text: rewritten });
    }
  }

  /** BPF_HASH(...) & co.: records the table, queues its map definition. Returns the ")" index. */
  tableMacro(i: number): number {
    const toks = this.tokens;
    const t = toks[i]!;
    const close = matching(toks, i + 1);
    if (close < 0) this.fail(t.line, t.text, "unbalanced parentheses");
    const args = splitArgs(toks, i + 2, close).map(([a, b]) => this.compactText(a, b));
    const macro = t.text;
    const bad = (detail: string): never => this.fail(t.line, macro, detail);
    const arg = (n: number, fallback?: string): string => {
      const v = args[n];
      if (v === undefined || v === "") {
        if (fallback === undefined) bad(`missing argument ${n + 1}`);
        return fallback!;
      }
      return v;
    };
    let kind: TableKind;
    let name: string;
    let key = "";
    let leaf = "";
    let size = "";
    let flags = "";
    let inner: string | undefined;
    switch (macro) {
      case "BPF_HASH":
      case "BPF_PERCPU_HASH":
        kind = macro === "BPF_HASH" ? "hash" : "percpu_hash";
        name = arg(0);
        key = arg(1, "u64");
        leaf = arg(2, "u64");
        size = arg(3, "10240");
        break;
      case "BPF_ARRAY":
      case "BPF_PERCPU_ARRAY":
        kind = macro === "BPF_ARRAY" ? "array" : "percpu_array";
        name = arg(0);
        key = "int";
        leaf = arg(1, "u64");
        size = arg(2, "10240");
        break;
      case "BPF_HISTOGRAM":
        kind = "histogram";
        name = arg(0);
        key = arg(1, "int");
        leaf = "u64";
        size = arg(2, "64");
        break;
      case "BPF_STACK_TRACE":
        kind = "stacktrace";
        name = arg(0);
        key = "int";
        leaf = "struct bpf_stacktrace";
        size = arg(1);
        break;
      case "BPF_PERF_OUTPUT":
        kind = "perf_output";
        name = arg(0);
        break;
      case "BPF_RINGBUF_OUTPUT":
        kind = "ringbuf";
        name = arg(0);
        size = `(${arg(1)}) * ${this.opts.pageSize}`;
        break;
      case "BPF_QUEUE":
      case "BPF_STACK":
        kind = macro === "BPF_QUEUE" ? "queue" : "stack";
        name = arg(0);
        leaf = arg(1);
        size = arg(2);
        flags = args[3] ?? "";
        break;
      // ---- perf counters, build-id stacks, tail calls, LPM tries (issue 16, item 8) ----
      case "BPF_PERF_ARRAY":
        kind = "perf_array";
        name = arg(0);
        size = arg(1);
        break;
      case "BPF_STACK_TRACE_BUILDID":
        kind = "stacktrace_buildid";
        name = arg(0);
        key = "int";
        leaf = "struct bpf_stacktrace_buildid";
        size = arg(1);
        break;
      case "BPF_PROG_ARRAY":
        kind = "prog";
        name = arg(0);
        key = "u32";
        leaf = "u32";
        size = arg(1);
        break;
      case "BPF_LPM_TRIE":
        // BCC: BPF_LPM_TRIE(name, key_type=u64, leaf_type=u64, size=10240), BPF_F_NO_PREALLOC
        kind = "lpm_trie";
        name = arg(0);
        key = arg(1, "u64");
        leaf = arg(2, "u64");
        size = arg(3, "10240");
        break;
      // ---- end of perf counters... ----
      // ---- packet and socket tables (issue 17): BCC's helpers.h shapes ----
      case "BPF_DEVMAP": // (name, max_entries): key u32 index, leaf int ifindex
      case "BPF_CPUMAP": // (name, max_entries): key u32 cpu, leaf u32 queue size
      case "BPF_XSKMAP": // (name, max_entries[, pinned]): key u32 queue, leaf an AF_XDP socket
        kind = macro === "BPF_DEVMAP" ? "devmap" : macro === "BPF_CPUMAP" ? "cpumap" : "xskmap";
        name = arg(0);
        key = "u32";
        leaf = macro === "BPF_CPUMAP" ? "u32" : "int";
        size = arg(1);
        if (macro === "BPF_XSKMAP" && args[2]) bad("pinned tables are not translated");
        break;
      case "BPF_SOCKMAP": // (name, max_entries)
        kind = "sockmap";
        name = arg(0);
        key = "u32";
        leaf = "int";
        size = arg(1);
        break;
      case "BPF_SOCKHASH": // (name[, key_type[, max_entries]])
        kind = "sockhash";
        name = arg(0);
        key = arg(1, "u32");
        leaf = "int";
        size = arg(2, "10240");
        break;
      case "BPF_SK_STORAGE": // (name, leaf_type): a value per socket, task or inode, no size
      case "BPF_INODE_STORAGE":
      case "BPF_TASK_STORAGE":
        kind = macro === "BPF_SK_STORAGE" ? "sk_storage" : macro === "BPF_INODE_STORAGE" ? "inode_storage" : "task_storage";
        name = arg(0);
        key = "int";
        leaf = arg(1);
        flags = "BPF_F_NO_PREALLOC";
        break;
      // ---- end of packet and socket tables ----
      // ---- maps of maps (issue 16, item 8): BCC's helpers.h shapes ----
      case "BPF_ARRAY_OF_MAPS": // (name, "inner_table", max_entries)
        if (args.length !== 3) bad('expected BPF_ARRAY_OF_MAPS(name, "inner_table", max_entries)');
        kind = "array_of_maps";
        name = arg(0);
        key = "int";
        inner = innerTableName(arg(1)) ?? bad(`the inner table must be a string literal naming a table, got ${arg(1)}`);
        size = arg(2);
        break;
      case "BPF_HASH_OF_MAPS": {
        // (name, "inner"), (name, key_type, "inner"), (name, key_type, "inner", max_entries), and
        // BCC's first form (before 0.20): (name, "inner", max_entries). The string literal says which.
        const at = args.findIndex((a, n) => n > 0 && innerTableName(a) !== undefined);
        if (args.length < 2 || args.length > 4 || at < 0 || at > 2) {
          bad('expected BPF_HASH_OF_MAPS(name, key_type, "inner_table", max_entries) (key_type and max_entries may be left out)');
        }
        kind = "hash_of_maps";
        name = arg(0);
        inner = innerTableName(args[at]!)!;
        key = at === 2 ? arg(1) : "int";
        size = args[at + 1] ?? "10240";
        if (args.length > at + 2) bad('expected BPF_HASH_OF_MAPS(name, key_type, "inner_table", max_entries)');
        break;
      }
      // ---- end of maps of maps ----
      case "BPF_TABLE":
      case "BPF_F_TABLE": {
        // "hash_of_maps$" "inner" (helpers.h pastes the inner table's name into the type).
        const typeName = /^"(.*)"$/.exec(arg(0).replace(/"\s*"/g, ""))?.[1];
        if (typeName === undefined) bad("the table type must be a string literal");
        const ofMaps = /^(array|hash)_of_maps\$(\w+)$/.exec(typeName!);
        if (ofMaps) inner = ofMaps[2];
        const k: TableKind | undefined = ofMaps ? (ofMaps[1] === "array" ? "array_of_maps" : "hash_of_maps") : TABLE_TYPE_NAMES[typeName!];
        if (!k) bad(`table type "${typeName}" is not translated by tsbpf's BCC front end (supported: ${Object.keys(TABLE_TYPE_NAMES).join(", ")})`);
        kind = k!;
        key = arg(1);
        leaf = arg(2);
        name = arg(3);
        size = arg(4);
        if (macro === "BPF_F_TABLE") flags = arg(5);
        if (kind === "stacktrace" && /\bbpf_stacktrace_buildid\b/.test(leaf)) kind = "stacktrace_buildid";
        break;
      }
      default:
        bad("unknown table macro");
    }
    if (!/^[A-Za-z_]\w*$/.test(name!)) bad(`"${name!}" is not a table name`);
    const before = this.tables.get(name!);
    if (before && !this.exclusive(before.line, t.line)) bad(`table "${name!}" is declared twice`);
    if (inner !== undefined) {
      // The maps it holds are shaped as the inner table, declared before it (BCC creates tables in order).
      const held = this.tables.get(inner);
      if (!held) bad(`the inner table "${inner}" must be declared before it`);
      if (held!.inner !== undefined) bad(`the inner table "${inner}" is itself a map of maps, which the kernel refuses`);
      leaf = "void"; // lookup() gives the inner map, used as a map pointer
    }
    if (!before) this.tables.set(name!, { name: name!, kind: kind!, keyType: key, leafType: leaf, line: t.line, ...(inner !== undefined && { inner }) });
    const newlines = "\n".repeat(this.newlinesIn(i, close));
    this.items.push({ type: "replace", from: i, to: close, text: this.mapDefinition(name!, kind!, key, leaf, size, flags, inner) + newlines });
    return close;
  }

  mapDefinition(name: string, kind: TableKind, key: string, leaf: string, size: string, flags: string, inner?: string): string {
    const attrs: string[] = [];
    let type = MAP_TYPES[kind];
    if (kind === "histogram" && key.trim() === "int") type = "BPF_MAP_TYPE_ARRAY";
    attrs.push(`__uint(type, ${type});`);
    if (size) attrs.push(`__uint(max_entries, ${size});`);
    switch (kind) {
      case "perf_output":
        attrs.push("__uint(key_size, sizeof(int));", "__uint(value_size, sizeof(u32));");
        break;
      case "ringbuf":
        break;
      case "stacktrace":
        attrs.push("__uint(key_size, sizeof(u32));", "__uint(value_size, sizeof(struct bpf_stacktrace));");
        break;
      case "perf_array":
      case "prog":
        attrs.push("__uint(key_size, sizeof(u32));", "__uint(value_size, sizeof(u32));");
        break;
      case "stacktrace_buildid":
        attrs.push("__uint(key_size, sizeof(u32));", "__uint(value_size, sizeof(struct bpf_stacktrace_buildid));");
        if (!flags) flags = "BPF_F_STACK_BUILD_ID";
        break;
      case "lpm_trie":
        attrs.push(`__type(key, ${key});`, `__type(value, ${leaf});`);
        if (!flags) flags = "BPF_F_NO_PREALLOC";
        break;
      case "queue":
      case "stack":
        attrs.push(`__type(value, ${leaf});`);
        break;
      case "array_of_maps":
      case "hash_of_maps":
        // libbpf's map-in-map: the inner table's own definition is the template (typeof of the variable).
        attrs.push(`__type(key, ${key});`, `__array(values, typeof(${inner}));`);
        break;
      default:
        attrs.push(`__type(key, ${key});`, `__type(value, ${leaf});`);
    }
    if (flags) attrs.push(`__uint(map_flags, ${flags});`);
    return `struct { ${attrs.join(" ")} } ${name} SEC(".maps")`;
  }

  /** TRACEPOINT_PROBE(cat, ev) { ... } and RAW_TRACEPOINT_PROBE(ev) { ... }. Returns the body's "}" index. */
  probeMacro(i: number): number {
    const toks = this.tokens;
    const t = toks[i]!;
    const close = matching(toks, i + 1);
    if (close < 0) this.fail(t.line, t.text, "unbalanced parentheses");
    const args = splitArgs(toks, i + 2, close).map(([a, b]) => this.compactText(a, b));
    const ident = (s: string | undefined) => s !== undefined && /^[A-Za-z_]\w*$/.test(s);
    let probeMacro: FunctionSyntax["probeMacro"];
    if (t.text === "TRACEPOINT_PROBE") {
      if (args.length !== 2 || !ident(args[0]) || !ident(args[1])) this.fail(t.line, t.text, "expected TRACEPOINT_PROBE(category, event)");
      probeMacro = { kind: "tracepoint", category: args[0]!, event: args[1]! };
    } else if (t.text === "RAW_TRACEPOINT_PROBE") {
      if (args.length !== 1 || !ident(args[0])) this.fail(t.line, t.text, "expected RAW_TRACEPOINT_PROBE(event)");
      probeMacro = { kind: "raw_tracepoint", event: args[0]! };
    } else {
      const m = TRACING_MACROS[t.text]!;
      if (args.length < 1 || !ident(args[0])) this.fail(t.line, t.text, `expected ${t.text}(function, arguments...)`);
      probeMacro = { kind: "tracing", name: m.prefix + args[0]!, section: m.section + args[0]!, args: args.slice(1).filter((a) => a !== "").join(", ") };
    }
    if (toks[close + 1]?.text !== "{") this.fail(t.line, t.text, "expected a function body { ... } after it");
    const bodyClose = matching(toks, close + 1);
    if (bodyClose < 0) this.fail(t.line, t.text, "unbalanced braces in its body");
    this.items.push({
      type: "function",
      fn: { declStart: i, nameTok: i, paramsOpen: i + 1, paramsClose: close, bodyOpen: close + 1, bodyClose, isStatic: false, isInline: false, hasSection: false, probeMacro },
    });
    return bodyClose;
  }

  /** A declaration or a function definition starting at token i; returns the index after it. */
  declaration(i: number): number {
    const toks = this.tokens;
    let lastGroup: { open: number; close: number } | undefined;
    let j = i;
    while (j < toks.length) {
      const t = toks[j]!;
      if (t.kind === "directive") return j; // let the top level handle it
      if (t.kind === "punct" && (t.text === "(" || t.text === "[")) {
        const close = matching(toks, j);
        if (close < 0) this.fail(t.line, "C text", `unbalanced "${t.text}"`);
        const prev = toks[j - 1];
        if (t.text === "(" && prev?.kind === "ident" && !ATTRIBUTE_WORDS.has(prev.text)) lastGroup = { open: j, close };
        j = close + 1;
        continue;
      }
      if (t.kind === "punct" && t.text === "{") {
        const close = matching(toks, j);
        if (close < 0) this.fail(t.line, "C text", 'unbalanced "{"');
        if (toks[j - 1]?.text === ")" && lastGroup && !this.hasToken(i, lastGroup.open, "=")) {
          const words = toks.slice(i, lastGroup.open).map((x) => x.text);
          this.items.push({
            type: "function",
            fn: {
              declStart: i,
              nameTok: lastGroup.open - 1,
              paramsOpen: lastGroup.open,
              paramsClose: lastGroup.close,
              bodyOpen: j,
              bodyClose: close,
              isStatic: words.includes("static"),
              isInline: words.some((w) => w === "inline" || w === "__inline" || w === "__inline__" || w === "__always_inline"),
              hasSection: toks.slice(i, j).some((x) => x.text === "SEC" || x.text === "section" || x.text === "__section"),
            },
          });
          return close + 1;
        }
        j = close + 1; // a struct body or an initializer
        continue;
      }
      j++;
      if (t.kind === "punct" && t.text === ";") return j;
    }
    return j;
  }

  hasToken(from: number, to: number, text: string): boolean {
    for (let k = from; k < to; k++) if (this.tokens[k]!.text === text && this.tokens[k]!.kind === "punct") return true;
    return false;
  }

  /** Names of functions called from some function body: those are helpers, not programs. */
  calledNames(fns: FunctionSyntax[]): Set<string> {
    const names = new Set(fns.filter((f) => !f.probeMacro).map((f) => this.tokens[f.nameTok]!.text));
    const called = new Set<string>();
    for (const f of fns) {
      for (let k = f.bodyOpen + 1; k < f.bodyClose; k++) {
        const t = this.tokens[k]!;
        if (t.kind === "ident" && names.has(t.text) && this.tokens[k + 1]?.text === "(") called.add(t.text);
      }
    }
    return called;
  }

  // ---- functions ----

  readonly programs = new Map<FunctionSyntax, { section: string; params: Param[]; ctx: string; info: FunctionInfo }>();

  classify(fn: FunctionSyntax, called: Set<string>): void {
    const toks = this.tokens;
    const line = toks[fn.declStart]!.line;
    if (fn.probeMacro) {
      const pm = fn.probeMacro;
      if (pm.kind === "tracepoint") {
        const name = `tracepoint__${pm.category}__${pm.event}`;
        this.needTracepointStruct(name, line);
        this.addProgram(fn, `tracepoint/${pm.category}/${pm.event}`, [], "args", {
          name, line, kind: "tracepoint", syscall: false, autoAttach: { type: "tracepoint", tp: `${pm.category}:${pm.event}` },
        });
      } else if (pm.kind === "tracing") {
        // BTF pointers: the arguments are read directly (no implicit probe reads: the body is BPF_PROG's inner function).
        this.addProgram(fn, pm.section, [], "ctx", { name: pm.name, line, kind: "tracing", syscall: false, autoAttach: { type: "tracing", section: pm.section } });
      } else {
        const name = `raw_tracepoint__${pm.event}`;
        this.addProgram(fn, `raw_tp/${pm.event}`, [], "ctx", {
          name, line, kind: "raw_tracepoint", syscall: false, autoAttach: { type: "raw_tracepoint", tp: pm.event },
        });
      }
      return;
    }
    const name = toks[fn.nameTok]!.text;
    if (fn.isStatic || fn.isInline || fn.hasSection || called.has(name)) return; // a helper, or already libbpf-style
    for (const prefix of ["kfunc__", "kretfunc__", "kmod_ret__", "lsm__"]) {
      if (name.startsWith(prefix)) this.fail(line, `${prefix}${name.slice(prefix.length)}`, `${prefix.slice(0, -2)} programs are not translated by tsbpf's BCC front end`);
    }
    const params = this.params(fn, name);
    const ctxParam = params[0];
    const ctx = ctxParam?.name ?? "ctx";
    const extra = params.slice(1);
    const ptRegs = ctxParam !== undefined && isPtRegs(ctxParam.type);
    if (extra.length > 0 && !ptRegs) {
      this.fail(line, `${name}(...)`, "only kprobe functions (first parameter struct pt_regs *ctx) may declare the probed function's arguments as parameters");
    }
    if (extra.length > 6) this.fail(line, `${name}(...)`, "at most 6 arguments can be read from registers");

    if (name.startsWith("tracepoint__")) {
      const rest = name.slice("tracepoint__".length);
      const cut = rest.indexOf("__");
      if (cut <= 0) this.fail(line, name, "expected tracepoint__CATEGORY__EVENT");
      const category = rest.slice(0, cut);
      const event = rest.slice(cut + 2);
      this.addProgram(fn, `tracepoint/${category}/${event}`, params, ctx, {
        name, line, kind: "tracepoint", syscall: false, autoAttach: { type: "tracepoint", tp: `${category}:${event}` },
      });
      return;
    }
    if (name.startsWith("raw_tracepoint__")) {
      const event = name.slice("raw_tracepoint__".length);
      this.addProgram(fn, `raw_tp/${event}`, params, ctx, { name, line, kind: "raw_tracepoint", syscall: false, autoAttach: { type: "raw_tracepoint", tp: event } });
      return;
    }
    let autoAttach: AutoAttach | undefined;
    let syscall = name.startsWith("syscall__");
    for (const type of ["kprobe", "kretprobe"] as const) {
      if (!name.startsWith(`${type}__`)) continue;
      let event = name.slice(type.length + 2);
      // BCC's fix_syscall_fnname: kprobe__sys_clone means the syscall function of this kernel.
      if (event.startsWith("sys_") && !event.startsWith(this.opts.syscallPrefix)) event = this.opts.syscallPrefix + event.slice(4);
      autoAttach = { type, event };
      if (syscallOfEvent(event) !== undefined) syscall = true;
    }
    if (ctxParam && /^(const\s+)?struct\s+bpf_perf_event_data\s*\*$/.test(ctxParam.type.trim()) && extra.length === 0) {
      // attach_perf_event's programs (profile, llcstat)
      this.addProgram(fn, "perf_event", params, ctx, { name, line, kind: "perf_event", syscall: false });
      return;
    }
    const info: FunctionInfo = { name, line, kind: "kprobe", syscall, autoAttach };
    if (!this.opts.kprobes && (ptRegs || params.length === 0)) info.tracepointVariant = name + TRACEPOINT_VARIANT_SUFFIX;
    this.addProgram(fn, "kprobe", params, ctx, info);
  }

  addProgram(fn: FunctionSyntax, section: string, params: Param[], ctx: string, info: FunctionInfo): void {
    const before = this.functions.get(info.name);
    if (before && !this.exclusive(before.line, info.line)) this.fail(info.line, info.name, "a program of this name is defined twice");
    if (!before) this.functions.set(info.name, info);
    this.programs.set(fn, { section, params, ctx, info });
  }

  params(fn: FunctionSyntax, name: string): Param[] {
    const toks = this.tokens;
    const ranges = splitArgs(toks, fn.paramsOpen + 1, fn.paramsClose);
    if (ranges.length === 1 && (ranges[0]![0] === ranges[0]![1] || this.compactText(...ranges[0]!) === "void")) return [];
    return ranges.map(([a, b]) => {
      const line = toks[a]?.line ?? toks[fn.paramsOpen]!.line;
      let nameAt = -1;
      for (let k = b - 1; k >= a; k--) {
        const t = toks[k]!;
        if (t.kind === "punct" && (t.text === "[" || t.text === "(" || t.text === "]" || t.text === ")")) {
          this.fail(line, `${name}(...)`, `parameter "${this.compactText(a, b)}": array and function parameters are not supported`);
        }
        if (t.kind === "ident") {
          nameAt = k;
          break;
        }
      }
      if (nameAt <= a) this.fail(line, `${name}(...)`, `parameter "${this.compactText(a, b)}" needs a type and a name`);
      const type = this.compactText(a, nameAt);
      if (/^(const\s+)?(struct|union)\b/.test(type) && !type.includes("*")) {
        this.fail(line, `${name}(...)`, `parameter "${this.compactText(a, b)}": structs cannot be passed by value in registers`);
      }
      return { type, name: toks[nameAt]!.text };
    });
  }

  needTracepointStruct(structName: string, line: number): void {
    if (this.tracepointStructs.has(structName)) return;
    const rest = structName.slice("tracepoint__".length);
    const cut = rest.indexOf("__");
    if (cut <= 0) this.fail(line, `struct ${structName}`, "expected struct tracepoint__CATEGORY__EVENT");
    const category = rest.slice(0, cut);
    const event = rest.slice(cut + 2);
    const format = this.opts.tracepointFormat(category, event);
    if (format === undefined) {
      this.fail(line, `${category}:${event}`, `this kernel has no tracepoint ${category}:${event} (see /sys/kernel/tracing/events/${category}/)`);
    }
    this.tracepointStructs.set(structName, tracepointStruct(structName, parseFormat(format!)));
  }

  /** `struct tracepoint__CAT__EVENT` anywhere in the text gets its struct generated. */
  collectTracepointStructs(): void {
    const toks = this.tokens;
    for (let k = 0; k + 1 < toks.length; k++) {
      if (toks[k]!.text === "struct" && toks[k + 1]!.kind === "ident" && toks[k + 1]!.text.startsWith("tracepoint__")) {
        this.needTracepointStruct(toks[k + 1]!.text, toks[k + 1]!.line);
      }
    }
  }

  // ---- pass 2: output ----

  emit(): string {
    const toks = this.tokens;
    let out = "";
    let cursor = 0;
    const items = [...this.items].sort((a, b) => this.itemStart(a) - this.itemStart(b));
    for (const item of items) {
      if (item.type === "replace") {
        out += this.text.slice(cursor, toks[item.from]!.start) + item.text;
        cursor = toks[item.to]!.end;
        continue;
      }
      const fn = item.fn;
      out += this.text.slice(cursor, toks[fn.declStart]!.start);
      const program = this.programs.get(fn);
      out += this.functionText(fn, program, "main");
      cursor = toks[fn.bodyClose]!.end;
      if (program?.info.tracepointVariant) {
        out += `\n#line ${toks[fn.declStart]!.line} "${this.opts.file}"\n`;
        out += this.functionText(fn, program, "tracepoint");
        out += `\n#line ${toks[fn.bodyClose]!.line} "${this.opts.file}"\n`;
      }
    }
    return out + this.text.slice(cursor);
  }

  itemStart(item: Item): number {
    return item.type === "replace" ? this.tokens[item.from]!.start : this.tokens[item.fn.declStart]!.start;
  }

  functionText(
    fn: FunctionSyntax,
    program: { section: string; params: Param[]; ctx: string; info: FunctionInfo } | undefined,
    variant: "main" | "tracepoint",
  ): string {
    const toks = this.tokens;
    const text = this.text;
    const rewriteBody = () =>
      this.rewrite(fn.bodyOpen + 1, fn.bodyClose, { compact: false, start: toks[fn.bodyOpen]!.end, end: toks[fn.bodyClose]!.start, newline: "\n" }, variant);
    if (!program) {
      // A helper or a libbpf-style function: only its body is rewritten. Helpers are
      // inlined as BCC inlines them (it marks each always_inline): a struct passed by
      // value (clang's BPF target cannot pass one) and a string literal memcpy'd
      // through a parameter (folded to stores) then compile as in BCC.
      const inline = this.inlinable(fn) ? "__attribute__((always_inline)) " : "";
      return inline + text.slice(toks[fn.declStart]!.start, toks[fn.bodyOpen]!.end) + rewriteBody() + "}";
    }
    const { info, params, ctx } = program;
    const section = variant === "tracepoint" ? "tracepoint" : program.section;
    const name = variant === "tracepoint" ? info.tracepointVariant! : info.name;
    // The header keeps its line count: newlines of the dropped parameters follow it.
    const headerLines = countNewlines(text.slice(toks[fn.declStart]!.start, toks[fn.paramsClose]!.end));
    let header: string;
    if (fn.probeMacro?.kind === "tracepoint") {
      header = `SEC("${section}") int ${name}(struct ${name} *args)` + "\n".repeat(headerLines);
    } else if (fn.probeMacro?.kind === "tracing") {
      header = `SEC("${section}") int BPF_PROG(${name}${fn.probeMacro.args ? `, ${fn.probeMacro.args}` : ""})` + "\n".repeat(headerLines);
    } else if (fn.probeMacro?.kind === "raw_tracepoint") {
      header = `SEC("${section}") int ${name}(struct bpf_raw_tracepoint_args *ctx)` + "\n".repeat(headerLines);
    } else {
      const first = params[0] ? `${params[0].type} ${params[0].name}` : "";
      const before = text.slice(toks[fn.declStart]!.start, toks[fn.nameTok]!.start);
      const between = text.slice(toks[fn.nameTok]!.end, toks[fn.paramsOpen]!.start);
      header = `SEC("${section}") ${before}${name}${between}(${first})` + "\n".repeat(headerLines - countNewlines(before + between));
    }
    const afterParams = text.slice(toks[fn.paramsClose]!.end, toks[fn.bodyOpen]!.end);
    const decls = params
      .slice(1)
      .map((p, k) => `${p.type} ${p.name} = (${p.type})(unsigned long)(${this.argExpr(info, ctx, k + 1, variant)});`)
      .join(" ");
    return header + afterParams + (decls ? ` ${decls}` : "") + rewriteBody() + "}";
  }

  /** A helper BCC would inline: not a libbpf-style section function, not marked noinline or inline already. */
  inlinable(fn: FunctionSyntax): boolean {
    if (fn.hasSection || fn.isInline || fn.probeMacro) return false;
    for (let k = fn.declStart; k < fn.nameTok; k++) {
      const w = this.tokens[k]!.text;
      if (w === "__noinline" || w === "noinline" || w === "extern" || w === "__weak") return false;
    }
    return true;
  }

  argExpr(info: FunctionInfo, ctx: string, n: number, variant: "main" | "tracepoint"): string {
    if (variant === "tracepoint") return `__TSBPF_TP_ARG(${ctx}, ${n})`;
    if (info.syscall && this.opts.syscallWrappers) return `__TSBPF_SYSCALL_ARG(${ctx}, ${n})`;
    return `PT_REGS_PARM${n}(${ctx})`;
  }

  // ---- bodies ----

  compactText(from: number, to: number): string {
    return this.tokens
      .slice(from, to)
      .map((t) => t.text)
      .join(" ");
  }

  newlinesIn(from: number, to: number): number {
    return countNewlines(this.text.slice(this.tokens[from]!.start, this.tokens[to]!.end));
  }

  /**
   * Tokens [from, to) with BCC constructs rewritten. Verbatim mode keeps the
   * text between tokens (comments, newlines) from `start` to `end`; compact
   * mode joins tokens with spaces (for arguments a rewrite repeats).
   */
  rewrite(
    from: number,
    to: number,
    mode: { compact: boolean; start: number; end: number; newline: string },
    variant: "main" | "tracepoint" | undefined,
  ): string {
    const toks = this.tokens;
    const parts: string[] = [];
    let prevEnd = mode.start;
    const emit = (tokIndex: number, text: string, endOffset: number) => {
      if (mode.compact) parts.push(text);
      else parts.push(this.text.slice(prevEnd, toks[tokIndex]!.start) + text);
      prevEnd = endOffset;
    };
    for (let i = from; i < to; i++) {
      const t = toks[i]!;
      if (t.kind === "ident") {
        const prev = toks[i - 1];
        const memberOf = prev?.kind === "punct" && (prev.text === "." || prev.text === "->");
        const table = !memberOf ? this.tables.get(t.text) : undefined;
        if (table && toks[i + 1]?.text === "." && toks[i + 2]?.kind === "ident") {
          const member = toks[i + 2]!;
          if (toks[i + 3]?.text === "(") {
            const close = matching(toks, i + 3);
            if (close < 0 || close >= to) this.fail(t.line, `${t.text}.${member.text}()`, "unbalanced parentheses");
            const args = splitArgs(toks, i + 4, close).map(([a, b]) =>
              this.rewrite(a, b, { compact: true, start: 0, end: 0, newline: mode.newline }, variant),
            );
            let replacement = this.methodCall(table, member.text, args, t.line);
            if (!mode.compact) replacement += mode.newline.repeat(this.newlinesIn(i, close));
            emit(i, replacement, toks[close]!.end);
            i = close;
            continue;
          }
          if (member.text === "key" || member.text === "leaf") {
            const type = member.text === "key" ? table.keyType : table.leafType;
            emit(i, `(*(__typeof__(${type}) *)0)`, member.end);
            i += 2;
            continue;
          }
        }
        if (toks[i + 1]?.text === "(" && !memberOf) {
          if (t.text === "bpf_trace_printk") {
            emit(i, "__tsbpf_trace_printk", t.end);
            continue;
          }
          if (UNSUPPORTED_CALLS[t.text]) this.fail(t.line, `${t.text}()`, `${UNSUPPORTED_CALLS[t.text]} by tsbpf's BCC front end`);
        }
        if (variant === "tracepoint") {
          const m = /^PT_REGS_(PARM[1-6]|RC)(?:_CORE)?$/.exec(t.text);
          if (m) {
            emit(i, `__TSBPF_TP_${m[1]}`, t.end);
            continue;
          }
        }
      }
      emit(i, t.text, t.end);
    }
    if (!mode.compact) parts.push(this.text.slice(prevEnd, mode.end));
    return mode.compact ? parts.join(" ") : parts.join("");
  }

  methodCall(table: TableInfo, method: string, args: string[], line: number): string {
    const construct = `${table.name}.${method}()`;
    const allowed = METHODS[table.kind];
    if (!allowed.includes(method)) {
      this.fail(
        line,
        construct,
        `.${method}() on a ${table.kind} table is not part of tsbpf's BCC subset (${table.kind} tables have: ${allowed.map((m) => `.${m}()`).join(", ")})`,
      );
    }
    const arity: Record<string, [number, number]> = {
      lookup: [1, 1], lookup_or_try_init: [2, 2], lookup_or_init: [2, 2], update: [2, 2], insert: [2, 2], delete: [1, 1],
      increment: [1, 2], atomic_increment: [1, 2], get_stackid: [2, 2], perf_submit: [3, 3], perf_submit_skb: [4, 4],
      ringbuf_output: [3, 3], ringbuf_reserve: [1, 1], ringbuf_submit: [2, 2], ringbuf_discard: [2, 2],
      push: [1, 2], pop: [1, 1], peek: [1, 1],
      perf_read: [1, 1], perf_counter_value: [3, 3], call: [2, 2],
      // packet and socket tables (issue 17)
      redirect_map: [2, 2], sock_map_update: [3, 3], sock_hash_update: [3, 3], msg_redirect_hash: [3, 3], sk_redirect_hash: [3, 3],
      sk_storage_get: [3, 3], sk_storage_delete: [1, 1], inode_storage_get: [3, 3], inode_storage_delete: [1, 1],
      task_storage_get: [3, 3], task_storage_delete: [1, 1],
    };
    const [min, max] = arity[method]!;
    if (args.length < min || args.length > max || args.some((a) => a === "")) {
      this.fail(line, construct, `expects ${min === max ? min : `${min} or ${max}`} arguments, got ${args.length}`);
    }
    const m = `&${table.name}`;
    const leaf = `__typeof__(${table.leafType})`;
    const [a0, a1, a2] = args;
    const record = (ptr: string) =>
      `static __typeof__(*(${ptr})) *${EVENT_VAR_PREFIX}${table.name} __attribute__((used, section("${EVENT_SECTION}")));`;
    const isHash = table.kind !== "array" && table.kind !== "percpu_array" && !(table.kind === "histogram" && table.keyType.trim() === "int");
    switch (method) {
      case "lookup":
        return `((${leaf} *)bpf_map_lookup_elem(${m}, ${a0}))`;
      case "lookup_or_try_init":
      case "lookup_or_init":
        return (
          `({ ${leaf} *__tsbpf_leaf = bpf_map_lookup_elem(${m}, ${a0}); ` +
          `if (!__tsbpf_leaf) { bpf_map_update_elem(${m}, ${a0}, ${a1}, BPF_NOEXIST); __tsbpf_leaf = bpf_map_lookup_elem(${m}, ${a0}); } ` +
          // BCC: the function returns 0 when the entry can be neither found nor made.
          `if (!__tsbpf_leaf) return 0; __tsbpf_leaf; })`
        );
      case "update":
        return `bpf_map_update_elem(${m}, ${a0}, ${a1}, BPF_ANY)`;
      case "insert":
        return `bpf_map_update_elem(${m}, ${a0}, ${a1}, BPF_NOEXIST)`;
      case "delete":
        return `bpf_map_delete_elem(${m}, ${a0})`;
      case "increment":
      case "atomic_increment": {
        const inc = a1 ?? "1";
        const add = (ptr: string) => (method === "atomic_increment" ? `__sync_fetch_and_add(${ptr}, ${inc});` : `*(${ptr}) += ${inc};`);
        let s = `({ __typeof__(${table.keyType}) __tsbpf_key = (${a0}); ${leaf} *__tsbpf_leaf = bpf_map_lookup_elem(${m}, &__tsbpf_key); `;
        s += `if (__tsbpf_leaf) ${add("__tsbpf_leaf")}`;
        if (isHash) {
          s += ` else { ${leaf} __tsbpf_zero; __builtin_memset(&__tsbpf_zero, 0, sizeof(__tsbpf_zero)); __tsbpf_zero += ${inc}; `;
          s += `bpf_map_update_elem(${m}, &__tsbpf_key, &__tsbpf_zero, BPF_NOEXIST); }`;
        }
        return s + " })";
      }
      case "get_stackid":
        return `bpf_get_stackid(${a0}, ${m}, ${a1})`;
      case "perf_read":
        return `bpf_perf_event_read(${m}, ${a0})`;
      case "perf_counter_value":
        return `bpf_perf_event_read_value(${m}, ${a0}, ${a1}, ${a2})`;
      case "call":
        // BCC's table.call(ctx, index): a tail call; on failure execution goes on after it.
        return `bpf_tail_call(${a0}, ${m}, ${a1})`;
      case "perf_submit":
        return `({ ${record(a1!)} bpf_perf_event_output(${a0}, ${m}, BPF_F_CURRENT_CPU, ${a1}, ${a2}); })`;
      case "perf_submit_skb":
        return perfSubmitSkb(m, args, record);
      case "ringbuf_output":
        return `({ ${record(a0!)} tsbpf_ringbuf_output(${m}, ${a0}, ${a1}, ${a2}); })`;
      case "ringbuf_reserve":
        return `tsbpf_ringbuf_reserve(${m}, ${a0}, 0)`;
      case "ringbuf_submit":
        return `({ ${record(a0!)} bpf_ringbuf_submit(${a0}, ${a1}); })`;
      case "ringbuf_discard":
        return `({ ${record(a0!)} bpf_ringbuf_discard(${a0}, ${a1}); })`;
      case "push":
        return `bpf_map_push_elem(${m}, ${a0}, ${a1 ?? "BPF_ANY"})`;
      case "pop":
        return `bpf_map_pop_elem(${m}, ${a0})`;
      case "peek":
        return `bpf_map_peek_elem(${m}, ${a0})`;
      // ---- packet and socket tables (issue 17) ----
      case "redirect_map": // xdp_act = map.redirect_map(index, flags)
        return `bpf_redirect_map(${m}, ${a0}, ${a1})`;
      case "sock_map_update": // map.sock_map_update(ctx, &key, flags)
      case "sock_hash_update":
        return `bpf_${method}(${a0}, ${m}, ${a1}, ${a2})`;
      case "msg_redirect_hash": // map.msg_redirect_hash(msg, &key, flags)
      case "sk_redirect_hash":
        return `bpf_${method}(${a0}, ${m}, ${a1}, ${a2})`;
      case "sk_storage_get": // map.sk_storage_get(sk, init_value_or_NULL, flags)
      case "inode_storage_get":
      case "task_storage_get":
        return `((${leaf} *)bpf_${method}(${m}, ${a0}, ${a1}, ${a2}))`;
      case "sk_storage_delete":
      case "inode_storage_delete":
      case "task_storage_delete":
        return `bpf_${method}(${m}, ${a0})`;
    }
    return this.fail(line, construct, "not translated");
  }
}

/** `"inner"` -> inner: the table name a map of maps' string literal gives, or undefined. */
function innerTableName(arg: string): string | undefined {
  return /^"([A-Za-z_]\w*)"$/.exec(arg.trim())?.[1];
}

// ---- packets: what BCC's packet programs get ----

/** Every BCC program gets <bcc/packet.h>: ETH_*, TC_ACT_*, TC_H_*, the in6.h IPPROTO_*, load_byte/half/word, bpf_dext_pkt. */
function packetInclude(): string {
  return "#include <bcc/packet.h>\n";
}

/**
 * BCC's table.perf_submit_skb(skb, len, &data, sizeof data): bpf_perf_event_output
 * with the skb as context and len in the flags' upper 32 bits, so the kernel
 * appends the packet's first len bytes to the record after the struct.
 */
function perfSubmitSkb(map: string, args: string[], record: (ptr: string) => string): string {
  const [skb, len, data, size] = args;
  return `({ ${record(data!)} bpf_perf_event_output(${skb}, ${map}, ((__u64)(${len}) << 32) | BPF_F_CURRENT_CPU, ${data}, ${size}); })`;
}

/** KERNEL_VERSION(a, b, c) of a release string ("6.1.0-50-cloud-amd64"), as BCC computes LINUX_VERSION_CODE. */
export function kernelVersionCode(release: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) return 0;
  return (Number(m[1]) << 16) + (Number(m[2]) << 8) + Math.min(Number(m[3] ?? 0), 255);
}

function kernelHasStruct(name: string): boolean {
  try {
    return Spec.kernel().typesByName(name).some((t) => t.kind === "struct" || t.kind === "union");
  } catch {
    return false; // no kernel BTF: compile errors will say what clashes
  }
}

function runningKernelVersion(): number {
  return kernelVersionCode(release());
}

let runningConfig: ReadonlyMap<string, string> | null | undefined;
const configByPath = new Map<string, ReadonlyMap<string, string>>();
const macrosOfConfig = new WeakMap<ReadonlyMap<string, string>, Map<string, string>>();

/** The running kernel's config, read once; null when it has none readable. */
function runningConfigText(): ReadonlyMap<string, string> | null {
  if (runningConfig === undefined) {
    try {
      runningConfig = parseKconfig(readKernelConfigText().text);
    } catch {
      runningConfig = null;
    }
  }
  return runningConfig;
}



function countNewlines(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

export interface BccTranslateOptions extends TranslateOptions {
  /** The cflags the program is compiled with (-D... matter to the preprocessor). */
  cflags?: string[];
  /** Include directories of the compile (for the user's own #include "..."). */
  includeDirs?: string[];
  /** Kernel BTF that vmlinux.h comes from (another kernel's, when compiling for it). Default: this kernel's. */
  btfPath?: string;
}

/** translate(), then the passes that need clang's view of the program: BCC's packet-header reads, its implicit kernel reads. */
export async function translateBcc(text: string, options: BccTranslateOptions): Promise<Translation & { kernelReads: number; userReads: number }> {
  const t = translate(text, options);
  const p = await rewritePacketReads(t.code, {
    userStart: t.userStart,
    functions: t.definitions.map((d) => d.name),
    displayName: options.displayName ?? options.file,
    cflags: options.cflags,
    includeDirs: options.includeDirs,
    arch: options.arch ?? (process.arch === "arm64" ? "arm64" : "x86"),
    btfPath: options.btfPath,
  });
  const r = await rewriteKernelReads(p.code, {
    userStart: t.userStart,
    functions: t.definitions.map((d) => d.name),
    programs: t.definitions.filter((d) => d.program).map((d) => d.name),
    cflags: options.cflags,
    includeDirs: options.includeDirs,
    arch: options.arch ?? (process.arch === "arm64" ? "arm64" : "x86"),
    btfPath: options.btfPath,
  });
  return { ...t, code: r.code, kernelReads: r.kernelReads, userReads: r.userReads };
}
