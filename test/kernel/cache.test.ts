// The compile cache is loaded into the kernel as root: it is used only when
// nobody else could have written it. Directories: the user's, 0700, not
// symlinks; objects: named by their sha256 and checked against it; manifests:
// plain names only; writes: O_EXCL|O_NOFOLLOW temporary files renamed into place.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CacheError, cacheDir, cacheFile, cacheGet, cachePut, type CacheProblem } from "../../src/compile/cache.ts";
import { compile } from "../../src/compile/index.ts";
import { findClang } from "../../src/compile/tools.ts";

const isRoot = process.geteuid?.() === 0;
const OTHER_UID = 4242;
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const mode = (p: string) => lstatSync(p).mode & 0o777;

let root: string;
let n = 0;
/** A fresh cache root path (not created) under the test's private directory. */
const fresh = () => join(root, `cache-${n++}`);

before(async () => {
  root = await mkdtemp(join(tmpdir(), "tsbpf-cache-test-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function refused(p: Promise<unknown> | (() => unknown), problem: CacheProblem, message: RegExp): Promise<void> {
  const run = typeof p === "function" ? Promise.resolve().then(p) : p;
  await assert.rejects(run, (err: unknown) => {
    assert.ok(err instanceof CacheError, `expected a CacheError, got ${String(err)}`);
    assert.equal(err.code, "ERR_TSBPF_CACHE");
    assert.equal(err.problem, problem, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe("cache directories", () => {
  test("are created 0700, and objects are stored 0600 under the sha256 of their bytes", async () => {
    const dir = fresh();
    const bytes = new TextEncoder().encode("an object");
    const path = await cachePut("k1", bytes, { note: 1 }, { cacheDir: dir });
    assert.equal(basename(path), `${sha(bytes)}.o`);
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(join(dir, "objects")), 0o700);
    assert.equal(mode(path), 0o600);
    assert.equal(mode(join(dir, "objects", "k1.json")), 0o600);
    const got = await cacheGet<{ note: number }>("k1", { cacheDir: dir });
    assert.deepEqual([...got!.bytes], [...bytes]);
    assert.deepEqual(got!.meta, { note: 1 });
    assert.equal(await cacheGet("missing", { cacheDir: dir }), undefined);
    // No temporary files left behind.
    assert.deepEqual(readdirSync(join(dir, "objects")).sort(), [`${sha(bytes)}.o`, "k1.json"]);
  });

  test("one owned by another user is refused, saying what to do", { skip: !isRoot && "needs root to chown" }, async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, OTHER_UID, OTHER_UID);
    await refused(cacheGet("k", { cacheDir: dir }), "owner", new RegExp(`belongs to uid ${OTHER_UID}, not to you \\(uid 0\\).*rm -rf ${dir}.*TSBPF_CACHE_DIR`));
    // A subdirectory too.
    const dir2 = fresh();
    cacheDir(dir2);
    mkdirSync(join(dir2, "objects"), { mode: 0o700 });
    chownSync(join(dir2, "objects"), OTHER_UID, OTHER_UID);
    await refused(cachePut("k", new Uint8Array(1), {}, { cacheDir: dir2 }), "owner", /objects belongs to uid 4242/);
  });

  test("one others can write to is refused; one they can only read is closed to 0700", async () => {
    for (const bad of [0o777, 0o775, 0o757]) {
      const dir = fresh();
      mkdirSync(dir);
      chmodSync(dir, bad);
      await refused(cacheGet("k", { cacheDir: dir }), "mode", new RegExp(`mode ${bad.toString(8).padStart(4, "0")}: others can write to it.*rm -rf`));
      assert.equal(mode(dir), bad, "a refused directory is left as it is");
    }
    const dir = fresh();
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    await cachePut("k", new Uint8Array(1), {}, { cacheDir: dir });
    assert.equal(mode(dir), 0o700);
  });

  test("a planted symlink is never followed: not as a directory, an object, nor a file written", async () => {
    // The cache root (or a level below it) as a symlink to somewhere else.
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere, { mode: 0o700 });
    const linked = fresh();
    symlinkSync(elsewhere, linked);
    await refused(cacheGet("k", { cacheDir: linked }), "not-a-directory", /is a symbolic link/);
    const dir = fresh();
    cacheDir(dir);
    symlinkSync(elsewhere, join(dir, "objects"));
    await refused(cachePut("k", new Uint8Array(1), {}, { cacheDir: dir }), "not-a-directory", /objects is a symbolic link/);
    assert.deepEqual(readdirSync(elsewhere), []);

    // An object replaced by a symlink to a file with the right bytes is still not read.
    const dir2 = fresh();
    const bytes = new TextEncoder().encode("object bytes");
    const path = await cachePut("k", bytes, {}, { cacheDir: dir2 });
    const copy = join(elsewhere, "copy.o");
    writeFileSync(copy, bytes);
    await rm(path);
    symlinkSync(copy, path);
    await refused(cacheGet("k", { cacheDir: dir2 }), "not-a-file", /is a symbolic link; it is not used/);

    // Writes replace a symlink at the name; the file it pointed at is untouched.
    const victim = join(elsewhere, "victim");
    writeFileSync(victim, "precious");
    const manifest = join(dir2, "objects", "k2.json");
    symlinkSync(victim, manifest);
    await cachePut("k2", bytes, {}, { cacheDir: dir2 });
    assert.equal(readFileSync(victim, "utf8"), "precious");
    assert.ok(lstatSync(manifest).isFile());
  });
});

describe("cache entries", () => {
  test("an object changed after it was written is refused", async () => {
    const dir = fresh();
    const path = await cachePut("k", new TextEncoder().encode("the real object"), {}, { cacheDir: dir });
    writeFileSync(path, "something else");
    await refused(cacheGet("k", { cacheDir: dir }), "tampered", /has changed since it was written.*not used/);
  });

  test("a manifest naming ../anything (or any non-hash name) is refused", async () => {
    const dir = fresh();
    const bytes = new TextEncoder().encode("x");
    await cachePut("k", bytes, {}, { cacheDir: dir });
    writeFileSync(join(root, "outside.o"), bytes);
    for (const object of [`../../outside.o`, `../${sha(bytes)}.o`, `/etc/passwd`, `sub/${sha(bytes)}.o`, `${sha(bytes)}.o/..`]) {
      writeFileSync(join(dir, "objects", "k.json"), JSON.stringify({ object, meta: {} }));
      await refused(cacheGet("k", { cacheDir: dir }), "name", /is not a "<sha256>\.o" file beside it/);
    }
    // Keys are plain names too.
    await refused(cacheGet("../k", { cacheDir: dir }), "name", /not a plain file name/);
    await refused(cachePut("..", bytes, {}, { cacheDir: dir }), "name", /not a plain file name/);
  });

  test("cacheFile keeps a file with the same bytes and replaces anything else", async () => {
    const saved = process.env.TSBPF_CACHE_DIR;
    process.env.TSBPF_CACHE_DIR = fresh();
    try {
      const path = await cacheFile(["bcc-src", "abc", "prog.c"], "int x;\n");
      assert.equal(readFileSync(path, "utf8"), "int x;\n");
      const ino = statSync(path).ino;
      assert.equal(await cacheFile(["bcc-src", "abc", "prog.c"], "int x;\n"), path);
      assert.equal(statSync(path).ino, ino, "an identical file is kept");
      writeFileSync(path, "int x; /* planted */\n");
      await cacheFile(["bcc-src", "abc", "prog.c"], "int x;\n");
      assert.equal(readFileSync(path, "utf8"), "int x;\n");
      await refused(cacheFile(["bcc-src", "..", "prog.c"], "x"), "name", /not a plain file name/);
    } finally {
      if (saved === undefined) delete process.env.TSBPF_CACHE_DIR;
      else process.env.TSBPF_CACHE_DIR = saved;
    }
  });
});

describe("compile() and the cache", { skip: !hasClang() && "no clang" }, () => {
  const text = `char LICENSE[] __attribute__((section("license"), used)) = "GPL";\n` +
    `__attribute__((section("tp/syscalls/sys_enter_openat"), used)) int f(void *ctx) { return 0; }\n`;

  test("a tampered object is said and compiled again; a bad cache directory is refused", async () => {
    const dir = fresh();
    const first = await compile({ text }, { cacheDir: dir });
    assert.equal(first.cached, false);
    assert.equal(basename(first.path), `${sha(first.bytes)}.o`);
    assert.equal((await compile({ text }, { cacheDir: dir })).cached, true);

    writeFileSync(first.path, "not an object");
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const again = await compile({ text }, { cacheDir: dir });
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      assert.equal(again.cached, false);
      assert.deepEqual([...again.bytes], [...first.bytes]);
      assert.deepEqual([...readFileSync(first.path)], [...first.bytes], "the object is written again");
    } finally {
      process.off("warning", onWarning);
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].message, /has changed since it was written.*compiling again/);

    chmodSync(dir, 0o777);
    await refused(compile({ text }, { cacheDir: dir }), "mode", /others can write to it/);
  });
});

function hasClang(): boolean {
  try {
    findClang();
    return true;
  } catch {
    return false;
  }
}
