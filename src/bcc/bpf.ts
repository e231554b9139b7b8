// The BPF facade: BCC's Python API (`from bcc import BPF`) in TypeScript, a front
// end over the library. BPF.load() translates BCC's C dialect (dialect.ts),
// compiles, and loads the object as a Collection with no programs; each function
// is loaded when first attached (Collection.loadProgram: the same CO-RE and load
// path as every other program), with the program type its hook needs, as BCC's
// load_func does. Attaching goes through the hook registry (link/hooks.ts); on
// kernels without kprobes, a kprobe on a syscall function goes where the
// registry's fallback says, the syscalls:sys_enter_*/sys_exit_* tracepoint, with
// the same arguments and return value.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Type } from "../btf/types.ts";
import { resolve as resolveType } from "../btf/types.ts";
import { Collection } from "../collection.ts";
import { compile, CompileError, defaultCacheDir, type Diagnostic } from "../compile/index.ts";
import { cacheFile, sha256 } from "../compile/cache.ts";
import { ElfFile } from "../elf/index.ts";
import { STT_FUNC } from "../elf/constants.ts";
import { ProgType } from "../internal/sys/constants.ts";
import { AttachError } from "../link/errors.ts";
import { describeTarget, fallbackFor, hookDef, type HookTarget } from "../link/hooks.ts";
import type { Link } from "../link/link.ts";
import { attachXdp, XDP_FLAGS, xdpQuery, type XdpLink, type XdpMode } from "../link/xdp.ts";
import { openRawSocket, type RawSocket } from "../link/socket.ts";
import { ifindexOf, ifnameOf } from "../link/netdev.ts";
import { i32Attr, ifinfomsg, NLM_F_ACK, RTM, u32Attr, withNetlink } from "../internal/netlink/index.ts";
import type { TcDirection } from "../link/tc.ts";
import { resolveBinary } from "../link/uprobe.ts";
import { syscallPrefix } from "../link/syscall.ts";
import { haveDynamicProbes } from "../features/index.ts";
import { ObjectSpec } from "../object/spec.ts";
import type { Program } from "../programs/program.ts";
import { listTracepoints, tracepointExists } from "../tracing/tracefs.ts";
import { tracePipe, type TraceLine } from "../tracing/index.ts";
import { EVENT_SECTION, EVENT_VAR_PREFIX, kernelVersionCode, syscallOfEvent, translate, translateBcc, type Translation } from "./dialect.ts";
import { holdInterrupts, interruptible } from "./interrupt.ts";
import { ksym, ksymname, sym, type SymbolOptions } from "./symbols.ts";
import { kallsyms } from "../internal/kallsyms.ts";
import { EventBuffer, Table, type TableHost } from "./table.ts";
import { readFormat } from "./tracepoint.ts";
import { PRELUDE_HEADERS } from "./prelude.ts";
import { NotSupportedError, UsageError } from "../errors.ts";
import type { FD } from "../internal/sys/fd.ts";
import { perfEventOpen } from "../internal/sys/perf.ts";
import { attachPerfEvent, onlineCpus, resolvePerfEvent, type PerfEventSpec } from "../link/perf_event.ts";
import { readBuildIdStack, type BuildIdFrame } from "../maps/stack.ts";
import { binarySymbols, type BinarySymbols } from "../symbolize/binary.ts";
import type { USDT } from "./usdt.ts";

export type BpfSource = { text: string; name?: string } | { srcFile: string };

export interface BpfOptions {
  /** Extra clang flags (-DNAME=VALUE, -I...), as BCC's cflags. */
  cflags?: string[];
  /** Verifier log level for load failures (BCC's debug): 1 or 2. */
  debug?: 0 | 1 | 2;
  /**
   * Whether to use kprobes. Default: when the kernel has them. Without them,
   * kprobes on syscall functions use the syscall tracepoints.
   */
  kprobes?: boolean;
  /** BCC's usdt_contexts: USDT probes whose functions are attached at load (bcc/usdt.ts). */
  usdtContexts?: USDT[];
}

export interface KprobeAttach {
  /** Kernel function, e.g. b.getSyscallFnname("openat"). */
  event?: string;
  /** Every kernel function matching this regular expression (from /proc/kallsyms). */
  eventRe?: string | RegExp;
  fnName: string;
  /** Offset into the function (kprobes only). */
  eventOff?: number;
}

export interface TracepointAttach {
  /** "category:event", e.g. "sched:sched_switch". */
  tp?: string;
  /** Every "category:event" matching this regular expression. */
  tpRe?: string | RegExp;
  fnName: string;
}

export interface UprobeAttach {
  /** The binary or library: a path, a name in PATH, or a library name ("c" is libc). */
  name: string;
  sym?: string;
  symRe?: string | RegExp;
  /** File offset in the binary (instead of sym), or offset from sym with it. */
  addr?: number;
  symOff?: number;
  fnName: string;
  /** Only this process (default: all). */
  pid?: number;
}

/** BCC's trace_fields(): (task, pid, cpu, flags, ts, msg). */
export type TraceFields = [task: string, pid: number, cpu: number, flags: string, ts: number, msg: string];

let fallbackNoted = false;

function toRegExp(re: string | RegExp): RegExp {
  return typeof re === "string" ? new RegExp(re) : re;
}

export class BPF implements Disposable, TableHost {
  static readonly SOCKET_FILTER = ProgType.SOCKET_FILTER;
  static readonly KPROBE = ProgType.KPROBE;
  static readonly TRACEPOINT = ProgType.TRACEPOINT;
  static readonly XDP = ProgType.XDP;
  static readonly PERF_EVENT = ProgType.PERF_EVENT;
  static readonly RAW_TRACEPOINT = ProgType.RAW_TRACEPOINT;
  // Packet program types and XDP flags, as BCC's BPF class has them.
  static readonly SCHED_CLS = ProgType.SCHED_CLS;
  static readonly SCHED_ACT = ProgType.SCHED_ACT;
  static readonly CGROUP_SKB = ProgType.CGROUP_SKB;
  static readonly CGROUP_SOCK = ProgType.CGROUP_SOCK;
  static readonly SOCK_OPS = ProgType.SOCK_OPS;
  static readonly SK_SKB = ProgType.SK_SKB;
  static readonly SK_MSG = ProgType.SK_MSG;
  static readonly CGROUP_SOCK_ADDR = ProgType.CGROUP_SOCK_ADDR;
  static readonly CGROUP_SYSCTL = ProgType.CGROUP_SYSCTL;
  static readonly XDP_FLAGS_UPDATE_IF_NOEXIST = XDP_FLAGS.UPDATE_IF_NOEXIST;
  static readonly XDP_FLAGS_SKB_MODE = XDP_FLAGS.SKB_MODE;
  static readonly XDP_FLAGS_DRV_MODE = XDP_FLAGS.DRV_MODE;
  static readonly XDP_FLAGS_HW_MODE = XDP_FLAGS.HW_MODE;
  static readonly XDP_FLAGS_REPLACE = XDP_FLAGS.REPLACE;

  /** XDP programs attached by BPF.attachXdp, by interface: held until removeXdp (or exit, where the kernel has XDP links). */
  static readonly #xdp = new Map<string, XdpLink>();

  /**
   * BCC's attach_xdp(dev, fn, flags): `fn` from loadFunc(name, BPF.XDP). Flags pick the
   * mode (XDP_FLAGS_SKB_MODE: generic; XDP_FLAGS_DRV_MODE: native; neither: native, else
   * generic). Unlike BCC, a bpf_link is used where the kernel has one (5.9+), so the
   * program also goes when the process ends; removeXdp removes it sooner.
   */
  static attachXdp(dev: string, fn: Program, flags = 0): XdpLink {
    const mode: XdpMode | "auto" = flags & XDP_FLAGS.SKB_MODE ? "generic" : flags & XDP_FLAGS.DRV_MODE ? "native" : flags & XDP_FLAGS.HW_MODE ? "offload" : "auto";
    const name = ifnameOf(dev);
    if (BPF.#xdp.has(name)) BPF.removeXdp(name);
    const link = attachXdp(fn, { interface: dev, mode });
    BPF.#xdp.set(name, link);
    return link;
  }

  /** BCC's remove_xdp(dev, flags): detaches what attachXdp put there; else removes the interface's XDP program through netlink, as BCC does. */
  static removeXdp(dev: string, flags = 0): void {
    const name = ifnameOf(dev);
    const link = BPF.#xdp.get(name);
    if (link) {
      BPF.#xdp.delete(name);
      link.close();
      return;
    }
    const q = xdpQuery(name);
    if (q.attached === "none") return;
    const modeFlags = flags & (XDP_FLAGS.SKB_MODE | XDP_FLAGS.DRV_MODE | XDP_FLAGS.HW_MODE) || (q.attached === "generic" ? XDP_FLAGS.SKB_MODE : q.attached === "offload" ? XDP_FLAGS.HW_MODE : XDP_FLAGS.DRV_MODE);
    withNetlink((nl) =>
      nl.request(`remove the XDP program of ${name}`, RTM.SETLINK, NLM_F_ACK, ifinfomsg(ifindexOf(name)), [
        { type: 43 /* IFLA_XDP */, value: [i32Attr(1 /* IFLA_XDP_FD */, -1), u32Attr(3 /* IFLA_XDP_FLAGS */, modeFlags)] },
      ]),
    );
  }

  /**
   * BCC's attach_raw_socket(fn, dev): a raw socket on `dev` (AF_PACKET, all protocols,
   * non-blocking) with `fn` (loadFunc(name, BPF.SOCKET_FILTER)) filtering it. Read it
   * with .read() or .packets(); its fd is in .fd. Closing it ends the filter.
   */
  static attachRawSocket(fn: Program, dev: string): RawSocket {
    return openRawSocket(fn, dev);
  }

  /** The loaded object: maps (tables) and, as they are attached, programs. */
  readonly collection: Collection;
  /** What the BCC front end made of the text: tables, functions, the generated C. */
  readonly translation: Translation;
  /** The program's name in messages (the file, or the text's name). */
  readonly source: string;
  /** Whether kprobes are used (false: syscall probes go to the syscall tracepoints). */
  readonly kprobes: boolean;

  readonly #debug: number;
  readonly #programs = new Map<string, Program>();
  readonly #links = new Map<string, { fnName: string; link: Link }[]>();
  readonly #tables = new Map<string, Table>();
  readonly #buffers: EventBuffer[] = [];
  readonly #eventTypes = new Map<string, Type>();
  readonly #wakers = new Set<() => void>();
  readonly #releaseInterrupts: () => void;
  #pipe: AsyncIterator<TraceLine> | undefined;
  #pipeAbort: AbortController | undefined;
  #closed = false;

  private constructor(collection: Collection, translation: Translation, source: string, kprobes: boolean, debug: number) {
    this.collection = collection;
    this.translation = translation;
    this.source = source;
    this.kprobes = kprobes;
    this.#debug = debug;
    const datasec = collection.spec.btf?.typesByName(EVENT_SECTION).find((t) => t.kind === "datasec");
    if (datasec?.kind === "datasec") {
      for (const v of datasec.vars) {
        if (v.type.kind !== "var") continue;
        const name = v.type.name.slice(v.type.name.lastIndexOf(".") + 1);
        if (!name.startsWith(EVENT_VAR_PREFIX)) continue;
        const table = name.slice(EVENT_VAR_PREFIX.length);
        const ptr = resolveType(v.type.type);
        if (ptr.kind === "pointer" && resolveType(ptr.type).kind !== "void" && !this.#eventTypes.has(table)) this.#eventTypes.set(table, ptr.type);
      }
    }
    // No exit hook: the kernel frees the fds with the process, and tracefs probe
    // definitions are removed by internal/cleanup.ts, as for every Link.
    this.#releaseInterrupts = holdInterrupts();
  }

  /**
   * BCC's BPF(text=...) / BPF(src_file=...): translates BCC's C, compiles it
   * against the running kernel's BTF (no kernel headers), loads the tables, and
   * attaches the kprobe__/kretprobe__/tracepoint__/raw_tracepoint__ functions.
   */
  static async load(source: BpfSource, opts: BpfOptions = {}): Promise<BPF> {
    const kprobes = opts.kprobes ?? haveDynamicProbes("kprobe");
    const { translation, display, bytes } = await build(source, { ...opts, kprobes });
    const spec = ObjectSpec.fromBytes(bytes, display);
    const collection = Collection.load(spec, { programs: [], logLevel: (opts.debug ?? 0) >= 2 ? 2 : 1 });
    const b = new BPF(collection, translation, display, kprobes, opts.debug ?? 0);
    try {
      b.#autoAttach();
      for (const u of opts.usdtContexts ?? []) for (const { fnName, target } of u.targets()) b.#attach(fnName, target);
    } catch (err) {
      b.cleanup();
      throw err;
    }
    return b;
  }

  /** Attaches the functions whose names say where (kprobe__, tracepoint__...), as registry targets. */
  #autoAttach(): void {
    for (const fn of this.translation.functions.values()) {
      const auto = fn.autoAttach;
      if (!auto) continue;
      // A function the preprocessor left out (TRACEPOINT_PROBE under a false #ifdef, as in
      // ucalls without -S) is not in the object: BCC, which scans after preprocessing, never sees it.
      const { programs } = this.collection.spec;
      if (!programs.has(fn.name) && !(fn.tracepointVariant && programs.has(fn.tracepointVariant))) continue;
      let target: HookTarget;
      switch (auto.type) {
        case "kprobe":
        case "kretprobe":
          target = { hook: auto.type, symbol: auto.event };
          break;
        case "tracepoint": {
          const [category = "", event = ""] = auto.tp.split(":");
          target = { hook: "tracepoint", category, event };
          break;
        }
        case "raw_tracepoint":
          target = { hook: "raw_tracepoint", event: auto.tp };
          break;
        case "tracing":
          target = { hook: "tracing", section: auto.section };
          break;
      }
      this.#attach(fn.name, target);
    }
  }

  /** Key of a target among the links, for detach and the counts. */
  #key(t: HookTarget): string {
    if (t.hook === "uprobe" || t.hook === "uretprobe") return this.#uprobeKey(t.hook, t.path, { sym: t.symbol, addr: t.offset, pid: t.pid });
    if (t.hook === "kprobe" || t.hook === "kretprobe") return `${t.hook}:${t.symbol}`;
    return describeTarget(t);
  }

  /**
   * The one attach path of the facade: the function loaded as the program type
   * its hook takes (the registry's), attached through Program.attachTo. Without
   * kprobes, a kprobe goes to the registry's fallback (a syscall's tracepoint),
   * with the function's tracepoint twin.
   */
  #attach(fnName: string, target: HookTarget): void {
    this.#checkOpen();
    const key = this.#key(target);
    if ((target.hook === "kprobe" || target.hook === "kretprobe") && !this.kprobes) {
      this.#track(key, fnName, this.#kprobeFallback(fnName, target));
      return;
    }
    // fentry/fexit/lsm: the object's own type (LSM is not TRACING).
    const type = target.hook === "tracing" ? this.collection.spec.program(fnName).type : hookDef(target.hook).progTypes[0]!;
    const program = this.loadFunc(fnName, type);
    this.#track(key, fnName, program.attachTo(target));
  }

  #kprobeFallback(fnName: string, target: HookTarget & { hook: "kprobe" | "kretprobe" }): Link {
    const kind = target.hook;
    const ret = kind === "kretprobe";
    const alt = fallbackFor(target);
    if (alt?.hook !== "tracepoint") {
      throw new AttachError(
        `cannot attach ${kind} ${fnName} to ${target.symbol}: this kernel has no kprobes (CONFIG_KPROBES is not set), ` +
          `and ${target.symbol} is not a syscall function with a tracepoint, so the syscall tracepoints cannot stand in for it. ` +
          `Use attachTracepoint or attachRawTracepoint, or a kernel with kprobes.`,
        { hook: kind, target: target.symbol, reason: "no kprobes, and no syscall tracepoint for this function", suggestion: "use attachTracepoint or attachRawTracepoint" },
      );
    }
    const fn = this.translation.functions.get(fnName);
    if (fn && fn.kind !== "kprobe") throw new AttachError(`${fnName} is a ${fn.kind} function, not a kprobe function`, { hook: kind, target: target.symbol });
    const program = this.#load(fn?.tracepointVariant ?? fnName, BPF.TRACEPOINT, fnName);
    const link = program.attachTo(alt);
    if (!fallbackNoted) {
      fallbackNoted = true;
      process.stderr.write(
        `tsbpf: this kernel has no kprobes (CONFIG_KPROBES is not set): ${kind} ${target.symbol} is attached to the tracepoint ` +
          `syscalls:${alt.event} instead, which sees the same ${ret ? "return value" : "arguments"}; other syscall probes fall back the same way\n`,
      );
    }
    return link;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`BPF(${this.source}) was cleaned up (cleanup() or dispose)`);
  }

  /** BCC's load_func: the function loaded as a program of `progType` (cached). */
  loadFunc(fnName: string, progType: number): Program {
    return this.#load(fnName, progType, fnName);
  }

  /** Loads function `objectName` of the object; the kernel knows the program as `name` (a twin as its original). */
  #load(objectName: string, progType: number, name: string): Program {
    this.#checkOpen();
    const key = `${objectName}/${progType}`;
    let program = this.#programs.get(key);
    if (program) return program;
    program = this.collection.loadProgram(objectName, { type: progType, kernelName: name, logLevel: this.#debug >= 2 ? 2 : 1 });
    this.#programs.set(key, program);
    return program;
  }

  #track(key: string, fnName: string, link: Link): void {
    const list = this.#links.get(key) ?? [];
    list.push({ fnName, link });
    this.#links.set(key, list);
  }

  #detach(key: string, fnName: string | undefined, what: string): void {
    const list = this.#links.get(key);
    const matching = list?.filter((l) => fnName === undefined || l.fnName === fnName) ?? [];
    if (matching.length === 0) throw new Error(`${what} is not attached`);
    for (const l of matching) l.link.close();
    const rest = list!.filter((l) => !matching.includes(l));
    if (rest.length) this.#links.set(key, rest);
    else this.#links.delete(key);
  }

  // ---- kprobes (tracepoint fallback for syscalls) ----

  attachKprobe(opts: KprobeAttach): void {
    this.#kprobe(opts, false);
  }

  attachKretprobe(opts: KprobeAttach): void {
    this.#kprobe(opts, true);
  }

  detachKprobe(opts: { event: string; fnName?: string }): void {
    this.#detach(`kprobe:${opts.event}`, opts.fnName, `kprobe ${opts.event}`);
  }

  detachKretprobe(opts: { event: string; fnName?: string }): void {
    this.#detach(`kretprobe:${opts.event}`, opts.fnName, `kretprobe ${opts.event}`);
  }

  #kprobe(opts: KprobeAttach, ret: boolean): void {
    this.#checkOpen();
    const kind = ret ? "kretprobe" : "kprobe";
    if (opts.eventRe !== undefined) {
      const events = BPF.getKprobeFunctions(opts.eventRe);
      if (events.length === 0) throw new AttachError(`no kernel function matches ${String(opts.eventRe)} for ${kind} ${opts.fnName}`);
      for (const event of events) this.#kprobe({ event, fnName: opts.fnName, eventOff: opts.eventOff }, ret);
      return;
    }
    const event = opts.event;
    if (!event) throw new TypeError(`attach${ret ? "Kretprobe" : "Kprobe"}: give event or eventRe`);
    this.#attach(opts.fnName, { hook: kind, symbol: event, offset: opts.eventOff });
  }

  // ---- tc (BCC leaves it to pyroute2: load_func(fn, BPF.SCHED_CLS), then a clsact filter) ----

  /** A SCHED_CLS function on an interface's ingress or egress: a tcx link (6.6+), else clsact + a direct-action bpf filter. */
  attachTc(opts: { fnName: string; dev: string; direction?: TcDirection }): void {
    this.#attach(opts.fnName, { hook: "tc", interface: opts.dev, direction: opts.direction ?? "ingress" });
  }

  detachTc(opts: { dev: string; direction?: TcDirection; fnName?: string }): void {
    this.#detach(`tc:${opts.dev}:${opts.direction ?? "ingress"}`, opts.fnName, `tc ${opts.dev} ${opts.direction ?? "ingress"}`);
  }

  /** A cgroup function (cgroup_skb, sock_create, connect4...) on a cgroup directory; attachType: BPF_CGROUP_* (AttachType). */
  attachCgroup(opts: { fnName: string; path: string; attachType: number; progType: number }): void {
    this.#checkOpen();
    const program = this.loadFunc(opts.fnName, opts.progType);
    this.#track(`cgroup:${opts.path}:${opts.attachType}`, opts.fnName, program.attachTo({ hook: "cgroup", path: opts.path, attachType: opts.attachType }));
  }

  // ---- tracepoints ----

  attachTracepoint(opts: TracepointAttach): void {
    this.#checkOpen();
    if (opts.tpRe !== undefined) {
      const re = toRegExp(opts.tpRe);
      const tps = BPF.getTracepoints().filter((tp) => re.test(tp));
      if (tps.length === 0) throw new AttachError(`no tracepoint matches ${String(opts.tpRe)}`);
      for (const tp of tps) this.attachTracepoint({ tp, fnName: opts.fnName });
      return;
    }
    if (!opts.tp) throw new TypeError("attachTracepoint: give tp or tpRe");
    const [category, event] = opts.tp.split(":");
    if (!category || !event) {
      throw new AttachError(`"${opts.tp}" is not a tracepoint name; expected "category:event"`, { hook: "tracepoint", target: opts.tp, reason: "not category:event" });
    }
    this.#attach(opts.fnName, { hook: "tracepoint", category, event });
  }

  detachTracepoint(opts: { tp: string; fnName?: string }): void {
    this.#detach(`tracepoint:${opts.tp}`, opts.fnName, `tracepoint ${opts.tp}`);
  }

  attachRawTracepoint(opts: { tp: string; fnName: string }): void {
    this.#attach(opts.fnName, { hook: "raw_tracepoint", event: opts.tp });
  }

  detachRawTracepoint(opts: { tp: string; fnName?: string }): void {
    this.#detach(`raw_tracepoint:${opts.tp}`, opts.fnName, `raw tracepoint ${opts.tp}`);
  }

  // ---- uprobes ----

  attachUprobe(opts: UprobeAttach): void {
    this.#uprobe(opts, false);
  }

  attachUretprobe(opts: UprobeAttach): void {
    this.#uprobe(opts, true);
  }

  detachUprobe(opts: { name: string; sym?: string; addr?: number; pid?: number; fnName?: string }): void {
    this.#detach(this.#uprobeKey("uprobe", resolveBinary(opts.name), opts), opts.fnName, `uprobe ${opts.name}:${opts.sym ?? opts.addr}`);
  }

  detachUretprobe(opts: { name: string; sym?: string; addr?: number; pid?: number; fnName?: string }): void {
    this.#detach(this.#uprobeKey("uretprobe", resolveBinary(opts.name), opts), opts.fnName, `uretprobe ${opts.name}:${opts.sym ?? opts.addr}`);
  }

  #uprobeKey(kind: string, path: string, opts: { sym?: string; addr?: number; pid?: number }): string {
    return `${kind}:${path}:${opts.sym ?? `0x${(opts.addr ?? 0).toString(16)}`}:${opts.pid ?? -1}`;
  }

  #uprobe(opts: UprobeAttach, ret: boolean): void {
    this.#checkOpen();
    const path = resolveBinary(opts.name);
    if (opts.symRe !== undefined) {
      const re = toRegExp(opts.symRe);
      const elf = ElfFile.open(path);
      const names = [...new Set([...elf.symbols(), ...elf.dynamicSymbols()].filter((s) => s.type === STT_FUNC && s.value !== 0 && re.test(s.name)).map((s) => s.name))];
      if (names.length === 0) throw new AttachError(`no function of ${path} matches ${String(opts.symRe)}`);
      for (const name of names) this.#uprobe({ ...opts, symRe: undefined, sym: name }, ret);
      return;
    }
    this.#attach(opts.fnName, {
      hook: ret ? "uretprobe" : "uprobe",
      path,
      symbol: opts.sym,
      offset: opts.sym !== undefined ? opts.symOff ?? opts.addr : opts.addr,
      pid: opts.pid !== undefined && opts.pid >= 0 ? opts.pid : undefined,
    });
  }

  // ---- counts ----

  #count(...prefixes: string[]): number {
    let n = 0;
    for (const [key, list] of this.#links) if (prefixes.some((p) => key.startsWith(p))) n += list.filter((l) => !l.link.closed).length;
    return n;
  }

  /** Attached kprobes and kretprobes (including those placed on syscall tracepoints). */
  numOpenKprobes(): number {
    return this.#count("kprobe:", "kretprobe:");
  }

  /** Attached uprobes and uretprobes; USDT probes count too, as in BCC (one per probe, not per location). */
  numOpenUprobes(): number {
    return this.#count("uprobe:", "uretprobe:", "usdt:");
  }

  numOpenTracepoints(): number {
    return this.#count("tracepoint:", "raw_tracepoint:");
  }

  // ---- syscall names ----

  /** "__x64_sys_" on x86_64 (BCC's get_syscall_prefix, as a string). */
  getSyscallPrefix(): string {
    return syscallPrefix();
  }

  /** The kernel function of syscall `name`: "__x64_sys_openat" for "openat". */
  getSyscallFnname(name: string): string {
    return syscallPrefix() + name;
  }

  static getSyscallPrefix(): string {
    return syscallPrefix();
  }

  static getSyscallFnname(name: string): string {
    return syscallPrefix() + name;
  }

  /** Kernel text symbols matching `re` (from kallsyms; available_filter_functions is often unreadable). */
  static getKprobeFunctions(re: string | RegExp): string[] {
    const regex = toRegExp(re);
    const out = new Set<string>();
    for (const { name } of kallsyms().symbols("tw")) {
      if (name.startsWith("__bpf_trace") || name.startsWith("__traceiter") || name.includes(".")) continue;
      if (regex.test(name)) out.add(name);
    }
    return [...out];
  }

  static getTracepoints(): string[] {
    return listTracepoints();
  }

  static tracepointExists(category: string, event: string): boolean {
    return tracepointExists(category, event);
  }

  static supportKprobes(): boolean {
    return haveDynamicProbes("kprobe");
  }

  // ---- tables ----

  /** The table `name` (BCC's b["name"] / get_table). */
  get<K = any, V = any>(name: string): Table<K, V> {
    this.#checkOpen();
    let table = this.#tables.get(name);
    if (!table) {
      const map = this.collection.maps.get(name);
      if (!map || name.startsWith(".")) {
        const names = this.tables();
        throw new Error(`${this.source} has no table "${name}"${names.length ? ` (its tables: ${names.join(", ")})` : " (it declares none)"}`);
      }
      table = new Table(name, map, this.translation.tables.get(name), this);
      this.#tables.set(name, table);
    }
    return table as Table<K, V>;
  }

  getTable<K = any, V = any>(name: string): Table<K, V> {
    return this.get<K, V>(name);
  }

  /** Names of the program's tables, in the order the program declares them. */
  tables(): string[] {
    const declared = [...this.translation.tables.keys()].filter((n) => this.collection.maps.has(n));
    const others = [...this.collection.maps.keys()].filter((n) => !n.startsWith(".") && !this.translation.tables.has(n));
    return [...declared, ...others];
  }

  eventType(table: string): Type | undefined {
    return this.#eventTypes.get(table);
  }

  addBuffer(buffer: EventBuffer): void {
    this.#checkOpen();
    this.#buffers.push(buffer);
  }

  notify(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  /** tsbpf.h's per-CPU count of ring buffer records the program could not write. */
  lostCounter() {
    return this.collection.maps.get("tsbpf_lost");
  }

  // ---- event buffers ----

  #deliver(kind: "perf" | "ring"): number {
    let n = 0;
    for (const buffer of this.#buffers) if (buffer.kind === kind) n += buffer.deliver();
    return n;
  }

  async #poll(kind: "perf" | "ring", timeoutMs: number): Promise<number> {
    this.#checkOpen();
    if (!this.#buffers.some((b) => b.kind === kind)) {
      throw new Error(`${this.source}: no ${kind === "perf" ? "perf buffer is open (call openPerfBuffer first)" : "ring buffer is open (call openRingBuffer first)"}`);
    }
    return interruptible(async (signal) => {
      const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
      for (;;) {
        const n = this.#deliver(kind);
        if (n > 0 || Date.now() >= deadline || this.#closed || signal.aborted) return n;
        await new Promise<void>((resolveWait) => {
          const timer = deadline === Infinity ? undefined : setTimeout(done, deadline - Date.now());
          function done() {
            clearTimeout(timer);
            wakers.delete(done);
            signal.removeEventListener("abort", done);
            resolveWait();
          }
          const wakers = this.#wakers;
          wakers.add(done);
          signal.addEventListener("abort", done);
        });
      }
    });
  }

  /** Waits up to `timeoutMs` (-1: until there are records) and calls the perf buffer callbacks; resolves to how many. */
  perfBufferPoll(timeoutMs = -1): Promise<number> {
    return this.#poll("perf", timeoutMs);
  }

  /** Calls the perf buffer callbacks for the records there are now. */
  perfBufferConsume(): number {
    this.#checkOpen();
    return this.#deliver("perf");
  }

  ringBufferPoll(timeoutMs = -1): Promise<number> {
    return this.#poll("ring", timeoutMs);
  }

  ringBufferConsume(): number {
    this.#checkOpen();
    return this.#deliver("ring");
  }

  // ---- trace_pipe ----

  async #traceLine(): Promise<TraceLine | undefined> {
    return interruptible(async (signal) => {
      if (!this.#pipe) {
        this.#pipeAbort = new AbortController();
        this.#pipe = tracePipe({ signal: this.#pipeAbort.signal });
      }
      const pipe = this.#pipe;
      const close = () => this.#closePipe();
      signal.addEventListener("abort", close);
      try {
        const r = await pipe.next();
        return r.done ? undefined : r.value;
      } finally {
        signal.removeEventListener("abort", close);
      }
    });
  }

  #closePipe(): void {
    this.#pipeAbort?.abort();
    this.#pipeAbort = undefined;
    this.#pipe = undefined;
  }

  /**
   * Prints trace_pipe lines (bpf_trace_printk output) until Ctrl-C (which
   * rejects with KeyboardInterrupt) or cleanup(). `fmt` formats BCC's fields,
   * as a "{1} {5}" template over (task, pid, cpu, flags, ts, msg) or a function.
   */
  async tracePrint(fmt?: string | ((fields: TraceFields) => string)): Promise<void> {
    for (;;) {
      const line = await this.#traceLine();
      if (!line) return;
      if (fmt === undefined) {
        console.log(line.raw.trim());
        continue;
      }
      const fields = fieldsOf(line);
      console.log(typeof fmt === "function" ? fmt(fields) : fmt.replace(/\{(\d+)\}/g, (_, i: string) => String(fields[Number(i)] ?? "")));
    }
  }

  /** The next trace_pipe line as BCC's (task, pid, cpu, flags, ts, msg). */
  async traceFields(): Promise<TraceFields> {
    const line = await this.#traceLine();
    if (!line) throw new Error(`BPF(${this.source}): trace_pipe was closed`);
    return fieldsOf(line);
  }

  /** The next trace_pipe line, whole (BCC's trace_readline). */
  async traceReadline(): Promise<string> {
    const line = await this.#traceLine();
    if (!line) throw new Error(`BPF(${this.source}): trace_pipe was closed`);
    return line.raw.trim();
  }

  // ---- symbols ----

  static ksym(addr: bigint | number, opts?: SymbolOptions): string {
    return ksym(addr, opts);
  }

  static ksymname(name: string): bigint {
    return ksymname(name);
  }

  static sym(addr: bigint | number, pid: number, opts?: SymbolOptions): string {
    return sym(addr, pid, opts);
  }

  ksym(addr: bigint | number, opts?: SymbolOptions): string {
    return ksym(addr, opts);
  }

  ksymname(name: string): bigint {
    return ksymname(name);
  }

  sym(addr: bigint | number, pid: number, opts?: SymbolOptions): string {
    return sym(addr, pid, opts);
  }

  // ---- perf counters, perf_event programs, tail calls, build-id stacks (issue 16, item 8) ----

  readonly #counters = new Map<string, FD[]>();
  readonly #modules: BinarySymbols[] = [];

  /**
   * BCC's attach_perf_event(ev_type, ev_config, fn_name, sample_period, sample_freq, pid, cpu):
   * the function as a perf_event program on a sampling event, on every online CPU by default.
   */
  attachPerfEvent(opts: { evType: number; evConfig: number; fnName: string; samplePeriod?: number; sampleFreq?: number; pid?: number; cpu?: number }): void {
    const program = this.loadFunc(opts.fnName, BPF.PERF_EVENT);
    const link = attachPerfEvent(program, {
      event: perfEventOf(opts.evType, opts.evConfig),
      samplePeriod: opts.samplePeriod || undefined,
      frequency: opts.sampleFreq || undefined,
      pid: opts.pid === undefined || opts.pid < 0 ? undefined : opts.pid,
      cpus: opts.cpu === undefined || opts.cpu < 0 ? undefined : [opts.cpu],
    });
    this.#track(`perf_event:${opts.evType}:${opts.evConfig}`, opts.fnName, link);
  }

  detachPerfEvent(opts: { evType: number; evConfig: number; fnName?: string }): void {
    this.#detach(`perf_event:${opts.evType}:${opts.evConfig}`, opts.fnName, `perf event ${opts.evType}:${opts.evConfig}`);
  }

  /**
   * BCC's table.open_perf_event(type, config, pid=-1) on a BPF_PERF_ARRAY: a counting
   * perf event per online CPU, its fd stored at the CPU's index, for `.perf_read(cpu)`.
   */
  openPerfEvent(table: string, type: number, config: number | bigint, pid = -1): void {
    this.#checkOpen();
    const t = this.get<number, number>(table);
    if (t.kind !== "perf_array") throw new UsageError(`openPerfEvent: ${table} is not a BPF_PERF_ARRAY (it is ${t.kind ?? "another kind"})`);
    this.closePerfEvent(table);
    const ev = resolvePerfEvent(perfEventOf(type, Number(config)));
    const fds: FD[] = [];
    this.#counters.set(table, fds);
    for (const cpu of onlineCpus()) {
      let fd: FD;
      try {
        fd = perfEventOpen({ type: ev.type, config: ev.config }, pid, cpu);
      } catch (err) {
        const pmu = ev.pmu === "cpu" ? "the CPU's (hardware) PMU, which this machine may not have" : `the ${ev.pmu} PMU`;
        throw new NotSupportedError(`perf counter ${ev.label}`, `cannot open perf counter ${ev.label} on CPU ${cpu}: ${(err as Error).message} (it needs ${pmu})`, { cause: err });
      }
      fds.push(fd);
      t.set(cpu, fd.value);
    }
  }

  /** BCC's table.close_perf_event(): the counters openPerfEvent opened are closed and their slots cleared. */
  closePerfEvent(table: string): void {
    const fds = this.#counters.get(table);
    if (!fds) return;
    const t = this.get<number, number>(table);
    for (const cpu of onlineCpus()) t.delete(cpu);
    for (const fd of fds) fd.close();
    this.#counters.delete(table);
  }

  /** BCC's prog_array[idx] = fn.fd: `fnName`, loaded as `progType` (default: the type of the program that tail-calls), at `index`. */
  setTailCall(table: string, index: number, fnName: string, progType: number = BPF.KPROBE): Program {
    const t = this.get<number, number>(table);
    if (t.kind !== "prog") throw new UsageError(`setTailCall: ${table} is not a BPF_PROG_ARRAY (it is ${t.kind ?? "another kind"})`);
    const program = this.loadFunc(fnName, progType);
    t.set(index, program.fd.value);
    return program;
  }

  /** BCC's add_module(path): a binary whose build id `symBuildId` can resolve frames of a BPF_STACK_TRACE_BUILDID table to. */
  addModule(path: string): string | undefined {
    const bin = binarySymbols(path);
    if (!bin) throw new UsageError(`addModule: cannot read ${path} as an ELF file`);
    this.#modules.push(bin);
    return bin.buildId;
  }

  /** The frames of a BPF_STACK_TRACE_BUILDID table's stack: build id and file offset each (or the bare ip when the kernel could not read the id). */
  walkBuildId(table: string, stackId: number): BuildIdFrame[] {
    const t = this.get(table);
    if (t.kind !== "stacktrace_buildid") throw new UsageError(`walkBuildId: ${table} is not a BPF_STACK_TRACE_BUILDID table`);
    return readBuildIdStack(t.map, stackId);
  }

  /** A build-id frame as "name+0xoff" from a module added with addModule (by its build id), else "[unknown]". */
  symBuildId(frame: BuildIdFrame, opts: { showOffset?: boolean; showModule?: boolean } = {}): string {
    if (frame.status !== "valid") return "[unknown]";
    const bin = this.#modules.find((m) => m.buildId === frame.buildId);
    const hit = bin?.lookupFileOffset(Number(frame.offset));
    if (!bin || !hit) return "[unknown]";
    let s = hit.name;
    if (opts.showOffset) s += `+0x${hit.offset.toString(16)}`;
    if (opts.showModule) s += ` [${basename(bin.path)}]`;
    return s;
  }

  // ---- the end ----

  /** Detaches everything and frees the programs and tables (also done on exit). Idempotent. */
  cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closePipe();
    for (const wake of [...this.#wakers]) wake();
    for (const buffer of this.#buffers.splice(0)) buffer.close();
    for (const fds of this.#counters.values()) for (const fd of fds) fd.close();
    this.#counters.clear();
    for (const list of this.#links.values()) for (const { link } of list) link.close();
    this.#links.clear();
    for (const program of this.#programs.values()) program.close();
    this.#programs.clear();
    this.collection.close();
    this.#releaseInterrupts();
  }

  close(): void {
    this.cleanup();
  }

  [Symbol.dispose](): void {
    this.cleanup();
  }

  get closed(): boolean {
    return this.#closed;
  }
}

/**
 * Translates and compiles a BCC program as BPF.load() does on a kernel with
 * (or without) kprobes, for a machine that has no clang (a test VM): put the
 * object in a directory as `${key}.o` and point $TSBPF_BCC_OBJECTS at it there;
 * BPF.load() then uses it instead of compiling the same translation.
 */
export async function prebuildBcc(
  source: BpfSource,
  opts: BpfOptions & { kprobes: boolean; /** The target's `uname -r`, for LINUX_VERSION_CODE (default: this kernel's). */ kernelRelease?: string },
): Promise<{ key: string; bytes: Uint8Array }> {
  const { key, bytes } = await build(source, opts, false);
  return { key, bytes };
}

async function build(source: BpfSource, opts: BpfOptions & { kprobes: boolean; kernelRelease?: string }, usePrebuilt = true) {
  let text: string;
  let display: string;
  let lineFile: string;
  let includeDir: string;
  if ("srcFile" in source) {
    lineFile = resolve(source.srcFile);
    text = readFileSync(lineFile, "utf8");
    display = source.srcFile;
    includeDir = dirname(lineFile);
  } else {
    text = source.text;
    display = source.name ?? "bpf_program.c";
    // The #line directives name a copy of the text, so BTF line info (and the
    // verifier's messages) carry the user's source lines.
    lineFile = await cacheFile(["bcc-src", sha256(text).slice(0, 24), basename(display)], text);
    includeDir = process.cwd();
  }
  const prefix = syscallPrefix();
  const translateOptions = {
    file: lineFile,
    displayName: display,
    kprobes: opts.kprobes,
    syscallWrappers: prefix !== "sys_",
    syscallPrefix: prefix,
    tracepointFormat: readFormat,
    cflags: opts.cflags,
    includeDirs: [includeDir],
    ...(opts.kernelRelease ? { kernelVersion: kernelVersionCode(opts.kernelRelease) } : {}),
  };
  // The key is the dialect's translation, before the kernel-read pass: that pass needs
  // clang, and a pre-compiled object (TSBPF_BCC_OBJECTS, e.g. in a guest without clang)
  // must be found without it. Where the text's copy lives differs between machines; the
  // translation does not.
  let translation: Translation = translate(text, translateOptions);
  const key = sha256(JSON.stringify([translation.code.split(lineFile).join("<source>"), opts.cflags ?? []])).slice(0, 32);
  const prebuilt = process.env.TSBPF_BCC_OBJECTS ? join(process.env.TSBPF_BCC_OBJECTS, `${key}.o`) : undefined;
  let bytes: Uint8Array;
  if (usePrebuilt && prebuilt && existsSync(prebuilt)) {
    bytes = new Uint8Array(readFileSync(prebuilt));
  } else {
    translation = await translateBcc(text, translateOptions);
    try {
      const name = `${basename(display).replace(/\.c$/, "")}.bcc.c`;
      bytes = (await compile({ text: translation.code, name }, { cflags: opts.cflags, includeDirs: [includeDir], prefixHeaders: PRELUDE_HEADERS })).bytes;
    } catch (err) {
      throw err instanceof CompileError ? renameInCompileError(err, lineFile, display) : err;
    }
  }
  return { translation, display, key, bytes };
}

/** BCC's (ev_type, ev_config) as a perf event: PERF_TYPE_HARDWARE 0, SOFTWARE 1, else a PMU by number. */
function perfEventOf(type: number, config: number): PerfEventSpec {
  if (type === 0) return { type: "hardware", config };
  if (type === 1) return { type: "software", config };
  return { type: "pmu", pmu: type, config };
}

function fieldsOf(line: TraceLine): TraceFields {
  return [line.task.trim(), line.pid, line.cpu, line.flags, line.timestamp, line.message];
}

/** clang's messages name the user's program as they know it. */
function renameInCompileError(err: CompileError, from: string, to: string): CompileError {
  const fix = (s: string) => s.split(from).join(to);
  const diagnostics: Diagnostic[] = err.diagnostics.map((d) => ({ ...d, file: d.file === from ? to : d.file, message: fix(d.message) }));
  return new CompileError({ source: to, stderr: fix(err.stderr), diagnostics, exitCode: err.exitCode });
}
