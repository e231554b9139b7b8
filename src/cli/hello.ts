// tsbpf hello: "Hello, World!" from bpf_trace_printk on every clone(), as the seed's
// first program does (on the clone tracepoint here; kprobes come with the BCC layer).
import { Collection } from "../collection.ts";
import { compile } from "../compile/index.ts";
import { tracePipe } from "../tracing/index.ts";
import { havePrivileges, parseToolArgs, ToolRun, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf hello [-h]

Prints a trace_pipe line with "Hello, World!" each time a process calls clone(),
until Ctrl-C.`;

const PROGRAM = `
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("tracepoint/syscalls/sys_enter_clone")
int hello(void *ctx) {
    bpf_printk("Hello, World!");
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
`;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, {}, HELP);
  if (!parsed) return 0;
  if (parsed.positionals.length) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
  if (!havePrivileges("hello")) return 1;
  const object = await compile({ text: PROGRAM, name: "hello.bpf.c" });
  await using collection = Collection.load(object.bytes);
  using run = new ToolRun();
  collection.attachAll();
  run.out.line("Attached to syscalls:sys_enter_clone... Press Ctrl+C to exit.");
  for await (const line of tracePipe({ signal: run.signal })) {
    if (line.message.includes("Hello, World!")) run.out.line(line.raw.trim());
  }
  return 0;
}
