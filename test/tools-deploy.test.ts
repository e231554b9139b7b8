// Compile once, run everywhere: the tools' CO-RE objects, built on this host,
// run where there is no clang: on this host without it, and in the Debian 6.1
// and 6.12 kernels under QEMU (whose struct layouts differ from this kernel's).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildToolObjects } from "../src/cli/tool.ts";
import { root, runTool, tempDir, tsbpf, Workload } from "./support/tools.ts";

const objects = tempDir("tsbpf-tool-objects-");
const cache = tempDir("tsbpf-empty-cache-");
const work = tempDir("tsbpf-deploy-");
/** Neither clang nor a compile cache: only the pre-compiled objects can work. */
const noClang = { ...process.env, TSBPF_CLANG: "/nonexistent/clang", TSBPF_CACHE_DIR: cache.path };

before(async () => {
  await buildToolObjects(objects.path);
});

after(() => {
  for (const d of [objects, cache, work]) d[Symbol.dispose]();
});

test("without clang and without pre-compiled objects, a tool says what to install or where to point", async () => {
  const r = await runTool(["opensnoop"], { spawn: { env: { ...noClang, TSBPF_TOOL_OBJECTS: work.path } } });
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /^tsbpf opensnoop: clang was not found: .*apt-get install clang.*npm run build:bpf -- DIR.*TSBPF_TOOL_OBJECTS=DIR/);
});

test("with pre-compiled objects, opensnoop and execsnoop run on a machine without clang", async () => {
  const path = join(work.path, "opened");
  writeFileSync(path, "x");
  using w = new Workload(work.path, "tsbpfdeploy", `read x < ${path}; /bin/true deploy-marker`);
  const env = { ...noClang, TSBPF_TOOL_OBJECTS: objects.path };
  const open = await runTool(["opensnoop", "--json", "-p", String(w.pid)], { spawn: { env }, until: (o) => o.includes(path) });
  assert.equal(open.code, 0, open.err);
  assert.ok(open.json.some((e) => e.path === path && e.pid === w.pid && e.comm === "tsbpfdeploy"), open.out);
  const exec = await runTool(["execsnoop", "--json", "-P", String(w.pid)], { spawn: { env }, until: (o) => o.includes("deploy-marker") });
  assert.equal(exec.code, 0, exec.err);
  assert.ok(exec.json.some((e) => e.ppid === w.pid && e.argv.join(" ") === "/bin/true deploy-marker"), exec.out);
});
