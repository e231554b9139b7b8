import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseDepfile } from "../../src/compile/cache.ts";
import { CompileError, compile, parseDiagnostics, vmlinuxHeader } from "../../src/compile/index.ts";

const PROGRAM = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp/syscalls/sys_enter_openat")
int f(struct trace_event_raw_sys_enter *ctx)
{
	bpf_printk("openat flags %ld", ctx->args[2]);
	return 0;
}
`;

/** Section names of a little-endian ELF64 object (just enough ELF to check the output). */
function sectionNames(bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  const strtabOffset = Number(view.getBigUint64(shoff + shstrndx * shentsize + 0x18, true));
  const names: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const nameOffset = view.getUint32(shoff + i * shentsize, true);
    let end = strtabOffset + nameOffset;
    while (bytes[end] !== 0) end++;
    names.push(new TextDecoder().decode(bytes.subarray(strtabOffset + nameOffset, end)));
  }
  return names;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

let root: string;
let cacheDir: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "tsbpf-compile-test-"));
  cacheDir = join(root, "cache");
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("vmlinuxHeader", () => {
  test("generates vmlinux.h from the kernel BTF, keyed by its hash, once", async (t) => {
    const [path, ms] = await timed(() => vmlinuxHeader({ cacheDir }));
    assert.match(path, new RegExp(`^${cacheDir}/vmlinux/[0-9a-f]{64}/vmlinux\\.h$`));
    const header = await readFile(path, "utf8");
    assert.match(header, /struct task_struct \{/);
    assert.match(header, /struct trace_event_raw_sys_enter \{/);
    // No temporary files left next to it.
    assert.deepEqual(readdirSync(dirname(path)), ["vmlinux.h"]);
    const [again, msAgain] = await timed(() => vmlinuxHeader({ cacheDir }));
    assert.equal(again, path);
    t.diagnostic(`vmlinux.h: generated in ${ms.toFixed(0)} ms, found in ${msAgain.toFixed(1)} ms`);
  });

  test("concurrent callers share one header", async () => {
    const dir = join(root, "concurrent-cache");
    const paths = await Promise.all([1, 2, 3].map(() => vmlinuxHeader({ cacheDir: dir })));
    assert.equal(new Set(paths).size, 1);
    assert.deepEqual(readdirSync(dirname(paths[0]!)), ["vmlinux.h"]);
  });

  test("a missing BTF file is a clear error", async () => {
    await assert.rejects(vmlinuxHeader({ cacheDir, btfPath: join(root, "no-such-btf") }), /kernel BTF not found/);
  });
});

describe("compile", () => {
  test("a clang that runs past TSBPF_CLANG_TIMEOUT is stopped, and the error says how to allow it longer", async () => {
    const saved = process.env.TSBPF_CLANG_TIMEOUT;
    process.env.TSBPF_CLANG_TIMEOUT = "0.001";
    try {
      // A text no earlier run compiled: the cache cannot answer.
      await assert.rejects(compile({ text: `${PROGRAM}\n// ${process.pid} ${Date.now()}\n` }, { cacheDir }), (e: Error) => {
        assert.ok(e instanceof CompileError, String(e));
        assert.match(e.message, /clang was killed by SIGTERM/);
        assert.match(e.message, /stopped after 0\.001 s; set TSBPF_CLANG_TIMEOUT/);
        return true;
      });
    } finally {
      if (saved === undefined) delete process.env.TSBPF_CLANG_TIMEOUT;
      else process.env.TSBPF_CLANG_TIMEOUT = saved;
    }
  });

  test("compiles a tracepoint program using vmlinux.h types to a BPF ELF object with BTF", async (t) => {
    const [object, ms] = await timed(() => compile({ text: PROGRAM }, { cacheDir }));
    t.diagnostic(`cold compile: ${ms.toFixed(0)} ms`);
    assert.equal(object.cached, false);
    assert.deepEqual([...object.bytes.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]); // \x7fELF
    const view = new DataView(object.bytes.buffer, object.bytes.byteOffset);
    assert.equal(view.getUint16(0x12, true), 247, "e_machine is EM_BPF");
    const names = sectionNames(object.bytes);
    assert.ok(names.includes(".BTF"), `sections: ${names.join(", ")}`);
    assert.ok(names.includes(".BTF.ext"));
    assert.ok(names.includes("tp/syscalls/sys_enter_openat"));
    assert.ok(object.path.startsWith(join(cacheDir, "objects") + "/"));
    assert.deepEqual(new Uint8Array(await readFile(object.path)), object.bytes);
  });

  test("the same source again is a cache hit and does not run clang", async (t) => {
    const first = await compile({ text: PROGRAM }, { cacheDir });
    const [second, ms] = await timed(() => compile({ text: PROGRAM }, { cacheDir }));
    t.diagnostic(`warm compile: ${ms.toFixed(1)} ms`);
    assert.equal(second.cached, true);
    assert.equal(second.path, first.path);
    assert.deepEqual(second.bytes, first.bytes);
    // Through a logging wrapper around the same clang: a hit runs nothing but
    // (once per process) `clang --version`.
    const log = join(root, "clang.log");
    const wrapper = join(root, "clang-wrapper");
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${log}'\nexec clang "$@"\n`, { mode: 0o755 });
    const wrapped = { cacheDir, clang: wrapper, cflags: ["-DWRAPPED"] };
    assert.equal((await compile({ text: PROGRAM }, wrapped)).cached, false);
    const runs = (await readFile(log, "utf8")).trim().split("\n");
    assert.deepEqual(runs.length, 2, runs.join("\n"));
    assert.equal(runs[0], "--version");
    assert.equal((await compile({ text: PROGRAM }, wrapped)).cached, true);
    assert.equal((await readFile(log, "utf8")).trim().split("\n").length, 2, "clang did not run on the hit");
    // Options are part of the key.
    const other = await compile({ text: PROGRAM }, { cacheDir, cflags: ["-DSOMETHING=1"] });
    assert.equal(other.cached, false);
    // Objects are stored under the sha256 of their bytes: a define that changes nothing shares the file.
    assert.equal(basename(other.path), `${createHash("sha256").update(other.bytes).digest("hex")}.o`);
  });

  test("changing an included local header is a cache miss", async () => {
    const dir = join(root, "with header");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const file = join(dir, "prog.bpf.c");
    await writeFile(join(dir, "x.h"), "#define VALUE 1\n");
    await writeFile(
      file,
      `#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include "./x.h"\n` +
        `char LICENSE[] SEC("license") = "GPL";\n` +
        `SEC("tp/syscalls/sys_enter_openat")\nint f(void *ctx) { return VALUE; }\n`,
    );
    const first = await compile({ file }, { cacheDir });
    assert.equal(first.cached, false);
    assert.equal((await compile({ file }, { cacheDir })).cached, true);

    // The manifest (<key>.json) that names the object (<sha256 of its bytes>.o).
    const objects = join(cacheDir, "objects");
    const manifests = await Promise.all(
      readdirSync(objects).filter((f) => f.endsWith(".json")).map(async (f) => JSON.parse(await readFile(join(objects, f), "utf8"))),
    );
    const manifest = manifests.find((m) => m.object === basename(first.path) && m.meta.source === file)?.meta;
    assert.ok(manifest, "a manifest names the object");
    assert.ok(manifest.deps.some((d: { path: string }) => d.path === join(dir, "x.h")), "x.h is a recorded dependency");

    await writeFile(join(dir, "x.h"), "#define VALUE 2\n");
    const changed = await compile({ file }, { cacheDir });
    assert.equal(changed.cached, false);
    assert.notDeepEqual(changed.bytes, first.bytes);
    assert.equal((await compile({ file }, { cacheDir })).cached, true);

    // Relative paths name the same file.
    const relative = await compile({ file: join(dir, ".", "prog.bpf.c") }, { cacheDir });
    assert.equal(relative.cached, true);
  });

  test("a syntax error is a CompileError whose diagnostics point at the line, named <text>", async () => {
    const text = `#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nSEC("tp/x")\nint f(void *ctx) { return 0 }\n`;
    const error = await compile({ text }, { cacheDir }).then(
      () => assert.fail("compile should fail"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof CompileError);
    assert.equal(error.name, "CompileError");
    const first = error.diagnostics[0]!;
    assert.deepEqual(
      { file: first.file, line: first.line, severity: first.severity },
      { file: "<text>", line: 4, severity: "error" },
    );
    assert.match(first.message, /expected ';'/);
    assert.ok(first.column > 0);
    assert.match(error.message, /<text>:4:\d+: error: expected ';'/);
    assert.doesNotMatch(error.message, /source\.bpf\.c|build-/, "no temporary paths");
    // clang's source excerpt is kept in .stderr.
    assert.match(error.stderr, /int f\(void \*ctx\) \{ return 0 \}\n\s+\^/);
    // Failures are not cached.
    await assert.rejects(compile({ text }, { cacheDir }), CompileError);
  });

  test("diagnostics use the text's name, or the file's path", async () => {
    const text = `int f(void) {\n  return undeclared;\n}\n`;
    await assert.rejects(compile({ text, name: "my-prog.bpf.c" }, { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof CompileError);
      assert.equal(e.diagnostics[0]!.file, "my-prog.bpf.c");
      assert.equal(e.diagnostics[0]!.line, 2);
      assert.match(e.message, /my-prog\.bpf\.c:2:10: error: use of undeclared identifier 'undeclared'/);
      return true;
    });
    const file = join(root, "broken.bpf.c");
    await writeFile(file, text);
    await assert.rejects(compile({ file }, { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof CompileError);
      assert.equal(e.diagnostics[0]!.file, file);
      assert.equal(e.diagnostics[0]!.line, 2);
      return true;
    });
  });

  test("a missing clang says how to install it", async () => {
    await assert.rejects(compile({ text: PROGRAM }, { cacheDir, clang: "/nonexistent/clang" }), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /clang was not found/);
      assert.match(e.message, /\/nonexistent\/clang/);
      assert.match(e.message, /apt-get install clang/);
      assert.match(e.message, /TSBPF_CLANG/);
      return true;
    });
  });

  test("missing libbpf headers say to install libbpf-dev", async () => {
    // -nostdinc hides /usr/include, as if libbpf-dev were not installed.
    await assert.rejects(
      compile({ text: "#include <bpf/bpf_helpers.h>\n" }, { cacheDir, cflags: ["-nostdinc"] }),
      (e: unknown) => {
        assert.ok(e instanceof CompileError);
        assert.match(e.message, /'bpf\/bpf_helpers\.h' file not found/);
        assert.match(e.message, /apt-get install libbpf-dev/);
        return true;
      },
    );
  });

  test("tsbpf.h and user include dirs are on the include path", async () => {
    const inc = join(root, "inc");
    await mkdir(inc, { recursive: true });
    await writeFile(join(inc, "mine.h"), "#define MINE 7\n");
    const object = await compile(
      { text: `#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <tsbpf.h>\n#include "mine.h"\nint x = MINE;\n` },
      { cacheDir, includeDirs: [inc] },
    );
    assert.equal(object.cached, false);
  });

  test("concurrent compiles of the same source both succeed", async () => {
    const dir = join(root, "race-cache");
    const text = PROGRAM.replace("openat flags", "race");
    const [a, b] = await Promise.all([compile({ text }, { cacheDir: dir }), compile({ text }, { cacheDir: dir })]);
    assert.deepEqual(a.bytes, b.bytes);
    assert.equal((await compile({ text }, { cacheDir: dir })).cached, true);
    assert.ok(existsSync(a.path) && existsSync(b.path));
    assert.deepEqual(readdirSync(join(dir, "tmp")), [], "build directories are removed");
  });
});

describe("clang output parsing", () => {
  test("parseDiagnostics skips excerpts (even ones that look like diagnostics) and reads unlocated errors", () => {
    const stderr = [
      "In file included from <text>:1:",
      "./x.h:3:5: warning: unused variable 'y' [-Wunused-variable]",
      "    int y;",
      "    ^",
      "<text>:9:1: error: expected expression",
      "error: return -1;",
      "^",
      "clang-14: error: unknown argument: '-fbogus'",
      "2 errors generated.",
    ].join("\n");
    assert.deepEqual(parseDiagnostics(stderr), [
      { file: "./x.h", line: 3, column: 5, severity: "warning", message: "unused variable 'y' [-Wunused-variable]" },
      { file: "<text>", line: 9, column: 1, severity: "error", message: "expected expression" },
      { file: "", line: 0, column: 0, severity: "error", message: "unknown argument: '-fbogus'" },
    ]);
  });

  test("parseDepfile reads continuations and escaped spaces", () => {
    const depfile = "/tmp/b/out.o: /tmp/b/source.bpf.c /x/vmlinux.h \\\n  /usr/include/bpf/bpf_helpers.h /a/with\\ space/x.h \\\n  /a/$$dollar.h\n";
    assert.deepEqual(parseDepfile(depfile), [
      "/tmp/b/source.bpf.c",
      "/x/vmlinux.h",
      "/usr/include/bpf/bpf_helpers.h",
      "/a/with space/x.h",
      "/a/$dollar.h",
    ]);
    assert.equal(basename(parseDepfile("o.o: a.c")[0]!), "a.c");
  });
});
