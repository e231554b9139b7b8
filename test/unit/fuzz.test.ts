// Malformed input: fixed-seed fuzzing of the ELF, BTF, BTF.ext and CO-RE code
// paths from the committed seed objects (no clang needed), and the bounds that
// keep a small file from making tsbpf allocate what it declares. Every input
// either parses or throws a TsbpfError; none takes more than 2 s.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { TsbpfError } from "../../src/errors.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ObjectError } from "../../src/object/errors.ts";
import { MAX_DATA_SECTION_SIZE } from "../../src/object/maps.ts";
import { ElfError, ElfFile } from "../../src/elf/index.ts";
import { BtfError, Spec } from "../../src/btf/index.ts";
import { applyCoreRelocations } from "../../src/object/core.ts";
import { fuzz, FIXTURES, SLOW_MS } from "../support/fuzz.ts";
import { checkFixtures, fixtureSources } from "../../scripts/build-fixtures.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));

/** A copy of `bytes` with one section header's u64 field (24: sh_offset, 32: sh_size) set. */
function withSectionField(bytes: Uint8Array, section: string, field: number, value: bigint): Uint8Array {
  const out = bytes.slice();
  const elf = new ElfFile(out);
  const sec = elf.section(section);
  assert.ok(sec, `the fixture has ${section}`);
  const v = new DataView(out.buffer);
  const shoff = Number(v.getBigUint64(40, true));
  v.setBigUint64(shoff + sec.index * 64 + field, value, true);
  return out;
}

describe("seed fixtures", () => {
  test("each committed object matches its C source and build flags (recorded hashes, no clang)", () => {
    for (const seed of ["core.bpf.c", "maps.bpf.c", "target.bpf.c"]) assert.ok(fixtureSources().includes(seed), seed);
    assert.deepEqual(checkFixtures(), []);
  });

  test("the seeds parse, and CO-RE relocates core.bpf.o against target.bpf.o's BTF", () => {
    const maps = ObjectSpec.fromBytes(fixture("maps.bpf.o"));
    assert.deepEqual([...maps.programs.keys()].sort(), ["on_openat", "on_switch"]);
    assert.deepEqual([...maps.maps.keys()].sort(), [".bss", ".data", ".rodata", "counters", "events_by_pid", "ring"]);
    const core = ObjectSpec.fromBytes(fixture("core.bpf.o"));
    const target = new Spec(ObjectSpec.fromBytes(fixture("target.bpf.o")).kernelBtf!);
    const r = applyCoreRelocations(core, target);
    assert.equal(r.fixups.get("relocate")!.length, 14);
    // struct task has __state, not state, in the target: that one is poisoned and said.
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0], /field state/);
  });
});

describe("bounds", () => {
  test("a 6 KB object declaring a 4 GiB .bss is refused before anything is allocated", () => {
    const bytes = withSectionField(fixture("maps.bpf.o"), ".bss", 32, 0x1_0000_0000n);
    assert.ok(bytes.length < 8192);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => ObjectSpec.fromBytes(bytes), (err: unknown) => {
      assert.ok(err instanceof ObjectError, String(err));
      assert.match(err.message, /\.bss is 4294967296 bytes, more than the kernel allows in one map value \(2147483647 bytes/);
      return true;
    });
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20);
  });

  test("a .bss within the kernel's limit is only a size until its contents are used", () => {
    const bytes = withSectionField(fixture("maps.bpf.o"), ".bss", 32, BigInt(MAX_DATA_SECTION_SIZE));
    const before = process.memoryUsage().arrayBuffers;
    const spec = ObjectSpec.fromBytes(bytes);
    assert.equal(spec.map(".bss").valueSize, MAX_DATA_SECTION_SIZE);
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20, "parsing allocated the .bss");
    // Small sections still have their contents at hand.
    assert.equal(spec.map(".data").contents!.length, spec.map(".data").valueSize);
  });

  test("sizes and offsets of 2^53 or more are an ElfError, not a RangeError", () => {
    for (const [field, name] of [[32, "sh_size"], [24, "sh_offset"]] as const) {
      for (const value of [2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
        const bytes = withSectionField(fixture("maps.bpf.o"), ".bss", field, value);
        assert.throws(() => ObjectSpec.fromBytes(bytes), (err: unknown) => {
          assert.ok(err instanceof ElfError, String(err));
          assert.match(err.message, new RegExp(`${name} is 0x${value.toString(16)}, more than any file can hold`));
          return true;
        });
      }
    }
    // Just below 2^53 is exact, and more than a map value can be.
    const bytes = withSectionField(fixture("maps.bpf.o"), ".bss", 32, 2n ** 53n - 1n);
    assert.throws(() => ObjectSpec.fromBytes(bytes), ObjectError);
  });

  test("a BTF int of size 0 is a BtfError where it is read (it made CO-RE divide by zero)", () => {
    const target = ObjectSpec.fromBytes(fixture("target.bpf.o")).kernelBtf!;
    const spec = new Spec(target, { lazy: true });
    const int = spec.types.find((t) => t.kind === "int")!;
    const raw = target.slice();
    new DataView(raw.buffer).setUint32(spec.typeOffset(int.id) + 8, 0, true);
    assert.throws(() => new Spec(raw), /BTF: type \d+ \(int \w+\) has size 0/);
    assert.throws(() => new Spec(raw, { lazy: true }).typeById(int.id), BtfError);
  });
});

describe("fuzz", () => {
  test(`3,000 mutated objects and BTF blobs (seed 13): only TsbpfErrors, none over ${SLOW_MS} ms`, (t) => {
    const result = fuzz(3000, 13);
    const report = result.failures
      .slice(0, 5)
      .map((f) => `${f.seed} [${f.mutations.join("; ")}]: ${f.error.split("\n").slice(0, 4).join(" / ")}`)
      .join("\n");
    assert.equal(result.failures.length, 0, `failures:\n${report}`);
    assert.equal(result.inputs, 3000);
    // Mutations that leave an object usable exist, and so do ones that break it: both paths ran.
    assert.ok(result.accepted > 100 && result.accepted < 2900, `accepted ${result.accepted}`);
    assert.ok(result.slowest.ms <= SLOW_MS);
    t.diagnostic(`${result.inputs} inputs in ${result.ms.toFixed(0)} ms, ${result.accepted} accepted, slowest ${result.slowest.ms.toFixed(1)} ms`);
  });

  test("what the fuzzer found stays fixed: a call to an absolute symbol is an ObjectError", () => {
    // core.bpf.o's call to read_state relocated against a symbol moved to SHN_ABS.
    const bytes = fixture("core.bpf.o");
    const elf = new ElfFile(bytes);
    const sym = elf.symbols().find((s) => s.name === "read_state")!;
    const symtab = elf.sections.find((s) => s.name === ".symtab")!;
    const out = bytes.slice();
    new DataView(out.buffer).setUint16(symtab.offset + sym.index * 24 + 6, 0xfff1, true);
    assert.throws(() => ObjectSpec.fromBytes(out), (err: unknown) => err instanceof TsbpfError && !(err instanceof RangeError));
  });
});
