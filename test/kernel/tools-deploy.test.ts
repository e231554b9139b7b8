// Compile once, run everywhere: the tools' CO-RE objects, built on this host,
// run where there is no clang: on this host without it, and in the Debian 6.1
// and 6.12 kernels under QEMU (whose struct layouts differ from this kernel's).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildToolObjects } from "../../src/cli/tool.ts";
import { root, runTool, tempDir, tsbpf, Workload } from "../support/tools.ts";

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

// The packed and installed package: test/package.test.ts.

/**
 * In a Debian guest (no clang there): both tools from the objects built above,
 * against a workload that opens a file and execs a marker, stopped with SIGINT.
 * The objects were compiled against this host's vmlinux.h; task_struct (PPID) and
 * the tracepoint contexts are found through CO-RE in the guest's own BTF.
 */
function guestScript(): string {
  return `
set -u
cd ${JSON.stringify(root)}
echo data > /tmp/tsbpf-guest-file
node bin/tsbpf.js execsnoop --json > /tmp/exec.out 2> /tmp/exec.err & EXEC=$!
node bin/tsbpf.js opensnoop --json > /tmp/open.out 2> /tmp/open.err & OPEN=$!
sh -c 'while :; do read x < /tmp/tsbpf-guest-file; /opt/tsbpf-true tsbpf-guest-marker; sleep 0.2; done' & LOOP=$!
echo "LOOP=$LOOP"
i=0
# [r]: the pattern must not match grep's own exec, which execsnoop reports too
until grep -q '"/opt/tsbpf-t[r]ue"' /tmp/exec.out && grep -q '"/tmp/tsbpf-guest-fil[e]"' /tmp/open.out; do
  i=$((i + 1)); [ $i -gt 600 ] && echo TIMEOUT && break
  sleep 0.1
done
kill -INT $EXEC $OPEN
wait $EXEC; echo "EXEC_STATUS=$?"
wait $OPEN; echo "OPEN_STATUS=$?"
kill $LOOP
echo ---exec; cat /tmp/exec.out; echo ---exec-err; cat /tmp/exec.err
echo ---open; cat /tmp/open.out; echo ---open-err; cat /tmp/open.err
`;
}

function runGuest(kernel: string): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [tsbpf, "vm", "run", "--kernel", kernel, "--timeout", "240", "--file", `${objects.path}:/opt/tool-objects`,
        "--file", "/bin/true:/opt/tsbpf-true",
        "--env", "TSBPF_TOOL_OBJECTS=/opt/tool-objects", "--", "sh", "-c", guestScript()],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (status) => resolve({ status, out, err }));
  });
}

describe("the same objects in Debian kernels under QEMU", { skip: process.env.TSBPF_TEST_HOST_ONLY === "1" && "TSBPF_TEST_HOST_ONLY=1" }, () => {
  for (const kernel of ["6.1", "6.12"]) {
    test(`in ${kernel}: execsnoop's PPID and argv, opensnoop's path, a clean Ctrl-C`, { timeout: 300_000 }, async () => {
      const r = await runGuest(kernel);
      const show = `status ${r.status}\n${r.out}\n--- stderr\n${r.err.slice(-3000)}`;
      assert.equal(r.status, 0, show);
      assert.ok(!r.out.includes("TIMEOUT"), show);
      assert.match(r.out, /^EXEC_STATUS=0$/m, show);
      assert.match(r.out, /^OPEN_STATUS=0$/m, show);
      const loop = Number(/^LOOP=(\d+)$/m.exec(r.out)![1]);
      const section = (name: string) => r.out.split(`---${name}\n`)[1]!.split("\n---")[0]!;
      const execs = section("exec").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      // busybox runs its applets without exec: the marker is coreutils' true, copied in.
      const marker = execs.find((e) => e.argv[0] === "/opt/tsbpf-true");
      assert.ok(marker, show);
      assert.deepEqual(marker.argv, ["/opt/tsbpf-true", "tsbpf-guest-marker"]);
      // task->real_parent->tgid, read through CO-RE offsets of this kernel.
      assert.equal(marker.ppid, loop, show);
      assert.equal(marker.ret, 0);
      const opens = section("open").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const opened = opens.find((e) => e.path === "/tmp/tsbpf-guest-file");
      assert.ok(opened, show);
      assert.equal(opened.pid, loop);
      assert.ok(opened.fd >= 0, show);
    });
  }
});
