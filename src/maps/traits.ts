// What each map type is, in one table: read by maps/ (values per CPU, BTF at
// create), gen/ (what a skeleton offers), bcc/table.ts, features/ (how to probe
// it) and the ELF reader. A type missing here has every trait false.
import { MapType } from "../internal/sys/constants.ts";

export interface MapTraits {
  /** The kernel's name without BPF_MAP_TYPE_, lower case ("percpu_hash"). */
  name: string;
  /** One value per possible CPU in lookups and updates. */
  perCpu?: boolean;
  /** No key: push/pop/peek (queue, stack, bloom filter); key_size is 0. */
  noKey?: boolean;
  /** Values are file descriptors of other kernel objects (programs, maps, perf events, sockets, devices). */
  fdValues?: boolean;
  /** With fdValues: what user space updates it with, when tsbpf has a class for it. */
  holds?: "program" | "map";
  /** Values are user-visible only through events (ring and perf buffers), never looked up. */
  events?: boolean;
  /** The kernel requires the key/value BTF at create (local storage maps, struct_ops). */
  btfRequired?: boolean;
  /** The kernel refuses key/value BTF at create (it is left out). */
  btfRefused?: boolean;
  /** key_size and value_size are 0 and max_entries is a byte size (ring buffers). */
  byteSized?: boolean;
  /** Entries cannot be deleted (arrays: every index always exists). */
  fixedEntries?: boolean;
  /** Values are arrays of instruction pointers (stack traces). */
  addresses?: boolean;
  /**
   * Local storage: a value per kernel object, kept with the object and freed with it.
   * The key is a file descriptor of the owner in user space (a socket, a pidfd, an
   * inode's file, a cgroup directory); the map is created with BPF_F_NO_PREALLOC,
   * max_entries 0 and its key/value BTF, and it cannot be walked (no get_next_key).
   */
  localStorage?: "sk" | "task" | "inode" | "cgrp";
  /** Targets of bpf_redirect_map() from XDP (devmap, devmap_hash, cpumap, xskmap). */
  redirect?: boolean;
  /** The value's layout, when it is a kernel struct: struct bpf_devmap_val or struct bpf_cpumap_val (see maps/codec.ts). */
  valueLayout?: "devmap" | "cpumap";
  /** User space may write values but never read them back (xskmap: lookups are EOPNOTSUPP). */
  writeOnly?: boolean;
}

const T = MapType;

export const mapTraits: Readonly<Record<number, MapTraits>> = {
  [T.HASH]: { name: "hash" },
  [T.ARRAY]: { name: "array", fixedEntries: true },
  [T.PROG_ARRAY]: { name: "prog_array", fdValues: true, holds: "program", btfRefused: true, fixedEntries: true },
  [T.PERF_EVENT_ARRAY]: { name: "perf_event_array", fdValues: true, events: true, btfRefused: true, fixedEntries: true },
  [T.PERCPU_HASH]: { name: "percpu_hash", perCpu: true },
  [T.PERCPU_ARRAY]: { name: "percpu_array", perCpu: true, fixedEntries: true },
  [T.STACK_TRACE]: { name: "stack_trace", btfRefused: true, addresses: true },
  [T.CGROUP_ARRAY]: { name: "cgroup_array", fdValues: true, btfRefused: true, fixedEntries: true },
  [T.LRU_HASH]: { name: "lru_hash" },
  [T.LRU_PERCPU_HASH]: { name: "lru_percpu_hash", perCpu: true },
  [T.LPM_TRIE]: { name: "lpm_trie" },
  [T.ARRAY_OF_MAPS]: { name: "array_of_maps", fdValues: true, holds: "map", btfRefused: true, fixedEntries: true },
  [T.HASH_OF_MAPS]: { name: "hash_of_maps", fdValues: true, holds: "map", btfRefused: true },
  [T.DEVMAP]: { name: "devmap", btfRefused: true, redirect: true, valueLayout: "devmap" },
  [T.SOCKMAP]: { name: "sockmap", fdValues: true, btfRefused: true },
  [T.CPUMAP]: { name: "cpumap", btfRefused: true, redirect: true, valueLayout: "cpumap" },
  [T.XSKMAP]: { name: "xskmap", fdValues: true, btfRefused: true, redirect: true, writeOnly: true },
  [T.SOCKHASH]: { name: "sockhash", fdValues: true, btfRefused: true },
  [T.CGROUP_STORAGE]: { name: "cgroup_storage" },
  [T.REUSEPORT_SOCKARRAY]: { name: "reuseport_sockarray", fdValues: true },
  [T.PERCPU_CGROUP_STORAGE]: { name: "percpu_cgroup_storage", perCpu: true },
  [T.QUEUE]: { name: "queue", noKey: true, btfRefused: true },
  [T.STACK]: { name: "stack", noKey: true, btfRefused: true },
  [T.SK_STORAGE]: { name: "sk_storage", btfRequired: true, localStorage: "sk" },
  [T.DEVMAP_HASH]: { name: "devmap_hash", btfRefused: true, redirect: true, valueLayout: "devmap" },
  [T.STRUCT_OPS]: { name: "struct_ops", btfRequired: true },
  [T.RINGBUF]: { name: "ringbuf", events: true, btfRefused: true, byteSized: true },
  [T.INODE_STORAGE]: { name: "inode_storage", btfRequired: true, localStorage: "inode" },
  [T.TASK_STORAGE]: { name: "task_storage", btfRequired: true, localStorage: "task" },
  [T.BLOOM_FILTER]: { name: "bloom_filter", noKey: true },
  [T.USER_RINGBUF]: { name: "user_ringbuf", events: true, btfRefused: true, byteSized: true },
  [T.CGRP_STORAGE]: { name: "cgrp_storage", btfRequired: true, localStorage: "cgrp" },
  [T.ARENA]: { name: "arena" },
};

/** Every map type with the trait, for sets and messages. */
export function mapTypesWith(trait: keyof Omit<MapTraits, "name" | "holds" | "localStorage" | "valueLayout">): number[] {
  return Object.entries(mapTraits).filter(([, t]) => t[trait]).map(([type]) => Number(type));
}

/** The traits of a map type (all false, named by number, for a type this table does not know). */
export function traitsOf(type: number): MapTraits {
  return mapTraits[type] ?? { name: `map type ${type}` };
}
