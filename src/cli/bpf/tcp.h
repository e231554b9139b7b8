/* SPDX-License-Identifier: MIT */
/*
 * What the TCP tools (tcpconnect, tcpaccept, tcplife, tcpstates, tcpretrans,
 * tcptop) share: a connection's two addresses, 4 bytes for IPv4 or 16 for IPv6
 * at the start of a u8[16], read from a tracepoint's record or from the socket.
 */
#ifndef __TSBPF_TOOLS_TCP_H
#define __TSBPF_TOOLS_TCP_H

#include <bpf/bpf_core_read.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/*
 * The addresses of a sock:inet_sock_set_state or tcp:tcp_retransmit_skb record
 * (both have saddr/daddr and saddr_v6/daddr_v6) into `src` and `dst`.
 */
#define tcp_tp_read_addrs(ctx, family, src, dst) \
	do { \
		if ((family) == AF_INET) { \
			bpf_probe_read_kernel((src), 4, (ctx)->saddr); \
			bpf_probe_read_kernel((dst), 4, (ctx)->daddr); \
		} else { \
			bpf_probe_read_kernel((src), 16, (ctx)->saddr_v6); \
			bpf_probe_read_kernel((dst), 16, (ctx)->daddr_v6); \
		} \
	} while (0)

/* The socket's local (receive) and remote addresses into `laddr` and `raddr` (CO-RE). */
static __always_inline void tcp_sock_read_addrs(const struct sock *sk, u16 family, u8 *laddr, u8 *raddr)
{
	if (family == AF_INET) {
		bpf_core_read(laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

#endif /* __TSBPF_TOOLS_TCP_H */
