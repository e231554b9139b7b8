// The on-disk cache shared by vmlinux.h generation and object compilation.
// What is in it is loaded into the kernel, often as root, so it is trusted only
// as far as nobody else could have written it: every directory is the user's
// and 0700 (anything else is refused, saying what to do), objects are stored
// under the sha256 of their bytes and checked against it when read, names read
// from manifests are plain file names, and files are written to a fresh
// O_EXCL|O_NOFOLLOW temporary name and renamed into place, never
// checked-then-written.
import { createHash, randomBytes } from "node:crypto";
import { constants, createReadStream, lstatSync, mkdirSync, chmodSync } from "node:fs";
import { open, readFile, rename, rm, lstat } from "node:fs/promises";
import { Buffer } from "node:buffer";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { TsbpfError } from "../errors.ts";

/** Why a cache entry or directory was not used. */
export type CacheProblem = "owner" | "mode" | "not-a-directory" | "tampered" | "name" | "not-a-file";

/** The cache cannot be trusted or used: says what is wrong and what to do. */
export class CacheError extends TsbpfError {
  readonly problem: CacheProblem;
  readonly path: string;
  constructor(problem: CacheProblem, path: string, message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_CACHE", message, options);
    this.problem = problem;
    this.path = path;
  }
}

/** $TSBPF_CACHE_DIR, else $XDG_CACHE_HOME/tsbpf, else ~/.cache/tsbpf. */
export function defaultCacheDir(): string {
  const explicit = process.env.TSBPF_CACHE_DIR;
  if (explicit) return resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "tsbpf");
  return join(homedir(), ".cache", "tsbpf");
}

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** sha256 of a file's bytes, streamed (sysfs files such as the kernel BTF are large). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("error", reject)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolvePromise(hash.digest("hex")));
  });
}

/** A fresh name next to `path` for a temporary file that is renamed over it. */
export function tempNameFor(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
}

const uid = () => process.geteuid?.() ?? -1;
const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");
const elsewhere = "or set TSBPF_CACHE_DIR to a directory of your own";

/** One directory of the cache: a real directory (not a symlink), the user's, 0700. */
function checkDir(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory()) {
    throw new CacheError("not-a-directory", dir,
      `tsbpf: the cache path ${dir} is ${st.isSymbolicLink() ? "a symbolic link" : "not a directory"}; tsbpf uses only directories of its own there. Remove it ("rm ${dir}"), ${elsewhere}`);
  }
  if (uid() >= 0 && st.uid !== uid()) {
    throw new CacheError("owner", dir,
      `tsbpf: the cache directory ${dir} belongs to uid ${st.uid}, not to you (uid ${uid()}), and what is cached there is loaded into the kernel. ` +
        `Remove it ("rm -rf ${dir}"), ${elsewhere}`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new CacheError("mode", dir,
      `tsbpf: the cache directory ${dir} is mode ${octal(st.mode)}: others can write to it, and what is cached there is loaded into the kernel. ` +
        `Remove it ("rm -rf ${dir}"; "chmod 700" does not undo what may have been written), ${elsewhere}`);
  }
  // Readable by others but writable only by us: nothing can have been planted; close it.
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/**
 * `root`/`parts...` as a trusted cache directory: each level is created 0700 when
 * missing and checked (the user's, 0700, not a symlink) when present; throws
 * CacheError otherwise. Returns the path.
 */
export function cacheDir(root: string, ...parts: string[]): string {
  let dir = resolve(root);
  // The root's parents (~/.cache) are not ours to judge; the root and below are.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkDir(dir);
  for (const part of parts) {
    checkName(part, dir);
    dir = join(dir, part);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    checkDir(dir);
  }
  return dir;
}

/** A plain file or directory name: not empty, "." or "..", no separator, NUL or newline. */
function checkName(name: string, where: string): void {
  if (name === "" || name === "." || name === ".." || /[/\0\n]/.test(name) || name.length > 255) {
    throw new CacheError("name", join(where, name), `tsbpf: "${name}" is not a plain file name, so it is not used in the cache at ${where}`);
  }
}

/**
 * Writes a file so that concurrent readers (other processes included) see
 * either no file or the whole file: a temporary sibling created with
 * O_EXCL|O_NOFOLLOW (never an existing file, never through a symlink), then
 * renamed over `path` (which replaces a symlink there, never follows it).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = tempNameFor(path);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  try {
    const fh = await open(tmp, flags, mode);
    try {
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Reads a cache file without following a symlink; it must be a regular file of the user's. */
async function readOwnFile(path: string): Promise<Uint8Array> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile() || (uid() >= 0 && st.uid !== uid())) {
      throw new CacheError("not-a-file", path, `tsbpf: the cache file ${path} is not a regular file of yours; remove it ("rm ${path}"), ${elsewhere}`);
    }
    return new Uint8Array(await fh.readFile());
  } finally {
    await fh.close();
  }
}

const OBJECT_NAME = /^([0-9a-f]{64})\.o$/;

export interface CacheOptions {
  /** Default: defaultCacheDir(). */
  cacheDir?: string;
}

export interface CacheEntry<M> {
  /** The object file (named by the sha256 of its bytes). Treat it as read-only. */
  path: string;
  bytes: Uint8Array;
  /** What cachePut stored with it. */
  meta: M;
}

interface Manifest<M> {
  /** The object's file name in the same directory: "<sha256 of its bytes>.o". */
  object: string;
  meta: M;
}

/**
 * Stores `bytes` in <cache>/objects as <sha256>.o and a manifest <key>.json
 * that names it (with `meta`); returns the object's path. The object is written
 * before the manifest, so a reader that finds the manifest finds a whole object.
 */
export async function cachePut<M>(key: string, bytes: Uint8Array, meta: M, options: CacheOptions = {}): Promise<string> {
  const dir = cacheDir(options.cacheDir ?? defaultCacheDir(), "objects");
  checkName(key, dir);
  const object = `${sha256(bytes)}.o`;
  const path = join(dir, object);
  await writeFileAtomic(path, bytes, 0o600);
  const manifest: Manifest<M> = { object, meta };
  await writeFileAtomic(join(dir, `${key}.json`), JSON.stringify(manifest, null, 1) + "\n");
  return path;
}

/**
 * The object stored under `key`, or undefined when there is none (or its
 * manifest is unreadable). Throws CacheError when the manifest names anything
 * but a "<sha256>.o" in the same directory, or the object's bytes do not hash
 * to its name (changed since it was written).
 */
export async function cacheGet<M>(key: string, options: CacheOptions = {}): Promise<CacheEntry<M> | undefined> {
  const dir = cacheDir(options.cacheDir ?? defaultCacheDir(), "objects");
  checkName(key, dir);
  const manifestPath = join(dir, `${key}.json`);
  let manifest: Manifest<M>;
  try {
    manifest = JSON.parse(new TextDecoder().decode(await readOwnFile(manifestPath))) as Manifest<M>;
  } catch (err) {
    if (err instanceof CacheError) throw err;
    return undefined;
  }
  if (typeof manifest !== "object" || manifest === null || typeof manifest.object !== "string") return undefined;
  const named = OBJECT_NAME.exec(manifest.object);
  if (!named) {
    throw new CacheError("name", manifestPath,
      `tsbpf: the cache manifest ${manifestPath} names the object "${manifest.object}", which is not a "<sha256>.o" file beside it; it is not used`);
  }
  const path = join(dir, manifest.object);
  let bytes: Uint8Array;
  try {
    bytes = await readOwnFile(path);
  } catch (err) {
    if (err instanceof CacheError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ELOOP") {
      throw new CacheError("not-a-file", path, `tsbpf: the cached object ${path} is a symbolic link; it is not used`);
    }
    return undefined;
  }
  const actual = sha256(bytes);
  if (actual !== named[1]) {
    throw new CacheError("tampered", path,
      `tsbpf: the cached object ${path} has changed since it was written (its bytes hash to ${actual.slice(0, 16)}..., not to its name); it is not used`);
  }
  return { path, bytes, meta: manifest.meta };
}

/**
 * <cache>/<parts...> holding exactly `data` (for a file other tools read by
 * name, as clang reads the source copies that BCC programs' #line directives
 * name): an existing file is kept only when it is a regular file of the user's
 * with these bytes, and replaced atomically otherwise. Returns its path.
 */
export async function cacheFile(parts: string[], data: string | Uint8Array): Promise<string> {
  const name = parts.at(-1);
  if (name === undefined) throw new CacheError("name", "", "tsbpf: cacheFile needs a file name");
  const dir = cacheDir(defaultCacheDir(), ...parts.slice(0, -1));
  checkName(name, dir);
  const path = join(dir, name);
  const want = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const st = await lstat(path).catch(() => undefined);
  if (st?.isFile() && st.uid === uid() && st.size === want.length) {
    const have = await readFile(path);
    if (Buffer.compare(have, want) === 0) return path;
  }
  await writeFileAtomic(path, want, 0o600);
  return path;
}

/**
 * The prerequisites listed in a make-style depfile (clang -MD -MF): the text
 * after the first target's colon, with backslash-newline continuations joined
 * and `\ `, `\#` and `$$` unescaped.
 */
export function parseDepfile(text: string): string[] {
  const joined = text.replace(/\\\r?\n/g, " ");
  // The target is our own output path; find the colon that ends it (a colon
  // followed by whitespace or the end, so "C:" style paths are not split).
  const colon = /:(\s|$)/.exec(joined);
  if (!colon) return [];
  const rest = joined.slice(colon.index + 1);
  const deps: string[] = [];
  let current = "";
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (c === "\\" && (rest[i + 1] === " " || rest[i + 1] === "#")) {
      current += rest[i + 1];
      i++;
    } else if (c === "$" && rest[i + 1] === "$") {
      current += "$";
      i++;
    } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (current !== "") deps.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  if (current !== "") deps.push(current);
  return deps;
}
