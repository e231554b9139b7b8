// Split from test/unit/hooks.test.ts: the hook tests that attach in this kernel (root)
// or look binaries up on this host's PATH and library dirs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ProgType, AttachType } from "../../src/internal/sys/constants.ts";
import {
  attachHook, describeTarget, hooks, sectionDef, sectionDefs, sectionOf, targetOfSection, type HookKind, type HookTarget,
} from "../../src/link/hooks.ts";
import { sectionDef as sectionDefViaObject } from "../../src/object/sections.ts";
import { AttachError } from "../../src/link/errors.ts";
import { addProbeEvent, badEventName, badProbeLocation, probeEventsFile, tracepointExists } from "../../src/tracing/tracefs.ts";
import { BPF_TRACE_MAX_PROGS } from "../../src/link/link.ts";

const root = process.getuid?.() === 0;

test("attaching to a tracepoint named with .. is an AttachError, not a path outside events/", { skip: !root && "needs root" }, async () => {
  const { Collection } = await import("../../src/collection.ts");
  const { specOf, HEADERS } = await import("../support/kernel.ts");
  const spec = await specOf(`${HEADERS}\nSEC("tracepoint") int tp(void *ctx) { return 0; }\n`);
  using coll = Collection.load(spec);
  for (const [category, event] of [["..", "syscalls"], ["syscalls", "../sched/sched_switch"], ["syscalls/..", "x"]]) {
    assert.throws(
      () => coll.program("tp").attachTracepoint(category!, event!),
      (e: unknown) => e instanceof AttachError && e.hook === "tracepoint" && e.reason === "invalid tracepoint name",
      `${category}:${event}`,
    );
  }
  assert.equal(coll.program("tp").links.length, 0);
});

test(`more than ${BPF_TRACE_MAX_PROGS} programs on one tracepoint: an AttachError naming the kernel's limit`, { skip: !root && "needs root" }, async () => {
  const { Collection } = await import("../../src/collection.ts");
  const { specOf, HEADERS } = await import("../support/kernel.ts");
  const spec = await specOf(`${HEADERS}\nSEC("tracepoint/syscalls/sys_enter_acct") int many(void *ctx) { return 0; }\n`);
  using coll = Collection.load(spec, { programs: [] });
  let attached = 0;
  let failure: unknown;
  for (let i = 0; i < BPF_TRACE_MAX_PROGS + 1; i++) {
    const program = coll.loadProgram("many");
    try {
      program.attach();
      attached++;
    } catch (err) {
      failure = err;
      break;
    }
  }
  // Others may hold programs on the event too: the limit is reached at the 65th at the latest.
  assert.ok(attached <= BPF_TRACE_MAX_PROGS, `${attached} attached`);
  assert.ok(failure instanceof AttachError, String(failure));
  assert.equal(failure.code, "ERR_TSBPF_ATTACH");
  assert.equal(failure.hook, "tracepoint");
  assert.equal(failure.target, "tracepoint:syscalls:sys_enter_acct");
  assert.match(failure.message, /at most 64 BPF programs on one trace event \(BPF_TRACE_MAX_PROGS\)/);
  assert.equal((failure.cause as { code?: string }).code, "E2BIG");
});

test("binaries and libraries are found by one rule: a path, else a library (ld.so cache, library dirs), else PATH", async () => {
  const { findBinary, findLibrary, searchedFor } = await import("../../src/internal/binaries.ts");
  const { resolveBinary } = await import("../../src/link/uprobe.ts");
  const { findLibrary: traceFindLibrary } = await import("../../src/cli/trace/probe.ts");
  const libc = findBinary("c");
  assert.ok(libc && /\/libc\.so\.6$/.test(libc), String(libc));
  assert.equal(findLibrary("libc.so.6"), libc, "the exact name finds the same file");
  assert.equal(traceFindLibrary("c"), libc, "tsbpf trace asks the same module");
  assert.equal(resolveBinary("c"), libc, "so does attachUprobe");
  assert.match(findBinary("sh")!, /\/sh$/, "not a library: PATH");
  assert.equal(findBinary("/nonexistent/tsbpf"), undefined);
  assert.throws(() => resolveBinary("tsbpf-no-such-binary"), (e: unknown) => e instanceof AttachError && e.hook === "uprobe" && /PATH/.test(e.message));
  assert.match(searchedFor("ssl"), /libssl\.so in the ld\.so cache/);
});
