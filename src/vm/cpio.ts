// A writer of cpio "newc" archives, the format the kernel unpacks as initramfs.
// Archives may be concatenated: the kernel unpacks one after another, later
// entries replacing earlier ones of the same path.
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { TsbpfError, UsageError } from "../errors.ts";

/** One archive member. Paths are absolute guest paths ("/usr/bin/node"). */
export type CpioEntry =
  | { type: "dir"; path: string; mode?: number; mtime?: number }
  | { type: "file"; path: string; mode?: number; mtime?: number; source: string }
  | { type: "file"; path: string; mode?: number; mtime?: number; data: Uint8Array }
  | { type: "symlink"; path: string; target: string; mtime?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const TRAILER = "TRAILER!!!";
const CHUNK = 1 << 20;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/** Streams entries into a newc archive file; parents are created as needed. */
export class CpioWriter {
  readonly #fd: number;
  #offset = 0;
  #ino = 1;
  readonly #dirs = new Set<string>(["/"]);
  readonly #buffer = Buffer.allocUnsafe(CHUNK);
  #closed = false;

  constructor(readonly archive: string) {
    this.#fd = openSync(archive, "w");
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#offset;
  }

  #write(data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.#fd, data, done, data.length - done);
    this.#offset += data.length;
  }

  #pad(): void {
    const n = (4 - (this.#offset % 4)) % 4;
    if (n) this.#write(new Uint8Array(n));
  }

  #header(name: string, mode: number, size: number, mtime: number, nlink: number): void {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [this.#ino++, mode, 0, 0, nlink, Math.floor(mtime), size, 0, 0, 0, 0, nameBytes.length, 0];
    this.#write(Buffer.from(`070701${fields.map(hex8).join("")}`, "latin1"));
    this.#write(nameBytes);
    this.#pad();
  }

  /** The archive name of a guest path: relative, no leading slash. */
  static #name(path: string): string {
    const name = path.replace(/^\/+/, "").replace(/\/+$/, "");
    if (name === "" || name.split("/").some((p) => p === ".." || p === "")) throw new UsageError(`cpio: bad guest path "${path}"`);
    return name;
  }

  /** Creates the parent directories of `path` that this archive has not created yet. */
  #parents(path: string): void {
    const parts = CpioWriter.#name(path).split("/");
    for (let i = 1; i < parts.length; i++) this.dir(`/${parts.slice(0, i).join("/")}`);
  }

  dir(path: string, mode = 0o755, mtime = 0): void {
    const name = CpioWriter.#name(path);
    if (this.#dirs.has(`/${name}`)) return;
    this.#parents(path);
    this.#dirs.add(`/${name}`);
    this.#header(name, S_IFDIR | (mode & 0o7777), 0, mtime, 2);
  }

  symlink(path: string, target: string, mtime = 0): void {
    this.#parents(path);
    const data = Buffer.from(target);
    this.#header(CpioWriter.#name(path), S_IFLNK | 0o777, data.length, mtime, 1);
    this.#write(data);
    this.#pad();
  }

  /** A regular file with these contents. */
  data(path: string, data: Uint8Array, mode = 0o644, mtime = 0): void {
    this.#parents(path);
    this.#header(CpioWriter.#name(path), S_IFREG | (mode & 0o7777), data.length, mtime, 1);
    this.#write(data);
    this.#pad();
  }

  /** A regular file copied from the host (mode and mtime from the host file unless given). */
  file(path: string, source: string, mode?: number, mtime?: number): void {
    this.#parents(path);
    const fd = openSync(source, "r");
    try {
      const st = fstatSync(fd);
      this.#header(CpioWriter.#name(path), S_IFREG | ((mode ?? st.mode) & 0o7777), st.size, mtime ?? st.mtimeMs / 1000, 1);
      let left = st.size;
      while (left > 0) {
        const n = readSync(fd, this.#buffer, 0, Math.min(CHUNK, left), null);
        if (n === 0) throw new TsbpfError("ERR_TSBPF_VM", `cpio: ${source} shrank while being archived`);
        this.#write(this.#buffer.subarray(0, n));
        left -= n;
      }
      this.#pad();
    } finally {
      closeSync(fd);
    }
  }

  add(e: CpioEntry): void {
    if (e.type === "dir") this.dir(e.path, e.mode, e.mtime);
    else if (e.type === "symlink") this.symlink(e.path, e.target, e.mtime);
    else if ("source" in e) this.file(e.path, e.source, e.mode, e.mtime);
    else this.data(e.path, e.data, e.mode, e.mtime);
  }

  /** Writes the trailer and closes the file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#header(TRAILER, 0, 0, 0, 1);
      // The kernel reads archives in 512-byte blocks' worth of padding fine; pad to 512 as cpio(1) does.
      const n = (512 - (this.#offset % 512)) % 512;
      if (n) this.#write(new Uint8Array(n));
    } finally {
      closeSync(this.#fd);
    }
  }

  /** Closes without a trailer (after a failure; the file is to be removed). */
  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }
}
