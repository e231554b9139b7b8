// tsbpf tcdump: bytes and packets per flow (IPv4 5-tuple) at tc egress or ingress.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct flow {
    __u32 saddr;
    __u32 daddr;
    __u16 sport;
    __u16 dport;
    __u8 proto;
    __u8 pad[3];
};

struct counts {
    __u64 bytes;
    __u64 packets;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct flow);
    __type(value, struct counts);
} flows SEC(".maps");

SEC("tc")
int tc_count(struct __sk_buff *skb) {
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end)
        return TC_ACT_OK;
    struct flow key = {};
    key.saddr = ip->saddr;
    key.daddr = ip->daddr;
    key.proto = ip->protocol;
    if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
        // Both headers start with the two ports.
        __u16 *ports = (void *)ip + ip->ihl * 4;
        if ((void *)(ports + 2) <= data_end) {
            key.sport = bpf_ntohs(ports[0]);
            key.dport = bpf_ntohs(ports[1]);
        }
    }
    struct counts *c = bpf_map_lookup_elem(&flows, &key);
    if (c) {
        __sync_fetch_and_add(&c->bytes, skb->len);
        __sync_fetch_and_add(&c->packets, 1);
    } else {
        struct counts init = { .bytes = skb->len, .packets = 1 };
        bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST);
    }
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
