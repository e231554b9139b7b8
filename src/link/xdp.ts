// XDP on a network interface: a bpf_link where the kernel has one (5.9+: the
// program goes when the last fd does, so even SIGKILL leaves nothing), else
// netlink's RTM_SETLINK with IFLA_XDP (removed on close; a killed process leaves it).
// Native (driver) mode first, generic (skb) mode when the driver has no XDP;
// the Link says which it got. Model: cilium/ebpf link/xdp.go, libbpf bpf_xdp_attach.
import { AttachType } from "../internal/sys/constants.ts";
import { linkCreate, progInfo } from "../internal/sys/bpf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { i32Attr, ifinfomsg, NLM_F_ACK, parseAttrs, RTM, RtNetlink, u32Attr, withNetlink } from "../internal/netlink/index.ts";
import { UsageError } from "../errors.ts";
import { AttachError } from "./errors.ts";
import { Link, type AttachableProgram } from "./link.ts";
import { ifindexOf, ifnameOf, NO_LINK } from "./netdev.ts";

export const XDP_FLAGS = { UPDATE_IF_NOEXIST: 1, SKB_MODE: 2, DRV_MODE: 4, HW_MODE: 8, REPLACE: 16 } as const;
export const XDP_ACTION = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;

const IFLA_XDP = 43;
const IFLA_XDP_FD = 1;
const IFLA_XDP_ATTACHED = 2;
const IFLA_XDP_FLAGS = 3;
const IFLA_XDP_PROG_ID = 4;

export type XdpMode = "native" | "generic" | "offload";

export interface XdpOptions {
  /** Interface name or ifindex. */
  interface: string | number;
  /** Default: native, falling back to generic (said in the link's `mode`). */
  mode?: XdpMode | "auto";
  /** Default: a bpf_link, else netlink. */
  method?: "auto" | "link" | "netlink";
}

/** An XDP attachment: the mode and the method it got. */
export class XdpLink extends Link {
  readonly mode: XdpMode;
  readonly method: "link" | "netlink";
  readonly ifindex: number;
  /** Why the first choice was not taken ("native: the driver has no XDP (EOPNOTSUPP)"), if it was not. */
  readonly fellBack?: string;

  constructor(target: string, fd: ConstructorParameters<typeof Link>[1], undo: (() => void)[], info: { mode: XdpMode; method: "link" | "netlink"; ifindex: number; fellBack?: string }) {
    super(target, fd, [], undo);
    this.mode = info.mode;
    this.method = info.method;
    this.ifindex = info.ifindex;
    this.fellBack = info.fellBack;
  }
}

const modeFlag = (m: XdpMode): number => (m === "native" ? XDP_FLAGS.DRV_MODE : m === "generic" ? XDP_FLAGS.SKB_MODE : XDP_FLAGS.HW_MODE);

/** What XDP program an interface has (netlink RTM_GETLINK), for checks and for the tools' clean-up advice. */
export function xdpQuery(dev: string | number): { attached: "none" | XdpMode | "multi"; progId: number } {
  const ifindex = ifindexOf(dev);
  const [reply] = withNetlink((nl) => nl.request(`query XDP of ${ifnameOf(dev)}`, RTM.GETLINK, 0, ifinfomsg(ifindex)));
  const xdp = reply ? parseAttrs(reply.body.subarray(16)).get(IFLA_XDP) : undefined;
  if (!xdp) return { attached: "none", progId: 0 };
  const a = parseAttrs(xdp);
  const mode = a.get(IFLA_XDP_ATTACHED)?.[0] ?? 0;
  const id = a.get(IFLA_XDP_PROG_ID);
  const progId = id ? new DataView(id.buffer, id.byteOffset).getUint32(0, true) : 0;
  const names = ["none", "native", "generic", "offload", "multi"] as const;
  return { attached: names[mode] ?? "multi", progId };
}

function setXdpNetlink(nl: RtNetlink, ifindex: number, fd: number, flags: number, what: string): void {
  nl.request(what, RTM.SETLINK, NLM_F_ACK, ifinfomsg(ifindex), [{ type: IFLA_XDP, value: [i32Attr(IFLA_XDP_FD, fd), u32Attr(IFLA_XDP_FLAGS, flags)] }]);
}

/** The command that removes what a netlink attachment leaves when its process is killed. */
export function xdpRemoveCommand(dev: string | number, mode: XdpMode): string {
  return `ip link set dev ${ifnameOf(dev)} ${mode === "generic" ? "xdpgeneric" : mode === "native" ? "xdpdrv" : "xdpoffload"} off`;
}

export function attachXdp(prog: AttachableProgram, opts: XdpOptions): XdpLink {
  const ifindex = ifindexOf(opts.interface);
  const dev = ifnameOf(opts.interface);
  const want = opts.mode ?? "auto";
  if (!["auto", "native", "generic", "offload"].includes(want)) throw new UsageError(`XDP mode "${want}": use native, generic, offload or auto`);
  const modes: XdpMode[] = want === "auto" ? ["native", "generic"] : [want as XdpMode];
  const method = opts.method ?? "auto";
  const failures: string[] = [];
  let lastErr: unknown;
  if (method !== "netlink") {
    for (const mode of modes) {
      try {
        const fd = linkCreate({ progFd: prog.fd.value, targetFd: ifindex, attachType: AttachType.XDP, flags: modeFlag(mode) });
        return new XdpLink(`xdp:${dev} (${mode}, link)`, fd, [], { mode, method: "link", ifindex, fellBack: failures.join("; ") || undefined });
      } catch (err) {
        if (!(err instanceof SyscallError)) throw err;
        lastErr = err;
        if (err.code === "EBUSY" || err.code === "EEXIST") throw busy(prog, dev, err);
        // EOPNOTSUPP: the driver has no native XDP; EINVAL: no XDP links before 5.9 (netlink next).
        failures.push(`${mode} mode by link: ${err.code}`);
      }
    }
  }
  if (method !== "link") {
    using nl = new RtNetlink();
    for (const mode of modes) {
      try {
        setXdpNetlink(nl, ifindex, prog.fd.value, XDP_FLAGS.UPDATE_IF_NOEXIST | modeFlag(mode), `attach XDP program ${prog.name} to ${dev} (${mode})`);
      } catch (err) {
        if (!(err instanceof SyscallError)) throw err;
        lastErr = err;
        if (err.code === "EBUSY" || err.code === "EEXIST") throw busy(prog, dev, err);
        failures.push(`${mode} netlink: ${err.message}`);
        continue;
      }
      const ourId = progInfo(prog.fd.value).id;
      const remove = (): void => {
        using nl2 = new RtNetlink();
        // Only our program: someone may have replaced it since.
        if (xdpQuery(ifindex).progId !== ourId) return;
        setXdpNetlink(nl2, ifindex, -1, modeFlag(mode), `remove XDP program ${prog.name} from ${dev}`);
      };
      return new XdpLink(`xdp:${dev} (${mode}, netlink)`, undefined, [remove], { mode, method: "netlink", ifindex, fellBack: failures.join("; ") || undefined });
    }
  }
  throw new AttachError(`cannot attach XDP program ${prog.name} to ${dev}: ${failures.join("; ")}`, {
    cause: lastErr,
    hook: "xdp",
    target: dev,
    reason: failures.join("; "),
    suggestion: want === "native" ? "try generic mode (-S, mode: \"generic\")" : undefined,
  });
}

function busy(prog: AttachableProgram, dev: string, err: SyscallError): AttachError {
  const q = xdpQuery(dev);
  const how = q.attached === "none" ? "" : `; if it is a leftover, remove it with "${xdpRemoveCommand(dev, q.attached === "multi" ? "native" : q.attached)}"`;
  return new AttachError(`cannot attach XDP program ${prog.name} to ${dev}: it already has an XDP program (id ${q.progId})${how}`, {
    cause: err,
    hook: "xdp",
    target: dev,
    reason: "the interface already has an XDP program",
  });
}
