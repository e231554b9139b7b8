// tc on a network interface, ingress or egress: a tcx link on 6.6+ (gone with
// the last fd, so SIGKILL leaves nothing), else a clsact qdisc with a `bpf`
// filter in direct-action mode through netlink (removed on close; the qdisc only
// if this call made it and no filter is left on it). Models: cilium/ebpf
// link/tcx.go; libbpf bpf_tc_hook_create/bpf_tc_attach.
import { AttachType } from "../internal/sys/constants.ts";
import { linkCreate } from "../internal/sys/bpf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RTM, RtNetlink, strAttr, tcmsg, u32Attr } from "../internal/netlink/index.ts";
import { UsageError } from "../errors.ts";
import { AttachError } from "./errors.ts";
import { Link, type AttachableProgram } from "./link.ts";
import { ifindexOf, ifnameOf, NO_LINK } from "./netdev.ts";

export const TC_ACT = { UNSPEC: -1, OK: 0, RECLASSIFY: 1, SHOT: 2, PIPE: 3, STOLEN: 4, QUEUED: 5, REPEAT: 6, REDIRECT: 7 } as const;

const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
const TC_H_CLSACT = 0xfffffff1;
const CLSACT_HANDLE = 0xffff0000;
const PARENT = { ingress: 0xfffffff2, egress: 0xfffffff3 } as const;
const ETH_P_ALL_BE = 0x0300; // htons(ETH_P_ALL)

export type TcDirection = "ingress" | "egress";

export interface TcOptions {
  interface: string | number;
  direction: TcDirection;
  /** Default: tcx where the kernel has it, else netlink. */
  method?: "auto" | "tcx" | "netlink";
  /** The netlink filter's priority (default 1). */
  priority?: number;
}

export class TcLink extends Link {
  readonly method: "tcx" | "netlink";
  readonly direction: TcDirection;
  readonly ifindex: number;
  /** Netlink filters: handle and priority, to find them with `tc filter show`. */
  readonly handle?: number;
  readonly priority?: number;

  constructor(target: string, fd: ConstructorParameters<typeof Link>[1], undo: (() => void)[], info: { method: "tcx" | "netlink"; direction: TcDirection; ifindex: number; handle?: number; priority?: number }) {
    super(target, fd, [], undo);
    this.method = info.method;
    this.direction = info.direction;
    this.ifindex = info.ifindex;
    this.handle = info.handle;
    this.priority = info.priority;
  }
}

/** The commands that remove what a killed process left on the netlink path. */
export function tcRemoveCommand(dev: string | number, direction: TcDirection, priority = 1, handle = 1): string {
  return `tc filter del dev ${ifnameOf(dev)} ${direction} pref ${priority} handle ${handle} bpf; tc qdisc del dev ${ifnameOf(dev)} clsact`;
}

/** Filters on a clsact parent (netlink dump): how many. */
export function tcFilterCount(dev: string | number, direction: TcDirection): number {
  const ifindex = ifindexOf(dev);
  using nl = new RtNetlink();
  try {
    return nl.request("list tc filters", RTM.GETTFILTER, NLM_F_DUMP, tcmsg(ifindex, 0, PARENT[direction], 0)).filter((r) => r.type === RTM.NEWTFILTER).length;
  } catch (err) {
    if (err instanceof SyscallError && (err.code === "EINVAL" || err.code === "ENOENT")) return 0; // no clsact qdisc
    throw err;
  }
}

export function attachTc(prog: AttachableProgram, opts: TcOptions): TcLink {
  const { direction } = opts;
  if (direction !== "ingress" && direction !== "egress") throw new UsageError(`tc direction "${String(direction)}": use ingress or egress`);
  const ifindex = ifindexOf(opts.interface);
  const dev = ifnameOf(opts.interface);
  const method = opts.method ?? "auto";
  let tcxFailure = "";
  if (method !== "netlink") {
    try {
      const fd = linkCreate({ progFd: prog.fd.value, targetFd: ifindex, attachType: direction === "ingress" ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS });
      return new TcLink(`tc:${dev}:${direction} (tcx)`, fd, [], { method: "tcx", direction, ifindex });
    } catch (err) {
      if (!(err instanceof SyscallError) || method === "tcx" || !NO_LINK.includes(err.code)) {
        throw new AttachError(`cannot attach tc program ${prog.name} to ${dev} ${direction} with a tcx link: ${(err as Error).message}`, {
          cause: err,
          hook: "tc",
          target: `${dev}:${direction}`,
          reason: (err as Error).message,
          suggestion: method === "tcx" ? "tcx links need Linux 6.6; use method \"netlink\"" : undefined,
        });
      }
      tcxFailure = err.code; // before 6.6: the clsact qdisc
    }
  }
  return attachTcNetlink(prog, ifindex, dev, direction, opts.priority ?? 1, tcxFailure);
}

function attachTcNetlink(prog: AttachableProgram, ifindex: number, dev: string, direction: TcDirection, priority: number, tcxFailure: string): TcLink {
  using nl = new RtNetlink();
  let madeQdisc = false;
  try {
    nl.request(`add clsact qdisc to ${dev}`, RTM.NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0), [strAttr(TCA_KIND, "clsact")]);
    madeQdisc = true;
  } catch (err) {
    if (!(err instanceof SyscallError) || err.code !== "EEXIST") throw attachFailed(prog, dev, direction, err);
  }
  const info = ((priority & 0xffff) << 16) | ETH_P_ALL_BE;
  const parent = PARENT[direction];
  const options = [u32Attr(TCA_BPF_FD, prog.fd.value), strAttr(TCA_BPF_NAME, prog.name), u32Attr(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)];
  let handle = 0;
  // Handles 1, 2, ...: never replace someone else's filter (NLM_F_EXCL).
  for (let h = 1; h <= 64 && !handle; h++) {
    try {
      nl.request(`add bpf filter to ${dev} ${direction}`, RTM.NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, tcmsg(ifindex, h, parent, info), [
        strAttr(TCA_KIND, "bpf"),
        { type: TCA_OPTIONS, value: options },
      ]);
      handle = h;
    } catch (err) {
      if (err instanceof SyscallError && err.code === "EEXIST") continue;
      if (madeQdisc) deleteQdisc(nl, ifindex);
      throw attachFailed(prog, dev, direction, err);
    }
  }
  if (!handle) {
    if (madeQdisc) deleteQdisc(nl, ifindex);
    throw attachFailed(prog, dev, direction, new Error(`priority ${priority} has 64 filters already`));
  }
  const remove = (): void => {
    using nl2 = new RtNetlink();
    try {
      nl2.request(`remove bpf filter from ${dev}`, RTM.DELTFILTER, NLM_F_ACK, tcmsg(ifindex, handle, parent, info), [strAttr(TCA_KIND, "bpf")]);
    } catch (err) {
      // Gone already (the interface or the qdisc was deleted): nothing to undo.
      if (!(err instanceof SyscallError) || !["ENOENT", "EINVAL", "ENODEV"].includes(err.code)) throw err;
    }
    if (madeQdisc && tcFilterCount(ifindex, "ingress") + tcFilterCount(ifindex, "egress") === 0) deleteQdisc(nl2, ifindex);
  };
  const why = tcxFailure ? `; no tcx link: ${tcxFailure}` : "";
  return new TcLink(`tc:${dev}:${direction} (netlink clsact, pref ${priority} handle ${handle}${why})`, undefined, [remove], {
    method: "netlink",
    direction,
    ifindex,
    handle,
    priority,
  });
}

function deleteQdisc(nl: RtNetlink, ifindex: number): void {
  try {
    nl.request("remove clsact qdisc", RTM.DELQDISC, NLM_F_ACK, tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0), [strAttr(TCA_KIND, "clsact")]);
  } catch (err) {
    if (!(err instanceof SyscallError) || !["ENOENT", "EINVAL", "ENODEV"].includes(err.code)) throw err;
  }
}

function attachFailed(prog: AttachableProgram, dev: string, direction: TcDirection, err: unknown): AttachError {
  return new AttachError(`cannot attach tc program ${prog.name} to ${dev} ${direction}: ${(err as Error).message}`, {
    cause: err,
    hook: "tc",
    target: `${dev}:${direction}`,
    reason: (err as Error).message,
  });
}
