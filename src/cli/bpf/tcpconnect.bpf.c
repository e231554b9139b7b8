// SPDX-License-Identifier: MIT
// tcpconnect: active TCP connects. sock:inet_sock_set_state to SYN_SENT runs in
// the connecting task (inside connect()), and gives the addresses and the
// remote port; the local port is chosen after that state change, so the event
// is finished at the syscall's exit, from the socket itself (CO-RE reads).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>
#include <tsbpf_hist.h>
#include "tcp.h"

#define TASK_COMM_LEN 16
#define TCP_SYN_SENT 2
#define NO_UID ((u32)-1)

const volatile u32 targ_pid = 0;
const volatile u32 targ_uid = NO_UID;
const volatile u16 targ_family = 0;
const volatile u16 targ_ports[TSBPF_MAX_PORTS] = {};
const volatile u32 targ_nports = 0;
const volatile bool targ_count = false;

struct event {
	u64 ts;
	u32 pid;
	u32 tid;
	u32 uid;
	u16 family;
	u16 lport;
	u16 dport;
	u8 saddr[16];
	u8 daddr[16];
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

struct count_key {
	u16 family;
	u16 dport;
	u8 saddr[16];
	u8 daddr[16];
};
const struct count_key *unused_count_key __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

struct pending {
	struct event e;
	const struct sock *sk;
};

/* The connect in progress of each thread, until connect() returns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct pending);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct count_key);
	__type(value, u64);
} counts SEC(".maps");

/* --cgroupmap / --mntnsmap: ids to trace, filled from the user's pinned maps before attach. */
TSBPF_TASK_FILTER();

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;
	u32 uid = (u32)bpf_get_current_uid_gid();
	struct pending p = {};

	if (ctx->protocol != IPPROTO_TCP || ctx->newstate != TCP_SYN_SENT)
		return 0;
	if (targ_family && ctx->family != targ_family)
		return 0;
	if (targ_pid && targ_pid != pid)
		return 0;
	if (targ_uid != NO_UID && targ_uid != uid)
		return 0;
	if (!tsbpf_port_wanted(targ_ports, targ_nports, ctx->dport))
		return 0;
	if (!tsbpf_task_wanted())
		return 0;
	p.sk = ctx->skaddr;
	p.e.ts = bpf_ktime_get_ns();
	p.e.pid = pid;
	p.e.tid = tid;
	p.e.uid = uid;
	p.e.family = ctx->family;
	p.e.dport = ctx->dport;
	tcp_tp_read_addrs(ctx, ctx->family, p.e.saddr, p.e.daddr);
	bpf_get_current_comm(p.e.comm, sizeof(p.e.comm));
	bpf_map_update_elem(&connecting, &tid, &p, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&connecting, &tid);

	if (!p)
		return 0;
	if (targ_count) {
		struct count_key key = { .family = p->e.family, .dport = p->e.dport };

		__builtin_memcpy(key.saddr, p->e.saddr, 16);
		__builtin_memcpy(key.daddr, p->e.daddr, 16);
		tsbpf_hist_increment(&counts, &key);
	} else {
		/* Bound to a local port by now (0 if the connect failed and closed it). */
		const struct sock *sk = p->sk;

		p->e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		tsbpf_events_output(ctx, events, &p->e, sizeof(p->e));
	}
	bpf_map_delete_elem(&connecting, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
