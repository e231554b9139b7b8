// Symbolization of real binaries built here with cc: -O0 -g, stripped, PIE and
// non-PIE, a shared library, separate debug files (debuglink, build id),
// MiniDebugInfo; a Node process's JIT frames from its perf map; demangling;
// kallsyms; an exited process. No BPF: addresses come from the programs themselves.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { Kallsyms, kallsyms } from "../../src/internal/kallsyms.ts";
import { ElfImage } from "../../src/elf/symtab.ts";
import { binarySymbols, clearBinaryCache, demangle, formatFrame, Symbolizer, UNKNOWN } from "../../src/symbolize/index.ts";
import { ksym, ksymname, sym } from "../../src/bcc/symbols.ts";
import { syscallPrefix } from "../../src/link/syscall.ts";

const dir = mkdtempSync(join(tmpdir(), "tsbpf-sym-"));
const children: ChildProcess[] = [];

// A static function's address is taken inside the library: in a non-PIE program,
// &tsbpf_lib_function would be the program's PLT entry (the canonical address).
const LIB = `
static __attribute__((noinline)) int tsbpf_lib_function(int x) { return x * 3 + 1; }
void *tsbpf_lib_address(void) { return (void *)tsbpf_lib_function; }
int tsbpf_lib_exported(int x) { return tsbpf_lib_function(x); }
`;
const PROG = `
#include <stdio.h>
#include <unistd.h>
void *tsbpf_lib_address(void);
int tsbpf_lib_exported(int x);
__attribute__((noinline)) int tsbpf_alpha(int x) { return x + 1; }
__attribute__((noinline)) int tsbpf_beta(int x) { return tsbpf_alpha(x) * 2; }
static __attribute__((noinline)) int tsbpf_static_gamma(int x) { return tsbpf_beta(x) - 1; }
int main(void) {
  printf("%p %p %p %p\\n", (void *)tsbpf_alpha, (void *)tsbpf_beta, (void *)tsbpf_static_gamma, tsbpf_lib_address());
  fflush(stdout);
  pause();
  return tsbpf_static_gamma(1) + tsbpf_lib_exported(2);
}
`;

function cc(args: string[]): void {
  execFileSync("cc", args, { cwd: dir, stdio: "pipe" });
}

before(() => {
  writeFileSync(join(dir, "lib.c"), LIB);
  writeFileSync(join(dir, "prog.c"), PROG);
  cc(["-O0", "-g", "-shared", "-fPIC", "-Wl,--build-id", "-o", "libtsbpfsym.so", "lib.c"]);
  for (const [name, flags] of [["pie", ["-fPIE", "-pie"]], ["nopie", ["-fno-pie", "-no-pie"]]] as const) {
    cc(["-O0", "-g", ...flags, "-Wl,--build-id", "-o", name, "prog.c", "-L.", "-ltsbpfsym", `-Wl,-rpath,${dir}`]);
  }
  // stripped, with a debuglink to a debug file beside it
  copyFileSync(join(dir, "pie"), join(dir, "linked"));
  execFileSync("objcopy", ["--only-keep-debug", "linked", "linked.debug"], { cwd: dir });
  execFileSync("strip", ["--strip-all", "linked"], { cwd: dir });
  execFileSync("objcopy", ["--add-gnu-debuglink=linked.debug", "linked"], { cwd: dir });
  // stripped, its debug file only under a build-id path
  copyFileSync(join(dir, "nopie"), join(dir, "byid"));
  const id = ElfImage.open(join(dir, "byid")).buildId()!;
  mkdirSync(join(dir, "debugroot", ".build-id", id.slice(0, 2)), { recursive: true });
  execFileSync("objcopy", ["--only-keep-debug", "byid", join("debugroot", ".build-id", id.slice(0, 2), `${id.slice(2)}.debug`)], { cwd: dir });
  execFileSync("strip", ["--strip-all", "byid"], { cwd: dir });
  // stripped, with MiniDebugInfo (gdb's recipe: a .symtab-only ELF, xz-compressed, in .gnu_debugdata)
  copyFileSync(join(dir, "pie"), join(dir, "mini"));
  execFileSync("objcopy", ["--only-keep-debug", "mini", "mini.full"], { cwd: dir });
  execFileSync("objcopy", ["--strip-debug", "--remove-section=.comment", "mini.full", "mini.symtab"], { cwd: dir });
  execFileSync("xz", ["-f", "mini.symtab"], { cwd: dir });
  execFileSync("strip", ["--strip-all", "mini"], { cwd: dir });
  execFileSync("objcopy", ["--add-section", ".gnu_debugdata=mini.symtab.xz", "mini"], { cwd: dir });
  // stripped, nothing else: only .dynsym
  copyFileSync(join(dir, "pie"), join(dir, "bare"));
  execFileSync("strip", ["--strip-all", "bare"], { cwd: dir });
});

after(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** Starts one of the programs; resolves with its pid and the addresses it printed. */
async function run(name: string): Promise<{ child: ChildProcess; pid: number; addrs: bigint[] }> {
  const child = spawn(join(dir, name), { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let out = "";
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes("\n")) break;
  }
  return { child, pid: child.pid!, addrs: out.trim().split(" ").map((a) => BigInt(a)) };
}

const names = ["tsbpf_alpha", "tsbpf_beta", "tsbpf_static_gamma", "tsbpf_lib_function"];

for (const [name, origin] of [
  ["pie", "symtab"],
  ["nopie", "symtab"],
  ["linked", "debuglink"],
  ["byid", "build-id"],
  ["mini", "minidebuginfo"],
] as const) {
  test(`user addresses of a running ${name} binary resolve (symbols from its ${origin})`, async () => {
    clearBinaryCache();
    const { pid, addrs } = await run(name);
    const s = new Symbolizer({ debugDirs: [join(dir, "debugroot")], root: "" });
    // the function's start, and 3 bytes in
    const frames = s.userStack(pid, addrs.flatMap((a) => [a, a + 3n]));
    assert.deepEqual(frames.map((f) => f.name), names.flatMap((n) => [n, n]));
    assert.deepEqual(frames.map((f) => f.offset), [0, 3, 0, 3, 0, 3, 0, 3]);
    assert.equal(frames[0]!.module, join(dir, name));
    assert.equal(frames[6]!.module, join(dir, "libtsbpfsym.so"));
    assert.equal(formatFrame(frames[1]!, { offset: true, module: true }), `tsbpf_alpha+0x3 [${join(dir, name)}]`);
    assert.equal(binarySymbols(join(dir, name), { debugDirs: [join(dir, "debugroot")] })!.origin, origin);
  });
}

test("a stripped binary without debug data resolves only its exported functions; the rest are [unknown]", async () => {
  clearBinaryCache();
  const { pid, addrs } = await run("bare");
  const frames = new Symbolizer().userStack(pid, addrs);
  assert.deepEqual(frames.map((f) => f.name), [UNKNOWN, UNKNOWN, UNKNOWN, "tsbpf_lib_function"]);
  assert.equal(binarySymbols(join(dir, "bare"))!.origin, "dynsym");
});

test("an exited process's addresses are [unknown], not an error; BCC's sym() too", async () => {
  const { child, pid, addrs } = await run("pie");
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
  const frames = new Symbolizer().userStack(pid, addrs);
  assert.deepEqual(frames.map((f) => f.name), [UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]);
  assert.equal(sym(addrs[0]!, pid), UNKNOWN);
});

test("BCC's sym() resolves through the same symbolizer", async () => {
  const { pid, addrs } = await run("pie");
  assert.equal(sym(addrs[1]! + 2n, pid, { showOffset: true }), "tsbpf_beta+0x2");
});

test("a Node process run with --perf-basic-prof: its JavaScript functions resolve from /tmp/perf-PID.map", async () => {
  const script = `function tsbpfHotJsFunction(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
    let t = 0; for (let k = 0; k < 2000; k++) t += tsbpfHotJsFunction(10000);
    console.log("ready"); setInterval(() => tsbpfHotJsFunction(10), 1000);`;
  const child = spawn(process.execPath, ["--perf-basic-prof", "-e", script], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  for await (const chunk of child.stdout!) if (String(chunk).includes("ready")) break;
  const map = readFileSync(`/tmp/perf-${child.pid}.map`, "utf8");
  const line = map.split("\n").find((l) => l.includes("tsbpfHotJsFunction"));
  assert.ok(line, "node wrote the function into its perf map");
  const [start] = line.split(" ");
  const addr = BigInt(`0x${start}`) + 1n;
  const f = new Symbolizer().userFrame(child.pid!, addr);
  assert.match(f.name, /tsbpfHotJsFunction/);
  assert.equal(f.module, "[perf-map]");
  assert.equal(f.offset, 1);
  // Node's own frames resolve from its binary
  const nodeStart = ElfImage.open(process.execPath).functions().lookup(0);
  assert.equal(nodeStart, undefined);
  child.kill("SIGKILL");
  rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
});

test("C++ and Rust names demangle; others stay as they are", () => {
  assert.equal(demangle("_ZN3foo3barEv"), "foo::bar()");
  assert.equal(demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"), "std::vector<int, std::allocator<int> >::push_back(int const&)");
  assert.equal(demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"), "core::ptr::drop_in_place");
  assert.equal(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
  assert.equal(demangle("main"), "main");
});

test("kallsyms: one parse; symbols, offsets, modules; syscallPrefix and BCC's ksym use it", () => {
  const text = [
    "ffffffff81000000 T _stext",
    "ffffffff81000000 T _text",
    "ffffffff81000100 t do_one",
    "ffffffff81000200 D some_data",
    "ffffffffc0201000 t mod_fn\t[mymod]",
    "ffffffffc0200000 t mod_first\t[mymod]",
  ].join("\n");
  const k = new Kallsyms(text);
  assert.equal(k.size, 6);
  assert.deepEqual(k.lookup(0xffffffff81000105n), { name: "do_one", address: 0xffffffff81000100n, offset: 5, module: undefined });
  assert.equal(k.lookup(0xffffffff81000000n)!.name, "_stext");
  assert.deepEqual(k.lookup(0xffffffffc0201010n), { name: "mod_fn", address: 0xffffffffc0201000n, offset: 16, module: "mymod" });
  assert.equal(k.lookup(0xffffffffc0200010n)!.name, "mod_first");
  assert.equal(k.lookup(0xffffffff80000000n), undefined);
  assert.equal(k.address("mod_fn"), 0xffffffffc0201000n);
  assert.equal(new Kallsyms("0000000000000000 T a\n0000000000000000 T b").restricted, true);
  // the host's table
  const host = kallsyms();
  assert.ok(host.size > 1000);
  const openat = host.address(`${syscallPrefix()}openat`)!;
  assert.ok(openat > 0n);
  assert.equal(ksym(openat + 4n, { showOffset: true, showModule: true }), `${syscallPrefix()}openat+0x4 [kernel]`);
  assert.equal(ksymname(`${syscallPrefix()}openat`), openat);
  assert.equal(new Symbolizer().kernelFrame(openat).name, `${syscallPrefix()}openat`);
  assert.equal(ksym(1n), UNKNOWN);
});

test("build ids and debuglinks are read from the ELF notes and sections", () => {
  const id = execFileSync("readelf", ["-n", join(dir, "pie")], { encoding: "utf8" }).match(/Build ID: ([0-9a-f]+)/)![1];
  assert.equal(ElfImage.open(join(dir, "pie")).buildId(), id);
  assert.equal(ElfImage.open(join(dir, "linked")).debuglink()!.file, "linked.debug");
  assert.ok(existsSync(join(dir, "linked.debug")));
});
