// The process tools (exitsnoop, killsnoop, oomkill, memleak...) against
// workloads whose exits, signals, OOM kills and allocations the test makes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertDetached, linksOfProgram } from "../support/kernel.ts";
import { runTool, runToolIntoHead, tempDir, type ToolResult } from "../support/tools.ts";

const attached = (program: string) => () => linksOfProgram(program).length > 0;

/** Runs `tsbpf ARGS` until `ready()` (its programs attached), then `workload`, then SIGINT. */
async function around<T>(args: string[], ready: () => boolean, workload: () => Promise<T>): Promise<{ r: ToolResult; w: T }> {
  let w!: T;
  let done = false;
  let started = false;
  const r = await runTool(args, {
    until: () => {
      if (!started && ready()) {
        started = true;
        void workload().then((v) => {
          w = v;
          setTimeout(() => (done = true), 300);
        });
      }
      return done;
    },
  });
  assert.ok(started, `the tool never attached: ${r.err}`);
  return { r, w };
}

/** Runs sh -c SCRIPT under the command name `comm` (a copy of /bin/sh); resolves its pid at exit. */
async function sh(dir: string, comm: string, script: string): Promise<number> {
  const shell = join(dir, comm);
  if (!existsSync(shell)) spawnSync("cp", ["/bin/sh", shell]);
  const c = spawn(shell, ["-c", script], { stdio: "ignore" });
  await once(c, "exit");
  return c.pid!;
}

test("exitsnoop reports exit codes, signals and the parent, as BCC prints them", async () => {
  using dir = tempDir("tsbpf-exit-");
  let pids: number[] = [];
  const { r } = await around(["exitsnoop", "--json"], attached("process_exit"), async () => {
    pids = [await sh(dir.path, "tsbpfexit3", "exit 3"), await sh(dir.path, "tsbpfexit0", "exit 0"), await sh(dir.path, "tsbpfkill9", "kill -9 $$")];
    return pids;
  });
  assert.equal(r.code, 0, r.err);
  const byPid = (pid: number) => r.json.find((e) => e.pid === pid);
  const [three, zero, killed] = pids.map(byPid);
  assert.deepEqual([three?.comm, three?.exit_code, three?.status, three?.ppid, three?.tid], ["tsbpfexit3", 3, "code 3", process.pid, pids[0]]);
  assert.deepEqual([zero?.comm, zero?.exit_code, zero?.status], ["tsbpfexit0", 0, "0"]);
  assert.deepEqual([killed?.comm, killed?.signal, killed?.status], ["tsbpfkill9", 9, "signal 9 (KILL)"]);

  const { r: text } = await around(["exitsnoop", "-x"], attached("process_exit"), async () => [await sh(dir.path, "tsbpfexit0", "exit 0"), await sh(dir.path, "tsbpfexit3", "exit 3")]);
  assert.match(text.lines[0]!, /^PCOMM\s+PID\s+PPID\s+TID\s+AGE\(s\)\s+EXIT_CODE\s*$/);
  assert.ok(!text.out.includes("tsbpfexit0"), "-x let exit(0) through");
  assert.match(text.out, new RegExp(`\\ntsbpfexit3\\s+\\d+\\s+${process.pid}\\s+\\d+\\s+\\d+\\.\\d\\d\\s+code 3\\n`));
  await assertDetached("process_exit");
});

test("killsnoop shows who signalled whom, with which signal and result; -x and -s filter", async () => {
  using dir = tempDir("tsbpf-kill-");
  const target = spawn("sleep", ["30"], { stdio: "ignore" });
  let sender = 0;
  const { r } = await around(["killsnoop", "--json"], attached("exit_kill"), async () => {
    sender = await sh(dir.path, "tsbpfkiller", `kill -USR1 ${process.pid}; kill -0 ${target.pid}; kill -TERM 999999 2>/dev/null; true`);
  });
  target.kill("SIGKILL");
  assert.equal(r.code, 0, r.err);
  const mine = r.json.filter((e) => e.pid === sender);
  assert.deepEqual(mine.map((e) => [e.comm, e.sig, e.tpid, e.ret]), [
    ["tsbpfkiller", 10, process.pid, 0],
    ["tsbpfkiller", 0, target.pid, 0],
    ["tsbpfkiller", 15, 999999, -3],
  ]);

  const { r: failed } = await around(["killsnoop", "-x", "-s", "TERM"], attached("exit_kill"), async () => {
    sender = await sh(dir.path, "tsbpfkiller", `kill -0 ${process.pid}; kill -TERM 999999 2>/dev/null; kill -HUP 999999 2>/dev/null; true`);
  });
  assert.match(failed.lines[0]!, /^TIME\s+PID\s+COMM\s+SIG\s+TPID\s+RESULT$/);
  const rows = failed.lines.slice(1).filter((l) => l.includes("tsbpfkiller"));
  assert.equal(rows.length, 1, failed.out);
  assert.match(rows[0]!, new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\s+${sender}\\s+tsbpfkiller\\s+15\\s+999999\\s+-3$`));
  await assertDetached("enter_kill", "exit_kill");
});

test("oomkill names the victim and the trigger of a memory cgroup's OOM kill", async (t) => {
  const v1 = "/sys/fs/cgroup/memory";
  const v2 = "/sys/fs/cgroup/unified";
  const cg = existsSync(join(v1, "memory.limit_in_bytes")) ? join(v1, `tsbpf-oom-${process.pid}`) : existsSync(join(v2, "cgroup.subtree_control")) ? join(v2, `tsbpf-oom-${process.pid}`) : undefined;
  if (!cg) return t.skip("no memory cgroup");
  mkdirSync(cg);
  using dir = tempDir("tsbpf-oom-");
  try {
    if (cg.startsWith(v1)) writeFileSync(join(cg, "memory.limit_in_bytes"), String(32 << 20));
    else writeFileSync(join(cg, "memory.max"), String(32 << 20));
    let pid = 0;
    const { r } = await around(["oomkill", "--json"], attached("mark_victim"), async () => {
      // tail reads /dev/zero looking for a newline that never comes, growing its buffer until killed.
      pid = await sh(dir.path, "tsbpfhog", `echo $$ > ${cg}/cgroup.procs && exec tail /dev/zero`);
    });
    assert.equal(r.code, 0, r.err);
    const kill = r.json.find((e) => e.victim_pid === pid);
    assert.ok(kill, r.out);
    // The hog's own allocation triggers the kill of itself (tail, after the exec).
    assert.deepEqual([kill.victim_comm, kill.trigger_pid, kill.trigger_comm], ["tail", pid, "tail"]);
    assert.ok(kill.rss_kb > 16 << 10 && kill.rss_kb <= 40 << 10, `rss ${kill.rss_kb} kB`);
    await assertDetached("mark_victim");
  } finally {
    rmdirSync(cg);
  }
});

test("process tools | head end cleanly, and help names the hooks", async () => {
  const { code, out } = await runToolIntoHead(["exitsnoop"], 1);
  assert.equal(code, 0);
  assert.match(out, /^PCOMM/);
  await assertDetached("process_exit");
  for (const tool of ["exitsnoop", "killsnoop", "oomkill"]) {
    const help = await runTool([tool, "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, new RegExp(`usage: tsbpf ${tool}[\\s\\S]*hooks: `));
  }
  const bad = await runTool(["killsnoop", "-s", "NOPE"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown signal "NOPE"/);
});

const LEAKER = `
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static volatile int go;
static void on_usr1(int s) { (void)s; go = 1; }
__attribute__((noinline)) void *leak_here(size_t n) { return malloc(n); }
__attribute__((noinline)) void *leak_aligned(size_t n) { void *p = 0; return posix_memalign(&p, 64, n) ? 0 : p; }
__attribute__((noinline)) void *leak_mapped(size_t n) { void *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); return p == MAP_FAILED ? 0 : p; }
__attribute__((noinline)) void churn(void) {
	free(malloc(500)); free(calloc(10, 50)); free(realloc(malloc(100), 700));
	free(aligned_alloc(64, 640)); free(memalign(64, 320)); free(valloc(100)); free(leak_aligned(900)); munmap(leak_mapped(4096), 4096);
}
int main(void) {
	signal(SIGUSR1, on_usr1);
	printf("ready\\n"); fflush(stdout);
	while (!go) pause();
	for (int i = 0; i < 20; i++) { if (!leak_here(1000)) return 1; churn(); }
	for (int i = 0; i < 5; i++) if (!leak_aligned(2000)) return 1;
	for (int i = 0; i < 3; i++) if (!leak_mapped(8192)) return 1;
	printf("leaked\\n"); fflush(stdout);
	sleep(60);
	return 0;
}
`;

test("memleak -p finds what a process leaks through malloc, posix_memalign and mmap, at each call site, and none it freed", async () => {
  using dir = tempDir("tsbpf-memleak-");
  writeFileSync(join(dir.path, "leaker.c"), LEAKER);
  const cc = spawnSync("cc", ["-g", "-O0", "-fno-omit-frame-pointer", "-o", join(dir.path, "leaker"), join(dir.path, "leaker.c")], { encoding: "utf8" });
  assert.equal(cc.status, 0, cc.stderr);
  const leaker = spawn(join(dir.path, "leaker"), { stdio: ["ignore", "pipe", "inherit"] });
  let said = "";
  leaker.stdout!.on("data", (d) => (said += d));
  try {
    while (!said.includes("ready")) await new Promise((r) => setTimeout(r, 20));
    const { r } = await around(["memleak", "-p", String(leaker.pid), "-o", "0", "--json", "1"], attached("malloc_exit") /* attached last */, async () => {
      leaker.kill("SIGUSR1");
      while (!said.includes("leaked")) await new Promise((res) => setTimeout(res, 20));
      await new Promise((res) => setTimeout(res, 2500)); // two reports after the leak
    });
    assert.equal(r.code, 0, r.err);
    const last = r.json.at(-1)!;
    // Three call sites leak, through malloc, posix_memalign and mmap; the frees of every
    // allocator (free, munmap) leave nothing else outstanding.
    assert.equal(last.stacks.length, 3, JSON.stringify(last));
    const site = (fn: string) => last.stacks.find((s: { stack: string[] }) => new RegExp(`^${fn}\\+0x[0-9a-f]+ \\[.*/leaker\\]$`).test(s.stack[0]));
    for (const [fn, bytes, allocations] of [["leak_here", 20000, 20], ["leak_aligned", 10000, 5], ["leak_mapped", 24576, 3]] as const) {
      const s = site(fn);
      assert.ok(s, `no stack at ${fn}: ${JSON.stringify(last)}`);
      assert.deepEqual([s.bytes, s.allocations], [bytes, allocations], fn);
      assert.ok(s.stack.some((f: string) => f.startsWith("main+")), s.stack.join(" "));
    }
    await assertDetached("malloc_exit", "free_enter_u", "mmap_exit", "posix_memalign_exit", "aligned_exit");
  } finally {
    leaker.kill("SIGKILL");
  }
});

test("bashreadline prints the lines an interactive bash reads, with its pid", async (t) => {
  if (spawnSync("which", ["script"]).status !== 0) return t.skip("no script(1) for a pty");
  let shPid = 0;
  const { r } = await around(["bashreadline", "--json"], attached("readline_exit"), async () => {
    // script gives bash a pty, so it is interactive and reads with readline().
    const s = spawn("script", ["-qfc", "bash --norc -i", "/dev/null"], { stdio: ["pipe", "ignore", "ignore"] });
    s.stdin!.end("echo tsbpf-typed-$((6*7))\necho $$ > /dev/null\nexit\n");
    await once(s, "exit");
    shPid = s.pid!;
  });
  assert.equal(r.code, 0, r.err);
  const lines = r.json.filter((e) => e.command.startsWith("echo tsbpf-typed") || e.command === "exit");
  assert.deepEqual(lines.map((e) => e.command), ["echo tsbpf-typed-$((6*7))", "exit"]);
  assert.ok(lines.every((e) => e.comm === "bash" && e.pid !== shPid && e.pid > 0), JSON.stringify(lines)); // bash, not script
  await assertDetached("readline_exit");
});

test("threadsnoop shows each pthread_create of a process with its start routine", async () => {
  using dir = tempDir("tsbpf-threads-");
  writeFileSync(join(dir.path, "th.c"), `#include <pthread.h>\n#include <unistd.h>\nvoid *tsbpf_worker(void *a) { return a; }\nint main(void) { for (int i = 0; i < 3; i++) { pthread_t t; pthread_create(&t, 0, tsbpf_worker, 0); pthread_join(t, 0); } sleep(2); return 0; }\n`);
  const cc = spawnSync("cc", ["-g", "-O0", "-o", join(dir.path, "tsbpfthreads"), join(dir.path, "th.c"), "-lpthread"], { encoding: "utf8" });
  assert.equal(cc.status, 0, cc.stderr);
  let pid = 0;
  const { r } = await around(["threadsnoop"], attached("pthread_create_enter"), async () => {
    const c = spawn(join(dir.path, "tsbpfthreads"), { stdio: "ignore" });
    pid = c.pid!;
    await once(c, "exit");
  });
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0]!, /^TIME\(ms\)\s+PID\s+COMM\s+FUNC$/);
  const rows = r.lines.filter((l) => l.includes("tsbpfthreads"));
  assert.equal(rows.length, 3, r.out);
  for (const l of rows) assert.match(l, new RegExp(`^\\d+\\s+${pid}\\s+tsbpfthreads\\s+tsbpf_worker$`));
  await assertDetached("pthread_create_enter");
});

// Holds N pipes with a byte in each (a pipe_inode_info and its buffer array from
// kmalloc, a page from the page allocator), then closes them all.
const PIPES = `
import os, sys, resource
n = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (2 * n + 100, 2 * n + 100))
ps = [os.pipe() for _ in range(n)]
for r, w in ps: os.write(w, b"x")
print("held", flush=True)
sys.stdin.readline()
for r, w in ps: os.close(r); os.close(w)
print("released", flush=True)
sys.stdin.readline()
`;

test("memleak (kernel: kmem tracepoints) holds the pipes a process keeps, by stack, and lets them go when it closes them", async () => {
  const N = 1000;
  // -z/-Z 1024: only kmalloc-1k objects (a pipe's buffer array: 16 slots of 40 bytes). Kernel
  // mode records every allocation; unfiltered, a busy host fills the million-entry table in
  // seconds and later allocations are not recorded (as in BCC).
  // Complete report lines only: a report is hundreds of kB and arrives in chunks.
  const reports = (out: string) => out.slice(0, out.lastIndexOf("\n") + 1).split("\n").filter((l) => l.startsWith("{")).length;
  let stage = 0;
  let heldAt = 0;
  let releasedAt = 0;
  let said = "";
  let py: ReturnType<typeof spawn> | undefined;
  try {
    const r = await runTool(["memleak", "--json", "-o", "0", "-z", "1024", "-Z", "1024", "-T", "10000", "1"], {
      until: (out) => {
        // Every program attached (attachAll's order is the loader's, not the list's).
        if (stage === 0 && ["kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc", "mm_page_free"].every((p) => linksOfProgram(p).length > 0)) {
          py = spawn("python3", ["-c", PIPES, String(N)], { stdio: ["pipe", "pipe", "inherit"] });
          py.stdout!.on("data", (d) => (said += d));
          stage = 1;
        } else if (stage === 1 && said.includes("held")) {
          // The report after the next one was begun after the pipes were all made (the next may have been under way).
          heldAt = reports(out) + 1;
          stage = 2;
        } else if (stage === 2 && reports(out) > heldAt) {
          py!.stdin!.write("\n");
          stage = 3;
        } else if (stage === 3 && said.includes("released")) {
          releasedAt = reports(out) + 1;
          stage = 4;
        }
        return stage === 4 && reports(out) > releasedAt;
      },
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(stage, 4, `stage ${stage}: ${r.err}`);
    const sum = (report: any, frame: RegExp) =>
      report.stacks.filter((s: any) => s.stack.some((f: string) => frame.test(f))).reduce((n: number, s: any) => n + s.allocations, 0);
    const held = r.json[heldAt]!;
    const released = r.json[releasedAt]!;
    // kmalloc: the buffer array of each pipe, from alloc_pipe_info, 1024 bytes each.
    assert.ok(sum(held, /^alloc_pipe_info\+/) >= N, `alloc_pipe_info: ${sum(held, /^alloc_pipe_info\+/)}`);
    assert.ok(held.stacks.filter((s: any) => s.stack.some((f: string) => /^alloc_pipe_info\+/.test(f))).every((s: any) => s.bytes === s.allocations * 1024));
    // Freed at close (kfree, mm_page_free): what other processes hold meanwhile is far less than N.
    assert.ok(sum(released, /^alloc_pipe_info\+/) < N / 2, `after close, alloc_pipe_info: ${sum(released, /^alloc_pipe_info\+/)}`);
    await assertDetached("kmalloc", "mm_page_alloc", "kmem_cache_free");
  } finally {
    py?.kill("SIGKILL");
  }
});

// Leaks 10 blocks of 3000 bytes at leak_here at once, and allocates and frees one more.
const STARTUP_LEAKER = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) void *leak_here(size_t n) { return malloc(n); }
int main(void) {
	for (int i = 0; i < 10; i++) if (!leak_here(3000)) return 1;
	free(malloc(3000));
	printf("leaked\\n"); fflush(stdout);
	sleep(60);
	return 0;
}
`;

test("memleak -c runs the command once attached: --combined-only finds its startup leak; -t prints each call", async () => {
  using dir = tempDir("tsbpf-memleak-c-");
  const exe = join(dir.path, "startleak");
  writeFileSync(`${exe}.c`, STARTUP_LEAKER);
  const cc = spawnSync("cc", ["-O0", "-fno-omit-frame-pointer", "-o", exe, `${exe}.c`], { encoding: "utf8" });
  assert.equal(cc.status, 0, cc.stderr);
  const leak = (out: string) => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).flatMap((j) => j.stacks ?? []).find((s: any) => s.bytes === 30000);
  const r = await runTool(["memleak", "-c", exe, "--combined-only", "--json", "1"], { until: (out) => leak(out) !== undefined });
  assert.equal(r.code, 0, r.err);
  const s = leak(r.out)!;
  assert.equal(s.allocations, 10);
  assert.match(s.stack[0], /^leak_here\+0x[0-9a-f]+ \[.*\/startleak\]$/);
  // The tool stops its command as it exits (SIGTERM): gone within moments.
  for (let i = 0; i < 50 && spawnSync("pgrep", ["-x", "startleak"]).status === 0; i++) await new Promise((res) => setTimeout(res, 100));
  assert.equal(spawnSync("pgrep", ["-x", "startleak"]).status, 1, "the command outlived the tool");
  await assertDetached("malloc_exit", "free_enter_u");

  const t = await runTool(["memleak", "-c", exe, "-t"], { until: (out) => /free entered, address = [0-9a-f]+, size = 3000/.test(out) });
  assert.equal(t.code, 0, t.err);
  assert.equal(t.lines[0], `Executing '${exe}' and tracing the resulting process.`);
  assert.match(t.lines[1]!, /^Attaching to pid \d+, Ctrl\+C to quit\.$/);
  const exits = t.lines.filter((l) => /startleak-\d+\s+[\d.]+: alloc exited, size = 3000, result = [0-9a-f]+$/.test(l));
  assert.equal(exits.length, 11, t.out);
  assert.equal(t.lines.filter((l) => /free entered, address = [0-9a-f]+, size = 3000$/.test(l)).length, 1, t.out);
});
