// tsbpf sockfilter: keep only TCP packets whose payload starts like an HTTP
// request or response line, as BCC's examples/networking/http_filter/http-parse-simple.c.
// A socket filter returns how many bytes of the packet the socket gets (0: none).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define IPPROTO_TCP 6

static __always_inline bool is_http(struct __sk_buff *skb, __u32 off) {
    char p[7];
    if (bpf_skb_load_bytes(skb, off, p, sizeof(p)) < 0)
        return false;
    if (p[0] == 'H' && p[1] == 'T' && p[2] == 'T' && p[3] == 'P')
        return true;
    if (p[0] == 'G' && p[1] == 'E' && p[2] == 'T' && p[3] == ' ')
        return true;
    if (p[0] == 'P' && p[1] == 'O' && p[2] == 'S' && p[3] == 'T' && p[4] == ' ')
        return true;
    if (p[0] == 'P' && p[1] == 'U' && p[2] == 'T' && p[3] == ' ')
        return true;
    if (p[0] == 'D' && p[1] == 'E' && p[2] == 'L' && p[3] == 'E' && p[4] == 'T' && p[5] == 'E')
        return true;
    if (p[0] == 'H' && p[1] == 'E' && p[2] == 'A' && p[3] == 'D' && p[4] == ' ')
        return true;
    return false;
}

SEC("socket")
int http_filter(struct __sk_buff *skb) {
    __u16 proto;
    if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0 || proto != bpf_htons(ETH_P_IP))
        return 0;
    __u8 vihl, ipproto;
    if (bpf_skb_load_bytes(skb, ETH_HLEN, &vihl, 1) < 0 || bpf_skb_load_bytes(skb, ETH_HLEN + 9, &ipproto, 1) < 0)
        return 0;
    if (ipproto != IPPROTO_TCP)
        return 0;
    __u32 ihl = (vihl & 0x0f) * 4;
    __u8 doff;
    if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl + 12, &doff, 1) < 0)
        return 0;
    __u32 payload = ETH_HLEN + ihl + (doff >> 4) * 4;
    if (payload + 7 > skb->len)
        return 0;
    return is_http(skb, payload) ? -1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
