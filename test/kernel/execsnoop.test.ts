// tsbpf execsnoop against workloads that exec commands only they run.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { assertDetached } from "../support/kernel.ts";
import { runTool, runToolIntoHead, tempDir, Workload } from "../support/tools.ts";

const dir = tempDir("tsbpf-execsnoop-");
const cmdA = join(dir.path, "tsbpfexeca");
const cmdB = join(dir.path, "tsbpfexecb");
const missing = join(dir.path, "tsbpfmissing");
let a: Workload;
let b: Workload;

before(() => {
  copyFileSync("/bin/true", cmdA);
  copyFileSync("/bin/true", cmdB);
  a = new Workload(dir.path, "tsbpfwla", `${cmdA} one "two words" --three=3; ${missing} 2>/dev/null`);
  b = new Workload(dir.path, "tsbpfwlb", `${cmdB} x`, { uid: 65534, gid: 65534 });
});

after(() => {
  a[Symbol.dispose]();
  b[Symbol.dispose]();
  dir[Symbol.dispose]();
});

const has = (s: string) => (out: string) => out.includes(s);

test("execsnoop prints BCC's columns: the new command, its PID and PPID, RET and the full argv", async () => {
  const r = await runTool(["execsnoop", "-U"], { until: has(`${cmdA} one`) });
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0], /^UID\s+PCOMM\s+PID\s+PPID\s+RET ARGS$/);
  const line = r.lines.find((l) => l.includes(`${cmdA} one`))!;
  assert.match(line, new RegExp(`^0\\s+tsbpfexeca\\s+\\d+\\s+${a.pid}\\s+0 ${cmdA} one two words --three=3$`));
  // Failed execs only with -x.
  assert.ok(!r.out.includes(missing), r.out);
  await assertDetached("enter_execve", "exit_execve");
});

test("execsnoop --json -x gives every field, failed execs included", async () => {
  const r = await runTool(["execsnoop", "--json", "-x", "-P", String(a.pid)], { until: (o) => has(missing)(o) && has(cmdA)(o) });
  assert.equal(r.code, 0, r.err);
  const ok = r.json.find((e) => e.argv[0] === cmdA)!;
  assert.deepEqual(ok.argv, [cmdA, "one", "two words", "--three=3"]);
  assert.equal(ok.comm, "tsbpfexeca");
  assert.equal(ok.ppid, a.pid);
  assert.equal(ok.ret, 0);
  assert.equal(ok.uid, 0);
  assert.equal(ok.truncated, false);
  const failed = r.json.find((e) => e.argv[0] === missing)!;
  assert.equal(failed.ret, -2);
  assert.deepEqual(new Set(r.json.map((e) => e.ppid)), new Set([a.pid]), "-P let another parent's children through");
});

test("execsnoop filters in the kernel: -u and -n exclude the rest; --max-args truncates", async () => {
  const byUid = await runTool(["execsnoop", "--json", "-u", "65534"], { until: has(cmdB) });
  assert.ok(byUid.json.some((e) => e.argv[0] === cmdB));
  assert.deepEqual(new Set(byUid.json.map((e) => e.uid)), new Set([65534]));

  const byName = await runTool(["execsnoop", "--json", "-n", "execa"], { until: has(cmdA) });
  assert.ok(byName.json.length > 0);
  assert.deepEqual(new Set(byName.json.map((e) => e.comm)), new Set(["tsbpfexeca"]));

  const short = await runTool(["execsnoop", "-n", "execa", "--max-args", "2"], { until: has(cmdA) });
  assert.match(short.out, new RegExp(`${cmdA} one \\.\\.\\.\\n`));
  await assertDetached("enter_execve", "exit_execve");
});

test("execsnoop -l matches arguments, and reads through a perf buffer too", async () => {
  const r = await runTool(["execsnoop", "--perf-buffer", "--json", "-l", "^--three="], { until: has(cmdA) });
  assert.equal(r.code, 0, r.err);
  assert.ok(r.json.length > 0);
  assert.ok(r.json.every((e) => e.argv.includes("--three=3")), r.out);
  await assertDetached("enter_execve", "exit_execve");
});

test("execsnoop | head -n 2 ends the tool, leaving nothing attached", async () => {
  const { code, out } = await runToolIntoHead(["execsnoop"], 2);
  assert.equal(code, 0);
  assert.equal(out.trim().split("\n").length, 2, out);
  assert.match(out, /^PCOMM\s+PID\s+PPID\s+RET ARGS\n/);
  await assertDetached("enter_execve", "exit_execve");
});

test("execsnoop --help and bad options get a clear answer", async () => {
  const help = await runTool(["execsnoop", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /usage: tsbpf execsnoop/);
  const bad = await runTool(["execsnoop", "--max-args", "100"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--max-args expects an integer from 1 to 60/);
});
