// Split from test/kernel/features.test.ts: the map-type traits table, read without the kernel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import {
  haveAttachType, haveDynamicProbes, haveHelper, haveKernelBtf, haveMapType, haveProgType, havePmu, haveRingBuf, pmuType,
} from "../../src/features/index.ts";
import { AttachType, MapType, ProgType } from "../../src/internal/sys/constants.ts";
import { NotSupportedError } from "../../src/errors.ts";
import { mapTraits, mapTypesWith, traitsOf } from "../../src/maps/traits.ts";
import { missingFor } from "../../src/link/hooks.ts";

test("map traits: one entry per map type the constants name, with the facts maps/, gen/ and bcc/ read", () => {
  for (const [name, type] of Object.entries(MapType)) {
    if (type === MapType.UNSPEC) continue;
    assert.equal(traitsOf(type).name, name.toLowerCase(), name);
  }
  assert.deepEqual(mapTypesWith("perCpu").sort((a, b) => a - b), [MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE]);
  assert.deepEqual(mapTypesWith("noKey").sort((a, b) => a - b), [MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER]);
  assert.ok(traitsOf(MapType.PROG_ARRAY).fdValues && traitsOf(MapType.PROG_ARRAY).holds === "program");
  assert.ok(traitsOf(MapType.RINGBUF).byteSized && traitsOf(MapType.RINGBUF).btfRefused);
  assert.ok(traitsOf(MapType.TASK_STORAGE).btfRequired);
  assert.equal(traitsOf(9999).name, "map type 9999");
  assert.ok(Object.keys(mapTraits).length >= 33);
});
