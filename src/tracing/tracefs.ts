// Finding (or mounting) tracefs, the kernel's tracing filesystem.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NotSupportedError } from "../errors.ts";

export const DEFAULT_TRACEFS = "/sys/kernel/tracing";

let found: string | undefined;

/** /proc/self/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mounted tracefs directories, best first: tracefs mounts, then debugfs's tracing/. */
function mountedCandidates(): string[] {
  let mounts: string;
  try {
    mounts = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  const tracefs: string[] = [];
  const debugfs: string[] = [];
  for (const line of mounts.split("\n")) {
    const [, mountPoint, type] = line.split(" ");
    if (mountPoint === undefined || type === undefined) continue;
    if (type === "tracefs") tracefs.push(unescapeMount(mountPoint));
    else if (type === "debugfs") debugfs.push(join(unescapeMount(mountPoint), "tracing"));
  }
  // Prefer the canonical mount point when tracefs is mounted more than once.
  tracefs.sort((a, b) => Number(b === DEFAULT_TRACEFS) - Number(a === DEFAULT_TRACEFS));
  return [...tracefs, ...debugfs];
}

function usable(dir: string): boolean {
  return existsSync(join(dir, "trace_pipe"));
}

/**
 * The tracefs directory (where trace_pipe, trace_marker, kprobe_events... live):
 * a mounted tracefs, or debugfs's tracing/ directory; if neither is mounted,
 * tracefs is mounted at /sys/kernel/tracing (which needs root). Cached once found.
 */
export function tracefsDir(): string {
  if (found !== undefined && usable(found)) return found;
  found = undefined;
  for (const dir of mountedCandidates()) {
    if (usable(dir)) return (found = dir);
  }
  const mount = existsSync("/bin/mount") ? "/bin/mount" : "mount";
  try {
    execFileSync(mount, ["-t", "tracefs", "nodev", DEFAULT_TRACEFS], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer | string };
    const detail = e.stderr !== undefined && String(e.stderr).trim() !== "" ? String(e.stderr).trim() : e.message;
    const notRoot = typeof process.getuid === "function" && process.getuid() !== 0;
    throw new NotSupportedError("tracefs",
      `tsbpf: tracefs is not mounted, and mounting it failed ("mount -t tracefs nodev ${DEFAULT_TRACEFS}": ${detail}). ` +
        (notRoot ? "Mounting needs root (CAP_SYS_ADMIN); run as root, or " : "") +
        `mount it yourself with "mount -t tracefs nodev ${DEFAULT_TRACEFS}" (the kernel needs CONFIG_TRACING).`,
      { cause: error },
    );
  }
  if (!usable(DEFAULT_TRACEFS)) {
    throw new NotSupportedError("tracefs",
      `tsbpf: mounted tracefs at ${DEFAULT_TRACEFS} but it has no trace_pipe; is the kernel built with CONFIG_TRACING?`,
    );
  }
  return (found = DEFAULT_TRACEFS);
}
