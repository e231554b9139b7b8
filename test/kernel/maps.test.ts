// Maps in the real kernel: every element operation of BpfMap, read back from
// the kernel, for each map type tsbpf supports. No mocks.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { compile } from "../../src/compile/index.ts";
import { Collection } from "../../src/collection.ts";
import { BpfMap } from "../../src/maps/map.ts";
import { possibleCpus } from "../../src/internal/sys/system.ts";
import { MapFlag, MapType } from "../../src/internal/sys/constants.ts";
import { SyscallError } from "../../src/internal/sys/errors.ts";
import { HEADERS, openFds, specOf } from "../support/kernel.ts";

const OBJECT = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct key_t { u32 pid; char comm[16]; };
struct val_t { u64 count; s32 flags; struct { u16 a; u8 b[3]; } nested; };
struct lpm_key { u32 prefixlen; u8 data[4]; };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct key_t);
	__type(value, struct val_t);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, struct val_t);
} pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u32);
} jmp SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	struct key_t k = {};
	k.pid = bpf_get_current_pid_tgid() >> 32;
	struct val_t *v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(&v->count, 1);
	struct lpm_key lk = { 32, { 10, 1, 2, 3 } };
	bpf_map_lookup_elem(&routes, &lk);
	u32 zero = 0;
	bpf_map_lookup_elem(&pcpu, &zero);
	bpf_tail_call(ctx, &jmp, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int target(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

let coll: Collection;
const cpus = possibleCpus();

before(async () => {
  const object = await compile({ text: OBJECT, name: "maps-test.bpf.c" });
  coll = Collection.load(object.bytes);
});

after(() => {
  coll?.close();
});

/** Runs `fn` and returns the SyscallError it throws (failing if it does not). */
function syscallError(fn: () => unknown): SyscallError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SyscallError, `expected a SyscallError, got ${err}`);
    return err;
  }
  assert.fail("expected the call to throw");
}

function count(iter: Iterable<unknown>): number {
  let n = 0;
  for (const _ of iter) n++;
  return n;
}

function ipv4Key(prefixlen: number, ip: [number, number, number, number]): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setUint32(0, prefixlen, true);
  key.set(ip, 4);
  return key;
}

function u32Bytes(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

describe("map types", () => {
  test("HASH: update, lookup, delete, lookupAndDelete with raw 4/8-byte codecs", () => {
    using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 16, name: "t_hash" });
    assert.equal(m.lookup(1), undefined);
    m.update(1, 100n);
    m.update(2, 200n);
    assert.equal(m.lookup(1), 100n);
    assert.equal(m.lookup(2), 200n);
    m.update(1, 0xffff_ffff_ffff_ffffn);
    assert.equal(m.lookup(1), 0xffff_ffff_ffff_ffffn);
    assert.equal(m.delete(1), true);
    assert.equal(m.delete(1), false);
    assert.equal(m.lookup(1), undefined);
    assert.equal(m.lookupAndDelete(2), 200n);
    assert.equal(m.lookup(2), undefined);
    assert.equal(m.lookupAndDelete(2), undefined);
    const info = m.info();
    assert.equal(info.type, MapType.HASH);
    assert.equal(info.keySize, 4);
    assert.equal(info.valueSize, 8);
    assert.equal(info.maxEntries, 16);
    assert.equal(info.name, "t_hash");
  });

  test("untyped 4- and 8-byte keys refuse what is not an integer in range instead of wrapping", () => {
    using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 4 });
    for (const bad of ["1", 1.5, 2 ** 32, { pid: 1 }, undefined]) {
      assert.throws(() => m.update(bad as never, 1n), TypeError, String(bad));
    }
    assert.throws(() => m.update(1, 2n ** 64n), TypeError);
    assert.throws(() => m.update(1, 0.5 as never), TypeError);
    assert.equal(count(m.keys()), 0, "nothing was written");
    m.update(-1, -1n); // signed spellings are accepted, as C would store them
    assert.equal(m.lookup(0xffff_ffff), 0xffff_ffff_ffff_ffffn);
    m.update(2, 5); // a number for a 64-bit value
    assert.equal(m.lookup(2), 5n);
  });

  test("HASH with odd sizes: keys and values are Uint8Arrays", () => {
    using m = BpfMap.create({ type: MapType.HASH, keySize: 3, valueSize: 5, maxEntries: 4 });
    m.update(Uint8Array.of(1, 2, 3), Uint8Array.of(9, 8, 7, 6, 5));
    assert.deepEqual(m.lookup(Uint8Array.of(1, 2, 3)), Uint8Array.of(9, 8, 7, 6, 5));
    assert.deepEqual([...m.keys()], [Uint8Array.of(1, 2, 3)]);
    assert.deepEqual(m.lookupBytes(Uint8Array.of(1, 2, 3)), Uint8Array.of(9, 8, 7, 6, 5));
    m.updateBytes(Uint8Array.of(4, 5, 6), Uint8Array.of(1, 1, 1, 1, 1));
    assert.deepEqual(m.lookup(Uint8Array.of(4, 5, 6)), Uint8Array.of(1, 1, 1, 1, 1));
    assert.equal(m.deleteBytes(Uint8Array.of(4, 5, 6)), true);
    assert.equal(m.deleteBytes(Uint8Array.of(4, 5, 6)), false);
  });

  test("ARRAY: every index exists, zeroed, and holds what is written", () => {
    using m = BpfMap.create({ type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 8 });
    assert.deepEqual([...m.keys()], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(m.lookup(3), 0);
    m.update(3, 0xdeadbeef);
    assert.equal(m.lookup(3), 0xdeadbeef);
    assert.equal(m.lookup(8), undefined);
    assert.throws(() => m.update(8, 1), (err: unknown) => err instanceof SyscallError && err.code === "E2BIG");
    // Array elements cannot be deleted.
    assert.throws(() => m.delete(3), (err: unknown) => err instanceof SyscallError && err.code === "EINVAL");
  });

  test("PERCPU_HASH: one value replicated to every CPU, or one per CPU", () => {
    using m = BpfMap.create({ type: MapType.PERCPU_HASH, keySize: 4, valueSize: 8, maxEntries: 4 });
    assert.equal(m.perCpu, true);
    m.update(1, 7n);
    assert.deepEqual(m.lookup(1), new Array(cpus).fill(7n));
    const each = Array.from({ length: cpus }, (_, i) => BigInt(i * 10 + 1));
    m.update(2, each);
    assert.deepEqual(m.lookup(2), each);
    assert.deepEqual(
      new Map(m.entries()),
      new Map<number, bigint[]>([
        [1, new Array(cpus).fill(7n)],
        [2, each],
      ]),
    );
    assert.throws(() => m.update(3, [1n]), TypeError);
  });

  test("PERCPU_ARRAY: values whose size is not a multiple of 8 keep their CPU slots apart", () => {
    using m = BpfMap.create({ type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 4, maxEntries: 2 });
    assert.deepEqual(m.lookup(0), new Array(cpus).fill(0));
    m.update(0, 5);
    assert.deepEqual(m.lookup(0), new Array(cpus).fill(5));
    const each = Array.from({ length: cpus }, (_, i) => 1000 + i);
    m.update(1, each);
    assert.deepEqual(m.lookup(1), each);
    // The raw buffer: each CPU's 4-byte value in an 8-byte slot.
    const raw = m.lookupBytes(u32Bytes(1))!;
    assert.equal(raw.byteLength, 8 * cpus);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let cpu = 0; cpu < cpus; cpu++) assert.equal(view.getUint32(cpu * 8, true), 1000 + cpu);

    using odd = BpfMap.create({ type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 12, maxEntries: 1 });
    const bytes = Array.from({ length: cpus }, (_, i) => new Uint8Array(12).fill(i + 1));
    odd.update(0, bytes);
    assert.deepEqual(odd.lookup(0), bytes);
  });

  test("LRU_HASH: filling past max_entries evicts, the count stays <= max", () => {
    using m = BpfMap.create({ type: MapType.LRU_HASH, keySize: 4, valueSize: 4, maxEntries: 32 });
    for (let i = 0; i < 500; i++) m.update(i, i * 2);
    const keys = [...m.keys()];
    assert.ok(keys.length > 0 && keys.length <= 32, `${keys.length} entries`);
    assert.equal(m.lookup(499), 998, "the newest entry survives");
    assert.equal(m.lookup(0), undefined, "the oldest entry was evicted");
    for (const [k, v] of m.entries()) assert.equal(v, k * 2);
  });

  test("PROG_ARRAY: a Program goes in by fd and reads back as its kernel id", () => {
    const jmp = coll.map("jmp");
    const target = coll.program("target");
    assert.equal(jmp.type, MapType.PROG_ARRAY);
    assert.equal(jmp.lookup(0), undefined);
    jmp.update(0, target);
    assert.equal(jmp.lookup(0), target.info().id);
    // An array: every index is a key; only the filled slot has a value.
    assert.deepEqual([...jmp.keys()], [0, 1, 2, 3]);
    assert.deepEqual([...jmp.entries()], [[0, target.info().id]]);
    assert.equal(jmp.delete(0), true);
    assert.equal(jmp.lookup(0), undefined);
  });

  test("PERF_EVENT_ARRAY: maxEntries 0 means one slot per possible CPU", () => {
    using m = BpfMap.create({ type: MapType.PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, maxEntries: 0 });
    assert.equal(m.maxEntries, cpus);
    assert.equal(m.info().maxEntries, cpus);
    assert.equal(m.info().type, MapType.PERF_EVENT_ARRAY);
    // The kernel has no user-space lookup of perf event fds.
    assert.equal(syscallError(() => m.lookup(0)).code, "ENOTSUPP");
  });

  test("RINGBUF: size is a power-of-two multiple of the page size", () => {
    using m = BpfMap.create({ type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: 4096 * 16 });
    const info = m.info();
    assert.equal(info.type, MapType.RINGBUF);
    assert.equal(info.maxEntries, 4096 * 16);
    assert.throws(
      () => BpfMap.create({ type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: 4096 * 3 }),
      (err: unknown) => err instanceof SyscallError && err.code === "EINVAL",
    );
  });

  test("STACK_TRACE: created empty; a missing stack id is undefined", () => {
    using m = BpfMap.create({ type: MapType.STACK_TRACE, keySize: 4, valueSize: 8 * 127, maxEntries: 64 });
    assert.equal(m.info().type, MapType.STACK_TRACE);
    assert.equal(m.lookup(0), undefined);
    assert.equal(m.lookup(12345), undefined);
    assert.deepEqual([...m.keys()], []);
  });

  test("LPM_TRIE (raw bytes): longest-prefix match", () => {
    using m = BpfMap.create({ type: MapType.LPM_TRIE, keySize: 8, valueSize: 4, maxEntries: 16, flags: MapFlag.NO_PREALLOC });
    m.updateBytes(ipv4Key(8, [10, 0, 0, 0]), u32Bytes(8));
    m.updateBytes(ipv4Key(16, [10, 1, 0, 0]), u32Bytes(16));
    const hit = (ip: [number, number, number, number]) => {
      const raw = m.lookupBytes(ipv4Key(32, ip));
      return raw && new DataView(raw.buffer, raw.byteOffset).getUint32(0, true);
    };
    assert.equal(hit([10, 1, 2, 3]), 16);
    assert.equal(hit([10, 2, 0, 1]), 8);
    assert.equal(hit([11, 0, 0, 1]), undefined);
    assert.equal(m.deleteBytes(ipv4Key(16, [10, 1, 0, 0])), true);
    assert.equal(hit([10, 1, 2, 3]), 8);
  });

  test("LPM_TRIE (BTF struct key): longest-prefix match, keys decode to objects", () => {
    const m = coll.map("routes");
    assert.equal(m.flags, MapFlag.NO_PREALLOC);
    m.update({ prefixlen: 8, data: [10, 0, 0, 0] }, 8);
    m.update({ prefixlen: 16, data: [10, 1, 0, 0] }, 16);
    try {
      assert.equal(m.lookup({ prefixlen: 32, data: [10, 1, 2, 3] }), 16);
      assert.equal(m.lookup({ prefixlen: 32, data: [10, 2, 0, 1] }), 8);
      assert.equal(m.lookup({ prefixlen: 32, data: [192, 168, 0, 1] }), undefined);
      const keys = [...m.keys()].sort((a, b) => a.prefixlen - b.prefixlen);
      assert.deepEqual(keys, [
        { prefixlen: 8, data: [10, 0, 0, 0] },
        { prefixlen: 16, data: [10, 1, 0, 0] },
      ]);
    } finally {
      m.clear();
    }
    assert.equal(count(m.keys()), 0);
  });

  test("QUEUE: FIFO; pop on empty is undefined", () => {
    using q = BpfMap.create({ type: MapType.QUEUE, keySize: 0, valueSize: 4, maxEntries: 8 });
    assert.equal(q.pop(), undefined);
    assert.equal(q.peek(), undefined);
    for (const v of [1, 2, 3]) q.push(v);
    assert.equal(q.peek(), 1);
    assert.equal(q.pop(), 1);
    assert.equal(q.pop(), 2);
    assert.equal(q.pop(), 3);
    assert.equal(q.pop(), undefined);
  });

  test("STACK: LIFO; pop on empty is undefined; full refuses a push unless told to overwrite", () => {
    using s = BpfMap.create({ type: MapType.STACK, keySize: 0, valueSize: 8, maxEntries: 2 });
    assert.equal(s.pop(), undefined);
    s.push(1n);
    s.push(2n);
    assert.equal(s.peek(), 2n);
    assert.throws(() => s.push(3n), (err: unknown) => err instanceof SyscallError && err.code === "E2BIG");
    // BPF_EXIST on a full stack drops the oldest element to make room.
    s.push(3n, "exist");
    assert.equal(s.pop(), 3n);
    assert.equal(s.pop(), 2n);
    assert.equal(s.pop(), undefined);
  });
});

describe("update modes", () => {
  test("noexist on an existing key is EEXIST; exist on a missing key is ENOENT", () => {
    using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 4 });
    m.update(1, 10, "noexist");
    assert.equal(m.lookup(1), 10);
    const exists = syscallError(() => m.update(1, 11, "noexist"));
    assert.equal(exists.code, "EEXIST");
    assert.match(exists.message, /MAP_UPDATE_ELEM/);
    assert.equal(m.lookup(1), 10);
    const missing = syscallError(() => m.update(2, 20, "exist"));
    assert.equal(missing.code, "ENOENT");
    assert.equal(m.lookup(2), undefined);
    m.update(1, 12, "exist");
    assert.equal(m.lookup(1), 12);
  });
});

describe("iteration", () => {
  test("keys, entries and values of a hash with 100 entries equal what was inserted", () => {
    using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 128 });
    const inserted = new Map<number, bigint>();
    for (let i = 0; i < 100; i++) {
      const k = i * 7919 + 3;
      inserted.set(k, BigInt(k) * 1_000_000_007n);
      m.update(k, inserted.get(k)!);
    }
    const keys = [...m.keys()];
    assert.equal(keys.length, 100);
    assert.deepEqual(new Set(keys), new Set(inserted.keys()));
    assert.deepEqual(new Map(m.entries()), inserted);
    assert.deepEqual(new Map([...m]), inserted);
    assert.deepEqual([...m.values()].sort(), [...inserted.values()].sort());
  });

  test("clear() empties a hash and zeroes an array", () => {
    using h = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 64 });
    for (let i = 0; i < 50; i++) h.update(i, i + 1);
    assert.equal(count(h.keys()), 50);
    h.clear();
    assert.equal(count(h.keys()), 0);

    using a = BpfMap.create({ type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 10 });
    for (let i = 0; i < 10; i++) a.update(i, i + 100);
    a.clear();
    assert.deepEqual([...a.entries()], Array.from({ length: 10 }, (_, i) => [i, 0]));

    using pa = BpfMap.create({ type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: 3 });
    for (let i = 0; i < 3; i++) pa.update(i, 42n);
    pa.clear();
    for (const v of pa.values()) assert.deepEqual(v, new Array(cpus).fill(0n));
  });
});

describe("batch operations", () => {
  test("updateBatch, lookupBatch (batch 64), deleteBatch, lookupBatch andDelete over 1000 entries", () => {
    using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 1000 });
    const entries: [number, bigint][] = Array.from({ length: 1000 }, (_, i) => [i + 1, BigInt(i + 1) << 33n]);
    assert.equal(m.updateBatch(entries), 1000);
    assert.equal(m.lookup(500), 500n << 33n);

    const seen = new Map<number, bigint>();
    for (const [k, v] of m.lookupBatch(64)) {
      assert.ok(!seen.has(k), `key ${k} returned twice`);
      seen.set(k, v);
    }
    assert.equal(seen.size, 1000);
    assert.deepEqual(seen, new Map(entries));

    assert.equal(m.deleteBatch(entries.slice(0, 400).map(([k]) => k)), 400);
    assert.equal(count(m.keys()), 600);
    assert.equal(m.lookup(1), undefined);
    assert.equal(m.lookup(401), 401n << 33n);

    const drained = new Map(m.lookupBatch(64, { andDelete: true }));
    assert.equal(drained.size, 600);
    assert.deepEqual(drained, new Map(entries.slice(400)));
    assert.equal(count(m.keys()), 0);
    assert.equal(count(m.lookupBatch(64)), 0);
  });

  test("updateBatch refuses modes the kernel cannot batch; deleteBatch skips missing keys", () => {
    using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 16 });
    assert.equal(m.updateBatch([]), 0);
    assert.equal(m.updateBatch([[1, 1], [2, 2], [3, 3], [4, 4]]), 4);
    assert.throws(() => m.updateBatch([[1, 5]], "noexist"), /noexist.*update\(\) per key/);
    assert.throws(() => m.updateBatch([[9, 5]], "exist"), TypeError);
    assert.equal(m.lookup(1), 1);
    assert.equal(m.lookup(9), undefined);
    // 99 and 98 are not there: the keys around them are still deleted.
    assert.equal(m.deleteBatch([99, 1, 98, 2, 3]), 3);
    assert.deepEqual([...m.keys()], [4]);
    assert.equal(m.deleteBatch([97]), 0);
    assert.equal(m.deleteBatch([]), 0);
  });

  test("lookupBatch with a batch smaller than a hash bucket still returns every entry once", () => {
    // 2000 keys in 1024 buckets (hash maps round max_entries up to a power of two): many
    // buckets hold several, more than a batch of 1 (the kernel returns ENOSPC for those).
    using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 2000 });
    const entries: [number, number][] = Array.from({ length: 2000 }, (_, i) => [i * 31 + 1, i]);
    assert.equal(m.updateBatch(entries), 2000);
    const seen = new Map<number, number>();
    for (const [k, v] of m.lookupBatch(1)) {
      assert.ok(!seen.has(k), `key ${k} returned twice`);
      seen.set(k, v);
    }
    assert.deepEqual(seen, new Map(entries));
    assert.equal(count(m.lookupBatch(1, { andDelete: true })), 2000);
    assert.equal(count(m.keys()), 0);
    assert.throws(() => [...m.lookupBatch(0)], RangeError);
  });

  test("lookupBatch over an array and a per-CPU hash", () => {
    using a = BpfMap.create({ type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 100 });
    for (let i = 0; i < 100; i++) a.update(i, i * 3);
    assert.deepEqual([...a.lookupBatch(7)], Array.from({ length: 100 }, (_, i) => [i, i * 3]));

    using p = BpfMap.create({ type: MapType.PERCPU_HASH, keySize: 4, valueSize: 4, maxEntries: 64 });
    const each = Array.from({ length: cpus }, (_, i) => i + 1);
    assert.equal(p.updateBatch(Array.from({ length: 50 }, (_, i) => [i, each] as [number, number[]])), 50);
    const got = new Map(p.lookupBatch(16));
    assert.equal(got.size, 50);
    for (const v of got.values()) assert.deepEqual(v, each);
  });
});

describe("typed maps (BTF)", () => {
  test("struct key with char[16], struct value with u64, s32 and a nested struct round-trip through the kernel", () => {
    const m = coll.map("counts");
    assert.ok(m.keyType && m.valueType, "the map has BTF types");
    assert.ok(m.info().btfId > 0, "the kernel has the map's BTF");
    const key = { pid: 4242, comm: "node" };
    const value = { count: 0x1_0000_0001n, flags: -3, nested: { a: 65535, b: [1, 2, 255] } };
    try {
      m.update(key, value);
      assert.deepEqual(m.lookup(key), value);
      assert.deepEqual([...m.entries()], [[key, value]]);
      // The bytes in the kernel are the C layout.
      const raw = m.lookupBytes(new Uint8Array([0x92, 0x10, 0, 0, ...new TextEncoder().encode("node"), ...new Uint8Array(12)]));
      assert.ok(raw);
      const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      assert.equal(raw.byteLength, 24);
      assert.equal(v.getBigUint64(0, true), 0x1_0000_0001n);
      assert.equal(v.getInt32(8, true), -3);
      assert.equal(v.getUint16(12, true), 65535);
      assert.deepEqual([...raw.subarray(14, 17)], [1, 2, 255]);
      assert.equal(m.lookup({ pid: 4242, comm: "nod" }), undefined);
      assert.throws(() => m.update({ pid: "x", comm: "x" } as never, value), TypeError);
      assert.throws(() => m.update({ pid: 2 ** 32, comm: "x" }, value), TypeError);
    } finally {
      m.clear();
    }
  });

  test("per-CPU hash with a struct value", () => {
    const m = coll.map("pcpu");
    assert.equal(m.perCpu, true);
    const one = { count: 9n, flags: 1, nested: { a: 2, b: [3, 4, 5] } };
    m.update(0, one);
    assert.deepEqual(m.lookup(0), new Array(cpus).fill(one));
    const each = Array.from({ length: cpus }, (_, i) => ({ count: BigInt(i), flags: -i | 0, nested: { a: i, b: [i, i, i] } }));
    m.update(1, each);
    assert.deepEqual(m.lookup(1), each);
    m.clear();
  });

  test("pin, fromPin keeps the BTF types; fromId opens the same map", () => {
    const m = coll.map("counts");
    const dir = `/sys/fs/bpf/tsbpf-test-${process.pid}`;
    const path = `${dir}/m`;
    const key = { pid: 7, comm: "pinned" };
    const value = { count: 123n, flags: 4, nested: { a: 5, b: [6, 7, 8] } };
    try {
      m.update(key, value);
      m.pin(path);
      assert.ok(existsSync(path));
      using again = BpfMap.fromPin(path);
      assert.equal(again.info().id, m.info().id);
      assert.equal(again.type, MapType.HASH);
      assert.equal(again.name, "counts");
      assert.equal(again.keySize, m.keySize);
      assert.equal(again.valueSize, m.valueSize);
      assert.equal(again.maxEntries, 64);
      assert.ok(again.keyType && again.valueType);
      assert.deepEqual(again.lookup(key), value);

      using byId = BpfMap.fromId(m.info().id);
      assert.deepEqual(byId.lookup(key), value);
      byId.update(key, { ...value, count: 124n });
      assert.equal(m.lookup(key).count, 124n);
    } finally {
      rmSync(path, { force: true });
      rmSync(dir, { recursive: true, force: true });
      m.clear();
    }
    assert.equal(existsSync(path), false);
  });
});

describe("the map itself", () => {
  test("freeze(): updates from user space are refused with EPERM, lookups still work", () => {
    using m = BpfMap.create({ type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 2 });
    m.update(0, 77);
    m.freeze();
    assert.equal(syscallError(() => m.update(0, 78)).code, "EPERM");
    assert.equal(syscallError(() => m.update(1, 1)).code, "EPERM");
    assert.equal(m.lookup(0), 77);
  });

  test("50 maps created and disposed leave no fd behind", () => {
    const before = openFds();
    for (let i = 0; i < 25; i++) {
      using m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 4 });
      m.update(i, i);
    }
    for (let i = 0; i < 25; i++) {
      const m = BpfMap.create({ type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 4 });
      m.update(0, i);
      m.close();
    }
    assert.equal(openFds(), before);
  });

  test("failed creates and failed opens leave no fd behind", () => {
    const before = openFds();
    for (let i = 0; i < 10; i++) {
      assert.throws(() => BpfMap.create({ type: MapType.HASH, keySize: 0, valueSize: 4, maxEntries: 4 }), SyscallError);
      assert.throws(() => BpfMap.fromPin(`/sys/fs/bpf/tsbpf-missing-${process.pid}`), SyscallError);
    }
    assert.equal(openFds(), before);
  });

  test("a map used after close throws a clear error; close is idempotent", () => {
    const m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 4, name: "closed_map" });
    m.update(1, 1);
    m.close();
    m.close();
    m[Symbol.dispose]();
    for (const use of [() => m.lookup(1), () => m.update(1, 2), () => m.delete(1), () => [...m.keys()], () => m.info()]) {
      assert.throws(use, /closed_map.*closed|after close/);
    }
  });
});

// LIBBPF_PIN_BY_NAME: the first load pins, a second load reuses the same kernel map (its
// contents included), and a pinned map of another definition is refused by name and field.
test("a pinned-by-name map is reused by the next load, and a different definition is refused naming the field", async () => {
  const pinned = (flags: string, entries: number) => `${HEADERS}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ${entries});
	__type(key, u32);
	__type(value, u64);
	${flags}
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shared_counts SEC(".maps");
`;
  const pinPath = mkdtempSync("/sys/fs/bpf/tsbpf-pin-");
  try {
    const spec = await specOf(pinned("", 64));
    let firstId: number;
    {
      await using first = Collection.load(spec, { pinPath });
      first.map<number, bigint>("shared_counts").update(7, 42n);
      firstId = first.map("shared_counts").info().id;
    }
    assert.ok(existsSync(`${pinPath}/shared_counts`), "the pin outlives the collection");
    {
      await using second = Collection.load(spec, { pinPath });
      assert.equal(second.map("shared_counts").info().id, firstId, "the same kernel map");
      assert.equal(second.map<number, bigint>("shared_counts").lookup(7), 42n);
    }
    const bigger = await specOf(pinned("", 128));
    assert.throws(() => Collection.load(bigger, { pinPath }), /map shared_counts: the map pinned at .* \(max_entries 64, not 128\); remove it or change pinPath/);
    const noPrealloc = await specOf(pinned("__uint(map_flags, BPF_F_NO_PREALLOC);", 64));
    assert.throws(() => Collection.load(noPrealloc, { pinPath }), /\(flags 0, not 1\)/);
  } finally {
    rmSync(pinPath, { recursive: true, force: true });
  }
});
