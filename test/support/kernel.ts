// What the integration tests measure in the kernel: open fds, BPF links and
// programs, so that each test can assert it left nothing behind.
import { readdirSync } from "node:fs";
import { BpfCmd } from "../../src/internal/sys/constants.ts";
import { listIds } from "../../src/internal/sys/bpf.ts";
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
