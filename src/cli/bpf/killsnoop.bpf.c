// SPDX-License-Identifier: MIT
// killsnoop: signals sent with kill(), tkill() and tgkill(), and their result,
// from the syscall tracepoints (the arguments at entry, by thread, until exit).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf.h>
#include <tsbpf_thread.h>

#define TASK_COMM_LEN 16

const volatile u32 targ_pid = 0;
const volatile s32 targ_tpid = 0;
const volatile s32 targ_sig = 0;
const volatile bool targ_failed = false;

struct event {
	u32 pid;
	s32 tpid;
	s32 sig;
	s32 ret;
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

TSBPF_THREAD_MAP(start, struct event, 10240);

static __always_inline int enter(s32 tpid, s32 sig)
{
	struct event e = { .pid = bpf_get_current_pid_tgid() >> 32, .tpid = tpid, .sig = sig };

	if (targ_pid && targ_pid != e.pid)
		return 0;
	if (targ_tpid && targ_tpid != tpid)
		return 0;
	if (targ_sig && targ_sig != sig)
		return 0;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_thread_save(&start, &e);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	struct event *e = tsbpf_thread_find(&start);

	if (!e)
		return 0;
	e->ret = ret;
	if (!targ_failed || ret < 0)
		tsbpf_events_output(ctx, events, e, sizeof(*e));
	tsbpf_thread_forget(&start);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int enter_kill(struct trace_event_raw_sys_enter *ctx)
{
	return enter((s32)ctx->args[0], (s32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int enter_tkill(struct trace_event_raw_sys_enter *ctx)
{
	return enter((s32)ctx->args[0], (s32)ctx->args[1]);
}

/* tgkill(tgid, tid, sig): the target shown is the thread. */
SEC("tracepoint/syscalls/sys_enter_tgkill")
int enter_tgkill(struct trace_event_raw_sys_enter *ctx)
{
	return enter((s32)ctx->args[1], (s32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int exit_kill(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int exit_tkill(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int exit_tgkill(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
