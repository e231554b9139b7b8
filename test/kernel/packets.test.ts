// Packet programs against real traffic: a veth pair whose far end lives in a
// network namespace the test makes (10.213.X.0/24), and loopback. Every send is
// bounded (N datagrams); every wait is bounded in time; nothing leaves the host.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { createServer, get } from "node:http";
import { connect, createServer as createTcpServer, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { Collection } from "../../src/collection.ts";
import { compile } from "../../src/compile/index.ts";
import { AttachType } from "../../src/internal/sys/constants.ts";
import { attachXdp, xdpQuery } from "../../src/link/xdp.ts";
import { attachTc, tcFilterCount } from "../../src/link/tc.ts";
import { openRawSocket } from "../../src/link/socket.ts";
import { cgroup2Root } from "../../src/link/cgroup.ts";
import { attachSockmap } from "../../src/link/sockmap.ts";
import { httpLine } from "../../src/cli/sockfilter.ts";
import { toolObject } from "../../src/cli/tool.ts";
import { BPF } from "../../src/bcc/index.ts";
import { HEADERS, linksOfProgram } from "../support/kernel.ts";
import { root, runTool, tempDir, tsbpf } from "../support/tools.ts";

const run = promisify(execFile);
const sh = (cmd: string): string => execFileSync("sh", ["-c", cmd], { encoding: "utf8" });
const tag = process.pid % 10000;
const NS = `tsbpfpk${tag}`;
const A = `tpk${tag}a`; // host end
const B = `tpk${tag}b`; // namespace end
const NET = `10.213.${tag % 250}`;
const HOST = `${NET}.1`;
const PEER = `${NET}.2`;
const N = 20;
const tmp = tempDir("tsbpf-packets-");

const mac = (dev: string, ns?: string): string => sh(`${ns ? `ip -n ${ns}` : "ip"} -o link show dev ${dev}`).match(/link\/ether ([0-9a-f:]+)/)![1]!;

before(() => {
  try {
    execFileSync("ip", ["-V"]);
  } catch {
    execFileSync("apt-get", ["install", "-y", "iproute2"], { stdio: "ignore" });
  }
  sh(`ip netns add ${NS}`);
  sh(`ip link add ${A} type veth peer name ${B} netns ${NS}`);
  sh(`sysctl -qw net.ipv6.conf.${A}.disable_ipv6=1; ip netns exec ${NS} sysctl -qw net.ipv6.conf.${B}.disable_ipv6=1`);
  sh(`ip addr add ${HOST}/24 dev ${A} && ip link set ${A} up`);
  sh(`ip -n ${NS} addr add ${PEER}/24 dev ${B} && ip -n ${NS} link set ${B} up && ip -n ${NS} link set lo up`);
  // Static neighbours: a dropping XDP program would otherwise eat the ARP exchange.
  sh(`ip neigh replace ${PEER} lladdr ${mac(B, NS)} dev ${A} nud permanent`);
  sh(`ip -n ${NS} neigh replace ${HOST} lladdr ${mac(A)} dev ${B} nud permanent`);
});

after(() => {
  try {
    sh(`ip link del ${A} 2>/dev/null; ip netns del ${NS}`);
  } finally {
    tmp[Symbol.dispose]();
  }
});

/** N UDP datagrams of `size` bytes from inside the namespace to HOST:port, one after another. */
async function sendFromNamespace(port: number, count = N, size = 32): Promise<void> {
  const script = `const s=require("dgram").createSocket("udp4");let i=0;const b=Buffer.alloc(${size},120);
    const next=()=>i++<${count}?s.send(b,${port},"${HOST}",next):s.close();next();`;
  await run("ip", ["netns", "exec", NS, process.execPath, "-e", script], { timeout: 20_000 });
}

/** N UDP datagrams from this process to PEER:port. */
async function sendToNamespace(port: number, count: number, size: number): Promise<void> {
  const s = createSocket("udp4");
  const b = Buffer.alloc(size, 121);
  for (let i = 0; i < count; i++) await new Promise<void>((resolve, reject) => s.send(b, port, PEER, (e) => (e ? reject(e) : resolve())));
  s.close();
}

/** Polls `f` every 50 ms until it returns true or `ms` pass; returns its last answer. */
async function eventually(f: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (f()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sum = (v: bigint[] | undefined): bigint => (v ?? []).reduce((a, b) => a + b, 0n);
const xdpShown = (): boolean => /\bxdp/.test(sh(`ip link show dev ${A}`).split("\n")[0]!);
const tcFilters = (): string => sh(`tc filter show dev ${A} ingress; tc filter show dev ${A} egress`);

/** A UDP receiver on HOST: how many datagrams it got. */
async function receiver(): Promise<{ port: number; count: () => number; close: () => void }> {
  const s = createSocket("udp4");
  let n = 0;
  s.on("message", () => n++);
  await new Promise<void>((resolve) => s.bind(0, HOST, resolve));
  return { port: s.address().port, count: () => n, close: () => s.close() };
}

test("XDP_DROP on a veth in native mode by link: the drop count equals the datagrams sent, and none arrives", async () => {
  await using coll = Collection.load((await toolObject("xdpdrop")).bytes, { constants: { pass_only: false } });
  const rx = await receiver();
  try {
    {
      using link = attachXdp(coll.program("xdp_drop_count"), { interface: A });
      assert.equal(link.mode, "native");
      assert.equal(link.method, "link");
      assert.ok(xdpShown(), "ip link shows the program");
      await sendFromNamespace(rx.port);
      const counts = coll.map<number, bigint[]>("dropcnt");
      await eventually(() => sum(counts.lookup(17)) >= BigInt(N));
      assert.equal(sum(counts.lookup(17)), BigInt(N));
      assert.equal(rx.count(), 0);
    }
    assert.equal(xdpShown(), false, "closing the link removed the program");
  } finally {
    rx.close();
  }
});

test("XDP_PASS in generic mode lets every datagram through, and counts them", async () => {
  await using coll = Collection.load((await toolObject("xdpdrop")).bytes, { constants: { pass_only: true } });
  const rx = await receiver();
  try {
    using link = attachXdp(coll.program("xdp_drop_count"), { interface: A, mode: "generic" });
    assert.equal(link.mode, "generic");
    await sendFromNamespace(rx.port);
    assert.ok(await eventually(() => rx.count() >= N), `received ${rx.count()} of ${N}`);
    assert.equal(rx.count(), N);
    assert.equal(sum(coll.map<number, bigint[]>("dropcnt").lookup(17)), BigInt(N));
  } finally {
    rx.close();
  }
});

test("XDP through netlink: attached, refused a second time with the command that removes it, removed on close", async () => {
  await using coll = Collection.load((await toolObject("xdpdrop")).bytes, { constants: { pass_only: true } });
  const prog = coll.program("xdp_drop_count");
  {
    using link = attachXdp(prog, { interface: A, method: "netlink" });
    assert.equal(link.method, "netlink");
    assert.equal(link.fd, undefined);
    assert.equal(xdpQuery(A).progId, prog.info().id);
    assert.throws(() => attachXdp(prog, { interface: A, method: "netlink" }), /already has an XDP program.*ip link set dev .* off/);
  }
  assert.deepEqual(xdpQuery(A), { attached: "none", progId: 0 });
});

interface FlowKey {
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
  proto: number;
}
const ipOf = (n: number): string => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join(".");

for (const method of ["tcx", "netlink"] as const) {
  test(`tc egress by ${method} counts bytes and packets per flow`, async () => {
    await using coll = Collection.load((await toolObject("tcdump")).bytes);
    const port = 40000 + (tag % 1000);
    const size = 100;
    {
      using link = attachTc(coll.program("tc_count"), { interface: A, direction: "egress", method });
      assert.equal(link.method, method);
      if (method === "netlink") assert.match(tcFilters(), /tc_count.*direct-action/);
      await sendToNamespace(port, N, size);
      await sendToNamespace(port + 1, 3, 10);
      const flows = [...coll.map<FlowKey, { bytes: bigint; packets: bigint }>("flows").entries()].filter(
        ([k]) => ipOf(k.saddr) === HOST && ipOf(k.daddr) === PEER && k.proto === 17,
      );
      const byPort = new Map(flows.map(([k, v]) => [k.dport, v]));
      // Ethernet 14 + IPv4 20 + UDP 8 + payload, per datagram.
      assert.deepEqual(byPort.get(port), { packets: BigInt(N), bytes: BigInt(N * (14 + 20 + 8 + size)) });
      assert.deepEqual(byPort.get(port + 1), { packets: 3n, bytes: BigInt(3 * (14 + 20 + 8 + 10)) });
    }
    assert.equal(tcFilterCount(A, "egress"), 0);
    assert.doesNotMatch(sh(`tc qdisc show dev ${A}`), /clsact/, "the qdisc this attach made is gone");
  });
}

test("a socket filter on a raw socket of lo keeps only HTTP packets, and sees the request line", async () => {
  await using coll = Collection.load((await toolObject("sockfilter")).bytes);
  using sock = openRawSocket(coll.program("http_filter"), "lo");
  const path = `/tsbpf-sockfilter-${process.pid}`;
  const server = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const lines: string[] = [];
  const done = new AbortController();
  const timer = setTimeout(() => done.abort(), 10_000);
  try {
    const reading = (async () => {
      for await (const frame of sock.packets(done.signal)) {
        const h = httpLine(frame);
        lines.push(h ? h.line : `(not IPv4 TCP: ${frame.length} bytes)`);
        if (h?.line === `GET ${path} HTTP/1.1`) done.abort();
      }
    })();
    await new Promise<void>((resolve, reject) => get(`http://127.0.0.1:${port}${path}`, (res) => res.resume().on("end", resolve)).on("error", reject));
    await reading;
  } finally {
    clearTimeout(timer);
    server.close();
  }
  assert.ok(lines.includes(`GET ${path} HTTP/1.1`), `request line not seen in ${JSON.stringify(lines)}`);
  // SYNs, ACKs and FINs crossed lo too: the filter dropped them all.
  for (const line of lines) assert.match(line, /^(GET|POST|PUT|DELETE|HEAD|HTTP)/);
});

test("SO_ATTACH_BPF on a Node UDP socket: a filter that keeps nothing starves it until the link closes", async () => {
  const spec = await compile({ name: "drop.bpf.c", text: `${HEADERS}\nSEC("socket") int keep_nothing(struct __sk_buff *skb) { return 0; }` });
  await using coll = Collection.load(spec.bytes);
  const rx = createSocket("udp4");
  let got = 0;
  rx.on("message", () => got++);
  await new Promise<void>((resolve) => rx.bind(0, "127.0.0.1", resolve));
  const send = async (): Promise<void> => {
    const tx = createSocket("udp4");
    await new Promise<void>((resolve, reject) => tx.send("x", rx.address().port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
    tx.close();
  };
  try {
    const fd = (rx as unknown as { _handle: { fd: number } })._handle.fd;
    {
      using link = coll.program("keep_nothing").attachTo({ hook: "socket", fd });
      assert.equal(link.target, `socket:fd ${fd}`);
      for (let i = 0; i < 3; i++) await send();
    }
    await send(); // after SO_DETACH_BPF: delivered
    assert.ok(await eventually(() => got === 1), `got ${got}`);
    assert.equal(got, 1, "the three datagrams sent under the filter never arrived");
  } finally {
    rx.close();
  }
});

test("cgroup/connect4 rewrites one port and refuses another for processes in a test cgroup only", async () => {
  const spec = await compile({
    name: "connect4.bpf.c",
    text: `${HEADERS}
#include <bpf/bpf_endian.h>
const volatile __u16 from_port = 0, to_port = 0, refuse_port = 0;
SEC("cgroup/connect4")
int rewrite_connect(struct bpf_sock_addr *ctx) {
    if (ctx->user_port == bpf_htons(from_port)) { ctx->user_port = bpf_htons(to_port); return 1; }
    return ctx->user_port == bpf_htons(refuse_port) ? 0 : 1;
}`,
  });
  const accepted: Socket[] = [];
  const server = createTcpServer((s) => accepted.push(s.end()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const to = (server.address() as { port: number }).port;
  const from = to === 65535 ? to - 1 : to + 1; // nothing listens there
  await using coll = Collection.load(spec.bytes, { constants: { from_port: from, to_port: to, refuse_port: 1 } });
  const cg = join(cgroup2Root(), `tsbpf-test-${process.pid}`);
  mkdirSync(cg);
  try {
    using link = coll.program("rewrite_connect").attachTo({ hook: "cgroup", path: cg });
    assert.match(link.target, /inet4_connect \(link\)/);
    const client = `const net=require("net");const t=(p)=>new Promise(r=>{const c=net.connect(p,"127.0.0.1");c.on("connect",()=>{c.destroy();r("ok")});c.on("error",e=>r(e.code))});
      (async()=>{console.log(await t(${from}),await t(1))})()`;
    const inCgroup = await run("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec "$0" -e "$1"`, process.execPath, client], { timeout: 20_000 });
    // from -> to (a server listens: ok); port 1 refused by the program (EPERM), not by the stack (ECONNREFUSED).
    assert.equal(inCgroup.stdout.trim(), "ok EPERM");
    assert.equal(accepted.length, 1);
    const outside = await run(process.execPath, ["-e", client], { timeout: 20_000 });
    assert.equal(outside.stdout.trim(), "ECONNREFUSED ECONNREFUSED");
  } finally {
    server.close();
    rmdirSync(cg);
  }
});

test("cgroup/sock_create refuses UDP sockets for processes in a test cgroup only, by link, and counts them", async () => {
  const spec = await compile({
    name: "sock_create.bpf.c",
    text: `${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } refused SEC(".maps");
SEC("cgroup/sock_create")
int no_udp(struct bpf_sock *sk) {
    if (sk->type != 2 /* SOCK_DGRAM */ || sk->protocol != IPPROTO_UDP) return 1;
    __u32 k = 0;
    __u64 *n = bpf_map_lookup_elem(&refused, &k);
    if (n) __sync_fetch_and_add(n, 1);
    return 0;
}`,
  });
  await using coll = Collection.load(spec.bytes);
  const cg = join(cgroup2Root(), `tsbpf-test-sc-${process.pid}`);
  mkdirSync(cg);
  const client = `const s=require("dgram").createSocket("udp4");s.on("error",e=>{console.log(e.code);process.exit(0)});s.bind(0,"127.0.0.1",()=>{console.log("ok");s.close()})`;
  const inCgroup = async (): Promise<string> =>
    (await run("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec "$0" -e "$1"`, process.execPath, client], { timeout: 20_000 })).stdout.trim();
  try {
    {
      using link = coll.program("no_udp").attachTo({ hook: "cgroup", path: cg });
      assert.match(link.target, /inet_sock_create \(link\)/);
      assert.equal(await inCgroup(), "EPERM");
      assert.equal((await run(process.execPath, ["-e", client], { timeout: 20_000 })).stdout.trim(), "ok");
      assert.equal(coll.map<number, bigint>("refused").lookup(0), 1n);
    }
    assert.deepEqual(linksOfProgram("no_udp"), []);
    assert.equal(await inCgroup(), "ok", "detached");
  } finally {
    rmdirSync(cg);
  }
});

test("a sockmap verdict program redirects what one connection receives out of another", async () => {
  const spec = await compile({
    name: "sockmap.bpf.c",
    text: `${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_SOCKMAP); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } socks SEC(".maps");
SEC("sk_skb/stream_verdict")
int redirect(struct __sk_buff *skb) { return bpf_sk_redirect_map(skb, &socks, 1, 0); }`,
  });
  await using coll = Collection.load(spec.bytes);
  const socks = coll.map("socks");
  const serverSide: Socket[] = [];
  const server = createTcpServer((s) => serverSide.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const dial = (): Promise<Socket> => new Promise((resolve, reject) => connect(port, "127.0.0.1").on("connect", function (this: Socket) { resolve(this); }).on("error", reject));
  const c1 = await dial();
  const c2 = await dial();
  try {
    assert.ok(await eventually(() => serverSide.length === 2));
    const fdOf = (s: Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;
    using link = attachSockmap(coll.program("redirect"), socks, AttachType.SK_SKB_STREAM_VERDICT);
    const key = (k: number): Uint8Array => new Uint8Array(new Uint32Array([k]).buffer);
    const val = (fd: number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(fd)]).buffer);
    socks.updateBytes(key(0), val(fdOf(serverSide[0]!)));
    socks.updateBytes(key(1), val(fdOf(serverSide[1]!)));
    let got = "";
    c2.on("data", (d) => (got += d));
    let leaked = "";
    serverSide[0]!.on("data", (d) => (leaked += d));
    c1.write("redirected by sockmap");
    assert.ok(await eventually(() => got === "redirected by sockmap"), `c2 got ${JSON.stringify(got)}`);
    assert.equal(leaked, "", "the receiving socket itself saw nothing");
  } finally {
    for (const s of [c1, c2, ...serverSide]) s.destroy();
    server.close();
  }
});

test("BCC facade: attachXdp/removeXdp, load_func(fn, BPF.SCHED_CLS) on tc egress, attachRawSocket", async () => {
  using b = await BPF.load({
    name: "packets-bcc.c",
    text: `
BPF_ARRAY(xdp_cnt, u64, 1);
BPF_ARRAY(tc_cnt, u64, 1);
int xdp_drop_all(struct xdp_md *ctx) { int k = 0; u64 *v = xdp_cnt.lookup(&k); if (v) __sync_fetch_and_add(v, 1); return XDP_DROP; }
int tc_egress(struct __sk_buff *skb) { int k = 0; u64 *v = tc_cnt.lookup(&k); if (v) __sync_fetch_and_add(v, 1); return 0; }
int keep_all(struct __sk_buff *skb) { return -1; }
`,
  });
  const xdp = b.loadFunc("xdp_drop_all", BPF.XDP);
  const link = BPF.attachXdp(A, xdp, BPF.XDP_FLAGS_SKB_MODE);
  assert.equal(link.mode, "generic");
  await sendFromNamespace(9);
  await eventually(() => b.get("xdp_cnt").get(0) === BigInt(N));
  BPF.removeXdp(A);
  assert.equal(xdpShown(), false);
  assert.equal(b.get("xdp_cnt").get(0), BigInt(N));

  b.loadFunc("tc_egress", BPF.SCHED_CLS);
  b.attachTc({ fnName: "tc_egress", dev: A, direction: "egress" });
  await sendToNamespace(9, 5, 10);
  b.detachTc({ dev: A, direction: "egress" });
  assert.equal(b.get("tc_cnt").get(0), 5n);
  assert.deepEqual(linksOfProgram("tc_egress"), []);

  using sock = BPF.attachRawSocket(b.loadFunc("keep_all", BPF.SOCKET_FILTER), A);
  await sendToNamespace(9, 1, 10);
  const seen: number[] = [];
  const got = await eventually(() => {
    const p = sock.read();
    if (p) seen.push(p.length);
    return p?.length === 14 + 20 + 8 + 10;
  });
  assert.ok(got, `the raw socket read no datagram of 52 bytes: ${JSON.stringify(seen)}`);
});

test("<bcc/proto.h>: header sizes as on the wire, cursor_advance, and the ETH_P_/TC_ACT_ constants in plain C", async () => {
  const spec = await compile({
    name: "proto.bpf.c",
    text: `${HEADERS}
#include <bpf/bpf_endian.h>
#include <bcc/proto.h>
_Static_assert(sizeof(struct ethernet_t) == 14 && sizeof(struct dot1q_t) == 4 && sizeof(struct arp_t) == 28, "l2");
_Static_assert(sizeof(struct ip_t) == 20 && sizeof(struct ip6_t) == 40 && sizeof(struct udp_t) == 8 && sizeof(struct tcp_t) == 20, "l3/l4");
_Static_assert(sizeof(struct icmp_t) == 4 && sizeof(struct vxlan_t) == 8, "others");
SEC("tc") int udp_only(struct __sk_buff *skb) {
    u8 *cursor = 0;
    struct ethernet_t *eth = cursor_advance(cursor, sizeof(*eth));
    struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));
    __u16 proto; __u8 nextp;
    if (bpf_skb_load_bytes(skb, (long)eth + 12, &proto, 2) < 0 || proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
    if (bpf_skb_load_bytes(skb, (long)ip + 9, &nextp, 1) < 0) return TC_ACT_OK;
    return nextp == IPPROTO_UDP ? TC_ACT_OK : TC_ACT_UNSPEC;
}`,
  });
  await using coll = Collection.load(spec.bytes);
  using link = coll.program("udp_only").attachTo({ hook: "tc", interface: A, direction: "ingress" });
  assert.match(link.target, /tc:.*ingress/);
});

// ---- nothing is left behind: SIGINT, SIGKILL, an exception ----

function assertClean(what: string): void {
  assert.equal(xdpShown(), false, `${what}: ip link shows an XDP program`);
  assert.equal(tcFilters().trim(), "", `${what}: tc shows a filter`);
  assert.deepEqual(linksOfProgram("xdp_drop_count"), [], `${what}: an XDP link remains`);
  assert.deepEqual(linksOfProgram("tc_count"), [], `${what}: a tcx link remains`);
}

test("xdpdrop and tcdump stop on SIGINT (and -d) and leave no program, filter or link", async () => {
  for (const args of [["xdpdrop", A], ["tcdump", A], ["tcdump", "--netlink", A], ["xdpdrop", "-S", "--json", "-d", "2", A]]) {
    const r = await runTool(args, { until: (out) => out.length > 0, timeoutMs: 60_000 }); // -d 2 ends the last by itself
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, /attached to (xdp|tc):/);
    assertClean(`after SIGINT of ${args.join(" ")}`);
  }
});

test("SIGKILL: the links go with the process (XDP 5.9+, tcx 6.6+)", async () => {
  for (const args of [["xdpdrop", A], ["tcdump", A]]) {
    const child = spawn(process.execPath, [tsbpf, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise((resolve) => child.on("exit", resolve));
    assert.ok(await eventually(() => /attached to/.test(err), 60_000), `${args[0]} did not attach: ${err}`);
    assert.match(err, /\(native, link\)|\(tcx\)/);
    assert.ok(args[0] === "xdpdrop" ? xdpShown() : linksOfProgram("tc_count").length === 1);
    child.kill("SIGKILL");
    await exited;
    assert.ok(await eventually(() => !xdpShown() && linksOfProgram("tc_count").length === 0 && linksOfProgram("xdp_drop_count").length === 0));
    assertClean(`after SIGKILL of ${args[0]}`);
  }
});

test("an exception after attaching by netlink removes the XDP program, the filter and the qdisc", async () => {
  const script = join(tmp.path, "throws.mts"); // an ES module wherever it lies (top-level await)
  writeFileSync(
    script,
    `import { Collection } from ${JSON.stringify(join(root, "src/collection.ts"))};
import { toolObject } from ${JSON.stringify(join(root, "src/cli/tool.ts"))};
import { attachXdp } from ${JSON.stringify(join(root, "src/link/xdp.ts"))};
import { attachTc } from ${JSON.stringify(join(root, "src/link/tc.ts"))};
await using xdp = Collection.load((await toolObject("xdpdrop")).bytes, { constants: { pass_only: true } });
await using tc = Collection.load((await toolObject("tcdump")).bytes);
using a = attachXdp(xdp.program("xdp_drop_count"), { interface: ${JSON.stringify(A)}, method: "netlink" });
using b = attachTc(tc.program("tc_count"), { interface: ${JSON.stringify(A)}, direction: "ingress", method: "netlink" });
console.log(a.target, b.target);
throw new Error("boom");
`,
  );
  const r = await run(process.execPath, ["--import", "tsx", script], { cwd: root, timeout: 60_000 }).then(
    () => assert.fail("the script should throw"),
    (e: { stdout: string; stderr: string; code: number }) => e,
  );
  assert.match(r.stdout, /xdp:.*netlink.*tc:.*netlink clsact/, r.stderr);
  assert.match(r.stderr, /boom/);
  assertClean("after an exception");
  assert.doesNotMatch(sh(`tc qdisc show dev ${A}`), /clsact/);
});

test("the tools' --help, and sockfilter --json prints the request line of real traffic", async () => {
  for (const tool of ["xdpdrop", "tcdump", "sockfilter"]) {
    const r = await runTool([tool, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, new RegExp(`usage: tsbpf ${tool}`));
  }
  const server = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const path = `/tsbpf-tool-${process.pid}`;
  try {
    const r = await runTool(["sockfilter", "--json", "lo"], {
      until: (out) => out.includes(path),
      poke: () => void get(`http://127.0.0.1:${port}${path}`, (res) => res.resume()).on("error", () => {}),
    });
    assert.equal(r.code, 0, r.err);
    const seen = r.json.find((e) => e.line === `GET ${path} HTTP/1.1`);
    assert.ok(seen, r.out);
    assert.match(seen.dst, new RegExp(`^127\\.0\\.0\\.1:${port}$`));
  } finally {
    server.close();
  }
});

