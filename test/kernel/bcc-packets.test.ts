// BCC's packet dialect through the facade: <bcc/proto.h> cursors whose field
// reads and writes become packet loads and stores (src/bcc/packetreads.ts),
// the packet constants without kernel headers, and perf_submit_skb. BCC's own
// examples are taken from a mirror of its repository at test time (never
// committed); without the mirror those tests skip and say why. Traffic runs on
// a veth pair whose far end is in a network namespace the test makes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { promisify } from "node:util";
import { BPF } from "../../src/bcc/index.ts";
import { translateBcc } from "../../src/bcc/dialect.ts";
import { packedLayout, packetStructCandidates } from "../../src/bcc/packetreads.ts";
import { compile } from "../../src/compile/index.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { resolve as resolveType } from "../../src/btf/types.ts";
import { bccMirror, DEFAULT_MIRROR } from "../../scripts/bcc-corpus.ts";
import { HEADERS, linksOfProgram } from "../support/kernel.ts";

const run = promisify(execFile);
const sh = (cmd: string): string => execFileSync("sh", ["-c", cmd], { encoding: "utf8" });
const tag = process.pid % 10000;
const NS = `tsbpfbp${tag}`;
const A = `tbp${tag}a`; // host end
const B = `tbp${tag}b`; // namespace end
const NET = `10.214.${tag % 250}`;
const HOST = `${NET}.1`;
const PEER = `${NET}.2`;

const mirror = bccMirror();
const noMirror = mirror ? false : `BCC's repository is not at ${process.env.TSBPF_BCC_MIRROR ?? DEFAULT_MIRROR} (set TSBPF_BCC_MIRROR to a clone or bare mirror): BCC's examples come from it`;
/** A file of BCC's repository, from the mirror (a bare git directory or a checkout). */
const bccFile = (path: string): string => execFileSync("git", ["-C", mirror!, "show", `HEAD:${path}`], { encoding: "utf8" });
/** The C text of a BCC Python example: its one triple-quoted program text. */
const pythonText = (path: string): string => /"""\n([\s\S]*?)"""/.exec(bccFile(path))![1]!;

const mac = (dev: string, ns?: string): string => sh(`${ns ? `ip -n ${ns}` : "ip"} -o link show dev ${dev}`).match(/link\/ether ([0-9a-f:]+)/)![1]!;

before(() => {
  sh(`ip netns add ${NS}`);
  sh(`ip link add ${A} type veth peer name ${B} netns ${NS}`);
  sh(`ip addr add ${HOST}/24 dev ${A} && ip link set ${A} up`);
  sh(`ip -n ${NS} addr add ${PEER}/24 dev ${B} && ip -n ${NS} link set ${B} up && ip -n ${NS} link set lo up`);
  sh(`ip neigh replace ${PEER} lladdr ${mac(B, NS)} dev ${A} nud permanent`);
  sh(`ip -n ${NS} neigh replace ${HOST} lladdr ${mac(A)} dev ${B} nud permanent`);
});

after(() => {
  sh(`ip link del ${A} 2>/dev/null; ip netns del ${NS}`);
});

async function eventually(f: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (f()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `count` UDP datagrams of `payload` from this process to PEER:port. */
async function sendUdp(port: number, count: number, payload: Buffer): Promise<void> {
  const s = createSocket("udp4");
  for (let i = 0; i < count; i++) await new Promise<void>((resolve, reject) => s.send(payload, port, PEER, (e) => (e ? reject(e) : resolve())));
  s.close();
}

test("packed layouts: the offsets clang gives <bcc/proto.h>'s fields (read back from BTF) are the ones the rewrite uses", async () => {
  // Every field of every proto.h struct, compiled, with BTF's member bit offsets and bitfield sizes.
  const structs = packetStructCandidates('#include <bcc/proto.h>\n');
  assert.ok(structs.includes("ethernet_t") && structs.includes("tcp_t") && structs.length >= 12, structs.join(","));
  const spec = await compile({
    name: "layouts.bpf.c",
    text: `${HEADERS}\n#include <bcc/proto.h>\n${structs.map((s) => `struct ${s} __keep_${s} SEC(".data.layouts");`).join("\n")}\n`,
  });
  const btf = ObjectSpec.fromBytes(spec.bytes, "layouts").btf!;
  for (const s of structs) {
    const t = btf.typesByName(s).find((x) => x.kind === "struct");
    assert.ok(t?.kind === "struct", s);
    const fields = t.members.map((m) => {
      const mt = resolveType(m.type);
      const name = mt.kind === "int" ? mt.name : mt.kind === "array" ? `${(resolveType(mt.type) as { name: string }).name} [${mt.nelems}]` : "?";
      return { name: m.name, type: name, bitfield: m.bitfieldSize ? m.bitfieldSize : undefined };
    });
    const ours = packedLayout(fields);
    assert.deepEqual(
      ours?.map((f) => f.bitOffset),
      t.members.map((m) => m.offset),
      `struct ${s}`,
    );
  }
});

test("proto.h cursor reads and writes: fields of a real UDP datagram read as BCC does, and a tc program writes a checksum and a bitfield", async () => {
  const PORT = 40000 + (tag % 1000);
  using b = await BPF.load({
    name: "cursor.c",
    text: `
#include <bcc/proto.h>
#include <linux/pkt_cls.h>
struct seen { u64 eth_type, ver, hlen, ttl, nextp, src, dst, sport, dport, length, tlen; };
BPF_ARRAY(out, struct seen, 1);
int read_fields(struct __sk_buff *skb) {
  u8 *cursor = 0;
  struct ethernet_t *ethernet = cursor_advance(cursor, sizeof(*ethernet));
  if (ethernet->type != ETH_P_IP) return TC_ACT_OK;
  struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));
  if (ip->nextp != IPPROTO_UDP) return TC_ACT_OK;
  struct udp_t *udp = cursor_advance(cursor, sizeof(*udp));
  if (udp->dport != ${PORT}) return TC_ACT_OK;
  int k = 0;
  struct seen *s = out.lookup(&k);
  if (!s) return TC_ACT_OK;
  s->eth_type = ethernet->type; s->ver = ip->ver; s->hlen = ip->hlen; s->ttl = ip->ttl; s->nextp = ip->nextp;
  s->src = ip->src; s->dst = ip->dst; s->sport = udp->sport; s->dport = udp->dport; s->length = udp->length; s->tlen = ip->tlen;
  // Writes: the UDP checksum to 0 ("none" over IPv4), and the IP header's reserved flag bit.
  udp->crc = 0;
  ip->ffo_unused = 1;
  return TC_ACT_OK;
}
int keep_all(struct __sk_buff *skb) { return -1; }
`,
  });
  const code = b.translation.code;
  assert.match(code, /bpf_dext_pkt\(skb, \(u64\)ip\+0, 4, 4\)/, "ip->hlen: byte 0, bits 4..8");
  assert.match(code, /bpf_dext_pkt\(skb, \(u64\)ethernet\+12, 0, 16\)/, "ethernet->type: byte 12, 16 bits");
  assert.match(code, /bpf_dins_pkt\(skb, \(u64\)udp\+6, 0, 16, 0\)/, "udp->crc = 0");
  assert.match(code, /bpf_dins_pkt\(skb, \(u64\)ip\+6, 0, 1, 1\)/, "ip->ffo_unused = 1");
  b.loadFunc("read_fields", BPF.SCHED_CLS);
  b.attachTc({ fnName: "read_fields", dev: A, direction: "egress" });
  // A raw socket on the device sees what leaves it after tc egress.
  using sock = BPF.attachRawSocket(b.loadFunc("keep_all", BPF.SOCKET_FILTER), A);
  const payload = Buffer.from("tsbpf cursor test");
  let sent: Buffer | undefined;
  try {
    await sendUdp(PORT, 1, payload);
    const got = await eventually(() => {
      for (let p = sock.read(); p; p = sock.read()) if (p.length === 14 + 20 + 8 + payload.length && p.readUInt16BE(36) === PORT) sent = p;
      return sent !== undefined;
    });
    assert.ok(got, "the raw socket saw the datagram");
  } finally {
    b.detachTc({ dev: A, direction: "egress" });
  }
  const s = b.get("out").get(0) as Record<string, bigint>;
  const ip = (a: string) => BigInt(a.split(".").reduce((n, x) => n * 256 + Number(x), 0));
  assert.deepEqual(
    { ...s },
    {
      eth_type: 0x0800n, ver: 4n, hlen: 5n, ttl: BigInt(sent![22]!), nextp: 17n, src: ip(HOST), dst: ip(PEER),
      sport: BigInt(sent!.readUInt16BE(34)), dport: BigInt(PORT), length: BigInt(8 + payload.length), tlen: BigInt(20 + 8 + payload.length),
    },
  );
  assert.equal(sent!.readUInt16BE(14 + 20 + 6), 0, "udp->crc = 0 reached the wire");
  assert.equal(sent![14 + 6]! & 0x80, 0x80, "ip->ffo_unused = 1 set the top bit of byte 6");
  assert.deepEqual(linksOfProgram("read_fields"), []);
});

test("constants without kernel headers: TC_ACT_*, ETH_P_*, XDP_*, IPPROTO_*, ETH_HLEN, TC_H_* in BCC text with its usual includes", async () => {
  const t = await translateBcc(
    `#include <uapi/linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <uapi/linux/in6.h>
#include <uapi/linux/ipv6.h>
#define ETH_HLEN 14
_Static_assert(TC_ACT_OK == 0 && TC_ACT_SHOT == 2 && TC_ACT_REDIRECT == 7 && TC_ACT_UNSPEC == -1, "tc");
_Static_assert(ETH_P_IP == 0x0800 && ETH_P_IPV6 == 0x86DD && ETH_P_ARP == 0x0806 && ETH_P_8021Q == 0x8100 && ETH_P_ALL == 3, "eth");
_Static_assert(ETH_HLEN == 14 && ETH_ALEN == 6, "eth lengths");
_Static_assert(XDP_DROP == 1 && XDP_PASS == 2 && XDP_TX == 3 && XDP_REDIRECT == 4, "xdp");
_Static_assert(IPPROTO_TCP == 6 && IPPROTO_UDP == 17 && IPPROTO_ICMPV6 == 58 && IPPROTO_FRAGMENT == 44, "ipproto");
_Static_assert(TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS) == 0xFFFFFFF3U && TC_H_MAJ(0x10002U) == 0x10000U, "tc handles");
int f(struct __sk_buff *skb) { return TC_ACT_OK; }
`,
    { file: "constants.c", tracepointFormat: () => undefined },
  );
  const spec = await compile({ name: "constants.c", text: t.code });
  assert.ok(spec.bytes.length > 0);
});

test("BCC's http-parse-simple.c on a raw socket of the test's veth: sees the request line, and keeps no other packet", { skip: noMirror }, async () => {
  using b = await BPF.load({ name: "http-parse-simple.c", text: bccFile("examples/networking/http_filter/http-parse-simple.c") });
  assert.match(b.translation.code, /bpf_dext_pkt\(skb, \(u64\)tcp\+12, 0, 4\)/, "tcp->offset read from the packet");
  using sock = BPF.attachRawSocket(b.loadFunc("http_filter", BPF.SOCKET_FILTER), A);
  // Not HTTP: UDP datagrams, and the TCP handshake of the HTTP exchange.
  await sendUdp(9, 5, Buffer.from("GET / HTTP/1.1\r\n"));
  const server = `require("http").createServer((q,s)=>s.end("ok")).listen(8080,"${PEER}",()=>process.send?.("up"))`;
  const child = execFile("ip", ["netns", "exec", NS, process.execPath, "-e", `${server};setTimeout(()=>process.exit(0),15000)`]);
  try {
    await eventually(() => sh(`ip netns exec ${NS} ss -ltn`).includes(`${PEER}:8080`), 10_000);
    const res = await run("curl", ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", `http://${PEER}:8080/tsbpf-probe?x=1`]);
    assert.equal(res.stdout, "200");
    const packets: Buffer[] = [];
    await eventually(() => {
      for (let p = sock.read(); p; p = sock.read()) packets.push(p);
      return packets.some((p) => p.includes("HTTP/1.1 200"));
    });
    const lines = packets.map((p) => {
      const ihl = (p[14]! & 0xf) * 4;
      const payload = p.subarray(14 + ihl + (p[14 + ihl + 12]! >> 4) * 4);
      return payload.toString("latin1").split("\r\n")[0]!;
    });
    assert.ok(lines.includes("GET /tsbpf-probe?x=1 HTTP/1.1"), JSON.stringify(lines));
    assert.ok(lines.includes("HTTP/1.1 200 OK"), JSON.stringify(lines));
    // Every packet kept is TCP with an HTTP start: no UDP, no bare ACK or SYN.
    for (const p of packets) assert.equal(p[14 + 9], 6);
    assert.ok(lines.every((l) => /^(GET|HTTP)/.test(l)), JSON.stringify(lines));
  } finally {
    child.kill();
  }
});

test("BCC's dns_matching.c (its own BPF_PACKET_HEADER structs) loads as a socket filter", { skip: noMirror }, async () => {
  const text = bccFile("examples/networking/dns_matching/dns_matching.c");
  const candidates = packetStructCandidates(text);
  for (const s of ["dns_hdr_t", "dns_query_flags_t", "dns_char_t", "ethernet_t", "udp_t"]) assert.ok(candidates.includes(s), s);
  assert.ok(!candidates.includes("Key") && !candidates.includes("Leaf"));
  using b = await BPF.load({ name: "dns_matching.c", text });
  assert.match(b.translation.code, /bpf_dext_pkt\(skb, \(u64\)dns_hdr\+2, 0, 16\)/, "dns_hdr->flags");
  const fn = b.loadFunc("dns_matching", BPF.SOCKET_FILTER);
  assert.ok(fn.fd.value > 0);
});

test("BCC's simple_tc.py and tc_perf_event.py C: SCHED_CLS functions on tc, perf_submit_skb with the packet after the struct", { skip: noMirror }, async () => {
  {
    using b = await BPF.load({ name: "simple_tc.py", text: pythonText("examples/networking/simple_tc.py") });
    b.loadFunc("hello", BPF.SCHED_CLS);
    b.attachTc({ fnName: "hello", dev: A, direction: "ingress" });
    b.detachTc({ dev: A, direction: "ingress" });
  }
  // tc_perf_event.py's text, loaded and attached as the example does; it submits ICMPv6, which this veth does not carry.
  {
    using b = await BPF.load({ name: "tc_perf_event.py", text: pythonText("examples/networking/tc_perf_event.py") });
    assert.match(b.translation.code, /bpf_perf_event_output\(skb, &skb_events, \(\(__u64\)\(skb -> len\) << 32\) \| BPF_F_CURRENT_CPU, & magic/);
    b.loadFunc("handle_egress", BPF.SCHED_CLS);
    b.attachTc({ fnName: "handle_egress", dev: A, direction: "egress" });
    b.detachTc({ dev: A, direction: "egress" });
  }
});

test("perf_submit_skb: each record is the struct, then the packet's first len bytes", async () => {
  const PORT = 41000 + (tag % 1000);
  using b = await BPF.load({
    name: "skb-events.c",
    text: `
#include <bcc/proto.h>
BPF_PERF_OUTPUT(skb_events);
struct meta { u32 magic; u32 len; };
int egress(struct __sk_buff *skb) {
  u8 *cursor = 0;
  struct ethernet_t *ethernet = cursor_advance(cursor, sizeof(*ethernet));
  if (ethernet->type != ETH_P_IP) return TC_ACT_OK;
  struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));
  if (ip->nextp != IPPROTO_UDP) return TC_ACT_OK;
  struct udp_t *udp = cursor_advance(cursor, sizeof(*udp));
  if (udp->dport != ${PORT}) return TC_ACT_OK;
  struct meta m = { .magic = 0xfaceb00c, .len = skb->len };
  skb_events.perf_submit_skb(skb, skb->len, &m, sizeof(m));
  return TC_ACT_OK;
}`,
  });
  const records: Uint8Array[] = [];
  b.get("skb_events").openPerfBuffer((_cpu, data) => records.push(data));
  b.loadFunc("egress", BPF.SCHED_CLS);
  b.attachTc({ fnName: "egress", dev: A, direction: "egress" });
  const payloads = [Buffer.from("first datagram"), Buffer.from("the second, longer datagram")];
  try {
    for (const p of payloads) await sendUdp(PORT, 1, p);
    await eventually(() => {
      b.perfBufferPoll(10);
      return records.length >= 2;
    });
  } finally {
    b.detachTc({ dev: A, direction: "egress" });
  }
  assert.equal(records.length, 2);
  records.forEach((r, i) => {
    const ev = b.get("skb_events").event(r) as { magic: number; len: number };
    assert.equal(ev.magic, 0xfaceb00c);
    const len = 14 + 20 + 8 + payloads[i]!.length;
    assert.equal(ev.len, len);
    // The perf record: the 8-byte struct, the packet, then perf's padding to 8 bytes.
    assert.ok(r.length >= 8 + len && r.length < 8 + len + 8, `record of ${r.length} bytes for a ${len}-byte packet`);
    const pkt = Buffer.from(r.subarray(8, 8 + len));
    assert.equal(pkt.readUInt16BE(12), 0x0800);
    assert.equal(pkt.readUInt16BE(36), PORT);
    assert.deepEqual(pkt.subarray(42), payloads[i]);
  });
});
