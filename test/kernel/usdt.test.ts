// USDT on this kernel (uprobes, BPF cookies): Debian's /usr/bin/python3 (stapsdt
// probes with semaphores) and the committed fixture test/fixtures/usdt-probes
// (probes of every argument kind). Both ways: libbpf's SEC("usdt") with
// <bpf/usdt.bpf.h>, and BCC text with bpf_usdt_readarg through the USDT class.
//
// Python 3.11 fires function__entry only while a profile or trace function is
// set (CPython 3.11's DTrace probes sit on its tracing path), so the workload
// sets a no-op one with sys.setprofile; the semaphore still gates the probe.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcessByStdio } from "node:child_process";
import { existsSync, openSync, readFileSync, readSync, closeSync, realpathSync } from "node:fs";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { Collection } from "../../src/collection.ts";
import { compile } from "../../src/compile/index.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ObjectError } from "../../src/object/errors.ts";
import { ElfFile } from "../../src/elf/index.ts";
import { findUsdtProbe, readUsdtProbes } from "../../src/elf/usdt.ts";
import { AttachError } from "../../src/link/errors.ts";
import { UsdtLink } from "../../src/link/usdt.ts";
import { BPF, USDT } from "../../src/bcc/index.ts";
import { UsageError } from "../../src/errors.ts";

const root = process.getuid?.() === 0;
const PYTHON = existsSync("/usr/bin/python3") ? realpathSync("/usr/bin/python3") : undefined;
const FIXTURE = join(import.meta.dirname, "..", "fixtures", "usdt-probes");
const pythonProbes = PYTHON ? readUsdtProbes(ElfFile.open(PYTHON)) : [];
const havePythonProbes = pythonProbes.some((p) => p.provider === "python" && p.name === "function__entry");
const skipPython = !root ? "needs root" : !havePythonProbes ? "no /usr/bin/python3 with stapsdt probes (python:function__entry)" : false;

before(() => {
  // The C of the libbpf-style programs needs nothing beyond libbpf-dev; sys/sdt.h only for rebuilding the fixture.
  if (root && !existsSync("/usr/bin/python3")) {
    execFileSync("apt-get", ["install", "-y", "-qq", "python3"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  }
});

/**
 * Compiles a usdt.bpf.h program. usdt.bpf.h declares `extern LINUX_HAS_BPF_COOKIE
 * __kconfig`; where the loader does not resolve .kconfig externs yet, the same C is
 * built again with TSBPF_USDT_COOKIE_SHIM, which makes it a constant 1.
 */
async function usdtObject(text: string, name: string): Promise<ObjectSpec> {
  const plain = (await compile({ text, name })).bytes;
  try {
    return ObjectSpec.fromBytes(plain, name);
  } catch (err) {
    if (!(err instanceof ObjectError) || !/LINUX_HAS_BPF_COOKIE/.test(err.message)) throw err;
  }
  return ObjectSpec.fromBytes((await compile({ text, name }, { cflags: ["-DTSBPF_USDT_COOKIE_SHIM"] })).bytes, name);
}

const USDT_INCLUDE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#ifdef TSBPF_USDT_COOKIE_SHIM
#undef __kconfig
#define __kconfig
#include <bpf/usdt.bpf.h>
const _Bool LINUX_HAS_BPF_COOKIE = 1;
#else
#include <bpf/usdt.bpf.h>
#endif
`;

/** A process the test drives: it prints "ready", and waits for a line before each step. */
class Workload {
  readonly child: ChildProcessByStdio<Writable, Readable, null>;
  #out = "";
  #waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(cmd: string, args: string[]) {
    this.child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (d: string) => {
      this.#out += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.exited = new Promise((r) => this.child.on("exit", (code) => {
      for (const w of this.#waiters.splice(0)) w();
      r(code);
    }));
  }

  get output(): string {
    return this.#out;
  }

  async waitFor(text: string): Promise<void> {
    while (!this.#out.includes(text)) {
      if (this.child.exitCode !== null) throw new Error(`workload exited (${this.child.exitCode}) before printing ${text}: ${this.#out}`);
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  step(): void {
    this.child.stdin.write("go\n");
  }
}

const CALLS = 37;
// Line 4 of the -c text defines the function that the probe reports.
const PY_SCRIPT = [
  "import sys",
  "sys.setprofile(lambda *a: None)",
  "print('ready', flush=True); sys.stdin.readline()",
  "def tsbpf_probe_fn(x):",
  "  return x",
  `for i in range(${CALLS}): tsbpf_probe_fn(i)`,
  "sys.setprofile(None)",
  "print('done', flush=True); sys.stdin.readline()",
].join("\n");

function python(): Workload {
  return new Workload("/usr/bin/python3", ["-c", PY_SCRIPT]);
}

/** The semaphore of a probe in a running process: /proc/PID/maps finds where the file offset is mapped. */
function readSemaphore(pid: number, binary: string, fileOffset: number): number {
  for (const line of readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
    if (!m || m[4] !== binary) continue;
    const [start, end, off] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
    if (fileOffset < off || fileOffset >= off + (end - start)) continue;
    const fd = openSync(`/proc/${pid}/mem`, "r");
    try {
      const buf = Buffer.alloc(2);
      readSync(fd, buf, 0, 2, start + (fileOffset - off));
      return buf.readUInt16LE(0);
    } finally {
      closeSync(fd);
    }
  }
  throw new Error(`${binary} offset ${fileOffset} is not mapped in ${pid}`);
}

test("python3's notes read as readelf -n prints them", { skip: !havePythonProbes && "no python3 with stapsdt probes" }, () => {
  const text = execFileSync("readelf", ["-n", PYTHON!], { encoding: "utf8" });
  const notes = [...text.matchAll(/Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\s+Arguments: ?([^\n]*)/g)];
  assert.ok(notes.length >= 8, `readelf lists ${notes.length} probes`);
  assert.equal(pythonProbes.length, notes.length);
  const elf = ElfFile.open(PYTHON!);
  const baseSection = elf.section(".stapsdt.base");
  notes.forEach((m, i) => {
    const p = pythonProbes[i]!;
    // Not prelinked: the note's base is .stapsdt.base's address, so addresses are as written.
    assert.equal(Number(m[4]), baseSection?.addr);
    assert.deepEqual([p.provider, p.name, p.address, p.semaphore, p.argText], [m[1], m[2], Number(m[3]), Number(m[5]), m[6]!.trim()]);
    assert.equal(elf.bytes[p.fileOffset], 0x90, `${p.name}: a nop at the probe`);
  });
});

const LIBBPF_PY = `${USDT_INCLUDE}
struct call { char file[64]; char func[32]; long line; long cookie; long n; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct call);
} calls SEC(".maps");

static __always_inline int record(struct pt_regs *ctx, u32 slot, void *file, void *func, long line)
{
	struct call *c = bpf_map_lookup_elem(&calls, &slot);
	char name[32] = {};
	if (!c)
		return 0;
	bpf_probe_read_user_str(name, sizeof(name), func);
	/* only the workload's function: python calls others too */
	if (name[0] != 't' || name[1] != 's' || name[2] != 'b' || name[5] != '_' || name[6] != 'p' || name[11] != '_' || name[12] != 'f')
		return 0;
	__builtin_memcpy(c->func, name, sizeof(name));
	bpf_probe_read_user_str(c->file, sizeof(c->file), file);
	c->line = line;
	c->cookie = bpf_usdt_cookie(ctx);
	__sync_fetch_and_add(&c->n, 1);
	return 0;
}

SEC("usdt/${PYTHON}:python:function__entry")
int BPF_USDT(by_section, void *file, void *func, long line)
{
	return record(ctx, 0, file, func, line);
}

SEC("usdt")
int BPF_USDT(by_call, void *file, void *func, long line)
{
	return record(ctx, 1, file, func, line);
}

char LICENSE[] SEC("license") = "GPL";
`;

test("libbpf's SEC(\"usdt\"): two programs count function__entry with its filename, function and line; semaphore set only while attached", { skip: skipPython }, async () => {
  const spec = await usdtObject(LIBBPF_PY, "usdt-python.bpf.c");
  using coll = Collection.load(spec);
  const py = python();
  try {
    await py.waitFor("ready");
    const entry = findUsdtProbe(ElfFile.open(PYTHON!), "python", "function__entry")[0]!;
    assert.ok(entry.semaphoreOffset > 0, "function__entry has a semaphore");
    assert.equal(readSemaphore(py.child.pid!, PYTHON!, entry.semaphoreOffset), 0, "semaphore before attach");
    const bySection = coll.program("by_section").attach();
    const byCall = coll.program("by_call").attachUsdt({ binary: "/usr/bin/python3", provider: "python", name: "function__entry", cookie: 42n });
    assert.ok(bySection instanceof UsdtLink && byCall instanceof UsdtLink);
    assert.equal(bySection.links.length, 1);
    assert.ok(readSemaphore(py.child.pid!, PYTHON!, entry.semaphoreOffset) > 0, "semaphore while attached");
    py.step();
    await py.waitFor("done");
    const calls = coll.map<number, { file: string; func: string; line: bigint; cookie: bigint; n: bigint }>("calls");
    const a = calls.lookup(0)!;
    const b = calls.lookup(1)!;
    assert.deepEqual([a.n, a.func, a.file, a.line, a.cookie], [BigInt(CALLS), "tsbpf_probe_fn", "<string>", 4n, 0n]);
    assert.deepEqual([b.n, b.func, b.file, b.line, b.cookie], [BigInt(CALLS), "tsbpf_probe_fn", "<string>", 4n, 42n]);
    bySection.close();
    assert.ok(readSemaphore(py.child.pid!, PYTHON!, entry.semaphoreOffset) > 0, "one link left: still set");
    byCall.close();
    assert.equal(readSemaphore(py.child.pid!, PYTHON!, entry.semaphoreOffset), 0, "semaphore after detach");
  } finally {
    py.step();
    await py.exited;
  }
});

const BCC_PY = `
struct call_t { char file[64]; char func[32]; int line; };
BPF_ARRAY(counts, u64, 1);
BPF_ARRAY(last, struct call_t, 1);
int trace_entry(struct pt_regs *ctx) {
  u64 faddr = 0;
  int zero = 0;
  struct call_t c = {};
  bpf_usdt_readarg(1, ctx, &faddr);
  bpf_probe_read_user_str(c.file, sizeof(c.file), (void *)faddr);
  bpf_usdt_readarg_p(2, ctx, &c.func, sizeof(c.func));
  bpf_usdt_readarg(3, ctx, &c.line);
  if (c.func[0] != 't' || c.func[1] != 's' || c.func[2] != 'b' || c.func[5] != '_' || c.func[6] != 'p')
    return 0;
  counts.increment(zero);
  last.update(&zero, &c);
  return 0;
}`;

for (const by of ["path", "pid"] as const) {
  test(`BCC text: USDT({ ${by} }).enable_probe + bpf_usdt_readarg/_p count function__entry and read its arguments`, { skip: skipPython }, async () => {
    const py = python();
    try {
      await py.waitFor("ready");
      const u = by === "path" ? new USDT({ path: "/usr/bin/python3" }) : new USDT({ pid: py.child.pid! });
      u.enable_probe("function__entry", "trace_entry");
      assert.ok(u.enumerateProbes().some((p) => p.provider === "python" && p.name === "gc__start"));
      const b = await BPF.load({ text: BCC_PY, name: "usdt-python.c" }, { usdtContexts: [u] });
      try {
        py.step();
        await py.waitFor("done");
        assert.equal(b.collection.map("counts").lookup(0), BigInt(CALLS));
        assert.deepEqual(b.collection.map("last").lookup(0), { file: "<string>", func: "tsbpf_probe_fn", line: 4 });
      } finally {
        b.cleanup();
      }
    } finally {
      py.step();
      await py.exited;
    }
  });
}

const LIBBPF_FIXTURE = `${USDT_INCLUDE}
struct out { s64 regs[10]; s64 px; s64 py; s64 mem[3]; s64 cnst[2]; s64 guarded; u64 n[4]; int regs_cnt; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct out);
} out SEC(".maps");

struct point { long x; int y; };

static __always_inline struct out *get(void) { u32 zero = 0; return bpf_map_lookup_elem(&out, &zero); }

SEC("usdt")
int BPF_USDT(on_regs, long s8, long u8, long s16, long u16, long s32, long u32v, long s64v, long u64v, long c, struct point *p)
{
	struct out *o = get();
	struct point pt = {};
	if (!o) return 0;
	o->regs[0] = s8; o->regs[1] = u8; o->regs[2] = s16; o->regs[3] = u16; o->regs[4] = s32;
	o->regs[5] = u32v; o->regs[6] = s64v; o->regs[7] = u64v; o->regs[8] = c; o->regs[9] = (long)p;
	bpf_probe_read_user(&pt, sizeof(pt), p);
	o->px = pt.x; o->py = pt.y;
	o->regs_cnt = bpf_usdt_arg_cnt(ctx);
	__sync_fetch_and_add(&o->n[0], 1);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_mem, long a, long c, long d)
{
	struct out *o = get();
	if (!o) return 0;
	o->mem[0] = a; o->mem[1] = c; o->mem[2] = d;
	__sync_fetch_and_add(&o->n[1], 1);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_const, long a, long b)
{
	struct out *o = get();
	if (!o) return 0;
	o->cnst[0] = a; o->cnst[1] = b;
	__sync_fetch_and_add(&o->n[2], 1);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_guarded, long i)
{
	struct out *o = get();
	if (!o) return 0;
	o->guarded = i;
	__sync_fetch_and_add(&o->n[3], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

test("the fixture's probes of every argument kind read back as the C computed them (registers 1-8 bytes, signed and unsigned, memory, constants, a pointer); the guarded probe fires because its semaphore is set", { skip: !root && "needs root" }, async () => {
  const spec = await usdtObject(LIBBPF_FIXTURE, "usdt-fixture.bpf.c");
  using coll = Collection.load(spec);
  const rounds = 3;
  const base = 400;
  const w = new Workload(FIXTURE, [String(rounds), String(base)]);
  try {
    await w.waitFor("ready");
    const exe = realpathSync(FIXTURE);
    for (const [prog, name] of [["on_regs", "regs"], ["on_mem", "mem"], ["on_const", "constant"], ["on_guarded", "guarded"]] as const) {
      coll.program(prog).attachUsdt({ binary: exe, provider: "tsbpf", name, pid: w.child.pid! });
    }
    w.step();
    assert.equal(await w.exited, 0);
    // The fixture prints its semaphore at the end, while the probes are attached.
    assert.match(w.output, /semaphore 1\n/);
  } finally {
    if (w.child.exitCode === null) w.child.kill();
  }
  const o = coll.map<number, { regs: bigint[]; px: bigint; py: bigint; mem: bigint[]; cnst: bigint[]; guarded: bigint; n: bigint[]; regs_cnt: number }>("out").lookup(0)!;
  const b = BigInt(base + rounds - 1);
  const { asIntN: s, asUintN: u } = BigInt;
  assert.deepEqual(o.n, [3n, 3n, 3n, 3n]);
  assert.deepEqual(o.regs.slice(0, 9), [s(8, -b), u(8, b + 1n), s(16, -b * 100n), u(16, b * 100n + 1n), s(32, -b * 100000n), u(32, b * 100000n + 1n), -b * 10000000000n, b * 10000000000n + 1n, 42n]);
  assert.ok(o.regs[9]! > 0n, "the pointer argument");
  assert.deepEqual([o.px, o.py], [BigInt(base * 11), -3n]);
  assert.equal(o.regs_cnt, 10);
  assert.deepEqual(o.mem, [s(32, b * 3n), -b * 7n, u(16, b + 9n)]);
  assert.deepEqual(o.cnst, [-5n, 1234567n]);
  assert.equal(o.guarded, BigInt(rounds - 1));
});

test("errors name the probe and what the binary has", { skip: !root && "needs root" }, async () => {
  const spec = await usdtObject(LIBBPF_FIXTURE, "usdt-fixture.bpf.c");
  using coll = Collection.load(spec);
  const prog = coll.program("on_const");
  assert.throws(() => prog.attachUsdt({ binary: FIXTURE, provider: "tsbpf", name: "nosuch" }), (e: unknown) =>
    e instanceof AttachError && e.hook === "usdt" && /no USDT probe tsbpf:nosuch in .*usdt-probes; it has .*tsbpf:regs/.test(e.message));
  assert.throws(() => prog.attachUsdt({ binary: "/bin/true", provider: "x", name: "y" }), (e: unknown) =>
    e instanceof AttachError && /no USDT probes at all/.test(e.message));
  assert.throws(() => prog.attach(), (e: unknown) => e instanceof AttachError && /names no target/.test(e.message));
  assert.throws(() => new USDT({ path: FIXTURE }).enable_probe("nosuch", "f"), (e: unknown) => e instanceof UsageError && /no probe nosuch in .*it has tsbpf:/.test(e.message));
  // Spec ids come back at detach: 300 attaches of a 256-entry spec map in turn.
  for (let i = 0; i < 300; i++) prog.attachUsdt({ binary: FIXTURE, provider: "tsbpf", name: "constant" }).close();
});
