// The seed's first program ("The Unforgettable Hello World: eBPF Edition"),
// ported from Python + BCC to TypeScript + tsbpf line for line: the C text is
// exactly the seed's. Run as root: npx tsx examples/hello-world.ts
// On a kernel without kprobes, the kprobe on the clone syscall function is
// placed on the syscalls:sys_enter_clone tracepoint (tsbpf says so on stderr).
import { BPF, KeyboardInterrupt } from "tsbpf";

// Define the eBPF program as a string.
const bpfProgram = `
#include <uapi/linux/ptrace.h>
int syscall__clone(struct pt_regs *ctx) {
    bpf_trace_printk("Hello, World!\\n");
    return 0;
}
`;

// Load the eBPF program.
const b = await BPF.load({ text: bpfProgram });

// Attach the kprobe defined in the eBPF program to the clone system call.
const eventName = b.getSyscallPrefix() + "clone";
b.attachKprobe({ event: eventName, fnName: "syscall__clone" });

// Loop and print the output of the eBPF program.
try {
  console.log("Attaching kprobe to sys_clone... Press Ctrl+C to exit.");
  await b.tracePrint();
} catch (e) {
  if (!(e instanceof KeyboardInterrupt)) throw e;
}
