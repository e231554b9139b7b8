// What an ELF section name says about the programs in it, after libbpf's
// section_defs table (src/libbpf.c): program type, expected attach type, and how
// `attach()` finds its hook from the rest of the name.
import { AttachType, ProgType } from "../internal/sys/constants.ts";

/** How a program of this section is attached by `Program.attach()` with no arguments. */
export type AttachKind =
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
  | "none"; // attached by other means (xdp, socket, tc, cgroup, perf_event...)

export interface SectionDef {
  prefix: string;
  progType: number;
  attachType?: number;
  attach: AttachKind;
  /** Sleepable programs (".s" sections) get BPF_F_SLEEPABLE. */
  sleepable?: boolean;
  /** Kernel BTF entity the target name refers to, for "tracing" programs. */
  btfTarget?: { prefix: string; kind: "func" | "typedef" };
}

const P = ProgType;
const A = AttachType;
const fn = { prefix: "", kind: "func" } as const;

// Longest prefixes first where one is a prefix of another ("kprobe.multi/" before "kprobe/").
const defs: SectionDef[] = [
  { prefix: "socket", progType: P.SOCKET_FILTER, attach: "none" },
  { prefix: "kprobe/", progType: P.KPROBE, attach: "kprobe" },
  { prefix: "kretprobe/", progType: P.KPROBE, attach: "kretprobe" },
  { prefix: "ksyscall/", progType: P.KPROBE, attach: "ksyscall" },
  { prefix: "kretsyscall/", progType: P.KPROBE, attach: "kretsyscall" },
  { prefix: "uprobe.s/", progType: P.KPROBE, attach: "uprobe", sleepable: true },
  { prefix: "uretprobe.s/", progType: P.KPROBE, attach: "uretprobe", sleepable: true },
  { prefix: "uprobe/", progType: P.KPROBE, attach: "uprobe" },
  { prefix: "uretprobe/", progType: P.KPROBE, attach: "uretprobe" },
  { prefix: "uprobe", progType: P.KPROBE, attach: "uprobe" },
  { prefix: "uretprobe", progType: P.KPROBE, attach: "uretprobe" },
  { prefix: "tc", progType: P.SCHED_CLS, attach: "none" },
  { prefix: "classifier", progType: P.SCHED_CLS, attach: "none" },
  { prefix: "action", progType: P.SCHED_ACT, attach: "none" },
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
  { prefix: "syscall", progType: P.SYSCALL, attach: "none", sleepable: true },
  { prefix: "xdp.frags/devmap", progType: P.XDP, attachType: A.XDP_DEVMAP, attach: "none" },
  { prefix: "xdp/devmap", progType: P.XDP, attachType: A.XDP_DEVMAP, attach: "none" },
  { prefix: "xdp.frags/cpumap", progType: P.XDP, attachType: A.XDP_CPUMAP, attach: "none" },
  { prefix: "xdp/cpumap", progType: P.XDP, attachType: A.XDP_CPUMAP, attach: "none" },
  { prefix: "xdp.frags", progType: P.XDP, attachType: A.XDP, attach: "none" },
  { prefix: "xdp", progType: P.XDP, attachType: A.XDP, attach: "none" },
  { prefix: "perf_event", progType: P.PERF_EVENT, attach: "none" },
  { prefix: "lwt_in", progType: P.LWT_IN, attach: "none" },
  { prefix: "lwt_out", progType: P.LWT_OUT, attach: "none" },
  { prefix: "lwt_xmit", progType: P.LWT_XMIT, attach: "none" },
  { prefix: "lwt_seg6local", progType: P.LWT_SEG6LOCAL, attach: "none" },
  { prefix: "sockops", progType: P.SOCK_OPS, attachType: A.CGROUP_SOCK_OPS, attach: "none" },
  { prefix: "sk_skb/stream_parser", progType: P.SK_SKB, attachType: A.SK_SKB_STREAM_PARSER, attach: "none" },
  { prefix: "sk_skb/stream_verdict", progType: P.SK_SKB, attachType: A.SK_SKB_STREAM_VERDICT, attach: "none" },
  { prefix: "sk_skb", progType: P.SK_SKB, attach: "none" },
  { prefix: "sk_msg", progType: P.SK_MSG, attachType: A.SK_MSG_VERDICT, attach: "none" },
  { prefix: "sk_lookup", progType: P.SK_LOOKUP, attachType: A.SK_LOOKUP, attach: "none" },
  { prefix: "flow_dissector", progType: P.FLOW_DISSECTOR, attachType: A.FLOW_DISSECTOR, attach: "none" },
  { prefix: "cgroup_skb/ingress", progType: P.CGROUP_SKB, attachType: A.CGROUP_INET_INGRESS, attach: "none" },
  { prefix: "cgroup_skb/egress", progType: P.CGROUP_SKB, attachType: A.CGROUP_INET_EGRESS, attach: "none" },
  { prefix: "cgroup/skb", progType: P.CGROUP_SKB, attach: "none" },
  { prefix: "cgroup/sock_create", progType: P.CGROUP_SOCK, attachType: A.CGROUP_INET_SOCK_CREATE, attach: "none" },
  { prefix: "cgroup/sock_release", progType: P.CGROUP_SOCK, attachType: A.CGROUP_INET_SOCK_RELEASE, attach: "none" },
  { prefix: "cgroup/sock", progType: P.CGROUP_SOCK, attachType: A.CGROUP_INET_SOCK_CREATE, attach: "none" },
  { prefix: "cgroup/dev", progType: P.CGROUP_DEVICE, attachType: A.CGROUP_DEVICE, attach: "none" },
  { prefix: "cgroup/sysctl", progType: P.CGROUP_SYSCTL, attachType: A.CGROUP_SYSCTL, attach: "none" },
  { prefix: "cgroup/connect4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET4_CONNECT, attach: "none" },
  { prefix: "cgroup/connect6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET6_CONNECT, attach: "none" },
  { prefix: "cgroup/bind4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET4_BIND, attach: "none" },
  { prefix: "cgroup/bind6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_INET6_BIND, attach: "none" },
  { prefix: "cgroup/sendmsg4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP4_SENDMSG, attach: "none" },
  { prefix: "cgroup/sendmsg6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP6_SENDMSG, attach: "none" },
  { prefix: "cgroup/recvmsg4", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP4_RECVMSG, attach: "none" },
  { prefix: "cgroup/recvmsg6", progType: P.CGROUP_SOCK_ADDR, attachType: A.CGROUP_UDP6_RECVMSG, attach: "none" },
  { prefix: "cgroup/getsockopt", progType: P.CGROUP_SOCKOPT, attachType: A.CGROUP_GETSOCKOPT, attach: "none" },
  { prefix: "cgroup/setsockopt", progType: P.CGROUP_SOCKOPT, attachType: A.CGROUP_SETSOCKOPT, attach: "none" },
];

/** The definition matching a section name, or undefined for an unknown name. */
export function sectionDef(section: string): SectionDef | undefined {
  for (const def of defs) {
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
  "fentry/FUNCTION",
  "fexit/FUNCTION",
  "perf_event",
  "xdp",
  "socket",
];
