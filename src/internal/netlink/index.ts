// A small rtnetlink client: the messages XDP and tc need on kernels without
// links (RTM_SETLINK with IFLA_XDP; clsact qdiscs and bpf filters). Message
// building and parsing are here; the addon only has socket/bind/sendto/recv.
// (npm's `netlink` package was the candidate: a pre-1.0 node-addon-api build of
// its own, typed for Node 12; five syscall wrappers in our addon are smaller.)
import { native } from "../sys/native.ts";
import { SyscallError } from "../sys/errors.ts";

export const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_ROUTE = 0;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLA_F_NESTED = 0x8000;

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  NEWQDISC: 36,
  DELQDISC: 37,
  GETQDISC: 38,
  NEWTFILTER: 44,
  DELTFILTER: 45,
  GETTFILTER: 46,
} as const;

const align4 = (n: number): number => (n + 3) & ~3;

/** A netlink attribute: a number type and bytes, or nested attributes. */
export type Attr = { type: number; value: Uint8Array | Attr[] };

export const u32Attr = (type: number, v: number): Attr => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return { type, value: b };
};
export const i32Attr = (type: number, v: number): Attr => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return { type, value: b };
};
export const strAttr = (type: number, s: string): Attr => ({ type, value: new TextEncoder().encode(`${s}\0`) });

function attrLength(a: Attr): number {
  const body = Array.isArray(a.value) ? a.value.reduce((n, c) => n + align4(attrLength(c)), 0) : a.value.byteLength;
  return 4 + body;
}

function writeAttr(out: Uint8Array, off: number, a: Attr): number {
  const len = attrLength(a);
  const v = new DataView(out.buffer, out.byteOffset);
  v.setUint16(off, len, true);
  v.setUint16(off + 2, a.type | (Array.isArray(a.value) ? NLA_F_NESTED : 0), true);
  let p = off + 4;
  if (Array.isArray(a.value)) for (const c of a.value) p = writeAttr(out, p, c);
  else {
    out.set(a.value, p);
    p += a.value.byteLength;
  }
  return off + align4(len);
}

/** Encodes one netlink message: header, fixed family header, attributes. */
export function encodeMessage(type: number, flags: number, seq: number, header: Uint8Array, attrs: Attr[]): Uint8Array {
  const len = 16 + align4(header.byteLength) + attrs.reduce((n, a) => n + align4(attrLength(a)), 0);
  const out = new Uint8Array(len);
  const v = new DataView(out.buffer);
  v.setUint32(0, len, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  out.set(header, 16);
  let p = 16 + align4(header.byteLength);
  for (const a of attrs) p = writeAttr(out, p, a);
  return out;
}

/** Attributes of a message body (or of a nested attribute), by type; nested flag dropped. */
export function parseAttrs(buf: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let p = 0; p + 4 <= buf.byteLength; ) {
    const len = v.getUint16(p, true);
    if (len < 4) break;
    out.set(v.getUint16(p + 2, true) & 0x3fff, buf.subarray(p + 4, p + len));
    p += align4(len);
  }
  return out;
}

export interface Reply {
  type: number;
  /** Everything after the netlink header. */
  body: Uint8Array;
}

/** ifinfomsg: family, type, index, flags, change (16 bytes). */
export function ifinfomsg(ifindex: number): Uint8Array {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setInt32(4, ifindex, true);
  return b;
}

/** tcmsg: family, ifindex, handle, parent, info (20 bytes). */
export function tcmsg(ifindex: number, handle: number, parent: number, info: number): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setInt32(4, ifindex, true);
  v.setUint32(8, handle >>> 0, true);
  v.setUint32(12, parent >>> 0, true);
  v.setUint32(16, info >>> 0, true);
  return b;
}

/** An error the kernel answered with, as a SyscallError (code "EEXIST", ...), with the extended ack's message. */
function nlError(errno: number, what: string, extack: string | undefined): SyscallError {
  const code = errnoName(errno);
  return new SyscallError(`${what}: ${extack ? `${extack} ` : ""}(${code})`, errno, code, "netlink");
}

const errnoNames: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL", 95: "EOPNOTSUPP", 524: "ENOTSUPP", 34: "ERANGE", 13: "EACCES",
};
const errnoName = (e: number): string => errnoNames[e] ?? `E${e}`;

const NETLINK_EXT_ACK = 11;
const SOL_NETLINK = 270;
const NLMSGERR_ATTR_MSG = 1;

/** A NETLINK_ROUTE socket. Requests are synchronous: rtnetlink answers before recv returns. */
export class RtNetlink implements Disposable {
  #fd: number;
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #buf = new Uint8Array(64 * 1024);

  constructor() {
    this.#fd = native().socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    try {
      const addr = new Uint8Array(12);
      new DataView(addr.buffer).setUint16(0, AF_NETLINK, true);
      native().bind(this.#fd, addr);
      const one = new Uint8Array([1, 0, 0, 0]);
      try {
        native().setsockopt(this.#fd, SOL_NETLINK, NETLINK_EXT_ACK, one); // the kernel's reason, in words
      } catch {
        // Older kernels: errno only.
      }
    } catch (err) {
      native().close(this.#fd);
      throw err;
    }
  }

  /** Sends one request and returns its replies (all parts of a dump); an error reply throws. */
  request(what: string, type: number, flags: number, header: Uint8Array, attrs: Attr[] = []): Reply[] {
    const seq = ++this.#seq;
    native().sendto(this.#fd, encodeMessage(type, flags | NLM_F_REQUEST, seq, header, attrs), null);
    const replies: Reply[] = [];
    for (;;) {
      const n = native().recv(this.#fd, this.#buf, 0);
      const v = new DataView(this.#buf.buffer, 0, n);
      for (let p = 0; p + 16 <= n; ) {
        const len = v.getUint32(p, true);
        const mtype = v.getUint16(p + 4, true);
        const mflags = v.getUint16(p + 6, true);
        const mseq = v.getUint32(p + 8, true);
        if (len < 16) return replies;
        const body = this.#buf.slice(p + 16, p + len);
        p += align4(len);
        if (mseq !== seq) continue;
        if (mtype === NLMSG_DONE) return replies;
        if (mtype === NLMSG_ERROR) {
          const errno = -new DataView(body.buffer).getInt32(0, true);
          if (errno === 0) return replies; // the ack
          // With NLM_F_ACK_TLVS (0x200) the attributes follow the echoed request header (capped: 0x100).
          let extack: string | undefined;
          if (mflags & 0x200) {
            const echoed = mflags & 0x100 ? 16 : new DataView(body.buffer).getUint32(4, true);
            const msg = parseAttrs(body.subarray(4 + echoed)).get(NLMSGERR_ATTR_MSG);
            if (msg) extack = new TextDecoder().decode(msg).replace(/\0.*$/s, "");
          }
          throw nlError(errno, what, extack);
        }
        replies.push({ type: mtype, body });
        if (!(flags & NLM_F_DUMP) && !(flags & NLM_F_ACK)) return replies;
      }
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    native().close(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Runs `fn` with a netlink socket that is closed afterwards. */
export function withNetlink<T>(fn: (nl: RtNetlink) => T): T {
  using nl = new RtNetlink();
  return fn(nl);
}

// ---- links and addresses: what tests and guests without iproute2 need ----

const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFF_UP = 0x1;

/** The bytes of attributes, as they follow a family header. */
function encodeAttrs(attrs: Attr[]): Uint8Array {
  const out = new Uint8Array(attrs.reduce((n, a) => n + align4(attrLength(a)), 0));
  let p = 0;
  for (const a of attrs) p = writeAttr(out, p, a);
  return out;
}

/** A veth pair `name` <-> `peer` (ip link add NAME type veth peer name PEER), both down. */
export function createVeth(name: string, peer: string): void {
  // VETH_INFO_PEER holds an ifinfomsg and the peer's attributes, not a nested attribute list.
  const peerAttrs = encodeAttrs([strAttr(IFLA_IFNAME, peer)]);
  const peerInfo = new Uint8Array(16 + peerAttrs.byteLength);
  peerInfo.set(ifinfomsg(0), 0);
  peerInfo.set(peerAttrs, 16);
  withNetlink((nl) =>
    nl.request(`create veth ${name} (peer ${peer})`, RTM.NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0), [
      strAttr(IFLA_IFNAME, name),
      {
        type: IFLA_LINKINFO,
        value: [
          { type: IFLA_INFO_KIND, value: new TextEncoder().encode("veth") },
          { type: IFLA_INFO_DATA, value: [{ type: VETH_INFO_PEER, value: peerInfo }] },
        ],
      },
    ]),
  );
}

/** ip link set IFINDEX up. */
export function setLinkUp(ifindex: number): void {
  const msg = ifinfomsg(ifindex);
  const v = new DataView(msg.buffer);
  v.setUint32(8, IFF_UP, true); // flags
  v.setUint32(12, IFF_UP, true); // change
  withNetlink((nl) => nl.request(`set link ${ifindex} up`, RTM.SETLINK, NLM_F_ACK, msg));
}

/** ip link del IFINDEX (a veth's peer goes with it). */
export function deleteLink(ifindex: number): void {
  withNetlink((nl) => nl.request(`delete link ${ifindex}`, RTM.DELLINK, NLM_F_ACK, ifinfomsg(ifindex)));
}

/** ip addr add A.B.C.D/PREFIX dev IFINDEX. */
export function addIpv4Address(ifindex: number, address: string, prefix: number): void {
  const ifa = new Uint8Array(8); // ifaddrmsg: family, prefixlen, flags, scope, index
  ifa[0] = 2; // AF_INET
  ifa[1] = prefix;
  new DataView(ifa.buffer).setUint32(4, ifindex, true);
  const addr = new Uint8Array(address.split(".").map(Number));
  withNetlink((nl) =>
    nl.request(`add ${address}/${prefix} to link ${ifindex}`, RTM.NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifa, [
      { type: 2 /* IFA_LOCAL */, value: addr },
      { type: 1 /* IFA_ADDRESS */, value: addr },
    ]),
  );
}
