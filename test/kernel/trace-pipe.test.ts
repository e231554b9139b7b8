import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";
import { parseTraceLine, tracePipe, tracefsDir, type TraceLine, type TracePipeOptions } from "../../src/tracing/index.ts";

const execFileAsync = promisify(execFile);

describe("parseTraceLine", () => {
  test("bpf_trace_printk lines, with <...> and with a plain task", () => {
    const raw = "           <...>-12345   [001] d..31  1234.567890: bpf_trace_printk: Hello, World!";
    assert.deepEqual(parseTraceLine(raw), {
      task: "<...>",
      pid: 12345,
      cpu: 1,
      flags: "d..31",
      timestamp: 1234.56789,
      event: "bpf_trace_printk",
      message: "Hello, World!",
      raw,
    });
    const node = parseTraceLine("node-12331   [003] d...1 26176.680654: bpf_trace_printk: Hello, World!")!;
    assert.equal(node.task, "node");
    assert.equal(node.pid, 12331);
    assert.equal(node.cpu, 3);
    assert.equal(node.flags, "d...1");
    assert.equal(node.timestamp, 26176.680654);
    assert.equal(node.message, "Hello, World!");
  });

  test("task names with spaces, dashes and digits split on the last dash before the pid", () => {
    const cases: [string, string, number][] = [
      ["     Web Content-4321    [002] d..2.    55.123456: bpf_trace_printk: hi", "Web Content", 4321],
      ["kworker/u8:1-events-99    [000] ..s.1    10.500000: bpf_trace_printk: hi", "kworker/u8:1-events", 99],
      ["       my-task-2-1234    [005] .....  100.000001: bpf_trace_printk: hi", "my-task-2", 1234],
      ["    a-1 b-c 3-77 [000] ..... 1.000000: bpf_trace_printk: hi", "a-1 b-c 3", 77],
    ];
    for (const [line, task, pid] of cases) {
      const parsed = parseTraceLine(line);
      assert.ok(parsed, line);
      assert.equal(parsed.task, task, line);
      assert.equal(parsed.pid, pid, line);
      assert.equal(parsed.message, "hi", line);
    }
  });

  test("lines without the flags field (old kernels) and with the tgid column", () => {
    const old = parseTraceLine("            bash-1234  [000]  1234.567890: bpf_trace_printk: old kernel")!;
    assert.equal(old.task, "bash");
    assert.equal(old.pid, 1234);
    assert.equal(old.cpu, 0);
    assert.equal(old.flags, "");
    assert.equal(old.timestamp, 1234.56789);
    assert.equal(old.message, "old kernel");

    const tgid = parseTraceLine("           <...>-12345   (  12340) [001] d..31  1234.567890: bpf_trace_printk: x")!;
    assert.equal(tgid.pid, 12345);
    assert.equal(tgid.cpu, 1);
    assert.equal(tgid.flags, "d..31");
    const noTgid = parseTraceLine("          <idle>-0       (-------) [002] d.h1.   99.000001: bpf_trace_printk: y")!;
    assert.equal(noTgid.task, "<idle>");
    assert.equal(noTgid.pid, 0);
    assert.equal(noTgid.message, "y");
  });

  test("messages keep colons and header-like text; other events and function-tracer lines", () => {
    const tricky = parseTraceLine("  cat-7 [000] d..31 5.000001: bpf_trace_printk: pid-9 [001] d..3 1.0: a: b\n")!;
    assert.equal(tricky.task, "cat");
    assert.equal(tricky.pid, 7);
    assert.equal(tricky.message, "pid-9 [001] d..3 1.0: a: b");
    assert.equal(tricky.raw, "  cat-7 [000] d..31 5.000001: bpf_trace_printk: pid-9 [001] d..3 1.0: a: b");

    const marker = parseTraceLine("            node-77     [000] .....   743.417267: tracing_mark_write: MARK 1")!;
    assert.equal(marker.event, "tracing_mark_write");
    assert.equal(marker.message, "MARK 1");

    const empty = parseTraceLine("            node-77     [000] .....   743.417267: bpf_trace_printk: ")!;
    assert.equal(empty.message, "");

    const fn = parseTraceLine("            bash-1234  [000] .....  1234.567890: do_sys_open <-__x64_sys_openat")!;
    assert.equal(fn.event, "");
    assert.equal(fn.message, "do_sys_open <-__x64_sys_openat");
  });

  test("lines that are not events are undefined", () => {
    for (const line of [
      "CPU:3 [LOST 12 EVENTS]",
      "# tracer: nop",
      "#           TASK-PID     CPU#  IRQS-OFF  TIMESTAMP  FUNCTION",
      "",
      " => ksys_write",
      "garbage",
    ]) {
      assert.equal(parseTraceLine(line), undefined, line);
    }
  });
});

/** Open fds of this process that point at trace_pipe. */
function tracePipeFds(): string[] {
  const fds: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).endsWith("/trace_pipe")) fds.push(fd);
    } catch {
      // the fd readdir itself used, already closed
    }
  }
  return fds;
}

function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/**
 * tracePipe(), waiting while another process (another test run) holds
 * trace_pipe: since Linux 6.6 it has one reader at a time.
 */
async function openTracePipe(options?: TracePipeOptions): Promise<AsyncIterableIterator<TraceLine>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return tracePipe(options);
    } catch (error) {
      if ((error as { code?: string }).code !== "EBUSY" || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root (tracefs, trace_pipe)";

function tracingOff(): string | false {
  return readFileSync(join(tracefsDir(), "tracing_on"), "utf8").trim() === "0" ? "tracing is off (tracing_on is 0)" : false;
}

function writeMarker(marker: string): void {
  writeFileSync(join(tracefsDir(), "trace_marker"), marker);
}

describe("tracefs and trace_pipe", { skip }, () => {
  test("tracefsDir finds (or mounts) tracefs", () => {
    const dir = tracefsDir();
    assert.ok(existsSync(join(dir, "trace_pipe")));
    assert.ok(existsSync(join(dir, "trace_marker")));
    assert.equal(tracefsDir(), dir);
    const mounts = readFileSync("/proc/self/mounts", "utf8");
    assert.match(mounts, /\s(tracefs|debugfs)\s/);
  });

  test("a trace_marker write comes back through tracePipe", async (t) => {
    const off = tracingOff();
    if (off) return t.skip(off);
    const marker = `tsbpf-test-${randomBytes(8).toString("hex")}`;
    const signal = AbortSignal.timeout(10_000);
    let found: TraceLine | undefined;
    const lines = await openTracePipe({ signal });
    // Other readers of trace_pipe (it is system-wide) may consume a write: repeat it until seen.
    writeMarker(marker);
    const again = setInterval(() => writeMarker(marker), 200);
    t.after(() => clearInterval(again));
    for await (const line of lines) {
      if (line.message.includes(marker)) {
        found = line;
        break;
      }
    }
    assert.ok(found, "the marker was read back before the timeout");
    assert.equal(found.event, "tracing_mark_write");
    assert.equal(found.message, marker);
    // trace_pipe shows the writing thread's id: this process's main thread.
    assert.equal(found.pid, process.pid);
    assert.ok(found.timestamp > 0);
    assert.deepEqual(tracePipeFds(), [], "break closed trace_pipe");
  });

  test("abort ends a pending iteration cleanly and closes the fd", async (t) => {
    const off = tracingOff();
    if (off) return t.skip(off);
    // Warm up whatever node opens lazily, so the fd count compares like with like.
    const warm = new AbortController();
    const warmLines = await openTracePipe({ signal: warm.signal });
    warm.abort();
    assert.deepEqual(await warmLines.next(), { value: undefined, done: true });
    const before = fdCount();

    const controller = new AbortController();
    const lines = await openTracePipe({ signal: controller.signal });
    assert.equal(tracePipeFds().length, 1);
    const ended = (async () => {
      const seen: TraceLine[] = [];
      for await (const line of lines) if (line.message.startsWith("tsbpf-never-")) seen.push(line);
      return seen;
    })();
    // Timers still fire while it waits.
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    assert.deepEqual(await ended, []);
    assert.deepEqual(tracePipeFds(), []);
    // No fd left behind; node may close one of its own meanwhile (CI saw 27 after 28).
    assert.ok(fdCount() <= before, `${fdCount()} fds open, ${before} before`);
    // After the end, next() stays done.
    assert.deepEqual(await lines.next(), { value: undefined, done: true });
  });

  test("return() while a next() is pending settles it; an aborted signal opens nothing", async () => {
    const lines = await openTracePipe();
    const next = lines.next();
    // Let the watcher start, then end the iteration from outside.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(await lines.return!(), { value: undefined, done: true });
    // Settled: done, unless some other process's trace output arrived first.
    const settled = await next;
    assert.ok(settled.done === true || typeof settled.value.message === "string");
    assert.deepEqual(await lines.next(), { value: undefined, done: true });
    assert.deepEqual(tracePipeFds(), []);

    const before = fdCount();
    const aborted = tracePipe({ signal: AbortSignal.abort() });
    assert.ok(fdCount() <= before, `${fdCount()} fds open, ${before} before: an aborted signal opened something`);
    assert.deepEqual(await aborted.next(), { value: undefined, done: true });
  });

  test("a second reader gets EBUSY naming the holder (Linux >= 6.6)", async (t) => {
    const first = await openTracePipe();
    try {
      let second: AsyncIterableIterator<TraceLine> | undefined;
      try {
        second = tracePipe();
      } catch (error) {
        assert.equal((error as { code?: string }).code, "EBUSY");
        assert.match((error as Error).message, /one reader at a time/);
        assert.match((error as Error).message, new RegExp(`pid ${process.pid} \\(`));
        return;
      }
      await second.return!();
      t.skip("this kernel allows several trace_pipe readers");
    } finally {
      await first.return!();
    }
  });

  test("a waiting reader holds no threadpool thread (UV_THREADPOOL_SIZE=1)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tsbpf-trace-pipe-"));
    const script = join(dir, "child.mts");
    const tracing = new URL("../../src/tracing/index.ts", import.meta.url).href;
    await writeFile(
      script,
      `import { tracePipe } from ${JSON.stringify(tracing)};
import { readFile } from "node:fs/promises";
const controller = new AbortController();
let lines;
for (let i = 0; ; i++) {
  try { lines = tracePipe({ signal: controller.signal }); break; }
  catch (error) { if (error.code !== "EBUSY" || i > 300) throw error; await new Promise((r) => setTimeout(r, 100)); }
}
const ended = (async () => { for await (const line of lines) {} return "ended"; })();
await new Promise((r) => setTimeout(r, 20));
const start = performance.now();
await Promise.all([readFile("/proc/self/status"), readFile("/proc/self/stat"), readFile("/proc/self/maps")]);
const ms = performance.now() - start;
controller.abort();
console.log(JSON.stringify({ ms, end: await ended }));
`,
    );
    try {
      const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", script], {
        cwd: new URL("..", import.meta.url).pathname,
        env: { ...process.env, UV_THREADPOOL_SIZE: "1" },
        timeout: 45_000,
      });
      const result = JSON.parse(stdout.trim().split("\n").pop()!) as { ms: number; end: string };
      assert.equal(result.end, "ended");
      assert.ok(result.ms < 5_000, `fs reads took ${result.ms} ms`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
