// The CLI tools, run as a user runs them: as a process, stopped with Ctrl-C.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { linksOfProgram } from "../support/kernel.ts";

const root = join(import.meta.dirname, "..", "..");

/** Runs `tsbpf ARGS` until `until(stdout)` holds, poking the system meanwhile, then sends SIGINT. */
async function runUntil(args: string[], until: (out: string) => boolean, poke: () => void) {
  const child = spawn(process.execPath, [join(root, "bin", "tsbpf.js"), ...args], { cwd: root });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!until(out) && Date.now() < deadline && child.exitCode === null) {
    if (out.includes("Press Ctrl+C")) poke();
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGINT");
  const code = await exited;
  return { out, err, code };
}

test("tsbpf hello prints Hello, World! for each clone and exits cleanly on Ctrl-C", async () => {
  const { out, err, code } = await runUntil(
    ["hello"],
    (o) => (o.match(/Hello, World!/g) ?? []).length >= 3,
    () => spawnSync("sh", ["-c", "/bin/true & /bin/true & wait"]),
  );
  assert.equal(code, 0, `exit code ${code}; stderr: ${err}`);
  assert.match(out, /Attached to syscalls:sys_enter_clone/);
  const hello = out.split("\n").filter((l) => l.includes("Hello, World!"));
  assert.ok(hello.length >= 3, out);
  // Lines in trace_pipe's format: TASK-PID [CPU] FLAGS TIMESTAMP: bpf_trace_printk: Hello, World!
  assert.match(hello[0], /^\s*\S.*-\d+\s+\[\d+\].*\d+\.\d+: bpf_trace_printk: Hello, World!$/);
  assert.deepEqual(linksOfProgram("hello"), [], "a link of the tool's program was left attached");
});

test("tsbpf with an unknown command or none prints the commands", () => {
  const r = spawnSync(process.execPath, [join(root, "bin", "tsbpf.js"), "no-such-tool"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "no-such-tool"/);
  assert.match(r.stderr, /hello/);
  const help = spawnSync(process.execPath, [join(root, "bin", "tsbpf.js"), "hello", "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: tsbpf hello/);
});

test("the bundled CLI (dist/cli/main.js, built by npm test's set-up) is fresh and answers as the TypeScript sources do", () => {
  const built = statSync(join(root, "dist", "cli", "main.js")).mtimeMs;
  const sources = readdirSync(join(root, "src"), { recursive: true }).filter((f): f is string => typeof f === "string" && f.endsWith(".ts"));
  assert.ok(sources.length > 50, `${sources.length} sources`);
  for (const f of sources) assert.ok(statSync(join(root, "src", f)).mtimeMs <= built, `src/${f} is newer than the bundle`);
  for (const args of [[], ["opensnoop", "--help"], ["execsnoop", "--help"], ["trace", "--help"], ["gen", "--help"], ["vm", "--help"], ["opensnoop", "-p", "x"]]) {
    const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [join(root, "bin", "tsbpf.js"), ...args], { encoding: "utf8", env: { ...process.env, ...env } });
    const compiled = run({});
    const fromSource = run({ TSBPF_CLI_FROM_SOURCE: "1" });
    assert.ok(compiled.stdout.length + compiled.stderr.length > 20, `tsbpf ${args.join(" ")}: no output`);
    assert.deepEqual(
      { status: compiled.status, stdout: compiled.stdout, stderr: compiled.stderr },
      { status: fromSource.status, stdout: fromSource.stdout, stderr: fromSource.stderr },
      `tsbpf ${args.join(" ")}`,
    );
  }
});
