// tsbpf opensnoop against workloads that open paths only they use.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertDetached, linksOfProgram } from "../support/kernel.ts";
import { root, runTool, runToolIntoHead, tempDir, tsbpf, Workload } from "../support/tools.ts";
import { flagFilterOf, openFlags } from "../../src/cli/opensnoop.ts";

const dir = tempDir("tsbpf-opensnoop-");
const okA = join(dir.path, "a-exists");
const okB = join(dir.path, "b-exists");
const missingA = join(dir.path, "a-missing");
const missingB = join(dir.path, "b-missing");
let a: Workload;
let b: Workload;

before(() => {
  writeFileSync(okA, "a\n", { mode: 0o644 });
  writeFileSync(okB, "b\n", { mode: 0o644 });
  // Two processes, each opening its own paths: one that exists, one that does not.
  a = new Workload(dir.path, "tsbpfwla", `read x < ${okA}; read x < ${missingA} 2>/dev/null`);
  b = new Workload(dir.path, "tsbpfwlb", `read x < ${okB}; read x < ${missingB} 2>/dev/null`, { uid: 65534, gid: 65534 });
});

after(() => {
  a[Symbol.dispose]();
  b[Symbol.dispose]();
  dir[Symbol.dispose]();
});

const has = (path: string) => (out: string) => out.includes(path);
const paths = (json: Record<string, any>[]) => new Set(json.map((e) => e.path));

test("opensnoop prints BCC's columns and each open of the workload, then detaches on Ctrl-C", async () => {
  const r = await runTool(["opensnoop", "-T", "-U", "-e"], { until: (o) => has(okA)(o) && has(missingA)(o) });
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0], /^TIME\(s\)\s+UID\s+PID\s+COMM\s+FD\s+ERR\s+FLAGS\s+PATH$/);
  const ok = r.lines.find((l) => l.endsWith(` ${okA}`))!;
  const failed = r.lines.find((l) => l.endsWith(` ${missingA}`))!;
  // TIME UID PID COMM FD ERR FLAGS PATH
  assert.match(ok, new RegExp(`^\\d+\\.\\d{9}\\s+0\\s+${a.pid}\\s+tsbpfwla\\s+\\d+\\s+0 O_RDONLY\\s+${okA}$`));
  assert.match(failed, new RegExp(`^\\d+\\.\\d{9}\\s+0\\s+${a.pid}\\s+tsbpfwla\\s+-1\\s+2 O_RDONLY\\s+${missingA}$`));
  await assertDetached("enter_openat", "exit_openat", "enter_openat2", "exit_open");
});

test("opensnoop --json gives every field of the open", async () => {
  const r = await runTool(["opensnoop", "--json"], { until: (o) => has(okB)(o) && has(missingB)(o) });
  assert.equal(r.code, 0, r.err);
  const ok = r.json.find((e) => e.path === okB)!;
  assert.equal(ok.pid, b.pid);
  assert.equal(ok.tid, b.pid);
  assert.equal(ok.uid, 65534);
  assert.equal(ok.comm, "tsbpfwlb");
  assert.ok(ok.fd >= 0 && ok.err === 0, JSON.stringify(ok));
  assert.deepEqual(ok.flag_names, ["O_RDONLY"]);
  const failed = r.json.find((e) => e.path === missingB)!;
  assert.equal(failed.fd, -1);
  assert.equal(failed.err, 2);
  assert.equal(failed.errno, "ENOENT");
});

test("opensnoop filters in the kernel: -p, -u, -n and -x exclude the rest", async () => {
  const byPid = await runTool(["opensnoop", "--json", "-p", String(a.pid)], { until: has(missingA) });
  assert.ok(paths(byPid.json).has(okA));
  assert.deepEqual(new Set(byPid.json.map((e) => e.pid)), new Set([a.pid]));

  const byUid = await runTool(["opensnoop", "--json", "-u", "65534"], { until: has(missingB) });
  assert.ok(paths(byUid.json).has(okB));
  assert.deepEqual(new Set(byUid.json.map((e) => e.uid)), new Set([65534]));

  // A substring of the command name.
  const byName = await runTool(["opensnoop", "--json", "-n", "wlb"], { until: has(missingB) });
  assert.ok(paths(byName.json).has(okB));
  assert.deepEqual(new Set(byName.json.map((e) => e.comm)), new Set(["tsbpfwlb"]));

  const failedOnly = await runTool(["opensnoop", "--json", "-x", "-p", String(a.pid)], { until: has(missingA) });
  assert.ok(failedOnly.json.length > 0);
  assert.ok(failedOnly.json.every((e) => e.fd === -1 && e.err > 0 && e.path === missingA), JSON.stringify(failedOnly.json));
  await assertDetached("enter_openat", "exit_openat", "enter_openat2", "exit_open");
});

test("opensnoop -f filters on the open flags in the kernel: access modes and flag bits", async () => {
  const written = join(dir.path, "written");
  const read = join(dir.path, "read-back");
  writeFileSync(read, "r\n");
  using w = new Workload(dir.path, "tsbpfwlw", `echo w > ${written}; read x < ${read}`);
  const both = (o: string) => o.includes(written) && o.includes(read);
  const all = await runTool(["opensnoop", "--json", "-p", String(w.pid)], { until: both });
  assert.ok(paths(all.json).has(written) && paths(all.json).has(read), all.out);

  const writes = await runTool(["opensnoop", "--json", "-p", String(w.pid), "-f", "O_WRONLY"], { until: has(written) });
  assert.ok(writes.json.length > 0, writes.out);
  assert.ok(writes.json.every((e) => e.flag_names[0] === "O_WRONLY"), JSON.stringify(writes.json));
  assert.ok(!paths(writes.json).has(read));

  // O_RDONLY is 0: matched as an access mode, not a bit.
  const reads = await runTool(["opensnoop", "--json", "-p", String(w.pid), "-f", "o_rdonly"], { until: has(read) });
  assert.ok(reads.json.length > 0 && reads.json.every((e) => e.flag_names[0] === "O_RDONLY"), JSON.stringify(reads.json));
  assert.ok(!paths(reads.json).has(written));

  // Several: any of them (O_CREAT is a bit of the write's flags).
  const either = await runTool(["opensnoop", "--json", "-p", String(w.pid), "-f", "O_CREAT", "-f", "O_RDONLY"], { until: both });
  assert.ok(paths(either.json).has(written) && paths(either.json).has(read), either.out);
  await assertDetached("enter_openat", "exit_openat", "enter_openat2", "exit_open");
});

test("flagFilterOf: access modes as 1 << mode, flags as bits, unknown names refused", () => {
  assert.deepEqual(flagFilterOf([]), { flags: 0, accmodes: 0 });
  assert.deepEqual(flagFilterOf(["O_RDONLY", "o_rdwr"]), { flags: 0, accmodes: 0b101 });
  assert.deepEqual(flagFilterOf(["O_CREAT,O_TRUNC", "O_WRONLY"]), { flags: 0o1100, accmodes: 0b010 });
  assert.throws(() => flagFilterOf(["O_NOPE"]), /unknown flag "O_NOPE"; one of O_RDONLY/);
});

test("opensnoop reads through a perf buffer too, and stops after -d seconds", async () => {
  const r = await runTool(["opensnoop", "--perf-buffer", "-d", "2", "--json", "-p", String(a.pid)], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.signal, null);
  assert.ok(paths(r.json).has(okA), r.out);
  await assertDetached("enter_openat", "exit_openat", "enter_openat2", "exit_open");
});

test("opensnoop | head -n 2 ends the tool, leaving nothing attached", async () => {
  const { code, out } = await runToolIntoHead(["opensnoop"], 2);
  assert.equal(code, 0);
  assert.equal(out.trim().split("\n").length, 2, out);
  assert.match(out, /^PID\s+COMM\s+FD\s+ERR\s+PATH\n/);
  await assertDetached("enter_openat", "exit_openat", "enter_openat2", "exit_open");
});

test("opensnoop --help, bad options and no root each get a clear answer", async () => {
  const help = await runTool(["opensnoop", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /usage: tsbpf opensnoop/);
  assert.match(help.out, /-x, --failed/);
  const bad = await runTool(["opensnoop", "-p", "abc"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /-p\/--pid expects a process ID from 1 to 4194303, got "abc"/);
  const unknown = await runTool(["opensnoop", "--bogus"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown option --bogus/);
  const user = await runTool(["opensnoop"], { spawn: { uid: 65534, gid: 65534, env: { ...process.env, HOME: "/tmp" } } });
  assert.equal(user.code, 1);
  assert.match(user.err, /^tsbpf opensnoop: tsbpf needs root, or the capabilities CAP_BPF and CAP_PERFMON.*run it with sudo\.\n$/);
});

test("openFlags names the access mode and each flag", () => {
  assert.deepEqual(openFlags(0), ["O_RDONLY"]);
  assert.deepEqual(openFlags(0o1 | 0o100 | 0o1000), ["O_WRONLY", "O_CREAT", "O_TRUNC"]);
  assert.deepEqual(openFlags(0o2 | 0o2000000), ["O_RDWR", "O_CLOEXEC"]);
});

test("opensnoop stopped the moment its workload exits prints every open: the last batch is drained at Ctrl-C", async () => {
  // 300 opens of a path only this test uses, then SIGINT at once: a reader closed by the
  // stop signal used to drop the last batch (up to 50 ms of events) and say 0 lost.
  const path = join(dir.path, `tail-${process.pid}`);
  const tool = spawn(process.execPath, [tsbpf, "opensnoop", "--json"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const kill = setTimeout(() => tool.kill("SIGKILL"), 60_000);
  let out = "";
  let err = "";
  tool.stdout.on("data", (d) => (out += d));
  tool.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => tool.on("exit", resolve));
  for (let i = 0; i < 600 && linksOfProgram("exit_openat").length === 0 && tool.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(linksOfProgram("exit_openat").length > 0, err);
  const w = spawn("sh", ["-c", `i=0; while [ $i -lt 300 ]; do true < ${path} 2>/dev/null; i=$((i+1)); done`], { stdio: "ignore" });
  await once(w, "exit");
  tool.kill("SIGINT");
  const code = await exited;
  clearTimeout(kill);
  assert.equal(code, 0, err);
  const mine = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((e) => e.path === path);
  const lost = Number(/(\d+) events lost/.exec(err)?.[1] ?? 0);
  assert.equal(mine.length + lost, 300, `${mine.length} lines and ${lost} lost for 300 opens: ${err}`);
  assert.equal(mine.length, 300, err);
  await assertDetached("enter_openat", "exit_openat");
});
