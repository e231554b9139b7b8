// What the integration tests measure in the kernel: open fds, BPF links and
// programs, so that each test can assert it left nothing behind.
import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import { BpfCmd } from "../../src/internal/sys/constants.ts";
import { fdById, linkInfo, listIds, progInfo } from "../../src/internal/sys/bpf.ts";
import { compile } from "../../src/compile/index.ts";
import { ObjectSpec } from "../../src/object/spec.ts";

/**
 * How many of this process's fds hold a kernel object that tsbpf opens: BPF maps, programs,
 * links and BTF, perf events and pidfds. Node's own pipes, eventfds and epoll fds are
 * left out: they come and go on their own (a child's pipes close a moment after it exits).
 */
export function openFds(): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (/^(anon_inode:(bpf|btf|\[perf_event\]|\[pidfd\]))/.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // closed meanwhile (the fd readdir itself used, among others)
    }
  }
  return n;
}

/** Ids of every BPF link in the system. */
export function linkIds(): number[] {
  return listIds(BpfCmd.LINK_GET_NEXT_ID);
}

export function progIds(): number[] {
  return listIds(BpfCmd.PROG_GET_NEXT_ID);
}

/** Compiles BPF C (against vmlinux.h) and parses it. */
export async function specOf(text: string, name = "test.bpf.c"): Promise<ObjectSpec> {
  const object = await compile({ text, name });
  return ObjectSpec.fromBytes(object.bytes, name);
}

export const HEADERS = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
char LICENSE[] SEC("license") = "GPL";
`;

/** Links whose program has this name: what a tool left attached, whatever else runs meanwhile. */
export function linksOfProgram(name: string): number[] {
  const found: number[] = [];
  for (const id of linkIds()) {
    try {
      using link = fdById(BpfCmd.LINK_GET_FD_BY_ID, id);
      using prog = fdById(BpfCmd.PROG_GET_FD_BY_ID, linkInfo(link.value).progId);
      if (progInfo(prog.value).name === name.slice(0, 15)) found.push(id);
    } catch {
      // Gone meanwhile: not left behind.
    }
  }
  return found;
}

/** Ids of the loaded programs with this name (the kernel keeps 15 characters of it). */
export function programsNamed(name: string): number[] {
  return progIds().filter((id) => {
    try {
      using prog = fdById(BpfCmd.PROG_GET_FD_BY_ID, id);
      return progInfo(prog.value).name === name.slice(0, 15);
    } catch {
      return false;
    }
  });
}

/**
 * Nothing of a tool's left: no link of the programs named, and none of them loaded. The kernel
 * frees a detached program (and a link whose last fd closed) after an RCU grace period, so
 * this waits for that, at most 5 s, before it fails.
 */
export async function assertDetached(...names: string[]): Promise<void> {
  const left = () => names.filter((n) => linksOfProgram(n).length > 0 || programsNamed(n).length > 0);
  for (let i = 0; i < 50 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  for (const name of names) {
    assert.deepEqual(linksOfProgram(name), [], `a link of ${name} remains`);
    assert.deepEqual(programsNamed(name), [], `program ${name} remains loaded`);
  }
}
