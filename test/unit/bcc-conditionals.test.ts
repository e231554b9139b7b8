// The BCC dialect's #if evaluation (issue 16, items 2 and 6): branches that the
// known macros (the kernel's CONFIG_*, the prelude's, -D cflags, the text's own
// #defines) rule out are not scanned; undecidable groups are scanned as before.
// No clang, no kernel: the kernel config is given as a map.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { translate, type TranslateOptions } from "../../src/bcc/dialect.ts";
import { configMacros, evaluate, macrosOfCflags } from "../../src/bcc/conditionals.ts";
import { BccError } from "../../src/bcc/errors.ts";

const CONFIG = new Map([
  ["CONFIG_ARCH_HAS_SYSCALL_WRAPPER", "y"],
  ["CONFIG_EXT4_FS", "m"],
  ["CONFIG_HZ", "250"],
  ["CONFIG_LOCALVERSION", '"-tsbpf"'],
  ["CONFIG_NO_HZ", "n"],
]);

const opts = (extra: Partial<TranslateOptions> = {}): TranslateOptions => ({
  file: "t.c",
  kprobes: true,
  kernelVersion: (6 << 16) + (1 << 8) + 0,
  tracepointFormat: () => undefined,
  kernelHasStruct: () => false,
  kconfig: CONFIG,
  ...extra,
});

// BCC's opensnoop with fentry: two function headers in the branches of one #if share one body.
const OPENSNOOP = `BPF_HASH(infotmp, u64, u64);
#if defined(CONFIG_ARCH_HAS_SYSCALL_WRAPPER) && !defined(__s390x__)
KRETFUNC_PROBE(__x64_sys_openat, struct pt_regs *regs, int ret)
{
    int dfd = PT_REGS_PARM1(regs);
#else
KRETFUNC_PROBE(__x64_sys_openat, int dfd, const char __user *filename, int flags, u32 mode, int ret)
{
#endif
    u64 id = bpf_get_current_pid_tgid();
    u64 v = dfd + ret;
    infotmp.update(&id, &v);
    return 0;
}
`;

describe("#if evaluation in the dialect", () => {
  test("opensnoop's shared body: the live header is scanned, the text keeps both for clang", () => {
    const t = translate(OPENSNOOP, opts());
    const fn = t.functions.get("kretfunc__vmlinux____x64_sys_openat");
    assert.ok(fn, "the program is found");
    assert.equal(fn.kind, "tracing");
    assert.equal(fn.line, 3, "the header of the first branch");
    // The directives and the dead header reach clang, which decides the same way.
    assert.match(t.code, /#define CONFIG_ARCH_HAS_SYSCALL_WRAPPER 1\n/);
    assert.match(t.code, /#if defined\(CONFIG_ARCH_HAS_SYSCALL_WRAPPER\) && !defined\(__s390x__\)/);
    assert.match(t.code, /KRETFUNC_PROBE\(__x64_sys_openat, int dfd, const char __user \*filename/);
    assert.match(t.code, /bpf_map_update_elem\(&infotmp/);
  });

  test("without the kernel's config the group is undecidable, as before", () => {
    assert.throws(() => translate(OPENSNOOP, opts({ kconfig: null })), (e: unknown) => e instanceof BccError && /unbalanced/.test(e.message));
  });

  test("the config's other branch: without the wrapper option the #else header holds", () => {
    const config = new Map(CONFIG);
    config.delete("CONFIG_ARCH_HAS_SYSCALL_WRAPPER");
    const t = translate(OPENSNOOP, opts({ kconfig: config }));
    assert.equal(t.functions.get("kretfunc__vmlinux____x64_sys_openat")?.line, 7);
    assert.doesNotMatch(t.code, /#define CONFIG_ARCH_HAS_SYSCALL_WRAPPER/);
  });

  test("a table in a dead branch is not created; one defined in both branches of a decided group is one table", () => {
    const text = `#ifdef SYSCALLS
BPF_HASH(syscounts, u64, u64);
#endif
#if CONFIG_HZ >= 1000
BPF_ARRAY(ticks, u64, 1000);
#else
BPF_ARRAY(ticks, u64, 100);
#endif
int kprobe__vfs_read(struct pt_regs *ctx) { u32 k = 0; ticks.lookup(&k); return 0; }
`;
    const t = translate(text, opts({ cflags: ["-USYSCALLS"] }));
    assert.deepEqual([...t.tables.keys()], ["ticks"]);
    assert.equal(t.tables.get("ticks")!.line, 7);
    // Without -U the SYSCALLS group is undecidable: the table is created, as before.
    assert.deepEqual([...translate(text, opts()).tables.keys()].sort(), ["syscounts", "ticks"]);
  });

  test("TRACEPOINT_PROBE under a false #ifdef is not a program (ucalls)", () => {
    const text = `#define SYSCALLS 0
#undef SYSCALLS
#ifdef SYSCALLS
TRACEPOINT_PROBE(raw_syscalls, sys_enter) { return 0; }
#endif
int trace_entry(struct pt_regs *ctx) { return 0; }
`;
    const t = translate(text, opts());
    assert.deepEqual([...t.functions.keys()], ["trace_entry"]);
  });

  test("-D cflags and the text's own #defines decide; nested groups and #elif chains", () => {
    const text = `#define DEPTH 2
#if DEPTH == 1
int one(struct pt_regs *ctx) { return 1; }
#elif DEPTH == 2
# ifdef GROUPED
int two_grouped(struct pt_regs *ctx) { return 2; }
# elif defined(CONFIG_EXT4_FS_MODULE) && LINUX_VERSION_CODE >= KERNEL_VERSION(5, 10, 0)
int two_ext4(struct pt_regs *ctx) { return 2; }
# else
int two(struct pt_regs *ctx) { return 2; }
# endif
#else
int other(struct pt_regs *ctx) { return 3; }
#endif
`;
    // GROUPED might come from a header: undecidable, so its branch and the one the config picks are scanned.
    assert.deepEqual([...translate(text, opts()).functions.keys()], ["two_grouped", "two_ext4"]);
    assert.deepEqual([...translate(text, opts({ cflags: ["-UGROUPED"] })).functions.keys()], ["two_ext4"]);
    assert.deepEqual([...translate(text, opts({ cflags: ["-DGROUPED"] })).functions.keys()], ["two_grouped"]);
    assert.deepEqual([...translate(text, opts({ cflags: ["-UGROUPED"], kernelVersion: (5 << 16) + (4 << 8) })).functions.keys()], ["two"]);
  });

  test("an undecidable group is scanned whole, and its other groups still decide", () => {
    const text = `#ifdef SOMETHING_FROM_A_HEADER
int a(struct pt_regs *ctx) { return 1; }
#elif 0
int b(struct pt_regs *ctx) { return 2; }
#else
int c(struct pt_regs *ctx) { return 3; }
#endif
#if 0
int d(struct pt_regs *ctx) { return 4; }
#endif
`;
    assert.deepEqual([...translate(text, opts()).functions.keys()], ["a", "c"]);
  });

  test("a #define in an undecidable branch makes its macro unknown", () => {
    const text = `#define MODE 1
#ifdef FROM_HEADER
#undef MODE
#define MODE 2
#endif
#if MODE == 1
int one(struct pt_regs *ctx) { return 1; }
#else
int two(struct pt_regs *ctx) { return 2; }
#endif
`;
    assert.deepEqual([...translate(text, opts()).functions.keys()], ["one", "two"]);
    // The same for a CONFIG_* name: that one is unknown, the rest of the config still decides.
    const config = `#ifdef FROM_HEADER
#define CONFIG_HZ 1000
#endif
#if CONFIG_HZ == 250
int hz250(struct pt_regs *ctx) { return 1; }
#endif
#if defined(CONFIG_EXT4_FS_MODULE) || defined(CONFIG_NOT_SET)
int ext4(struct pt_regs *ctx) { return 2; }
#endif
#ifdef CONFIG_NOT_SET
int never(struct pt_regs *ctx) { return 3; }
#endif
`;
    assert.deepEqual([...translate(config, opts()).functions.keys()], ["hz250", "ext4"]);
  });

  test("only the CONFIG_* macros the text names are defined; a config file is read by path, gzipped or not", () => {
    const dir = mkdtempSync(join(tmpdir(), "tsbpf-kconfig-"));
    try {
      const text = "#if CONFIG_HZ == 250 && defined(CONFIG_EXT4_FS_MODULE)\nint hz(struct pt_regs *ctx) { return 0; }\n#endif\n";
      const plain = join(dir, "config");
      writeFileSync(plain, "# comment\nCONFIG_HZ=250\nCONFIG_EXT4_FS=m\n# CONFIG_X is not set\n");
      const gz = join(dir, "config.gz");
      writeFileSync(gz, gzipSync("CONFIG_HZ=100\n"));
      const t = translate(text, opts({ kconfig: plain }));
      assert.deepEqual([...t.functions.keys()], ["hz"]);
      const defines = t.code.split("\n").filter((l) => l.startsWith("#define CONFIG_"));
      assert.deepEqual(defines, ["#define CONFIG_EXT4_FS_MODULE 1", "#define CONFIG_HZ 250"]);
      assert.deepEqual([...translate(text, opts({ kconfig: gz })).functions.keys()], []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the pieces", () => {
  test("configMacros follows autoconf.h", () => {
    assert.deepEqual(Object.fromEntries(configMacros(CONFIG)), {
      CONFIG_ARCH_HAS_SYSCALL_WRAPPER: "1",
      CONFIG_EXT4_FS_MODULE: "1",
      CONFIG_HZ: "250",
      CONFIG_LOCALVERSION: '"-tsbpf"',
    });
  });

  test("macrosOfCflags reads -D, -D NAME, -DNAME=V and -U", () => {
    assert.deepEqual(Object.fromEntries(macrosOfCflags(["-DA", "-D", "B=3", "-I/x", "-UC", "-DD=x y"])), { A: "1", B: "3", C: undefined, D: "x y" });
  });

  test("evaluate: arithmetic, short circuits over unknown names, and what stays undecidable", () => {
    const env = { known: new Map<string, string | undefined>([["N", "(1 << 4)"], ["U", undefined], ["F", "\0function"]]), undefinedPrefixes: ["CONFIG_"] };
    assert.equal(evaluate("N * 2 + 1 == 33 && !defined U", env), 1n);
    assert.equal(evaluate("U + CONFIG_NOPE", env), 0n, "undefined names are 0");
    assert.equal(evaluate("0x10 > 017 ? 5 : 6", env), 5n);
    assert.equal(evaluate("0 && UNKNOWN", env), 0n);
    assert.equal(evaluate("1 || defined(UNKNOWN)", env), 1n);
    assert.throws(() => evaluate("UNKNOWN == 1", env));
    assert.throws(() => evaluate("defined(UNKNOWN) && 1", env));
    assert.throws(() => evaluate("F(1)", env));
    assert.throws(() => evaluate("'a' == 97", env));
  });
});
