// Network interfaces by name or index, for the packet hooks (XDP, tc, raw sockets).
import { readFileSync, readdirSync } from "node:fs";
import { AttachError } from "./errors.ts";

/** A device's ifindex, from /sys/class/net/DEV/ifindex (in this process's network namespace). */
export function ifindexOf(dev: string | number): number {
  if (typeof dev === "number") return dev;
  if (/^\d+$/.test(dev)) return Number(dev);
  try {
    return Number(readFileSync(`/sys/class/net/${dev}/ifindex`, "utf8").trim());
  } catch {
    let known: string[] = [];
    try {
      known = readdirSync("/sys/class/net");
    } catch {
      // no sysfs: say only that the device is missing
    }
    throw new AttachError(`no network interface "${dev}" here${known.length ? ` (there are: ${known.join(", ")})` : ""}`, {
      target: dev,
      reason: "no such network interface",
    });
  }
}

/** A device's name from its index, for messages ("ifindex 7" when it has none). */
export function ifnameOf(dev: string | number): string {
  if (typeof dev === "string" && !/^\d+$/.test(dev)) return dev;
  try {
    for (const name of readdirSync("/sys/class/net")) {
      if (Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8")) === Number(dev)) return name;
    }
  } catch {
    // fall through
  }
  return `ifindex ${dev}`;
}

/** Errors from BPF_LINK_CREATE that mean "this kernel has no such link": fall back to the older API. */
export const NO_LINK = ["EINVAL", "EOPNOTSUPP", "ENOTSUPP", "E524", "EPROTO"];
