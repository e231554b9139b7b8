// Block devices by number: the kernel's dev_t (major << 20 | minor, as BPF
// programs read it from a gendisk or a tracepoint) to the name /sys gives it,
// and back, for the disk tools' DISK columns and -d filters.
import { readdirSync, readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";

const MINOR_BITS = 20;

/** The kernel's internal dev_t of major:minor. */
export function mkdev(major: number, minor: number): number {
  return ((major << MINOR_BITS) | minor) >>> 0;
}

export function major(dev: number): number {
  return dev >>> MINOR_BITS;
}

export function minor(dev: number): number {
  return dev & ((1 << MINOR_BITS) - 1);
}

/** Every block device and partition the kernel lists in /sys/class/block, by dev_t. */
export function blockDevices(root = "/sys/class/block"): Map<number, string> {
  const out = new Map<number, string>();
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const [ma, mi] = readFileSync(`${root}/${name}/dev`, "utf8").trim().split(":").map(Number);
      if (Number.isInteger(ma) && Number.isInteger(mi)) out.set(mkdev(ma!, mi!), name);
    } catch {
      // a device that went away between readdir and read
    }
  }
  return out;
}

/** Names disks by dev_t, reading /sys again when a device appears after the start. */
export class DiskNames {
  #names = blockDevices();

  name(dev: number, unknown = "?"): string {
    let name = this.#names.get(dev);
    if (name === undefined && dev !== 0) {
      this.#names = blockDevices();
      name = this.#names.get(dev);
      if (name === undefined) this.#names.set(dev, (name = unknown));
    }
    return name ?? unknown;
  }
}

/** The dev_t of a disk named on the command line ("vda", "/dev/vda" or "254:0"), or a UsageError. */
export function diskByName(arg: string, option = "-d/--disk"): number {
  const pair = /^(\d+):(\d+)$/.exec(arg);
  if (pair) return mkdev(Number(pair[1]), Number(pair[2]));
  const name = arg.replace(/^\/dev\//, "");
  const devices = blockDevices();
  for (const [dev, n] of devices) if (n === name) return dev;
  const known = [...new Set(devices.values())].sort().join(", ");
  throw new UsageError(`${option}: no such disk "${arg}"${known ? `; the disks here are ${known}` : ""}`);
}

// Request operations (the low 8 bits of cmd_flags), in BCC's words.
const REQ_OPS: Record<number, string> = {
  0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase", 7: "ZoneAppend", 9: "WriteZeros",
  11: "ZoneOpen", 13: "ZoneClose", 15: "ZoneFinish", 17: "ZoneReset", 19: "ZoneResetAll", 34: "DrvIn", 35: "DrvOut",
};

// Flag bits as 6.x numbers them; kernels move them, so reqFlagBits() reads this kernel's enum req_flag_bits.
const DEFAULT_FLAG_BITS: Record<string, number> = {
  __REQ_SYNC: 11, __REQ_META: 12, __REQ_PRIO: 13, __REQ_NOMERGE: 14, __REQ_IDLE: 15, __REQ_FUA: 17,
  __REQ_RAHEAD: 19, __REQ_BACKGROUND: 20, __REQ_NOWAIT: 21,
};

// BCC's order: each later flag's word goes in front.
const FLAG_WORDS: [string, string][] = [
  ["__REQ_SYNC", "Sync"], ["__REQ_META", "Metadata"], ["__REQ_FUA", "ForcedUnitAccess"], ["__REQ_PRIO", "Priority"],
  ["__REQ_NOMERGE", "NoMerge"], ["__REQ_IDLE", "Idle"], ["__REQ_RAHEAD", "ReadAhead"], ["__REQ_BACKGROUND", "Background"],
  ["__REQ_NOWAIT", "NoWait"],
];

/** `values` of the kernel's enum req_flag_bits by name (from its BTF), else 6.x's. */
export function reqFlagBits(values?: readonly { name: string; value: number }[]): Record<string, number> {
  if (!values?.length) return DEFAULT_FLAG_BITS;
  return Object.fromEntries(values.map((v) => [v.name, v.value]));
}

/** A request's cmd_flags as BCC's biolatency -F prints them: "Sync-Write", "ReadAhead-Read"... */
export function requestFlags(flags: number, bits: Record<string, number> = DEFAULT_FLAG_BITS): string {
  let desc = REQ_OPS[flags & 0xff] ?? "Unknown";
  for (const [name, word] of FLAG_WORDS) {
    const bit = bits[name];
    if (bit !== undefined && flags & (1 << bit)) desc = `${word}-${desc}`;
  }
  return desc;
}
