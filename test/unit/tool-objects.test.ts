// When a tool runs from a working tree, a pre-compiled object older than its C or
// than a header the tools share is rebuilt, not loaded stale.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isStaleToolObject, toolSourceDir } from "../../src/cli/tool.ts";
import { packageRoot } from "../../src/internal/package.ts";

test("a tool object is stale when its C or a shared header (include/, src/cli/bpf/*.h) is newer", () => {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-objects-"));
  try {
    const object = join(dir, "opensnoop.bpf.o");
    writeFileSync(object, "");
    const headers = (d: string) => readdirSync(d).filter((f) => f.endsWith(".h")).map((f) => join(d, f));
    const inputs = [join(toolSourceDir, "opensnoop.bpf.c"), ...headers(toolSourceDir), ...headers(join(packageRoot, "include"))];
    const newest = Math.max(...inputs.map((p) => statSync(p).mtimeMs));
    const at = (ms: number) => utimesSync(object, ms / 1000, ms / 1000);
    at(newest + 60_000);
    assert.equal(isStaleToolObject("opensnoop", object), false);
    // Older than include/tsbpf.h (as after an edit of that header only): stale.
    at(statSync(join(packageRoot, "include", "tsbpf.h")).mtimeMs - 60_000);
    assert.equal(isStaleToolObject("opensnoop", object), true);
    // A tool without C in this tree (an installed package): its object is what it ships.
    assert.equal(isStaleToolObject("no-such-tool", object), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
