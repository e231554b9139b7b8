// features/: what this kernel supports, probed. Facts asserted on the host
// (KERNEL.md): kprobe programs load although there are no kprobes to attach them
// to (kprobe PMU and kprobe_events follow CONFIG_KPROBES from /proc/config.gz);
// the uprobe PMU is there; tracepoint and raw tracepoint programs load; ring
// buffers, queues and bloom filters can be created (key-less maps through their
// traits); helpers: bpf_get_current_pid_tgid is there for kprobes, an unknown
// helper id is not; cgroup attach types load; tracing program types cannot be
// probed without a target (NotSupportedError).
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

const root = process.getuid?.() === 0;

function kernelConfig(name: string): boolean | undefined {
  if (!existsSync("/proc/config.gz")) return undefined;
  const text = gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
  return new RegExp(`^${name}=[ym]$`, "m").test(text);
}

test("program types, maps and PMUs of this kernel", { skip: !root && "needs root" }, () => {
  assert.equal(haveProgType(ProgType.KPROBE), true, "kprobe programs load, with or without kprobes");
  assert.equal(haveProgType(ProgType.TRACEPOINT), true);
  assert.equal(haveProgType(ProgType.RAW_TRACEPOINT), true);
  assert.equal(haveProgType(ProgType.SOCKET_FILTER), true);
  assert.equal(haveProgType(9999), false, "an unknown program type");
  assert.equal(haveProgType(ProgType.KPROBE), true, "cached answer, same");

  assert.equal(haveRingBuf(), true);
  assert.equal(haveMapType(MapType.QUEUE), true, "key-less: probed with key_size 0 from its traits");
  assert.equal(haveMapType(MapType.BLOOM_FILTER), true);
  assert.equal(haveMapType(9999), false);

  assert.equal(havePmu("tracepoint"), true);
  assert.equal(havePmu("uprobe"), true);
  assert.equal(typeof pmuType("uprobe"), "number");
  assert.equal(haveDynamicProbes("uprobe"), true);
  const kprobes = kernelConfig("CONFIG_KPROBES");
  if (kprobes !== undefined) {
    assert.equal(havePmu("kprobe"), kprobes, "the kprobe PMU follows CONFIG_KPROBES");
    assert.equal(haveDynamicProbes("kprobe"), kprobes);
    // The registry reads the same answer: a kprobe hook needs kprobes.
    assert.equal(missingFor("kprobe")?.feature, kprobes ? undefined : "kprobes");
  }
  assert.equal(missingFor("uprobe"), undefined);
  assert.equal(missingFor("tracepoint"), undefined);
  assert.equal(haveKernelBtf(), existsSync("/sys/kernel/btf/vmlinux"));
});

test("helpers and attach types", { skip: !root && "needs root" }, () => {
  const BPF_FUNC_get_current_pid_tgid = 14;
  assert.equal(haveHelper(ProgType.KPROBE, BPF_FUNC_get_current_pid_tgid), true);
  assert.equal(haveHelper(ProgType.TRACEPOINT, BPF_FUNC_get_current_pid_tgid), true);
  assert.equal(haveHelper(ProgType.KPROBE, 100_000), false, "no such helper");
  assert.equal(haveAttachType(ProgType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS), true);
  assert.equal(haveAttachType(ProgType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT), true);
  assert.equal(haveAttachType(ProgType.CGROUP_SOCK_ADDR, 1000), false, "no such attach type");
  assert.throws(() => haveProgType(ProgType.TRACING), NotSupportedError);
});
