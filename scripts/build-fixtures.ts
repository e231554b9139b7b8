// Builds the committed seed objects of test/fixtures/ from their C in
// test/fixtures/src/ (the fuzz test uses them and must not need clang).
// Beside each object, <name>.o.json records the hash of the sources and flags
// it was built from and of the object itself; test/fuzz.test.ts checks both,
// so an edited source without a rebuild (or an edited object) fails the suite.
//
//   node --import tsx scripts/build-fixtures.ts          # rebuild every fixture
//   node --import tsx scripts/build-fixtures.ts --check  # verify, without clang
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
}

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Every seed source: test/fixtures/src/*.bpf.c. */
export function fixtureSources(): string[] {
  return readdirSync(SRC).filter((f) => f.endsWith(".bpf.c")).sort();
}

/** The hash a fixture's record must carry: its C file, the shared header(s) and the flags. */
export function sourceHash(source: string): string {
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
  for (const source of fixtureSources()) {
    const obj = objectName(source);
    let record: FixtureRecord;
    let bytes: Uint8Array;
    try {
      record = JSON.parse(readFileSync(join(FIXTURES, `${obj}.json`), "utf8")) as FixtureRecord;
      bytes = readFileSync(join(FIXTURES, obj));
    } catch (err) {
      problems.push(`${obj}: ${(err as Error).message}; run scripts/build-fixtures.ts`);
      continue;
    }
    if (record.sourceSha256 !== sourceHash(source)) problems.push(`${obj} was built from other sources than test/fixtures/src/${source}; run scripts/build-fixtures.ts`);
    if (record.objectSha256 !== sha256(bytes)) problems.push(`${obj} is not the object its record describes; run scripts/build-fixtures.ts`);
  }
  return problems;
}

function build(): void {
  const clang = process.env.CLANG ?? "clang";
  const strip = process.env.LLVM_STRIP ?? "llvm-strip";
  const version = execFileSync(clang, ["--version"], { encoding: "utf8" }).split("\n")[0]!;
  const tmp = mkdtempSync(join(tmpdir(), "tsbpf-fixtures-"));
  try {
    for (const source of fixtureSources()) {
      const obj = objectName(source);
      const out = join(tmp, obj);
      execFileSync(clang, [...CFLAGS, source, "-o", out], { cwd: SRC, stdio: ["ignore", "inherit", "inherit"] });
      execFileSync(strip, ["-g", out], { stdio: ["ignore", "inherit", "inherit"] });
      const bytes = readFileSync(out);
      writeFileSync(join(FIXTURES, obj), bytes);
      const record: FixtureRecord = { source, sourceSha256: sourceHash(source), objectSha256: sha256(bytes), clang: version };
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
  build();
}
