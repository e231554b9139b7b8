// SPDX-License-Identifier: MIT
// tcplife: TCP sessions, one event when each closes, with its duration and
// bytes. All from sock:inet_sock_set_state, as BCC's tracepoint variant: the
// birth at the first state change, the owner at the state changes made by
// the owning task (SYN_SENT in connect(), FIN_WAIT1 or LAST_ACK in close()),
// the bytes from the tcp_sock at CLOSE (CO-RE).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>
#include "tcp.h"

#define TASK_COMM_LEN 16
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9

const volatile u32 targ_pid = 0;
const volatile u16 targ_family = 0;
const volatile u16 targ_lports[TSBPF_MAX_PORTS] = {};
const volatile u32 targ_nlports = 0;
const volatile u16 targ_rports[TSBPF_MAX_PORTS] = {};
const volatile u32 targ_nrports = 0;

struct event {
	u64 ts;
	u64 span_ns;
	u64 tx_b;
	u64 rx_b;
	u32 pid;
	u16 family;
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

struct owner {
	u32 pid;
	char comm[TASK_COMM_LEN];
};

TSBPF_EVENTS(events, 1024 * 1024);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, const void *);
	__type(value, u64);
} birth SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, const void *);
	__type(value, struct owner);
} owners SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const void *sk = ctx->skaddr;
	int state = ctx->newstate;
	struct event e = {};
	struct owner *who;
	u64 *start, now;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (targ_family && ctx->family != targ_family)
		return 0;
	if (state < TCP_FIN_WAIT1) {
		now = bpf_ktime_get_ns();
		bpf_map_update_elem(&birth, &sk, &now, BPF_ANY);
	}
	if (state == TCP_SYN_SENT || state == TCP_FIN_WAIT1 || state == TCP_LAST_ACK) {
		struct owner me = { .pid = bpf_get_current_pid_tgid() >> 32 };

		bpf_get_current_comm(me.comm, sizeof(me.comm));
		/* The connecting task's SYN_SENT is the best witness; close() sets the others. */
		bpf_map_update_elem(&owners, &sk, &me, state == TCP_SYN_SENT ? BPF_ANY : BPF_NOEXIST);
	}
	if (state != TCP_CLOSE)
		return 0;
	start = bpf_map_lookup_elem(&birth, &sk);
	if (!start) {
		bpf_map_delete_elem(&owners, &sk);
		return 0; /* born before the tool started */
	}
	now = bpf_ktime_get_ns();
	e.ts = now;
	e.span_ns = now - *start;
	who = bpf_map_lookup_elem(&owners, &sk);
	if (who) {
		e.pid = who->pid;
		__builtin_memcpy(e.comm, who->comm, sizeof(e.comm));
	} else {
		e.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e.comm, sizeof(e.comm));
	}
	bpf_map_delete_elem(&birth, &sk);
	bpf_map_delete_elem(&owners, &sk);
	if (targ_pid && e.pid != targ_pid)
		return 0;
	e.lport = ctx->sport;
	e.rport = ctx->dport;
	if (!tsbpf_port_wanted(targ_lports, targ_nlports, e.lport) || !tsbpf_port_wanted(targ_rports, targ_nrports, e.rport))
		return 0;
	e.family = ctx->family;
	tcp_tp_read_addrs(ctx, e.family, e.laddr, e.raddr);
	{
		const struct tcp_sock *tp = sk;

		e.tx_b = BPF_CORE_READ(tp, bytes_acked);
		e.rx_b = BPF_CORE_READ(tp, bytes_received);
	}
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
