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
import { attachTc } from "../../src/link/tc.ts";
import { attachXdp } from "../../src/link/xdp.ts";
import { ifindexOf } from "../../src/link/netdev.ts";
import { openPacketEvents } from "../../src/events/channel.ts";
import { PerfReader, splitPacketRecord } from "../../src/events/perf.ts";
import { AttachType } from "../../src/internal/sys/constants.ts";
import { BPF } from "../../src/bcc/index.ts";
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

// ---- the network: A (here) <-> B (namespace NS), C <-> D (both here) ----
//   NS sends to HOST through B -> A, and to DIP with D's MAC (a static route and neighbour).
//   XDP on A may redirect what arrives out of C, so that D receives it: D's end of a
//   veth takes frames redirected into its peer only with NAPI on, which an XDP program
//   on D turns on (there is no ethtool here for `gro on`).

const NS = `tsbpfpm${tag}`;
const A = `tpm${tag}a`;
const B = `tpm${tag}b`;
const C = `tpm${tag}c`;
const D = `tpm${tag}d`;
const NET = `10.214.${tag % 250}`;
const HOST = `${NET}.1`;
const PEER = `${NET}.2`;
const DIP = `10.215.${tag % 250}.1`;
const EIP = `10.215.${tag % 250}.2`; // nobody: C's XDP program answers for it
const N = 20;
const mac = (dev: string, ns?: string): string => sh(`${ns ? `ip -n ${ns}` : "ip"} -o link show dev ${dev}`).match(/link\/ether ([0-9a-f:]+)/)![1]!;
let netUp = false;

function netUp_(): void {
  if (netUp) return;
  try {
    execFileSync("ip", ["-V"]);
  } catch {
    execFileSync("apt-get", ["install", "-y", "iproute2"], { stdio: "ignore" });
  }
  sh(`ip netns add ${NS}`);
  sh(`ip link add ${A} type veth peer name ${B} netns ${NS}`);
  sh(`ip link add ${C} type veth peer name ${D}`);
  for (const dev of [A, C, D]) sh(`sysctl -qw net.ipv6.conf.${dev}.disable_ipv6=1 net.ipv4.conf.${dev}.rp_filter=0`);
  sh(`ip netns exec ${NS} sysctl -qw net.ipv6.conf.${B}.disable_ipv6=1`);
  sh(`ip addr add ${HOST}/24 dev ${A} && ip link set ${A} up && ip link set ${C} up`);
  sh(`ip addr add ${DIP}/32 dev ${D} && ip link set ${D} up`);
  sh(`ip -n ${NS} addr add ${PEER}/24 dev ${B} && ip -n ${NS} link set ${B} up && ip -n ${NS} link set lo up`);
  // Static neighbours: XDP programs would otherwise see (and redirect) the ARP exchange.
  sh(`ip neigh replace ${PEER} lladdr ${mac(B, NS)} dev ${A} nud permanent`);
  sh(`ip -n ${NS} neigh replace ${HOST} lladdr ${mac(A)} dev ${B} nud permanent`);
  sh(`ip -n ${NS} route add ${DIP}/32 dev ${B} && ip -n ${NS} neigh replace ${DIP} lladdr ${mac(D)} dev ${B} nud permanent`);
  sh(`ip route add ${EIP}/32 dev ${D} && ip neigh replace ${EIP} lladdr ${mac(C)} dev ${D} nud permanent`);
  netUp = true;
}

before(() => netUp_());

after(() => {
  sh(`ip link del ${A} 2>/dev/null; ip link del ${C} 2>/dev/null; ip netns del ${NS} 2>/dev/null; true`);
});

/** N UDP datagrams from inside the namespace to ip:port, payload i = `payload(i)`. */
async function sendFromNamespace(ip: string, port: number, count = N, payload = "x".repeat(32)): Promise<void> {
  const script = `const s=require("dgram").createSocket("udp4");let i=0;
    const next=()=>i<${count}?s.send(Buffer.from(${JSON.stringify(payload)}.replace("#", String(i++).padStart(3,"0"))),${port},"${ip}",next):s.close();next();`;
  await run("ip", ["netns", "exec", NS, process.execPath, "-e", script], { timeout: 20_000 });
}

/** A UDP receiver on ip: the datagrams it got. */
async function receiver(ip: string, port = 0): Promise<{ port: number; got: Buffer[]; close: () => void; socket: ReturnType<typeof createSocket> }> {
  const s = createSocket("udp4");
  const got: Buffer[] = [];
  s.on("message", (m) => got.push(m));
  await new Promise<void>((resolve) => s.bind(port, ip, resolve));
  return { port: s.address().port, got, close: () => s.close(), socket: s };
}

const sum = (v: bigint[] | undefined): bigint => (v ?? []).reduce((a, b) => a + b, 0n);

// ---- packet data out ----

const CAPTURE = `${HEADERS}
#include <bpf/bpf_endian.h>
struct meta { __u32 len; __u32 wire_len; __u16 dport; __u16 from; };
const struct meta *unused_meta __attribute__((unused));
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } packets SEC(".maps");
const volatile __u16 port = 0;
const volatile __u32 target_ifindex = 0;
#define SNAP 96
SEC("tc")
int tc_capture(struct __sk_buff *skb) {
    struct iphdr ip;
    struct udphdr udp;
    if (skb->protocol != bpf_htons(0x0800)) return 0; /* TC_ACT_OK */
    if (bpf_skb_load_bytes(skb, 14, &ip, sizeof ip) || ip.protocol != 17 || ip.ihl != 5) return 0;
    if (bpf_skb_load_bytes(skb, 34, &udp, sizeof udp) || udp.dest != bpf_htons(port)) return 0;
    struct meta m = { .wire_len = skb->len, .dport = port, .from = 1 };
    m.len = skb->len < SNAP ? skb->len : SNAP;
    bpf_perf_event_output(skb, &packets, BPF_F_CURRENT_CPU | ((__u64)m.len << 32), &m, sizeof m);
    return 0;
}
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(skb_capture, struct sk_buff *skb) {
    if (skb->dev->ifindex != target_ifindex || skb->protocol != bpf_htons(0x0800)) return 0;
    struct meta m = { .wire_len = skb->len, .dport = port, .from = 2 };
    m.len = skb->len < SNAP ? skb->len : SNAP;
    bpf_skb_output(skb, &packets, BPF_F_CURRENT_CPU | ((__u64)m.len << 32), &m, sizeof m);
    return 0;
}`;

interface Meta {
  len: number;
  wire_len: number;
  dport: number;
  from: number;
}

test("packet bytes out of a perf buffer: tc's bpf_perf_event_output(skb) and tp_btf's bpf_skb_output, split into the struct and a view of the packet", async () => {
  const spec = await compile({ name: "capture.bpf.c", text: CAPTURE });
  const port = 41000 + (tag % 1000);
  await using coll = Collection.load(spec.bytes, { constants: { port, target_ifindex: ifindexOf(A) } });
  const rx = await receiver(HOST, port);
  using reader = openPacketEvents<Meta>(coll, "packets", { decode: coll.type("meta") });
  assert.ok(reader instanceof PerfReader);
  const seen: { meta: Meta; bytes: Buffer; isView: boolean }[] = [];
  reader.onPacket(
    (meta, packet) => seen.push({ meta, bytes: Buffer.from(packet), isView: packet.buffer.byteLength > packet.byteLength }),
    { length: (m) => m.len },
  );
  const payload = "tsbpf packet ### ".padEnd(40, "-");
  try {
    using _tc = attachTc(coll.program("tc_capture"), { interface: A, direction: "ingress" });
    using _tp = coll.program("skb_capture").attach();
    await sendFromNamespace(HOST, port, N, payload.replace("###", "#"));
    assert.ok(await eventually(() => rx.got.length === N && seen.filter((s) => s.meta.from === 2).length >= N), `received ${rx.got.length}, captured ${seen.length}`);
    await reader.poll(100);
  } finally {
    rx.close();
  }
  const udpLen = 8 + 40;
  const fromTc = seen.filter((s) => s.meta.from === 1);
  assert.equal(fromTc.length, N, "one record per datagram at tc ingress");
  fromTc.forEach((s, i) => {
    // tc sees the frame from its Ethernet header: 14 + 20 + 8 + 40 bytes, all under the snap length.
    assert.deepEqual(s.meta, { len: 14 + 20 + udpLen, wire_len: 14 + 20 + udpLen, dport: port, from: 1 });
    assert.equal(s.bytes.length, s.meta.len, "trimmed to the struct's length, no padding");
    assert.equal(s.bytes.subarray(0, 6).toString("hex"), mac(A).replace(/:/g, ""), "destination MAC");
    assert.equal(s.bytes.readUInt16BE(14 + 20 + 2), port);
    assert.equal(s.bytes.subarray(14 + 20 + 8).toString(), payload.replace("###", String(i).padStart(3, "0")));
    assert.ok(s.isView, "a view into the ring, not a copy");
  });
  // netif_receive_skb: the Ethernet header is already pulled, the packet starts at IP; other
  // IPv4 packets on A (none expected) would be there too: take the UDP ones to our port.
  const fromTp = seen.filter((s) => s.meta.from === 2 && s.bytes[9] === 17 && s.bytes.readUInt16BE(22) === port);
  assert.equal(fromTp.length, N);
  fromTp.forEach((s, i) => {
    assert.equal(s.meta.len, 20 + udpLen);
    assert.equal(s.bytes.subarray(20 + 8).toString(), payload.replace("###", String(i).padStart(3, "0")));
  });
});

test("splitPacketRecord without a length: the bytes after the struct up to the record's end, padding included", () => {
  // What a 4-byte struct and 5 packet bytes look like in a raw sample: 4 + 4 + 5 = 13, padded to 16 - 4 = 12 + ... bytes.
  const bytes = new Uint8Array([1, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x42, 0, 0, 0]);
  const codec = { size: 4, decode: (v: DataView, o = 0) => v.getUint32(o, true), encode: () => {} };
  const r = splitPacketRecord(codec, new DataView(bytes.buffer), 0, bytes.length);
  assert.equal(r.event, 1);
  assert.deepEqual([...r.packet], [0xde, 0xad, 0xbe, 0xef, 0x42, 0, 0, 0]);
  assert.equal(r.packet.buffer, bytes.buffer, "a view");
  assert.deepEqual([...splitPacketRecord(codec, new DataView(bytes.buffer), 0, bytes.length, () => 5).packet], [0xde, 0xad, 0xbe, 0xef, 0x42]);
  assert.throws(() => splitPacketRecord(codec, new DataView(bytes.buffer), 0, 3), RangeError);
});

// ---- redirect maps ----

const REDIRECT = `${HEADERS}
#include <bpf/bpf_endian.h>
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 4); __type(key, __u32); __type(value, struct bpf_devmap_val); } tx_ports SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_CPUMAP); __uint(max_entries, 2); __type(key, __u32); __type(value, struct bpf_cpumap_val); } cpus SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_XSKMAP); __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); } xsks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
const volatile __u16 port = 0;
enum { SEEN = 0, AFTER_DEVMAP = 1, ON_CPUMAP = 2, XSK_PASSED = 3, ECHOED = 4 };

static __always_inline void count(__u32 what) {
    __u64 *c = bpf_map_lookup_elem(&counts, &what);
    if (c) (*c)++;
}

/* The UDP header of an IPv4 datagram to our port, or NULL. */
static __always_inline struct udphdr *ours(struct xdp_md *ctx, struct ethhdr **eth_out, struct iphdr **ip_out) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    struct udphdr *udp = (void *)ip + sizeof(*ip);
    if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(0x0800) || ip->protocol != 17 || ip->ihl != 5) return 0;
    if (udp->dest != bpf_htons(port)) return 0;
    /* A veth sender leaves the UDP checksum partial (offloaded); a frame that leaves XDP
       as an xdp_frame (redirected, XDP_TX) is checked in full where it lands. In IPv4, 0 is "none". */
    udp->check = 0;
    *eth_out = eth;
    *ip_out = ip;
    return udp;
}

SEC("xdp")
int to_devmap(struct xdp_md *ctx) {
    struct ethhdr *eth; struct iphdr *ip;
    if (!ours(ctx, &eth, &ip)) return XDP_PASS;
    count(SEEN);
    return bpf_redirect_map(&tx_ports, 0, 0);
}

SEC("xdp/devmap")
int after_devmap(struct xdp_md *ctx) { count(AFTER_DEVMAP); return XDP_PASS; }

SEC("xdp")
int to_cpumap(struct xdp_md *ctx) {
    struct ethhdr *eth; struct iphdr *ip;
    if (!ours(ctx, &eth, &ip)) return XDP_PASS;
    count(SEEN);
    return bpf_redirect_map(&cpus, 0, 0);
}

SEC("xdp/cpumap")
int on_cpumap(struct xdp_md *ctx) { count(ON_CPUMAP); return XDP_PASS; }

SEC("xdp")
int to_xsk(struct xdp_md *ctx) {
    struct ethhdr *eth; struct iphdr *ip;
    if (!ours(ctx, &eth, &ip)) return XDP_PASS;
    count(SEEN);
    /* No socket at this queue: the lower bits of the flags are the action instead. */
    int act = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
    if (act == XDP_PASS) count(XSK_PASSED);
    return act;
}

/* XDP_TX: answers a datagram by swapping MACs, addresses and ports (the checksums stay right). */
SEC("xdp")
int echo(struct xdp_md *ctx) {
    struct ethhdr *eth; struct iphdr *ip;
    struct udphdr *udp = ours(ctx, &eth, &ip);
    if (!udp) return XDP_PASS;
    unsigned char m[6];
    __builtin_memcpy(m, eth->h_dest, 6);
    __builtin_memcpy(eth->h_dest, eth->h_source, 6);
    __builtin_memcpy(eth->h_source, m, 6);
    __be32 a = ip->saddr; ip->saddr = ip->daddr; ip->daddr = a;
    __be16 p = udp->source; udp->source = udp->dest; udp->dest = p;
    count(ECHOED);
    return XDP_TX;
}

SEC("xdp")
int pass(struct xdp_md *ctx) { return XDP_PASS; }
`;

async function redirectObject(port: number): Promise<Collection> {
  const spec = await compile({ name: "redirect.bpf.c", text: REDIRECT });
  return Collection.load(spec.bytes, { constants: { port } });
}

const counted = (coll: Collection, what: number): bigint => sum(coll.map<number, bigint[]>("counts").lookup(what));

test("XDP_REDIRECT through a devmap, veth to veth: every datagram leaves by C and is received on D, after the devmap's own program", async () => {
  const port = 42000 + (tag % 1000);
  await using coll = await redirectObject(port);
  const devmap = coll.map("tx_ports");
  assert.equal(devmap.type, MapType.DEVMAP);
  const prog = coll.program("after_devmap");
  devmap.update(0, { ifindex: ifindexOf(C), prog });
  assert.deepEqual(devmap.lookup(0), { ifindex: ifindexOf(C), progId: prog.info().id }, "struct bpf_devmap_val: the kernel gives the program's id back");
  const rx = await receiver(DIP, port);
  try {
    using _napi = attachXdp(coll.program("pass"), { interface: D });
    using link = attachXdp(coll.program("to_devmap"), { interface: A });
    assert.equal(link.mode, "native");
    await sendFromNamespace(DIP, port, N, "devmap #");
    assert.ok(await eventually(() => rx.got.length === N), `received ${rx.got.length} of ${N} on ${D}`);
    assert.deepEqual(rx.got.map(String), Array.from({ length: N }, (_, i) => `devmap ${String(i).padStart(3, "0")}`));
    assert.equal(counted(coll, 0), BigInt(N));
    assert.equal(counted(coll, 1), BigInt(N), "the devmap program ran on each");
  } finally {
    rx.close();
  }
  assert.equal(devmap.delete(0), true);
  assert.equal(devmap.lookup(0), undefined);
});

test("XDP_REDIRECT through a cpumap: the cpumap program sees every datagram on CPU 0 and the stack delivers them", async () => {
  const port = 43000 + (tag % 1000);
  await using coll = await redirectObject(port);
  const cpus = coll.map("cpus");
  assert.equal(cpus.type, MapType.CPUMAP);
  const prog = coll.program("on_cpumap");
  cpus.update(0, { qsize: 192, prog });
  assert.deepEqual(cpus.lookup(0), { qsize: 192, progId: prog.info().id });
  const rx = await receiver(HOST, port);
  try {
    using _link = attachXdp(coll.program("to_cpumap"), { interface: A });
    await sendFromNamespace(HOST, port, N, "cpumap #");
    assert.ok(await eventually(() => rx.got.length === N), `received ${rx.got.length} of ${N}`);
    assert.equal(counted(coll, 0), BigInt(N));
    const onCpumap = coll.map<number, bigint[]>("counts").lookup(2)!;
    assert.equal(onCpumap[0], BigInt(N), "all on CPU 0, the cpumap's entry");
  } finally {
    rx.close();
  }
  // A bad program fd fails the entry's allocation, which the kernel reports as ENOMEM (seen on 6.18).
  assert.throws(() => cpus.update(1, { qsize: 192, prog: 12345678 }), /ENOMEM|EBADF|EINVAL/);
});

test("an xskmap at the map level: bpf_redirect_map(&xsks, queue, XDP_PASS) with no socket passes every datagram; user space cannot read it", async () => {
  const port = 44000 + (tag % 1000);
  await using coll = await redirectObject(port);
  const xsks = coll.map("xsks");
  assert.equal(xsks.type, MapType.XSKMAP);
  const rx = await receiver(HOST, port);
  try {
    using _link = attachXdp(coll.program("to_xsk"), { interface: A });
    await sendFromNamespace(HOST, port, N, "xsk #");
    assert.ok(await eventually(() => rx.got.length === N), `received ${rx.got.length} of ${N}`);
    assert.equal(counted(coll, 3), BigInt(N));
    // Only AF_XDP sockets go in (a UDP socket's fd is refused), and nothing comes out to user space.
    const udpFd = (rx.socket as unknown as { _handle: { fd: number } })._handle.fd;
    assert.throws(() => xsks.update(0, udpFd), /EOPNOTSUPP|ENOTSUPP/);
  } finally {
    rx.close();
  }
  assert.throws(() => xsks.lookup(0), /EOPNOTSUPP|ENOTSUPP|E524/);
});

test("XDP_TX on C echoes each datagram D sends back into D, where the sender's socket receives it", async () => {
  const port = 45000 + (tag % 1000);
  await using coll = await redirectObject(port);
  const s = await receiver(DIP);
  try {
    using _napi = attachXdp(coll.program("pass"), { interface: D });
    using _link = attachXdp(coll.program("echo"), { interface: C });
    for (let i = 0; i < N; i++) {
      await new Promise<void>((resolve, reject) => s.socket.send(`echo ${i}`, port, EIP, (e) => (e ? reject(e) : resolve())));
    }
    assert.ok(await eventually(() => s.got.length === N), `echoed ${s.got.length} of ${N}`);
    assert.deepEqual(s.got.map(String).sort(), Array.from({ length: N }, (_, i) => `echo ${i}`).sort());
    assert.equal(counted(coll, 4), BigInt(N));
  } finally {
    s.close();
  }
});

// ---- BCC's dialect and facade ----

test("BCC: an XDP function redirects through BPF_DEVMAP (.redirect_map), set from the facade's table, veth to veth", async () => {
  const port = 46000 + (tag % 1000);
  using b = await BPF.load({
    name: "devmap-bcc.c",
    text: `
BPF_DEVMAP(tx_port, 1);
BPF_ARRAY(redirected, u64, 1);
int xdp_redirect(struct xdp_md *ctx) {
    /* As in the devmap test above: no checksum rather than the veth sender's partial one. */
    u8 hdr[14 + 20];
    if (bpf_xdp_load_bytes(ctx, 0, hdr, sizeof(hdr)) == 0 && hdr[12] == 0x08 && hdr[13] == 0 && hdr[14] == 0x45 && hdr[14 + 9] == 17) {
        u16 none = 0;
        bpf_xdp_store_bytes(ctx, 14 + 20 + 6, &none, sizeof(none));
    }
    int k = 0;
    u64 *n = redirected.lookup(&k);
    if (n) __sync_fetch_and_add(n, 1);
    return tx_port.redirect_map(0, 0);
}
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }
`,
  });
  const table = b.get("tx_port");
  assert.equal(table.kind, "devmap");
  table.set(0, ifindexOf(C));
  assert.equal(table.get(0), ifindexOf(C));
  const rx = await receiver(DIP, port);
  try {
    using _napi = attachXdp(b.loadFunc("xdp_pass", BPF.XDP), { interface: D });
    BPF.attachXdp(A, b.loadFunc("xdp_redirect", BPF.XDP));
    try {
      // Everything arriving on A goes out of C: only this test's datagrams do (static neighbours, no IPv6).
      await sendFromNamespace(DIP, port, N, "bcc devmap #");
      assert.ok(await eventually(() => rx.got.length === N), `received ${rx.got.length} of ${N} on ${D}`);
    } finally {
      BPF.removeXdp(A);
    }
    assert.equal(rx.got.length, N);
    assert.equal(b.get("redirected").get(0), BigInt(N));
  } finally {
    rx.close();
  }
});

test("BCC: BPF_SK_STORAGE counted from a cgroup_skb function (.sk_storage_get), read back per socket from the facade", async () => {
  using b = await BPF.load({
    name: "sk-storage-bcc.c",
    text: `
struct traffic { u64 packets; u64 bytes; };
BPF_SK_STORAGE(per_sock, struct traffic);
int count_egress(struct __sk_buff *skb) {
    struct bpf_sock *sk = skb->sk;
    if (!sk) return 1;
    sk = bpf_sk_fullsock(sk);
    if (!sk) return 1;
    struct traffic *t = per_sock.sk_storage_get(sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (t) { __sync_fetch_and_add(&t->packets, 1); __sync_fetch_and_add(&t->bytes, skb->len); }
    return 1;
}
`,
  });
  const table = b.get("per_sock");
  assert.equal(table.kind, "sk_storage");
  const rx = createSocket("udp4");
  const tx = createSocket("udp4");
  await new Promise<void>((resolve) => rx.bind(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => tx.bind(0, "127.0.0.1", resolve));
  let got = 0;
  rx.on("message", () => got++);
  try {
    b.attachCgroup({ fnName: "count_egress", path: ownCgroup(), attachType: AttachType.CGROUP_INET_EGRESS, progType: BPF.CGROUP_SKB });
    const sizes = [10, 20, 30, 40, 50];
    for (const size of sizes) {
      await new Promise<void>((resolve, reject) => tx.send(Buffer.alloc(size), rx.address().port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
    }
    assert.ok(await eventually(() => got === sizes.length), `received ${got}`);
    assert.deepEqual(table.getFor(tx), { packets: BigInt(sizes.length), bytes: BigInt(sizes.reduce((a, n) => a + 28 + n, 0)) });
    assert.equal(table.getFor(rx), undefined);
    table.setFor(rx, { packets: 1n, bytes: 2n });
    assert.deepEqual(table.getFor(rx), { packets: 1n, bytes: 2n });
  } finally {
    rx.close();
    tx.close();
  }
});
