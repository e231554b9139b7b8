// SPDX-License-Identifier: MIT
// tcpretrans: TCP retransmits from the tcp:tcp_retransmit_skb tracepoint
// (softirq or timer context mostly: the pid is whatever ran). Events, or
// counts per flow for -c.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>
#include <tsbpf_hist.h>
#include "tcp.h"

const volatile u16 targ_family = 0;
const volatile bool targ_count = false;
/* The exporter's mode (tsbpf exporter, tcp_retransmits_total): counts by the socket's state, no events. */
const volatile bool targ_count_state = false;

struct flow {
	u16 family;
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
};
const struct flow *unused_flow __attribute__((unused));

struct event {
	u64 ts;
	u32 pid;
	s32 state;
	u32 seq;
	struct flow flow;
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow);
	__type(value, u64);
} counts SEC(".maps");

TSBPF_HIST(state_counts, u32, 64); /* socket state -> retransmits */

SEC("tracepoint/tcp/tcp_retransmit_skb")
int retransmit(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	struct event e = {};
	const struct sk_buff *skb = ctx->skbaddr;

	if (targ_count_state) {
		u32 state = ctx->state;

		tsbpf_hist_increment(&state_counts, &state);
		return 0;
	}

	if (targ_family && ctx->family != targ_family)
		return 0;
	e.flow.family = ctx->family;
	e.flow.lport = ctx->sport;
	e.flow.rport = ctx->dport;
	tcp_tp_read_addrs(ctx, ctx->family, e.flow.laddr, e.flow.raddr);
	if (targ_count) {
		tsbpf_hist_increment(&counts, &e.flow);
		return 0;
	}
	e.ts = bpf_ktime_get_ns();
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.state = ctx->state;
	/* TCP_SKB_CB(skb)->seq: struct tcp_skb_cb starts with seq, at skb->cb. */
	bpf_probe_read_kernel(&e.seq, sizeof(e.seq), __builtin_preserve_access_index(&skb->cb));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
