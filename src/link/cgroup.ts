// cgroup hooks by cgroup path: cgroup_skb ingress/egress, sock_create,
// connect4/6, sysctl... A bpf_link where the kernel has one (5.7+), else
// BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI, detached on close. Model: cilium/ebpf link/cgroup.go.
import { closeSync, constants, openSync, readFileSync } from "node:fs";
import { AttachType, BpfCmd } from "../internal/sys/constants.ts";
import { Attr, bpf, linkCreate } from "../internal/sys/bpf.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { AttachError } from "./errors.ts";
import { Link, type AttachableProgram } from "./link.ts";
import { NO_LINK } from "./netdev.ts";

const BPF_F_ALLOW_MULTI = 2;

let root: string | undefined;

/** Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems (from /proc/self/mounts). */
export function cgroup2Root(): string {
  if (root) return root;
  const mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" "));
  const found = mounts.find((m) => m[2] === "cgroup2")?.[1];
  if (!found) throw new AttachError("no cgroup v2 file system is mounted (mount -t cgroup2 none /sys/fs/cgroup)", { hook: "cgroup", reason: "no cgroup2 mount" });
  root = found.replace(/\\040/g, " ");
  return root;
}

const attachTypeNames = Object.fromEntries(Object.entries(AttachType).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

export interface CgroupOptions {
  /** The cgroup's directory ("/sys/fs/cgroup/my.slice"), or a path relative to the cgroup2 root (cgroup2Root()). */
  path: string;
  /** BPF_CGROUP_*; default the program's expected attach type from its section. */
  attachType: number;
  method?: "auto" | "link" | "attach";
}

export function cgroupDir(path: string): string {
  return path.startsWith("/") ? path : `${cgroup2Root()}/${path}`;
}

export function attachCgroup(prog: AttachableProgram, opts: CgroupOptions): Link {
  const dir = cgroupDir(opts.path);
  const what = `cgroup:${dir}:${attachTypeNames[opts.attachType] ?? opts.attachType}`;
  let cg: number;
  try {
    cg = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw new AttachError(`cannot attach ${prog.name} to cgroup ${dir}: ${(err as Error).message}`, { cause: err, hook: "cgroup", target: dir, reason: "cannot open the cgroup directory" });
  }
  try {
    if (opts.method !== "attach") {
      try {
        const fd = linkCreate({ progFd: prog.fd.value, targetFd: cg, attachType: opts.attachType });
        return new Link(`${what} (link)`, fd);
      } catch (err) {
        if (!(err instanceof SyscallError) || opts.method === "link" || !NO_LINK.includes(err.code)) throw failed(prog, dir, err);
      }
    }
    const attr = (): Attr => new Attr().u32(0, cg).u32(4, prog.fd.value).u32(8, opts.attachType).u32(12, BPF_F_ALLOW_MULTI);
    try {
      bpf(BpfCmd.PROG_ATTACH, attr());
    } catch (err) {
      throw failed(prog, dir, err);
    }
    // The detach needs the cgroup again; keep it open until then.
    const keep = cg;
    cg = -1;
    const detach = (): void => {
      try {
        bpf(BpfCmd.PROG_DETACH, new Attr().u32(0, keep).u32(4, prog.fd.value).u32(8, opts.attachType));
      } finally {
        closeSync(keep);
      }
    };
    return new Link(`${what} (prog_attach)`, undefined, [], [detach]);
  } finally {
    if (cg >= 0) closeSync(cg);
  }
}

function failed(prog: AttachableProgram, dir: string, err: unknown): AttachError {
  return new AttachError(`cannot attach ${prog.name} to cgroup ${dir}: ${(err as Error).message}`, { cause: err, hook: "cgroup", target: dir, reason: (err as Error).message });
}
