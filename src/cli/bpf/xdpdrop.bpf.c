// tsbpf xdpdrop: drop every packet arriving on an interface and count them per
// IP protocol, as BCC's examples/networking/xdp/xdp_drop_count.py does.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

// XDP_PASS instead of XDP_DROP: count only (set before load).
const volatile bool pass_only = false;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u64);
} dropcnt SEC(".maps");

SEC("xdp")
int xdp_drop_count(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    __u64 off = sizeof(*eth);
    if (data + off > data_end)
        return XDP_PASS;
    __u16 proto = eth->h_proto;
    // Up to two VLAN tags.
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
            struct vlan_hdr *vh = data + off;
            off += sizeof(*vh);
            if (data + off > data_end)
                return XDP_PASS;
            proto = vh->h_vlan_encapsulated_proto;
        }
    }
    __u32 key = 0;
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = data + off;
        if ((void *)(ip + 1) > data_end)
            return XDP_PASS;
        key = ip->protocol;
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = data + off;
        if ((void *)(ip6 + 1) > data_end)
            return XDP_PASS;
        key = ip6->nexthdr;
    }
    __u64 *value = bpf_map_lookup_elem(&dropcnt, &key);
    if (value)
        *value += 1;
    return pass_only ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
