// The seed's hello world: "Hello, World!" through bpf_trace_printk on every clone.
// The seed puts a kprobe on the clone syscall; this host has no kprobes, so the
// program sits on the tracepoint syscalls:sys_enter_clone, which fires for the
// same calls. Run: npx tsx examples/hello-world.ts
import { Collection, compile, tracePipe } from "../src/index.ts";

const program = `
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_clone")
int hello(void *ctx) {
    bpf_printk("Hello, World!");
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

const object = await compile({ text: program, name: "hello.bpf.c" });
using collection = Collection.load(object.bytes);
collection.attachAll();

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

console.log("Attached to syscalls:sys_enter_clone... Press Ctrl+C to exit.");
for await (const line of tracePipe({ signal: stop.signal })) {
  if (line.message.includes("Hello, World!")) console.log(line.raw.trim());
}
console.log("Detached.");
