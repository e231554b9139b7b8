// tsbpf hello: "Hello, World!" from bpf_trace_printk on every clone(), as the seed's
// first program does (on the clone tracepoint here; kprobes come with the BCC layer).
import { Collection } from "../collection.ts";
import { compile } from "../compile/index.ts";
import { tracePipe } from "../tracing/index.ts";

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
  if (args.includes("--help") || args.includes("-h")) {
    console.log("usage: tsbpf hello\n\nPrints a trace_pipe line with \"Hello, World!\" each time a process calls clone(). Ctrl-C stops.");
    return 0;
  }
  const object = await compile({ text: PROGRAM, name: "hello.bpf.c" });
  using collection = Collection.load(object.bytes);
  collection.attachAll();
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  console.log("Attached to syscalls:sys_enter_clone... Press Ctrl+C to exit.");
  for await (const line of tracePipe({ signal: stop.signal })) {
    if (line.message.includes("Hello, World!")) console.log(line.raw.trim());
  }
  return 0;
}
