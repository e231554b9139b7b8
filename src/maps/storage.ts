// Local storage maps (sk, task, inode, cgrp storage) from user space: the key is
// a file descriptor of the object that owns the value. This module turns what a
// Node program holds (a net/dgram socket, a pid, a path) into that fd, for as
// long as one map operation needs it. Programs use bpf_{sk,task,inode,cgrp}_storage_get.
import { closeSync, existsSync, openSync, readFileSync, constants as fsc } from "node:fs";
import { execFileSync } from "node:child_process";
import { NotSupportedError, UsageError } from "../errors.ts";
import { FD } from "../internal/sys/fd.ts";
import { native } from "../internal/sys/native.ts";
import type { MapTraits } from "./traits.ts";

/**
 * Who owns a local storage value, as user space names it:
 * - a number: an fd that already is the key (a socket fd, a pidfd, a file or cgroup directory fd);
 * - an `FD`, or anything with a numeric `fd` (a Node `fs.promises` FileHandle);
 * - sk storage: a `net.Socket`, `net.Server` or `dgram.Socket` (its fd);
 * - task storage: `{ pid }` (a pidfd is opened and closed around the call);
 * - inode storage: `{ path }` of a file; cgrp storage: `{ path }` of a cgroup directory.
 */
export type StorageOwner = number | FD | { fd: number } | { pid: number } | { path: string } | object;

const KIND_WORDS: Record<NonNullable<MapTraits["localStorage"]>, string> = {
  sk: "a socket (net.Socket, net.Server, dgram.Socket) or a socket fd",
  task: "{ pid } or a pidfd",
  inode: "{ path } of a file or an open fd",
  cgrp: "{ path } of a cgroup directory or an fd of one",
};

/** The fd `owner` stands for, and what must be closed after the map operation. */
export function storageKey(kind: NonNullable<MapTraits["localStorage"]>, owner: StorageOwner, mapName: string): { fd: number; close?: () => void } {
  if (typeof owner === "number") return { fd: owner };
  if (owner instanceof FD) return { fd: owner.value };
  const o = owner as Record<string, unknown>;
  if (typeof o.fd === "number") return { fd: o.fd };
  if (kind === "task" && typeof o.pid === "number") {
    const fd = native().pidfdOpen(o.pid, 0);
    return { fd, close: () => native().close(fd) };
  }
  if ((kind === "inode" || kind === "cgrp") && typeof o.path === "string") {
    // O_RDONLY opens directories too (a cgroup's); O_NONBLOCK: a fifo does not block the open.
    const fd = openSync(o.path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    return { fd, close: () => closeSync(fd) };
  }
  if (kind === "sk") {
    // Node's socket wrappers keep the fd on their libuv handle.
    const handle = o._handle as { fd?: unknown } | undefined;
    if (handle && typeof handle.fd === "number" && handle.fd >= 0) return { fd: handle.fd };
    if ("_handle" in o) throw new UsageError(`${mapName}: the socket has no fd (not connected, bound or listening yet, or already closed)`);
  }
  throw new UsageError(`${mapName}: a ${kind} storage map is keyed by ${KIND_WORDS[kind]}, got ${describe(owner)}`);
}

function describe(v: unknown): string {
  if (v === null || typeof v !== "object") return String(v);
  const name = (v as object).constructor?.name;
  return name && name !== "Object" ? `a ${name}` : JSON.stringify(v);
}

let lsmList: string[] | undefined;

/** The active LSMs (/sys/kernel/security/lsm, mounting securityfs when it is not), or [] when unreadable. */
export function activeLsms(): string[] {
  if (lsmList) return lsmList;
  const file = "/sys/kernel/security/lsm";
  if (!existsSync(file)) {
    try {
      execFileSync("mount", ["-t", "securityfs", "securityfs", "/sys/kernel/security"], { stdio: "ignore" });
    } catch {
      // not root, or no securityfs: unknown
    }
  }
  try {
    lsmList = readFileSync(file, "utf8").trim().split(",").filter(Boolean);
  } catch {
    lsmList = [];
  }
  return lsmList;
}

/**
 * Inode storage lives in the BPF LSM's blob of each inode: without `bpf` among the
 * active LSMs the kernel has no place for it. NotSupportedError saying so.
 */
export function checkInodeStorage(mapName: string, lsms = activeLsms()): void {
  if (lsms.includes("bpf")) return;
  throw new NotSupportedError(
    "the BPF LSM",
    `map ${mapName || "(anonymous)"}: inode storage needs the BPF LSM, and this kernel's active LSMs are ${lsms.length ? lsms.join(",") : "unknown"} ` +
      `(/sys/kernel/security/lsm has no "bpf"); boot with lsm=...,bpf (CONFIG_BPF_LSM=y), or keep the value in a hash map keyed by inode number`,
  );
}
