// Programs on a sockmap or sockhash (sk_skb stream parser/verdict, sk_msg):
// BPF_PROG_ATTACH with the map's fd as the target, detached on close. (Sockmap
// links, BPF_LINK_CREATE on the map, came only in 6.10; the attach works everywhere.)
import { BpfCmd } from "../internal/sys/constants.ts";
import { Attr, bpf } from "../internal/sys/bpf.ts";
import type { FD } from "../internal/sys/fd.ts";
import { AttachError } from "./errors.ts";
import { Link, type AttachableProgram } from "./link.ts";

/** Attaches `prog` to the sockmap/sockhash whose fd is `map` (attachType: SK_SKB_STREAM_VERDICT, SK_MSG_VERDICT...). */
export function attachSockmap(prog: AttachableProgram, map: { readonly fd: FD; readonly name?: string }, attachType: number): Link {
  const attr = (): Attr => new Attr().u32(0, map.fd.value).u32(4, prog.fd.value).u32(8, attachType);
  try {
    bpf(BpfCmd.PROG_ATTACH, attr());
  } catch (err) {
    throw new AttachError(`cannot attach ${prog.name} to sockmap ${map.name ?? ""}: ${(err as Error).message}`, { cause: err, hook: "sockmap", target: map.name, reason: (err as Error).message });
  }
  const mapFd = map.fd;
  const detach = (): void => {
    if (!mapFd.closed) bpf(BpfCmd.PROG_DETACH, attr());
  };
  return new Link(`sockmap:${map.name ?? ""}`, undefined, [], [detach]);
}
