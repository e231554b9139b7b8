// Kernels for `tsbpf vm`: Debian's linux-image packages, fetched with
// `apt-get download` and unpacked with `dpkg-deb -x` (never installed) into
// <cache>/kernels/<package>/, or a vmlinuz given by path. Each is also turned
// into an ELF vmlinux with a PVH entry note when it can be (the bzImage's payload,
// decompressed): QEMU then loads kernel and initramfs straight into guest memory
// instead of through the BIOS, and the guest skips decompressing itself (about
// 1.5 s less per boot under TCG).
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { aptUpdate, cacheDir, optionalTool, VmError, type Log } from "./host.ts";

export interface Kernel {
  /** The Debian package, or the path given. */
  name: string;
  /** `uname -r` of the kernel, when known ("6.1.0-56-cloud-amd64"). */
  release?: string;
  /** The bzImage. */
  vmlinuz: string;
  /** The decompressed ELF kernel with a PVH note, when it could be made. */
  pvh?: string;
  /** boot/config-* of the package, when known. */
  config?: string;
}

const KERNELS_DIR = (): string => join(cacheDir(), "kernels");
const PACKAGE = /^linux-image-(\d+)\.(\d+)\.\S*?-(cloud-)?amd64$/;

/** "6.1" of a linux-image package name, or undefined for flavours we do not use (rt, dbg, unsigned). */
function seriesOf(pkg: string): string | undefined {
  const m = PACKAGE.exec(pkg);
  if (!m || /-(rt|dbg|unsigned)-/.test(pkg)) return undefined;
  return `${m[1]}.${m[2]}`;
}

/** The numbers in a package name, for ordering versions: 6.1.0-56 < 6.1.0-56 (cloud first) ... */
function versionKey(pkg: string): number[] {
  return (pkg.match(/\d+/g) ?? []).map(Number);
}

function newer(a: string, b: string): number {
  const x = versionKey(a);
  const y = versionKey(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** The package to use for a series: the newest, the cloud flavour when there is one (it boots faster). */
function pick(pkgs: string[]): string | undefined {
  const cloud = pkgs.filter((p) => p.endsWith("-cloud-amd64"));
  return (cloud.length ? cloud : pkgs).sort(newer).at(-1);
}

function aptListsSignature(): string | undefined {
  const dir = "/var/lib/apt/lists";
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.includes("_Packages"));
  } catch {
    return undefined;
  }
  if (names.length === 0) return undefined;
  return names
    .sort()
    .map((n) => {
      const st = statSync(join(dir, n));
      return `${n}:${st.size}:${st.mtimeMs}`;
    })
    .join("\n");
}

/**
 * Every linux-image package name apt knows (`apt-cache pkgnames`; `apt-get update`
 * first when the package lists are empty). The answer is cached until the lists change,
 * since apt-cache takes most of a second. Undefined when apt is not usable.
 */
function aptKernelPackages(log: Log): string[] | undefined {
  let signature = aptListsSignature();
  if (signature === undefined) {
    try {
      aptUpdate(log);
    } catch (err) {
      log((err as Error).message);
      return undefined;
    }
    signature = aptListsSignature();
    if (signature === undefined) return undefined;
  }
  const hash = createHash("sha256").update(signature).digest("hex").slice(0, 16);
  const index = join(KERNELS_DIR(), `apt-index-${hash}.json`);
  try {
    return JSON.parse(readFileSync(index, "utf8")) as string[];
  } catch {
    // not cached yet
  }
  const r = spawnSync("apt-cache", ["pkgnames", "linux-image-"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return undefined;
  const names = r.stdout.split("\n").filter((n) => seriesOf(n) !== undefined).sort();
  try {
    mkdirSync(KERNELS_DIR(), { recursive: true });
    for (const old of readdirSync(KERNELS_DIR())) if (old.startsWith("apt-index-")) rmSync(join(KERNELS_DIR(), old), { force: true });
    writeFileSync(index, JSON.stringify(names));
  } catch {
    // uncached: asked again next time
  }
  return names;
}

function cachedPackages(): string[] {
  try {
    return readdirSync(KERNELS_DIR()).filter((n) => seriesOf(n) !== undefined && existsSync(join(KERNELS_DIR(), n, ".complete")));
  } catch {
    return [];
  }
}

export interface KernelListing {
  series: string;
  /** The package `--kernel SERIES` uses (undefined when apt does not know the series; then the newest cached one is used). */
  package?: string;
  cached: string[];
}

/** The kernel series apt offers and those in the cache, with the package each maps to. */
export function listKernels(log: Log): KernelListing[] {
  const apt = aptKernelPackages(log) ?? [];
  const cached = cachedPackages();
  const series = new Map<string, KernelListing>();
  const entry = (s: string): KernelListing => {
    let e = series.get(s);
    if (!e) series.set(s, (e = { series: s, cached: [] }));
    return e;
  };
  const bySeries = new Map<string, string[]>();
  for (const p of apt) {
    const s = seriesOf(p)!;
    bySeries.set(s, [...(bySeries.get(s) ?? []), p]);
  }
  for (const [s, pkgs] of bySeries) entry(s).package = pick(pkgs);
  for (const p of cached) entry(seriesOf(p)!).cached.push(p);
  return [...series.values()].sort((a, b) => newer(a.series, b.series));
}

/** The facts about a kernel's config that matter to BPF programs. */
export function kernelFeatures(config: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!config || !existsSync(config)) return out;
  const text = readFileSync(config, "utf8");
  for (const option of ["KPROBES", "DEBUG_INFO_BTF", "FPROBE", "BPF_LSM"]) {
    const m = new RegExp(`^CONFIG_${option}=(\\S+)`, "m").exec(text);
    out[option] = m ? m[1]! : "n";
  }
  return out;
}

function kernelOfDir(pkg: string, dir: string): Kernel {
  const boot = join(dir, "boot");
  const files = readdirSync(boot);
  const vmlinuz = files.find((f) => f.startsWith("vmlinuz-"));
  if (!vmlinuz) throw new VmError(`${pkg} has no boot/vmlinuz-* (in ${boot})`);
  const release = vmlinuz.slice("vmlinuz-".length);
  const config = files.find((f) => f.startsWith("config-"));
  const pvh = join(dir, "vmlinux-pvh");
  return {
    name: pkg,
    release,
    vmlinuz: join(boot, vmlinuz),
    pvh: existsSync(pvh) ? pvh : undefined,
    config: config ? join(boot, config) : undefined,
  };
}

/** Downloads and unpacks a kernel package into the cache (once). */
export function fetchKernel(pkg: string, log: Log): Kernel {
  const dir = join(KERNELS_DIR(), pkg);
  if (existsSync(join(dir, ".complete"))) return kernelOfDir(pkg, dir);
  for (const tool of ["apt-get", "dpkg-deb"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new VmError(`cannot fetch ${pkg}: ${tool} is not installed`);
  }
  const tmp = join(KERNELS_DIR(), `.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const started = Date.now();
    log(`apt-get download ${pkg}`);
    let r = spawnSync("apt-get", ["download", "-q", "-o", "APT::Sandbox::User=root", pkg], { cwd: tmp, encoding: "utf8" });
    if (r.status !== 0 && /Unable to locate|404|Failed to fetch/.test(r.stderr ?? "")) {
      aptUpdate(log);
      r = spawnSync("apt-get", ["download", "-q", "-o", "APT::Sandbox::User=root", pkg], { cwd: tmp, encoding: "utf8" });
    }
    if (r.error || r.status !== 0) throw new VmError(`"apt-get download ${pkg}" failed: ${r.error?.message ?? (r.stderr ?? "").trim()}`);
    const deb = readdirSync(tmp).find((f) => f.endsWith(".deb"));
    if (!deb) throw new VmError(`"apt-get download ${pkg}" left no .deb in ${tmp}`);
    const downloaded = Date.now();
    const root = join(tmp, "root");
    r = spawnSync("dpkg-deb", ["-x", join(tmp, deb), root], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new VmError(`"dpkg-deb -x ${deb}" failed: ${r.error?.message ?? (r.stderr ?? "").trim()}`);
    const k = kernelOfDir(pkg, root);
    makePvh(k.vmlinuz, join(root, "vmlinux-pvh"), log);
    writeFileSync(join(root, ".complete"), `${deb}\n`);
    log(`${pkg}: downloaded in ${downloaded - started} ms, unpacked in ${Date.now() - downloaded} ms`);
    try {
      renameSync(root, dir);
    } catch (err) {
      // Another process cached it first: use theirs.
      if (!existsSync(join(dir, ".complete"))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return kernelOfDir(pkg, dir);
}

/** The kernel `--kernel SPEC` names: a series ("6.1", "6.12") or a path to a vmlinuz (or PVH vmlinux). */
export function resolveKernel(spec: string, log: Log): Kernel {
  if (!/^\d+\.\d+$/.test(spec)) return localKernel(resolve(spec), log);
  const apt = aptKernelPackages(log);
  const cached = cachedPackages();
  const candidates = (apt ?? []).filter((p) => seriesOf(p) === spec);
  const pkg = pick(candidates) ?? pick(cached.filter((p) => seriesOf(p) === spec));
  if (!pkg) {
    const known = [...new Set([...(apt ?? []), ...cached].map((p) => seriesOf(p)!))].sort(newer);
    throw new VmError(
      `unknown kernel ${spec}; available: ${known.length ? known.join(", ") : "(none: apt knows no linux-image packages)"} or a path to a vmlinuz`,
    );
  }
  return fetchKernel(pkg, log);
}

function localKernel(path: string, log: Log): Kernel {
  if (!existsSync(path) || !statSync(path).isFile()) throw new VmError(`kernel ${path}: no such file (give a version such as 6.1 or 6.12, or a path to a vmlinuz)`);
  const head = readFileSync(path).subarray(0, 4);
  if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    if (!hasPvhNote(readFileSync(path))) throw new VmError(`${path} is an ELF kernel without a PVH entry note: QEMU cannot boot it; give the bzImage (vmlinuz)`);
    return { name: path, vmlinuz: path, pvh: path };
  }
  const st = statSync(path);
  const key = createHash("sha256").update(`${path}:${st.size}:${st.mtimeMs}`).digest("hex").slice(0, 16);
  const pvh = join(KERNELS_DIR(), "local", key, "vmlinux-pvh");
  const none = `${pvh}.none`;
  if (!existsSync(pvh) && !existsSync(none)) {
    mkdirSync(join(KERNELS_DIR(), "local", key), { recursive: true });
    if (!makePvh(path, pvh, log)) writeFileSync(none, "");
  }
  return { name: path, vmlinuz: path, pvh: existsSync(pvh) ? pvh : undefined };
}

/** True when an ELF image carries XEN_ELFNOTE_PHYS32_ENTRY (QEMU's PVH boot needs it). */
export function hasPvhNote(elf: Uint8Array): boolean {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < 64 || v.getUint32(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (v.getUint32(ph, true) !== 4 /* PT_NOTE */) continue;
    const off = Number(v.getBigUint64(ph + 8, true));
    const end = off + Number(v.getBigUint64(ph + 32, true));
    for (let p = off; p + 12 <= end; ) {
      const namesz = v.getUint32(p, true);
      const descsz = v.getUint32(p + 4, true);
      const type = v.getUint32(p + 8, true);
      const name = Buffer.from(elf.subarray(p + 12, p + 12 + namesz)).toString("latin1");
      if (name.startsWith("Xen") && type === 18) return true;
      p += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
    }
  }
  return false;
}

/** Decompressors by the payload's magic; all but gzip have the kernel's 4-byte size appended. */
const DECOMPRESSORS: { magic: number[]; tool?: [string, string, string[]] }[] = [
  { magic: [0x1f, 0x8b] },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], tool: ["zstd", "zstd", ["-dc"]] },
  { magic: [0x02, 0x21, 0x4c, 0x18], tool: ["lz4", "lz4", ["-dc"]] },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], tool: ["xz", "xz-utils", ["-dc"]] },
  { magic: [0x5d, 0x00, 0x00], tool: ["xz", "xz-utils", ["--format=lzma", "-dc"]] },
  { magic: [0x42, 0x5a, 0x68], tool: ["bzip2", "bzip2", ["-dc"]] },
];

/**
 * The ELF vmlinux inside a bzImage: its payload, decompressed (with the system's
 * zstd/xz/lz4/bzip2, or node's zlib for gzip). Throws saying why it cannot.
 */
export function vmlinuxOf(vmlinuz: string, log: Log): Buffer {
  const image = readFileSync(vmlinuz);
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 0x250 || image.toString("latin1", 0x202, 0x206) !== "HdrS" || v.getUint16(0x206, true) < 0x208) {
    throw new VmError(`${vmlinuz}: not a bzImage with a payload header`);
  }
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + v.getUint32(0x248, true);
  const payload = image.subarray(start, start + v.getUint32(0x24c, true));
  const d = DECOMPRESSORS.find((x) => x.magic.every((b, i) => payload[i] === b));
  if (!d) throw new VmError(`${vmlinuz}: unknown compression (magic ${payload.subarray(0, 4).toString("hex")})`);
  if (!d.tool) return gunzipSync(payload);
  const [name, pkg, args] = d.tool;
  const tool = optionalTool(name, pkg, log);
  if (!tool) throw new VmError(`${vmlinuz}: ${name} is missing`);
  const r = spawnSync(tool, args, { input: payload.subarray(0, payload.length - 4), maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0 || r.stdout.length === 0) {
    throw new VmError(`${vmlinuz}: ${name} ${args.join(" ")} failed: ${r.error?.message ?? r.stderr.toString().trim()}`);
  }
  return r.stdout;
}

/**
 * Writes the bzImage's decompressed payload (the ELF vmlinux) to `out` if it has
 * a PVH entry note. Returns false (and says why with `log`) when it cannot.
 */
export function makePvh(vmlinuz: string, out: string, log: Log): boolean {
  let elf: Buffer;
  try {
    elf = vmlinuxOf(vmlinuz, log);
    if (!hasPvhNote(elf)) throw new Error("the kernel has no PVH entry note (CONFIG_PVH)");
  } catch (err) {
    const why = (err as Error).message.replace(`${vmlinuz}: `, "");
    log(`${vmlinuz}: no PVH image (${why}); booting it through the BIOS (slower)`);
    return false;
  }
  const tmp = `${out}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    writeFileSync(fd, elf);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, out);
  return true;
}
