// haveMapType for the local storage maps on this kernel (6.18 has all four): the
// probe must give them key/value BTF, without which the kernel says EINVAL and
// they read as missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { haveMapType } from "../../src/features/index.ts";
import { MapType } from "../../src/internal/sys/constants.ts";
import { openFds } from "../support/kernel.ts";

test("haveMapType: task, inode, sk and cgrp storage are there, and the probe leaves no fd behind", () => {
  const before = openFds();
  for (const name of ["TASK_STORAGE", "INODE_STORAGE", "SK_STORAGE", "CGRP_STORAGE"] as const) {
    assert.equal(haveMapType(MapType[name]), true, name);
  }
  assert.equal(openFds(), before);
});
