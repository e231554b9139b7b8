// Maps of maps in this kernel: the loader's inner template and initial values
// (test/fixtures/map-in-map.bpf.o), BpfMap's by-hand API, and BCC's
// test_map_in_map.py C text through the BPF facade. A tracepoint program reads
// and counts through the inner maps in each; what it wrote is checked.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Collection } from "../../src/collection.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { ObjectError } from "../../src/object/errors.ts";
import { BpfMap } from "../../src/maps/map.ts";
import { BPF } from "../../src/bcc/index.ts";
import { BpfCmd, MapType } from "../../src/internal/sys/constants.ts";
import { fdById, listIds, mapInfo } from "../../src/internal/sys/bpf.ts";
import { SyscallError } from "../../src/internal/sys/errors.ts";
import { FIXTURES } from "../../scripts/build-fixtures.ts";
import { haveMapType } from "../../src/features/index.ts";
import { assertDetached, openFds } from "../support/kernel.ts";

const fixture = () => ObjectSpec.fromBytes(new Uint8Array(readFileSync(join(FIXTURES, "map-in-map.bpf.o"))), "map-in-map.bpf.o");
/** Each read of process.ppid is a getppid(2): the fixture's tracepoint. */
const getppid = (n: number) => {
  for (let i = 0; i < n; i++) assert.ok(process.ppid > 0);
};

/** Maps in the system with this name (the kernel keeps 15 characters). */
function mapsNamed(name: string): number[] {
  return listIds(BpfCmd.MAP_GET_NEXT_ID).filter((id) => {
    try {
      using fd = fdById(BpfCmd.MAP_GET_FD_BY_ID, id);
      return mapInfo(fd.value).name === name.slice(0, 15);
    } catch {
      return false; // freed meanwhile
    }
  });
}

/** The kernel frees a map whose last reference went after an RCU grace period: wait for it, at most 5 s. */
async function assertNoMap(name: string): Promise<void> {
  for (let i = 0; i < 50 && mapsNamed(name).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(mapsNamed(name), [], `a map named ${name} remains`);
}

describe("an object's maps of maps and initial values (libbpf's __array(values, ...))", () => {
  test("slots start filled, the program counts through the inner map a slot holds, and one set from user space reads back by id", async () => {
    const fds = openFds();
    {
      using coll = Collection.load(fixture(), { constants: { target_pid: process.pid } });
      const outer = coll.map("outer");
      const [a, b, c] = ["inner_a", "inner_b", "inner_c"].map((n) => coll.map(n));
      assert.equal(outer.info().type, MapType.ARRAY_OF_MAPS);
      // .values = { [0] = &inner_a, [3] = &inner_b }: the kernel reads back map ids.
      assert.deepEqual([...outer.entries()], [[0, a!.info().id], [3, b!.info().id]]);
      // The prog array's [1] = &tail, filled once the programs loaded.
      assert.deepEqual([...coll.map("jumps").entries()], [[1, coll.program("tail").info().id]]);

      const control = coll.map("control");
      using link = coll.program("count").attach();
      control.update(0, 3n); // count in the map at outer[3]: inner_b
      getppid(5);
      assert.equal(b!.lookup(0), 5n);
      assert.equal(a!.lookup(0), 0n);
      assert.equal(control.lookup(2), 5n, "each run tail-called jumps[1] (tail)");

      control.update(0, 5n); // an empty slot: the program sees no map
      getppid(2);
      assert.equal(control.lookup(1), 2n);

      outer.update(5, c!); // a BpfMap goes in by its fd
      getppid(3);
      assert.equal(c!.lookup(0), 3n);
      assert.equal(outer.lookup(5), c!.info().id);
      {
        using got = outer.innerMap(5)!;
        assert.equal(got.info().id, c!.info().id, "innerMap opens the map the slot holds, by id");
        assert.equal(got.name, "inner_c");
        assert.equal(got.lookup(0), 3n, "with its value type");
      }
      assert.equal(outer.innerMap(6), undefined, "an empty slot");
      assert.equal(outer.delete(5), true);
      assert.equal(outer.innerMap(5), undefined);
      link.close();
    }
    assert.equal(openFds(), fds, "the collection, its maps and the inner template are closed");
    await assertDetached("count", "tail");
    await assertNoMap("outer.inner");
    await assertNoMap("inner_c");
  });

  test("a slot naming a program the load leaves out, and an inner definition the kernel refuses: clear errors, nothing left", async () => {
    const fds = openFds();
    assert.throws(
      () => Collection.load(fixture(), { programs: ["count"] }),
      (err: unknown) => err instanceof ObjectError && /map jumps: values\[1\] = &tail: that program is not loaded \(options\.programs leaves it out\)/.test(err.message),
    );
    const spec = fixture();
    spec.map("outer").inner!.maxEntries = 0; // an array of no entries
    assert.throws(
      () => Collection.load(spec),
      (err: unknown) =>
        err instanceof SyscallError &&
        /map outer \(array_of_maps\): the kernel refused the definition of its inner maps \(array, key 4 bytes, value 8 bytes, max_entries 0\): .*EINVAL/.test(err.message),
    );
    const gone = fixture();
    gone.map("outer").initial!.push({ key: 6, kind: "map", name: "no_such_map" });
    assert.throws(() => Collection.load(gone), /map outer: values\[6\] = &no_such_map: the object has no map named "no_such_map"/);
    assert.equal(openFds(), fds);
    await assertDetached("count", "tail");
  });
});

describe("BpfMap by hand", () => {
  test("haveMapType probes maps of maps with an inner map (without one the kernel answers EBADF, which read as unsupported)", () => {
    assert.equal(haveMapType(MapType.ARRAY_OF_MAPS), true);
    assert.equal(haveMapType(MapType.HASH_OF_MAPS), true);
  });

  test("a hash of maps from a definition or from an open map; holding a map keeps it alive after its fd closes", async () => {
    const fds = openFds();
    const innerDef = { type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 8 };
    {
      using outer = BpfMap.create({ type: MapType.HASH_OF_MAPS, keySize: 8, valueSize: 4, maxEntries: 4, name: "mim_outer", inner: innerDef });
      using first = BpfMap.create({ ...innerDef, name: "mim_first" });
      using other = BpfMap.create({ type: MapType.ARRAY_OF_MAPS, keySize: 4, valueSize: 4, maxEntries: 2, name: "mim_other", inner: first });
      first.update(7, 70n);
      outer.update(1n, first);
      other.update(0, first.fd.value); // BCC's way: the map's fd
      assert.equal(outer.lookup(1n), first.info().id);
      assert.equal(other.lookup(0), first.info().id);
      // A map of another shape is refused by the kernel (it checks against the template).
      using odd = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 8, name: "mim_odd" });
      assert.throws(() => outer.update(2n, odd), (err: unknown) => err instanceof SyscallError && err.code === "EINVAL");
      first.close();
      using again = outer.innerMap(1n)!;
      assert.equal(again.lookup(7), 70n, "the outer map holds the inner one");
    }
    assert.equal(openFds(), fds);
    await assertNoMap("mim_first");
    await assertNoMap("mim_outer");
  });
});

// BCC's tests/python/test_map_in_map.py: its three C texts as they are, driven as the
// Python drives them (syscall__getuid on getuid: a kprobe, or the syscall tracepoint).
const HASH_TEXT = `
      BPF_ARRAY(cntl, int, 1);
      BPF_TABLE("hash", int, int, ex1, 1024);
      BPF_TABLE("hash", int, int, ex2, 1024);
      BPF_HASH_OF_MAPS(maps_hash, int, "ex1", 10);

      int syscall__getuid(void *ctx) {
         int key = 0, data, *val, cntl_val;
         void *inner_map;

         val = cntl.lookup(&key);
         if (!val || *val == 0)
           return 0;

         cntl_val = *val;
         inner_map = maps_hash.lookup(&cntl_val);
         if (!inner_map)
           return 0;

         val = bpf_map_lookup_elem(inner_map, &key);
         if (!val) {
           data = 1;
           bpf_map_update_elem(inner_map, &key, &data, 0);
         } else {
           data = 1 + *val;
           bpf_map_update_elem(inner_map, &key, &data, 0);
         }

         return 0;
      }
`;

const CUSTOM_KEY_TEXT = `
        struct custom_key {
          int value_1;
          int value_2;
        };

        BPF_ARRAY(cntl, int, 1);
        BPF_TABLE("hash", int, int, ex1, 1024);
        BPF_TABLE("hash", int, int, ex2, 1024);
        BPF_HASH_OF_MAPS(maps_hash, struct custom_key, "ex1", 10);

        int syscall__getuid(void *ctx) {
          struct custom_key hash_key = {1, 0};
          int key = 0, data, *val, cntl_val;
          void *inner_map;

          val = cntl.lookup(&key);
          if (!val || *val == 0)
            return 0;

          hash_key.value_2 = *val;
          inner_map = maps_hash.lookup(&hash_key);
          if (!inner_map)
            return 0;

          val = bpf_map_lookup_elem(inner_map, &key);
          if (!val) {
            data = 1;
            bpf_map_update_elem(inner_map, &key, &data, 0);
          } else {
            data = 1 + *val;
            bpf_map_update_elem(inner_map, &key, &data, 0);
          }

          return 0;
        }
`;

const ARRAY_TEXT = `
      BPF_ARRAY(cntl, int, 1);
      BPF_ARRAY(ex1, int, 1024);
      BPF_ARRAY(ex2, int, 1024);
      BPF_ARRAY_OF_MAPS(maps_array, "ex1", 10);

      int syscall__getuid(void *ctx) {
         int key = 0, data, *val, cntl_val;
         void *inner_map;

         val = cntl.lookup(&key);
         if (!val || *val == 0)
           return 0;

         cntl_val = *val;
         inner_map = maps_array.lookup(&cntl_val);
         if (!inner_map)
           return 0;

         val = bpf_map_lookup_elem(inner_map, &key);
         if (val) {
           data = 1 + *val;
           bpf_map_update_elem(inner_map, &key, &data, 0);
         }

         return 0;
      }
`;

describe("BCC's test_map_in_map.py", () => {
  /** What each of BCC's three tests does after loading: two inner tables, selected in turn by cntl[0]. */
  async function drive(text: string, outerName: string, keyOf: (n: number) => unknown, hash: boolean) {
    const fds = openFds();
    {
      using b = await BPF.load({ text, name: "test_map_in_map.c" });
      const [cntl, ex1, ex2, outer] = ["cntl", "ex1", "ex2", outerName].map((n) => b.get(n));
      outer!.set(keyOf(1), ex1!); // hash_maps[1] = ex1 (a table)
      outer!.set(keyOf(2), ex2!.map.fd.value); // hash_maps[2] = ct.c_int(ex2_map.get_fd())
      assert.equal(outer!.get(keyOf(1)), ex1!.map.info().id);
      const fn = b.getSyscallFnname("getuid");
      b.attachKprobe({ event: fn, fnName: "syscall__getuid" });

      if (hash) assert.equal(ex1!.get(0), undefined, "ex1[0] before cntl selects it");
      cntl!.set(0, 1);
      process.getuid!();
      assert.ok(Number(ex1!.get(0)) >= 1, "the program counted in ex1 through maps[1]");
      if (hash) assert.equal(ex2!.get(0), undefined);
      cntl!.set(0, 2);
      process.getuid!();
      assert.ok(Number(ex2!.get(0)) >= 1, "and in ex2 through maps[2]");
      {
        using inner = outer!.innerMap(keyOf(2))!;
        assert.equal(inner.info().id, ex2!.map.info().id);
      }
      b.detachKprobe({ event: fn });
      if (hash) {
        assert.equal(outer!.delete(keyOf(1)), true); // del hash_maps[1]
        assert.equal(outer!.delete(keyOf(2)), true);
        assert.deepEqual(outer!.items(), []);
      }
    }
    assert.equal(openFds(), fds);
    await assertDetached("syscall__getuid");
  }

  test("test_hash_table: BPF_HASH_OF_MAPS(maps_hash, int, \"ex1\", 10)", async () => {
    await drive(HASH_TEXT, "maps_hash", (n) => n, true);
  });

  test("test_hash_table_custom_key: a struct key", async () => {
    await drive(CUSTOM_KEY_TEXT, "maps_hash", (n) => ({ value_1: 1, value_2: n }), true);
  });

  test("test_array_table: BPF_ARRAY_OF_MAPS(maps_array, \"ex1\", 10)", async () => {
    await drive(ARRAY_TEXT, "maps_array", (n) => n, false);
  });
});
