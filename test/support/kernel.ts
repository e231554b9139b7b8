// What the integration tests measure in the kernel: open fds, BPF links and
// programs, so that each test can assert it left nothing behind.
import { readdirSync } from "node:fs";
import { BpfCmd } from "../../src/internal/sys/constants.ts";
import { fdById, linkInfo, listIds, progInfo } from "../../src/internal/sys/bpf.ts";
import { compile } from "../../src/compile/index.ts";
import { ObjectSpec } from "../../src/object/spec.ts";

export function openFds(): number {
  return readdirSync("/proc/self/fd").length;
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
