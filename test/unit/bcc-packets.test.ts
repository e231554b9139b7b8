// BCC's packet dialect without the kernel: packed layouts of the packet
// structs, which structs are packet headers, and perf_submit_skb's translation.
// (The rewrite itself needs clang: test/kernel/bcc-packets.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { translate } from "../../src/bcc/dialect.ts";
import { packedLayout, packetStructCandidates, typeBits } from "../../src/bcc/packetreads.ts";

test("packed layout: bitfields at the next bit, other fields at the next byte, arrays by element", () => {
  // struct ip_t's head and struct ethernet_t, as clang lays them out under packed.
  assert.deepEqual(
    packedLayout([
      { name: "ver", type: "unsigned char", bitfield: 4 },
      { name: "hlen", type: "unsigned char", bitfield: 4 },
      { name: "tos", type: "unsigned char" },
      { name: "tlen", type: "unsigned short" },
      { name: "flag", type: "unsigned short", bitfield: 3 },
      { name: "src", type: "unsigned int" },
      { name: "pad", type: "unsigned char [6]" },
      { name: "next", type: "uint64_t *" },
    ]),
    [
      { name: "ver", bitOffset: 0, bits: 4 },
      { name: "hlen", bitOffset: 4, bits: 4 },
      { name: "tos", bitOffset: 8, bits: 8 },
      { name: "tlen", bitOffset: 16, bits: 16 },
      { name: "flag", bitOffset: 32, bits: 3 },
      { name: "src", bitOffset: 40, bits: 32 },
      { name: "pad", bitOffset: 72, bits: 48 },
      { name: "next", bitOffset: 120, bits: 64 },
    ],
  );
  assert.equal(packedLayout([{ name: "s", type: "struct other" }]), undefined, "an unknown size: no layout, no rewrite");
  assert.equal(typeBits("const unsigned long long"), 64);
  assert.equal(typeBits("signed char"), 8);
  assert.equal(typeBits("short int"), 16);
});

test("packet structs: <bcc/proto.h>'s when it is included, and the user's marked BPF_PACKET_HEADER or deprecated(\"packet\")", () => {
  assert.deepEqual(packetStructCandidates("int x;"), []);
  const text = `#include <bcc/proto.h>
struct dns_hdr_t { uint16_t id; uint16_t flags; } BPF_PACKET_HEADER;
struct mine { struct { int a; } in; char c; } __attribute__((packed, deprecated("packet")));
struct Key { unsigned char p[255]; };`;
  const c = packetStructCandidates(text);
  for (const s of ["ethernet_t", "ip_t", "ip6_t", "udp_t", "tcp_t", "arp_t", "dot1q_t", "vxlan_t", "dns_hdr_t", "mine"]) assert.ok(c.includes(s), s);
  assert.ok(!c.includes("Key"));
});

test("perf_submit_skb: bpf_perf_event_output with the skb, and its length in the flags' upper 32 bits", () => {
  const t = translate(
    `BPF_PERF_OUTPUT(skb_events);
struct meta { u32 magic; };
int egress(struct __sk_buff *skb) { struct meta m = { 1 }; skb_events.perf_submit_skb(skb, skb->len, &m, sizeof(m)); return TC_ACT_OK; }`,
    { file: "skb.c", tracepointFormat: () => undefined },
  );
  assert.match(t.code, /bpf_perf_event_output\(skb, &skb_events, \(\(__u64\)\(skb -> len\) << 32\) \| BPF_F_CURRENT_CPU, & m, sizeof \( m \)\)/);
  assert.match(t.code, /#include <bcc\/packet\.h>/);
  assert.throws(
    () => translate(`BPF_PERF_OUTPUT(e);\nint f(struct __sk_buff *skb) { e.perf_submit_skb(skb, &skb, 4); return 0; }`, { file: "bad.c", tracepointFormat: () => undefined }),
    /bad\.c:2: e\.perf_submit_skb\(\): expects 4 arguments, got 3/,
  );
});
