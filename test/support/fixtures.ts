// The committed objects of test/fixtures/, built by scripts/build-fixtures.ts
// from test/fixtures/src/: what unit tests parse instead of running clang.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES } from "../../scripts/build-fixtures.ts";

/** test/fixtures/NAME.bpf.o's bytes (a fresh copy each call, so tests may patch them). */
export function fixtureObject(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, `${name}.bpf.o`)));
}

/** The C that test/fixtures/NAME.bpf.o was built from. */
export function fixtureSource(name: string): string {
  return readFileSync(join(FIXTURES, "src", `${name}.bpf.c`), "utf8");
}
