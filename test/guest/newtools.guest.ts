// Runs INSIDE a guest kernel (6.1, 6.12) through test/guest/all.ts: `tsbpf capable`,
// which needs fentry or a kprobe on cap_capable (the host has neither), from the
// pre-compiled dist/bpf objects, against chown(2) calls whose pids the test knows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { linksOfProgram, programsNamed } from "../support/kernel.ts";

const root = join(import.meta.dirname, "..", "..");

/** Runs `tsbpf capable ARGS` until attached (its fentry link exists), then `workload`, then SIGINT. */
async function capable(args: string[], workload: () => Promise<void> | void): Promise<{ out: string; err: string; code: number | null }> {
  const child = spawn(process.execPath, [join(root, "bin", "tsbpf.js"), "capable", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  const deadline = Date.now() + 120_000;
  const attached = () => linksOfProgram("cap_fentry").length + linksOfProgram("cap_kprobe").length > 0;
  while (!attached() && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(attached(), `capable never attached: ${err}`);
  await workload();
  await new Promise((r) => setTimeout(r, 500)); // the reader's drain: 50 ms
  child.kill("SIGINT");
  const code = await exited;
  assert.deepEqual([...linksOfProgram("cap_fentry"), ...programsNamed("cap_fentry")], [], "capable left its program behind");
  return { out, err, code };
}

test("capable -x shows each chown's CAP_CHOWN check with the chown's pid; -K adds the kernel stack", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-capable-"));
  try {
    const file = join(dir, "f");
    writeFileSync(file, "");
    const pids: number[] = [];
    const r = await capable(["-x", "-K"], () => {
      for (let i = 0; i < 3; i++) {
        // root changing a file's owner to another user: capable(CAP_CHOWN), audited
        const c = spawnSync("chown", [String(1234 + i), file], { stdio: "pipe" });
        assert.equal(c.status, 0, String(c.stderr));
        pids.push(c.pid!);
      }
    });
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split("\n");
    assert.match(lines[0]!, /^TIME\s+UID\s+PID\s+TID\s+COMM\s+CAP\s+NAME\s+AUDIT\s+INSETID$/);
    for (const pid of pids) {
      const i = lines.findIndex((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\s+0\\s+${pid}\\s+${pid}\\s+\\S+\\s+0\\s+CAP_CHOWN\\s+1\\s+0$`).test(l));
      assert.ok(i >= 0, `no CAP_CHOWN line for pid ${pid}:\n${r.out}`);
      // The kernel stack under it (8 spaces each): it comes through chown's syscall.
      const stack: string[] = [];
      for (let j = i + 1; j < lines.length && lines[j]!.startsWith("        "); j++) stack.push(lines[j]!.trim());
      assert.ok(stack.some((f) => /chown/.test(f)), `no chown frame in the stack of pid ${pid}:\n${stack.join("\n")}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("capable --json -p PID --unique: only that process, one record per capability and stack", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-capable-"));
  try {
    const file = join(dir, "f");
    writeFileSync(file, "");
    // A node child that chowns 5 times in its own process when told to: its pid is the filter.
    const code = `process.stdin.once("data", () => { for (let i = 1; i <= 5; i++) require("fs").chownSync(${JSON.stringify(file)}, 1000 + i, 0); process.exit(0); });`;
    const worker = spawn(process.execPath, ["-e", code], { stdio: ["pipe", "ignore", "inherit"] });
    const exited = new Promise((r) => worker.on("exit", r));
    const r = await capable(["--json", "--unique", "-p", String(worker.pid)], async () => {
      worker.stdin!.end("go\n");
      await exited;
      spawnSync("chown", ["4321", file]); // another process: filtered out
    });
    assert.equal(r.code, 0, r.err);
    const records = r.out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.ok(records.length > 0, r.out);
    assert.ok(records.every((e) => e.pid === worker.pid), r.out);
    const chown = records.filter((e) => e.name === "CAP_CHOWN");
    // Five identical checks (same pid, cap and no stacks): --unique keeps the first.
    assert.equal(chown.length, 1, r.out);
    assert.deepEqual([chown[0].cap, chown[0].audit, chown[0].uid], [0, 1, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
