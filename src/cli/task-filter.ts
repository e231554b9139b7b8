// BCC's --cgroupmap PATH and --mntnsmap PATH (capable, tcpconnect, tcpaccept,
// tcptop): the user-space half of TSBPF_TASK_FILTER in include/tsbpf.h. The keys
// of the user's pinned maps are read once, when the tool starts, and copied into
// the object's own `cgroups` and `mntns` maps before its programs are attached.
import type { Collection } from "../collection.ts";
import { UsageError } from "../errors.ts";
import { BpfMap } from "../maps/map.ts";

/** The two options, for a tool's parseArgs table. */
export const TASK_FILTER_OPTIONS = {
  cgroupmap: { type: "string" },
  mntnsmap: { type: "string" },
} as const;

/**
 * The keys of a pinned BPF hash map of 8-byte keys (cgroup ids, mount namespace
 * inode numbers), read once when the tool starts.
 */
export function pinnedKeysOf(path: string, option: string, what: string): bigint[] {
  let map: BpfMap;
  try {
    map = BpfMap.fromPin(path);
  } catch (err) {
    throw new UsageError(`${option}: cannot open the pinned map ${path}: ${(err as Error).message}`);
  }
  try {
    if (map.keySize !== 8) throw new UsageError(`${option}: ${path} has ${map.keySize}-byte keys, not 8-byte ${what}`);
    return [...map.keys()].map((k) => (typeof k === "bigint" || typeof k === "number" ? BigInt(k) : Buffer.from(k as Uint8Array).readBigUInt64LE(0)));
  } finally {
    map.close();
  }
}

export interface TaskFilter {
  /** The object's targ_cgroups and targ_mntns: which filters its programs apply. */
  readonly constants: { targ_cgroups: boolean; targ_mntns: boolean };
  /** Copies the ids into the object's `cgroups` and `mntns` maps (call before attaching). */
  fill(coll: Collection): void;
}

/** The filter that --cgroupmap / --mntnsmap ask for (neither: every task). */
export function taskFilter(o: { cgroupmap?: string; mntnsmap?: string }): TaskFilter {
  const cgroups = o.cgroupmap === undefined ? undefined : pinnedKeysOf(o.cgroupmap, "--cgroupmap", "cgroup ids");
  const mntns = o.mntnsmap === undefined ? undefined : pinnedKeysOf(o.mntnsmap, "--mntnsmap", "mount namespace ids");
  return {
    constants: { targ_cgroups: cgroups !== undefined, targ_mntns: mntns !== undefined },
    fill: (coll) => {
      for (const id of cgroups ?? []) coll.map("cgroups").update(id, 1);
      for (const id of mntns ?? []) coll.map("mntns").update(id, 1);
    },
  };
}
