// What the packet tools share: the interval loop, protocol names, and the
// sentence that says how to remove a netlink attachment a killed process left.
import { setTimeout as sleep } from "node:timers/promises";
import type { Link } from "../link/link.ts";
import { XdpLink, xdpRemoveCommand } from "../link/xdp.ts";
import { TcLink, tcRemoveCommand } from "../link/tc.ts";

export const IP_PROTOCOLS: Record<number, string> = { 0: "other", 1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp" };

/** Waits `ms`; false once the run is stopped. */
export async function tick(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/** On stderr, where the attachment went; for netlink attachments, how to remove one a SIGKILL left behind. */
export function describeAttachment(tool: string, link: Link): string {
  let text = `tsbpf ${tool}: attached to ${link.target}`;
  if (link instanceof XdpLink && link.fellBack) text += ` (native mode was refused: ${link.fellBack})`;
  if (link instanceof XdpLink && link.method === "netlink") {
    text += `; on this netlink attachment, if this process is killed (SIGKILL), remove the program with "${xdpRemoveCommand(link.ifindex, link.mode)}"`;
  }
  if (link instanceof TcLink && link.method === "netlink") {
    text += `; on this netlink attachment, if this process is killed (SIGKILL), remove the filter with "${tcRemoveCommand(link.ifindex, link.direction, link.priority, link.handle)}"`;
  }
  return `${text}\n`;
}
