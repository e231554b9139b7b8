// SPDX-License-Identifier: MIT
// TCP retransmits by state and TCP state transitions (metrics:
// tcp_retransmits_total, tcp_state_transitions_total).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define IPPROTO_TCP 6

struct transition {
	u32 oldstate;
	u32 newstate;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u32); /* socket state when the segment was retransmitted */
	__type(value, u64);
} tcp_retransmits_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct transition);
	__type(value, u64);
} tcp_state_transitions_total SEC(".maps");

static __always_inline void count(void *map, const void *key)
{
	u64 one = 1, *n = bpf_map_lookup_elem(map, key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	u32 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	count(&tcp_retransmits_total, &state);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct transition key = { .oldstate = oldstate, .newstate = newstate };

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	count(&tcp_state_transitions_total, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
