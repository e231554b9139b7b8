// The native layer: the few things Node cannot do itself. Everything here is a
// direct wrapper of one system call (or of libuv's fd poller); all logic — attr
// layouts, retries, error messages — lives in TypeScript above this file.
//
// Errors thrown by these functions are `Error`s with `errno` (number) and `code`
// ("EPERM", "E2BIG", ...) set, and `syscall` naming the call.
import { createRequire } from "node:module";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../package.ts";
import { NotSupportedError } from "../../errors.ts";

export interface FdWatcher {
  /**
   * Start (or change) watching: `readable`/`writable` select the poll events.
   * Throws (EBADF) after `close()`.
   */
  start(readable: boolean, writable: boolean): void;
  /** Stop watching; may be started again. */
  stop(): void;
  /** Stop and free the libuv handle. Idempotent. */
  close(): void;
  /** Let the process exit while this watcher is started (uv_unref). */
  unref(): void;
  /** Undo `unref()` (uv_ref). */
  ref(): void;
}

export interface Native {
  /**
   * bpf(cmd, attr, attr.byteLength). Returns the syscall's result (an fd or 0).
   * The kernel reads and writes `attr` in place (a Uint8Array or Buffer, any byteOffset).
   */
  bpf(cmd: number, attr: Uint8Array): number;
  /**
   * perf_event_open(attr, pid, cpu, groupFd, flags). Returns the new fd. Throws a
   * RangeError, without calling the kernel, if attr.size (u32 at offset 4; 0 means
   * 64) exceeds attr.byteLength. On E2BIG the kernel writes its own size into attr.
   */
  perfEventOpen(attr: Uint8Array, pid: number, cpu: number, groupFd: number, flags: number): number;
  /** ioctl(fd, request, arg) with an integer argument; request is taken as a uint32. */
  ioctl(fd: number, request: number, arg: number): number;
  /** close(fd). EINTR is not an error: on Linux the fd is closed regardless. */
  close(fd: number): void;
  /**
   * mmap(NULL, length, prot, MAP_SHARED, fd, offset) as an ArrayBuffer over the
   * mapping. It is unmapped by `munmap` (which also detaches the buffer, so no
   * JavaScript access can touch freed memory) or, failing that, when collected.
   * Node marks such buffers untransferable: postMessage/structuredClone copy them.
   */
  mmap(fd: number, length: number, prot: number, offset: number): ArrayBuffer;
  /** Unmap a buffer returned by `mmap` and detach it. Idempotent. */
  munmap(buffer: ArrayBuffer): void;
  /**
   * Address of the first byte of a buffer's backing store, for the pointer fields
   * of bpf() and perf_event_open() attrs. The caller keeps the buffer alive for
   * the duration of the syscall that uses the address.
   */
  addressOf(buffer: ArrayBufferView | ArrayBuffer): bigint;
  /**
   * Watch fd for readiness in the event loop (libuv uv_poll). `callback(status,
   * readable, writable)` runs on the loop thread; status is 0 or a negative errno.
   * A started watcher keeps the event loop alive, as a socket does; `unref()`
   * lets the process exit while it is still watching. A started watcher is not
   * garbage-collected; a stopped one may be, which closes it. libuv allows one
   * poll handle per fd per loop: a second `watch()` of an fd whose watcher is
   * started throws EEXIST.
   */
  watch(fd: number, callback: (status: number, readable: boolean, writable: boolean) => void): FdWatcher;
  /** socket(domain, type | SOCK_CLOEXEC, protocol): netlink and packet sockets, which Node lacks. Returns the fd. */
  socket(domain: number, type: number, protocol: number): number;
  /** bind(fd, addr, addr.byteLength); `addr` is the raw sockaddr. */
  bind(fd: number, addr: Uint8Array): void;
  /** sendto(fd, data, data.byteLength, 0, addr, ...); null sends to the connected/default peer. Returns bytes sent. */
  sendto(fd: number, data: Uint8Array, addr: Uint8Array | null): number;
  /** recv(fd, buffer, buffer.byteLength, flags), retried on EINTR. Returns bytes received (EAGAIN throws). */
  recv(fd: number, buffer: Uint8Array, flags: number): number;
  /** setsockopt(fd, level, name, value, value.byteLength). */
  setsockopt(fd: number, level: number, name: number, value: Uint8Array): void;
  /** pidfd_open(pid, flags): a pidfd (the key of a task storage map). Returns the fd. */
  pidfdOpen(pid: number, flags: number): number;
}

/**
 * Where the addon may be, in order: the prebuilt the package ships
 * (prebuilds/PLATFORM-ARCH, N-API, so one binary serves every Node from 20 on),
 * then node-gyp's build/. A build/Release newer than the prebuilt goes first: in a
 * checkout, that is a developer's rebuild after changing native/tsbpf.c.
 */
export function addonCandidates(root = packageRoot): string[] {
  const prebuilt = join(root, "prebuilds", `${process.platform}-${process.arch}`, "tsbpf_native.node");
  const release = join(root, "build", "Release", "tsbpf_native.node");
  const debug = join(root, "build", "Debug", "tsbpf_native.node");
  const mtime = (p: string): number => (existsSync(p) ? statSync(p).mtimeMs : -1);
  const order = mtime(release) > mtime(prebuilt) ? [release, prebuilt, debug] : [prebuilt, release, debug];
  return order.filter(existsSync);
}

function loadNative(): Native {
  const require = createRequire(import.meta.url);
  const root = packageRoot;
  const failures: string[] = [];
  for (const path of addonCandidates(root)) {
    try {
      return require(path) as Native;
    } catch (err) {
      failures.push(`${path}: ${(err as Error).message}`);
    }
  }
  throw new NotSupportedError(
    "the native addon",
    `tsbpf: no native addon loads here (${failures.length ? failures.join("; ") : `none in ${join(root, "prebuilds")} or ${join(root, "build")}`}). ` +
      `Run "npm rebuild tsbpf" (or "npx node-gyp rebuild" in ${root}); it needs python3, make and a C compiler.`,
  );
}

let cached: Native | undefined;

/** The native addon, loaded on first use so that pure parsing code never needs it. */
export function native(): Native {
  cached ??= loadNative();
  return cached;
}
