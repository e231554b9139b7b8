// Nothing lost silently: the tools at their defaults keep up with a flood (the
// shared 1,000,000-open flood for opensnoop, 20,000 execs for execsnoop), and
// when a reader is stalled, what the kernel dropped is reported, so that
// received + reported lost == sent in every run.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { linksOfProgram } from "../support/kernel.ts";
import { tempDir, tsbpf, root } from "../support/tools.ts";

const FLOOD_SOURCE = join(root, "..", "..", "shared", "bench", "flood.c");
const FLOOD_PATH = "/nonexistent/flood/path/for/open/tracers";
/** The exec flood: after a byte on stdin, N children that exec /bin/true, one after another. */
const EXEC_FLOOD = `#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
  long n = atol(argv[1]), ok = 0;
  char go, *args[] = { "/bin/true", NULL };
  if (read(0, &go, 1) < 0) return 1;
  for (long i = 0; i < n; i++) {
    pid_t pid; int status;
    if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ)) return 1;
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) ok++;
  }
  printf("execs=%ld\\n", ok);
  return ok == n ? 0 : 1;
}
`;

const dir = tempDir("tsbpf-loss-");
let flood: string;
let execFlood: string;

before(() => {
  // The shared flood when this checkout sits in the usual place, else the same loop built here.
  const source = existsSync(FLOOD_SOURCE) ? FLOOD_SOURCE : writeSource("flood.c", readFloodFallback());
  flood = join(dir.path, "flood");
  execFileSync("cc", ["-O2", "-o", flood, source]);
  execFlood = join(dir.path, "execflood");
  execFileSync("cc", ["-O2", "-o", execFlood, writeSource("execflood.c", EXEC_FLOOD)]);
});

after(() => dir[Symbol.dispose]());

function writeSource(name: string, text: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, text);
  return path;
}

function readFloodFallback(): string {
  return `#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]); char go;
  if (read(0, &go, 1) < 0) return 1;
  for (long i = 0; i < n; i++) { int fd = openat(AT_FDCWD, "${FLOOD_PATH}", O_RDONLY); if (fd >= 0) close(fd); }
  return 0;
}
`;
}

interface FloodRun {
  /** stdout of the tool. */
  out: string;
  err: string;
  code: number | null;
  /** The count in "N events lost" on stderr (0 when it says nothing). */
  lost: number;
  /** CPU seconds the tool used (user + system, its whole run). */
  cpuSeconds: number;
}

/**
 * Starts `tsbpf ARGS` with `filter(loadPid)` appended, waits for its header,
 * releases the load (`loadBin N`), waits for the load to exit, then stops the
 * tool with SIGINT. `stall` SIGSTOPs the tool while the load runs.
 */
async function floodTool(attachedProgram: string, args: string[], filter: (pid: number) => string[], loadBin: string, n: number, opts: { stall?: boolean; json?: boolean } = {}): Promise<FloodRun> {
  const load = spawn(loadBin, [String(n)], { stdio: ["pipe", "ignore", "inherit"] });
  const loadExited = new Promise<number | null>((resolve) => load.on("exit", (code) => resolve(code)));
  const outPath = join(dir.path, `out-${load.pid}`);
  const outFd = openSync(outPath, "w");
  // Output to a file: the test process does not have to keep up with a million lines.
  const tool = spawn(process.execPath, [tsbpf, ...args, ...filter(load.pid!)], { cwd: root, stdio: ["ignore", outFd, "pipe"] });
  closeSync(outFd);
  let err = "";
  tool.stderr!.on("data", (d) => (err += d));
  const toolExited = new Promise<number | null>((resolve) => tool.on("exit", (code) => resolve(code)));
  try {
    const deadline = Date.now() + 60_000;
    // Ready: the header, printed once everything is attached; in --json mode (no header), the links (made after the reader).
    const ready = () => (opts.json ? linksOfProgram(attachedProgram).length > 0 : statSync(outPath).size > 0);
    while (!ready() && Date.now() < deadline && tool.exitCode === null) await sleep(50);
    assert.equal(tool.exitCode, null, `the tool exited early: ${err}`);
    if (opts.stall) tool.kill("SIGSTOP");
    load.stdin!.end("x");
    assert.equal(await loadExited, 0);
    if (opts.stall) tool.kill("SIGCONT");
    await sleep(300); // the last batch: the tool's drain timer
    const cpuSeconds = cpuOf(tool.pid!);
    tool.kill("SIGINT");
    const code = await toolExited;
    const lost = Number(/(\d+) events lost/.exec(err)?.[1] ?? 0);
    return { out: readFileSync(outPath, "utf8"), err, code, lost, cpuSeconds };
  } finally {
    if (load.exitCode === null) load.kill("SIGKILL");
    if (tool.exitCode === null && tool.signalCode === null) tool.kill("SIGKILL");
  }
}

/** CPU seconds a live process has used (user + system), from /proc/PID/stat in clock ticks (100 Hz). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
}

const countLines = (out: string, pred: (line: string) => boolean) => out.split("\n").filter(pred).length;

test("opensnoop at its defaults receives all of the 1,000,000-open flood, or reports what it lost", { timeout: 300_000 }, async () => {
  const n = 1_000_000;
  const r = await floodTool("exit_openat", ["opensnoop"], (pid) => ["-p", String(pid)], flood, n);
  assert.equal(r.code, 0, r.err);
  const received = countLines(r.out, (l) => l.endsWith(` ${FLOOD_PATH}`));
  console.log(`opensnoop flood: received ${received}, lost ${r.lost}, tool CPU ${r.cpuSeconds} s`);
  assert.equal(received + r.lost, n, r.err);
  assert.equal(r.lost, 0, `lost ${r.lost} of ${n} at the defaults`);
});

test("execsnoop at its defaults receives every one of 20,000 execs", { timeout: 300_000 }, async () => {
  const n = 20_000;
  const r = await floodTool("exit_execve", ["execsnoop", "--json"], (pid) => ["-P", String(pid)], execFlood, n, { json: true });
  assert.equal(r.code, 0, r.err);
  const records = r.out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  // Every record is a child of the flood (-P); one whose arguments could not be read still counts.
  const received = records.filter((e) => e.ppid !== undefined).length;
  const odd = records.filter((e) => e.ppid !== undefined && e.argv?.[0] !== "/bin/true");
  if (odd.length) console.log(`execsnoop flood: ${odd.length} records without /bin/true as argv[0], e.g. ${JSON.stringify(odd[0])}`);
  console.log(`execsnoop flood: received ${received}, lost ${r.lost}, tool CPU ${r.cpuSeconds} s`);
  assert.equal(received + r.lost, n, r.err);
  assert.equal(r.lost, 0);
});

test("a stalled opensnoop reports what the full ring dropped: stderr and a last {\"lost\": N} in --json", { timeout: 300_000 }, async () => {
  const n = 200_000;
  const r = await floodTool("exit_openat", ["opensnoop", "--json"], (pid) => ["-p", String(pid)], flood, n, { stall: true, json: true });
  assert.equal(r.code, 0, r.err);
  const records = r.out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const received = records.filter((e) => e.path === FLOOD_PATH).length;
  const last = records.at(-1);
  assert.ok(r.lost > 0, `nothing lost with the reader stopped: ${r.err}`);
  assert.match(r.err, new RegExp(`^tsbpf opensnoop: ${r.lost} events lost\\b`, "m"));
  assert.deepEqual(last, { lost: r.lost });
  assert.equal(received + r.lost, n);
});

test("a stalled opensnoop --perf-buffer reports the kernel's LOST records the same way", { timeout: 300_000 }, async () => {
  const n = 200_000;
  const r = await floodTool("exit_openat", ["opensnoop", "--perf-buffer"], (pid) => ["-p", String(pid)], flood, n, { stall: true });
  assert.equal(r.code, 0, r.err);
  const received = countLines(r.out, (l) => l.endsWith(` ${FLOOD_PATH}`));
  assert.ok(r.lost > 0, r.err);
  assert.equal(received + r.lost, n);
});
