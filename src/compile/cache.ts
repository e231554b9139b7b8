// The on-disk cache shared by vmlinux.h generation and object compilation.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";

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

/**
 * Write a file so that concurrent readers (other processes included) see
 * either no file or the whole file: write a temporary sibling, then rename.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempNameFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
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
