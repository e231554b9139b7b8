// The file-system tools (statsnoop, mountsnoop, vfsstat, filetop, filelife,
// ext4slower, cachestat) against workloads whose files, names and sizes the test
// chooses, in a temp dir on the root file system (ext4 here).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertDetached, linksOfProgram } from "../support/kernel.ts";
import { runTool, runToolIntoHead, tempDir, Workload } from "../support/tools.ts";
import { callText, decodeFlags, decodeMountFlags, quote, type MountEvent } from "../../src/cli/mountsnoop.ts";
import { cacheRatio } from "../../src/cli/cachestat.ts";

const dir = tempDir("tsbpf-fs-");
const DD = "tsbpffsdd";
const dd = join(dir.path, DD);
const exists = join(dir.path, "st-exists");
const missing = join(dir.path, "st-missing");
let statter: Workload;

before(() => {
  copyFileSync("/bin/dd", dd);
  writeFileSync(exists, "x\n");
  // `test -e` is a builtin: the shell itself calls stat().
  statter = new Workload(dir.path, "tsbpfstat", `test -e ${exists}; test -e ${missing}`);
});

after(() => {
  statter[Symbol.dispose]();
  dir[Symbol.dispose]();
});

/** A `ready` that holds once each program named has a link (for --json runs, which print no header). */
function attached(names: string[]): () => boolean {
  return () => names.every((n) => linksOfProgram(n).length > 0);
}

/** Runs `cmd` once `ready(stdout)` holds; `exited` turns true when it has. */
function whenReady(ready: (out: string) => boolean, cmd: string, args: string[]) {
  const state = { pid: 0, exited: false, code: null as number | null };
  const until = (out: string): boolean => {
    if (!state.pid && ready(out)) {
      const child = spawn(cmd, args, { stdio: "ignore" });
      state.pid = child.pid!;
      child.on("exit", (c) => ((state.exited = true), (state.code = c)));
    }
    return state.exited;
  };
  return { state, until };
}

test("statsnoop: the workload's stat of a file that exists and of one that does not", async () => {
  const has = (o: string) => o.includes(exists) && o.includes(missing);
  const r = await runTool(["statsnoop", "-t", "-s", "-p", String(statter.pid)], { until: has });
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0]!, /^TIME\(s\)\s+PID\s+COMM\s+FD\s+ERR\s+SYSCALL\s+PATH$/);
  const ok = r.lines.find((l) => l.endsWith(` ${exists}`))!;
  const bad = r.lines.find((l) => l.endsWith(` ${missing}`))!;
  assert.match(ok, new RegExp(`^\\d+\\.\\d{9}\\s+${statter.pid}\\s+tsbpfstat\\s+0\\s+0 (newfstatat|statx|newstat|fstatat64|stat)\\s+${exists}$`));
  assert.match(bad, new RegExp(`^\\d+\\.\\d{9}\\s+${statter.pid}\\s+tsbpfstat\\s+-1\\s+2 (newfstatat|statx|newstat|fstatat64|stat)\\s+${missing}$`));
  for (const l of r.lines.slice(1)) assert.match(l, new RegExp(`\\s${statter.pid}\\s+tsbpfstat\\s`), "-p let another process through");

  const failed = await runTool(["statsnoop", "-x", "--json", "-p", String(statter.pid)], { until: (o) => o.includes(missing) });
  assert.equal(failed.code, 0, failed.err);
  assert.ok(failed.json.length > 0);
  for (const e of failed.json) {
    assert.equal(e.err, 2, JSON.stringify(e));
    assert.equal(e.fd, -1);
    assert.equal(e.pid, statter.pid);
  }
  await assertDetached("enter_newfstatat", "exit_newfstatat", "enter_statx");
});

test("mountsnoop prints the tmpfs mount and umount of the test as BCC does", async () => {
  const target = join(dir.path, "mnt");
  mkdirSync(target);
  const script = `mount -t tmpfs -o nosuid,nodev,size=1m tsbpftmpfs ${target} && umount ${target}`;
  const w = whenReady((o) => o.startsWith("COMM"), "sh", ["-c", script]);
  const r = await runTool(["mountsnoop", "-P"], { until: (o) => w.until(o) && o.includes(`umount("${target}"`) });
  assert.equal(r.code, 0, r.err);
  assert.equal(w.state.code, 0, "mount/umount failed");
  assert.match(r.lines[0]!, /^COMM\s+PID\s+TID\s+PCOMM\s+PPID\s+MNT_NS\s+CALL$/);
  const mount = r.lines.find((l) => l.includes(`mount("tsbpftmpfs"`))!;
  assert.ok(mount, r.out);
  assert.match(mount, /^mount\s+\d+\s+\d+\s+sh\s+\d+\s+\d+\s+/);
  assert.ok(mount.endsWith(`mount("tsbpftmpfs", "${target}", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m") = 0`), mount);
  const umount = r.lines.find((l) => l.includes(`umount("${target}"`))!;
  assert.ok(umount.endsWith(`umount("${target}", 0x0) = 0`), umount);
  await assertDetached("enter_mount", "exit_mount", "enter_umount");
});

test("mountsnoop's decoding of flags, strings and errors", () => {
  assert.equal(decodeMountFlags(0), "0x0");
  assert.equal(decodeMountFlags(0xc0ed0000 + 1), "MS_MGC_VAL|MS_RDONLY");
  assert.equal(decodeFlags(3 | 64, [["A", 1], ["B", 2]]), "A|B|0x40");
  assert.equal(quote('a"b\n\x01'), '"a\\"b\\n\\x01"');
  const e = { call: 1, s1: "/mnt", flags: 2n, ret: -16 } as unknown as MountEvent;
  assert.equal(callText(e), 'umount("/mnt", MNT_DETACH) = -EBUSY');
});

test("vfsstat counts the creates of a workload that makes new files, and none for one that only opens", async () => {
  const creator = new Workload(dir.path, "tsbpfcreat", `i=$((i+1)); : > ${dir.path}/new-$$-$i`);
  const opener = new Workload(dir.path, "tsbpfopen", `: < ${exists}`);
  try {
    const a = await runTool(["vfsstat", "--json", "-p", String(creator.pid), "1", "2"]);
    const b = await runTool(["vfsstat", "--json", "-p", String(opener.pid), "1", "2"]);
    assert.equal(a.code, 0, a.err);
    assert.equal(a.json.length, 2);
    const sum = (j: Record<string, any>[], k: string) => j.reduce((n, x) => n + x[k], 0);
    assert.ok(sum(a.json, "create_per_s") >= 2, JSON.stringify(a.json));
    assert.ok(sum(a.json, "open_per_s") >= sum(a.json, "create_per_s"));
    assert.equal(sum(a.json, "unlink_per_s") + sum(a.json, "mkdir_per_s") + sum(a.json, "rmdir_per_s"), 0);
    assert.ok(sum(b.json, "open_per_s") >= 2, JSON.stringify(b.json));
    assert.equal(sum(b.json, "create_per_s"), 0);
    const text = await runTool(["vfsstat", "1", "1"]);
    assert.match(text.lines[0]!, /^TIME\s{9}READ\/s\s+WRITE\/s\s+FSYNC\/s\s+OPEN\/s\s+CREATE\/s\s+UNLINK\/s\s+MKDIR\/s\s+RMDIR\/s$/);
    assert.match(text.lines[1]!, /^\d\d:\d\d:\d\d:(\s+\d+){8}$/);
  } finally {
    creator[Symbol.dispose]();
    opener[Symbol.dispose]();
  }
});

test("filetop: dd's 64 writes of 4 KiB to its file, and with -a its reads of /dev/zero", async () => {
  const out = join(dir.path, "ft-file");
  const w = whenReady(attached(["enter_write", "exit_write"]), dd, ["if=/dev/zero", `of=${out}`, "bs=4096", "count=64"]);
  const r = await runTool(["filetop", "-a", "--json", "-r", "10000", "3600", "1"], { until: w.until });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.json.length, 1, r.out);
  const rows = r.json[0]!.rows.filter((x: any) => x.tid === w.state.pid);
  const file = rows.find((x: any) => x.file === "ft-file");
  assert.deepEqual({ comm: file.comm, reads: file.reads, writes: file.writes, r_kb: file.r_kb, w_kb: file.w_kb, type: file.type }, { comm: DD, reads: 0, writes: 64, r_kb: 0, w_kb: 256, type: "R" });
  const zero = rows.find((x: any) => x.file === "zero");
  assert.deepEqual({ reads: zero.reads, r_kb: zero.r_kb, type: zero.type }, { reads: 64, r_kb: 256, type: "O" });
  await assertDetached("enter_write", "exit_write", "enter_read");
});

test("filelife: a file created, kept half a second and deleted by rm", async () => {
  const name = `life-${process.pid}`;
  const w = whenReady((o) => o.startsWith("TIME"), "sh", ["-c", `echo x > ${dir.path}/${name}; sleep 0.5; rm ${dir.path}/${name}`]);
  const r = await runTool(["filelife"], { until: (o) => w.until(o) && o.includes(` ${name}`) });
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0]!, /^TIME\s+PID\s+COMM\s+AGE\(s\)\s+FILE$/);
  const line = r.lines.find((l) => l.endsWith(` ${name}`))!;
  const [time, pid, comm, age] = line.split(/\s+/);
  assert.match(time!, /^\d\d:\d\d:\d\d$/);
  assert.ok(Number(pid) > 0);
  assert.equal(comm, "rm");
  assert.ok(Number(age) >= 0.45 && Number(age) < 10, line);
  await assertDetached("ext4_unlink_enter", "exit_openat");
});

test("ext4slower 0: dd's open, eight 4 KiB writes at their offsets and its fsync on ext4", async () => {
  const w = whenReady((o) => o.includes("FILENAME"), dd, ["if=/dev/zero", `of=${join(dir.path, "slow-file")}`, "bs=4096", "count=8", "conv=fsync"]);
  const r = await runTool(["ext4slower", "0"], { until: (o) => w.until(o) && o.includes(" S ") && /S .*slow-file/.test(o) });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.lines[0], "Tracing ext4 operations");
  assert.match(r.lines[1]!, /^TIME\s+COMM\s+PID\s+T\s+BYTES\s+OFF_KB\s+LAT\(ms\)\s+FILENAME$/);
  const mine = r.lines.filter((l) => l.endsWith(" slow-file") && l.includes(` ${DD.slice(0, 14)} `)).map((l) => l.trim().split(/\s+/));
  const writes = mine.filter((f) => f[3] === "W");
  assert.deepEqual(writes.map((f) => [f[4], f[5]]), [0, 4, 8, 12, 16, 20, 24, 28].map((kb) => ["4096", String(kb)]));
  for (const f of mine) assert.equal(Number(f[2]), w.state.pid);
  assert.equal(mine.filter((f) => f[3] === "O").length, 1);
  assert.equal(mine.filter((f) => f[3] === "S").length, 1);
  assert.equal(mine.filter((f) => f[3] === "R").length, 0);
  await assertDetached("enter_write", "exit_write", "enter_fsync");

  const csv = await runToolIntoHead(["ext4slower", "-j", "0"], 2);
  assert.equal(csv.code, 0);
  assert.equal(csv.out.split("\n")[0], "ENDTIME_us,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE");
});

test("cachestat counts the pages of a file read twice after its cache was dropped", async () => {
  const file = join(dir.path, "cache-file");
  const PAGES = 1024; // 4 MiB
  spawnSync(dd, ["if=/dev/urandom", `of=${file}`, "bs=4096", `count=${PAGES}`, "conv=fsync"]);
  // iflag=nocache with count=0 drops this file's pages from the cache (POSIX_FADV_DONTNEED), no one else's.
  const script = `${dd} if=${file} iflag=nocache count=0 2>/dev/null; cat ${file} > /dev/null; cat ${file} > /dev/null`;
  const w = whenReady(attached(["get_pages", "add_to_page_cache"]), "sh", ["-c", script]);
  const r = await runTool(["cachestat", "--json", "3600", "1"], { until: w.until });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.json.length, 1, r.out);
  const s = r.json[0]!;
  assert.ok(s.pages_added >= PAGES, JSON.stringify(s));
  assert.ok(s.accesses >= 2 * PAGES, JSON.stringify(s));
  assert.ok(s.hits >= 0 && s.misses >= 0 && s.hitratio >= 0 && s.hitratio <= 100);
  assert.ok(s.cached_mb > 0);
  assert.deepEqual(cacheRatio(10, 100, 4), { hits: 94, misses: 6, ratio: 0.94 });
  assert.deepEqual(cacheRatio(200, 100, 0), { hits: 0, misses: 100, ratio: 0 });
  await assertDetached("get_pages", "add_to_page_cache", "dirty_folio");
});

test("the file-system tools: help names the hooks, a closed pipe ends them, bad options are refused", async () => {
  for (const tool of ["statsnoop", "mountsnoop", "vfsstat", "filetop", "filelife", "ext4slower", "cachestat"]) {
    const help = await runTool([tool, "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /hooks: /, tool);
  }
  const head = await runToolIntoHead(["statsnoop"], 1);
  assert.equal(head.code, 0);
  assert.match(head.out, /^PID\s+COMM/);
  await assertDetached("enter_newfstatat", "exit_newfstatat");
  const bad = await runTool(["filetop", "-s", "size"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /-s\/--sort: one of all, reads, writes, rbytes, wbytes/);
  const neg = await runTool(["ext4slower", "-5"]);
  assert.equal(neg.code, 2);
});
