// The packet programs test/guest/packets.guest.ts loads that no tool has:
// compiled on the host by test/vm/vm.test.ts (through GUEST_PROGRAMS), passed
// in as .o files. XDP, tc and the socket filter use the tools' objects.

const HEADERS = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
char LICENSE[] SEC("license") = "GPL";
`;

/** cgroup/connect4: from_port becomes to_port; refuse_port is refused (EPERM). */
const CONNECT4 = `${HEADERS}
const volatile __u16 from_port = 0, to_port = 0, refuse_port = 0;
SEC("cgroup/connect4")
int rewrite_connect(struct bpf_sock_addr *ctx) {
    if (ctx->user_port == bpf_htons(from_port)) { ctx->user_port = bpf_htons(to_port); return 1; }
    return ctx->user_port == bpf_htons(refuse_port) ? 0 : 1;
}`;

/** cgroup/sock_create: UDP sockets are refused (EPERM) and counted; others pass. */
const SOCK_CREATE = `${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } refused SEC(".maps");
SEC("cgroup/sock_create")
int no_udp(struct bpf_sock *sk) {
    if (sk->type != 2 /* SOCK_DGRAM */ || sk->protocol != IPPROTO_UDP) return 1;
    __u32 k = 0;
    __u64 *n = bpf_map_lookup_elem(&refused, &k);
    if (n) __sync_fetch_and_add(n, 1);
    return 0;
}`;

/** sk_skb stream verdict: what socket 0 receives goes out of socket 1. */
const SOCKMAP = `${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_SOCKMAP); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } socks SEC(".maps");
SEC("sk_skb/stream_verdict")
int redirect(struct __sk_buff *skb) { return bpf_sk_redirect_map(skb, &socks, 1, 0); }`;

export const PACKET_PROGRAMS: Record<string, string> = { pkt_connect4: CONNECT4, pkt_sock_create: SOCK_CREATE, pkt_sockmap: SOCKMAP };
