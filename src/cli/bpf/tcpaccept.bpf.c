// SPDX-License-Identifier: MIT
// tcpaccept: passive TCP connections, seen where accept() returns them. The
// handshake's state changes run in softirq (the wrong task); the accept
// syscall's exit runs in the accepting task, and its result is the new fd:
// the socket is read from the task's file table with CO-RE.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <tsbpf.h>
#include "tcp.h"

#define TASK_COMM_LEN 16

const volatile u32 targ_pid = 0;
const volatile u16 targ_family = 0;
const volatile u16 targ_ports[TSBPF_MAX_PORTS] = {};
const volatile u32 targ_nports = 0;

struct event {
	u64 ts;
	u32 pid;
	u32 tid;
	u32 uid;
	u16 family;
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

/* --cgroupmap / --mntnsmap: ids to trace, filled from the user's pinned maps before attach. */
TSBPF_TASK_FILTER();

static __always_inline int accepted(void *ctx, long fd)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	struct task_struct *task;
	struct file **fds, *file;
	struct socket *sock;
	struct sock *sk;
	struct event e = {};
	unsigned int max_fds;

	if (fd < 0)
		return 0;
	if (targ_pid && targ_pid != pid)
		return 0;
	if (!tsbpf_task_wanted())
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd >= max_fds)
		return 0;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0;
	if (targ_family && e.family != targ_family)
		return 0;
	e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!tsbpf_port_wanted(targ_ports, targ_nports, e.lport))
		return 0;
	e.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	tcp_sock_read_addrs(sk, e.family, e.laddr, e.raddr);
	e.ts = bpf_ktime_get_ns();
	e.pid = pid;
	e.tid = (u32)id;
	e.uid = (u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
