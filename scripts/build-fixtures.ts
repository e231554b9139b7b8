// Builds the committed objects of test/fixtures/ from their C in
// test/fixtures/src/: the unit tests (test/unit/, the fuzz seeds among them)
// read these and must not need clang or root.
// Beside each object, <name>.o.json records the hash of the sources and flags
// it was built from and of the object itself; test/unit/fuzz.test.ts checks
// both, so an edited source without a rebuild (or an edited object) fails.
//
// Native fixtures: test/fixtures/src/NAME.native.c is a user-space program built
// with the host's cc (NATIVE_CFLAGS) into test/fixtures/NAME, for the readers of
// executables (USDT notes: needs <sys/sdt.h>, Debian's systemtap-sdt-dev).
//
// Two kinds of BPF source: the hermetic fuzz seeds include "common.h" and build
// with plain clang and CFLAGS; every other one is built by tsbpf's own compile
// driver (vmlinux.h of this host, libbpf headers), as the tests compiled it
// before it became a fixture. A line `// fixture-cflags: -g0 ...` in a source
// appends flags to the driver's.
//
//   node --import tsx scripts/build-fixtures.ts              # rebuild every fixture
//   node --import tsx scripts/build-fixtures.ts a.bpf.c ...  # rebuild some
//   node --import tsx scripts/build-fixtures.ts --check      # verify, without clang
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");
const SRC = join(FIXTURES, "src");
// -fdebug-compilation-dir keeps the checkout's path out of the object; strip -g
// drops DWARF, which tsbpf never reads (BTF and BTF.ext stay).
export const CFLAGS = ["-O2", "-g", "-target", "bpf", "-fdebug-compilation-dir=.", "-c"];

export interface FixtureRecord {
  /** The C file in test/fixtures/src/. */
  source: string;
  /** sha256 over CFLAGS and every source file the object depends on (name and bytes). */
  sourceSha256: string;
  objectSha256: string;
  clang: string;
  /** "clang" (CFLAGS, hermetic), "tsbpf compile" (the compile driver, this host's vmlinux.h) or "cc" (a native fixture; `clang` then holds cc's version). */
  builtWith?: string;
}

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** cc flags of the native fixtures: stripped (the notes and .dynsym stay), no paths of this checkout. */
export const NATIVE_CFLAGS = ["-O2", "-s"];

/** Every native source: test/fixtures/src/*.native.c. */
export function nativeFixtureSources(): string[] {
  return readdirSync(SRC).filter((f) => f.endsWith(".native.c")).sort();
}

/** The executable a native source builds: usdt-probes.native.c -> usdt-probes. */
export function nativeName(source: string): string {
  return source.replace(/\.native\.c$/, "");
}

function nativeSourceHash(source: string): string {
  const h = createHash("sha256").update(JSON.stringify(["cc", ...NATIVE_CFLAGS]));
  return h.update(`\0${source}\0`).update(readFileSync(join(SRC, source))).digest("hex");
}

/** Every seed source: test/fixtures/src/*.bpf.c. */
export function fixtureSources(): string[] {
  return readdirSync(SRC).filter((f) => f.endsWith(".bpf.c")).sort();
}

/** True for the hermetic seeds (plain clang, CFLAGS); false for sources built by tsbpf's compile driver. */
export function isHermetic(source: string): boolean {
  return /^#include "common\.h"/m.test(readFileSync(join(SRC, source), "utf8"));
}

/** Flags a driver-built source asks for on a `// fixture-cflags:` line (appended to the driver's). */
export function extraCflags(source: string): string[] {
  const m = /^\/\/ fixture-cflags:((?:\s+-\S+)+)/m.exec(readFileSync(join(SRC, source), "utf8"));
  return m ? m[1]!.trim().split(/\s+/) : [];
}

/** The hash a fixture's record must carry: its C file, the shared header(s) and the flags. */
export function sourceHash(source: string): string {
  if (!isHermetic(source)) {
    const h = createHash("sha256").update(JSON.stringify(["tsbpf compile", ...extraCflags(source)]));
    return h.update(`\0${source}\0`).update(readFileSync(join(SRC, source))).digest("hex");
  }
  const h = createHash("sha256").update(JSON.stringify(CFLAGS));
  const headers = readdirSync(SRC).filter((f) => f.endsWith(".h")).sort();
  for (const f of [source, ...headers]) h.update(`\0${f}\0`).update(readFileSync(join(SRC, f)));
  return h.digest("hex");
}

export function objectName(source: string): string {
  return source.replace(/\.c$/, ".o");
}

/** Problems with the committed fixtures (empty when every object matches its source). */
export function checkFixtures(): string[] {
  const problems: string[] = [];
  const native = new Set(nativeFixtureSources());
  for (const source of [...fixtureSources(), ...native]) {
    const obj = native.has(source) ? nativeName(source) : objectName(source);
    let record: FixtureRecord;
    let bytes: Uint8Array;
    try {
      record = JSON.parse(readFileSync(join(FIXTURES, `${obj}.json`), "utf8")) as FixtureRecord;
      bytes = readFileSync(join(FIXTURES, obj));
    } catch (err) {
      problems.push(`${obj}: ${(err as Error).message}; run scripts/build-fixtures.ts`);
      continue;
    }
    if (record.sourceSha256 !== (native.has(source) ? nativeSourceHash(source) : sourceHash(source))) problems.push(`${obj} was built from other sources than test/fixtures/src/${source}; run scripts/build-fixtures.ts`);
    if (record.objectSha256 !== sha256(bytes)) problems.push(`${obj} is not the object its record describes; run scripts/build-fixtures.ts`);
  }
  return problems;
}

async function build(only: string[]): Promise<void> {
  const clang = process.env.CLANG ?? "clang";
  const strip = process.env.LLVM_STRIP ?? "llvm-strip";
  const version = execFileSync(clang, ["--version"], { encoding: "utf8" }).split("\n")[0]!;
  const tmp = mkdtempSync(join(tmpdir(), "tsbpf-fixtures-"));
  // Loaded here so that --check (and the tests importing this file) never touch the compiler.
  const { compile } = await import("../src/compile/index.ts");
  try {
    const cc = process.env.CC ?? "cc";
    for (const source of nativeFixtureSources()) {
      if (only.length && !only.includes(source)) continue;
      const exe = nativeName(source);
      const out = join(tmp, exe);
      execFileSync(cc, [...NATIVE_CFLAGS, source, "-o", out], { cwd: SRC, stdio: ["ignore", "inherit", "inherit"] });
      const bytes = readFileSync(out);
      writeFileSync(join(FIXTURES, exe), bytes, { mode: 0o755 });
      const ccVersion = execFileSync(cc, ["--version"], { encoding: "utf8" }).split("\n")[0]!;
      const record: FixtureRecord = { source, sourceSha256: nativeSourceHash(source), objectSha256: sha256(bytes), clang: ccVersion, builtWith: "cc" };
      writeFileSync(join(FIXTURES, `${exe}.json`), JSON.stringify(record, null, 1) + "\n");
      console.log(`${exe}: ${bytes.length} bytes`);
    }
    for (const source of fixtureSources()) {
      if (only.length && !only.includes(source)) continue;
      const obj = objectName(source);
      const out = join(tmp, obj);
      const hermetic = isHermetic(source);
      if (hermetic) {
        execFileSync(clang, [...CFLAGS, source, "-o", out], { cwd: SRC, stdio: ["ignore", "inherit", "inherit"] });
      } else {
        // A private cache, so clang really runs; the name is the one the tests compiled under.
        const text = readFileSync(join(SRC, source), "utf8");
        const { bytes } = await compile({ text, name: source }, { clang, cacheDir: join(tmp, "cache"), cflags: extraCflags(source) });
        writeFileSync(out, bytes);
      }
      execFileSync(strip, ["-g", out], { stdio: ["ignore", "inherit", "inherit"] });
      const bytes = readFileSync(out);
      writeFileSync(join(FIXTURES, obj), bytes);
      const record: FixtureRecord = {
        source, sourceSha256: sourceHash(source), objectSha256: sha256(bytes), clang: version,
        ...(hermetic ? {} : { builtWith: "tsbpf compile" }),
      };
      writeFileSync(join(FIXTURES, `${obj}.json`), JSON.stringify(record, null, 1) + "\n");
      console.log(`${obj}: ${bytes.length} bytes`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  if (process.argv.includes("--check")) {
    const problems = checkFixtures();
    for (const p of problems) console.error(p);
    process.exit(problems.length ? 1 : 0);
  }
  const only = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  for (const s of only) if (!fixtureSources().includes(s) && !nativeFixtureSources().includes(s)) throw new Error(`${s} is not in test/fixtures/src/`);
  await build(only);
}
