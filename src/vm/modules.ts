// Kernel modules for a guest: Debian's cloud kernels build virtio_blk, xfs, btrfs
// (and on 6.1 virtio_pci) as modules, and the unpacked linux-image package holds
// them under lib/modules/RELEASE but without modules.dep (depmod runs at install).
// So the dependencies are read here from each module's .modinfo ("depends="), the
// modules are decompressed here (6.12 ships .ko.xz; busybox insmod reads plain ELF),
// and /init insmods them in dependency order before the command.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { VmError } from "./host.ts";
import type { Kernel } from "./kernels.ts";

export interface GuestModule {
  name: string;
  /** The plain ELF module. */
  data: Uint8Array;
}

/** Module names compare with '-' and '_' alike, as the kernel's do. */
const norm = (name: string): string => name.replace(/-/g, "_");

/** lib/modules/RELEASE of the unpacked package the kernel came from, if there is one. */
export function moduleDir(kernel: Kernel): string | undefined {
  if (!kernel.release) return undefined;
  const dir = join(dirname(dirname(kernel.vmlinuz)), "lib", "modules", kernel.release);
  return existsSync(dir) ? dir : undefined;
}

function walk(dir: string, out: Map<string, string>): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else {
      const m = /^(.*)\.ko(\.xz)?$/.exec(e.name);
      if (m) out.set(norm(m[1]!), p);
    }
  }
}

let lzma: ((b: Uint8Array) => Uint8Array) | null | undefined;

function unxz(file: string, bytes: Uint8Array): Uint8Array {
  if (lzma === undefined) {
    try {
      const mod = createRequire(import.meta.url)("@napi-rs/lzma") as { xz: { decompressSync(input: Uint8Array): Uint8Array } };
      lzma = (b) => mod.xz.decompressSync(b);
    } catch {
      lzma = null;
    }
  }
  if (lzma) return lzma(bytes);
  const r = spawnSync("xz", ["-dc"], { input: bytes, maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) throw new VmError(`${file}: cannot decompress (no @napi-rs/lzma, and xz -dc failed: ${r.error?.message ?? r.stderr.toString().trim()})`);
  return r.stdout;
}

/** The "depends=" of a module's .modinfo (NUL-separated key=value strings). */
export function moduleDepends(elf: Uint8Array): string[] {
  const text = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength).toString("latin1");
  const i = text.indexOf("\0depends=");
  if (i < 0) return [];
  const value = text.slice(i + "\0depends=".length, text.indexOf("\0", i + 1));
  return value.split(",").filter((s) => s !== "").map(norm);
}

/**
 * The modules `names` and what they depend on, in the order to insmod them (each after
 * its dependencies); built-in modules are left out. An unknown module is an error.
 */
export function guestModules(kernel: Kernel, names: string[]): GuestModule[] {
  if (names.length === 0) return [];
  const dir = moduleDir(kernel);
  if (!dir) throw new VmError(`kernel ${kernel.name}: no lib/modules/${kernel.release ?? "RELEASE"} beside it, so modules (${names.join(", ")}) cannot be loaded in the guest`);
  const files = new Map<string, string>();
  walk(join(dir, "kernel"), files);
  const builtin = new Set<string>();
  try {
    for (const line of readFileSync(join(dir, "modules.builtin"), "utf8").split("\n")) {
      const m = /([^/]+)\.ko$/.exec(line.trim());
      if (m) builtin.add(norm(m[1]!));
    }
  } catch {
    // no list: every module named is looked for as a file
  }
  const out: GuestModule[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, from?: string): void => {
    const n = norm(name);
    if (state.get(n) === "done" || builtin.has(n)) return;
    if (state.get(n) === "visiting") throw new VmError(`module ${n}: a dependency cycle`);
    const file = files.get(n);
    if (!file) throw new VmError(`kernel ${kernel.name} has no module ${n}${from ? ` (needed by ${from})` : ""}, built in or as a file`);
    state.set(n, "visiting");
    let data: Uint8Array = readFileSync(file);
    if (file.endsWith(".xz")) data = unxz(file, data);
    for (const dep of moduleDepends(data)) visit(dep, n);
    state.set(n, "done");
    out.push({ name: n, data });
  };
  for (const n of names) visit(n);
  return out;
}

/** The file system in a raw image, by its super block's magic (ext2/3/4, xfs, btrfs), or undefined. */
export function imageFileSystem(bytes: Uint8Array): "ext4" | "xfs" | "btrfs" | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length >= 4 && b.toString("latin1", 0, 4) === "XFSB") return "xfs";
  if (b.length >= 0x10048 && b.toString("latin1", 0x10040, 0x10048) === "_BHRfS_M") return "btrfs";
  if (b.length >= 1082 && b.readUInt16LE(1080) === 0xef53) return "ext4";
  return undefined;
}
