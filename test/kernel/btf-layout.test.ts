// Split from test/unit/btf.test.ts: the one BTF test that needs a host C
// compiler (cc), to check struct layout against offsetof in a native program.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfFile } from "../../src/elf/index.ts";
import { alignof, resolve, sizeof, Spec } from "../../src/btf/index.ts";
import { buildExecutable } from "../support/clang.ts";
import { fixtureObject } from "../support/fixtures.ts";

const spec = new Spec(new ElfFile(fixtureObject("btf")).section(".BTF")!.data());

// The struct of test/fixtures/src/btf.bpf.c.
const STRUCTS = `
struct value {
  __u32 pid;
  __u64 ts;
  char comm[16];
  __u8 flags;
  __u16 port;
  struct { __u32 a; __u32 b; } pair;
  __u32 tail[3];
};
`;


test("map value struct layout matches the C compiler's offsetof", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-btf-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, "layout");
  buildExecutable(`
    #include <stdio.h>
    #include <stddef.h>
    #include <linux/types.h>
    ${STRUCTS}
    int main(void) {
      printf("{\\"size\\":%zu,\\"pid\\":%zu,\\"ts\\":%zu,\\"comm\\":%zu,\\"flags\\":%zu,\\"port\\":%zu,\\"pair\\":%zu,\\"tail\\":%zu}",
        sizeof(struct value), offsetof(struct value, pid), offsetof(struct value, ts), offsetof(struct value, comm),
        offsetof(struct value, flags), offsetof(struct value, port), offsetof(struct value, pair), offsetof(struct value, tail));
      return 0;
    }`, exe);
  const layout = JSON.parse(execFileSync(exe, { encoding: "utf8" }));

  const value = spec.typeByName("value", "struct");
  assert.equal(value.size, layout.size);
  assert.equal(sizeof(value), layout.size);
  assert.equal(alignof(value), 8);
  assert.deepEqual(value.members.map((m) => m.name), ["pid", "ts", "comm", "flags", "port", "pair", "tail"]);
  for (const m of value.members) {
    assert.equal(m.offset, layout[m.name] * 8, `${m.name} offset in bits`);
    assert.equal(m.bitfieldSize, 0);
  }
  const pid = value.members[0].type;
  assert.equal(pid.kind, "typedef");
  assert.equal(pid.name, "__u32");
  const u32 = resolve(pid);
  assert.ok(u32.kind === "int" && u32.size === 4 && u32.encoding === "none" && u32.bits === 32);
  const comm = value.members[2].type;
  assert.ok(comm.kind === "array" && comm.nelems === 16);
  assert.equal(sizeof(comm), 16);
  const pair = value.members[5].type;
  assert.ok(pair.kind === "struct" && pair.name === "" && pair.size === 8);
  assert.equal(sizeof(value.members[6].type), 12);
});
