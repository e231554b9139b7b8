// vmlinux.h: the kernel's types as C, generated from the running kernel's BTF
// with bpftool and cached per BTF content (a new kernel gets a new header).
import { spawn } from "node:child_process";
import { NotSupportedError, TsbpfError } from "../errors.ts";
import { constants, existsSync, readFileSync, statSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { cacheDir as trustedCacheDir, defaultCacheDir, sha256, tempNameFor } from "./cache.ts";
import { findBpftool } from "./tools.ts";

export const DEFAULT_BTF_PATH = "/sys/kernel/btf/vmlinux";

export interface VmlinuxOptions {
  /** Kernel BTF to generate the header from. Default /sys/kernel/btf/vmlinux. */
  btfPath?: string;
  /** Cache directory. Default: see `defaultCacheDir()`. */
  cacheDir?: string;
}

export interface VmlinuxHeader {
  /** Absolute path of vmlinux.h. */
  path: string;
  /** sha256 (hex) of the BTF it was generated from. */
  btfHash: string;
}

const btfHashes = new Map<string, { stamp: string; hash: Promise<string> }>();

/** sha256 of the BTF file, memoised per process while its size/mtime/inode are unchanged. */
function btfHash(btfPath: string): Promise<string> {
  let stat;
  try {
    stat = statSync(btfPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new NotSupportedError("kernel BTF",
        `tsbpf: kernel BTF not found at ${btfPath}: vmlinux.h is generated from the kernel's BTF. ` +
          "The kernel needs CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.4 have it), " +
          "or pass `btfPath` to a BTF file for this kernel.",
      );
    }
    throw error;
  }
  const stamp = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  const known = btfHashes.get(btfPath);
  if (known && known.stamp === stamp) return known.hash;
  // Synchronously, once per process: sysfs serves /sys/kernel/btf/vmlinux at
  // most a page per read(), so ~1,400 reads through the threadpool take ~150 ms
  // where a read loop on this thread takes ~20 ms.
  const hash = Promise.resolve(sha256(readFileSync(btfPath)));
  btfHashes.set(btfPath, { stamp, hash });
  return hash;
}

const generating = new Map<string, Promise<void>>();

async function generate(btfPath: string, header: string): Promise<void> {
  const bpftool = findBpftool();
  // A new file of our own (never an existing one, never through a symlink), renamed into place.
  const tmp = tempNameFor(header);
  const out = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const { code, signal, stderr } = await new Promise<{ code: number | null; signal: string | null; stderr: string }>(
      (resolvePromise, reject) => {
        const child = spawn(bpftool, ["btf", "dump", "file", btfPath, "format", "c"], {
          stdio: ["ignore", out.fd, "pipe"],
        });
        let stderr = "";
        child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
        child.on("error", reject);
        child.on("close", (code, signal) => resolvePromise({ code, signal, stderr }));
      },
    );
    await out.close();
    if (code !== 0) {
      throw new TsbpfError("ERR_TSBPF_COMPILE",
        `tsbpf: generating vmlinux.h failed: "${bpftool} btf dump file ${btfPath} format c" ` +
          `${signal ? `was killed by ${signal}` : `exited with ${code}`}: ${stderr.trim()}`,
      );
    }
    await rename(tmp, header);
  } catch (error) {
    await out.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
}

/** vmlinux.h for the kernel's BTF, with the hash it is keyed by; generated on first use. */
export async function vmlinuxHeaderInfo(options: VmlinuxOptions = {}): Promise<VmlinuxHeader> {
  const btfPath = resolve(options.btfPath ?? DEFAULT_BTF_PATH);
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  const hash = await btfHash(btfPath);
  // The directory is checked (the user's, 0700, no symlinks): the header is compiled into programs run as root.
  const header = join(trustedCacheDir(cacheDir, "vmlinux", hash), "vmlinux.h");
  if (!existsSync(header)) {
    let pending = generating.get(header);
    if (!pending) {
      pending = generate(btfPath, header).finally(() => generating.delete(header));
      generating.set(header, pending);
    }
    await pending;
  }
  return { path: header, btfHash: hash };
}

/**
 * Path of vmlinux.h generated from the kernel's BTF (`btfPath`, default
 * /sys/kernel/btf/vmlinux) with `bpftool btf dump ... format c`, cached in
 * `<cacheDir>/vmlinux/<sha256 of the BTF>/vmlinux.h`.
 */
export async function vmlinuxHeader(options: VmlinuxOptions = {}): Promise<string> {
  return (await vmlinuxHeaderInfo(options)).path;
}
