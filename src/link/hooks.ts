// The hook registry: everything tsbpf knows about where programs attach, in one
// place (libbpf's section_defs[] in libbpf.c, cilium/ebpf's link/ package).
//
//   sectionDefs   ELF section prefix -> program type, expected attach type, hook kind
//   hooks         hook kind -> program types it takes, how its target is written,
//                 how to attach, what the kernel must have, and the fallback
//   attachHook    the one attach path: Program.attach()/attachX(), the BCC facade
//                 and tsbpf trace all come through it
//
// The packet hooks (xdp, tc, socket, cgroup) take their target at attach time (an
// interface, a socket, a cgroup path): their sections name the hook, not the target.
// Hooks that are "attached by other means" (perf_event, sockmaps, lwt...) have
// section entries here and say what they attach to.
import { AttachType, ProgType } from "../internal/sys/constants.ts";
import { haveDynamicProbes, haveKernelBtf } from "../features/index.ts";
import { tracefsDir, tracepointExists } from "../tracing/tracefs.ts";
import { AttachError } from "./errors.ts";
import { attachKprobe } from "./kprobe.ts";
import type { AttachableProgram, Link } from "./link.ts";
import { syscallOfEntry, syscallPrefix } from "./syscall.ts";
import { attachRawTracepoint, attachTracepoint, attachTracing, splitTracepoint } from "./tracepoint.ts";
import { attachUprobe } from "./uprobe.ts";
import { attachUsdt } from "./usdt.ts";
import { attachXdp, type XdpMode } from "./xdp.ts";
import { attachTc, type TcDirection } from "./tc.ts";
import { attachSocketFilter } from "./socket.ts";
import { attachCgroup } from "./cgroup.ts";

/** How a program is attached: a hook kind of the registry ("none": attached by other means). */
export type HookKind =
  | "tracepoint" // tracepoint/CATEGORY/NAME
  | "raw_tracepoint" // raw_tracepoint/NAME
  | "tracing" // tp_btf/NAME, fentry/FN, fexit/FN, fmod_ret/FN, lsm/HOOK: attach_btf_id at load
  | "iter" // iter/NAME
  | "kprobe" // kprobe/FN[+OFFSET]
  | "kretprobe"
  | "ksyscall" // ksyscall/NAME: the kprobe on the syscall's wrapper function
  | "kretsyscall"
  | "uprobe" // uprobe/PATH:SYMBOL[+OFFSET] or uprobe (target given at attach)
  | "uretprobe"
  | "usdt" // usdt/BINARY:PROVIDER:NAME or usdt (target given at attach): libbpf's usdt.bpf.h protocol
  | "xdp" // xdp: an interface, given at attach
  | "tc" // tc, tc/ingress, tcx/egress, classifier: an interface and a direction
  | "socket" // socket: an open socket's fd (SO_ATTACH_BPF)
  | "cgroup" // cgroup_skb/ingress, cgroup/connect4...: a cgroup path
  | "none"; // attached by other means (xdp, socket, tc, cgroup, perf_event...)

/** The former name, kept for the ELF reader's ProgramSpec.attach. */
export type AttachKind = HookKind;

/** Where a program goes: a hook kind and its target. */
export type HookTarget =
  | { hook: "tracepoint"; category: string; event: string }
  | { hook: "raw_tracepoint"; event: string }
  | { hook: "tracing"; section: string }
  | { hook: "iter"; section: string }
  | KprobeTarget<"kprobe">
  | KprobeTarget<"kretprobe">
  | KsyscallTarget<"ksyscall">
  | KsyscallTarget<"kretsyscall">
  | UprobeTarget<"uprobe">
  | UprobeTarget<"uretprobe">
  | UsdtTarget
  | XdpTarget
  | TcTarget
  | { hook: "socket"; fd: number }
  | CgroupTarget
  | { hook: "none"; section: string };

export interface XdpTarget {
  hook: "xdp";
  /** Interface name or ifindex. */
  interface: string | number;
  /** Default auto: native, else generic (the link says which). */
  mode?: XdpMode | "auto";
  method?: "auto" | "link" | "netlink";
}

export interface TcTarget {
  hook: "tc";
  interface: string | number;
  /** Default: from the section (tc/ingress, tcx/egress), else ingress. */
  direction?: TcDirection;
  method?: "auto" | "tcx" | "netlink";
  priority?: number;
}

export interface CgroupTarget {
  hook: "cgroup";
  /** The cgroup's directory, absolute or under /sys/fs/cgroup. */
  path: string;
  /** BPF_CGROUP_* (AttachType); default: the program's expected attach type, from its section. */
  attachType?: number;
  method?: "auto" | "link" | "attach";
}

/** What the packet hooks read of a Program beyond AttachableProgram (its section). */
type WithSpec = AttachableProgram & { spec?: { section?: string; expectedAttachType?: number } };

function directionOf(prog: AttachableProgram, t: TcTarget): TcDirection {
  if (t.direction) return t.direction;
  return /(^|\/)egress$/.test((prog as WithSpec).spec?.section ?? "") ? "egress" : "ingress";
}

export interface KprobeTarget<H extends "kprobe" | "kretprobe" = "kprobe" | "kretprobe"> {
  hook: H;
  symbol: string;
  offset?: number;
}

export interface KsyscallTarget<H extends "ksyscall" | "kretsyscall" = "ksyscall" | "kretsyscall"> {
  hook: H;
  syscall: string;
}

export interface UprobeTarget<H extends "uprobe" | "uretprobe" = "uprobe" | "uretprobe"> {
  hook: H;
  /** A path, a library name ("c") or a program on PATH (internal/binaries.ts). */
  path: string;
  symbol?: string;
  /** File offset, or with `symbol`, offset from it. */
  offset?: number;
  /** Only this process. */
  pid?: number;
}

export interface UsdtTarget {
  hook: "usdt";
  /** The binary or library (a path, a program on PATH, a library name); "" with `pid`: the process's executable. */
  path: string;
  provider: string;
  name: string;
  /** Only this process. */
  pid?: number;
  /** What bpf_usdt_cookie() returns. */
  cookie?: bigint;
}

type TargetOf<K extends HookKind> = Extract<HookTarget, { hook: K }>;

/** What is missing for a hook on this kernel. */
export interface Missing {
  feature: string;
  reason: string;
}

export interface HookDef<K extends HookKind = HookKind> {
  kind: K;
  /** Program types that attach here. */
  progTypes: readonly number[];
  /** "a tracepoint", for messages. */
  label: string;
  /** The target as a section name writes it (after the prefix), for messages. */
  syntax: string;
  /** The target from a section name's tail; undefined when it names none (given at attach). */
  parse(text: string, section: string): TargetOf<K> | undefined;
  /** Attaches; the registry has checked the program type and `requires` first. */
  attach?(prog: AttachableProgram, target: TargetOf<K>): Link;
  /** What the kernel must have, read from features/: undefined when it has it. */
  requires?(): Missing | undefined;
  /** Another hook that sees the same thing when this one is missing (kprobe on a syscall -> its tracepoint). */
  fallback?(target: TargetOf<K>): HookTarget | undefined;
  /** How the mechanism itself falls back, for the reader (it happens inside attach). */
  mechanism?: string;
}


function tracefsMissing(): Missing | undefined {
  try {
    tracefsDir();
    return undefined;
  } catch (err) {
    return { feature: "tracefs", reason: (err as Error).message };
  }
}

function kprobesMissing(): Missing | undefined {
  return haveDynamicProbes("kprobe")
    ? undefined
    : {
        feature: "kprobes",
        reason: "this kernel has no kprobes (CONFIG_KPROBES is not set: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs)",
      };
}

function syscallTracepoint(syscall: string | undefined, ret: boolean): HookTarget | undefined {
  if (!syscall) return undefined;
  const event = `${ret ? "sys_exit_" : "sys_enter_"}${syscall}`;
  return tracepointExists("syscalls", event) ? { hook: "tracepoint", category: "syscalls", event } : undefined;
}

function parseKprobe<K extends "kprobe" | "kretprobe">(hook: K) {
  return (text: string): KprobeTarget<K> | undefined => {
    if (!text) return undefined;
    const [symbol, offset] = text.split("+");
    return { hook, symbol: symbol!, offset: offset ? Number(offset) : 0 };
  };
}

function parseUprobe<K extends "uprobe" | "uretprobe">(hook: K) {
  return (text: string, section: string): UprobeTarget<K> | undefined => {
    if (!text) return undefined;
    const m = /^(.+):([^:+]+)(?:\+(\d+|0x[0-9a-f]+))?$/i.exec(text);
    if (!m) {
      throw new AttachError(`section "${section}": cannot read "${text}" as PATH:SYMBOL[+OFFSET]`, { hook, target: text, reason: "not PATH:SYMBOL" });
    }
    return { hook, path: m[1]!, symbol: m[2]!, offset: m[3] ? Number(m[3]) : undefined };
  };
}

// The generic factories build an entry per kind; TypeScript cannot narrow TargetOf<K> inside them.
const kprobeDef = <K extends "kprobe" | "kretprobe">(kind: K): HookDef<K> => ({
  kind,
  progTypes: [ProgType.KPROBE],
  label: `a ${kind}`,
  syntax: "FUNCTION[+OFFSET]",
  parse: parseKprobe(kind),
  attach: (prog: AttachableProgram, t: KprobeTarget) => attachKprobe(prog, { symbol: t.symbol, offset: t.offset, retprobe: kind === "kretprobe" }),
  requires: kprobesMissing,
  fallback: (t: KprobeTarget) => syscallTracepoint(syscallOfEntry(t.symbol), kind === "kretprobe"),
  mechanism: "the kprobe PMU of perf_event_open, else tracefs kprobe_events",
}) as unknown as HookDef<K>;

const ksyscallDef = <K extends "ksyscall" | "kretsyscall">(kind: K): HookDef<K> => ({
  kind,
  progTypes: [ProgType.KPROBE],
  label: `a ${kind}`,
  syntax: "SYSCALL",
  parse: (text: string): KsyscallTarget<K> | undefined => (text ? { hook: kind, syscall: text } : undefined),
  attach: (prog: AttachableProgram, t: KsyscallTarget) => attachKprobe(prog, { symbol: `${syscallPrefix()}${t.syscall}`, retprobe: kind === "kretsyscall" }),
  requires: kprobesMissing,
  fallback: (t: KsyscallTarget) => syscallTracepoint(t.syscall, kind === "kretsyscall"),
  mechanism: "a kprobe on the syscall's wrapper function (__x64_sys_NAME)",
}) as unknown as HookDef<K>;

const uprobeDef = <K extends "uprobe" | "uretprobe">(kind: K): HookDef<K> => ({
  kind,
  progTypes: [ProgType.KPROBE],
  label: `a ${kind}`,
  syntax: "PATH:SYMBOL[+OFFSET]",
  parse: parseUprobe(kind),
  attach: (prog: AttachableProgram, t: UprobeTarget) =>
    attachUprobe(prog, { path: t.path, symbol: t.symbol, offset: t.offset, pid: t.pid, retprobe: kind === "uretprobe" }),
  requires: () =>
    haveDynamicProbes("uprobe") ? undefined : { feature: "uprobes", reason: "this kernel has no uprobes (CONFIG_UPROBE_EVENTS is not set)" },
  mechanism: "the uprobe PMU of perf_event_open, else tracefs uprobe_events",
}) as unknown as HookDef<K>;

function parseUsdt(text: string, section: string): UsdtTarget | undefined {
  if (!text) return undefined;
  // libbpf's usdt/PATH:PROVIDER:NAME; the path is everything before the last two fields.
  const m = /^(.+):([^:]+):([^:]+)$/.exec(text);
  if (!m) throw new AttachError(`section "${section}": cannot read "${text}" as BINARY:PROVIDER:NAME`, { hook: "usdt", target: text, reason: "not BINARY:PROVIDER:NAME" });
  return { hook: "usdt", path: m[1]!, provider: m[2]!, name: m[3]! };
}

/** Every hook kind, by name. */
export const hooks: { readonly [K in HookKind]: HookDef<K> } = {
  tracepoint: {
    kind: "tracepoint",
    progTypes: [ProgType.TRACEPOINT],
    label: "a tracepoint",
    syntax: "CATEGORY/NAME",
    parse: (text) => {
      if (!text) return undefined;
      const [category, event] = splitTracepoint(text);
      return { hook: "tracepoint", category, event };
    },
    attach: (prog, t) => attachTracepoint(prog, t.category, t.event),
    requires: tracefsMissing,
    mechanism: "a perf event of the tracepoint PMU, then BPF_LINK_CREATE (5.15+) or PERF_EVENT_IOC_SET_BPF",
  },
  raw_tracepoint: {
    kind: "raw_tracepoint",
    progTypes: [ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE],
    label: "a raw tracepoint",
    syntax: "NAME",
    parse: (text) => (text ? { hook: "raw_tracepoint", event: text } : undefined),
    attach: (prog, t) => attachRawTracepoint(prog, t.event),
  },
  tracing: {
    kind: "tracing",
    progTypes: [ProgType.TRACING, ProgType.LSM],
    label: "a BTF tracing hook (tp_btf, fentry, fexit, fmod_ret, lsm)",
    syntax: "NAME (resolved in the kernel's BTF at load)",
    parse: (_text, section) => ({ hook: "tracing", section }),
    attach: (prog, t) => attachTracing(prog, t.section),
    requires: () => (haveKernelBtf() ? undefined : { feature: "kernel BTF", reason: "the kernel has no BTF (/sys/kernel/btf/vmlinux)" }),
  },
  iter: {
    kind: "iter",
    progTypes: [ProgType.TRACING],
    label: "a BPF iterator",
    syntax: "NAME",
    parse: (_text, section) => ({ hook: "iter", section }),
  },
  kprobe: kprobeDef("kprobe"),
  kretprobe: kprobeDef("kretprobe"),
  ksyscall: ksyscallDef("ksyscall"),
  kretsyscall: ksyscallDef("kretsyscall"),
  uprobe: uprobeDef("uprobe"),
  uretprobe: uprobeDef("uretprobe"),
  usdt: {
    kind: "usdt",
    progTypes: [ProgType.KPROBE],
    label: "a USDT probe",
    syntax: "BINARY:PROVIDER:NAME",
    parse: parseUsdt,
    attach: (prog, t) => attachUsdt(prog, { binary: t.path, provider: t.provider, name: t.name, pid: t.pid, cookie: t.cookie }),
    requires: () =>
      haveDynamicProbes("uprobe") ? undefined : { feature: "uprobes", reason: "this kernel has no uprobes (CONFIG_UPROBE_EVENTS is not set)" },
    mechanism: "a uprobe per probe location (semaphore as ref_ctr_offset) whose bpf_link carries the location's spec id as BPF cookie (5.15+)",
  },
  xdp: {
    kind: "xdp",
    progTypes: [ProgType.XDP],
    label: "an XDP hook",
    syntax: "(the interface is given at attach: attachTo({ hook: \"xdp\", interface }))",
    parse: () => undefined,
    attach: (prog, t) => attachXdp(prog, { interface: t.interface, mode: t.mode, method: t.method }),
    mechanism: "BPF_LINK_CREATE (5.9+), else netlink RTM_SETLINK IFLA_XDP; native mode, else generic",
  },
  tc: {
    kind: "tc",
    progTypes: [ProgType.SCHED_CLS],
    label: "a tc hook",
    syntax: "ingress|egress (the interface is given at attach)",
    parse: () => undefined,
    attach: (prog, t) => attachTc(prog, { interface: t.interface, direction: directionOf(prog, t), method: t.method, priority: t.priority }),
    mechanism: "a tcx link (6.6+), else a clsact qdisc and a direct-action bpf filter through netlink",
  },
  socket: {
    kind: "socket",
    progTypes: [ProgType.SOCKET_FILTER],
    label: "a socket filter",
    syntax: "(the socket is given at attach: attachTo({ hook: \"socket\", fd }), or openRawSocket(prog, dev))",
    parse: () => undefined,
    attach: (prog, t) => attachSocketFilter(prog, t.fd),
    mechanism: "setsockopt SO_ATTACH_BPF",
  },
  cgroup: {
    kind: "cgroup",
    progTypes: [
      ProgType.CGROUP_SKB,
      ProgType.CGROUP_SOCK,
      ProgType.CGROUP_SOCK_ADDR,
      ProgType.CGROUP_SYSCTL,
      ProgType.CGROUP_DEVICE,
      ProgType.CGROUP_SOCKOPT,
      ProgType.SOCK_OPS,
    ],
    label: "a cgroup hook",
    syntax: "(the cgroup path is given at attach: attachTo({ hook: \"cgroup\", path }))",
    parse: () => undefined,
    attach: (prog, t) => {
      const spec = (prog as WithSpec).spec;
      const attachType = t.attachType ?? spec?.expectedAttachType;
      // CGROUP_INET_INGRESS is 0, which is also what a section with no attach type leaves:
      // only cgroup_skb/ingress means it.
      const namesIngress = /^cgroup_skb\/ingress$/.test(spec?.section ?? "");
      if (attachType === undefined || (attachType === 0 && t.attachType === undefined && !namesIngress)) {
        throw new AttachError(`program ${prog.name}: its section names no cgroup attach type (cgroup_skb/ingress, cgroup/connect4...); give attachType`, {
          hook: "cgroup",
          target: t.path,
          reason: "no attach type",
        });
      }
      return attachCgroup(prog, { path: t.path, attachType, method: t.method });
    },
    mechanism: "BPF_LINK_CREATE on the cgroup's directory (5.7+), else BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI",
  },
  none: {
    kind: "none",
    progTypes: [],
    label: "a hook attached by other means",
    syntax: "",
    parse: (_text, section) => ({ hook: "none", section }),
  },
};

/** Hooks whose target is never in the section (an interface, a socket, a cgroup): attachAll() leaves them alone. */
export function targetGivenAtAttach(kind: HookKind): boolean {
  return kind === "xdp" || kind === "tc" || kind === "socket" || kind === "cgroup";
}

/** The registry's entry for a hook kind. */
export function hookDef<K extends HookKind>(kind: K): HookDef<K> {
  return hooks[kind] as HookDef<K>;
}

/** "tracepoint:syscalls:sys_enter_openat", "uprobe:/bin/bash:readline": a target for messages. */
export function describeTarget(t: HookTarget): string {
  switch (t.hook) {
    case "tracepoint":
      return `tracepoint:${t.category}:${t.event}`;
    case "raw_tracepoint":
      return `raw_tracepoint:${t.event}`;
    case "kprobe":
    case "kretprobe":
      return `${t.hook}:${t.symbol}${t.offset ? `+${t.offset}` : ""}`;
    case "ksyscall":
    case "kretsyscall":
      return `${t.hook}:${t.syscall}`;
    case "uprobe":
    case "uretprobe":
      return `${t.hook}:${t.path}:${t.symbol ?? `0x${(t.offset ?? 0).toString(16)}`}`;
    case "usdt":
      return `usdt:${t.path || `pid ${t.pid}`}:${t.provider}:${t.name}`;
    case "xdp":
      return `xdp:${t.interface}`;
    case "tc":
      return `tc:${t.interface}${t.direction ? `:${t.direction}` : ""}`;
    case "socket":
      return `socket:fd ${t.fd}`;
    case "cgroup":
      return `cgroup:${t.path}`;
    default:
      return t.section;
  }
}

/** The fallback the registry names for a target (kprobe on a syscall -> its tracepoint), or undefined. */
export function fallbackFor(t: HookTarget): HookTarget | undefined {
  const def = hooks[t.hook] as HookDef;
  return def.fallback?.(t as never);
}

/** Whether the kernel has what a hook needs; undefined when it does, else what is missing. */
export function missingFor(kind: HookKind): Missing | undefined {
  return (hooks[kind] as HookDef).requires?.();
}

/**
 * The one attach path. Checks the program type against the hook, what the
 * kernel must have (an AttachError naming the fallback when it lacks it), then
 * attaches.
 */
export function attachHook(prog: AttachableProgram & { readonly type: number }, t: HookTarget): Link {
  const def = hooks[t.hook] as HookDef;
  const where = describeTarget(t);
  if (!def.attach) {
    const means = t.hook === "none" ? sectionDef(t.section)?.means : undefined;
    throw new AttachError(
      t.hook === "iter"
        ? `program ${prog.name}: BPF iterators are not supported yet`
        : `program ${prog.name} (section "${where}") is not attached to a tracing hook; attach it to ${means ?? "where such programs go (a socket, an interface, a cgroup)"} with the fd in .fd`,
      { hook: t.hook, target: where, reason: t.hook === "iter" ? "iterators are not supported" : "attached by other means" },
    );
  }
  if (!def.progTypes.includes(prog.type)) {
    throw new AttachError(`program ${prog.name} is a ${progTypeName(prog.type)} program, not ${def.label} program`, {
      hook: t.hook,
      target: where,
      reason: `a ${progTypeName(prog.type)} program cannot attach to ${def.label}`,
    });
  }
  const missing = def.requires?.();
  if (missing) {
    const alt = def.fallback?.(t as never);
    const ret = t.hook === "kretprobe" || t.hook === "kretsyscall";
    const suggestion = alt
      ? `use the ${describeTarget(alt).replace(/:/, " ")} instead (SEC("${sectionOf(alt)}")), which sees the same ${ret ? "return value" : "arguments"}`
      : `use a tracepoint, a raw tracepoint or tp_btf program on this kernel, or run on a kernel with ${missing.feature}`;
    throw new AttachError(`cannot attach ${t.hook} to ${where.slice(where.indexOf(":") + 1)}: ${missing.reason}. ${suggestion[0]!.toUpperCase()}${suggestion.slice(1)}.`, {
      hook: t.hook,
      target: where,
      reason: missing.reason,
      suggestion,
    });
  }
  return def.attach(prog, t as never);
}

/** The section name that would attach a program to `t`, for suggestions. */
export function sectionOf(t: HookTarget): string {
  switch (t.hook) {
    case "tracepoint":
      return `tracepoint/${t.category}/${t.event}`;
    case "raw_tracepoint":
      return `raw_tracepoint/${t.event}`;
    case "kprobe":
    case "kretprobe":
      return `${t.hook}/${t.symbol}${t.offset ? `+${t.offset}` : ""}`;
    case "ksyscall":
    case "kretsyscall":
      return `${t.hook}/${t.syscall}`;
    case "uprobe":
    case "uretprobe":
      return `${t.hook}/${t.path}:${t.symbol ?? ""}`;
    case "usdt":
      return `usdt/${t.path}:${t.provider}:${t.name}`;
    case "xdp":
      return "xdp";
    case "tc":
      return t.direction ? `tc/${t.direction}` : "tc";
    case "socket":
      return "socket";
    case "cgroup":
      return "cgroup_skb/ingress";
    default:
      return t.section;
  }
}

const progTypeNames = Object.fromEntries(Object.entries(ProgType).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

export function progTypeName(type: number): string {
  return progTypeNames[type] ?? `type ${type}`;
}

// ---- ELF section names ----

export interface SectionDef {
  prefix: string;
  progType: number;
  attachType?: number;
  /** The hook kind (the registry's `hooks`). */
  attach: HookKind;
  /** For hooks attached by other means: to what. */
  means?: string;
  /** Sleepable programs (".s" sections) get BPF_F_SLEEPABLE. */
  sleepable?: boolean;
  /** Kernel BTF entity the target name refers to, for "tracing" programs. */
  btfTarget?: { prefix: string; kind: "func" | "typedef" };
}

const P = ProgType;
const A = AttachType;
const fn = { prefix: "", kind: "func" } as const;

// Longest prefixes first where one is a prefix of another ("kprobe.multi/" before "kprobe/").
export const sectionDefs: readonly SectionDef[] = [
  { prefix: "socket", progType: P.SOCKET_FILTER, attach: "socket" },
  { prefix: "kprobe/", progType: P.KPROBE, attach: "kprobe" },
  { prefix: "kretprobe/", progType: P.KPROBE, attach: "kretprobe" },
  { prefix: "ksyscall/", progType: P.KPROBE, attach: "ksyscall" },
  { prefix: "kretsyscall/", progType: P.KPROBE, attach: "kretsyscall" },
  { prefix: "uprobe.s/", progType: P.KPROBE, attach: "uprobe", sleepable: true },
  { prefix: "uretprobe.s/", progType: P.KPROBE, attach: "uretprobe", sleepable: true },
  { prefix: "uprobe/", progType: P.KPROBE, attach: "uprobe" },
  { prefix: "uretprobe/", progType: P.KPROBE, attach: "uretprobe" },
  { prefix: "uprobe", progType: P.KPROBE, attach: "uprobe" },
  { prefix: "usdt.s/", progType: P.KPROBE, attach: "usdt", sleepable: true },
  { prefix: "usdt/", progType: P.KPROBE, attach: "usdt" },
  { prefix: "uretprobe", progType: P.KPROBE, attach: "uretprobe" },
  { prefix: "tcx/ingress", progType: P.SCHED_CLS, attachType: A.TCX_INGRESS, attach: "tc" },
  { prefix: "tcx/egress", progType: P.SCHED_CLS, attachType: A.TCX_EGRESS, attach: "tc" },
  { prefix: "tc", progType: P.SCHED_CLS, attach: "tc" },
  { prefix: "classifier", progType: P.SCHED_CLS, attach: "tc" },
  { prefix: "action", progType: P.SCHED_ACT, attach: "none", means: "a tc action" },
  { prefix: "tracepoint/", progType: P.TRACEPOINT, attach: "tracepoint" },
  { prefix: "tp/", progType: P.TRACEPOINT, attach: "tracepoint" },
  { prefix: "raw_tracepoint.w/", progType: P.RAW_TRACEPOINT_WRITABLE, attach: "raw_tracepoint" },
  { prefix: "raw_tp.w/", progType: P.RAW_TRACEPOINT_WRITABLE, attach: "raw_tracepoint" },
  { prefix: "raw_tracepoint/", progType: P.RAW_TRACEPOINT, attach: "raw_tracepoint" },
  { prefix: "raw_tp/", progType: P.RAW_TRACEPOINT, attach: "raw_tracepoint" },
  {
    prefix: "tp_btf/",
    progType: P.TRACING,
    attachType: A.TRACE_RAW_TP,
    attach: "tracing",
    btfTarget: { prefix: "btf_trace_", kind: "typedef" },
  },
  { prefix: "fentry.s/", progType: P.TRACING, attachType: A.TRACE_FENTRY, attach: "tracing", sleepable: true, btfTarget: fn },
  { prefix: "fentry/", progType: P.TRACING, attachType: A.TRACE_FENTRY, attach: "tracing", btfTarget: fn },
  { prefix: "fexit.s/", progType: P.TRACING, attachType: A.TRACE_FEXIT, attach: "tracing", sleepable: true, btfTarget: fn },
  { prefix: "fexit/", progType: P.TRACING, attachType: A.TRACE_FEXIT, attach: "tracing", btfTarget: fn },
  { prefix: "fmod_ret.s/", progType: P.TRACING, attachType: A.MODIFY_RETURN, attach: "tracing", sleepable: true, btfTarget: fn },
  { prefix: "fmod_ret/", progType: P.TRACING, attachType: A.MODIFY_RETURN, attach: "tracing", btfTarget: fn },
  {
    prefix: "lsm.s/",
    progType: P.LSM,
    attachType: A.LSM_MAC,
    attach: "tracing",
    sleepable: true,
    btfTarget: { prefix: "bpf_lsm_", kind: "func" },
  },
  { prefix: "lsm/", progType: P.LSM, attachType: A.LSM_MAC, attach: "tracing", btfTarget: { prefix: "bpf_lsm_", kind: "func" } },
  {
    prefix: "iter.s/",
    progType: P.TRACING,
    attachType: A.TRACE_ITER,
    attach: "iter",
    sleepable: true,
    btfTarget: { prefix: "bpf_iter_", kind: "func" },
  },
  { prefix: "iter/", progType: P.TRACING, attachType: A.TRACE_ITER, attach: "iter", btfTarget: { prefix: "bpf_iter_", kind: "func" } },
  { prefix: "syscall", progType: P.SYSCALL, attach: "none", means: "BPF_PROG_RUN (it is called, not attached)", sleepable: true },
  { prefix: "xdp.frags/devmap", progType: P.XDP, attachType: A.XDP_DEVMAP, attach: "none", means: "a devmap entry" },
  { prefix: "xdp/devmap", progType: P.XDP, attachType: A.XDP_DEVMAP, attach: "none", means: "a devmap entry" },
  { prefix: "xdp.frags/cpumap", progType: P.XDP, attachType: A.XDP_CPUMAP, attach: "none", means: "a cpumap entry" },
  { prefix: "xdp/cpumap", progType: P.XDP, attachType: A.XDP_CPUMAP, attach: "none", means: "a cpumap entry" },
  { prefix: "xdp.frags", progType: P.XDP, attachType: A.XDP, attach: "xdp" },
  { prefix: "xdp", progType: P.XDP, attachType: A.XDP, attach: "xdp" },
  { prefix: "perf_event", progType: P.PERF_EVENT, attach: "none", means: "a perf event (perf_event_open: a timer, a counter): program.attachPerfEvent({ event, frequency })" },
  { prefix: "lwt_in", progType: P.LWT_IN, attach: "none", means: "a route (lightweight tunnel)" },
  { prefix: "lwt_out", progType: P.LWT_OUT, attach: "none", means: "a route (lightweight tunnel)" },
  { prefix: "lwt_xmit", progType: P.LWT_XMIT, attach: "none", means: "a route (lightweight tunnel)" },
  { prefix: "lwt_seg6local", progType: P.LWT_SEG6LOCAL, attach: "none", means: "a route (lightweight tunnel)" },
  { prefix: "sockops", progType: P.SOCK_OPS, attachType: A.CGROUP_SOCK_OPS, attach: "cgroup" },
  { prefix: "sk_skb/stream_parser", progType: P.SK_SKB, attachType: A.SK_SKB_STREAM_PARSER, attach: "none", means: "a sockmap" },
  { prefix: "sk_skb/stream_verdict", progType: P.SK_SKB, attachType: A.SK_SKB_STREAM_VERDICT, attach: "none", means: "a sockmap" },
  { prefix: "sk_skb", progType: P.SK_SKB, attach: "none", means: "a sockmap" },
  { prefix: "sk_msg", progType: P.SK_MSG, attachType: A.SK_MSG_VERDICT, attach: "none", means: "a sockmap" },
  { prefix: "sk_lookup", progType: P.SK_LOOKUP, attachType: A.SK_LOOKUP, attach: "none", means: "a network namespace" },
  { prefix: "flow_dissector", progType: P.FLOW_DISSECTOR, attachType: A.FLOW_DISSECTOR, attach: "none", means: "a network namespace" },
  { prefix: "cgroup_skb/ingress", progType: P.CGROUP_SKB, attachType: A.CGROUP_INET_INGRESS, attach: "cgroup" },
  { prefix: "cgroup_skb/egress", progType: P.CGROUP_SKB, attachType: A.CGROUP_INET_EGRESS, attach: "cgroup" },
  { prefix: "cgroup/skb", progType: P.CGROUP_SKB, attach: "cgroup" },
  { prefix: "cgroup/sock_create", progType: P.CGROUP_SOCK, attachType: A.CGROUP_INET_SOCK_CREATE, attach: "cgroup" },
  { prefix: "cgroup/sock_release", progType: P.CGROUP_SOCK, attachType: A.CGROUP_INET_SOCK_RELEASE, attach: "cgroup" },
  { prefix: "cgroup/sock", progType: P.CGROUP_SOCK, attachType: A.CGROUP_INET_SOCK_CREATE, attach: "cgroup" },
  { prefix: "cgroup/dev", progType: P.CGROUP_DEVICE, attachType: A.CGROUP_DEVICE, attach: "cgroup" },
  { prefix: "cgroup/sysctl", progType: P.CGROUP_SYSCTL, attachType: A.CGROUP_SYSCTL, attach: "cgroup" },
  { prefix: "cgroup/connect4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET4_CONNECT, attach: "cgroup" },
  { prefix: "cgroup/connect6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET6_CONNECT, attach: "cgroup" },
  { prefix: "cgroup/bind4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET4_BIND, attach: "cgroup" },
  { prefix: "cgroup/bind6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET6_BIND, attach: "cgroup" },
  { prefix: "cgroup/sendmsg4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP4_SENDMSG, attach: "cgroup" },
  { prefix: "cgroup/sendmsg6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP6_SENDMSG, attach: "cgroup" },
  { prefix: "cgroup/recvmsg4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP4_RECVMSG, attach: "cgroup" },
  { prefix: "cgroup/recvmsg6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP6_RECVMSG, attach: "cgroup" },
  { prefix: "cgroup/getsockopt", progType: P.CGROUP_SOCKOPT, attachType: A.CGROUP_GETSOCKOPT, attach: "cgroup" },
  { prefix: "cgroup/setsockopt", progType: P.CGROUP_SOCKOPT, attachType: A.CGROUP_SETSOCKOPT, attach: "cgroup" },
];

/** The definition matching a section name, or undefined for an unknown name. */
export function sectionDef(section: string): SectionDef | undefined {
  for (const def of sectionDefs) {
    if (def.prefix.endsWith("/")) {
      // libbpf's "kprobe+": "kprobe/TARGET", or just "kprobe" (the target is given at attach).
      if (section.startsWith(def.prefix) || section === def.prefix.slice(0, -1)) return def;
    } else if (section === def.prefix || section.startsWith(`${def.prefix}/`)) {
      // Names without a slash match exactly or as "name/anything", as libbpf does.
      return def;
    }
  }
  return undefined;
}

/** The section names users most often mean, for error messages. */
export const commonSectionNames = [
  "tracepoint/CATEGORY/NAME",
  "raw_tracepoint/NAME",
  "tp_btf/NAME",
  "kprobe/FUNCTION",
  "kretprobe/FUNCTION",
  "ksyscall/NAME",
  "uprobe/PATH:SYMBOL",
  "usdt/BINARY:PROVIDER:NAME",
  "fentry/FUNCTION",
  "fexit/FUNCTION",
  "perf_event",
  "xdp",
  "socket",
];

/** A program's target, from its section: undefined when the section names none (it is given at attach). */
export function targetOfSection(kind: HookKind, tail: string, section: string): HookTarget | undefined {
  return (hooks[kind] as HookDef).parse(tail, section);
}
