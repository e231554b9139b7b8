// Split from test/unit/histogram.test.ts: tsbpf_hist.h in a BPF program loaded in this kernel (root, clang).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UsageError } from "../../src/errors.ts";
import {
  FOREVER,
  LINEAR_SLOTS,
  LOG2_SLOTS,
  bucketize,
  clockTime,
  formatLinearHist,
  formatLog2Hist,
  histogramJson,
  intervalHeader,
  intervalTicks,
  linearHistLines,
  log2HistLines,
  log2l,
  parseIntervalArgs,
  pythonRepr,
} from "../../src/histogram/index.ts";
import { packageRoot } from "../../src/internal/package.ts";

const text = (lines: string[]) => lines.map((l) => l + "\n").join("");

test("a BPF program fills slots with tsbpf_hist.h; the map prints as BCC would print the same values", { skip: process.getuid?.() !== 0 && "needs root" }, async () => {
  const { compile } = await import("../../src/compile/index.ts");
  const { ObjectSpec } = await import("../../src/object/spec.ts");
  const { Collection } = await import("../../src/collection.ts");
  const source = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf_hist.h>
char LICENSE[] SEC("license") = "GPL";
const volatile u32 target_tgid = 0;
const volatile s32 fd_a = -1, fd_b = -1;
struct fd_key { u32 fd; u32 slot; };
TSBPF_HIST(sizes, u32, TSBPF_LOG2_SLOTS);
TSBPF_HIST(by_fd, struct fd_key, 64);
SEC("tp/syscalls/sys_enter_write")
int count_write(struct trace_event_raw_sys_enter *ctx)
{
	s32 fd = ctx->args[0];
	u64 bytes = ctx->args[2];
	if (bpf_get_current_pid_tgid() >> 32 != target_tgid || (fd != fd_a && fd != fd_b))
		return 0;
	u32 slot = tsbpf_log2l(bytes);
	tsbpf_hist_increment(&sizes, &slot);
	struct fd_key key = { .fd = fd, .slot = tsbpf_linear_slot(bytes, 0, 1000, 20) };
	tsbpf_hist_increment(&by_fd, &key);
	return 0;
}
`;
  const object = await compile({ text: source, name: "hist.bpf.c" });
  const spec = ObjectSpec.fromBytes(object.bytes, "hist.bpf.c");
  const a = openSync("/dev/null", "w");
  const b = openSync("/dev/null", "w");
  try {
    using coll = Collection.load(spec, { constants: { target_tgid: process.pid, fd_a: a, fd_b: b } });
    const sizesA = [1, 2, 3, 4, 7, 8, 100, 1000, 1000, 4096, 5000, 65536, 1 << 20];
    const sizesB = [1, 999, 1001, 2500, 2500, 2500];
    {
      using _link = coll.program("count_write").attach();
      for (const n of sizesA) writeSync(a, Buffer.alloc(n));
      for (const n of sizesB) writeSync(b, Buffer.alloc(n));
    }
    const all = [...sizesA, ...sizesB];
    const expected = log2HistLines(bucketize(all).reduce((v, [s, c]) => ((v[s] = c), v), new Array<bigint>(LOG2_SLOTS).fill(0n)), "bytes");
    assert.equal(formatLog2Hist(coll.map("sizes"), { valType: "bytes" }), text(expected));
    const linear = (sizes: number[]) => bucketize(sizes.map((n) => Math.min(Math.floor(n / 1000), 20)), "linear");
    const want = [[a, sizesA], [b, sizesB]].sort((x, y) => (x[0] as number) - (y[0] as number));
    const printed = formatLinearHist(coll.map("by_fd"), { valType: "kbytes", sectionHeader: "fd", bucketSortFn: (fds: number[]) => [...fds].sort((x, y) => x - y) });
    const lines = (sizes: number[]) => linearHistLines(linear(sizes).reduce((v, [s, c]) => ((v[s] = c), v), new Array<bigint>(21).fill(0n)), "kbytes");
    assert.equal(printed, want.map(([fd, sizes]) => text(["", `fd = ${fd}`, ...lines(sizes as number[])])).join(""));
    assert.equal(printed.match(/^fd = \d+$/gm)?.length, 2);
  } finally {
    closeSync(a);
    closeSync(b);
  }
});
