// SPDX-License-Identifier: MIT
// tcptop: TCP bytes sent and received per process and connection. Where the
// kernel has them (6.3+), the sock:sock_send_length and sock:sock_recv_length
// tracepoints: sock_sendmsg()/sock_recvmsg() results, in the calling task, with
// the socket (its addresses read with CO-RE). Elsewhere BCC's hooks: kprobes on
// tcp_sendmsg (the size asked) and tcp_cleanup_rbuf (the bytes copied).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>
#include <tsbpf_hist.h>
#include "tcp.h"

#define TASK_COMM_LEN 16
#define MSG_PEEK 2

const volatile u32 targ_pid = 0;
const volatile u16 targ_family = 0;

/* --cgroupmap / --mntnsmap: ids to trace, filled from the user's pinned maps before attach. */
TSBPF_TASK_FILTER();

struct flow {
	u32 pid;
	u16 family;
	u16 lport;
	u16 dport;
	u8 saddr[16];
	u8 daddr[16];
	char comm[TASK_COMM_LEN];
};
const struct flow *unused_flow __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow);
	__type(value, u64);
} sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow);
	__type(value, u64);
} received SEC(".maps");

static __always_inline int count(void *map, const struct sock *sk, u16 family, u64 bytes)
{
	struct flow f = {};

	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (targ_family && family != targ_family)
		return 0;
	f.pid = bpf_get_current_pid_tgid() >> 32;
	if (targ_pid && f.pid != targ_pid)
		return 0;
	if (!tsbpf_task_wanted())
		return 0;
	f.family = family;
	/* inet_sport, not skc_num: a socket read after it closed has given its port back. */
	f.lport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	f.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	tcp_sock_read_addrs(sk, f.family, f.saddr, f.daddr);
	bpf_get_current_comm(f.comm, sizeof(f.comm));
	tsbpf_hist_add(map, &f, bytes);
	return 0;
}

static __always_inline int count_length(void *map, struct trace_event_raw_sock_msg_length *ctx)
{
	if (ctx->protocol != IPPROTO_TCP || ctx->ret <= 0 || (ctx->flags & MSG_PEEK))
		return 0;
	return count(map, ctx->sk, ctx->family, ctx->ret);
}

SEC("tracepoint/sock/sock_send_length")
int send_length(struct trace_event_raw_sock_msg_length *ctx)
{
	return count_length(&sent, ctx);
}

SEC("tracepoint/sock/sock_recv_length")
int recv_length(struct trace_event_raw_sock_msg_length *ctx)
{
	return count_length(&received, ctx);
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(kprobe_sendmsg, struct sock *sk, struct msghdr *msg, size_t size)
{
	return count(&sent, sk, BPF_CORE_READ(sk, __sk_common.skc_family), size);
}

SEC("kprobe/tcp_cleanup_rbuf")
int BPF_KPROBE(kprobe_cleanup_rbuf, struct sock *sk, int copied)
{
	if (copied <= 0)
		return 0;
	return count(&received, sk, BPF_CORE_READ(sk, __sk_common.skc_family), copied);
}

char LICENSE[] SEC("license") = "GPL";
