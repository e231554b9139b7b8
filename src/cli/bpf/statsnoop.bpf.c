// SPDX-License-Identifier: MIT
// statsnoop: stat() family syscalls with their path and result, from the
// syscalls:sys_enter_*/sys_exit_* tracepoints (BCC uses the same arguments
// through syscall kprobes or tracepoints).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf.h>
#include <tsbpf_thread.h>

#define TASK_COMM_LEN 16
#define NAME_MAX 255

const volatile u32 targ_pid = 0;
const volatile bool targ_failed = false;

/* BCC's enum sys_type. */
enum sys_type { SYS_NA, SYS_STAT, SYS_STATX, SYS_STATFS, SYS_NEWSTAT, SYS_NEWLSTAT, SYS_FSTATAT64, SYS_NEWFSTATAT };

struct args {
	const char *fname;
	u32 type;
};

struct event {
	u64 ts_ns;
	u32 pid;
	s32 ret;
	u32 type;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX + 1];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

TSBPF_THREAD_MAP(start, struct args, 10240);

static __always_inline int enter(const char *fname, u32 type)
{
	struct args a = { .fname = fname, .type = type };

	if (targ_pid && (bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return 0;
	tsbpf_thread_save(&start, &a);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	struct args *a = tsbpf_thread_find(&start);
	struct event e = {};

	if (!a)
		return 0;
	if (targ_failed && ret >= 0)
		goto done;
	e.ts_ns = bpf_ktime_get_ns();
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ret = ret;
	e.type = a->type;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_probe_read_user_str(e.fname, sizeof(e.fname), a->fname);
	tsbpf_events_output(ctx, events, &e, sizeof(e));
done:
	tsbpf_thread_forget(&start);
	return 0;
}

#define STAT_SYSCALL(name, type, arg)						\
	SEC("tracepoint/syscalls/sys_enter_" #name)				\
	int enter_##name(struct trace_event_raw_sys_enter *ctx)			\
	{									\
		return enter((const char *)ctx->args[arg], type);		\
	}									\
	SEC("tracepoint/syscalls/sys_exit_" #name)				\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)			\
	{									\
		return leave(ctx, ctx->ret);					\
	}

/* Each where the architecture has it: the tool loads only those with a tracepoint. */
STAT_SYSCALL(stat, SYS_STAT, 0)
STAT_SYSCALL(statx, SYS_STATX, 1)
STAT_SYSCALL(statfs, SYS_STATFS, 0)
STAT_SYSCALL(newstat, SYS_NEWSTAT, 0)
STAT_SYSCALL(newlstat, SYS_NEWLSTAT, 0)
STAT_SYSCALL(fstatat64, SYS_FSTATAT64, 1)
STAT_SYSCALL(newfstatat, SYS_NEWFSTATAT, 1)

char LICENSE[] SEC("license") = "GPL";
