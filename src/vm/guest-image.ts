// The guest's initramfs, in cached layers (cpio archives the kernel unpacks one
// after the other):
//   system   busybox and its applet links, node (stripped), the libraries ldd
//            lists for it and for the project's native addons, npm and npx
//   project  the project tree at its host path: sources, the built addon,
//            node_modules without dev-only packages (typescript, @types)
//   run      /init and the files of this run (--file), small, written every run
// A layer is rebuilt only when the list of its files, sizes, modes or mtimes changes.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { CpioWriter, type CpioEntry } from "./cpio.ts";
import { cacheDir, findBusybox, VmError, type Log } from "./host.ts";
import { which } from "../internal/which.ts";

/** A set of guest files, keyed by guest path; symlinks recorded so that paths can be made canonical. */
export class GuestTree {
  readonly entries = new Map<string, CpioEntry>();

  /** `base`: the tree unpacked before this one, whose symlinks (a merged-/usr /bin) paths here go through. */
  constructor(readonly base?: GuestTree) {}

  lookup(path: string): CpioEntry | undefined {
    return this.entries.get(path) ?? this.base?.lookup(path);
  }

  /** The guest path with every symlinked directory in it replaced by its target. */
  canonical(path: string): string {
    const parts = posix.normalize(path).split("/").filter((p) => p !== "");
    let out = "/";
    for (let i = 0; i < parts.length; i++) {
      const next = posix.join(out, parts[i]!);
      const e = this.lookup(next);
      if (e?.type === "symlink" && i < parts.length - 1) {
        out = posix.resolve(out, e.target);
        continue;
      }
      out = next;
    }
    return out;
  }

  add(e: CpioEntry): void {
    const path = this.canonical(e.path);
    this.entries.set(path, { ...e, path });
  }

  has(path: string): boolean {
    return this.entries.has(this.canonical(path));
  }

  /**
   * A host path at the same guest path, symlinks and all: each symlink met on the
   * way (a merged-/usr /lib, /usr/bin/npm -> ../lib/...) is recreated and followed.
   * `source` replaces the contents of the final file (a stripped copy).
   */
  addHostPath(hostPath: string, source?: string): void {
    let path = resolve(hostPath);
    for (let hops = 0; hops < 40; hops++) {
      const parts = path.split("/").filter((p) => p !== "");
      let prefix = "/";
      let redirected = false;
      for (let i = 0; i < parts.length; i++) {
        prefix = posix.join(prefix, parts[i]!);
        const st = lstatSync(prefix);
        if (st.isSymbolicLink()) {
          const target = readlinkSync(prefix);
          if (!this.entries.has(prefix)) this.add({ type: "symlink", path: prefix, target, mtime: st.mtimeMs / 1000 });
          path = posix.resolve(posix.dirname(prefix), target, ...parts.slice(i + 1));
          redirected = true;
          break;
        }
      }
      if (redirected) continue;
      const st = statSync(path);
      if (st.isDirectory()) this.add({ type: "dir", path, mode: st.mode, mtime: st.mtimeMs / 1000 });
      else this.add({ type: "file", path, source: source ?? path, mode: st.mode, mtime: st.mtimeMs / 1000 });
      return;
    }
    throw new VmError(`too many symlinks resolving ${hostPath}`);
  }

  /**
   * A host file or directory tree copied to `guestPath` (symlinks inside a tree are
   * kept as symlinks; `skip` prunes host paths).
   */
  addTree(hostPath: string, guestPath: string, skip: (hostPath: string, st: Stats) => boolean = () => false): void {
    const st = statSync(hostPath);
    if (!st.isDirectory()) {
      this.add({ type: "file", path: guestPath, source: hostPath, mode: st.mode, mtime: st.mtimeMs / 1000 });
      return;
    }
    this.add({ type: "dir", path: guestPath, mode: st.mode, mtime: st.mtimeMs / 1000 });
    for (const name of readdirSync(hostPath).sort()) {
      const h = join(hostPath, name);
      const g = posix.join(guestPath, name);
      const l = lstatSync(h);
      if (skip(h, l)) continue;
      if (l.isSymbolicLink()) this.add({ type: "symlink", path: g, target: readlinkSync(h), mtime: l.mtimeMs / 1000 });
      else if (l.isDirectory()) this.addTree(h, g, skip);
      else if (l.isFile()) this.add({ type: "file", path: g, source: h, mode: l.mode, mtime: l.mtimeMs / 1000 });
    }
  }

  /** What identifies the layer's contents: paths, sources, sizes, modes, mtimes, data hashes. */
  key(): string {
    const hash = createHash("sha256");
    for (const e of this.entries.values()) {
      if (e.type === "file" && "source" in e) {
        const st = statSync(e.source);
        hash.update(`f ${e.path} ${e.source} ${st.size} ${st.mtimeMs} ${e.mode} ${e.mtime}\n`);
      } else if (e.type === "file") {
        hash.update(`d ${e.path} ${e.mode} ${createHash("sha256").update(e.data).digest("hex")}\n`);
      } else if (e.type === "symlink") {
        hash.update(`l ${e.path} ${e.target}\n`);
      } else {
        hash.update(`D ${e.path} ${e.mode}\n`);
      }
    }
    return hash.digest("hex").slice(0, 20);
  }

  /** Writes the archive: directories first along each path (the writer adds parents), then in insertion order. */
  write(file: string): void {
    const w = new CpioWriter(file);
    try {
      for (const e of this.entries.values()) w.add(e);
      w.close();
    } catch (err) {
      w.abort();
      throw err;
    }
  }
}

const LAYERS_DIR = (): string => join(cacheDir(), "vm", "initramfs");

/** The cached archive of a layer (built when its key is new); older archives of the layer are pruned. */
export function layerFile(name: string, tree: GuestTree, log: Log): { file: string; built: boolean } {
  const dir = LAYERS_DIR();
  const file = join(dir, `${name}-${tree.key()}.cpio`);
  if (existsSync(file)) return { file, built: false };
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    tree.write(tmp);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
  log(`built the ${name} layer (${tree.entries.size} entries, ${(statSync(file).size / 1e6).toFixed(1)} MB) in ${Date.now() - started} ms`);
  // Keep the three newest archives of this layer (several projects may alternate).
  const old = readdirSync(dir)
    .filter((f) => f.startsWith(`${name}-`) && f.endsWith(".cpio"))
    .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t)
    .slice(3);
  for (const { f } of old) rmSync(join(dir, f), { force: true });
  return { file, built: true };
}

/** Shared libraries ldd lists for these binaries. */
function sharedLibraries(binaries: string[]): string[] {
  const libs = new Set<string>();
  for (const bin of binaries) {
    const r = spawnSync("ldd", [bin], { encoding: "utf8" });
    if (r.status !== 0) continue;
    for (const line of r.stdout.split("\n")) {
      const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m) libs.add(m[1]!);
    }
  }
  return [...libs];
}

/** A stripped copy of node (13 MB less to unpack in the guest), cached; the original when strip is missing. */
function strippedNode(node: string, log: Log): string {
  const strip = which("strip");
  if (!strip) return node;
  const st = statSync(node);
  const key = createHash("sha256").update(`${node}:${st.size}:${st.mtimeMs}`).digest("hex").slice(0, 16);
  const out = join(cacheDir(), "vm", `node-${key}`);
  if (existsSync(out)) return out;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const r = spawnSync(strip, ["-o", tmp, node], { encoding: "utf8" });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    log(`strip ${node} failed (${r.stderr.trim()}); using it unstripped`);
    return node;
  }
  renameSync(tmp, out);
  return out;
}

/** The npm package directory (holding bin/npm-cli.js and bin/npx-cli.js), if npm is installed. */
function npmPackageDir(): { dir: string; links: string[] } | undefined {
  const npm = which("npm");
  if (!npm) return undefined;
  let dir = dirname(realpathSync(npm));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string }).name === "npm") {
        return { dir, links: [npm, which("npx")].filter((p): p is string => p !== undefined) };
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Every `*.node` native addon under the project (build/Release and node_modules). */
function nativeAddons(tree: GuestTree): string[] {
  const out: string[] = [];
  for (const e of tree.entries.values()) if (e.type === "file" && "source" in e && e.source.endsWith(".node")) out.push(e.source);
  return out;
}

/** The node binary the guest runs: this process's, at its host path. */
export function hostNode(): string {
  return process.execPath;
}

/** Bump when systemTree() puts different things in the layer. */
const SYSTEM_FORMAT = 1;

/**
 * The system layer's archive. Its key (every file's size and mtime) costs a walk of
 * npm's 2,400 files; a cheaper signature (node, busybox, npm's package.json, the
 * libraries) finds the archive of an unchanged system first.
 */
export function systemLayer(project: GuestTree, log: Log): { file: string; tree: GuestTree } {
  const busybox = findBusybox(log);
  const node = hostNode();
  const libs = sharedLibraries([node, busybox, ...nativeAddons(project)]);
  const npm = npmPackageDir();
  const stamp = (p: string): string => {
    try {
      const st = statSync(p);
      return `${p}:${st.size}:${st.mtimeMs}`;
    } catch {
      return `${p}:-`;
    }
  };
  const signature = createHash("sha256")
    .update([`format ${SYSTEM_FORMAT}`, ...[busybox, node, ...libs, ...(npm ? [join(npm.dir, "package.json"), ...npm.links] : [])].map(stamp)].join("\n"))
    .digest("hex")
    .slice(0, 20);
  const index = join(LAYERS_DIR(), `system-index-${signature}.json`);
  try {
    const known = JSON.parse(readFileSync(index, "utf8")) as { file: string; symlinks: [string, string][] };
    if (existsSync(known.file)) {
      // The tree only serves to resolve later layers' paths: its symlinks are enough.
      const tree = new GuestTree();
      for (const [path, target] of known.symlinks) tree.entries.set(path, { type: "symlink", path, target });
      return { file: known.file, tree };
    }
  } catch {
    // not known: build it
  }
  const tree = systemTree({ busybox, node, libs, npm }, log);
  const { file } = layerFile("system", tree, log);
  const symlinks: [string, string][] = [];
  for (const e of tree.entries.values()) if (e.type === "symlink" && !e.target.endsWith("busybox")) symlinks.push([e.path, e.target]);
  try {
    for (const old of readdirSync(LAYERS_DIR())) if (old.startsWith("system-index-")) rmSync(join(LAYERS_DIR(), old), { force: true });
    writeFileSync(index, JSON.stringify({ file, symlinks }));
  } catch {
    // found by its full key next time
  }
  return { file, tree };
}

function systemTree(
  { busybox, node, libs, npm }: { busybox: string; node: string; libs: string[]; npm: { dir: string; links: string[] } | undefined },
  log: Log,
): GuestTree {
  const t = new GuestTree();
  for (const d of ["/proc", "/sys", "/dev", "/run", "/mnt", "/etc"]) t.add({ type: "dir", path: d, mode: 0o755 });
  t.add({ type: "dir", path: "/tmp", mode: 0o1777 });
  t.add({ type: "dir", path: "/root", mode: 0o700 });
  // The host's top-level symlinks (merged /usr) first, so that everything below lands where the host has it.
  for (const top of ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]) {
    try {
      if (lstatSync(top).isSymbolicLink()) t.addHostPath(top);
    } catch {
      // absent on this host
    }
  }
  t.addHostPath(busybox);
  t.addHostPath(node, strippedNode(realpathSync(node), log));
  for (const lib of libs) t.addHostPath(lib);
  if (npm) {
    t.addTree(npm.dir, npm.dir, (h) => h === join(npm.dir, "docs") || h === join(npm.dir, "man"));
    for (const link of npm.links) t.addHostPath(link);
  }
  // busybox applets wherever busybox puts them, except where a real program is.
  const bb = t.canonical(busybox);
  const list = spawnSync(busybox, ["--list-full"], { encoding: "utf8" });
  for (const applet of list.stdout.split("\n").filter((l) => l !== "")) {
    const path = `/${applet}`;
    if (!t.has(path)) t.add({ type: "symlink", path, target: bb });
  }
  for (const [path, text] of Object.entries({
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "/etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "/etc/hosts": "127.0.0.1 localhost tsbpf-vm\n::1 localhost\n",
    "/etc/hostname": "tsbpf-vm\n",
    "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
  })) {
    t.add({ type: "file", path, data: Buffer.from(text), mode: 0o644 });
  }
  return t;
}

/** Packages that package-lock.json marks as dev-only ("dev": true): not needed to run. */
function devOnlyPackages(root: string): Set<string> {
  const out = new Set<string>();
  for (const lock of [join(root, "node_modules", ".package-lock.json"), join(root, "package-lock.json")]) {
    try {
      const parsed = JSON.parse(readFileSync(lock, "utf8")) as { packages?: Record<string, { dev?: boolean; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }> };
      const packages = parsed.packages ?? {};
      // tsx is a dev dependency, yet guests run tests and scripts through it: keep it and what it needs.
      const keep = new Set<string>();
      for (const todo = ["node_modules/tsx"]; todo.length; ) {
        const path = todo.pop()!;
        if (keep.has(path) || !packages[path]) continue;
        keep.add(path);
        const { dependencies = {}, optionalDependencies = {} } = packages[path]!;
        for (const dep of [...Object.keys(dependencies), ...Object.keys(optionalDependencies)]) todo.push(`node_modules/${dep}`);
      }
      for (const [path, info] of Object.entries(packages)) if (path.startsWith("node_modules/") && info.dev && !keep.has(path)) out.add(join(root, path));
      return out;
    } catch {
      // try the next lock file
    }
  }
  for (const p of ["typescript", "@types"]) out.add(join(root, "node_modules", p));
  return out;
}

/** The project tree at its host path: everything but .git, build intermediates and dev-only packages. */
export function projectTree(root: string): GuestTree {
  const t = new GuestTree();
  t.addHostPath(root);
  root = realpathSync(root);
  const dev = devOnlyPackages(root);
  const skipNames = new Set([".git", "obj.target", ".deps"]);
  t.addTree(root, root, (h, st) => {
    const base = h.slice(h.lastIndexOf("/") + 1);
    if (skipNames.has(base) && st.isDirectory()) return true;
    return dev.has(h);
  });
  // npx NAME for the project's own bin installs the project into npx's cache first
  // (~/.npm/_npx/<hash of its path>/, running its install script: node-gyp, which the
  // guest cannot run). The host has done that already; the guest gets the same entry.
  try {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name?: string; bin?: string | Record<string, string> };
    const bins = typeof pkg.bin === "string" && pkg.name ? { [pkg.name.replace(/^@.*\//, "")]: pkg.bin } : ((pkg.bin as Record<string, string> | undefined) ?? {});
    if (pkg.name && Object.keys(bins).length) {
      const dir = `/root/.npm/_npx/${createHash("sha512").update(root).digest("hex").slice(0, 16)}`;
      const rel = (from: string, to: string): string => posix.relative(posix.dirname(from), to);
      const spec = `file:${posix.relative(dir, root)}`;
      t.add({ type: "file", path: `${dir}/package.json`, mode: 0o644, data: Buffer.from(JSON.stringify({ dependencies: { [pkg.name]: spec }, _npx: { packages: [root] } }, null, 2)) });
      const link = `${dir}/node_modules/${pkg.name}`;
      t.add({ type: "symlink", path: link, target: rel(link, root) });
      for (const [name, target] of Object.entries(bins)) {
        const bin = `${dir}/node_modules/.bin/${name}`;
        t.add({ type: "symlink", path: bin, target: rel(bin, posix.join(link, target)) });
      }
    }
  } catch {
    // no package.json: nothing for npx
  }
  return t;
}

