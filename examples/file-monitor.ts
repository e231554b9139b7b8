// The seed's second program (the file monitor: every openat() on the system,
// with the process's uid and name, the flags and the file name), ported from
// Python + BCC to TypeScript + tsbpf line for line. The C is the seed's
// ebpf_program.c, unchanged. Run as root: npx tsx examples/file-monitor.ts
// No ctypes mirror of struct data_t is needed: b.get("events").event(data)
// decodes the struct the program submits, from the object's BTF.
import { readFileSync } from "node:fs";
import { BPF, KeyboardInterrupt, sleep } from "tsbpf";

// open(2) flags (x86_64 / generic values; arm64 differs in four of them).
const ARM64 = process.arch === "arm64";
const OPEN_FLAGS: [string, number][] = [
  ["O_CREAT", 0o100],
  ["O_EXCL", 0o200],
  ["O_NOCTTY", 0o400],
  ["O_TRUNC", 0o1000],
  ["O_APPEND", 0o2000],
  ["O_NONBLOCK", 0o4000],
  ["O_DSYNC", 0o10000],
  ["O_ASYNC", 0o20000],
  ["O_DIRECT", ARM64 ? 0o200000 : 0o40000],
  ["O_LARGEFILE", ARM64 ? 0o400000 : 0o100000],
  ["O_DIRECTORY", ARM64 ? 0o40000 : 0o200000],
  ["O_NOFOLLOW", ARM64 ? 0o100000 : 0o400000],
  ["O_NOATIME", 0o1000000],
  ["O_CLOEXEC", 0o2000000],
  ["__O_SYNC", 0o4000000],
  ["O_PATH", 0o10000000],
  ["__O_TMPFILE", 0o20000000],
];

function translateFlags(flags: number): string {
  const strFlags = [["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"][flags & 3]!];
  let rest = flags & ~3;
  // O_SYNC is __O_SYNC|O_DSYNC and O_TMPFILE is __O_TMPFILE|O_DIRECTORY: named as the headers name them.
  const combined: [string, number][] = [["O_SYNC", 0o4010000], ["O_TMPFILE", ARM64 ? 0o20040000 : 0o20200000]];
  for (const [name, bits] of [...combined, ...OPEN_FLAGS]) {
    if ((rest & bits) === bits) {
      strFlags.push(name);
      rest &= ~bits;
    }
  }
  if (rest) strFlags.push(`0x${rest.toString(16)}`);
  return strFlags.join("|");
}

let b: BPF;

function printEvent(cpu: number, data: Uint8Array, size: number): void {
  const e = b.get("events").event(data);
  console.log(`UID: ${e.uid} COMM: ${e.comm} Flags: ${translateFlags(e.flags)} File: ${e.fname}`);
}

async function main(): Promise<void> {
  // Load the eBPF program from the external file.
  const bpfProgram = readFileSync(new URL("ebpf_program.c", import.meta.url), "utf8");

  // Load the eBPF program.
  b = await BPF.load({ text: bpfProgram });
  const fnnameOpenat = b.getSyscallPrefix() + "openat";

  // Attach the kprobe defined in the eBPF program to the clone system call.
  b.attachKprobe({ event: fnnameOpenat, fnName: "syscall__openat" });

  // Open a perf buffer on the 'events' map, with 'printEvent' as the callback function
  b.get("events").openPerfBuffer(printEvent);
  while (true) {
    try {
      // Poll the perf buffer for new events
      await b.perfBufferPoll();
      // Sleep for 2 seconds before polling again
      await sleep(2);
    } catch (e) {
      if (e instanceof KeyboardInterrupt) process.exit();
      throw e;
    }
  }
}

await main();
