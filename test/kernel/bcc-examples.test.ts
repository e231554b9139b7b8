// The seed's two programs, ported (examples/hello-world.ts, examples/file-monitor.ts),
// run as subprocesses: they see the events of a child this test spawns, and exit
// cleanly on SIGINT with nothing left attached. On this host (no kprobes) their
// kprobes fall back to the syscall tracepoints; the last suite runs this same file
// inside Debian 6.1 and 6.12 under QEMU (tsbpf vm), where they use real kprobes.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, constants, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BPF } from "../../src/index.ts";
import { resolveKernel } from "../../src/vm/kernels.ts";
import { prebuildBcc } from "../../src/bcc/index.ts";
import { BpfCmd } from "../../src/internal/sys/constants.ts";
import { fdById, linkInfo, listIds, progInfo } from "../../src/internal/sys/bpf.ts";
import { probesAvailable } from "../../src/link/probe.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const IN_VM = process.env.TSBPF_IN_VM === "1";
const HOST_ONLY = process.env.TSBPF_TEST_HOST_ONLY === "1";
const KPROBES = probesAvailable("kprobe");
/** Emulated guests are slow: more time to start node and see events. */
const SLOW = IN_VM ? 6 : 1;

/** Names of the programs behind every BPF link in the system. */
function attachedPrograms(): string[] {
  const names: string[] = [];
  for (const id of listIds(BpfCmd.LINK_GET_NEXT_ID)) {
    try {
      using link = fdById(BpfCmd.LINK_GET_FD_BY_ID, id);
      using prog = fdById(BpfCmd.PROG_GET_FD_BY_ID, linkInfo(link.value).progId);
      names.push(progInfo(prog.value).name);
    } catch {
      // gone meanwhile
    }
  }
  return names;
}

async function waitUntil(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

class Example {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #partial = "";

  constructor(file: string, viaNpx = false) {
    const [cmd, args] = viaNpx ? ["npx", ["tsx", file]] : [process.execPath, ["--import", "tsx", file]];
    // Its own process group, as a shell job: Ctrl-C is SIGINT to the group.
    this.child = spawn(cmd, args as string[], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      const parts = (this.#partial + chunk).split("\n");
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
  }

  /** The first output line matching `re`; `poke()` runs every 250 ms meanwhile (to make events happen). */
  async waitFor(re: RegExp, ms: number, poke?: () => void, accept: (m: RegExpExecArray) => boolean = () => true): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (let seen = 0; ; ) {
      for (; seen < this.lines.length; seen++) {
        const m = re.exec(this.lines[seen]!);
        if (m && accept(m)) return m;
      }
      if (exited) assert.fail(`the example exited before printing ${re}\n--- stderr\n${this.stderr}`);
      if (Date.now() > end) assert.fail(`no line matching ${re} in ${ms} ms (${this.lines.length} lines)\n--- last lines\n${this.lines.slice(-5).join("\n")}\n--- stderr\n${this.stderr}`);
      poke?.();
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Ctrl-C: SIGINT to the process group. */
  interrupt(): void {
    process.kill(-this.child.pid!, "SIGINT");
  }

  kill(): void {
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** What the fallback note says, and how often it must appear. */
function checkKprobeNote(stderr: string): void {
  const notes = stderr.split("\n").filter((l) => l.includes("this kernel has no kprobes"));
  if (KPROBES) assert.equal(notes.length, 0, `kprobes are used where the kernel has them:\n${stderr}`);
  else assert.equal(notes.length, 1, `the tracepoint fallback is announced once on stderr:\n${stderr}`);
}

async function exitsCleanly(ex: Example, programs: string[]): Promise<void> {
  ex.interrupt();
  const { code, signal } = await ex.exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `exit on SIGINT\n--- stderr\n${ex.stderr}`);
  await waitUntil(`the programs ${programs} to be detached`, () => !attachedPrograms().some((n) => programs.includes(n)), 5000);
}

describe("examples/file-monitor.ts", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "tsbpf-file-monitor-"));
    chmodSync(dir, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("prints a child's opens (uid, comm, every flag, file name as text) and exits on SIGINT with nothing attached", { timeout: 120_000 * SLOW }, async () => {
    assert.ok(!attachedPrograms().includes("syscall__openat"), "no file monitor is running already");
    const file = join(dir, `unique-${randomBytes(6).toString("hex")}.txt`);
    writeFileSync(file, "hello\n");
    chmodSync(file, 0o644);
    const ex = new Example("examples/file-monitor.ts");
    try {
      // cat as nobody: the event carries the child's uid and comm.
      const cat = await ex.waitFor(new RegExp(`^UID: (\\d+) COMM: (\\S+) Flags: (\\S+) File: ${escape(file)}$`), 30_000 * SLOW, () =>
        spawnSync("cat", [file], { uid: 65534, gid: 65534, stdio: "ignore" }),
      );
      assert.equal(cat[1], "65534");
      assert.equal(cat[2], "cat");
      assert.match(cat[3]!, /^O_RDONLY(\|O_LARGEFILE)?$/);
      assert.ok(!ex.lines.some((l) => /b'/.test(l)), "strings are text, not byte literals");

      // Every flag is translated: node opens with these (libuv adds O_CLOEXEC).
      const flagged = join(dir, `flags-${randomBytes(6).toString("hex")}`);
      const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOCTTY | constants.O_APPEND | constants.O_NONBLOCK | constants.O_NOFOLLOW;
      const script = `try { require("fs").closeSync(require("fs").openSync(${JSON.stringify(flagged)}, ${flags})) } catch {}`;
      const opened = await ex.waitFor(new RegExp(`^UID: 0 COMM: node Flags: (\\S+) File: ${escape(flagged)}$`), 30_000 * SLOW, () => {
        rmSync(flagged, { force: true });
        spawnSync(process.execPath, ["-e", script], { stdio: "ignore" });
      });
      assert.equal(opened[1], "O_WRONLY|O_CREAT|O_EXCL|O_NOCTTY|O_APPEND|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC");

      assert.ok(attachedPrograms().includes("syscall__openat"));
      await exitsCleanly(ex, ["syscall__openat"]);
      checkKprobeNote(ex.stderr);
    } finally {
      ex.kill();
    }
  });
});

describe("examples/hello-world.ts", () => {
  test("prints Hello, World! for a child's clone() and exits on SIGINT with nothing attached", { timeout: 120_000 * SLOW }, async () => {
    const ex = new Example("examples/hello-world.ts");
    try {
      await ex.waitFor(/^Attaching kprobe to sys_clone\.\.\. Press Ctrl\+C to exit\.$/, 60_000 * SLOW);
      // A shell that forks: its clone() is the event, with its comm and pid.
      const shells = new Set<number>();
      const line = await ex.waitFor(
        /^sh-(\d+)\s+\[\d+\] \S+\s+\d+\.\d+: bpf_trace_printk: Hello, World!$/,
        30_000 * SLOW,
        () => shells.add(Number(spawnSync("sh", ["-c", "(exit 0); echo $$"], { encoding: "utf8" }).stdout.trim())),
        (m) => shells.has(Number(m[1])),
      );
      assert.ok(shells.has(Number(line[1])));
      assert.ok(attachedPrograms().includes("syscall__clone"));
      await exitsCleanly(ex, ["syscall__clone"]);
      checkKprobeNote(ex.stderr);
    } finally {
      ex.kill();
    }
  });
});

test("npx tsx examples/file-monitor.ts: runs as the README says, Ctrl-C leaves nothing attached", { skip: IN_VM && "npm is slow under emulation; the node runs above cover the guest", timeout: 120_000 }, async () => {
  const ex = new Example("examples/file-monitor.ts", true);
  try {
    const path = `/nonexistent/tsbpf-npx-${randomBytes(4).toString("hex")}`;
    await ex.waitFor(new RegExp(`^UID: 0 COMM: \\S+ Flags: O_RDONLY\\|O_CLOEXEC File: ${escape(path)}$`), 60_000, () => {
      try {
        closeSync(openSync(path, "r"));
      } catch {
        // ENOENT
      }
    });
    ex.interrupt();
    await ex.exited; // npm itself dies of the SIGINT; what matters is what it ran
    await waitUntil("the file monitor to exit and detach", () => !attachedPrograms().includes("syscall__openat"), 10_000);
    const left = spawnSync("pgrep", ["-f", "examples/file-monitor.ts"], { encoding: "utf8" });
    assert.equal(left.stdout.trim(), "", "no process of it is left");
  } finally {
    ex.kill();
  }
});

/** A kretprobe's PT_REGS_RC and a syscall__ function's arguments, on the openat syscall. */
const RETURN_PROGRAM = `
BPF_HASH(rets, u32, s64);
BPF_HASH(names, u32, u64);

int syscall__openat(struct pt_regs *ctx, int dfd, const char __user *filename, int flags)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    char name[32] = {};
    bpf_probe_read_user_str(&name, sizeof(name), (void *)filename);
    if (name[0] != '/' || name[1] != 'n' || name[2] != 'o' || name[3] != 'n')
        return 0;
    u64 f = flags;
    names.update(&pid, &f);
    return 0;
}

int ret_openat(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (!names.lookup(&pid))
        return 0;
    s64 ret = PT_REGS_RC(ctx);
    rets.update(&pid, &ret);
    return 0;
}
`;

test("a kretprobe sees return values; syscall__ arguments are the syscall's", { timeout: 60_000 * SLOW }, async () => {
  const b = await BPF.load({ text: RETURN_PROGRAM, name: "returns.c" });
  try {
    assert.equal(b.kprobes, KPROBES);
    const fn = b.getSyscallFnname("openat");
    b.attachKprobe({ event: fn, fnName: "syscall__openat" });
    b.attachKretprobe({ event: fn, fnName: "ret_openat" });
    assert.equal(b.numOpenKprobes(), 2);
    try {
      closeSync(openSync(`/nonexistent/tsbpf-ret-${process.pid}`, constants.O_RDONLY | constants.O_NOFOLLOW));
    } catch {
      // ENOENT is the point
    }
    assert.equal(b.get("rets").get(process.pid), -2n, "the kretprobe saw -ENOENT");
    assert.equal(b.get("names").get(process.pid), BigInt(constants.O_RDONLY | constants.O_NOFOLLOW | 0o2000000), "flags from the syscall's arguments");
  } finally {
    b.cleanup();
  }
  assert.equal(b.numOpenKprobes(), 0);
});

// ---- the same tests inside kernels with kprobes ----

const VM_OBJECTS = "/tmp/tsbpf-bcc-objects";

function vmSkip(): string | false {
  if (IN_VM) return "already inside the VM";
  if (HOST_ONLY) return "TSBPF_TEST_HOST_ONLY=1";
  if (!existsSync(join(ROOT, "src", "vm", "run.ts"))) return "the VM harness (src/vm, tsbpf vm run) is not in this tree yet";
  return false;
}

/** The C text of examples/hello-world.ts, as the program passes it to BPF.load. */
function helloText(): string {
  const source = readFileSync(join(ROOT, "examples", "hello-world.ts"), "utf8");
  const raw = /const bpfProgram = `([^`]*)`;/.exec(source)?.[1];
  assert.ok(raw !== undefined, "examples/hello-world.ts has its C in `const bpfProgram = \\`...\\``");
  return raw.replace(/\\\\/g, "\\");
}

describe("in kernels with kprobes (tsbpf vm run: Debian 6.1 and 6.12)", { skip: vmSkip() }, () => {
  let objects: string;
  before(() => {
    objects = mkdtempSync(join(tmpdir(), "tsbpf-bcc-objects-"));
  });
  after(() => rmSync(objects, { recursive: true, force: true }));

  for (const kernel of ["6.1", "6.12"]) {
    test(`in ${kernel}`, { timeout: 900_000 }, async (t) => {
      // The guest has no clang: the programs are translated for that kernel (kprobes, its
      // LINUX_VERSION_CODE) and compiled here.
      const { release } = resolveKernel(kernel, () => {});
      for (const source of [{ text: helloText() }, { text: readFileSync(join(ROOT, "examples", "ebpf_program.c"), "utf8") }, { text: RETURN_PROGRAM, name: "returns.c" }]) {
        const { key, bytes } = await prebuildBcc(source, { kprobes: true, kernelRelease: release });
        writeFileSync(join(objects, `${key}.o`), bytes);
      }
      // tsx's cache of compiled TypeScript saves the emulated guest some of its start-up.
      const tsxCache = join(tmpdir(), `tsx-${process.getuid?.() ?? 0}`);
      const args = [
        join(ROOT, "bin", "tsbpf.js"), "vm", "run", "--kernel", kernel, "--timeout", "600",
        ...(existsSync(tsxCache) ? ["--file", tsxCache] : []),
        "--file", `${objects}:${VM_OBJECTS}`, "--env", `TSBPF_BCC_OBJECTS=${VM_OBJECTS}`,
        "--", "node", "--import", "tsx", "--test", "--test-reporter=tap", "test/kernel/bcc-examples.test.ts",
      ];
      const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        child.on("error", reject);
        child.on("close", (status) => resolve({ status, stdout, stderr }));
      });
      const show = `status ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
      assert.notEqual(r.status, 125, `the VM itself failed\n${show}`);
      const lines = r.stdout.split("\n");
      let results = 0;
      for (let i = 0; i < lines.length; i++) {
        const m = /^ {0,4}(not )?ok \d+ - (.*?)( # SKIP.*)?$/.exec(lines[i]!);
        if (!m || m[3]) continue;
        results++;
        const detail: string[] = [];
        for (let j = i + 1; j < lines.length && /^\s+(?!(not )?ok )/.test(lines[j]!); j++) detail.push(lines[j]!);
        await t.test(m[2]!, () => {
          if (m[1]) assert.fail(`failed in the ${kernel} guest:\n${detail.join("\n")}`);
        });
      }
      assert.ok(results >= 4, `test results from the guest\n${show}`);
      assert.equal(r.status, 0, show);
    });
  }
});
