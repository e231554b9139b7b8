// SPDX-License-Identifier: MIT
// tcpstates: every TCP state change, with the time spent in the old state,
// from sock:inet_sock_set_state (the pid is whatever task the change runs in).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf.h>
#include <tsbpf_hist.h>
#include "tcp.h"

#define TASK_COMM_LEN 16
#define TCP_CLOSE 7

const volatile u16 targ_family = 0;
const volatile u16 targ_lports[TSBPF_MAX_PORTS] = {};
const volatile u32 targ_nlports = 0;
const volatile u16 targ_rports[TSBPF_MAX_PORTS] = {};
const volatile u32 targ_nrports = 0;
/* The exporter's mode (tsbpf exporter, tcp_state_transitions_total): counts by {old, new} state, no events. */
const volatile bool targ_count = false;

struct transition {
	u32 oldstate;
	u32 newstate;
};

TSBPF_HIST(transitions, struct transition, 256); /* {old, new} -> count */

struct event {
	u64 ts;
	u64 skaddr;
	u64 span_ns;
	u32 pid;
	s32 oldstate;
	s32 newstate;
	u16 family;
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

/* When each socket entered its current state. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, const void *);
	__type(value, u64);
} since SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const void *sk = ctx->skaddr;
	struct event e = {};
	u64 now, *last;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (targ_family && ctx->family != targ_family)
		return 0;
	if (!tsbpf_port_wanted(targ_lports, targ_nlports, ctx->sport) || !tsbpf_port_wanted(targ_rports, targ_nrports, ctx->dport))
		return 0;
	if (targ_count) {
		struct transition key = { .oldstate = ctx->oldstate, .newstate = ctx->newstate };

		tsbpf_hist_increment(&transitions, &key);
		return 0;
	}
	now = bpf_ktime_get_ns();
	last = bpf_map_lookup_elem(&since, &sk);
	e.span_ns = last ? now - *last : 0;
	e.ts = now;
	e.skaddr = (u64)sk;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.oldstate = ctx->oldstate;
	e.newstate = ctx->newstate;
	e.family = ctx->family;
	e.lport = ctx->sport;
	e.rport = ctx->dport;
	tcp_tp_read_addrs(ctx, e.family, e.laddr, e.raddr);
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	if (ctx->newstate == TCP_CLOSE)
		bpf_map_delete_elem(&since, &sk);
	else
		bpf_map_update_elem(&since, &sk, &now, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
