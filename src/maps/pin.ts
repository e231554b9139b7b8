// bpffs: where maps, programs and links are pinned to outlive their process.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statfsSync } from "node:fs";
import { dirname } from "node:path";

const BPF_FS_MAGIC = 0xcafe4a11;
export const DEFAULT_BPFFS = "/sys/fs/bpf";

function isBpffs(dir: string): boolean {
  try {
    return statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes sure `path` can be pinned at: its directory must be on bpffs. Mounts
 * bpffs at /sys/fs/bpf when that is where the path lives and nothing is mounted.
 */
export function ensureBpffs(path: string): void {
  if (path.startsWith(`${DEFAULT_BPFFS}/`) && !isBpffs(DEFAULT_BPFFS)) {
    try {
      execFileSync("mount", ["-t", "bpf", "bpf", DEFAULT_BPFFS], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      throw new Error(`bpffs is not mounted at ${DEFAULT_BPFFS} and mounting it failed; run "mount -t bpf bpf ${DEFAULT_BPFFS}" as root`, { cause: err });
    }
  }
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  if (!isBpffs(dir)) throw new Error(`cannot pin at ${path}: ${dir} is not on a bpf filesystem (mount one with "mount -t bpf bpf DIR")`);
}
