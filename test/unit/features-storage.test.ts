// The local storage map probe's BTF (features/index.ts): the kernel creates task,
// inode, sk and cgrp storage maps only with key/value BTF, so haveMapType gives
// them this blob. Read back with tsbpf's own BTF reader; no kernel needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Spec } from "../../src/btf/spec.ts";
import { intOnlyBtf } from "../../src/features/index.ts";
import { MapType } from "../../src/internal/sys/constants.ts";
import { traitsOf } from "../../src/maps/traits.ts";

test("storage map probe BTF: one type, id 1, a signed 32-bit int named int", () => {
  const spec = new Spec(intOnlyBtf());
  assert.equal(spec.types.length, 2); // void and int
  const t = spec.typeById(1);
  assert.equal(t.kind, "int");
  assert.equal(t.name, "int");
  assert.ok(t.kind === "int" && t.size === 4 && t.bits === 32 && t.encoding === "signed", JSON.stringify(t));
});

test("the map types probed with BTF are the local storage ones", () => {
  for (const type of [MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE, MapType.CGRP_STORAGE]) {
    assert.ok(traitsOf(type).localStorage && traitsOf(type).btfRequired, traitsOf(type).name);
  }
});
