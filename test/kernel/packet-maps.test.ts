// Maps of packet and socket programs against this kernel: local storage (task, sk,
// cgrp, inode) read back from user space by the owner's fd, packet bytes out of a
// perf buffer, and XDP redirects through devmap, cpumap and xskmap on veth pairs
// this test makes (10.214.X.0/24 and 10.215.X.0/24). Every send is bounded in count
// and every wait in time; nothing leaves the host.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Collection } from "../../src/collection.ts";
import { compile } from "../../src/compile/index.ts";
import { NotSupportedError, UsageError } from "../../src/errors.ts";
import { MapType } from "../../src/internal/sys/constants.ts";
import { BpfMap } from "../../src/maps/map.ts";
import { activeLsms, checkInodeStorage } from "../../src/maps/storage.ts";
import { cgroup2Root } from "../../src/link/cgroup.ts";
import { HEADERS } from "../support/kernel.ts";

const run = promisify(execFile);
const sh = (cmd: string): string => execFileSync("sh", ["-c", cmd], { encoding: "utf8" });
const tag = process.pid % 10000;

/** Polls `f` every 50 ms until it returns true or `ms` pass; returns its last answer. */
async function eventually(f: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (f()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** This process's cgroup v2 directory. */
function ownCgroup(): string {
  const line = readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"))!;
  return join(cgroup2Root(), line.slice(3));
}

// ---- local storage ----

test("task storage from tp_btf/sys_enter: the count of this process's getppid calls, read back by { pid } (a pidfd)", async () => {
  const spec = await compile({
    name: "task-storage.bpf.c",
    text: `${HEADERS}
struct calls { __u64 getppid; __u32 tid; };
struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __type(key, int); __type(value, struct calls); } per_task SEC(".maps");
const volatile __u32 target_tgid = 0;
SEC("tp_btf/sys_enter")
int BPF_PROG(count_getppid, struct pt_regs *regs, long id) {
    if (id != 110 || (bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
    struct calls *c = bpf_task_storage_get(&per_task, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (c) { c->getppid++; c->tid = (__u32)bpf_get_current_pid_tgid(); }
    return 0;
}`,
  });
  await using coll = Collection.load(spec.bytes, { constants: { target_tgid: process.pid } });
  const map = coll.map<number, { getppid: bigint; tid: number }>("per_task");
  assert.equal(map.type, MapType.TASK_STORAGE);
  assert.equal(map.maxEntries, 0);
  assert.equal(map.flags & 1, 1, "BPF_F_NO_PREALLOC was added");
  assert.equal(map.getFor({ pid: process.pid }), undefined, "nothing stored before the program runs");
  {
    using _link = coll.program("count_getppid").attach();
    let ppid = 0;
    // process.ppid asks the kernel each time (uv_os_getppid).
    for (let i = 0; i < 1234; i++) ppid += process.ppid;
    assert.ok(ppid > 0);
  }
  assert.deepEqual(map.getFor({ pid: process.pid }), { getppid: 1234n, tid: process.pid });
  // User space writes and deletes too; a task with nothing stored reads as undefined.
  map.setFor({ pid: process.pid }, { getppid: 7n, tid: 1 });
  assert.equal(map.getFor({ pid: process.pid })?.getppid, 7n);
  assert.equal(map.deleteFor({ pid: process.pid }), true);
  assert.equal(map.getFor({ pid: process.pid }), undefined);
  assert.equal(map.getFor({ pid: 1 }), undefined);
  assert.throws(() => [...map.keys()], (e: unknown) => e instanceof UsageError && /cannot be walked.*getFor/.test(e.message));
  assert.throws(() => map.getFor("me" as never), (e: unknown) => e instanceof UsageError && /keyed by \{ pid \} or a pidfd/.test(e.message));
});

test("sk storage from cgroup_skb/egress: bytes and packets per socket, read back with the dgram socket itself", async () => {
  const spec = await compile({
    name: "sk-storage.bpf.c",
    text: `${HEADERS}
struct traffic { __u64 packets, bytes; };
struct { __uint(type, BPF_MAP_TYPE_SK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, struct traffic); } per_sock SEC(".maps");
SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb) {
    struct bpf_sock *sk = skb->sk;
    if (!sk) return 1;
    sk = bpf_sk_fullsock(sk);
    if (!sk) return 1;
    struct traffic *t = bpf_sk_storage_get(&per_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (t) { __sync_fetch_and_add(&t->packets, 1); __sync_fetch_and_add(&t->bytes, skb->len); }
    return 1;
}`,
  });
  await using coll = Collection.load(spec.bytes);
  const map = coll.map<number, { packets: bigint; bytes: bigint }>("per_sock");
  const rx = createSocket("udp4");
  const tx = createSocket("udp4");
  let got = 0;
  rx.on("message", () => got++);
  await new Promise<void>((resolve) => rx.bind(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => tx.bind(0, "127.0.0.1", resolve));
  try {
    using link = coll.program("count_egress").attachTo({ hook: "cgroup", path: ownCgroup() });
    assert.match(link.target, /egress/);
    const N = 25;
    const size = 40;
    for (let i = 0; i < N; i++) {
      await new Promise<void>((resolve, reject) => tx.send(Buffer.alloc(size, 1), rx.address().port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
    }
    assert.ok(await eventually(() => got === N), `received ${got} of ${N}`);
    // IPv4 20 + UDP 8 + payload, per datagram (cgroup_skb sees the network header on).
    assert.deepEqual(map.getFor(tx), { packets: BigInt(N), bytes: BigInt(N * (20 + 8 + size)) });
    assert.equal(map.getFor(rx), undefined, "the receiving socket sent nothing");
    const fd = (tx as unknown as { _handle: { fd: number } })._handle.fd;
    assert.deepEqual(map.getFor(fd), map.getFor(tx), "a socket fd is the same key");
  } finally {
    rx.close();
    tx.close();
  }
});

test("cgrp storage from tp_btf/cgroup_mkdir: the new cgroup's level, read back by its directory", async () => {
  const spec = await compile({
    name: "cgrp-storage.bpf.c",
    text: `${HEADERS}
struct seen { __u32 level; __u32 mkdirs; __u64 id; };
struct { __uint(type, BPF_MAP_TYPE_CGRP_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, struct seen); } per_cgroup SEC(".maps");
SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(on_mkdir, struct cgroup *cgrp, const char *path) {
    struct seen *s = bpf_cgrp_storage_get(&per_cgroup, cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (s) { s->level = cgrp->level; s->mkdirs++; s->id = cgrp->kn->id; }
    return 0;
}`,
  });
  await using coll = Collection.load(spec.bytes);
  const map = coll.map<number, { level: number; mkdirs: number; id: bigint }>("per_cgroup");
  const parent = join(cgroup2Root(), `tsbpf-cgrp-${tag}`);
  const child = join(parent, "child");
  try {
    {
      using _link = coll.program("on_mkdir").attach();
      mkdirSync(parent);
      mkdirSync(child);
    }
    const ino = (p: string): bigint => BigInt(sh(`stat -c %i ${p}`).trim());
    assert.deepEqual(map.getFor({ path: parent }), { level: 1, mkdirs: 1, id: ino(parent) });
    assert.deepEqual(map.getFor({ path: child }), { level: 2, mkdirs: 1, id: ino(child) });
    assert.equal(map.getFor({ path: cgroup2Root() }), undefined, "made before the program ran");
  } finally {
    for (const d of [child, parent]) {
      try {
        rmdirSync(d);
      } catch {
        // not made
      }
    }
  }
});

test("inode storage: created where the BPF LSM is active, else a NotSupportedError that says so", async () => {
  const lsms = activeLsms();
  assert.throws(
    () => checkInodeStorage("files", ["lockdown", "capability", "yama"]),
    (e: unknown) => e instanceof NotSupportedError && e.feature === "the BPF LSM" && /lockdown,capability,yama.*no "bpf".*lsm=\.\.\.,bpf/.test(e.message),
  );
  const spec = await compile({
    name: "inode-storage.bpf.c",
    text: `${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_INODE_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, __u64); } per_inode SEC(".maps");`,
  });
  if (lsms.includes("bpf")) {
    await using coll = Collection.load(spec.bytes);
    const map = coll.map<number, bigint>("per_inode");
    map.setFor({ path: "/proc/self/exe" }, 42n);
    assert.equal(map.getFor({ path: "/proc/self/exe" }), 42n);
  } else {
    assert.throws(() => Collection.load(spec.bytes), (e: unknown) => e instanceof NotSupportedError && /inode storage needs the BPF LSM/.test(e.message));
  }
});

test("local storage rules: max_entries 0, an int key and BTF, said before the kernel's EINVAL", () => {
  const def = { type: MapType.TASK_STORAGE, keySize: 4, valueSize: 8, maxEntries: 0, name: "t" };
  assert.throws(() => BpfMap.create(def), (e: unknown) => e instanceof UsageError && /requires the key and value BTF/.test(e.message));
  assert.throws(() => BpfMap.create({ ...def, maxEntries: 16 }), (e: unknown) => e instanceof UsageError && /max_entries must be 0/.test(e.message));
  assert.throws(() => BpfMap.create({ ...def, keySize: 8 }), (e: unknown) => e instanceof UsageError && /key is an int/.test(e.message));
  using hash = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 1 });
  assert.throws(() => hash.getFor(0), (e: unknown) => e instanceof UsageError && /for local storage maps/.test(e.message));
});

void run;
void sh;
