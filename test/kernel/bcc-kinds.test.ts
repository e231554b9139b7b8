// BCC's C dialect, the rest of it: static helpers inlined as BCC inlines them,
// and the table and program kinds of issue 16's item 8 (perf counter arrays,
// build-id stacks, prog arrays and tail calls, LPM tries, perf_event programs,
// KFUNC/KRETFUNC/LSM probes). Each program is loaded and run in this kernel
// and what it wrote is checked.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { BPF } from "../../src/index.ts";

const cflags = [`-DTARGET_PID=${process.pid}`];

function openMissing(path: string, n: number): void {
  for (let i = 0; i < n; i++) {
    try {
      closeSync(openSync(path, "r"));
    } catch {
      // ENOENT: the syscall happened
    }
  }
}

describe("static helpers (item 5)", () => {
  test("a struct passed by value and a short string literal memcpy'd through a helper load and run", async () => {
    const text = `
struct key_t { u32 pid; char op[16]; u64 pad; };
BPF_HASH(counts, struct key_t, u64);
static int count(struct key_t key, const char *op)
{
    __builtin_memcpy(&key.op, op, sizeof(key.op));
    counts.increment(key);
    return 0;
}
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID) return 0;
    struct key_t key = {.pid = pid};
    return count(key, "open");
}
TRACEPOINT_PROBE(syscalls, sys_exit_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET_PID) return 0;
    struct key_t key = {.pid = pid};
    return count(key, "fsync");
}`;
    using b = await BPF.load({ text, name: "byvalue.c" }, { cflags });
    for (let i = 0; i < 7; i++) assert.ok(process.ppid > 0); // getppid(2) each time
    const got = new Map(b.get("counts").items().map(([k, v]) => [k.op as string, Number(v)]));
    assert.equal(got.get("open"), 7);
    assert.equal(got.get("fsync"), 7);
  });
});
