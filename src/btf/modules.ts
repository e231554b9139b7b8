// The BTF of the running kernel's loaded modules (libbpf's load_module_btfs):
// each is split BTF on top of vmlinux's, found by walking the kernel's BTF
// objects (BTF_GET_NEXT_ID) and keeping those whose info says kernel_btf with a
// name other than "vmlinux". The fds stay open for the life of the process, as
// the vmlinux Spec stays cached: kfunc calls name a module's BTF through
// fd_array at BPF_PROG_LOAD, typed ksyms by its fd in the ld_imm64.
import { readdirSync, readFileSync } from "node:fs";
import { BpfCmd } from "../internal/sys/constants.ts";
import * as sys from "../internal/sys/bpf.ts";
import type { FD } from "../internal/sys/fd.ts";
import { native } from "../internal/sys/native.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { Spec } from "./spec.ts";

/** One loaded module's BTF. */
export interface ModuleBtf {
  /** The module's name ("nf_conntrack"), as /sys/kernel/btf/NAME. */
  readonly name: string;
  /** The BTF object's id in the kernel. */
  readonly id: number;
  /** An fd of the BTF object (owned by the cache; closed by releaseModuleBtfs). */
  readonly fd: FD;
  /** The module's types on top of vmlinux's (read on first use). */
  readonly spec: Spec;
}

interface Cached {
  module?: ModuleBtf;
}

/** By BTF id: a module's BTF, or nothing for ids that are not module BTF (programs' own). */
const byId = new Map<number, Cached>();

/** What bpf_btf_info says of one BTF object: its name, and whether the kernel made it. */
function btfInfo(fd: number): { name: string; kernel: boolean } {
  const info = new Uint8Array(32);
  const name = new Uint8Array(64);
  const v = new DataView(info.buffer);
  v.setBigUint64(16, native().addressOf(name), true);
  v.setUint32(24, name.byteLength, true);
  sys.objGetInfoByFd(fd, info);
  const end = name.indexOf(0);
  return { name: new TextDecoder().decode(name.subarray(0, end < 0 ? name.length : end)), kernel: v.getUint32(28, true) !== 0 };
}

const SYSFS = "/sys/kernel/btf";

/** Module Specs by name and base: one parse per module per process, shared by CO-RE and externs. */
let specs = new WeakMap<Spec, Map<string, Spec>>();

function moduleSpec(name: string, base: Spec, read: () => Uint8Array): Spec {
  let byName = specs.get(base);
  if (!byName) specs.set(base, (byName = new Map()));
  let spec = byName.get(name);
  if (!spec) byName.set(name, (spec = new Spec(read(), { base })));
  return spec;
}

function moduleBtf(name: string, id: number, fd: FD, base: () => Spec): ModuleBtf {
  return {
    name,
    id,
    fd,
    get spec(): Spec {
      return moduleSpec(name, base(), () => {
        try {
          return readFileSync(`${SYSFS}/${name}`);
        } catch {
          return sys.btfBytes(fd.value); // sysfs not mounted: the kernel gives the same bytes
        }
      });
    },
  };
}

/**
 * The Specs of the modules in /sys/kernel/btf (no bpf() call, so no privilege needed):
 * what CO-RE relocations search when vmlinux lacks a type. Empty without sysfs or module BTF.
 */
export function moduleBtfSpecs(base: () => Spec = () => Spec.kernel()): Spec[] {
  let names: string[];
  try {
    names = readdirSync(SYSFS).filter((n) => n !== "vmlinux").sort();
  } catch {
    return [];
  }
  const out: Spec[] = [];
  for (const name of names) {
    try {
      out.push(moduleSpec(name, base(), () => readFileSync(`${SYSFS}/${name}`)));
    } catch {
      // Unloaded since it was listed, or unreadable: not a candidate.
    }
  }
  return out;
}

/**
 * The BTF of every module loaded now, in BTF id order (load order). Modules seen
 * before are not read again; ones loaded since are added. `base` is vmlinux's Spec
 * (default: Spec.kernel()). Empty on kernels without module BTF (before 5.11, or
 * without CONFIG_DEBUG_INFO_BTF_MODULES).
 */
export function loadedModuleBtfs(base: () => Spec = () => Spec.kernel()): ModuleBtf[] {
  const out: ModuleBtf[] = [];
  for (const id of sys.listIds(BpfCmd.BTF_GET_NEXT_ID)) {
    let cached = byId.get(id);
    if (!cached) {
      let fd: FD;
      try {
        fd = sys.fdById(BpfCmd.BTF_GET_FD_BY_ID, id);
      } catch (err) {
        if (err instanceof SyscallError && err.code === "ENOENT") continue; // freed since it was listed
        throw err;
      }
      const info = btfInfo(fd.value);
      if (info.kernel && info.name !== "vmlinux" && info.name !== "") {
        cached = { module: moduleBtf(info.name, id, fd, base) };
      } else {
        fd.close();
        cached = {};
      }
      byId.set(id, cached);
    }
    if (cached.module) out.push(cached.module);
  }
  return out;
}

/** Closes the cached module BTF fds and drops their Specs (as Spec.releaseKernel for vmlinux). */
export function releaseModuleBtfs(): void {
  for (const c of byId.values()) c.module?.fd.close();
  byId.clear();
  specs = new WeakMap();
}
